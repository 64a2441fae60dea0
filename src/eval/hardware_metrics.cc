#include "eval/hardware_metrics.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/stopwatch.h"
#include "runtime/executor.h"

namespace qsearch::eval {

namespace {
const quant::NodeQuantConfig* find(const quant::QuantAssignment& q, const std::string& name) {
  auto it = q.find(name);
  return it == q.end() || !it->second.quantized || it->second.bypass ? nullptr : &it->second;
}
}  // namespace

BitwidthMetrics average_bitwidth(const ir::Graph& graph, const quant::QuantAssignment& q,
                                 double compare_to) {
  double bits = 0, size = 0;
  for (const ir::Node& n : graph.nodes()) {
    std::string op = ir::mase_op(graph, n);
    if (op != "linear" && op != "conv2d") continue;
    auto it = q.find(n.config_name);
    // MASE counts every module replaced by a quantized one, bypassed included.
    if (it == q.end() || !it->second.quantized || !it->second.weight) continue;
    const Shape& w = graph.value(n.inputs[ir::weight_input(graph, n)]).shape;
    double elems = 1;
    if (op == "linear") {
      elems = static_cast<double>(w[0]) * static_cast<double>(w[1]);
    } else {
      const auto& c = std::get<ir::ConvAttrs>(n.attrs);
      // in_channels * out_channels * k * k, i.e. groups ignored, as MASE does.
      elems = static_cast<double>(w[1] * c.group) * static_cast<double>(w[0]) *
              static_cast<double>(w[2] * w[3]);
    }
    size += elems;
    bits += elems * it->second.weight->width;
  }
  BitwidthMetrics m;
  m.average_bitwidth = bits == 0 ? 32.0 : bits / size;
  m.memory_density = compare_to / m.average_bitwidth;
  return m;
}

OpCounts op_counts(const ir::Graph& graph, const quant::QuantAssignment& q) {
  OpCounts c;
  std::vector<Shape> shapes = graph.infer_shapes(1);
  for (const ir::Node& n : graph.nodes()) {
    const quant::NodeQuantConfig* cfg = find(q, n.config_name);
    if (cfg && cfg->data_in) {
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        ir::ValueId v = n.inputs[k];
        if (v < 0 || graph.value(v).is_constant()) continue;
        // matmul's second activation operand takes the weight format (MASE's matmul_integer).
        int width = cfg->data_in->width;
        if (k == 1 && ir::mase_op(graph, n) == "matmul" && cfg->weight) width = cfg->weight->width;
        c.activation_bits += static_cast<double>(shape_numel(shapes[v])) * width;
      }
    }
    int64_t macs = ir::macs_per_sample(graph, n);
    if (macs == 0) continue;
    double w_bits = cfg && cfg->weight ? cfg->weight->width : 32;
    double a_bits = cfg && cfg->data_in ? cfg->data_in->width : 32;
    c.macs += static_cast<double>(macs);
    c.bitops += static_cast<double>(macs) * w_bits * a_bits;
  }
  return c;
}

double measure_latency_ms(const std::shared_ptr<const runtime::Plan>& plan, const Tensor& input,
                          const LatencyOptions& options) {
  const int64_t b = std::min({options.batch_size, plan->max_batch(), input.dim(0)});
  if (b < 1) fail("latency measurement needs at least one sample");
  runtime::Executor exec(plan);
  Shape shape = plan->input_shape();
  shape[0] = b;
  const Tensor x = input.rows(0, b).reshaped(shape);
  exec.run(x);  // warm-up: caches, page faults, lazily started pool threads
  std::vector<double> times;
  for (int r = 0; r < std::max(1, options.repeats); ++r) {
    Stopwatch w;
    exec.run(x);
    times.push_back(w.seconds());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2] * 1000.0 / static_cast<double>(b);
}

}  // namespace qsearch::eval
