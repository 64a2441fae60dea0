#!/usr/bin/env bash
# The int engine against fake quantization on convolutional models (issue 8, item 18): one
# quantized evaluation of the 10000 MNIST test images per trial (make_plan + evaluate, as a
# search trial), int and fake, for LeNet-5, the residual CNN and the MLP.
#
#   bench/run_int_conv.sh BUILD_DIR [BASELINE_BENCH_BINARY]
#
# Models: models/lenet5_mnist.onnx, bench/models/resnet_s_mnist.onnx (qsearch's zoo `resnet-s`
# trained one epoch, see BENCHMARKS.md), models/mlp_mnist.onnx. Configuration: every conv2d and
# linear node quantized with data_in s8.4, weight s8.6, bias s16.8 (FORMATS), everything else
# (ReLU, pooling, batch norm, add) unquantized. For each round, thread count and model the
# binaries run back to back (fake and int in one process; the baseline binary, when given, right
# after), so that the machine's load hits all alike. Prints the medians over all timed trials
# and the ratio fake / int (> 1: int is faster); raw JSON lines in
# BUILD_DIR/bench_models/int_conv_results.jsonl.
#
# Environment: THREADS (default "1 2"), REPS (5), ROUNDS (3), BATCH (256),
#              FORMATS ("--data-in 8.4 --weight 8.6 --bias 16.8").
set -euo pipefail
BUILD=${1:?usage: bench/run_int_conv.sh BUILD_DIR [BASELINE_BENCH_BINARY]}
BASE=${2:-}
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-256}
FORMATS=${FORMATS:-"--data-in 8.4 --weight 8.6 --bias 16.8"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=("$ROOT/models/lenet5_mnist.onnx" "$ROOT/bench/models/resnet_s_mnist.onnx"
        "$ROOT/models/mlp_mnist.onnx")
cmake --build "$BUILD" --target quant_eval_bench >/dev/null
mkdir -p "$BUILD/bench_models"
RESULTS=$BUILD/bench_models/int_conv_results.jsonl
: >"$RESULTS"
run() {  # label binary model threads
  # shellcheck disable=SC2086
  "$2" --model "$3" --ops linear,conv2d --threads "$4" --batch "$BATCH" --reps "$REPS" \
    --modes fake,int --table 0 $FORMATS |
    sed "s|^{|{\"label\": \"$1\", \"model\": \"$(basename "$3" .onnx)\", |" >>"$RESULTS"
}
for round in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    for m in "${MODELS[@]}"; do
      echo "round $round/$ROUNDS, $t thread(s), $(basename "$m")..." >&2
      run new "$BUILD/bin/quant_eval_bench" "$m" "$t"
      [[ -n $BASE ]] && run baseline "$BASE" "$m" "$t"
    done
  done
done
/usr/bin/python3 - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
cells = {}
for r in rows:
    cells.setdefault((r["model"], r["threads"], r["label"], r["mode"]), []).extend(r["trial_ms"])
print(f"{rows[0]['formats']}; ms per trial (make_plan + evaluate of {rows[0]['samples']} "
      f"images, batch {rows[0]['batch']}), medians over all trials; isa {rows[0]['isa']}")
print()
labels = sorted({k[2] for k in cells}, key=lambda l: l != "baseline")
print("| model | threads | " + " | ".join(f"{l} fake | {l} int | {l} fake / int" for l in labels)
      + " |")
print("|---|---|" + "---|---|---|" * len(labels))
for model in dict.fromkeys(k[0] for k in cells):
    for t in sorted({k[1] for k in cells if k[0] == model}):
        row = f"| {model} | {t} |"
        for l in labels:
            f, i = med(cells[(model, t, l, "fake")]), med(cells[(model, t, l, "int")])
            row += f" {f:.0f} | {i:.0f} | **{f / i:.2f}x** |"
        print(row)
acc = {(r["model"], r["label"], r["mode"]): r["accuracy"] for r in rows}
print()
print("top-1 accuracy: " + "; ".join(f"{m} {l} {mode} {a:.4f}" for (m, l, mode), a in acc.items()))
PYEOF
