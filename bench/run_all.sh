#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md, one after the other (what `make bench` runs after
# `scripts/setup.sh --bench` and `make build`):
#
#   bench/run_all.sh BUILD_DIR
#
# Each script prints markdown tables; all of it is also written to BUILD_DIR/bench_results.md,
# headed by the machine (CPU model, cores) and the commit, ready to be copied into BENCHMARKS.md.
# Takes about an hour on 2 cores (training and the fuzz-free parts); run one script alone for
# one section.
set -euo pipefail
BUILD=${1:?usage: bench/run_all.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cmake -S . -B "$BUILD" -DQSEARCH_BUILD_BENCH=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" >/dev/null
REPORT=$BUILD/bench_results.md
{
  echo "# Benchmark results"
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores;" \
       "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(date -u +%Y-%m-%d)"
} >"$REPORT"
run() {
  local title=$1; shift
  printf '\n## %s\n\n`%s`\n\n' "$title" "$*" | tee -a "$REPORT"
  "$@" | tee -a "$REPORT"
}
run "Sampler overhead (issue 5)" bench/run_sampler_overhead.sh "$BUILD"
run "Full search (issue 5)" bench/run_search_bench.sh "$BUILD"
run "Quantized evaluation (issue 4)" bench/run_quant_eval.sh "$BUILD"
run "Float eval throughput (issue 2)" bench/run_float_eval.sh "$BUILD"
run "Training time per epoch (issue 3)" bench/run_train_bench.sh "$BUILD"
run "Training parity (issue 3)" bench/train_parity.sh "$BUILD"
echo "Written to $REPORT" >&2
