// Internal to the runtime: what each node quantizes under a trial's QuantAssignment, shared by
// the fake-quant and integer lowerings so that both compute the same math.
//
// MASE's semantics per quantized op (reference mase.md §6.2), for node n with config c:
//   linear (Gemm, MatMul by a constant) and conv2d:
//       y = op(q(x, c.data_in), q(W, c.weight)) + q(b, c.bias)      [then q(y, c.data_out)]
//       A MatMul linear followed by its bias Add (ir::linear_bias_add: torch's nn.Linear on 3-D
//       input) is one MASE linear under the MatMul's config name: the MatMul (kLinear, with
//       bias_add set) computes op(q(x), q(W)), its Add (kLinearBias) adds q(b, c.bias) (b float
//       without bias_* keys) and carries c.data_out; int: one GEMM with bias codes if c.bias.
//       The Add has no config name of its own (mase_op "linear_bias"; a config naming it fails).
//   matmul (two activations):  y = q(x, c.data_in) @ q(y, c.weight)
//   add / sub / mul:           y = q(a, c.data_in) op q(b, c.data_in)
//   relu:                      y = relu(q(x, c.data_in))            (data_in is unsigned)
//   batch_norm2d, tanh, layer_norm, gelu, softmax (qsearch's opt-in key, not MASE's):
//                              y = op(q(x, c.data_in))              (parameters stay float)
//       layer_norm, gelu, softmax with data_out_* keys (qsearch's option; MASE's entries have
//       data_in only):  y = q(op(q(x, c.data_in)), c.data_out)
//   gru / lstm (not in MASE; qsearch's opt-in key, runtime/rnn_lowering.h):
//       y = op(q(x, c.data_in); q(W, c.weight), q(R, c.weight), q(B, c.bias))
//                              (states, gates and accumulation float; no bias_width: B float)
// with q(v, f) = clamp(round(v * 2^f.frac), lo, hi) * 2^-f.frac and c.rounding. Everything else
// (and a node whose config is absent, bypassed or "NA") runs unquantized.
//
// One deliberate difference: a linear / conv2d with a bias but no bias_width in its config (MASE's
// LinearInteger then fails with a KeyError) keeps its bias in float, as docs/config.md promises:
// `fake` adds the float32 bias as it is; `int` rounds it once, at plan time, into the format
// float_bias_format() chooses (the accumulator's own grid unless that would saturate) and adds it
// exactly. Such a node's inputs[2] is nullopt, like any unquantized input.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::runtime {

struct NodeQuant {
  enum class Kind {
    kNone,
    kLinear,
    kConv,
    kMatMul,
    kAdd,
    kSub,
    kMul,
    kRelu,
    kInputOnly,
    kRnn,
    kLinearBias  // the bias Add of a quantized MatMul linear (see above)
  };
  Kind kind = Kind::kNone;  // kNone: runs unquantized
  const quant::NodeQuantConfig* config = nullptr;
  std::string mase_op;
  // Per node input: the format it is quantized with (activations and constants alike), or
  // nullopt when the node reads it unquantized (or it is absent).
  std::vector<std::optional<quant::FixedFormat>> inputs;
  // linear / conv / linear bias; layer_norm / gelu / softmax (kInputOnly, qsearch's option)
  std::optional<quant::FixedFormat> data_out;
  // kLinear: the index of its bias Add node (-1: none); kLinearBias: the index of its linear.
  int bias_add = -1;
  int linear = -1;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;

  bool quantized() const { return kind != Kind::kNone; }
};

// One entry per graph node (graph order). Throws Error when a key of `q` names no node of the
// graph (with the nearest config name), names a node whose op cannot be quantized, or a quantized
// node lacks a format its op needs.
std::vector<NodeQuant> resolve_node_quant(const ir::Graph& graph, const quant::QuantAssignment& q);

// The format in which the integer engine adds an unquantized (float32) bias of a quantized linear /
// conv2d whose products have binary point `product_frac` (= data_in frac + weight frac), rounding
// each value once to nearest (ties to even): s32 with frac = product_frac (clamped to -62..62), so
// the bias lands on the accumulator's grid, lowered one bit at a time while the largest finite
// |b| * 2^frac would not stay below 2^31 - 1, so that no value saturates (docs/numerics.md,
// "An unquantized bias"). Needs float32 data.
quant::FixedFormat float_bias_format(const Tensor& bias, int product_frac);

// "s8.4" / "float" for messages and describe().
std::string format_str(const std::optional<quant::FixedFormat>& f);

}  // namespace qsearch::runtime
