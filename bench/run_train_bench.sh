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
#
# MODELS="vit-tiny mobilenet-s" picks other zoo models. BASE=/path/to/other/qsearch adds a third
# side, run in the same rounds (base, qsearch, PyTorch, base, ...): its median, the speed-up of
# BUILD_DIR's binary over it, and each side's test accuracy after the last epoch (seed 0, MNIST's
# val split = test split as in bench/train_parity.sh), so a kernel change is measured against the
# old binary and PyTorch under the same load.
#
# Each run's whole-process CPU time (user + sys, /usr/bin/time: data loading, training,
# validation and output included) is printed per round and its median per side after the table:
# on a machine loaded by other jobs the wall time mostly measures the scheduler (two threads
# meeting at every kernel's join wait for whichever was preempted), the CPU time much less so.
set -euo pipefail
BUILD=${1:?usage: bench/run_train_bench.sh BUILD_DIR [THREADS...]}
shift
THREADS=("$@")
[ ${#THREADS[@]} -eq 0 ] && THREADS=(1 2)
EPOCHS=${EPOCHS:-1}
REPS=${REPS:-3}
MODELS=${MODELS:-mlp lenet5}
BASE=${BASE:-}
HERE=$(cd "$(dirname "$0")" && pwd)
QS="$BUILD/bin/qsearch"
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

median_of() {  # json file -> median_train_seconds_per_epoch
  "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["median_train_seconds_per_epoch"])' "$1"
}
acc_of() {  # json file -> the kept epoch's test accuracy (qsearch: val = test split)
  "$PY" -c 'import json,sys; d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(d["test_accuracy"] if "test_accuracy" in d else d["val_accuracy"])' "$1"
}
cpu_of() {  # /usr/bin/time -f "%U %S" output -> user + sys seconds
  "$PY" -c 'import sys; print(sum(map(float, open(sys.argv[1]).read().split()[-2:])))' "$1"
}
qs_run() {  # BINARY MODEL THREADS: one training run, its JSON in $TMP/qs.json, CPU in $TMP/cpu
  /usr/bin/time -f "%U %S" -o "$TMP/cpu" "$1" --threads "$3" train --model "$2" --dataset mnist --epochs "$EPOCHS" \
    --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 --val-split val \
    --out "$TMP/$2.onnx" --json > "$TMP/qs.json" 2> "$TMP/qs.log"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)'), BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
median() { "$PY" -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }

echo "recipe: MNIST train split (60000), batch 256, adam lr 1e-3, cosine; $REPS alternating runs of $EPOCHS epoch(s) per side, medians"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "$BASE" ]; then
  printf '%-11s %7s %14s %14s %8s\n' model threads qsearch_s/ep torch_s/ep speedup
else
  printf '%-11s %7s %12s %12s %12s %9s %9s %8s %8s %8s\n' model threads base_s/ep qsearch_s/ep \
    torch_s/ep new/base torch/qs base_acc qs_acc pt_acc
fi
cpu_rows=()
for model in $MODELS; do
  for t in "${THREADS[@]}"; do
    qs=()
    pt=()
    bs=()
    qc=()
    pc=()
    bc=()
    for _ in $(seq "$REPS"); do
      if [ -n "$BASE" ]; then
        qs_run "$BASE" "$model" "$t"
        bs+=("$(median_of "$TMP/qs.json")")
        bc+=("$(cpu_of "$TMP/cpu")")
        b_acc=$(acc_of "$TMP/qs.json")
      fi
      qs_run "$QS" "$model" "$t"
      qs+=("$(median_of "$TMP/qs.json")")
      qc+=("$(cpu_of "$TMP/cpu")")
      q_acc=$(acc_of "$TMP/qs.json")
      OMP_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE /usr/bin/time -f "%U %S" -o "$TMP/cpu" \
        "$PY" "$HERE/torch_train.py" --model "$model" \
        --dataset mnist --epochs "$EPOCHS" --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 \
        --threads "$t" --json > "$TMP/pt.json" 2> "$TMP/pt.log"
      pt+=("$(median_of "$TMP/pt.json")")
      pc+=("$(cpu_of "$TMP/cpu")")
      p_acc=$(acc_of "$TMP/pt.json")
      echo "  round: ${bs[*]:+base ${bs[-1]} s (cpu ${bc[-1]} s), }qsearch ${qs[-1]} s (cpu ${qc[-1]} s)," \
        "torch ${pt[-1]} s (cpu ${pc[-1]} s) (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
    cpu_rows+=("cpu s per whole run (median): $model, $t threads: ${bc[*]:+base $(median "${bc[@]}"), }qsearch $(median "${qc[@]}"), torch $(median "${pc[@]}")")
    q=$(median "${qs[@]}")
    p=$(median "${pt[@]}")
    if [ -z "$BASE" ]; then
      printf '%-11s %7s %14.2f %14.2f %7.2fx\n' "$model" "$t" "$q" "$p" \
        "$("$PY" -c "print($p / $q)")"
    else
      b=$(median "${bs[@]}")
      printf '%-11s %7s %12.2f %12.2f %12.2f %8.2fx %8.2fx %8.4f %8.4f %8.4f\n' "$model" "$t" "$b" \
        "$q" "$p" "$("$PY" -c "print($b / $q)")" "$("$PY" -c "print($p / $q)")" "$b_acc" "$q_acc" \
        "$p_acc"
    fi
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${cpu_rows[@]}"
