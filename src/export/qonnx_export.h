// `qsearch export --format qonnx` (docs/export.md): the model with QONNX Quant nodes wherever the
// fake engine quantizes (runtime/node_quant.h), written by onnx/qonnx.h.
#pragma once

#include <string>

#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::exporter {

// The serialized QONNX model of `graph` quantized by `q` (opset 13). Errors: what
// onnx::export_qonnx_bytes refuses, and a GRU / LSTM with formats (naming the node).
std::string qonnx_model_bytes(const ir::Graph& graph, const quant::QuantAssignment& q);

}  // namespace qsearch::exporter
