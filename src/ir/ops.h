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

#include "core/dtype.h"

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
  X(Cast, "Cast", "to")                                            \
  X(Equal, "Equal", "eq")                                          \
  X(Not, "Not", "logical_not")                                     \
  X(And, "And", "logical_and")                                     \
  X(Where, "Where", "where")                                       \
  X(Expand, "Expand", "expand")                                    \
  X(GlobalMaxPool, "GlobalMaxPool", "adaptive_max_pool2d")         \
  X(HardSigmoid, "HardSigmoid", "hardsigmoid")                     \
  X(HardSwish, "HardSwish", "hardswish")                           \
  X(Pad, "Pad", "pad")                                             \
  X(Resize, "Resize", "interpolate")                               \
  X(ConvTranspose, "ConvTranspose", "convtranspose2d")             \
  X(Gru, "GRU", "gru")                                             \
  X(Lstm, "LSTM", "lstm")                                          \
  X(Im2Col3d, "Im2Col3d", "im2col3d")

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

// ReduceMean / ReduceSum / ReduceMax over `axes` (each in -rank..rank-1, no repeats, any set of
// dims; none = every dim), keeping them as 1-dims when keepdims.
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

// Gather along `axis` (ONNX semantics: the output replaces dim `axis` by the indices' shape;
// negative indices count from the end). Inputs {data}: an activation with the constant
// `indices`; or inputs {data, indices}: indices an int64 / int32 activation read at run time
// (token ids into an embedding table, nn.Embedding's export), `indices` empty.
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

// Cast of an activation to float32, int64, int32 or bool (held as uint8 0 / 1). Float to
// integer truncates toward zero (ONNX); anything to bool is x != 0.
struct CastAttrs {
  DType to = DType::kFloat32;
  bool operator==(const CastAttrs&) const = default;
};

// Expand (numpy broadcast of the input to `shape`). A dim that grows with the batch is given as
// 1: the input must then carry that dim itself (the importer checks it), so the output shape is
// broadcast(input, shape) at every batch size.
struct ExpandAttrs {
  std::vector<int64_t> shape;
  bool operator==(const ExpandAttrs&) const = default;
};

// Equal (numpy broadcasting; output bool as uint8), Not, And (bool in and out), Where(cond, a, b)
// (cond bool; a and b of one dtype; numpy broadcasting of all three) take NoAttrs.

// HardSigmoid y = max(0, min(1, alpha * x + beta)); HardSwish y = x * HardSigmoid(x) with ONNX's
// alpha 1/6, beta 1/2 (its attrs are fixed).
struct HardSigmoidAttrs {
  float alpha = 0.2f;
  float beta = 0.5f;
  bool operator==(const HardSigmoidAttrs&) const = default;
};

// General Pad (ONNX, opset 11+ input form resolved at import): pads = begins of every dim, then
// ends (non-negative); constant mode fills `value`, reflect mirrors without the edge, edge
// repeats it.
enum class PadMode : uint8_t { kConstant, kReflect, kEdge };
struct PadAttrs {
  PadMode mode = PadMode::kConstant;
  std::vector<int64_t> pads;
  float value = 0.0f;
  bool operator==(const PadAttrs&) const = default;
};

// Resize of an NCHW activation's H and W (ONNX opsets 11-17; nn.Upsample / F.interpolate).
// Output size = `sizes` when given, else floor(in * scale). The input coordinate of output index
// o is, with s = the scale (or out / in when sizes were given):
//   asymmetric o / s; half_pixel (o + 0.5) / s - 0.5; pytorch_half_pixel the same, 0 when
//   out == 1; align_corners o * (in - 1) / (out - 1) (0 when out == 1).
// Nearest rounds it by nearest_mode, linear interpolates between floor and floor + 1 (both
// clamped to the input).
enum class ResizeMode : uint8_t { kNearest, kLinear };
enum class ResizeCoord : uint8_t { kAsymmetric, kHalfPixel, kPytorchHalfPixel, kAlignCorners };
enum class ResizeNearest : uint8_t { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
struct ResizeAttrs {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  ResizeNearest nearest = ResizeNearest::kRoundPreferFloor;
  std::array<float, 2> scales{0.0f, 0.0f};  // H, W (used when sizes is {0, 0})
  std::array<int64_t, 2> sizes{0, 0};       // H, W; {0, 0} = from the scales
  bool operator==(const ResizeAttrs&) const = default;
};

// 2-D transposed convolution (ONNX ConvTranspose, PyTorch's nn.ConvTranspose2d): NCHW input,
// weight [C, M/group, kH, kW], optional bias [M]. pads = {top, left, bottom, right};
// out = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pad_begin - pad_end.
// The engines run it as the convolution, at stride 1, of the input with stride - 1 zeros
// inserted between elements and dilation * (k - 1) - pad zeros around (plus output_padding at
// the end), by the spatially flipped weight with in / out channels swapped per group; so each
// pad must be at most dilation * (k - 1).
struct ConvTransposeAttrs {
  std::array<int64_t, 2> kernel{0, 0};
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  std::array<int64_t, 2> output_padding{0, 0};
  int64_t group = 1;
  bool operator==(const ConvTransposeAttrs&) const = default;
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

// The depth and height windows of a 3-D convolution laid out for a 2-D one (issue 14; the
// importer writes ONNX's 3-D Conv as Im2Col3d -> Conv of kernel (1, kW) -> Reshape, and
// ir::mase_op calls that Conv `conv3d`): input [N, C, D, H, W], output [N, C * kD * kH,
// D' * H', W] with out[n, (c * kD + i) * kH + r, od * H' + oh, w] =
// x[n, c, od * sD - pD + i * dD, oh * sH - pH + r * dH, w] (0 outside the input), D' and H' the
// 3-D convolution's output depth and height. pads = {depth begin, height begin, depth end,
// height end}.
// With `transposed` (a 3-D ConvTranspose: Im2Col3d -> ConvTranspose of kernel (1, kW) -> Reshape,
// import_conv_transpose_nd.cc) the taps are those of the transposed convolution: out[n,
// (c * kD + i) * kH + r, od * H' + oh, w] = x[n, c, id, ih, w] where id * sD = od + pD - i * dD
// and ih * sH = oh + pH - r * dH (0 where that has no solution inside the input), D' = sD * (D -
// 1) + output_padding[0] + dD * (kD - 1) + 1 - pD_begin - pD_end, H' likewise.
struct Im2Col3dAttrs {
  std::array<int64_t, 2> kernel{1, 1};  // kD, kH
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 2> dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  bool transposed = false;
  std::array<int64_t, 2> output_padding{0, 0};  // transposed only
  bool operator==(const Im2Col3dAttrs&) const = default;
};

using Attrs = std::variant<NoAttrs, GemmAttrs, ConvAttrs, PoolAttrs, BatchNormAttrs, LeakyReluAttrs,
                           ClipAttrs, AxisAttrs, ReshapeAttrs, TransposeAttrs, DropoutAttrs,
                           ReduceAttrs, LayerNormAttrs, GeluAttrs, GatherAttrs, SliceAttrs,
                           CastAttrs, ExpandAttrs, HardSigmoidAttrs, PadAttrs, ResizeAttrs,
                           ConvTransposeAttrs, RnnAttrs, Im2Col3dAttrs>;

}  // namespace qsearch::ir
