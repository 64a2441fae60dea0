#!/usr/bin/env bash
# Issue 14: the int engine against the float engine on torchvision-class CNNs (MobileNetV2,
# EfficientNet-B0, ResNet-18, RegNetX-400MF, SqueezeNet 1.1; random seeded weights, BatchNorm
# folded by the exporter) at
# 224x224 batch 16 and 32x32 batch 64, `qsearch eval --mode int` vs `--mode float`, the
# evaluation loop's samples_per_s (--json), 2 threads each.
#
#   bench/run_int_cnn.sh BUILD_DIR [OUT_DIR]      # e.g. bench/run_int_cnn.sh build
#   BASE=/path/to/old/qsearch bench/run_int_cnn.sh build   # also an older binary, same run
#
# bench/torch_cnn_models.py writes the ONNX files (opset 13, dynamic batch) and the data sets
# (cnn224.npz: 48 random inputs, cnn32.npz: 128) into OUT_DIR (default BUILD_DIR/bench_models/
# cnn). Quantized: every conv2d and linear at MASE's integer formats, data_in 8.4, weight 8.6,
# bias 16.8 (`by = "type"`, OUT_DIR/int8.toml); everything else (ReLU6 = Clip, SiLU = Sigmoid +
# Mul, adds, global average pool) is unquantized, as MASE leaves it.
#
# ROUNDS times, interleaved: per case, per binary (BASE first, if given, then BUILD_DIR's),
# int then float, one process each. Prints the load average before and after and a markdown
# table of medians (samples/s) and of the per-round int / float ratios per binary; raw lines go to
# OUT_DIR/int_cnn_results.tsv. With BASE, "int new / int base" compares the two int engines.
#
# Environment: THREADS (2), ROUNDS (3), CASES (MODEL:SIZE:BATCH, default every model at
#              224:16 and 32:64), BASE (unset), TIMEOUT (600 s per run).
set -euo pipefail
BUILD=${1:?usage: bench/run_int_cnn.sh BUILD_DIR [OUT_DIR]}
OUT=${2:-$BUILD/bench_models/cnn}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
MODELS="mobilenet_v2 efficientnet_b0 resnet18 regnet_x_400mf squeezenet1_1"
CASES=${CASES:-"$(for s in 224:16 32:64; do for m in $MODELS; do printf '%s:%s ' "$m" "$s"; done; done)"}
TIMEOUT=${TIMEOUT:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QS=$BUILD/bin/qsearch
[[ -x $QS ]] || { echo "$QS missing: cmake --build $BUILD --target qsearch" >&2; exit 1; }
BINS=("$QS")
if [[ -n ${BASE:-} ]]; then
  [[ -x $BASE ]] || { echo "BASE=$BASE is not an executable" >&2; exit 1; }
  BINS=("$BASE" "$QS")
fi
mkdir -p "$OUT"
if [[ ! -f $OUT/squeezenet1_1_32.onnx || ! -f $OUT/cnn224.npz || ! -f $OUT/cnn32.npz ]]; then
  /usr/bin/python3 "$ROOT/bench/torch_cnn_models.py" --out "$OUT" >/dev/null
fi
cp "$ROOT/bench/configs/int8_by_type.toml" "$OUT/int8.toml"
RES=$OUT/int_cnn_results.tsv
: >"$RES"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; ++r)); do
  for c in $CASES; do
    IFS=: read -r model size batch <<<"$c"
    for bi in "${!BINS[@]}"; do
      label=new
      [[ ${#BINS[@]} -eq 2 && $bi -eq 0 ]] && label=base
      for mode in int float; do
        sps=$(timeout "$TIMEOUT" "${BINS[$bi]}" --threads "$THREADS" eval \
                --model "$OUT/${model}_${size}.onnx" --dataset "npz:$OUT/cnn${size}.npz" \
                --quant "$OUT/int8.toml" --mode "$mode" --batch-size "$batch" --json |
              grep -o '"samples_per_s":[0-9.e+-]*' | cut -d: -f2) || sps=NaN
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$model" "$size" "$batch" "$label" "$mode" \
          "$sps" >>"$RES"
      done
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$RES" <<'PY'
import collections, math, statistics, sys
runs = collections.defaultdict(dict)  # (model, size, batch, label, mode) -> {round: samples/s}
for line in open(sys.argv[1]):
    r, model, size, batch, label, mode, sps = line.split()
    if sps != "NaN" and not math.isnan(float(sps)):
        runs[(model, size, batch, label, mode)][r] = float(sps)
def med(key):
    v = list(runs[key].values())
    return statistics.median(v) if v else float("nan")
def ratio(a, b):  # median over the rounds of a / b measured in the same round
    v = [runs[a][r] / runs[b][r] for r in runs[a] if r in runs[b]]
    return statistics.median(v) if v else float("nan")
labels = sorted({k[3] for k in runs}, key=lambda l: l != "base")
cases = list(dict.fromkeys(k[:3] for k in runs))
head = "| model | input | batch |"
for l in labels:
    head += f" float {l} | int {l} | **int / float {l}** |"
if len(labels) == 2:
    head += " int new / int base |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for m, s, b in cases:
    row = f"| {m} | {s}x{s} | {b} |"
    for l in labels:
        f, i = (m, s, b, l, "float"), (m, s, b, l, "int")
        row += f" {med(f):.2f} | {med(i):.2f} | **{ratio(i, f):.2f}** |"
    if len(labels) == 2:
        row += f" {ratio((m, s, b, 'new', 'int'), (m, s, b, 'base', 'int')):.2f}x |"
    print(row)
print(f"(samples/s: medians over {max(len(v) for v in runs.values())} rounds; ratios: medians "
      "of the per-round ratios of adjacent runs)")
PY
