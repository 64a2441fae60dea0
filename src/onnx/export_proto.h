// Internal to src/onnx: the ONNX exporter's ModelProto, for writers that extend the plain export
// (export_qdq.cc inserts QuantizeLinear/DequantizeLinear pairs into it).
#pragma once

#include <onnx/onnx_pb.h>

#include <vector>

#include "ir/graph.h"

namespace qsearch::onnx {

// The model export_model_bytes(graph, opset) serializes (checked by onnx.checker). When
// `node_begin` is given it receives, per ir node in graph order, the index of the first ONNX node
// written for it: ir node k became ONNX nodes [node_begin[k], node_begin[k + 1]) (one node, or
// several for a decomposed GELU / LayerNormalization).
::onnx::ModelProto export_model_proto(const ir::Graph& graph, int opset,
                                      std::vector<int>* node_begin = nullptr);

}  // namespace qsearch::onnx
