#!/usr/bin/env bash
# The statistical side of parity: configs/quickstart.yaml (1 epoch, Adam lr 1e-3, batch 64, float32, embedded
# sample) for seeds 0, 1, 2, run by the tool and by the reference PyTorch program, side by side.
# Float32 training is chaotic, so single runs differ; the distributions should not.
# Writes bench/results/quickstart_seeds.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/bench/results"; mkdir -p "$out"
work="$(mktemp -d)"
threads="${THREADS:-2}"
dotnet build "$root/tool" -c Release > /dev/null
tool=(dotnet "$root/tool/bin/Release/net10.0/resnet-mnist.dll")
rows=()
for seed in 0 1 2; do
  t0=$(date +%s.%N)
  "${tool[@]}" train "$root/configs/quickstart.yaml" --out "$work/tool-$seed" --set seed=$seed --set threads=$threads > "$work/tool-$seed.log"
  t1=$(date +%s.%N)
  /usr/bin/python3 "$root/reference/resnet_mnist.py" "$root/configs/quickstart.yaml" --set seed=$seed --out "$work/ref-$seed" --threads $threads > "$work/ref-$seed.log"
  t2=$(date +%s.%N)
  tl=$(tail -1 "$work/tool-$seed/metrics.csv"); rl=$(tail -1 "$work/ref-$seed/metrics.csv")
  rows+=("| $seed | $(cut -d, -f4 <<<"$tl") | $(cut -d, -f4 <<<"$rl") | $(cut -d, -f2 <<<"$tl" | cut -c1-6) | $(cut -d, -f2 <<<"$rl" | cut -c1-6) | $(printf %.0f "$(echo "$t1 - $t0" | bc)") | $(printf %.0f "$(echo "$t2 - $t1" | bc)") |")
done
{
  echo "| seed | tool test accuracy (%) | reference test accuracy (%) | tool train loss | reference train loss | tool wall (s) | reference wall (s) |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "configs/quickstart.yaml, float32, $threads threads, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%d)."
} | tee "$out/quickstart_seeds.md"
