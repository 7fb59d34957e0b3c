#!/usr/bin/env python3
"""Measured parity figures per CPU kernel set: runs the parity tests (dotnet test --filter TestCategory=Parity)
under each ATEN_CPU_CAPABILITY this CPU supports (and natively), and prints, per test group, the worst difference the
tests report (their "max abs diff" / "worst relative" lines). Writes bench/results/parity_figures.md (or --out).

    /usr/bin/python3 bench/parity_figures.py [--sets native,default,avx2,avx512] [--no-build]
    /usr/bin/python3 bench/parity_figures.py --from-trx native=/tmp/ci-results/ci.trx --from-trx avx2=...   (no test run)
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "reference"))
sys.path.insert(0, HERE)
import test_times  # noqa: E402

GROUPS = [  # (label, test-name regex, output regex capturing the number)
    ("init (tensors differing)", r"Init_", r"(\d+) differ"),
    ("forward float32, eval (max abs)", r"EvalModeLayerOutput\(", r"max abs diff ([0-9.E+-]+)"),
    ("forward float32, train (max abs)", r"TrainModeLayerOutput\(", r"max abs diff ([0-9.E+-]+)"),
    ("running stats float32 (max abs)", r"TrainModeRunningStatistics", r"max abs diff ([0-9.E+-]+)"),
    ("forward float64, eval (max abs)", r"EvalModeLayerOutputFloat64", r"max abs diff ([0-9.E+-]+)"),
    ("forward float64, train (max abs)", r"TrainModeLayerOutputFloat64", r"max abs diff ([0-9.E+-]+)"),
    ("gradients float32 (max abs)", r"^Gradient\(", r"max abs diff ([0-9.E+-]+)"),
    ("gradients float64 (max abs)", r"GradientFloat64", r"max abs diff ([0-9.E+-]+)"),
    ("one optimizer step float32 (max abs)", r"ParametersAfterOneStep", r"worst abs diff over all parameters ([0-9.E+-]+)"),
    ("optimizer step float64, identical inputs (diff / u·S; bound 40)", r"Float64StepFromANonEmptyState",
     r"worst \|diff\| / \(u·S\) ([0-9.E+-]+)"),
    ("loss curves float64, 20 fixed batches (relative)", r"Float64CurveMatchesPyTorch", r"worst relative loss difference over \d+ steps ([0-9.E+-]+)"),
    ("training runs float64 (relative)", r"PerStepLossesMatchTheReferenceProgram", r"worst relative loss difference ([0-9.E+-]+)"),
    ("other kernel sets within the floor bound", r"OtherKernelSetsAgreeWithinTheirFloorBound", r"max abs diff ([0-9.E+-]+)"),
]


def parse(trx):
    """(test name, outcome, stdout) of every result, and the run's wall-clock seconds (bench/test_times.py reads the .trx)."""
    return [(r["name"], r["outcome"], r["stdout"]) for r in test_times.read_trx(trx)], test_times.run_seconds(trx)


def run(ks, no_build):
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if ks != "native":
        env["ATEN_CPU_CAPABILITY"] = ks
    out = tempfile.mkdtemp()
    cmd = ["dotnet", "test", os.path.join(REPO, "Parity.sln"), "--filter", "TestCategory=Parity",
           "--logger", "trx;LogFileName=p.trx", "--results-directory", out] + (["--no-build"] if no_build else [])
    t0 = time.time()
    subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.time() - t0
    results, _ = parse(glob.glob(os.path.join(out, "*.trx"))[0])
    return results, seconds


def main():
    ap = argparse.ArgumentParser()
    import make_snapshots
    ap.add_argument("--sets", default="native," + ",".join(make_snapshots.supported_kernel_sets()))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--from-trx", action="append", default=[], metavar="SET=PATH",
                    help="read the results of an earlier run (e.g. CI's) instead of running the tests")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "parity_figures.md"),
                    help="where the table goes (default: bench/results/parity_figures.md, the committed report)")
    args = ap.parse_args()
    given = dict(a.split("=", 1) for a in args.from_trx)
    sets = list(given) if given else args.sets.split(",")
    table = {}
    summary = []
    for ks in sets:
        if given:
            results, seconds = parse(given[ks])
            seconds = float("nan") if seconds is None else seconds
        else:
            results, seconds = run(ks, args.no_build)
        results = [r for r in results if any(re.search(g[1], r[0]) for g in GROUPS) or not given]
        passed = sum(1 for _, o, _ in results if o == "Passed")
        summary.append(f"| {ks} | {passed} / {len(results)} | {seconds:.0f} |")
        for label, name_re, out_re in GROUPS:
            vals = [float(m) for n, _, text in results if re.search(name_re, n) for m in re.findall(out_re, text)]
            table.setdefault(label, {})[ks] = max(vals) if vals else None
        print(f"{ks}: {passed}/{len(results)} passed, {seconds:.0f} s", flush=True)
    lines = ["# Parity figures per CPU kernel set", "",
             "`/usr/bin/python3 bench/parity_figures.py` (dotnet test --filter TestCategory=Parity, once per "
             "ATEN_CPU_CAPABILITY; native = unset). Worst difference C# vs PyTorch per test group.", "",
             "| kernel set | tests passed | seconds |", "|---|---:|---:|"] + summary + ["",
             "| what | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    for label, per in table.items():
        cells = [("—" if per[k] is None else (f"{int(per[k])}" if label.startswith("init") else f"{per[k]:.1e}")) for k in sets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines += ["", f"CPU: {cpu}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}."]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
