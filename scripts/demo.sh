#!/usr/bin/env bash
# The main job on the default data and model (what `make demo` runs after set-up and build):
#   1. the shipped MNIST MLP evaluated in float, then quantized to 8 bits by the integer engine;
#   2. the lab's comparison made exact: the default search space (configs/mnist_mlp.toml,
#      1728 per-layer fixed-point configurations) searched exhaustively by brute force, which
#      gives the true Pareto front of accuracy vs average bitwidth, and by TPE and random search
#      with 150 trials each;
#      and by the sensitivity strategy (per-layer probes, an additive model and an exact knapsack,
#      then local search around the measured front) with the same 150 trials, probes included;
#   3. `qsearch compare`: how close each got to the true front, and after how many trials;
#   4. the shipped ViT (models/vit-tiny_mnist.onnx): a short TPE search of its attention and MLP
#      formats (configs/vit_mixed.toml, 6 trials on 256 test images);
#   5. the FPGA cost model as an objective: NSGA-II over configs/mnist_fpga.toml (accuracy vs the
#      LUTs hls4ml's io_parallel design would use, configurations above 160k LUTs infeasible);
#   6. the TPE study as an HTML report (qsearch report --html) and the comparison as one
#      (qsearch compare --html); the last line prints the report's path.
# Outputs go to qsearch_output/demo/ (removed first, so the numbers are this run's).
set -euo pipefail
qsearch=${1:-build/bin/qsearch}
cd "$(dirname "$0")/.."
out=qsearch_output/demo
rm -rf "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Float model: qsearch eval --model models/mlp_mnist.onnx --dataset mnist"
"$qsearch" eval --model models/mlp_mnist.onnx --dataset mnist

step "8-bit integer engine: qsearch quantize --config configs/mnist_mlp_int8.toml"
"$qsearch" quantize --model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml \
  --dataset mnist

step "Brute force over all 1728 configurations (the true Pareto front)"
"$qsearch" search --config configs/mnist_mlp.toml --sampler bruteforce --trials 100000 \
  --out "$out/bruteforce" --quiet

step "TPE, 150 trials"
"$qsearch" search --config configs/mnist_mlp.toml --sampler tpe --trials 150 --seed 0 \
  --out "$out/tpe" --quiet

step "Random search, 150 trials"
"$qsearch" search --config configs/mnist_mlp.toml --sampler random --trials 150 --seed 0 \
  --out "$out/random" --quiet

step "Sensitivity strategy, 150 trials (37 per-layer probes included; table in sensitivity.json)"
"$qsearch" search --config configs/mnist_mlp.toml --sampler sensitivity --trials 150 --seed 0 \
  --out "$out/sensitivity" --quiet

step "Sample efficiency: qsearch compare"
"$qsearch" compare "$out/bruteforce" "$out/tpe" "$out/random" "$out/sensitivity"

step "ViT: attention projections, MLP linears and attention matmuls (configs/vit_mixed.toml, 6 trials)"
"$qsearch" search --config configs/vit_mixed.toml --trials 6 --num-samples 256 --seed 0 \
  --out "$out/vit" --quiet

step "FPGA cost as an objective: accuracy vs hls4ml LUTs, 160k-LUT budget (configs/mnist_fpga.toml, 30 trials)"
"$qsearch" search --config configs/mnist_fpga.toml --trials 30 --num-samples 256 --seed 0 \
  --out "$out/fpga" --quiet

printf '\nEach search left best.json, log.json (MASE layouts), trials.csv and study.db in %s/<sampler>/ (the ViT search in %s/vit/).\n' "$out" "$out"

step "HTML report (plots, one self-contained file): qsearch report --html, qsearch compare --html"
"$qsearch" compare "$out/bruteforce" "$out/tpe" "$out/random" "$out/sensitivity" \
  --html "$out/compare.html" >/dev/null
"$qsearch" report --out "$out/tpe" --html >/dev/null
printf '\nOpen the report in a browser (no network needed): %s/tpe/report.html\n' "$out"
