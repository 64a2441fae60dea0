#!/usr/bin/env bash
# Float eval throughput on the 10k MNIST test split, qsearch vs PyTorch eager (issue 2).
#
#   bench/run_float_eval.sh BUILD_DIR            # e.g. bench/run_float_eval.sh build
#
# Exports the two models once (bench/torch_float_eval.py export: a 784-256-128-10 MLP and the
# fixtures' residual CNN, briefly trained) into BUILD_DIR/bench_models, then, ROUNDS times, for
# each thread count in THREADS, runs qsearch (build/bin/float_eval_bench) and PyTorch
# (bench/torch_float_eval.py run) back to back, REPS timed passes each, same batch size, same
# thread count (set_num_threads / torch.set_num_threads, OMP/OpenBLAS env too). Prints a table
# of medians over all passes and the qsearch / PyTorch ratio. Raw JSON lines are kept in
# BUILD_DIR/bench_models/float_eval_results.jsonl.
#
# Environment: THREADS (default "1 2"), BATCH (256), REPS (5), ROUNDS (3).
set -euo pipefail
BUILD=${1:?usage: bench/run_float_eval.sh BUILD_DIR}
THREADS=${THREADS:-"1 2"}
BATCH=${BATCH:-256}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=$BUILD/bench_models
PY=/usr/bin/python3

if [[ ! -f $MODELS/mlp.onnx || ! -f $MODELS/cnn.onnx ]]; then
  "$PY" "$ROOT/bench/torch_float_eval.py" export --out "$MODELS"
fi
cmake --build "$BUILD" --target float_eval_bench >/dev/null
RESULTS=$MODELS/float_eval_results.jsonl
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $round/$ROUNDS, $t thread(s)..." >&2
    "$BUILD/bin/float_eval_bench" --model "mlp=$MODELS/mlp.onnx" --model "cnn=$MODELS/cnn.onnx" \
      --threads "$t" --batch "$BATCH" --reps "$REPS" >>"$RESULTS"
    OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t MKL_NUM_THREADS=$t \
      "$PY" "$ROOT/bench/torch_float_eval.py" run --models "$MODELS" --threads "$t" \
      --batch "$BATCH" --reps "$REPS" >>"$RESULTS"
  done
done

"$PY" - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = lambda r: (r["model"], r["threads"])
torch = {}
for r in rows:
    if r["engine"] == "torch":
        torch.setdefault(key(r), []).extend(r["samples_per_s"])
ours = {}
acc = {}
for r in rows:
    acc[(r["engine"], r["model"])] = r["accuracy"]
    if r["engine"] == "qsearch":
        ours.setdefault(key(r) + (r["mode"],), []).extend(r["samples_per_s"])
print(f"batch {rows[0]['batch']}, {len(rows[0]['samples_per_s'])} passes per run, medians over "
      f"all runs (samples/s)")
print(f"| model | threads | PyTorch eager | qsearch batch-parallel | ratio | qsearch intra-op | ratio |")
print(f"|---|---|---|---|---|---|---|")
for (model, threads), t in sorted(torch.items(), key=lambda kv: (kv[0][0] != "mlp", kv[0][1])):
    tm = statistics.median(t)
    bp = statistics.median(ours[(model, threads, "batch-parallel")])
    io = statistics.median(ours[(model, threads, "intra-op")])
    print(f"| {model} | {threads} | {tm:,.0f} | {bp:,.0f} | {bp / tm:.2f}x | {io:,.0f} | "
          f"{io / tm:.2f}x |")
print("top-1 accuracy (same weights): " + ", ".join(
    f"{m} qsearch {acc[('qsearch', m)]:.4f} / PyTorch {acc[('torch', m)]:.4f}"
    for m in ("mlp", "cnn")))
blas = {b for r in rows if r["engine"] == "torch" for b in r.get("blas", [])}
print("PyTorch BLAS: " + (", ".join(sorted(blas)) or "?") + "; qsearch ISA: " +
      ", ".join(sorted({r["isa"] for r in rows if r["engine"] == "qsearch"})))
PYEOF
