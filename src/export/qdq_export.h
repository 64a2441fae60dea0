// `qsearch export --format qdq` (docs/export.md "Format qdq"): the model as standard ONNX with a
// QuantizeLinear / DequantizeLinear pair wherever qsearch's fake mode quantizes
// (runtime/node_quant.h): each quantized node input (data_in, weight, bias) and a linear / conv's
// data_out. The model it writes computes what `--mode fake` computes (onnx/export_qdq.h has the
// format mapping and the widths QDQ can express).
#pragma once

#include <vector>

#include "ir/graph.h"
#include "onnx/export_qdq.h"
#include "quant/assignment.h"

namespace qsearch::exporter {

// Per graph node, what QDQ writes for q. Error naming the node when a quantized node rounds other
// than half to even (QuantizeLinear's only rounding).
std::vector<onnx::QdqNode> qdq_nodes(const ir::Graph& graph, const quant::QuantAssignment& q);

// The QDQ model (serialized) for q; Errors: qdq_nodes' and onnx::export_qdq's.
onnx::QdqModel export_qdq(const ir::Graph& graph, const quant::QuantAssignment& q);

}  // namespace qsearch::exporter
