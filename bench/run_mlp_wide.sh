#!/usr/bin/env bash
# The 784-4096-4096-10 MLP (issue 14 "Scheduling that fits the model"): qsearch float and int
# against PyTorch eager (float, and MASE's fake quantization), 2 threads, same run.
#
#   bench/run_mlp_wide.sh BUILD_DIR            # e.g. bench/run_mlp_wide.sh build
#
# Exports the model once (bench/torch_mlp_wide.py export, random seeded weights) into
# BUILD_DIR/bench_models, then ROUNDS times, for each batch size in BATCHES, runs back to back
# (interleaved): `qsearch eval` float with the schedule it chooses, float forced batch-parallel
# (the schedule before issue 14), int (configs/mnist_mlp_int8.toml: every linear 8-bit inputs
# and weights), and PyTorch eager float and fake-quantized (bench/torch_mlp_wide.py run, the
# better of OMP_WAIT_POLICY active/passive). Each qsearch number is one `qsearch eval` pass (its
# samples/s excludes import and planning); PyTorch's are REPS passes after a warm-up. Prints a
# table of medians and the load average; raw JSON lines in BUILD_DIR/bench_models/mlp_wide.jsonl.
#
# Environment: BATCHES (default "1 16 64 256"), ROUNDS (3), REPS (2), THREADS (2). Samples: 32
# at batch 1, 256 at batch 16, 512 above; PyTorch fake quantization from batch 16 on, passive
# OpenMP waiting only.
set -euo pipefail
BUILD=${1:?usage: bench/run_mlp_wide.sh BUILD_DIR}
BATCHES=${BATCHES:-"1 16 64 256"}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-2}
T=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODELS=$BUILD/bench_models
PY=/usr/bin/python3
Q=$BUILD/bin/qsearch
CONFIG=$ROOT/configs/mnist_mlp_int8.toml

if [[ ! -f $MODELS/mlp_wide.onnx ]]; then
  "$PY" "$ROOT/bench/torch_mlp_wide.py" export --out "$MODELS"
fi
RESULTS=$MODELS/mlp_wide.jsonl
: >"$RESULTS"
samples_for() { case $1 in 1) echo 32 ;; 16) echo 256 ;; *) echo 512 ;; esac; }
load() { cut -d' ' -f1 /proc/loadavg; }
for round in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    n=$(samples_for "$b")
    echo "round $round/$ROUNDS, batch $b ($n samples), load $(load)..." >&2
    for variant in "float auto" "float batch-parallel" "int auto"; do
      set -- $variant
      quant=()
      [[ $1 == int ]] && quant=(--quant "$CONFIG")
      "$Q" --threads "$T" eval --model "$MODELS/mlp_wide.onnx" --dataset mnist --num-samples "$n" \
        --batch-size "$b" --schedule "$2" "${quant[@]}" --json |
        "$PY" -c "import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({'engine':'qsearch','mode':'$1','schedule':'$2','batch':$b,'samples_per_s':[r['samples_per_s']],'loss':r['loss'],'load':$(load)}))" \
        >>"$RESULTS"
    done
    modes=(float)
    [[ $b -ge 16 ]] && modes+=(fake)  # fake quantization re-quantizes 16M weights per batch
    for mode in "${modes[@]}"; do
      waits=(ACTIVE PASSIVE)
      [[ $mode == fake ]] && waits=(PASSIVE)  # fake is slow; passive is the faster one when loaded
      for wait in "${waits[@]}"; do
        OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T OMP_WAIT_POLICY=$wait "$PY" \
          "$ROOT/bench/torch_mlp_wide.py" run --models "$MODELS" --mode "$mode" --threads "$T" \
          --batch "$b" --samples "$n" --reps "$REPS" >>"$RESULTS"
      done
    done
  done
done

"$PY" - "$RESULTS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs): return statistics.median(xs) if xs else float("nan")
runs = {}
for r in rows:
    if r["engine"] == "qsearch":
        key = (r["batch"], f"qsearch {r['mode']} {r['schedule']}")
    else:
        key = (r["batch"], f"torch {r['mode']} {r['env'].split('OMP_WAIT_POLICY=')[1].split()[0]}")
    runs.setdefault(key, []).extend(r["samples_per_s"])
loads = [r["load"] for r in rows if "load" in r]
print(f"2 threads, medians of samples/s; load average during the run {min(loads):.1f}-{max(loads):.1f}")
print()
print("| batch | PyTorch eager float | qsearch float (auto) | ratio | qsearch float batch-parallel "
      "| qsearch int (auto) | int / PyTorch float | PyTorch fake-quant | int / fake |")
print("|---|---|---|---|---|---|---|---|---|")
for b in sorted({k[0] for k in runs}):
    def best(mode):  # the faster OpenMP wait policy (medians), nan when not run
        meds = [med(runs[(b, f"torch {mode} {w}")]) for w in ("ACTIVE", "PASSIVE")
                if (b, f"torch {mode} {w}") in runs]
        return max(meds) if meds else float("nan")
    tf, tq = best("float"), best("fake")
    qf = med(runs[(b, "qsearch float auto")])
    qb = med(runs[(b, "qsearch float batch-parallel")])
    qi = med(runs[(b, "qsearch int auto")])
    print(f"| {b} | {tf:,.0f} | {qf:,.0f} | {qf / tf:.2f}x | {qb:,.0f} | {qi:,.0f} | {qi / tf:.2f}x "
          f"| {tq:,.0f} | {qi / tq:.2f}x |")
PYEOF
