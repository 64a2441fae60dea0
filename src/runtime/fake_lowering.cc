// Mode::kFake: MASE's fake quantization (node_quant.h) on the float kernels. Quantized constants
// are fake-quantized once, here, into a copy of the graph; activations pass through a
// FakeQuantizeStep before each quantized node, which then runs on its float kernel unfused (MASE
// computes each quantized op as one op: a Linear's bias is part of it, a following BatchNorm
// or Relu is not).
#include <map>
#include <memory>
#include <tuple>

#include <fmt/format.h>

#include "quant/quantize.h"
#include "runtime/lowering.h"
#include "runtime/node_quant.h"
#include "runtime/quant_steps.h"

namespace qsearch::runtime {

ir::Graph fake_quantized_graph(const ir::Graph& graph, const quant::QuantAssignment& q) {
  const std::vector<NodeQuant> nqs = resolve_node_quant(graph, q);
  ir::Graph fq = graph;  // shallow: untouched constants share their storage
  for (size_t i = 0; i < nqs.size(); ++i) {
    const NodeQuant& nq = nqs[i];
    if (!nq.quantized()) continue;
    const ir::Node& n = graph.nodes()[i];
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::ValueId v = n.inputs[k];
      if (!nq.inputs[k] || v < 0 || !graph.value(v).is_constant()) continue;
      const ir::Value& val = graph.value(v);
      if (val.data.dtype() != DType::kFloat32) continue;  // make_plan rejects it with the node
      Tensor data = quant::fake_quantize(val.data, *nq.inputs[k], nq.rounding);
      fq.nodes()[i].inputs[k] = fq.add_constant(
          fmt::format("{}~{}", val.name, quant::format_name(*nq.inputs[k])), std::move(data));
    }
  }
  return fq;
}

void lower_fake(PlanBuilder& b) {
  const ir::Graph& g = b.graph();
  const std::vector<NodeQuant> nqs = resolve_node_quant(g, b.options().quant);
  for (size_t i = 0; i < nqs.size(); ++i) {
    if (nqs[i].quantized()) b.set_fusion_barrier(g.nodes()[i]);
  }
  // One fake-quantized copy per (value, format, rounding), shared by the nodes that read it.
  std::map<std::tuple<ir::ValueId, int, int, bool, int>, SlotId> copies;
  auto fake_quantize = [&](ir::ValueId v, const quant::FixedFormat& f, quant::Rounding r,
                           const std::string& node) {
    const auto key = std::make_tuple(v, f.width, f.frac, f.is_signed, static_cast<int>(r));
    if (auto it = copies.find(key); it != copies.end()) return it->second;
    auto s = std::make_unique<FakeQuantizeStep>();
    s->node = node;
    s->format = f;
    s->rounding = r;
    s->inputs = {b.slot(v)};
    const SlotId out = b.new_slot(fmt::format("{}~{}", g.value(v).name, quant::format_name(f)),
                                  DType::kFloat32, b.shape(v));
    s->outputs = {out};
    b.add_step(std::move(s));
    copies[key] = out;
    return out;
  };

  for (size_t i = 0; i < nqs.size(); ++i) {
    const ir::Node& n = g.nodes()[i];
    if (b.is_fused(n)) continue;
    const NodeQuant& nq = nqs[i];
    if (!nq.quantized()) {
      lower_float(b, n);
      continue;
    }
    std::vector<std::pair<ir::ValueId, SlotId>> overrides;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::ValueId v = n.inputs[k];
      if (!nq.inputs[k] || v < 0 || g.value(v).is_constant()) continue;
      overrides.emplace_back(v, fake_quantize(v, *nq.inputs[k], nq.rounding, n.name));
    }
    for (const auto& [v, s] : overrides) b.override_slot(v, s);
    SlotId raw_out = kNoSlot;
    const ir::ValueId out = n.outputs[0];
    if (nq.data_out) {
      raw_out = b.new_slot(g.value(out).name + "~float", DType::kFloat32, b.shape(out));
      b.override_slot(out, raw_out);
    }
    lower_float(b, n);
    b.clear_overrides();
    if (nq.data_out) {
      auto s = std::make_unique<FakeQuantizeStep>();
      s->node = n.name;
      s->format = *nq.data_out;
      s->rounding = nq.rounding;
      s->inputs = {raw_out};
      s->outputs = {b.slot(out)};
      b.add_step(std::move(s));
    }
  }
}

}  // namespace qsearch::runtime
