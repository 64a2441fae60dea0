#!/usr/bin/env bash
# Peak memory against issue 14's goal, 1.5 x (W + A): W = the model's float32 parameter bytes
# (`qsearch inspect --json` params x 4), A = the plan's activation buffers for one batch
# (`qsearch eval --json` activation_bytes_per_batch; a search uses its int eval's A). Import alone:
# 1.5 x W. Peak = /usr/bin/time -v's maximum resident set size of the process. The table of
# docs/architecture.md "Memory", reproducible in one command:
#
#   bench/run_memory.sh BUILD_DIR MODELS_DIR       # e.g. bench/run_memory.sh build /tmp/realb9
#
# MODELS_DIR is bench/run_real_models.sh's OUT_DIR (resnet18_224.onnx, x224.npz, mlp.onnx: made
# by `/usr/bin/python3 bench/torch_real_models.py prepare --out DIR`; int8.toml: a copy of
# bench/configs/int8_by_type.toml, as run_real_models.sh makes it). Runs, 2 threads (THREADS):
#   ResNet-18 3x224x224: import; eval float and int 8-bit, batch 16, 32 samples of x224.npz;
#     search, int, by type: conv2d weight 4 / 6 / 8 bits and linear 4 / 8 (data_in 8.4, bias
#     16.8), 32 samples, batch 16, random sampler seed 0, after 1, 3 and 6 trials.
#   MLP 784-4096-4096-10: import; eval float and int, batch 16, 256 MNIST samples; search, int,
#     weights 4 or 8 bits, 256 samples, batch 16, after 1, 3 and 8 trials.
# MB = 2^20 bytes throughout. Memory does not depend on the machine's load. Each search runs in a
# fresh output directory under WORK (default a mktemp directory, removed at the end).
#
# Environment: THREADS (2), CASES ("resnet18 mlp"), WORK.
set -euo pipefail
BUILD=${1:?usage: bench/run_memory.sh BUILD_DIR MODELS_DIR}
DIR=${2:?usage: bench/run_memory.sh BUILD_DIR MODELS_DIR}
THREADS=${THREADS:-2}
CASES=${CASES:-"resnet18 mlp"}
QS=$BUILD/bin/qsearch
[[ -x $QS ]] || { echo "$QS missing: cmake --build $BUILD --target qsearch" >&2; exit 1; }
for f in resnet18_224.onnx x224.npz mlp.onnx int8.toml; do
  [[ -f $DIR/$f ]] || { echo "$DIR/$f missing: see the header of $0" >&2; exit 1; }
done
WORK=${WORK:-$(mktemp -d)}
CLEAN=${WORK}
trap 'rm -rf "$CLEAN"' EXIT
mkdir -p "$WORK"

peak_mb() {  # LABEL CMD... -> runs CMD, prints its peak RSS in MB (stdout kept in WORK/LABEL.out)
  local label=$1
  shift
  if ! /usr/bin/time -v "$@" >"$WORK/$label.out" 2>"$WORK/$label.time"; then
    echo "$label failed:" >&2
    tail -5 "$WORK/$label.time" >&2
    exit 1
  fi
  awk '/Maximum resident set size/ {printf "%.1f", $NF / 1024}' "$WORK/$label.time"
}
json_field() {  # FILE FIELD
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
row() {  # RUN W_MB A_MB PEAK_MB
  awk -v run="$1" -v w="$2" -v a="$3" -v p="$4" 'BEGIN {
    goal = 1.5 * (w + a)
    printf "| %s | %.0f MB | %s | %.1f MB | %.0f MB: %s |\n", run, w, (a == 0 ? "" : sprintf("%.0f MB", a)),
      p, goal, (p <= goal ? "met" : sprintf("missed by %.1f MB", p - goal))
  }'
}
seed() {  # OP WIDTHS: a by-type seed quantizing OP's weights at WIDTHS (data_in 8.4, bias 16.8)
  cat <<EOF
[search.search_space.seed.$1.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = [4]
weight_width = [$2]
weight_frac_width = [6]
bias_width = [16]
bias_frac_width = [8]
EOF
}
search_config() {  # MODEL DATASET SAMPLES CONV_WIDTHS LINEAR_WIDTHS
  cat <<EOF
model = "$1"
dataset = "$2"
batch_size = 16
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
EOF
  [[ -z $4 ]] || seed conv2d "$4"
  seed linear "$5"
  cat <<EOF
[search.strategy.sw_runner.basic_evaluation]
num_samples = $3
mode = "int"
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
sampler = "random"
seed = 0
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 1.0
average_bitwidth.direction = "minimize"
EOF
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | W | A | peak RSS | 1.5 x (W + A) |"
echo "|---|---|---|---|---|"
for c in $CASES; do
  case $c in
    resnet18)
      name="ResNet-18 224"
      model=$DIR/resnet18_224.onnx data=npz:$DIR/x224.npz samples=32 trials="1 3 6"
      conv="4, 6, 8" linear="4, 8"
      ;;
    mlp)
      name="MLP 784-4096-4096-10"
      model=$DIR/mlp.onnx data=mnist samples=256 trials="1 3 8" conv="" linear="4, 8"
      ;;
    *) echo "unknown case $c (resnet18, mlp)" >&2; exit 1 ;;
  esac
  p=$(peak_mb "$c.import" "$QS" inspect --model "$model" --json)
  w=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["params"] * 4 / 2**20)' "$WORK/$c.import.out")
  row "$name: import (\`qsearch inspect\`)" "$w" 0 "$p"
  for mode in float int; do
    quant=()
    [[ $mode == int ]] && quant=(--quant "$DIR/int8.toml")
    p=$(peak_mb "$c.$mode" "$QS" --threads "$THREADS" eval --model "$model" --dataset "$data" \
      --mode "$mode" "${quant[@]}" --batch-size 16 --num-samples "$samples" --json)
    a=$(json_field "$WORK/$c.$mode.out" activation_bytes_per_batch)
    a=$(awk -v a="$a" 'BEGIN {print a / 2^20}')
    row "$name: eval $mode, batch 16, $samples samples" "$w" "$a" "$p"
  done
  search_config "$model" "$data" "$samples" "$conv" "$linear" >"$WORK/$c.search.toml"
  for t in $trials; do
    p=$(peak_mb "$c.search$t" "$QS" --threads "$THREADS" search --config "$WORK/$c.search.toml" \
      --trials "$t" --out "$WORK/$c.search$t" --quiet)
    row "$name: search, $t trial(s)" "$w" "$a" "$p"
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
