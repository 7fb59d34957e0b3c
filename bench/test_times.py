#!/usr/bin/env python3
"""Time per test category, from a dotnet test run: durations and outcomes from the .trx (UnitTestResult), categories
from NUnit's own result XML (the .trx logger drops NUnit's categories; `dotnet test ... -- NUnit.TestOutputXml=DIR`
writes DIR/<assembly>.xml with each fixture's and test's Category properties). Shows where the suite's time goes, so
that a slow test is seen.

    /usr/bin/python3 bench/test_times.py RUN.trx [--nunit-xml DIR/ResnetMnist.ParityTests.xml] [--slowest 5]

A test in several categories counts in each; "(all)" counts every test once; "(none)" holds tests without a category.
"""
import argparse
import re
import xml.etree.ElementTree as ET
from datetime import datetime

TRX_NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def _seconds(duration):
    """'hh:mm:ss.fffffff' -> seconds."""
    h, m, s = (duration or "0:0:0").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def read_trx(path):
    """Every test result of a .trx: dicts with name (as the runner shows it), full (namespace.class.method),
    class (its short name), outcome, seconds, stdout."""
    root = ET.parse(path).getroot()
    methods = {}
    for t in root.iterfind(".//t:TestDefinitions/t:UnitTest", TRX_NS):
        m = t.find("t:TestMethod", TRX_NS)
        methods[t.get("id")] = (m.get("className"), m.get("name")) if m is not None else ("", t.get("name"))
    results = []
    for r in root.iterfind(".//t:Results/t:UnitTestResult", TRX_NS):
        cls, method = methods.get(r.get("testId"), ("", r.get("testName")))
        results.append({
            "name": r.get("testName"),
            "full": f"{cls}.{method}" if cls else method,
            "class": cls.rsplit(".", 1)[-1],
            "outcome": r.get("outcome"),
            "seconds": _seconds(r.get("duration")),
            "stdout": "".join(e.text or "" for e in r.iterfind(".//t:StdOut", TRX_NS)),
        })
    return results


def run_seconds(path):
    """Wall-clock seconds of the run a .trx records (Times start .. finish), or None."""
    times = ET.parse(path).getroot().find("t:Times", TRX_NS)
    if times is None or not times.get("start") or not times.get("finish"):
        return None
    parse = lambda s: datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", s))  # noqa: E731
    return (parse(times.get("finish")) - parse(times.get("start"))).total_seconds()


def nunit_categories(path):
    """full test name -> set of categories (its own and those of every suite above it), from NUnit's result XML."""
    cats = {}

    def own(el):
        props = el.find("properties")
        return {p.get("value") for p in (props if props is not None else []) if p.get("name") == "Category"}

    def walk(el, inherited):
        here = inherited | own(el)
        if el.tag == "test-case":
            cats[el.get("fullname")] = here
            # a parameterised case's full name carries its arguments; the .trx names the method without them
            cats.setdefault(re.sub(r"\(.*\)$", "", el.get("fullname")), set()).update(here)
        for child in el:
            if child.tag in ("test-suite", "test-case"):
                walk(child, here)

    walk(ET.parse(path).getroot(), set())
    return cats


def table(results, categories, slowest=5):
    rows = {}
    for r in results:
        cats = categories.get(r["full"]) or categories.get(re.sub(r"\(.*\)$", "", r["full"])) or {"(none)"}
        for c in sorted(cats) + ["(all)"]:
            row = rows.setdefault(c, {"tests": 0, "seconds": 0.0, "failed": 0, "slowest": (0.0, "")})
            row["tests"] += 1
            row["seconds"] += r["seconds"]
            row["failed"] += r["outcome"] not in ("Passed", "NotExecuted")
            row["slowest"] = max(row["slowest"], (r["seconds"], r["name"]))
    lines = ["| category | tests | failed | seconds | slowest test (s) |", "|---|---:|---:|---:|---|"]
    for c, row in sorted(rows.items(), key=lambda kv: (kv[0] == "(all)", -kv[1]["seconds"])):
        lines.append(f"| {c} | {row['tests']} | {row['failed']} | {row['seconds']:.0f} | "
                     f"{row['slowest'][1]} ({row['slowest'][0]:.0f}) |")
    lines += ["", f"slowest {slowest} tests:"]
    for r in sorted(results, key=lambda r: -r["seconds"])[:slowest]:
        lines.append(f"  {r['seconds']:7.1f} s  {r['class']}.{r['name']}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trx")
    ap.add_argument("--nunit-xml", help="NUnit's result XML of the same run (categories); without it every test is (none)")
    ap.add_argument("--slowest", type=int, default=5)
    args = ap.parse_args()
    results = read_trx(args.trx)
    categories = nunit_categories(args.nunit_xml) if args.nunit_xml else {}
    wall = run_seconds(args.trx)
    print(f"{len(results)} tests, {sum(r['seconds'] for r in results):.0f} s in tests"
          + (f", {wall:.0f} s wall clock (build and start included)" if wall is not None else ""))
    print(table(results, categories, args.slowest))


if __name__ == "__main__":
    main()
