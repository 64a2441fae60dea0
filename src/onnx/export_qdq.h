// QDQ export (docs/export.md, "Format qdq"): the plain ONNX export of a graph (onnx/export.h) with
// a standard QuantizeLinear -> DequantizeLinear pair in front of every node input that a
// quantization reads at a fixed-point format, and behind a node whose output is quantized
// (data_out). A format (width w, frac f, signed or not) becomes
//   scale = 2^-f (float32), zero point 0 of the storage type of w:
//   w = 8: int8 / uint8 (opset 13); w = 4 or 16: int4 / uint4, int16 / uint16 (opset 21).
// QuantizeLinear computes saturate(round_half_even(x / 2^-f)), i.e. exactly MASE's
// clamp(round(x * 2^f), lo, hi) for those widths, because the clamp range [lo, hi] of a w-bit code
// is the storage type's range. Any other width cannot be expressed (QuantizeLinear can only clamp
// at its storage type's range) and is an Error naming the node, the input and the width. A 32-bit
// signed format is accepted only for a constant (a Gemm / Conv bias): its codes are stored as an
// int32 initializer read by a DequantizeLinear (QuantizeLinear has no int32 output).
//
// The opset is 13 when every format is 8 bits (onnx.checker runs on the result) and 21 otherwise;
// at 21 the checker of the ONNX library linked here (which knows opsets <= 17) runs on the same
// model labelled opset 17 (structure, names, attributes), not on the int4 / int16 types.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace qsearch::onnx {

struct QdqFormat {
  int width = 8;
  int frac = 0;
  bool is_signed = true;
  std::string role;  // for messages: "data_in", "weight", "bias", "data_out"
};

// What one ir node quantizes: per input (nullopt: read as it is), and its output (data_out).
struct QdqNode {
  std::vector<std::optional<QdqFormat>> inputs;
  std::optional<QdqFormat> output;
};

struct QdqModel {
  std::string bytes;  // the serialized ModelProto
  int opset = 13;
  int pairs = 0;  // QuantizeLinear / DequantizeLinear pairs written (a DequantizeLinear alone
                  // for an int32 constant counts too)
};

// `nodes` has one entry per graph node (graph order); shorter `inputs` mean unquantized.
QdqModel export_qdq(const ir::Graph& graph, const std::vector<QdqNode>& nodes);

}  // namespace qsearch::onnx
