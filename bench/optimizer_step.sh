#!/usr/bin/env bash
# optimizer.step() alone at ResNet-18 (11.2 M parameters, bench/bench.yaml: Adam lr 1e-3, float32): the tool's fused
# one-pass step, its libtorch operations over flat buffers, TorchSharp's per-tensor step, and the reference's
# torch.optim step (PyTorch 1.13), at 1 and 2 threads, interleaved round by round (OPT_ROUNDS, default 3).
# OPT_OPTIMIZER=sgd measures SGD (momentum 0.9) instead. Writes bench/last-run/optimizer/*.json and prints
# milliseconds per step (mean of --steps timed steps, and the fastest step).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${OPT_ROUNDS:-3}
OPT=${OPT_OPTIMIZER:-adam}
OUT=bench/last-run/optimizer; mkdir -p "$OUT"
TOOL=(tool/bin/Release/net10.0/resnet-mnist)
[ -x "${TOOL[0]}" ] || dotnet build tool/ResnetMnist.Tool.csproj -c Release -nologo -v q >/dev/null
o=(--set optimizer.name=$OPT); [ "$OPT" = sgd ] && o+=(--set optimizer.momentum=0.9)
common=(--mode optimizer --warmup 3 --steps 20 --set train.batch_size=16 --set data.train_limit=64 "${o[@]}")
show() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f ms (min %.1f)" % (1e3*d["optimizer_step_s"], 1e3*d["optimizer_step_min_s"]))' "$1"; }
for r in $(seq 1 "$ROUNDS"); do
  for t in 1 2; do
    for v in fused flat-ops per-tensor reference; do
      f="$OUT/$OPT-$v-t$t-r$r.json"
      case $v in
        fused) "${TOOL[@]}" bench bench/bench.yaml "${common[@]}" --set threads=$t --json "$f" >/dev/null ;;
        flat-ops) "${TOOL[@]}" bench bench/bench.yaml "${common[@]}" --set threads=$t --flat-ops-optimizer --json "$f" >/dev/null ;;
        per-tensor) "${TOOL[@]}" bench bench/bench.yaml "${common[@]}" --set threads=$t --per-tensor-optimizer --json "$f" >/dev/null ;;
        reference) "$PY" bench/bench_reference.py bench/bench.yaml "${common[@]}" --set threads=$t --json "$f" >/dev/null ;;
      esac
      printf '%s t%s %-10s round %s: %s (load %s)\n' "$OPT" "$t" "$v" "$r" "$(show "$f")" "$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, shared"
