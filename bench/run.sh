#!/usr/bin/env bash
# The benchmark, one command: bench/run.sh
#
# Measures the tool (dotnet resnet-mnist bench, Release build) and the reference PyTorch program
# (bench/bench_reference.py, which imports reference/resnet_mnist.py) on the same machine, in the same run, on the
# same work (bench/bench.yaml: ResNet-18, 1x28x28, batch 256, Adam, 2 threads), then writes BENCHMARKS.md.
#
# Environment:
#   BENCH_MAX_LOAD   wait (up to BENCH_WAIT_S seconds, polling every 30 s) until the 1-minute load average is
#                    below this before measuring; default 0.5. Set to 99 to start at once.
#   BENCH_WAIT_S     default 900.
#   BENCH_WARMUP, BENCH_STEPS   untimed / timed steps per measurement; default 3 / 10.
#   BENCH_CONFIG     the workload; default bench/bench.yaml.
#   BENCH_EPOCH_IMAGES  training images per epoch in the batch size x optimizer table; default 4096.
#   PYTHON           the reference's interpreter; default /usr/bin/python3 (Debian's torch 1.13.1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-/usr/bin/python3}
WARMUP=${BENCH_WARMUP:-3}
STEPS=${BENCH_STEPS:-10}
MAX_LOAD=${BENCH_MAX_LOAD:-0.5}
WAIT_S=${BENCH_WAIT_S:-900}
OUT=bench/last-run   # raw figures of the latest run (JSON + /usr/bin/time output); BENCHMARKS.md is made from them
rm -rf "$OUT"; mkdir -p "$OUT"
CFG=${BENCH_CONFIG:-bench/bench.yaml}

echo "building the tool (Release) ..."
dotnet build tool/ResnetMnist.Tool.csproj -c Release -nologo -v q >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
TOOL=(tool/bin/Release/net10.0/resnet-mnist)

# Full-size data for the data-path measurement: Debian's dataset-fashion-mnist in torchvision's layout.
FASHION=""   # temporary folders, removed on exit
RESUME=""
trap 'rm -rf ${FASHION:+"$FASHION"} ${RESUME:+"$RESUME"}' EXIT
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  FASHION=$(mktemp -d /tmp/resnet-mnist-fashion.XXXXXX)
  mkdir -p "$FASHION/FashionMNIST/raw"
  for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cp "/usr/share/datasets/fashion-mnist/$f" "$FASHION/FashionMNIST/raw/$f"   # copies: the tool refuses a linked dataset
  done
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l >= m)}'; do
  if [ "$waited" -ge "$WAIT_S" ]; then echo "load still $(load1) after ${WAIT_S}s; measuring anyway"; break; fi
  echo "load average $(load1) >= $MAX_LOAD, waiting ..."; sleep 30; waited=$((waited + 30))
done
LOAD_START=$(cat /proc/loadavg)
START=$(date +%s)

# run NAME CMD...: runs CMD under /usr/bin/time -v (peak RSS of the whole process), JSON to $OUT/NAME.json.
run() {
  local name=$1; shift
  echo "[$(date +%T)] $name (load $(load1))"
  /usr/bin/time -v -o "$OUT/$name.time" "$@" --json "$OUT/$name.json" >"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log"; exit 1; }
  echo "$(load1)" >"$OUT/$name.load"
}
T() { run "$1" "${TOOL[@]}" bench "$CFG" "${@:2}"; }
R() { run "$1" "$PY" bench/bench_reference.py "$CFG" "${@:2}"; }
common=(--warmup "$WARMUP" --steps "$STEPS")

# Steps: train / eval throughput, batch-size sweep, step breakdown (2 threads each).
T tool_steps --mode steps "${common[@]}"
R ref_steps --mode steps "${common[@]}"
# channels_last in both (throughput only).
T tool_steps_cl --mode steps "${common[@]}" --batch-sizes "" --set model.channels_last=true
R ref_steps_cl --mode steps "${common[@]}" --batch-sizes "" --channels-last
# One epoch on the 9,000 embedded images, data loading included; /usr/bin/time gives each process's peak RSS.
T tool_epoch --mode epoch
R ref_epoch --mode epoch
# The original author's table: one epoch (BENCH_EPOCH_IMAGES real images) at batch 16/64/256 with Adam and with
# SGD (momentum 0.9), each program with its own data path; the tool also with TorchSharp's per-tensor optimizer step.
EPOCH_IMAGES=${BENCH_EPOCH_IMAGES:-4096}
epoch_grid() { # epoch_grid PREFIX [per-tensor]: every cell, named PREFIXtool_epoch_OPT_B / PREFIXref_epoch_OPT_B
  local prefix="$1" per_tensor="${2:-}" opt b o m
  for opt in adam sgd; do
    o=(--set optimizer.name=$opt); [ "$opt" = sgd ] && o+=(--set optimizer.momentum=0.9)
    for b in 16 64 256; do
      m=(--mode epoch --set train.batch_size=$b --set data.train_limit=$EPOCH_IMAGES "${o[@]}")
      T "${prefix}tool_epoch_${opt}_$b" "${m[@]}"
      R "${prefix}ref_epoch_${opt}_$b" "${m[@]}"
      [ -z "$per_tensor" ] || T "${prefix}tool_epoch_${opt}_${b}_per_tensor" "${m[@]}" --per-tensor-optimizer
    done
  done
}
epoch_grid "" per-tensor
# The same grid with one core kept busy by another process (`taskset -c 1 yes`, as bench/busy_machine.sh does), each
# program at its configured 2 threads (the tool's default wait policy; the reference as it runs). BENCH_BUSY_GRID=0
# skips it (it takes as long as the grid above).
if [ "${BENCH_BUSY_GRID:-1}" != 0 ]; then
  taskset -c 1 yes >/dev/null &
  BUSY_PID=$!
  epoch_grid busy_
  kill "$BUSY_PID"; wait "$BUSY_PID" 2>/dev/null || true
fi
# The reference as it ran originally: torch's default thread count.
R ref_epoch_default --mode epoch --set threads=auto
R ref_steps_default --mode steps --warmup 2 --steps 5 --batch-sizes "" --set threads=auto
# The data path alone on 60,000 images (Fashion-MNIST, same IDX format).
if [ -n "$FASHION" ]; then
  T tool_data --mode data --set data.dataset=fashion-mnist --set "data.root=$FASHION"
  R ref_data --mode data --set data.dataset=fashion-mnist --set "data.root=$FASHION"
fi
# Memory over a short real run: 3 epochs of 2,048 images (trainer, evaluation, checkpoints).
T tool_memory --mode memory --set train.epochs=3 --set data.train_limit=2048
# Resume: one real run (`train`, 2 epochs of 1,024 images, batch 256, Adam, checkpoints) started fresh, and the same
# run stopped after its first epoch and resumed for the second (`train --resume`); each process's peak resident memory
# (its summary.json's peak_memory_mib, VmHWM; and /usr/bin/time's maxrss).
RESUME=$(mktemp -d /tmp/resnet-mnist-resume.XXXXXX)
train_run() { # train_run NAME RUN_DIR ARGS...: `resnet-mnist train ARGS` under /usr/bin/time; its summary.json to $OUT/NAME.json
  local name=$1 dir=$2; shift 2
  echo "[$(date +%T)] $name (load $(load1))"
  /usr/bin/time -v -o "$OUT/$name.time" "${TOOL[@]}" train "$@" >"$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log"; exit 1; }
  cp "$dir/summary.json" "$OUT/$name.json"
  echo "$(load1)" >"$OUT/$name.load"
}
resume_data=(--set data.train_limit=1024 --set data.test_limit=1000)
train_run tool_train_fresh "$RESUME/fresh" "$CFG" "${resume_data[@]}" --set train.epochs=2 --out "$RESUME/fresh"
train_run tool_train_first "$RESUME/resumed" "$CFG" "${resume_data[@]}" --set train.epochs=1 --out "$RESUME/resumed"
train_run tool_train_resumed "$RESUME/resumed" --resume "$RESUME/resumed" --set train.epochs=2 --force

# optimizer.step() alone (fused, libtorch operations over flat buffers, per-tensor, the reference; 1 and 2 threads),
# and one epoch of 640 images quiet and with one core kept busy by another process (libgomp wait policies).
OPT_ROUNDS=${BENCH_OPT_ROUNDS:-1} bench/optimizer_step.sh | tee "$OUT/optimizer_step.txt"
BUSY_ROUNDS=${BENCH_BUSY_ROUNDS:-1} bench/busy_machine.sh | tee "$OUT/busy_machine.txt"

END=$(date +%s)
LOAD_END=$(cat /proc/loadavg)
"$PY" bench/report.py "$OUT" --out BENCHMARKS.md --command "bench/run.sh" \
  --load-start "$LOAD_START" --load-end "$LOAD_END" --seconds $((END - START)) --waited "$waited"
echo "wrote BENCHMARKS.md ($((END - START)) s of measurements)"
