// QONNX: ONNX models whose fixed-point quantization is spelled with QONNX's `Quant` operator
// (domain "qonnx.custom_op.general"; docs/export.md "qonnx" and docs/onnx.md "QONNX models").
//
// A Quant node computes, elementwise (QONNX's quant.py; narrow = 0, zero point 0):
//     y = clamp(round(x / scale), lo, hi) * scale     lo, hi = the signed / unsigned range of
//                                                    `bitwidth` bits
// which with scale = 2^-frac is exactly MASE's q(x) = clamp(round(x * 2^frac), lo, hi) / 2^frac
// (clamping before or after rounding to an integer range gives the same integer). Rounding modes:
// "ROUND" (numpy's round: half to even, MASE's torch.round), "HALF_UP" (half away from zero),
// "FLOOR".
//
// Export: every input a node quantizes (runtime/node_quant.h: data_in, weight, bias of the node's
// inputs; data_out of linear / conv2d on its output) gets one Quant node in front of the node;
// unquantized parts stay float. The model declares the QONNX domain and passes onnx.checker.
//
// Import: Quant nodes with a power-of-two scale and a zero zero point become fixed-point formats
// of the node reading them (a constant: that node's weight or bias; an activation: its data_in;
// the output of a linear / conv2d read by nothing else: that node's data_out). The Quant nodes are
// dropped from the graph, which is the model's float graph. Anything else (another scale, a
// nonzero zero point, narrow range, a placement MASE has no format for) is an Error naming the
// node.
//
//   onnx::QonnxModel m = onnx::import_qonnx("model_qonnx.onnx");
//   runtime::make_plan(m.graph, {.mode = runtime::Mode::kInt, .quant = m.formats});
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/import.h"
#include "quant/assignment.h"
#include "quant/fixed_point.h"

namespace qsearch::onnx {

// The QONNX custom-op domain qsearch writes (and reads, with the older "onnx.brevitas" and
// "finn.custom_op.general").
inline constexpr const char* kQonnxDomain = "qonnx.custom_op.general";

// What one ir node quantizes (runtime::NodeQuant's formats, resolved by the caller).
struct QonnxNodeFormats {
  std::vector<std::optional<quant::FixedFormat>> inputs;  // per node input; empty: none
  std::optional<quant::FixedFormat> data_out;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// The QONNX rounding_mode string for a rounding ("ROUND", "HALF_UP", "FLOOR").
const char* qonnx_rounding_mode(quant::Rounding r);

// `graph` (finalized) as a QONNX model at `opset`; `formats` has one entry per graph node (graph
// order). Errors: what export_model refuses, and a 1-bit signed format (QONNX executes a 1-bit
// signed Quant as bipolar +-1, MASE's codes are -1 and 0), naming the node.
std::string export_qonnx_bytes(const ir::Graph& graph, const std::vector<QonnxNodeFormats>& formats,
                               int opset = 13);

struct QonnxModel {
  ir::Graph graph;                 // the float graph (Quant nodes removed)
  quant::QuantAssignment formats;  // keyed by config name; empty for a plain ONNX model
  int quant_nodes = 0;             // Quant nodes read
};

// Imports a QONNX model (or a plain ONNX model: no formats).
QonnxModel import_qonnx(const std::string& path, const ImportOptions& options = {});
QonnxModel import_qonnx_bytes(std::string_view bytes, const std::string& source,
                              const ImportOptions& options = {});

}  // namespace qsearch::onnx
