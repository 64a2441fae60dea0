#!/usr/bin/env bash
# Training time per epoch, qsearch vs PyTorch (Debian python3-torch on OpenBLAS), same recipe,
# same data, same thread count, in one run:
#
#   bench/run_train_bench.sh BUILD_DIR [THREADS...]      (default threads: 1 2)
#
# For mlp and lenet5 on MNIST (batch 256, Adam lr 1e-3, cosine schedule) the two sides run
# alternately $REPS times (default 3), each run training $EPOCHS epoch(s) (default 1); a run
# reports the median time of an epoch's training loop (forward, loss, backward, optimizer step
# over the 60000 training images; data loading and validation excluded on both sides). The table
# shows the median over the runs and the ratio torch / qsearch (> 1: qsearch is faster).
# PyTorch runs with OMP_WAIT_POLICY=PASSIVE: on a shared machine its default spinning OpenMP
# workers lose their time slices and two threads become many times slower than one, which
# would flatter qsearch.
set -euo pipefail
BUILD=${1:?usage: bench/run_train_bench.sh BUILD_DIR [THREADS...]}
shift
THREADS=("$@")
[ ${#THREADS[@]} -eq 0 ] && THREADS=(1 2)
EPOCHS=${EPOCHS:-1}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
QS="$BUILD/bin/qsearch"
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median_of() {  # json file -> median_train_seconds_per_epoch
  "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["median_train_seconds_per_epoch"])' "$1"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)'), BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
median() { "$PY" -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

echo "recipe: MNIST train split (60000), batch 256, adam lr 1e-3, cosine; $REPS alternating runs of $EPOCHS epoch(s) per side, medians"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %7s %14s %14s %8s\n' model threads qsearch_s/ep torch_s/ep speedup
for model in mlp lenet5; do
  for t in "${THREADS[@]}"; do
    qs=()
    pt=()
    for _ in $(seq "$REPS"); do
      "$QS" --threads "$t" train --model "$model" --dataset mnist --epochs "$EPOCHS" \
        --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 --val-split val \
        --out "$TMP/$model.onnx" --json \
        > "$TMP/qs.json" 2> "$TMP/qs.log"
      qs+=("$(median_of "$TMP/qs.json")")
      OMP_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE "$PY" "$HERE/torch_train.py" --model "$model" \
        --dataset mnist --epochs "$EPOCHS" --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 \
        --threads "$t" --json > "$TMP/pt.json" 2> "$TMP/pt.log"
      pt+=("$(median_of "$TMP/pt.json")")
    done
    q=$(median "${qs[@]}")
    p=$(median "${pt[@]}")
    printf '%-8s %7s %14.2f %14.2f %7.2fx\n' "$model" "$t" "$q" "$p" \
      "$("$PY" -c "print($p / $q)")"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
