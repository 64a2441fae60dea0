// The operators of the IR, listed once.
//
// QSEARCH_IR_OPS(X) expands X(Kind, "OnnxName", "mase_op") for every op; "mase_op" is the name
// MASE's graph uses for the op type (mase.md §3.4), which TOML configs may use as a key.
// Gemm/MatMul with a constant right operand are "linear" (see mase_op() in graph.h), so their
// entry here is the activation-activation case.
//
// Attributes are one small struct per op family (Attrs below); inputs and outputs follow ONNX
// order, with -1 for an omitted optional input.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>
#include <variant>
#include <vector>

namespace qsearch::ir {

#define QSEARCH_IR_OPS(X)                                          \
  X(Gemm, "Gemm", "matmul")                                        \
  X(MatMul, "MatMul", "matmul")                                    \
  X(Add, "Add", "add")                                             \
  X(Sub, "Sub", "sub")                                             \
  X(Mul, "Mul", "mul")                                             \
  X(Div, "Div", "div")                                             \
  X(Relu, "Relu", "relu")                                          \
  X(LeakyRelu, "LeakyRelu", "leaky_relu")                          \
  X(Clip, "Clip", "hardtanh")                                      \
  X(Sigmoid, "Sigmoid", "sigmoid")                                 \
  X(Tanh, "Tanh", "tanh")                                          \
  X(Softmax, "Softmax", "softmax")                                 \
  X(LogSoftmax, "LogSoftmax", "log_softmax")                       \
  X(Conv, "Conv", "conv2d")                                        \
  X(BatchNorm, "BatchNormalization", "batch_norm2d")               \
  X(MaxPool, "MaxPool", "max_pool2d")                              \
  X(AveragePool, "AveragePool", "avg_pool2d")                      \
  X(GlobalAveragePool, "GlobalAveragePool", "adaptive_avg_pool2d") \
  X(Flatten, "Flatten", "flatten")                                 \
  X(Reshape, "Reshape", "reshape")                                 \
  X(Transpose, "Transpose", "permute")                             \
  X(Concat, "Concat", "cat")                                       \
  X(Identity, "Identity", "identity")                              \
  X(Dropout, "Dropout", "dropout")                                 \
  X(Erf, "Erf", "erf")                                             \
  X(Sqrt, "Sqrt", "sqrt")                                          \
  X(Exp, "Exp", "exp")                                             \
  X(Neg, "Neg", "neg")                                             \
  X(Pow, "Pow", "pow")                                             \
  X(ReduceMean, "ReduceMean", "mean")                              \
  X(ReduceSum, "ReduceSum", "sum")                                 \
  X(ReduceMax, "ReduceMax", "max")                                 \
  X(LayerNorm, "LayerNormalization", "layer_norm")                 \
  X(Gelu, "Gelu", "gelu")                                          \
  X(Gather, "Gather", "getitem")                                   \
  X(Slice, "Slice", "getitem")                                     \
  X(Gru, "GRU", "gru")                                             \
  X(Lstm, "LSTM", "lstm")

enum class OpKind : uint8_t {
#define QSEARCH_X(kind, onnx, mase) k##kind,
  QSEARCH_IR_OPS(QSEARCH_X)
#undef QSEARCH_X
};

// "Gemm", "BatchNormalization", ...
std::string_view op_name(OpKind kind);
// Every op, in declaration order.
const std::vector<OpKind>& all_ops();

// ---- attributes ------------------------------------------------------------------------------
// Each struct compares with == (field by field; floats exactly), so Attrs variants compare too.
struct NoAttrs {
  bool operator==(const NoAttrs&) const = default;
};

// Y = alpha * op(A) * op(B) + beta * C, op = transpose if trans_*.
struct GemmAttrs {
  float alpha = 1.0f;
  float beta = 1.0f;
  bool trans_a = false;
  bool trans_b = false;
  bool operator==(const GemmAttrs&) const = default;
};

// 2-D convolution, NCHW input, weight [M, C/group, kH, kW], optional bias [M].
// pads = {top, left, bottom, right} (ONNX order: x1_begin, x2_begin, x1_end, x2_end).
struct ConvAttrs {
  std::array<int64_t, 2> kernel{0, 0};
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  int64_t group = 1;
  bool operator==(const ConvAttrs&) const = default;
};

// MaxPool / AveragePool over H, W of NCHW.
struct PoolAttrs {
  std::array<int64_t, 2> kernel{0, 0};
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  bool ceil_mode = false;
  bool count_include_pad = false;  // AveragePool only
  bool operator==(const PoolAttrs&) const = default;
};

// Inference: y = (x - mean) / sqrt(var + epsilon) * scale + bias over channel dim 1.
// Training (train module): running = momentum * running + (1 - momentum) * batch (ONNX
// convention; PyTorch's momentum m is ONNX's 1 - m).
struct BatchNormAttrs {
  float epsilon = 1e-5f;
  float momentum = 0.9f;
  bool operator==(const BatchNormAttrs&) const = default;
};

struct LeakyReluAttrs {
  float alpha = 0.01f;
  bool operator==(const LeakyReluAttrs&) const = default;
};

struct ClipAttrs {
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
  bool operator==(const ClipAttrs&) const = default;
};

// Softmax and LogSoftmax (opset >= 13 semantics: along one axis), Flatten, Concat.
struct AxisAttrs {
  int64_t axis = 1;
  bool operator==(const AxisAttrs&) const = default;
};

// Target shape with ONNX semantics: 0 copies the input dim (unless allowzero), -1 is inferred.
struct ReshapeAttrs {
  std::vector<int64_t> shape;
  bool allowzero = false;
  bool operator==(const ReshapeAttrs&) const = default;
};

struct TransposeAttrs {
  std::vector<int64_t> perm;  // empty = reverse the dims
  bool operator==(const TransposeAttrs&) const = default;
};

struct DropoutAttrs {
  float ratio = 0.5f;  // used only when training
  bool operator==(const DropoutAttrs&) const = default;
};

// ReduceMean / ReduceSum / ReduceMax over `axes` (each in -rank..rank-1, no repeats; after
// normalisation they must be consecutive dims), keeping them as 1-dims when keepdims.
struct ReduceAttrs {
  std::vector<int64_t> axes;
  bool keepdims = true;
  bool operator==(const ReduceAttrs&) const = default;
};

// LayerNormalization (ONNX opset 17): normalises over dims axis..rank-1,
//   y = (x - mean) / sqrt(var + epsilon) * scale + bias   (var: biased, mean of squares)
// inputs {x, scale, bias?}; scale and bias have the normalised dims' shape (constants).
struct LayerNormAttrs {
  int64_t axis = -1;
  float epsilon = 1e-5f;
  bool operator==(const LayerNormAttrs&) const = default;
};

// GELU: exact x * (1 + erf(x / sqrt(2))) / 2, or (tanh) the approximation
// x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2. Produced by fusing PyTorch's exports.
struct GeluAttrs {
  bool tanh = false;
  bool operator==(const GeluAttrs&) const = default;
};

// Gather of an activation along `axis` with constant indices (ONNX semantics: the output
// replaces dim `axis` by the indices' shape; negative indices count from the end).
struct GatherAttrs {
  int64_t axis = 0;
  std::vector<int64_t> indices;
  std::vector<int64_t> indices_shape;  // empty = a scalar index
  bool operator==(const GatherAttrs&) const = default;
};

// Slice of an activation: per listed axis, start/end/step with ONNX clamping (resolved at run
// time against the dim).
struct SliceAttrs {
  std::vector<int64_t> starts, ends, axes, steps;
  bool operator==(const SliceAttrs&) const = default;
};

// GRU / LSTM (ONNX semantics, layout 0, default activations, no clip, no sequence_lens; GRU
// with linear_before_reset = 1, PyTorch's). Inputs {X [T, B, I], W [D, G*H, I], R [D, G*H, H],
// B [D, 2*G*H] or -1, initial_h [D, B, H] or -1, initial_c [D, B, H] or -1 (LSTM)}, G = 3 (GRU:
// gates z, r, h) or 4 (LSTM: i, o, f, c). One ir node computes one of the ONNX node's outputs,
// `output`: 0 = Y [T, D, B, H], 1 = Y_h [D, B, H], 2 = Y_c [D, B, H] (LSTM); the importer adds a
// node per output the model reads. Kernels: kernels/rnn.h.
struct RnnAttrs {
  int64_t hidden_size = 0;
  int64_t directions = 1;  // 1 or 2 (bidirectional: direction 1 runs backwards)
  bool reverse = false;    // directions == 1 and direction="reverse"
  int output = 0;
  bool operator==(const RnnAttrs&) const = default;
};

using Attrs =
    std::variant<NoAttrs, GemmAttrs, ConvAttrs, PoolAttrs, BatchNormAttrs, LeakyReluAttrs,
                 ClipAttrs, AxisAttrs, ReshapeAttrs, TransposeAttrs, DropoutAttrs, ReduceAttrs,
                 LayerNormAttrs, GeluAttrs, GatherAttrs, SliceAttrs, RnnAttrs>;

}  // namespace qsearch::ir
