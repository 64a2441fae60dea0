#include "export/qdq_export.h"

#include "core/error.h"
#include "runtime/node_quant.h"

namespace qsearch::exporter {

namespace {

// MASE's group name of input i of a node of this kind, for messages.
std::string role(runtime::NodeQuant::Kind kind, size_t i) {
  using K = runtime::NodeQuant::Kind;
  if (kind == K::kRnn) return i == 0 ? "data_in" : i == 3 ? "bias" : "weight";  // X, W, R, B
  if (kind == K::kLinear || kind == K::kConv) {
    return i == 0 ? "data_in" : i == 2 || i == 3 ? "bias" : "weight";
  }
  if (kind == K::kMatMul) return i == 0 ? "data_in" : "weight";
  return "data_in";
}

onnx::QdqFormat qdq_format(const quant::FixedFormat& f, std::string r) {
  return {.width = f.width, .frac = f.frac, .is_signed = f.is_signed, .role = std::move(r)};
}

}  // namespace

std::vector<onnx::QdqNode> qdq_nodes(const ir::Graph& graph, const quant::QuantAssignment& q) {
  const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(graph, q);
  std::vector<onnx::QdqNode> out(nq.size());
  for (size_t k = 0; k < nq.size(); ++k) {
    if (!nq[k].quantized()) continue;
    const ir::Node& n = graph.nodes()[k];
    if (nq[k].rounding != quant::Rounding::kHalfToEven) {
      fail(
          "layer '{}' (node '{}', {}): rounds {}, but QuantizeLinear rounds half to even "
          "only; the qdq export cannot write it (use --format qonnx, or MASE's default rounding)",
          n.config_name.empty() ? n.name : n.config_name, n.name, ir::op_name(n.kind),
          quant::rounding_name(nq[k].rounding));
    }
    for (size_t i = 0; i < nq[k].inputs.size(); ++i) {
      out[k].inputs.push_back(nq[k].inputs[i]
                                  ? std::optional(qdq_format(*nq[k].inputs[i], role(nq[k].kind, i)))
                                  : std::nullopt);
    }
    if (nq[k].data_out) out[k].output = qdq_format(*nq[k].data_out, "data_out");
  }
  return out;
}

onnx::QdqModel export_qdq(const ir::Graph& graph, const quant::QuantAssignment& q) {
  return onnx::export_qdq(graph, qdq_nodes(graph, q));
}

}  // namespace qsearch::exporter
