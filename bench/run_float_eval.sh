#!/usr/bin/env bash
# Float eval throughput on the 10k MNIST test split, qsearch vs PyTorch eager (issue 2).
#
#   bench/run_float_eval.sh BUILD_DIR            # e.g. bench/run_float_eval.sh build
#
# Exports the two models once (bench/torch_float_eval.py export: a 784-256-128-10 MLP and the
# fixtures' residual CNN, briefly trained) into BUILD_DIR/bench_models, then, ROUNDS times, for
# each thread count in THREADS, runs qsearch (build/bin/float_eval_bench) and PyTorch
# (bench/torch_float_eval.py run) back to back, REPS timed passes each, same batch size, same
# thread count (set_num_threads / torch.set_num_threads). With more than one thread PyTorch runs
# in three environments, because on a shared machine its OpenMP and OpenBLAS threads behave very
# differently: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=t ("default"), the same plus
# OMP_WAIT_POLICY=PASSIVE ("passive"), and passive with OPENBLAS_NUM_THREADS=1 ("passive-blas1");
# the table compares against the best of them. Prints a table of medians over all passes and
# the qsearch / PyTorch ratio. Raw JSON lines are kept in
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
    variants=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t")
    if [[ $t -gt 1 ]]; then
      variants+=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE"
                 "OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE")
    fi
    for v in "${variants[@]}"; do
      env $v "$PY" "$ROOT/bench/torch_float_eval.py" run --models "$MODELS" --threads "$t" \
        --batch "$BATCH" --reps "$REPS" >>"$RESULTS"
    done
  done
done

"$PY" - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def variant(env):
    if "OMP_WAIT_POLICY=PASSIVE" not in env:
        return "default"
    return "passive-blas1" if "OPENBLAS_NUM_THREADS=1" in env else "passive"
torch, ours, acc = {}, {}, {}
for r in rows:
    acc[(r["engine"], r["model"])] = r["accuracy"]
    if r["engine"] == "torch":
        torch.setdefault((r["model"], r["threads"]), {}).setdefault(
            variant(r.get("env", "")), []).extend(r["samples_per_s"])
    else:
        ours.setdefault((r["model"], r["threads"], r["mode"]), []).extend(r["samples_per_s"])
print(f"batch {rows[0]['batch']}, {len(rows[0]['samples_per_s'])} timed passes per run, "
      f"medians over all runs, samples/s")
print()
print("| model | threads | PyTorch eager (best variant) | qsearch batch-parallel | ratio "
      "| qsearch intra-op | ratio | PyTorch variants |")
print("|---|---|---|---|---|---|---|---|")
for (model, threads), vs in sorted(torch.items(), key=lambda kv: (kv[0][0] != "mlp", kv[0][1])):
    meds = {v: statistics.median(x) for v, x in vs.items()}
    best = max(meds, key=meds.get)
    tm = meds[best]
    bp = statistics.median(ours[(model, threads, "batch-parallel")])
    io = statistics.median(ours[(model, threads, "intra-op")])
    others = ", ".join(f"{v} {m:,.0f}" for v, m in sorted(meds.items()))
    print(f"| {model} | {threads} | {tm:,.0f} ({best}) | {bp:,.0f} | {bp / tm:.2f}x | {io:,.0f} | "
          f"{io / tm:.2f}x | {others} |")
print()
print("top-1 accuracy (same weights): " + ", ".join(
    f"{m} qsearch {acc[('qsearch', m)]:.4f} / PyTorch {acc[('torch', m)]:.4f}"
    for m in ("mlp", "cnn")))
blas = {b for r in rows if r["engine"] == "torch" for b in r.get("blas", []) if "openblas" in b}
core = {e for r in rows if r["engine"] == "torch" for e in r.get("env", "").split()
        if e.startswith("OPENBLAS_CORETYPE")}
print("PyTorch " + rows[-1].get("torch", "?") + ", BLAS: " + (", ".join(sorted(blas)) or "?") +
      (" (" + ", ".join(sorted(core)) + ")" if core else "") + "; qsearch ISA: " +
      ", ".join(sorted({r["isa"] for r in rows if r["engine"] == "qsearch"})))
PYEOF
