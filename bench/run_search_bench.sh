#!/usr/bin/env bash
# Wall time of a full TPE search on the MNIST MLP, qsearch vs a MASE-equivalent PyTorch + Optuna
# loop, side by side in one run (issue 5; the product's headline figure is the time per trial).
#
#   bench/run_search_bench.sh BUILD_DIR            # e.g. bench/run_search_bench.sh build
#
# Both sides run the default search, configs/mnist_mlp.toml, as shipped: models/mlp_mnist.onnx,
# per-layer formats of fc1..fc3 (17 MASE index parameters, 1728 configurations), accuracy (max)
# and average bitwidth (min) as two objectives, TPE with its defaults and seed SEED, TRIALS trials
# (default 100), n_jobs 1, each trial on the first 1024 MNIST test images in batches of 256.
# qsearch: `qsearch --threads T search ...` (int engine, SQLite study committed per trial, also
# the model_size runner that PyTorch does not run). PyTorch: bench/torch_optuna_search.py
# (MASE's fake-quant LinearInteger, in-memory study). ROUNDS times, for each thread count in
# THREADS, the two run back to back; with more than one thread PyTorch runs in the three
# environments of bench/run_float_eval.sh and the best is compared. Reported per side, medians
# over rounds: process wall time (start to exit: imports, model and data loading included), the
# search loop alone (qsearch: first trial's start to last trial's end from study.db; PyTorch:
# study.optimize), and loop time per trial.
#
# Environment: THREADS (default "1 2"), TRIALS (100), ROUNDS (3), SEED (0).
set -euo pipefail
BUILD=${1:?usage: bench/run_search_bench.sh BUILD_DIR}
THREADS=${THREADS:-"1 2"}
TRIALS=${TRIALS:-100}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
QSEARCH=$BUILD/bin/qsearch
[[ -x $QSEARCH ]] || { echo "run_search_bench.sh: $QSEARCH not built (make build)" >&2; exit 2; }
WORK=$BUILD/bench_models/search_bench
RESULTS=$WORK/results.jsonl
mkdir -p "$WORK"
: >"$RESULTS"
cd "$ROOT"

now_ns() { date +%s%N; }

for round in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $round/$ROUNDS, $t thread(s)..." >&2
    out=$WORK/qsearch_r${round}_t$t
    rm -rf "$out"
    start=$(now_ns)
    "$QSEARCH" --threads "$t" search --config configs/mnist_mlp.toml --sampler tpe \
      --trials "$TRIALS" --seed "$SEED" --out "$out" --quiet >/dev/null
    end=$(now_ns)
    "$PY" - "$out" "$t" "$start" "$end" >>"$RESULTS" <<'PYEOF'
import csv, json, sqlite3, sys
from datetime import datetime
out, t, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
db = sqlite3.connect(f"{out}/study.db")
first, last, n = db.execute(
    "select min(datetime_start), max(datetime_complete), count(*) from trials").fetchone()
rows = list(csv.DictReader(open(f"{out}/trials.csv")))
points = {(round(float(r["accuracy"]), 6), round(float(r["average_bitwidth"]), 6)) for r in rows}
front = sorted(p for p in points
               if not any(q != p and q[0] >= p[0] and q[1] <= p[1] for q in points))
print(json.dumps({"engine": "qsearch", "threads": t, "trials": n,
                  "process_s": (end - start) / 1e9, "optimize_s": (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds(),
                  "trial_eval_ms": [float(r["duration_ms"]) for r in rows],
                  "front": [{"accuracy": a, "average_bitwidth": b} for a, b in front]}))
PYEOF
    variants=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t")
    if [[ $t -gt 1 ]]; then
      variants+=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE"
                 "OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE")
    fi
    for v in "${variants[@]}"; do
      # shellcheck disable=SC2086
      env $v "$PY" bench/torch_optuna_search.py --model models/mlp_mnist.onnx --trials "$TRIALS" \
        --threads "$t" --seed "$SEED" >>"$RESULTS"
    done
  done
done

"$PY" - "$RESULTS" "$TRIALS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
trials = int(sys.argv[2])
med = statistics.median
def variant(env):
    if "OMP_WAIT_POLICY=PASSIVE" not in env:
        return "default"
    return "passive-blas1" if "OPENBLAS_NUM_THREADS=1" in env else "passive"
ours, torch = {}, {}
for r in rows:
    if r["engine"] == "qsearch":
        ours.setdefault(r["threads"], []).append(r)
    else:
        torch.setdefault(r["threads"], {}).setdefault(variant(r["env"]), []).append(r)
print(f"configs/mnist_mlp.toml, TPE seed 0, {trials} trials, 1024 test images per trial; "
      "seconds, medians over rounds (loop = the trials themselves; process = also start-up)")
print()
print("| threads | qsearch process | qsearch loop | qsearch ms/trial | PyTorch+Optuna process | "
      "PyTorch+Optuna loop | PyTorch+Optuna ms/trial | ratio process | ratio loop |")
print("|---|---|---|---|---|---|---|---|---|")
for t in sorted(ours):
    qp = med(r["process_s"] for r in ours[t])
    ql = med(r["optimize_s"] for r in ours[t])
    best = min(torch[t], key=lambda v: med(r["optimize_s"] for r in torch[t][v]))
    tp = med(r["process_s"] for r in torch[t][best])
    tl = med(r["optimize_s"] for r in torch[t][best])
    print(f"| {t} | {qp:.2f} | {ql:.2f} | {ql / trials * 1e3:.1f} | {tp:.2f} | {tl:.2f} "
          f"({best}) | {tl / trials * 1e3:.1f} | **{tp / qp:.1f}x** | **{tl / ql:.1f}x** |")
print()
q = ours[min(ours)][0]
p = next(iter(torch[min(torch)].values()))[0]
print(f"qsearch: median evaluation per trial {med(q['trial_eval_ms']):.1f} ms (trials.csv "
      f"duration_ms); PyTorch: median trial {med(p['trial_ms']):.1f} ms, of which Optuna's "
      f"suggestions {med(p['suggest_ms']):.1f} ms")
def fmt(front):
    return ", ".join(f"({f['accuracy']:.4f}, {f['average_bitwidth']:.3f})" for f in front)
print()
print(f"Pareto fronts found (accuracy, average bitwidth), round 1, {min(ours)} thread(s):")
print(f"- qsearch: {fmt(q['front'])}")
print(f"- PyTorch + Optuna: {fmt(p['front'])}")
print()
print(f"PyTorch {p['torch']}, Optuna {p['optuna']}, BLAS: "
      f"{', '.join(b for b in p['blas'] if 'openblas' in b)}")
PYEOF
