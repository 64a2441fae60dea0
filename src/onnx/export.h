// ONNX export: writes an ir::Graph as an ONNX model.
//
// The model uses the default ONNX domain at `opset` (11..17, 13 by default) and passes
// onnx.checker. Mapping (docs/onnx.md):
//   - graph inputs/outputs keep their names; dims that are kDynamic become dim_param "batch";
//   - constants read by nodes become initializers (raw little-endian data, bit for bit);
//   - each ir node becomes one ONNX node of the same op type and name, its attributes written in
//     full; inputs that ONNX takes as tensors become extra initializers: Reshape's shape
//     ("<node>/shape"), Clip's min/max, Dropout's ratio (opset >= 12);
//   - config names are stored in the model metadata ("qsearch.config_names"), so that
//     import_model(export_model(g)) has the same ops, attributes, constants and config names.
// The graph must be finalized (symbolic shapes known). Errors: an opset outside 11..17, an op or
// attribute the opset cannot express (Softmax along a middle axis below opset 13, AveragePool
// dilations), a file that cannot be written.
//
//   onnx::export_model(g, "models/mlp.onnx");
#pragma once

#include <string>

#include "ir/graph.h"

namespace qsearch::onnx {

// Writes `graph` as an ONNX model (opset 13 by default) that onnx.checker accepts, with the
// batch dimension dynamic (dim_param "batch"); constants become initializers.
void export_model(const ir::Graph& graph, const std::string& path, int opset = 13);

// The same model as serialized bytes.
std::string export_model_bytes(const ir::Graph& graph, int opset = 13);

// An imported 3-D Conv (import_conv3d.cc: Im2Col3d -> Conv (1, kW) -> Reshape view, each read
// only by the next) is written back as one ONNX Conv with three spatial dims, named as the ir
// Conv, reading the Im2Col3d's input and the weight viewed as [M, C/group, kD, kH, kW], writing
// the view's output. An imported 3-D ConvTranspose (import_conv_transpose_nd.cc: transposed
// Im2Col3d -> ConvTranspose (1, kW) -> view) likewise as one ONNX ConvTranspose, its weight
// rearranged back to [C, M/group, kD, kH, kW]. For such an Im2Col3d or view: the ir Conv's (or
// ConvTranspose's) index, else -1 (those two nodes write no ONNX node of their own).
ir::NodeId conv3d_part_of(const ir::Graph& graph, const ir::Node& n);

}  // namespace qsearch::onnx
