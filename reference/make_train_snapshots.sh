#!/usr/bin/env bash
# Runs the reference program on every config in reference/configs/ and keeps its steps.csv and metrics.csv
# under OUT/train/<config name>/ (default OUT: reference/snapshots); with NAME arguments, only those configs
# (reference/configs/NAME.yaml): bash reference/make_train_snapshots.sh OUT NAME... The C# training parity tests compare
# the tool's per-step losses with these files.
# A config with `model.pretrained: mlnet` gets the converted ImageNet weights as a .pth file, written by
# `dotnet resnet-mnist weights import-mlnet --out FILE` (the same conversion the tool loads).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/snapshots}"
shift || true
names=("$@")
py="${PYTHON:-/usr/bin/python3}"
mlnet=""
if [ ${#names[@]} -eq 0 ]; then
  configs=("$here"/configs/*.yaml)
else
  configs=()
  for n in "${names[@]}"; do configs+=("$here/configs/$n.yaml"); done
fi
for cfg in "${configs[@]}"; do
  name="$(basename "$cfg" .yaml)"
  tmp="$(mktemp -d)"
  extra=()
  if grep -qE "pretrained: *mlnet" "$cfg"; then
    if [ -z "$mlnet" ]; then
      mlnet="$(mktemp -d)/resnet18-mlnet.pth"
      dotnet run --project "$here/../tool" -c Release -- weights import-mlnet --out "$mlnet" > /dev/null
    fi
    extra=(--set "model.pretrained=$mlnet")
  fi
  "$py" "$here/resnet_mnist.py" "$cfg" "${extra[@]}" --out "$tmp" > "$tmp/log.txt"
  mkdir -p "$out/train/$name"
  cp "$tmp/steps.csv" "$tmp/metrics.csv" "$out/train/$name/"
  rm -rf "$tmp"
  echo "reference: $name -> $out/train/$name"
done
