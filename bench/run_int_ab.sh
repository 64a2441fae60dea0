#!/usr/bin/env bash
# Interleaved A/B of two qsearch binaries on the torchvision-class models that
# bench/run_real_models.sh prepares (BatchNorm kept as nodes: MASE's semantics), `eval --mode
# int` of both binaries and `--mode float` of the new one, one process each, 2 threads.
#
#   BASE=/path/to/old/qsearch bench/run_int_ab.sh BUILD_DIR MODELS_DIR
#   e.g. BASE=/tmp/qsearch_main bench/run_int_ab.sh build /tmp/realb6
#
# MODELS_DIR holds MODEL_SIZE.onnx, xSIZE.npz and int8.toml (run_real_models.sh's OUT_DIR).
# Per round and case: base int, new int, new float (the order rotates each round). Prints the
# load average before and after, and per case the medians of samples/s and of the per-round
# ratios new int / base int and new int / new float. Raw lines: OUT (default
# MODELS_DIR/int_ab_results.tsv).
#
# Environment: ROUNDS (5), THREADS (2), CASES (MODEL:SIZE:BATCH:SAMPLES, default resnet18 and
# mobilenet_v2 at 224:16:48 and 32:64:512), OUT, BASE_FLOAT (1: also base float, and the table
# adds new float / base float; for changes that touch both engines).
set -euo pipefail
BUILD=${1:?usage: BASE=old/qsearch bench/run_int_ab.sh BUILD_DIR MODELS_DIR}
DIR=${2:?usage: BASE=old/qsearch bench/run_int_ab.sh BUILD_DIR MODELS_DIR}
BASE=${BASE:?set BASE to the binary to compare with}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
CASES=${CASES:-"resnet18:224:16:48 mobilenet_v2:224:16:48 resnet18:32:64:512 mobilenet_v2:32:64:512"}
OUT=${OUT:-$DIR/int_ab_results.tsv}
BASE_FLOAT=${BASE_FLOAT:-0}
QS=$BUILD/bin/qsearch
[[ -x $QS && -x $BASE ]] || { echo "need $QS and BASE=$BASE" >&2; exit 1; }
: >"$OUT"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() {  # BIN MODE MODEL SIZE BATCH SAMPLES -> samples/s
  local quant=()
  [[ $2 == int ]] && quant=(--quant "$DIR/int8.toml")
  "$1" --threads "$THREADS" eval --model "$DIR/${3}_$4.onnx" --dataset "npz:$DIR/x$4.npz" \
    --batch-size "$5" --num-samples "$6" --mode "$2" "${quant[@]}" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["samples_per_s"])'
}
for round in $(seq "$ROUNDS"); do
  for c in $CASES; do
    IFS=: read -r m s b n <<<"$c"
    runs=("base int" "new int" "new float")
    [[ $BASE_FLOAT == 1 ]] && runs+=("base float")
    for k in "${!runs[@]}"; do
      r=${runs[$(((k + round) % ${#runs[@]}))]}
      bin=$QS
      [[ $r == base* ]] && bin=$BASE
      v=$(run "$bin" "${r#* }" "$m" "$s" "$b" "$n")
      printf '%s\t%s\t%s\t%s\n' "$round" "$c" "$r" "$v" >>"$OUT"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$OUT" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, case, run, v = line.rstrip("\n").split("\t")
    rows[case].setdefault(rnd, {})[run] = float(v)
both = all("base float" in r for rounds in rows.values() for r in rounds.values())
extra = " base float | new float / base float |" if both else ""
print("| case | base int | new int | new float | new int / base int | new int / new float |" + extra)
print("|---|---|---|---|---|---|" + ("---|---|" if both else ""))
for case, rounds in rows.items():
    med = lambda key: statistics.median(r[key] for r in rounds.values())
    ratio = lambda a, b: statistics.median(r[a] / r[b] for r in rounds.values())
    line = (f"| {case} | {med('base int'):.2f} | {med('new int'):.2f} | {med('new float'):.2f} | "
            f"{ratio('new int', 'base int'):.2f}x | {ratio('new int', 'new float'):.2f}x |")
    if both:
        line += f" {med('base float'):.2f} | {ratio('new float', 'base float'):.2f}x |"
    print(line)
PY
