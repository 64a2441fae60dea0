#include "eval/hardware_metrics.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/stopwatch.h"
#include "runtime/executor.h"
#include "runtime/node_quant.h"

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
  std::set<ir::ValueId> rnn_weights;
  for (const ir::Node& n : graph.nodes()) {
    std::string op = ir::mase_op(graph, n);
    const bool rnn = op == "gru" || op == "lstm";
    if (op != "linear" && op != "conv2d" && !rnn) continue;
    auto it = q.find(n.config_name);
    // MASE counts every module replaced by a quantized one, bypassed included (a bypassed
    // config has quantized == false but keeps its formats).
    if (it == q.end() || !(it->second.quantized || it->second.bypass) || !it->second.weight) {
      continue;
    }
    double elems = 1;
    if (rnn) {
      // Its weights, W and R, counted like a linear layer's (the same bits per element); once
      // when two nodes compute two outputs of one ONNX GRU / LSTM (they share W).
      if (!rnn_weights.insert(n.inputs[1]).second) continue;
      size += static_cast<double>(graph.value(n.inputs[1]).data.numel() +
                                  graph.value(n.inputs[2]).data.numel());
      bits += static_cast<double>(graph.value(n.inputs[1]).data.numel() +
                                  graph.value(n.inputs[2]).data.numel()) *
              it->second.weight->width;
      continue;
    }
    const Shape& w = graph.value(n.inputs[ir::weight_input(graph, n)]).shape;
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

std::vector<std::pair<std::string, int64_t>> model_size_bytes_by_node(
    const ir::Graph& graph, const quant::QuantAssignment& q) {
  // The formats each node reads its inputs in: the same resolution the engines use.
  const std::vector<runtime::NodeQuant> nqs = runtime::resolve_node_quant(graph, q);
  std::set<std::pair<ir::ValueId, int>> stored;  // (constant, bits) already counted
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const ir::Node& n = graph.nodes()[i];
    int64_t bytes = 0;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::ValueId v = n.inputs[k];
      if (v < 0 || !graph.value(v).is_constant()) continue;
      if (graph.value(v).data.dtype() != DType::kFloat32) continue;  // shapes, indices
      const std::optional<quant::FixedFormat>& f = nqs[i].inputs[k];
      const int bits = f ? f->width : 32;
      if (!stored.emplace(v, bits).second) continue;
      bytes += (graph.value(v).data.numel() * bits + 7) / 8;
    }
    // The bias of a MatMul linear lives in its Add (ir::linear_bias_add): counted with the linear,
    // as MASE's LinearInteger holds it (the owner comes first in graph order).
    if (const ir::NodeId owner = ir::bias_add_owner(graph, n); owner >= 0) {
      out[owner].second += bytes;
      bytes = 0;
    }
    out.emplace_back(n.config_name, bytes);
  }
  return out;
}

int64_t model_size_bytes(const ir::Graph& graph, const quant::QuantAssignment& q) {
  int64_t total = 0;
  for (const auto& [name, bytes] : model_size_bytes_by_node(graph, q)) total += bytes;
  return total;
}

std::vector<std::pair<std::string, OpCounts>> op_counts_by_node(const ir::Graph& graph,
                                                                const quant::QuantAssignment& q) {
  std::vector<std::pair<std::string, OpCounts>> out;
  std::vector<Shape> shapes = graph.infer_shapes(1);
  for (const ir::Node& n : graph.nodes()) {
    OpCounts c;
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
    const int64_t macs = ir::macs_per_sample(graph, n);
    if (macs > 0) {
      const double w_bits = cfg && cfg->weight ? cfg->weight->width : 32;
      const double a_bits = cfg && cfg->data_in ? cfg->data_in->width : 32;
      c.macs = static_cast<double>(macs);
      c.bitops = static_cast<double>(macs) * w_bits * a_bits;
    }
    out.emplace_back(n.config_name, c);
  }
  return out;
}

OpCounts op_counts(const ir::Graph& graph, const quant::QuantAssignment& q) {
  OpCounts total;
  for (const auto& [name, c] : op_counts_by_node(graph, q)) {
    total.macs += c.macs;
    total.bitops += c.bitops;
    total.activation_bits += c.activation_bits;
  }
  return total;
}

double measure_latency_ms(const std::shared_ptr<const runtime::Plan>& plan, const Tensor& input,
                          const LatencyOptions& options) {
  return measure_latency_ms(plan, std::vector<Tensor>{input}, options);
}

double measure_latency_ms(const std::shared_ptr<const runtime::Plan>& plan,
                          const std::vector<Tensor>& inputs, const LatencyOptions& options) {
  const int64_t b = options.batch_size;
  if (b < 1) fail("latency batch_size must be >= 1, got {}", b);
  if (b > plan->max_batch()) {
    fail("latency batch_size {} exceeds the plan's max_batch {}", b, plan->max_batch());
  }
  if (inputs.size() != plan->num_inputs()) {
    fail("the model has {} inputs, the latency measurement got {}", plan->num_inputs(),
         inputs.size());
  }
  runtime::Executor exec(plan);
  std::vector<Tensor> x;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& input = inputs[k];
    if (b > input.dim(0)) {
      fail("latency batch_size {} needs {} samples, got {}", b, b, input.dim(0));
    }
    Shape shape = plan->input_shape(k);
    shape[0] = b;
    x.push_back(input.rows(0, b).reshaped(shape));
    // Data of another dtype than the model's input (uint8 pixels, int32 ids): as evaluate does.
    if (x.back().dtype() != plan->input_dtype(k)) x.back() = x.back().to(plan->input_dtype(k));
  }
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
