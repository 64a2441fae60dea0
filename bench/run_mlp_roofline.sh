#!/usr/bin/env bash
# Is the 784-4096-4096-10 MLP's float eval memory-bandwidth bound? Per round and batch (16, 64),
# interleaved: a streaming read of an 80 MB buffer by THREADS threads (bench/stream_read.c), then
# `qsearch eval` float and int (configs/mnist_mlp_int8.toml) and PyTorch eager float
# (bench/torch_mlp_wide.py, passive OpenMP wait). Weight traffic is 80.15 MB per batch, so the
# achieved weight bandwidth is samples/s / batch x 80.15 MB (BENCHMARKS.md "Issue 14: memory and
# the wide MLP's roofline").
#
#   bench/run_mlp_roofline.sh BUILD_DIR       # ROUNDS (2), THREADS (2)
set -euo pipefail
BUILD=${1:?usage: bench/run_mlp_roofline.sh BUILD_DIR}
ROUNDS=${ROUNDS:-2}
T=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
M=$BUILD/bench_models
Q=$BUILD/bin/qsearch
PY=/usr/bin/python3
[[ -f $M/mlp_wide.onnx ]] || "$PY" "$ROOT/bench/torch_mlp_wide.py" export --out "$M"
cc -O2 -mavx2 -pthread "$ROOT/bench/stream_read.c" -o "$M/stream_read"
sps() { "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); v=r["samples_per_s"]; print(max(v) if isinstance(v,list) else v)'; }
for round in $(seq "$ROUNDS"); do
  for b in 16 64; do
    n=$([[ $b == 16 ]] && echo 256 || echo 512)
    bw=$("$M/stream_read" 80 "$T" 10 | awk '{print $(NF-1)}')
    f=$("$Q" --threads "$T" eval --model "$M/mlp_wide.onnx" --dataset mnist --num-samples "$n" \
      --batch-size "$b" --json | sps)
    i=$("$Q" --threads "$T" eval --model "$M/mlp_wide.onnx" --dataset mnist --num-samples "$n" \
      --batch-size "$b" --quant "$ROOT/configs/mnist_mlp_int8.toml" --json | sps)
    t=$(OMP_NUM_THREADS=$T OMP_WAIT_POLICY=PASSIVE "$PY" "$ROOT/bench/torch_mlp_wide.py" run \
      --models "$M" --mode float --threads "$T" --batch "$b" --samples "$n" --reps 2 | sps)
    "$PY" -c "f=$f; b=$b; bw=$bw; print(f'round $round batch {b}: stream {bw} GB/s, qsearch float {f:.0f}/s = {f/b*0.08015:.2f} GB/s of weights ({f/b*0.08015/bw:.0%} of the stream), int $i/s, PyTorch float $t/s, load $(cut -d' ' -f1 /proc/loadavg)')"
  done
done
