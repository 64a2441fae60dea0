// bench-deps: eval train
// Cost of one FPGA cost-model estimate (eval/fpga_cost.h), what the fpga hw_runner adds to
// every trial: the hls4ml tutorial's jet tagger (jsc-hls4ml, 4,256 weights) and the MNIST-sized
// MLP (mlp, 235,146 weights) with every Dense layer at 8-bit weights and inputs.
//
//   build/bin/fpga_cost_bench [--reps 200]
//
// One line per model: median microseconds per estimate over `reps` estimates.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/stopwatch.h"
#include "eval/fpga_cost.h"
#include "ir/graph.h"
#include "train/zoo.h"

int main(int argc, char** argv) {
  int reps = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
  }
  for (const char* name : {"jsc-hls4ml", "mlp"}) {
    const qsearch::ir::Graph g = qsearch::train::build_model(name, {.seed = 0});
    qsearch::quant::QuantAssignment q;
    for (const qsearch::ir::Node& n : g.nodes()) {
      if (qsearch::ir::mase_op(g, n) != "linear") continue;
      q[n.config_name] = {.quantized = true,
                          .data_in = qsearch::quant::FixedFormat{8, 4, true},
                          .weight = qsearch::quant::FixedFormat{8, 6, true},
                          .bias = qsearch::quant::FixedFormat{16, 8, true}};
    }
    std::vector<double> us;
    int64_t sink = 0;
    for (int r = 0; r < reps; ++r) {
      qsearch::Stopwatch w;
      const qsearch::eval::FpgaCost c = qsearch::eval::estimate_fpga_cost(g, q, {});
      us.push_back(w.seconds() * 1e6);
      sink += c.lut;
    }
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    std::printf("%-12s %8.1f us per estimate (median of %d; total LUT %lld)\n", name,
                us[us.size() / 2], reps, static_cast<long long>(sink / reps));
  }
  return 0;
}
