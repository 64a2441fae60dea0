#!/usr/bin/env bash
# Torchvision-class models (issue 14, "Measure"): resnet18, mobilenet_v2 and efficientnet_b0 at
# 3x32x32 and 3x224x224, and the MLP 784-4096-4096-10, each at batch 1, 16 and 64: qsearch float
# vs PyTorch eager float, qsearch int vs qsearch float, qsearch int vs PyTorch with MASE's fake
# quantization, and the peak RSS of each process, in the same run.
#
#   bench/run_real_models.sh BUILD_DIR [OUT_DIR]     # e.g. bench/run_real_models.sh build
#   QUICK=1 bench/run_real_models.sh build           # one round, batch 16 only (a few minutes)
#
# Uses BUILD_DIR/bin/qsearch as it is (build it first: cmake --build build --target qsearch).
# The models and data are made once by bench/torch_real_models.py prepare into OUT_DIR (default
# BUILD_DIR/bench_models/real; remade only when the script's settings change): torchvision's
# architectures written out (torchvision is not installed), seeded random weights with
# torchvision's init, ONNX opset 13 with a dynamic batch and BatchNorm kept as nodes (exported
# with training=PRESERVE, do_constant_folding=False: MASE's semantics, BN stays float), random
# N(0,1) inputs. Samples per run N: 3x224x224 max(32, 2 * batch); 3x32x32 max(64, 8 * batch);
# MLP 256, 1024, 2048 for batch 1, 16, 64. Every qsearch run is a fresh process timed from its
# first batch (its start-up, the buffers' first page faults, is in the figure; PyTorch's passes
# follow a warm-up), so N holds at least two batches: with one batch of 16 at 224x224 the
# start-up was two thirds of ResNet-18's measured float time (session 11, BENCHMARKS.md).
# Quantized: MASE's integer formats on every conv2d and linear (by = "type"), data_in 8.4,
# weight 8.6, bias 16.8; BatchNorm, activations, pooling and adds stay float. PyTorch:
# bench/torch_fakequant_eval.py's quantize_transform (Conv2dInteger / LinearInteger).
#
# ROUNDS interleaved rounds; in each, per model and input size: qsearch `--threads T eval
# --json --mode float|int --batch-size B --num-samples N` (one process per batch and mode),
# then PyTorch (torch.set_num_threads(T), OMP/OPENBLAS_NUM_THREADS=T) in one process per
# PT_VARIANT running every batch, float and fake-quant, REPS timed passes after a warm-up on at
# most 8 samples, each pass cut short after the batch crossing PASS_BUDGET seconds (then timed as
# its quantize pass plus its evaluation scaled to N samples).
# PT_VARIANTS: "passive" (OMP_WAIT_POLICY=PASSIVE) and "default": on a loaded machine OpenMP's
# spinning can cost PyTorch 20x its speed; each row takes PyTorch's better one, and a later
# variant skips a case whose warm-up runs at under a third of an earlier variant's rate (it
# cannot win; this keeps a full run near 20 minutes on a loaded machine).
# Prints a markdown table of medians (bench/torch_real_models.py table); raw JSON lines are kept
# in OUT_DIR/real_models_results.jsonl.
#
# Environment: ENGINES ("qsearch torch": one side only with one of them), RESULTS (the raw
# results file, default OUT_DIR/real_models_results.jsonl; table it with
# bench/torch_real_models.py table FILE THREADS), THREADS (2), ROUNDS (2; QUICK=1: 1), REPS (1), MODELS ("resnet18
# mobilenet_v2 efficientnet_b0 mlp"), SIZES ("32 224"), BATCHES ("1 16 64"; QUICK=1: "16"),
# TIMEOUT (600 s per process), PT_VARIANTS ("passive default"), PASS_BUDGET (8: a PyTorch
# pass stops after the batch that crosses this many seconds; its rate is samples done / time).
set -euo pipefail
BUILD=${1:?usage: bench/run_real_models.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$BUILD/bench_models/real}
QUICK=${QUICK:-0}
THREADS=${THREADS:-2}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; REPS=${REPS:-1}; BATCHES=${BATCHES:-16}
else
  ROUNDS=${ROUNDS:-2}; REPS=${REPS:-1}; BATCHES=${BATCHES:-"1 16 64"}
fi
MODELS=${MODELS:-"resnet18 mobilenet_v2 efficientnet_b0 mlp"}
SIZES=${SIZES:-"32 224"}
TIMEOUT=${TIMEOUT:-600}
PT_VARIANTS=${PT_VARIANTS:-"passive default"}
ENGINES=${ENGINES:-"qsearch torch"}
PASS_BUDGET=${PASS_BUDGET:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
QS=$BUILD/bin/qsearch
[[ -x $QS ]] || { echo "$QS missing: cmake --build $BUILD --target qsearch" >&2; exit 1; }
mkdir -p "$OUT"
"$PY" "$ROOT/bench/torch_real_models.py" prepare --out "$OUT" >&2
cp "$ROOT/bench/configs/int8_by_type.toml" "$OUT/int8.toml"
RESULTS=${RESULTS:-$OUT/real_models_results.jsonl}
: >"$RESULTS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

loadavg() { cut -d' ' -f1 /proc/loadavg; }
# timed CMD...: runs CMD under /usr/bin/time -v; sets WALL (s), RSS (KB), RC and OUTPUT (the JSON
# lines CMD printed, as one JSON list).
timed() {
  local rc=0
  /usr/bin/time -v -o "$TMP/time" timeout "$TIMEOUT" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  RC=$rc
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
         for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$TMP/time")
  RSS=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
  OUTPUT=$("$PY" -c 'import json, sys
out = []
for line in open(sys.argv[1]):
    try:
        out.append(json.loads(line))
    except ValueError:
        pass
print(json.dumps(out))' "$TMP/out" 2>/dev/null || echo '[]')
  if [[ $rc -ne 0 ]]; then
    echo "  exit $rc: $*" >&2
    tail -n 3 "$TMP/err" >&2
  fi
}
# record ENGINE VARIANT MODEL HW MODE LOAD_BEFORE [BATCH]: appends the last timed run.
record() {
  printf '{"engine":"%s","variant":"%s","model":"%s","hw":"%s","mode":"%s","batch":%s,"rc":%d,"wall_s":%s,"max_rss_kb":%s,"load_before":%s,"load_after":%s,"out":%s}\n' \
    "$1" "$2" "$3" "$4" "$5" "${7:-null}" "$RC" "${WALL:-null}" "${RSS:-null}" "$6" \
    "$(loadavg)" "$OUTPUT" >>"$RESULTS"
}
samples() {  # samples HW BATCH
  case $1 in
    224) echo $((2 * $2 > 32 ? 2 * $2 : 32)) ;;
    32) echo $((8 * $2 > 64 ? 8 * $2 : 64)) ;;
    mlp) case $2 in 1) echo 256 ;; 16) echo 1024 ;; *) echo 2048 ;; esac ;;
  esac
}

start=$(date +%s)
for round in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    sizes=$SIZES
    [[ $m == mlp ]] && sizes=mlp
    for hw in $sizes; do
      if [[ $hw == mlp ]]; then
        model=$OUT/mlp.onnx; data=$OUT/mlp.npz
      else
        model=$OUT/${m}_$hw.onnx; data=$OUT/x$hw.npz
      fi
      cases=()
      for b in $BATCHES; do
        n=$(samples "$hw" "$b")
        cases+=("$b:$n")
        for mode in float int; do
          [[ " $ENGINES " == *" qsearch "* ]] || continue
          quant=()
          [[ $mode == int ]] && quant=(--quant "$OUT/int8.toml")
          echo "round $round/$ROUNDS $m $hw batch $b N $n: qsearch $mode ($(($(date +%s) - start)) s)" >&2
          l0=$(loadavg)
          timed "$QS" --threads "$THREADS" eval --model "$model" --dataset "npz:$data" \
            --batch-size "$b" --num-samples "$n" --mode "$mode" "${quant[@]}" --json
          OUTPUT=$(echo "$OUTPUT" | "$PY" -c 'import json, sys
out = json.load(sys.stdin)
for o in out:
    o["batch"], o["mode"] = int(sys.argv[1]), sys.argv[2]
print(json.dumps(out))' "$b" "$mode")
          record qsearch - "$m" "$hw" "$mode" "$l0" "$b"
        done
      done
      for v in $PT_VARIANTS; do
        [[ " $ENGINES " == *" torch "* ]] || continue
        envs=(OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
        [[ $v == passive ]] && envs+=(OMP_WAIT_POLICY=PASSIVE)
        echo "round $round/$ROUNDS $m $hw: PyTorch float + fake-quant ($v) ($(($(date +%s) - start)) s)" >&2
        l0=$(loadavg)
        cs=$(IFS=,; echo "${cases[*]}")
        timed env "${envs[@]}" "$PY" "$ROOT/bench/torch_real_models.py" run --model "$m" \
          --models "$OUT" --data "$data" --cases "$cs" --threads "$THREADS" --reps "$REPS" --pass-budget "$PASS_BUDGET" --reference "$RESULTS"
        record torch "$v" "$m" "$hw" both "$l0"
      done
    done
  done
done
echo "total $(($(date +%s) - start)) s" >&2

"$PY" "$ROOT/bench/torch_real_models.py" table "$RESULTS" "$THREADS"
