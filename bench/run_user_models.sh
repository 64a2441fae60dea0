#!/usr/bin/env bash
# Users' models (issue 11): float and 8-bit quantized evaluation of the shipped ViT
# (models/vit-tiny_mnist.onnx, 1x28x28) and of a torchvision-style ResNet-18 (random seeded
# weights, BatchNorm kept as nodes) at 3x32x32 and 3x224x224, `qsearch eval` against PyTorch
# eager in the same run, with peak memory (/usr/bin/time -v, maximum resident set size).
#
#   bench/run_user_models.sh BUILD_DIR [OUT_DIR]     # e.g. bench/run_user_models.sh build
#
# Uses BUILD_DIR/bin/qsearch as it is (build it first: cmake --build build --target qsearch).
# bench/torch_user_models.py prepare writes the ResNet-18 ONNX files (opset 13, one per input
# size, dynamic batch, BatchNormalization nodes not folded) and the .npz data sets into OUT_DIR (default
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
# ROUNDS times, per model: qsearch `--threads T eval --mode float|fake|int` (one process each;
# both the whole process's wall time, i.e. start-up, ONNX import, .npz read, plan and
# evaluation, and the evaluation loop's own samples_per_s from --json are kept), then PyTorch
# (torch.set_num_threads(T), OMP/OPENBLAS_NUM_THREADS=T) float and fake-quant in one process
# each, REPS timed passes after a warm-up (fake: MASE's quantize pass + evaluation per pass).
# Prints a markdown table of medians and of best runs (the least disturbed on a shared machine)
# with the qsearch / PyTorch ratios; raw JSON lines are kept in OUT_DIR/user_models_results.jsonl.
#
# PyTorch runs in PT_VARIANTS environments: "default" (OMP_NUM_THREADS = OPENBLAS_NUM_THREADS =
# T) and "passive" (the same plus OMP_WAIT_POLICY=PASSIVE: on a loaded shared machine OpenMP's
# spinning workers can cost PyTorch several times its speed, see bench/run_float_eval.sh); each
# row compares against PyTorch's better variant (highest median), named in the table.
#
# Environment: THREADS (2), ROUNDS (2), REPS (3), CASES ("vit r32 r224"), TIMEOUT (300 s per
#              run), PT_VARIANTS ("default passive").
set -euo pipefail
BUILD=${1:?usage: bench/run_user_models.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$BUILD/bench_models/users}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-3}
CASES=${CASES:-"vit r32 r224"}
TIMEOUT=${TIMEOUT:-300}
PT_VARIANTS=${PT_VARIANTS:-"default passive"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
QS=$BUILD/bin/qsearch
[[ -x $QS ]] || { echo "$QS missing: cmake --build $BUILD --target qsearch" >&2; exit 1; }
mkdir -p "$OUT"
if [[ ! -f $OUT/resnet18_224.onnx || ! -f $OUT/res224.npz ]]; then
  "$PY" "$ROOT/bench/torch_user_models.py" prepare --out "$OUT"
fi
{
  cat "$ROOT/bench/configs/int8_by_type.toml"
  cat <<'EOF'
[passes.quantize.matmul.config]
name = "integer"
data_in_width = 8
data_in_frac_width = 4
weight_width = 8
weight_frac_width = 6
EOF
} >"$OUT/int8.toml"
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
      r32) model=$OUT/resnet18_32.onnx; arch=resnet18; data=$OUT/res32.npz; batch=64 ;;
      r224) model=$OUT/resnet18_224.onnx; arch=resnet18; data=$OUT/res224.npz; batch=16 ;;
      *) echo "unknown case $c (vit, r32, r224)" >&2; exit 1 ;;
    esac
    for mode in float fake int; do
      quant=()
      [[ $mode != float ]] && quant=(--quant "$OUT/int8.toml")
      echo "round $round/$ROUNDS $c qsearch $mode..." >&2
      l0=$(loadavg)
      timed "$QS" --threads "$THREADS" eval --model "$model" --dataset "npz:$data" \
        --batch-size "$batch" --mode "$mode" "${quant[@]}" --json
      printf '{"engine":"qsearch","case":"%s","mode":"%s","rc":%d,"wall_s":%s,"max_rss_kb":%s,"load_before":%s,"load_after":%s,"out":%s}\n' \
        "$c" "$mode" "$RC" "${WALL:-null}" "${RSS:-null}" "$l0" "$(loadavg)" \
        "$( [[ $RC -eq 0 && -n $OUTPUT ]] && echo "$OUTPUT" || echo null)" >>"$RESULTS"
    done
    for mode in float fake; do
      for v in $PT_VARIANTS; do
        envs=(OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
        [[ $v == passive ]] && envs+=(OMP_WAIT_POLICY=PASSIVE)
        echo "round $round/$ROUNDS $c PyTorch $mode ($v)..." >&2
        l0=$(loadavg)
        timed env "${envs[@]}" "$PY" "$ROOT/bench/torch_user_models.py" run --arch "$arch" \
          --models "$OUT" --data "$data" --mode "$mode" --threads "$THREADS" --batch "$batch" \
          --reps "$REPS"
        printf '{"engine":"torch","variant":"%s","case":"%s","mode":"%s","rc":%d,"wall_s":%s,"max_rss_kb":%s,"load_before":%s,"load_after":%s,"out":%s}\n' \
          "$v" "$c" "$mode" "$RC" "${WALL:-null}" "${RSS:-null}" "$l0" "$(loadavg)" \
          "$( [[ $RC -eq 0 && -n $OUTPUT ]] && echo "$OUTPUT" || echo null)" >>"$RESULTS"
      done
    done
  done
done

"$PY" - "$RESULTS" "$THREADS" <<'PYEOF'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
SAMPLES, q, t, loads = {}, {}, {}, []
for r in rows:
    loads += [r["load_before"], r["load_after"]]
    if r["rc"] != 0 or r["out"] is None:
        continue
    o = r["out"]
    if r["engine"] == "torch":
        SAMPLES[r["case"]] = (o["samples"], o["batch"])
        d = t.setdefault((r["case"], r["mode"]), {}).setdefault(
            r.get("variant", "default"), {"rate": [], "rss": []})
        d["rate"] += o["samples_per_s"]
    else:
        d = q.setdefault((r["case"], r["mode"]), {"proc": [], "rate": [], "rss": []})
        d["proc"].append(o["samples"] / r["wall_s"])
        d["rate"].append(o.get("samples_per_s", float("nan")))
    d["rss"].append(r["max_rss_kb"])
    d["acc"], d["loss"] = o.get("accuracy"), o.get("loss")
failed = sorted({(r["case"], r["engine"], r["mode"]) for r in rows if r["rc"] != 0})
names = {"vit": "ViT-tiny 1x28x28", "r32": "ResNet-18 3x32x32", "r224": "ResNet-18 3x224x224"}
print(f"{sys.argv[2]} threads each side; samples/s, median (best) over all runs. qsearch "
      "'process' = samples / wall time of the whole `qsearch eval` process (start-up, ONNX "
      "import, .npz read, plan, evaluation); 'eval' = the evaluation loop's samples_per_s "
      "(--json); PyTorch = its better thread variant (default / passive OpenMP wait policy), "
      "timed passes inside one process (fake-quant: MASE's quantize pass + "
      "evaluation per pass). Ratios = qsearch / PyTorch, median/median (best/best). Peak RSS "
      "(MB) = /usr/bin/time -v maximum resident set size of the process.")
print()
print("| model | N / batch | qsearch mode vs PyTorch | qsearch process | qsearch eval | PyTorch "
      "| ratio process | ratio eval | peak RSS qsearch / PyTorch | top-1 qsearch / PyTorch "
      "| loss qsearch / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
mx = max
for c in ("vit", "r32", "r224"):
    if c not in SAMPLES:
        continue
    n, b = SAMPLES[c]
    for mode, tmode in (("float", "float"), ("fake", "fake"), ("int", "fake")):
        if (c, mode) not in q or (c, tmode) not in t:
            continue
        d = q[(c, mode)]
        vname = max(t[(c, tmode)], key=lambda v: med(t[(c, tmode)][v]["rate"]))
        e = t[(c, tmode)][vname]
        label = {"float": "float vs float", "fake": "fake vs fake-quant",
                 "int": "**int** vs fake-quant"}[mode]
        acc = ("-" if e["acc"] is None or d["acc"] is None
               else f"{d['acc']:.4f} / {e['acc']:.4f}")
        print(f"| {names[c]} | {n} / {b} | {label} | {med(d['proc']):,.1f} ({mx(d['proc']):,.1f}) "
              f"| {med(d['rate']):,.1f} ({mx(d['rate']):,.1f}) "
              f"| {med(e['rate']):,.1f} ({mx(e['rate']):,.1f}) {vname} "
              f"| {med(d['proc']) / med(e['rate']):.2f}x ({mx(d['proc']) / mx(e['rate']):.2f}x) "
              f"| **{med(d['rate']) / med(e['rate']):.2f}x** "
              f"({mx(d['rate']) / mx(e['rate']):.2f}x) "
              f"| {med(d['rss']) / 1024:,.0f} / {med(e['rss']) / 1024:,.0f} | {acc} "
              f"| {d['loss']:.5f} / {e['loss']:.5f} |")
print()
print(f"load average (1 min) before/after each run: min {min(loads):.2f}, median "
      f"{med(loads):.2f}, max {max(loads):.2f}")
if failed:
    print("failed or timed out: " + ", ".join(" ".join(f) for f in failed))
tr = next((r["out"] for r in rows if r["engine"] == "torch" and r["out"]), None)
if tr:
    print(f"PyTorch {tr['torch']}, BLAS: "
          f"{', '.join(os.path.basename(b) for b in tr['blas'] if 'libopenblas' in b)}")
PYEOF
