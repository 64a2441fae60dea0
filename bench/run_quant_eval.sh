#!/usr/bin/env bash
# Time to evaluate one quantized configuration of the MNIST MLP on the 10k test split (issue 4):
# qsearch int and fake (plan creation included: the real per-trial cost) against PyTorch
# fake-quant with MASE's semantics (the MASE-equivalent per-trial cost), side by side; then the
# lab report's table made real (packed model size and measured int-engine latency per width).
#
#   bench/run_quant_eval.sh BUILD_DIR            # e.g. bench/run_quant_eval.sh build
#
# Model: models/mlp_mnist.onnx (784-256-128-10, shipped); if it is missing, the MLP exported by
# bench/torch_float_eval.py into BUILD_DIR/bench_models. Configuration (every linear layer, ReLUs
# unquantized, as the trials of configs/mnist_mlp.toml): FORMATS (default data_in s8.4, weight
# s8.6, bias s16.8). ROUNDS times, for each thread count in THREADS, runs qsearch
# (BUILD_DIR/bin/quant_eval_bench: REPS timed trials per mode after a warm-up trial) and PyTorch
# (bench/torch_fakequant_eval.py, REPS timed trials) back to back, same batch size, same thread
# count. With more than one thread PyTorch runs in the three environments of
# bench/run_float_eval.sh (default / OMP passive / passive with single-threaded OpenBLAS) and the
# best one is compared. Prints markdown tables of medians over all trials; raw JSON lines are
# kept in BUILD_DIR/bench_models/quant_eval_results.jsonl.
#
# Environment: THREADS (default "1 2"), BATCH (256), REPS (7), ROUNDS (3),
#              FORMATS ("--data-in 8.4 --weight 8.6 --bias 16.8").
set -euo pipefail
BUILD=${1:?usage: bench/run_quant_eval.sh BUILD_DIR}
THREADS=${THREADS:-"1 2"}
BATCH=${BATCH:-256}
REPS=${REPS:-7}
ROUNDS=${ROUNDS:-3}
FORMATS=${FORMATS:-"--data-in 8.4 --weight 8.6 --bias 16.8"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
MODEL=$ROOT/models/mlp_mnist.onnx
if [[ ! -f $MODEL ]]; then
  MODEL=$BUILD/bench_models/mlp.onnx
  [[ -f $MODEL ]] || "$PY" "$ROOT/bench/torch_float_eval.py" export --out "$BUILD/bench_models"
fi
mkdir -p "$BUILD/bench_models"
cmake --build "$BUILD" --target quant_eval_bench >/dev/null
RESULTS=$BUILD/bench_models/quant_eval_results.jsonl
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $round/$ROUNDS, $t thread(s)..." >&2
    table=0
    [[ $round -eq 1 ]] && table=1
    # shellcheck disable=SC2086
    "$BUILD/bin/quant_eval_bench" --model "$MODEL" --threads "$t" --batch "$BATCH" --reps "$REPS" \
      $FORMATS --table "$table" >>"$RESULTS"
    variants=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t")
    if [[ $t -gt 1 ]]; then
      variants+=("OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE"
                 "OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE")
    fi
    for v in "${variants[@]}"; do
      # shellcheck disable=SC2086
      env $v "$PY" "$ROOT/bench/torch_fakequant_eval.py" --model "$MODEL" --threads "$t" \
        --batch "$BATCH" --reps "$REPS" $FORMATS >>"$RESULTS"
    done
  done
done

"$PY" - "$RESULTS" "$MODEL" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
def variant(env):
    if "OMP_WAIT_POLICY=PASSIVE" not in env:
        return "default"
    return "passive-blas1" if "OPENBLAS_NUM_THREADS=1" in env else "passive"
ours, plan, torch, torch_float, acc = {}, {}, {}, {}, {}
table = {}
for r in rows:
    if r.get("table") == "width":
        table.setdefault(r["threads"], []).append(r)
    elif r["engine"] == "qsearch":
        ours.setdefault((r["threads"], r["mode"]), []).extend(r["trial_ms"])
        plan.setdefault((r["threads"], r["mode"]), []).extend(r["plan_ms"])
        acc[r["mode"]] = r["accuracy"]
    else:
        torch.setdefault(r["threads"], {}).setdefault(variant(r["env"]), []).extend(r["trial_ms"])
        torch_float.setdefault(r["threads"], {}).setdefault(variant(r["env"]), []).extend(
            r["float_eval_ms"])
        acc["torch"] = r["accuracy"]
first = next(r for r in rows if r["engine"] == "qsearch" and "mode" in r)
print(f"model {sys.argv[2]}, {first['formats']} on every linear layer (ReLUs float), "
      f"{first['samples']} test images, batch {first['batch']}; ms per trial, medians over all "
      f"trials (qsearch: make_plan + evaluate; PyTorch: quantize pass + evaluation)")
print()
print("| threads | qsearch int | of which make_plan | qsearch fake | qsearch float | "
      "PyTorch fake-quant (MASE) | PyTorch float eager | PyTorch fake-quant / qsearch int |")
print("|---|---|---|---|---|---|---|---|")
for t in sorted(torch):
    tq = {v: med(x) for v, x in torch[t].items()}
    best = min(tq, key=tq.get)
    tf = min(med(x) for x in torch_float[t].values())
    i = med(ours[(t, "int")])
    print(f"| {t} | {i:.1f} | {med(plan[(t, 'int')]):.2f} | {med(ours[(t, 'fake')]):.1f} | "
          f"{med(ours[(t, 'float')]):.1f} | {tq[best]:.1f} ({best}) | {tf:.1f} | "
          f"**{tq[best] / i:.1f}x** |")
print()
print("top-1 accuracy: qsearch int {int:.4f}, fake {fake:.4f}, float {float:.4f}; "
      "PyTorch fake-quant {torch:.4f}".format(**acc))
print()
for t, rs in sorted(table.items()):
    b = [k for k in rs[0] if k.startswith("latency_ms_per_sample_batch")][0]
    print(f"uniform formats (data_in = weight = bias), int engine, {t} thread(s):")
    print()
    print("| (width, frac) | average_bitwidth | model size (bytes) | vs float32 | latency batch 1 "
          f"(us) | per sample at batch {b.rsplit('batch', 1)[1]} (us) | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for r in rs:
        print(f"| ({r['width']}, {r['frac']}) | {r['average_bitwidth']:g} | "
              f"{r['model_size_bytes']:,} | {r['float32_bytes'] / r['model_size_bytes']:.1f}x "
              f"smaller | {r['latency_ms_batch1'] * 1e3:.1f} | {r[b] * 1e3:.2f} | "
              f"{r['accuracy']:.4f} |")
    print()
t = next(r for r in rows if r["engine"] == "torch")
print(f"PyTorch {t['torch']}, BLAS: {', '.join(b for b in t['blas'] if 'openblas' in b)}; "
      f"qsearch ISA: {first['isa']}")
PYEOF
