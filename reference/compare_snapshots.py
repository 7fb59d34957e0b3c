#!/usr/bin/env python3
"""Compare two snapshot folders value by value.

    /usr/bin/python3 reference/compare_snapshots.py A_DIR B_DIR [--rtol 1e-5] [--atol 1e-6]
                                                    [--ignore PATTERN ...] [--ignore-meta]

Rules: floats match when |a - b| <= atol + rtol * |b| (rtol 1e-5, atol 1e-6 by default);
integers (int64 values, shapes, counts), strings (dtype, sha256, meta) and booleans must be equal;
dict keys and list lengths must be equal. A differing sha256 is reported with its tensor key.
Every mismatch is printed as `file: key.path: field[index]: A vs B`; the last line is a summary.
--ignore takes fnmatch patterns over `file:key.path` (e.g. 'curves.json:curves.*_float32*').
Exit status: 0 when everything matches, 1 on any mismatch, 2 on usage errors.
"""
import argparse
import fnmatch
import glob
import json
import math
import os
import sys


class Comparer:
    def __init__(self, rtol, atol, ignore):
        self.rtol, self.atol, self.ignore = rtol, atol, ignore
        self.mismatches = 0
        self.values = 0

    def report(self, file, path, what, a, b):
        self.mismatches += 1
        print(f"{file}: {path}: {what}: {a!r} vs {b!r}")

    def ignored(self, file, path):
        return any(fnmatch.fnmatchcase(f"{file}:{path}", p) for p in self.ignore)

    def compare(self, file, path, a, b, field=""):
        if self.ignored(file, path):
            return
        where = field or "value"
        if isinstance(a, dict) and isinstance(b, dict):
            for k in a.keys() - b.keys():
                self.report(file, _join(path, k), "missing in B", "present", "absent")
            for k in b.keys() - a.keys():
                self.report(file, _join(path, k), "missing in A", "absent", "present")
            is_record = "shape" in a and "dtype" in a
            for k in a:
                if k in b:
                    if is_record:
                        self.compare(file, path, a[k], b[k], k)
                    else:
                        self.compare(file, _join(path, k), a[k], b[k])
            return
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                self.report(file, path, f"{where} length", len(a), len(b))
                return
            exact = field == "shape"
            for i, (u, v) in enumerate(zip(a, b)):
                if exact:
                    if u != v:
                        self.report(file, path, f"{where}[{i}]", u, v)
                        return
                    continue
                if isinstance(u, (dict, list)) or isinstance(v, (dict, list)):
                    self.compare(file, f"{path}[{i}]", u, v, field)
                elif not self.scalar_equal(u, v):
                    self.report(file, path, f"{where}[{i}]", u, v)
                else:
                    self.values += 1
            return
        if not self.scalar_equal(a, b):
            self.report(file, path, where, a, b)
        else:
            self.values += 1

    def scalar_equal(self, a, b):
        if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str) \
                or a is None or b is None:
            return type(a) is type(b) and a == b
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            a, b = float(a), float(b)
            if math.isnan(a) or math.isnan(b):
                return math.isnan(a) and math.isnan(b)
            if math.isinf(a) or math.isinf(b):
                return a == b
            return abs(a - b) <= self.atol + self.rtol * abs(b)
        return a == b


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare two snapshot folders value by value.")
    ap.add_argument("a_dir")
    ap.add_argument("b_dir")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--ignore", action="append", default=[], metavar="PATTERN",
                    help="fnmatch pattern over file:key.path to skip (repeatable)")
    ap.add_argument("--ignore-meta", action="store_true", help="skip every file's meta block")
    ap.add_argument("--csv", action="store_true",
                    help="compare the CSV files (steps.csv, metrics.csv) found recursively under both folders instead")
    args = ap.parse_args(argv)
    for d in (args.a_dir, args.b_dir):
        if not os.path.isdir(d):
            print(f"not a folder: {d}", file=sys.stderr)
            return 2
    ignore = list(args.ignore) + (["*:meta", "*:meta.*"] if args.ignore_meta else [])
    cmp = Comparer(args.rtol, args.atol, ignore)

    if args.csv:
        return compare_csv(args, cmp)
    names_a = {os.path.basename(p) for p in glob.glob(os.path.join(args.a_dir, "*.json"))}
    names_b = {os.path.basename(p) for p in glob.glob(os.path.join(args.b_dir, "*.json"))}
    for n in sorted(names_a - names_b):
        cmp.report(n, "", "file", "present in A", "absent in B")
    for n in sorted(names_b - names_a):
        cmp.report(n, "", "file", "absent in A", "present in B")
    files = sorted(names_a & names_b)
    for n in files:
        with open(os.path.join(args.a_dir, n)) as f:
            a = json.load(f)
        with open(os.path.join(args.b_dir, n)) as f:
            b = json.load(f)
        cmp.compare(n, "", a, b)

    status = "OK" if cmp.mismatches == 0 else "FAILED"
    print(f"{status}: {len(files)} files, {cmp.values} values matched, {cmp.mismatches} mismatches "
          f"(rtol {args.rtol:g}, atol {args.atol:g}; exact for integers, strings and sha256)")
    return 0 if cmp.mismatches == 0 else 1


def compare_csv(args, cmp):
    """CSV mode: same files, same headers and row counts; numeric cells within rtol/atol."""
    def files(d):
        return {os.path.relpath(p, d) for p in glob.glob(os.path.join(d, "**", "*.csv"), recursive=True)}
    fa, fb = files(args.a_dir), files(args.b_dir)
    for n in sorted(fa ^ fb):
        cmp.report(n, "", "file", "present" if n in fa else "absent", "present" if n in fb else "absent")
    for n in sorted(fa & fb):
        with open(os.path.join(args.a_dir, n)) as f:
            ra = [line.rstrip("\n").split(",") for line in f if line.strip()]
        with open(os.path.join(args.b_dir, n)) as f:
            rb = [line.rstrip("\n").split(",") for line in f if line.strip()]
        if len(ra) != len(rb) or ra[:1] != rb[:1]:
            cmp.report(n, "", "rows/header", f"{len(ra)} {ra[:1]}", f"{len(rb)} {rb[:1]}")
            continue
        header = ra[0]
        for i, (x, y) in enumerate(zip(ra[1:], rb[1:]), start=1):
            for col, u, v in zip(header, x, y):
                if col in ("epoch_seconds", "train_images_per_second"):
                    continue  # timings, not results
                cmp.compare(n, f"row {i}", float(u), float(v), col)
    status = "OK" if cmp.mismatches == 0 else "FAILED"
    print(f"{status}: {len(fa & fb)} CSV files, {cmp.values} values matched, {cmp.mismatches} mismatches "
          f"(rtol {args.rtol:g}, atol {args.atol:g})")
    return 0 if cmp.mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
