#!/usr/bin/env bash
# Training parity with PyTorch: the same recipe trained by `qsearch train` and by
# bench/torch_train.py (Debian python3-torch), final test accuracy and test loss of each side per
# seed, the median training seconds per epoch of each side and their ratio (PyTorch / qsearch),
# and the means over seeds:
#
#   bench/train_parity.sh BUILD_DIR [MODEL...]     (default models: mlp lenet5; also vit-tiny,
#                                                  mobilenet-s, any zoo model)
#
# Recipe (env overrides): DATASET=mnist EPOCHS=5 BATCH=256 LR=1e-3 OPTIMIZER=adam SEEDS="0 1 2"
# THREADS=2. Both sides validate on MNIST's val split (= test, as MASE; qsearch's default is a
# held-out 10% of the training split, hence --val-split val below) after every epoch, keep
# the epoch with the lowest validation loss, and report that model's test accuracy; qsearch's is
# measured by `qsearch eval` on the ONNX file it wrote, its loss is the kept epoch's validation
# loss (= test loss with --val-split val). PyTorch runs with OMP_WAIT_POLICY=PASSIVE (see
# bench/run_train_bench.sh).
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
printf '%-11s %5s %8s %8s %8s %8s %8s %8s %8s %7s\n' model seed qs_acc pt_acc diff_pp \
  qs_loss pt_loss qs_s/ep pt_s/ep pt/qs
field() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
for model in "${MODELS[@]}"; do
  rows=()
  for seed in $SEEDS; do
    "$QS" --threads "$THREADS" train --model "$model" --dataset "$DATASET" --epochs "$EPOCHS" \
      --batch-size "$BATCH" --lr "$LR" --optimizer "$OPTIMIZER" --seed "$seed" --val-split val \
      --out "$TMP/$model.onnx" --json > "$TMP/qs.json" 2> "$TMP/qs.log"
    q=$("$QS" eval --model "$TMP/$model.onnx" --dataset "$DATASET" --json |
      "$PY" -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
    OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=PASSIVE "$PY" "$HERE/torch_train.py" \
      --model "$model" --dataset "$DATASET" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" \
      --optimizer "$OPTIMIZER" --seed "$seed" --threads "$THREADS" --json > "$TMP/pt.json" \
      2> "$TMP/pt.log"
    row="$q $(field "$TMP/pt.json" test_accuracy) $(field "$TMP/qs.json" val_loss)"
    row="$row $(field "$TMP/pt.json" test_loss) $(field "$TMP/qs.json" median_train_seconds_per_epoch)"
    row="$row $(field "$TMP/pt.json" median_train_seconds_per_epoch)"
    rows+=("$row")
    "$PY" -c "import sys; q, p, ql, pl, qt, pt = map(float, sys.argv[3:])
print(f'{sys.argv[1]:<11} {sys.argv[2]:>5} {q:8.4f} {p:8.4f} {100 * (q - p):+8.2f} {ql:8.4f} '
      f'{pl:8.4f} {qt:8.2f} {pt:8.2f} {pt / qt:6.2f}x')" "$model" "$seed" $row
  done
  printf '%s\n' "${rows[@]}" | "$PY" -c "import sys
r = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = [sum(c) / len(r) for c in zip(*r)]
q, p, ql, pl, qt, pt = m
print(f'{sys.argv[1]:<11} {\"mean\":>5} {q:8.4f} {p:8.4f} {100 * (q - p):+8.2f} {ql:8.4f} '
      f'{pl:8.4f} {qt:8.2f} {pt:8.2f} {pt / qt:6.2f}x')" "$model"
done
