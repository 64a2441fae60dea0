// Internal to the runtime: what each node quantizes under a trial's QuantAssignment, shared by
// the fake-quant and integer lowerings so that both compute the same math.
//
// MASE's semantics per quantized op (reference mase.md §6.2), for node n with config c:
//   linear (Gemm, MatMul by a constant) and conv2d:
//       y = op(q(x, c.data_in), q(W, c.weight)) + q(b, c.bias)      [then q(y, c.data_out)]
//   matmul (two activations):  y = q(x, c.data_in) @ q(y, c.weight)
//   add / sub / mul:           y = q(a, c.data_in) op q(b, c.data_in)
//   relu:                      y = relu(q(x, c.data_in))            (data_in is unsigned)
//   batch_norm2d, tanh:        y = op(q(x, c.data_in))              (parameters stay float)
// with q(v, f) = clamp(round(v * 2^f.frac), lo, hi) * 2^-f.frac and c.rounding. Everything else
// (and a node whose config is absent, bypassed or "NA") runs unquantized.
//
// One deliberate difference: a linear / conv2d with a bias but no bias_width in its config (MASE's
// LinearInteger then fails with a KeyError) quantizes the bias to the accumulator's own grid,
// s32 with frac = data_in frac + weight frac (clamped to -62..62), in both modes: the bias an
// integer accelerator adds to its accumulator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::runtime {

struct NodeQuant {
  enum class Kind { kNone, kLinear, kConv, kMatMul, kAdd, kSub, kMul, kRelu, kInputOnly };
  Kind kind = Kind::kNone;  // kNone: runs unquantized
  const quant::NodeQuantConfig* config = nullptr;
  std::string mase_op;
  // Per node input: the format it is quantized with (activations and constants alike), or
  // nullopt when the node reads it unquantized (or it is absent).
  std::vector<std::optional<quant::FixedFormat>> inputs;
  std::optional<quant::FixedFormat> data_out;  // linear / conv2d only
  quant::Rounding rounding = quant::Rounding::kHalfToEven;

  bool quantized() const { return kind != Kind::kNone; }
};

// One entry per graph node (graph order). Throws Error when a key of `q` names no node of the
// graph (with the nearest config name), names a node whose op cannot be quantized, or a quantized
// node lacks a format its op needs.
std::vector<NodeQuant> resolve_node_quant(const ir::Graph& graph, const quant::QuantAssignment& q);

// "s8.4" / "float" for messages and describe().
std::string format_str(const std::optional<quant::FixedFormat>& f);

}  // namespace qsearch::runtime
