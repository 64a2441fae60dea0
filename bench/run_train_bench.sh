#!/usr/bin/env bash
# Training time per epoch, qsearch vs PyTorch (Debian python3-torch on OpenBLAS), same recipe,
# same data, same thread count, in one run:
#
#   bench/run_train_bench.sh BUILD_DIR [THREADS...]      (default threads: 1 2)
#
# For mlp and lenet5 on MNIST (batch 256, Adam lr 1e-3, cosine schedule) each side trains
# $EPOCHS epochs (default 2) and reports the median time of an epoch's training loop (forward,
# loss, backward, optimizer step over the 60000 training images; validation excluded on both
# sides). Prints a table with the ratio torch / qsearch (> 1: qsearch is faster).
set -euo pipefail
BUILD=${1:?usage: bench/run_train_bench.sh BUILD_DIR [THREADS...]}
shift
THREADS=("$@")
[ ${#THREADS[@]} -eq 0 ] && THREADS=(1 2)
EPOCHS=${EPOCHS:-2}
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
echo "recipe: MNIST train split (60000), batch 256, adam lr 1e-3, cosine, $EPOCHS epochs, median epoch"
printf '%-8s %7s %14s %14s %8s\n' model threads qsearch_s/ep torch_s/ep speedup
for model in mlp lenet5; do
  for t in "${THREADS[@]}"; do
    "$QS" --threads "$t" train --model "$model" --dataset mnist --epochs "$EPOCHS" \
      --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 --out "$TMP/$model.onnx" --json \
      > "$TMP/qs.json" 2> "$TMP/qs.log"
    OMP_NUM_THREADS=$t "$PY" "$HERE/torch_train.py" --model "$model" --dataset mnist \
      --epochs "$EPOCHS" --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 --threads "$t" \
      --json > "$TMP/pt.json" 2> "$TMP/pt.log"
    q=$(median_of "$TMP/qs.json")
    p=$(median_of "$TMP/pt.json")
    printf '%-8s %7s %14.2f %14.2f %7.2fx\n' "$model" "$t" "$q" "$p" \
      "$("$PY" -c "print($p / $q)")"
  done
done
