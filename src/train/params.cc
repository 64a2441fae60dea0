#include "train/params.h"

#include <algorithm>

namespace qsearch::train {

bool is_trainable_input(const ir::Graph& graph, const ir::Node& node, size_t input_index) {
  if (input_index >= node.inputs.size()) return false;
  const ir::ValueId v = node.inputs[input_index];
  if (v < 0) return false;
  const ir::Value& value = graph.value(v);
  if (!value.is_constant() || value.dtype != DType::kFloat32) return false;
  switch (node.kind) {
    case ir::OpKind::kGemm:
    case ir::OpKind::kConv:
    case ir::OpKind::kConvTranspose:
      return input_index == 1 || input_index == 2;
    case ir::OpKind::kMatMul:
      return input_index == 1;
    case ir::OpKind::kBatchNorm:
    case ir::OpKind::kLayerNorm:
      return input_index == 1 || input_index == 2;
    case ir::OpKind::kAdd:
      return true;
    default:
      return false;
  }
}

std::vector<ir::ValueId> trainable_values(const ir::Graph& graph) {
  std::vector<ir::ValueId> out;
  for (const ir::Node& n : graph.nodes()) {
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (!is_trainable_input(graph, n, k)) continue;
      if (std::find(out.begin(), out.end(), n.inputs[k]) == out.end()) out.push_back(n.inputs[k]);
    }
  }
  return out;
}

std::vector<ir::ValueId> batchnorm_state_values(const ir::Graph& graph) {
  std::vector<ir::ValueId> out;
  for (const ir::Node& n : graph.nodes()) {
    if (n.kind != ir::OpKind::kBatchNorm) continue;
    out.push_back(n.inputs[3]);
    out.push_back(n.inputs[4]);
  }
  return out;
}

}  // namespace qsearch::train
