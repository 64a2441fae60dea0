#!/usr/bin/env bash
# Users' models (issue 11): float and 8-bit quantized evaluation of the shipped ViT
# (models/vit-tiny_mnist.onnx, 1x28x28) and of a torchvision-style ResNet-18 (random seeded
# weights, BatchNorm kept as nodes) at 3x32x32 and 3x224x224, `qsearch eval` against PyTorch
# eager in the same run, with peak memory (/usr/bin/time -v, maximum resident set size).
#
#   bench/run_user_models.sh BUILD_DIR [OUT_DIR]     # e.g. bench/run_user_models.sh build
#
# Uses BUILD_DIR/bin/qsearch as it is (build it first: cmake --build build --target qsearch).
# bench/torch_user_models.py prepare writes the ResNet-18 ONNX file (opset 13, dynamic batch,
# BatchNormalization nodes not folded) and the .npz data sets into OUT_DIR (default
# BUILD_DIR/bench_models/users), so both sides evaluate the same samples:
#   vit   2048 MNIST test images (1x28x28), batch 256
#   r32   512 random inputs 3x32x32, batch 64
#   r224  32 random inputs 3x224x224, batch 16
# Quantized: MASE's integer formats on every linear, conv2d and matmul node (qsearch
# `--quant OUT_DIR/int8.toml`, by = "type"; PyTorch: bench/torch_fakequant_eval.py's
# quantize_transform, LinearInteger / Conv2dInteger / matmul_integer), data_in 8.4, weight 8.6,
# bias 16.8 (a matmul's operand 1 takes the weight format, as MASE's data_in_1 in qsearch's
# schema); BatchNorm, ReLU, pooling, adds, LayerNorm, softmax and GELU stay float.
#
# ROUNDS times, per model: qsearch `--threads T eval --mode float|fake|int` (one process each,
# whole process timed: start-up, ONNX import, .npz read, plan and evaluation), qsearch again on
# one batch only (--num-samples BATCH) to separate that fixed cost from the evaluation rate, then
# PyTorch (torch.set_num_threads(T), OMP/OPENBLAS_NUM_THREADS=T) float and fake-quant in one
# process each, REPS timed passes after a warm-up (fake: quantize pass + evaluation per pass).
# Prints a markdown table of medians and qsearch / PyTorch ratios; raw JSON lines are kept in
# OUT_DIR/user_models_results.jsonl.
#
# Environment: THREADS (2), ROUNDS (2), REPS (3), CASES ("vit r32 r224"), TIMEOUT (300 s per
#              qsearch run).
set -euo pipefail
BUILD=${1:?usage: bench/run_user_models.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$BUILD/bench_models/users}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-3}
CASES=${CASES:-"vit r32 r224"}
TIMEOUT=${TIMEOUT:-300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
QS=$BUILD/bin/qsearch
[[ -x $QS ]] || { echo "$QS missing: cmake --build $BUILD --target qsearch" >&2; exit 1; }
mkdir -p "$OUT"
if [[ ! -f $OUT/resnet18.onnx || ! -f $OUT/res224.npz ]]; then
  "$PY" "$ROOT/bench/torch_user_models.py" prepare --out "$OUT"
fi
cat >"$OUT/int8.toml" <<'EOF'
[passes.quantize]
by = "type"
[passes.quantize.default.config]
name = "NA"
[passes.quantize.linear.config]
name = "integer"
data_in_width = 8
data_in_frac_width = 4
weight_width = 8
weight_frac_width = 6
bias_width = 16
bias_frac_width = 8
[passes.quantize.conv2d.config]
name = "integer"
data_in_width = 8
data_in_frac_width = 4
weight_width = 8
weight_frac_width = 6
bias_width = 16
bias_frac_width = 8
[passes.quantize.matmul.config]
name = "integer"
data_in_width = 8
data_in_frac_width = 4
weight_width = 8
weight_frac_width = 6
EOF
RESULTS=$OUT/user_models_results.jsonl
: >"$RESULTS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

loadavg() { cut -d' ' -f1 /proc/loadavg; }
# timed NAME CMD...: runs CMD under /usr/bin/time -v; sets WALL (s), RSS (KB), RC, OUTPUT.
timed() {
  local rc=0
  /usr/bin/time -v -o "$TMP/time" timeout "$TIMEOUT" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  RC=$rc
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0;
         for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$TMP/time")
  RSS=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
  # The JSON object the command printed (qsearch --json, or the last line of the PyTorch side).
  OUTPUT=$("$PY" -c 'import json, sys
t = open(sys.argv[1]).read()
try:
    print(json.dumps(json.loads(t)))
except ValueError:
    lines = t.strip().splitlines()
    print(json.dumps(json.loads(lines[-1])) if lines else "")' "$TMP/out" 2>/dev/null || true)
  if [[ $rc -ne 0 ]]; then
    echo "  exit $rc: $*" >&2
    tail -n 3 "$TMP/err" >&2
  fi
}

for round in $(seq "$ROUNDS"); do
  for c in $CASES; do
    case $c in
      vit) model=$ROOT/models/vit-tiny_mnist.onnx; arch=vit; data=$OUT/vit28.npz; batch=256 ;;
      r32) model=$OUT/resnet18.onnx; arch=resnet18; data=$OUT/res32.npz; batch=64 ;;
      r224) model=$OUT/resnet18.onnx; arch=resnet18; data=$OUT/res224.npz; batch=16 ;;
      *) echo "unknown case $c (vit, r32, r224)" >&2; exit 1 ;;
    esac
    for mode in float fake int; do
      quant=()
      [[ $mode != float ]] && quant=(--quant "$OUT/int8.toml")
      for n in all one; do
        ns=()
        [[ $n == one ]] && ns=(--num-samples "$batch")
        echo "round $round/$ROUNDS $c qsearch $mode ($n)..." >&2
        l0=$(loadavg)
        timed "$QS" --threads "$THREADS" eval --model "$model" --dataset "npz:$data" \
          --batch-size "$batch" --mode "$mode" "${quant[@]}" "${ns[@]}" --json
        printf '{"engine":"qsearch","case":"%s","mode":"%s","part":"%s","rc":%d,"wall_s":%s,"max_rss_kb":%s,"load_before":%s,"load_after":%s,"out":%s}\n' \
          "$c" "$mode" "$n" "$RC" "${WALL:-null}" "${RSS:-null}" "$l0" "$(loadavg)" \
          "$( [[ $RC -eq 0 && -n $OUTPUT ]] && echo "$OUTPUT" || echo null)" >>"$RESULTS"
      done
    done
    for mode in float fake; do
      echo "round $round/$ROUNDS $c PyTorch $mode..." >&2
      l0=$(loadavg)
      timed env OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" "$PY" \
        "$ROOT/bench/torch_user_models.py" run --arch "$arch" --models "$OUT" --data "$data" \
        --mode "$mode" --threads "$THREADS" --batch "$batch" --reps "$REPS"
      printf '{"engine":"torch","case":"%s","mode":"%s","rc":%d,"wall_s":%s,"max_rss_kb":%s,"load_before":%s,"load_after":%s,"out":%s}\n' \
        "$c" "$mode" "$RC" "${WALL:-null}" "${RSS:-null}" "$l0" "$(loadavg)" \
        "$( [[ $RC -eq 0 && -n $OUTPUT ]] && echo "$OUTPUT" || echo null)" >>"$RESULTS"
    done
  done
done

"$PY" - "$RESULTS" "$THREADS" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
SAMPLES = {}
q, t, loads = {}, {}, []
for r in rows:
    loads += [r["load_before"], r["load_after"]]
    if r["rc"] != 0 or r["out"] is None:
        continue
    if r["engine"] == "torch":
        SAMPLES[r["case"]] = (r["out"]["samples"], r["out"]["batch"])
        d = t.setdefault((r["case"], r["mode"]), {"rate": [], "rss": [], "acc": None})
        d["rate"] += r["out"]["samples_per_s"]
        d["rss"].append(r["max_rss_kb"])
        d["acc"] = r["out"]["accuracy"]
    else:
        d = q.setdefault((r["case"], r["mode"]), {"all": [], "one": [], "rss": [], "acc": None})
        d[r["part"]].append(r["wall_s"])
        if r["part"] == "all":
            d["rss"].append(r["max_rss_kb"])
            d["acc"] = r["out"].get("accuracy")
failed = sorted({(r["case"], r["engine"], r["mode"]) for r in rows if r["rc"] != 0})
names = {"vit": "ViT-tiny 1x28x28", "r32": "ResNet-18 3x32x32", "r224": "ResNet-18 3x224x224"}
print(f"{sys.argv[2]} threads each side; samples/s (medians over runs); qsearch 'process' = "
      "samples / wall time of the whole `qsearch eval` process, 'eval' = (N - B) / (wall(N) - "
      "wall(one batch)), i.e. without start-up, import, data read and plan; PyTorch = timed "
      "passes inside one process (fake: quantize pass + evaluation); peak RSS in MB")
print()
print("| model | N / batch | mode | qsearch process | qsearch eval | PyTorch | ratio process "
      "| ratio eval | qsearch peak RSS | PyTorch peak RSS | top-1 qsearch / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in ("vit", "r32", "r224"):
    if c not in SAMPLES:
        continue
    n, b = SAMPLES[c]
    for mode, tmode in (("float", "float"), ("fake", "fake"), ("int", "fake")):
        if (c, mode) not in q or (c, tmode) not in t:
            continue
        d, e = q[(c, mode)], t[(c, tmode)]
        proc = n / med(d["all"])
        ev = (n - b) / max(med(d["all"]) - med(d["one"]), 1e-9) if d["one"] else float("nan")
        tr = med(e["rate"])
        label = {"float": "float vs float", "fake": "fake vs fake-quant",
                 "int": "**int** vs fake-quant"}[mode]
        qa = "?" if d["acc"] is None else f"{d['acc']:.4f}"
        print(f"| {names[c]} | {n} / {b} | {label} | {proc:,.1f} | {ev:,.1f} | {tr:,.1f} | "
              f"{proc / tr:.2f}x | {ev / tr:.2f}x | {med(d['rss']) / 1024:,.0f} | "
              f"{med(e['rss']) / 1024:,.0f} | {qa} / {e['acc']:.4f} |")
print()
print(f"load average (1 min) during the runs: min {min(loads):.2f}, median {med(loads):.2f}, "
      f"max {max(loads):.2f}")
if failed:
    print("failed or timed out: " + ", ".join(" ".join(f) for f in failed))
tr = next((r["out"] for r in rows if r["engine"] == "torch" and r["out"]), None)
if tr:
    print(f"PyTorch {tr['torch']}, BLAS: {', '.join(b for b in tr['blas'] if 'openblas' in b)}")
PYEOF
