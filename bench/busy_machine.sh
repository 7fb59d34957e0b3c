#!/usr/bin/env bash
# Training speed on a quiet and on a busy machine: one epoch of BUSY_IMAGES MNIST images (batch 64, Adam, the
# embedded sample), the tool and the reference, each with 1 thread and with 2 threads under libgomp's wait choices.
# "busy" = another process spinning on core 1 (`taskset -c 1 yes > /dev/null`) for the whole measurement.
# libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it loads; each run below sets them for its process:
#   default      neither variable set: the tool's own choice (a short spin when the other cores were idle at start,
#                PASSIVE when another process was busy; the JSON's thread_wait says which)
#   spin300k     GOMP_SPINCOUNT=300000, libgomp's own default
#   passive      OMP_WAIT_POLICY=PASSIVE
#   spin3k       GOMP_SPINCOUNT=3000
#   spin10k      GOMP_SPINCOUNT=10000
#   spin1k       GOMP_SPINCOUNT=1000
# BUSY_BATCH: the batch size (default 64). Interleaved A/B: every round runs each variant once; BUSY_ROUNDS rounds (default 2); BUSY_VARIANTS picks the
# 2-thread variants (default "default spin300k passive spin10k spin1k"), BUSY_LOADS the conditions (default "quiet busy").
# Writes bench/last-run/busy/*.json and prints a table (epoch training seconds, each round).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
ROUNDS=${BUSY_ROUNDS:-2}
IMAGES=${BUSY_IMAGES:-640}
OUT=bench/last-run/busy; mkdir -p "$OUT"
TOOL=(tool/bin/Release/net10.0/resnet-mnist)
[ -x "${TOOL[0]}" ] || dotnet build tool/ResnetMnist.Tool.csproj -c Release -nologo -v q >/dev/null
BATCH=${BUSY_BATCH:-64}
common=(--mode epoch --set data.train_limit=$IMAGES --set train.batch_size=$BATCH --set optimizer.name=adam)

variant_env() {
  case $1 in
    spin300k) echo GOMP_SPINCOUNT=300000 ;;
    passive) echo OMP_WAIT_POLICY=PASSIVE ;;
    spin3k) echo GOMP_SPINCOUNT=3000 ;;
    spin10k) echo GOMP_SPINCOUNT=10000 ;;
    spin1k) echo GOMP_SPINCOUNT=1000 ;;
    *) echo X_UNUSED=1 ;;
  esac
}

one() { # one LOAD PROGRAM THREADS VARIANT ROUND
  local name="$1-$2-t$3-$4-r$5" prog=()
  if [ "$2" = tool ]; then prog=("${TOOL[@]}" bench bench/bench.yaml); else prog=("$PY" bench/bench_reference.py bench/bench.yaml); fi
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT $(variant_env "$4") "${prog[@]}" "${common[@]}" --set threads=$3 --json "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  printf '%-8s %-5s %s %-9s round %s: %s s\n' "$1" "$2" "t$3" "$4" "$5" \
    "$("$PY" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["epoch_train_s"], 2))' "$OUT/$name.json")"
}

busy_pid=""
stop_busy() { [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null; busy_pid=""; }
trap stop_busy EXIT
for load in ${BUSY_LOADS:-quiet busy}; do
  if [ "$load" = busy ]; then taskset -c 1 yes >/dev/null & busy_pid=$!; fi
  for r in $(seq 1 "$ROUNDS"); do
    one "$load" tool 1 none "$r"
    for v in ${BUSY_VARIANTS:-default spin300k passive spin10k spin1k}; do one "$load" tool 2 "$v" "$r"; done
    one "$load" ref 1 none "$r"
    one "$load" ref 2 spin300k "$r"
    one "$load" ref 2 passive "$r"
  done
  stop_busy
done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load at end $(cut -d' ' -f1-3 /proc/loadavg)"
