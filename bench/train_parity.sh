#!/usr/bin/env bash
# Training parity with PyTorch: the same recipe trained by `qsearch train` and by
# bench/torch_train.py (Debian python3-torch), final test accuracy of each side per seed and the
# mean over seeds:
#
#   bench/train_parity.sh BUILD_DIR [MODEL...]     (default models: mlp lenet5)
#
# Recipe (env overrides): DATASET=mnist EPOCHS=5 BATCH=256 LR=1e-3 OPTIMIZER=adam SEEDS="0 1 2"
# THREADS=2. Both sides validate on MNIST's val split (= test, as MASE; qsearch's default is a
# held-out 10% of the training split, hence --val-split val below) after every epoch, keep
# the epoch with the lowest validation loss, and report that model's test accuracy; qsearch's is
# measured by `qsearch eval` on the ONNX file it wrote.
set -euo pipefail
BUILD=${1:?usage: bench/train_parity.sh BUILD_DIR [MODEL...]}
shift
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(mlp lenet5)
DATASET=${DATASET:-mnist}
EPOCHS=${EPOCHS:-5}
BATCH=${BATCH:-256}
LR=${LR:-1e-3}
OPTIMIZER=${OPTIMIZER:-adam}
SEEDS=${SEEDS:-0 1 2}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
QS="$BUILD/bin/qsearch"
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "recipe: $DATASET, $EPOCHS epochs, batch $BATCH, $OPTIMIZER lr $LR, cosine, threads $THREADS"
printf '%-8s %5s %12s %12s %10s\n' model seed qsearch_acc torch_acc diff_pp
for model in "${MODELS[@]}"; do
  qs_sum=0
  pt_sum=0
  n=0
  for seed in $SEEDS; do
    "$QS" --threads "$THREADS" train --model "$model" --dataset "$DATASET" --epochs "$EPOCHS" \
      --batch-size "$BATCH" --lr "$LR" --optimizer "$OPTIMIZER" --seed "$seed" --val-split val \
      --out "$TMP/$model.onnx" > /dev/null 2> "$TMP/qs.log"
    q=$("$QS" eval --model "$TMP/$model.onnx" --dataset "$DATASET" --json |
      "$PY" -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
    p=$(OMP_NUM_THREADS=$THREADS "$PY" "$HERE/torch_train.py" --model "$model" \
      --dataset "$DATASET" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" \
      --optimizer "$OPTIMIZER" --seed "$seed" --threads "$THREADS" --json 2> "$TMP/pt.log" |
      "$PY" -c 'import json,sys; print(json.load(sys.stdin)["test_accuracy"])')
    printf '%-8s %5s %12.4f %12.4f %+10.2f\n' "$model" "$seed" "$q" "$p" \
      "$("$PY" -c "print(100 * ($q - $p))")"
    qs_sum=$("$PY" -c "print($qs_sum + $q)")
    pt_sum=$("$PY" -c "print($pt_sum + $p)")
    n=$((n + 1))
  done
  "$PY" -c "q = $qs_sum / $n; p = $pt_sum / $n
print(f'{\"$model\":<8} {\"mean\":>5} {q:12.4f} {p:12.4f} {100 * (q - p):+10.2f}')"
done
