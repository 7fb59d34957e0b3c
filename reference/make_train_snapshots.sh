#!/usr/bin/env bash
# Runs the reference program on every config in reference/configs/ and keeps its steps.csv and metrics.csv
# under OUT/train/<config name>/ (default OUT: reference/snapshots). The C# training parity tests compare
# the tool's per-step losses with these files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/snapshots}"
py="${PYTHON:-/usr/bin/python3}"
for cfg in "$here"/configs/*.yaml; do
  name="$(basename "$cfg" .yaml)"
  tmp="$(mktemp -d)"
  "$py" "$here/resnet_mnist.py" "$cfg" --out "$tmp" > "$tmp/log.txt"
  mkdir -p "$out/train/$name"
  cp "$tmp/steps.csv" "$tmp/metrics.csv" "$out/train/$name/"
  rm -rf "$tmp"
  echo "reference: $name -> $out/train/$name"
done
