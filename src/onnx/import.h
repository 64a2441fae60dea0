// ONNX import: reads an ONNX model into a finalized ir::Graph.
//
// The model goes through the official ONNX library: protobuf parsing, onnx::checker::check_model,
// then a conversion that supports default-domain opsets 11 to 17 (7 to 10 are first converted to
// opset 13 by ONNX's version converter) and the operators of ir/ops.h
// (docs/onnx.md lists ops, attributes and limits):
//   - initializers and Constant nodes become constant ir Values (never nodes);
//   - nodes whose inputs are all constants are folded (float32 element-wise ops and data
//     movement), and shape computations (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as
//     torch.onnx writes x.view(x.size(0), -1)) are folded symbolically: a Reshape target
//     [N, k...] (N = batch) becomes ReshapeAttrs{0, k...};
//   - every graph input has a dynamic batch dimension (dim 0), whether the file names it
//     (dim_param) or fixes it; its other symbolic dims (a sequence length) take the sizes
//     ImportOptions::dims gives them before anything is folded (an unbound one is an Error);
//   - node names are kept ("<OpType>_<index>" when empty); Graph::finalize() gives config names
//     ("/fc1/Gemm" -> "fc1"). Models written by export_model() keep their config names;
//   - QONNX Quant nodes are removed (the float graph); onnx/qonnx.h's import_qonnx also returns
//     the formats they give the nodes.
//
// Every problem (missing file, bytes that are not an ONNX model, checker failures, unsupported
// operators, attributes or dtypes, several inputs, external data) is a qsearch::Error whose text
// names the file and, where it applies, the node; import never crashes on bad bytes (fuzzed, see
// docs/fuzzing.md).
//
//   ir::Graph g = onnx::import_model("tests/fixtures/torch/mlp_opset13.onnx");
//   g.find_node("fc1");   // the first Gemm, mase_op "linear"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "ir/input_decl.h"

namespace qsearch::onnx {

struct ImportOptions {
  // Sizes of the graph inputs' symbolic dims other than the batch (dim_param name -> size), e.g.
  // {"seq", 128} for a model exported with dynamic_axes {0: 'batch', 1: 'seq'}. The model is
  // imported as if exported at those sizes: shape computations (Shape -> Gather -> Concat ->
  // Reshape, Slices of position tables, Expand targets) fold to constants. Names the model
  // does not use are ignored.
  ir::DimBinding dims;
};

// Parses, checks and converts the ONNX model at `path` into a finalized ir::Graph.
ir::Graph import_model(const std::string& path, const ImportOptions& options = {});

// Same from bytes in memory; `source` names the origin in error messages.
ir::Graph import_model_bytes(std::string_view bytes, const std::string& source,
                             const ImportOptions& options = {});

// The graph inputs (not initializers) the file at `path` declares, read without importing (the
// initializers' data is skipped, not read): what ImportOptions::dims must bind. nullopt when the
// file cannot be read that way (missing, not a well-formed model): import_model then says why.
std::optional<std::vector<ir::InputDecl>> read_graph_inputs(const std::string& path);

// Opsets of the default ONNX domain that import accepts.
inline constexpr int kMinOpset = 11;
inline constexpr int kMaxOpset = 17;
// Older opsets that import converts to kConvertOpset first (ONNX's version converter).
inline constexpr int kMinConvertibleOpset = 6;
inline constexpr int kConvertOpset = 13;
// Newer opsets that import relabels kMaxOpset after checking their changes
// (import_newer_opsets.cc).
inline constexpr int kMaxNewerOpset = 21;

}  // namespace qsearch::onnx
