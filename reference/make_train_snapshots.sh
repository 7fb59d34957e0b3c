#!/usr/bin/env bash
# Runs the reference program on every config in reference/configs/ and keeps its steps.csv and metrics.csv
# under OUT/<kernel set>/train/<config name>/ (default OUT: reference/snapshots), once per CPU kernel set this CPU
# runs (see make_snapshots.py: ATEN_CPU_CAPABILITY with oneDNN and MKL capped at the same level); the initial
# weights, and so every float64 curve's last bits, depend on the kernel set. The C# training parity tests compare
# the tool's per-step losses with the files of the kernel set their libtorch runs with.
# With NAME arguments, only those configs (reference/configs/NAME.yaml): bash reference/make_train_snapshots.sh OUT NAME...
# A config with `model.pretrained: mlnet` gets the converted ImageNet weights as a .pth file, written by
# `dotnet resnet-mnist weights import-mlnet --out FILE` (the same conversion the tool loads).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/snapshots}"
shift || true
py="${PYTHON:-/usr/bin/python3}"
# runs: "NAME|CONFIG|ARCH" entries (ARCH empty: the config's own), the plain configs first, then each archs/ config times each architecture
runs=()
for cfg in "$here"/configs/*.yaml; do runs+=("$(basename "$cfg" .yaml)|$cfg|"); done
archs="$("$py" -c "import json, sys; print(' '.join(a['name'] for a in json.load(open(sys.argv[1]))['archs']))" "$here/archs.json")"
for cfg in "$here"/configs/archs/*.yaml; do
  for arch in $archs; do runs+=("$(basename "$cfg" .yaml)-$arch|$cfg|$arch"); done
done
if [ $# -gt 0 ]; then
  wanted=()
  for n in "$@"; do
    found=""
    for r in "${runs[@]}"; do if [ "${r%%|*}" = "$n" ]; then wanted+=("$r"); found=1; fi; done
    if [ -z "$found" ]; then echo "error: $n: no reference/configs/$n.yaml and no <archs/ config>-<arch> run of that name" >&2; exit 2; fi
  done
  runs=("${wanted[@]}")
fi
configs=(); for r in "${runs[@]}"; do IFS="|" read -r _ cfg _ <<< "$r"; configs+=("$cfg"); done
sets="${KERNEL_SETS:-$("$py" "$here/make_snapshots.py" --list-kernel-sets)}"
mlnet=""
if grep -qlE "pretrained: *mlnet" "${configs[@]}"; then
  mlnet="$(mktemp -d)/resnet18-mlnet.pth"
  dotnet run --project "$here/../tool" -c Release -- weights import-mlnet --out "$mlnet" > /dev/null
fi
one_set() { # one_set KERNEL_SET: every run under that kernel set's environment
  local ks="$1" r cfg name arch tmp extra
  for r in "${runs[@]}"; do
    IFS="|" read -r name cfg arch <<< "$r"
    extra=()
    if grep -qE "pretrained: *mlnet" "$cfg"; then extra=(--set "model.pretrained=$mlnet"); fi
    if [ -n "$arch" ]; then extra+=(--set "model.arch=$arch"); fi
    tmp="$(mktemp -d)"
    env $("$py" -c "import sys; sys.path.insert(0, '$here'); import make_snapshots as m; print(' '.join(f'{k}={v}' for k, v in m.kernel_env('$ks', {}).items()))") \
      "$py" "$here/resnet_mnist.py" "$cfg" ${extra[@]+"${extra[@]}"} --out "$tmp" > "$tmp/log.txt"
    mkdir -p "$out/$ks/train/$name"
    cp "$tmp/steps.csv" "$tmp/metrics.csv" "$out/$ks/train/$name/"
    rm -rf "$tmp"
    echo "reference: $name ($ks) -> $out/$ks/train/$name"
  done
}
# The kernel sets run side by side (their results do not depend on it); a failure in any fails the script.
pids=()
for ks in $sets; do one_set "$ks" & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
