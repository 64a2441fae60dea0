#!/usr/bin/env bash
# Issue 14 (branch smallmap): qsearch's int engine against its float engine on ResNet-18 at
# 3x32x32 (maps 16, 8, 4, 2, 1 after the stem), batches 1, 16 and 64, and optionally older
# binaries in the same run: `qsearch --threads T eval --mode float|int --json`, the evaluation
# loop's samples_per_s, one process each, interleaved (per round, per batch, per binary: float
# then int). Prints the load average range and, per batch and binary, the median samples/s of
# each mode and the median of the per-round int / float ratios (each binary's own float run of
# the same minute).
#
#   bench/run_int_small_maps.sh MODEL_DIR BIN [BIN...]
#   ROUNDS=5 bench/run_int_small_maps.sh /tmp/realb6 /tmp/old/qsearch build/bin/qsearch
#
# MODEL_DIR holds resnet18_32.onnx, x32.npz and int8.toml as bench/run_real_models.sh writes them
# (BatchNorm kept as nodes; conv2d / linear at data_in 8.4, weight 8.6, bias 16.8).
# Environment: ROUNDS (5), THREADS (2), BATCHES ("1 16 64"), RESULTS (raw lines, default a
# temporary file). Samples per run: 256 at batch 1, 512 at 16, 1024 at 64.
set -euo pipefail
DIR=${1:?usage: bench/run_int_small_maps.sh MODEL_DIR BIN [BIN...]}
shift
(($# > 0)) || { echo "usage: bench/run_int_small_maps.sh MODEL_DIR BIN [BIN...]" >&2; exit 1; }
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-"1 16 64"}
RESULTS=${RESULTS:-$(mktemp)}
: >"$RESULTS"
for r in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    n=$((b == 1 ? 256 : (b <= 16 ? 512 : 1024)))
    for i in $(seq $#); do
      bin=${!i}
      for m in float int; do
        q=()
        [[ $m == int ]] && q=(--quant "$DIR/int8.toml")
        load=$(cut -d' ' -f1 /proc/loadavg)
        sps=$("$bin" --threads "$THREADS" eval --model "$DIR/resnet18_32.onnx" \
          --dataset "npz:$DIR/x32.npz" --batch-size "$b" --num-samples "$n" --mode "$m" \
          "${q[@]}" --json 2>/dev/null |
          /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["samples_per_s"])')
        echo "$r $b $i $m $sps $load" >>"$RESULTS"
      done
    done
  done
done
/usr/bin/python3 - "$RESULTS" "$@" <<'PY'
import collections, statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
bins = sys.argv[2:]
sps, pair = collections.defaultdict(list), collections.defaultdict(dict)
for r, b, i, m, s, _ in rows:
    sps[(b, i, m)].append(float(s))
    pair[(r, b, i)][m] = float(s)
ratio = collections.defaultdict(list)
for (r, b, i), v in pair.items():
    ratio[(b, i)].append(v["int"] / v["float"])
loads = [float(x[5]) for x in rows]
print(f"load average {min(loads)}-{max(loads)} (median {st.median(loads)}), {len(pair)} pairs")
print("| batch | binary | float samples/s | int samples/s | int / float (median) | per round |")
print("|---:|---|---:|---:|---:|---|")
for b in dict.fromkeys(x[1] for x in rows):
    for i in dict.fromkeys(x[2] for x in rows):
        rs = " ".join(f"{x:.2f}" for x in ratio[(b, i)])
        print(f"| {b} | {bins[int(i) - 1]} | {st.median(sps[(b, i, 'float')]):.1f} | "
              f"{st.median(sps[(b, i, 'int')]):.1f} | {st.median(ratio[(b, i)]):.2f} | {rs} |")
PY
