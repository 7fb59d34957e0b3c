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
if [ $# -eq 0 ]; then configs=("$here"/configs/*.yaml); else configs=(); for n in "$@"; do configs+=("$here/configs/$n.yaml"); done; fi
py="${PYTHON:-/usr/bin/python3}"
sets="${KERNEL_SETS:-$("$py" "$here/make_snapshots.py" --list-kernel-sets)}"
mlnet=""
if grep -qlE "pretrained: *mlnet" "${configs[@]}"; then
  mlnet="$(mktemp -d)/resnet18-mlnet.pth"
  dotnet run --project "$here/../tool" -c Release -- weights import-mlnet --out "$mlnet" > /dev/null
fi
one_set() { # one_set KERNEL_SET: every config under that kernel set's environment
  local ks="$1" cfg name tmp extra
  for cfg in "${configs[@]}"; do
    name="$(basename "$cfg" .yaml)"
    extra=()
    if grep -qE "pretrained: *mlnet" "$cfg"; then extra=(--set "model.pretrained=$mlnet"); fi
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
