#!/usr/bin/env bash
# First 100 per-step training losses on the embedded sample, same seed (0), float32, Adam lr 1e-3, batch 64:
# pretrained: none, mlnet with conv1_init random, mlnet with conv1_init sum-rgb.
# Writes bench/results/pretrained_start.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/bench/results"; mkdir -p "$out"
work="$(mktemp -d)"
dotnet build "$root/tool" -c Release > /dev/null
tool=(dotnet "$root/tool/bin/Release/net10.0/resnet-mnist.dll")
common=(--set data.train_limit=6400 --set data.test_limit=1000 --set train.epochs=1 --set seed=0)
"${tool[@]}" train "$root/configs/quickstart.yaml" --out "$work/none" "${common[@]}" > /dev/null
"${tool[@]}" train "$root/configs/quickstart.yaml" --out "$work/mlnet-random" "${common[@]}" --set model.pretrained=mlnet --set model.conv1_init=random > /dev/null
"${tool[@]}" train "$root/configs/quickstart.yaml" --out "$work/mlnet-sum-rgb" "${common[@]}" --set model.pretrained=mlnet --set model.conv1_init=sum-rgb > /dev/null
/usr/bin/python3 - "$work" "$out" <<'PY'
import csv, sys
work, out = sys.argv[1], sys.argv[2]
runs = ["none", "mlnet-random", "mlnet-sum-rgb"]
loss = {r: [float(x["loss"]) for x in csv.DictReader(open(f"{work}/{r}/steps.csv"))][:100] for r in runs}
acc = {r: float(list(csv.DictReader(open(f"{work}/{r}/metrics.csv")))[-1]["test_accuracy"]) for r in runs}
with open(f"{out}/pretrained_start.md", "w") as f:
    f.write("| step | none | mlnet, conv1_init random | mlnet, conv1_init sum-rgb |\n|---:|---:|---:|---:|\n")
    for s in [1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]:
        f.write(f"| {s} | {loss['none'][s-1]:.4f} | {loss['mlnet-random'][s-1]:.4f} | {loss['mlnet-sum-rgb'][s-1]:.4f} |\n")
    for name, lo, hi in [("mean of steps 1-10", 0, 10), ("mean of steps 91-100", 90, 100)]:
        f.write(f"| {name} | " + " | ".join(f"{sum(loss[r][lo:hi])/10:.4f}" for r in runs) + " |\n")
    f.write("| test accuracy after 100 steps (%) | " + " | ".join(f"{acc[r]:.1f}" for r in runs) + " |\n")
print(open(f"{out}/pretrained_start.md").read())
PY
