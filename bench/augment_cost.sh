#!/usr/bin/env bash
# The cost of CIFAR-10 augmentation (RandomCrop(32, padding=4) + RandomHorizontalFlip) per batch, tool against the
# reference's DataLoader path, on the same machine in the same run, 2 threads each. The data is a CIFAR-10-format
# set of 10,000 training images (random pixels: the timing does not depend on the content) written to a temp folder
# in torchvision's layout. Each side runs `--mode data` (read the files, then draw every batch of one shuffled
# epoch) with data.augment false and true; the difference is the augmentation's cost. Writes
# bench/results/augment_cost.md.
#   bash bench/augment_cost.sh [BATCH_SIZE]     (default 128)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
BS=${1:-128}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PY" - "$tmp" <<'PYEOF'
import os, pickle, sys
import numpy as np
root = os.path.join(sys.argv[1], "cifar-10-batches-py"); os.makedirs(root)
rng = np.random.default_rng(0)
def batch(n):
    return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
for i in range(1, 6):
    pickle.dump(batch(2000), open(os.path.join(root, f"data_batch_{i}"), "wb"), protocol=4)
pickle.dump(batch(100), open(os.path.join(root, "test_batch"), "wb"), protocol=4)
pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, open(os.path.join(root, "batches.meta"), "wb"), protocol=4)
PYEOF
cat > "$tmp/bench.yaml" <<YEOF
seed: 0
threads: 2
data: {dataset: cifar10, root: '$tmp', normalize: true}
train: {batch_size: $BS}
YEOF
dotnet build tool -c Release -v q > /dev/null
tool() { dotnet tool/bin/Release/net10.0/resnet-mnist.dll bench "$tmp/bench.yaml" --mode data --set "data.augment=$1" --json "$tmp/tool-$1.json" > /dev/null; }
ref() { "$PY" bench/bench_reference.py "$tmp/bench.yaml" --mode data --set "data.augment=$1" --json "$tmp/ref-$1.json" > /dev/null; }
for a in false true; do tool $a; ref $a; done
"$PY" - "$tmp" "$BS" <<'PYEOF'
import json, os, sys, platform, subprocess
tmp, bs = sys.argv[1], int(sys.argv[2])
r = {k: json.load(open(os.path.join(tmp, f"{k}.json"))) for k in ("tool-false", "tool-true", "ref-false", "ref-true")}
n = r["tool-true"]["train_images"]; batches = -(-n // bs)
def per_batch(k): return 1000 * r[k]["batches_s"] / batches
tool_aug = per_batch("tool-true") - per_batch("tool-false")
ref_aug = per_batch("ref-true") - per_batch("ref-false")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
lines = [
    "# CIFAR-10 augmentation cost per batch", "",
    f"`bash bench/augment_cost.sh {bs}` on {cpu}, {os.cpu_count()} cores, 2 threads each; {n} training images in "
    f"torchvision's CIFAR-10 layout, batch {bs} ({batches} batches), one shuffled epoch through each side's data path.", "",
    "| | tool (ms/batch) | reference DataLoader (ms/batch) | reference / tool |", "|---|---:|---:|---:|",
    f"| data path without augmentation | {per_batch('tool-false'):.2f} | {per_batch('ref-false'):.2f} | {per_batch('ref-false') / per_batch('tool-false'):.1f}× |",
    f"| data path with augmentation | {per_batch('tool-true'):.2f} | {per_batch('ref-true'):.2f} | {per_batch('ref-true') / per_batch('tool-true'):.1f}× |",
    f"| augmentation alone (difference) | {tool_aug:.2f} | {ref_aug:.2f} | {ref_aug / max(tool_aug, 1e-9):.1f}× |", "",
    "The tool draws the crop offsets and flips per sample from the global generator (three tiny libtorch calls per "
    "image, in torchvision's order) and does the image work as one pad and one gather per batch; the reference "
    "pads, crops and flips each PIL image in `Dataset.__getitem__`.",
]
text = "\n".join(lines) + "\n"
os.makedirs("bench/results", exist_ok=True)
open("bench/results/augment_cost.md", "w").write(text)
print(text)
PYEOF
