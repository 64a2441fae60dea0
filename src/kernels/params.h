// Parameter structs of the float kernels, shared by the reference kernels (kernels/ref/) and
// the fast ones (kernels/gemm.h, kernels/conv.h, ...).
//
// Every struct is a plain aggregate of integers and floats with fixed-size arrays (no heap), so
// that the runtime can build one per call for the actual batch size without allocating.
// Tensors are dense and row-major; NCHW for images. A kernel never validates its params: the
// runtime's plan() did (see runtime/plan.h); kernels only QSEARCH_DCHECK them.
//
//   GemmParams p{.m = 256, .n = 10, .k = 128, .trans_b = true, .c_stride_n = 1};
//   ref::gemm_f32(p, x, w, bias, y);   // y = x * w^T + bias (ONNX Gemm, PyTorch Linear)
#pragma once

#include <array>
#include <cstdint>
#include <limits>

namespace qsearch::kernels {

// Largest tensor rank a kernel handles (broadcasting, transpose, batched matmul).
inline constexpr int kMaxRank = 8;

using Dims = std::array<int64_t, kMaxRank>;

// ONNX Gemm:  Y[m, n] = alpha * sum_k A'[m, k] * B'[k, n] + beta * C[m, n]
//   A' = A ([M, K] row-major) or A^T when trans_a (A stored [K, M]);
//   B' = B ([K, N]) or B^T when trans_b (B stored [N, K]);
//   C broadcasts unidirectionally to [M, N]: C[m, n] = c[m * c_stride_m + n * c_stride_n]
//   (bias [N]: c_stride_m = 0, c_stride_n = 1; scalar: both 0; full [M, N]: N and 1).
//   c == nullptr means no C term.
struct GemmParams {
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  float beta = 1.0f;
  bool trans_a = false;
  bool trans_b = false;
  int64_t c_stride_m = 0;
  int64_t c_stride_n = 0;
};

// numpy matmul of stacks of matrices:  Y[i..., m, n] = sum_k A[i..., m, k] * B[i..., k, n]
// The batch index i... runs over batch_shape (rank batch_rank, may be 0); A and B step through
// their matrices with per-dim strides in elements (0 where that operand is broadcast).
// A matrix is [M, K] row-major, B [K, N], Y is dense [batch_shape..., M, N]. 1-D operands are
// the caller's business (numpy's prepend/append-1 rule maps them to M = 1 or N = 1).
struct MatMulParams {
  int64_t m = 0, n = 0, k = 0;
  int batch_rank = 0;
  Dims batch_shape{};
  Dims a_batch_stride{};
  Dims b_batch_stride{};
};

// 2-D convolution, NCHW, ONNX Conv semantics:
//   Y[b, o, oh, ow] = bias[o] + sum_{c, i, j} W[o, c, i, j] *
//                     X[b, g * C/G + c, oh * stride_h - pad_top + i * dilation_h,
//                                      ow * stride_w - pad_left + j * dilation_w]
// with g = o / (M/G), c < C/G, i < kernel_h, j < kernel_w, and X = 0 outside the image (zero
// padding). W is [M, C/G, kernel_h, kernel_w]. out_h / out_w are given (they fix the bottom /
// right padding).
struct Conv2dParams {
  int64_t batch = 0;
  int64_t in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0;
  int64_t groups = 1;
};

// MaxPool / AveragePool over H, W of NCHW. Window taps of output (oh, ow):
//   h = oh * stride_h - pad_top + i * dilation_h, i < kernel_h (likewise w).
// Max: max over the taps inside the image (NaN propagates). Average: sum over the taps inside
// the image divided by the number of taps inside the image, or, with count_include_pad, by the
// number of taps inside the padded image [-pad_top, in_h + pad_bottom) x [-pad_left,
// in_w + pad_right) (PyTorch / onnxruntime: ceil_mode overhang never counts).
struct Pool2dParams {
  int64_t batch = 0, channels = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
};

// Inference batch normalization over dim 1 of [batch, channels, spatial...]:
//   Y[b, c, s] = (X[b, c, s] - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c]
struct BatchNormParams {
  int64_t batch = 0, channels = 0, spatial = 1;
  float epsilon = 1e-5f;
};

// kPow: a^b (ONNX Pow, float32 operands).
enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kPow };

// Y[i] = A[i] op B[i] over the output shape `shape` (rank `rank`, may be 0 for a scalar), with
// numpy broadcasting expressed as strides: A's element of output index i is
// a[sum_d i_d * a_stride[d]] (stride 0 on broadcast dims), likewise B.
struct BinaryParams {
  BinaryOp op = BinaryOp::kAdd;
  int rank = 0;
  Dims shape{};
  Dims a_stride{};
  Dims b_stride{};
};

// kGelu: x * (1 + erf(x / sqrt 2)) / 2; kGeluTanh: x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715
// x^3))) / 2 (PyTorch's approximate='tanh').
enum class UnaryOp : uint8_t {
  kRelu,
  kLeakyRelu,
  kClip,
  kSigmoid,
  kTanh,
  kCopy,
  kErf,
  kSqrt,
  kExp,
  kNeg,
  kGelu,
  kGeluTanh
};

// Y[i] = f(X[i]):  relu max(x, 0); leaky_relu x < 0 ? alpha * x : x; clip min(max(x, lo), hi);
// sigmoid 1 / (1 + exp(-x)); tanh; copy x. NaN stays NaN.
struct UnaryParams {
  UnaryOp op = UnaryOp::kCopy;
  float alpha = 0.01f;
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
};

// Softmax along one axis of a tensor viewed as [outer, axis, inner]:
//   Y[o, a, i] = exp(X[o, a, i] - max_a X[o, :, i]) / sum_a exp(X[o, a, i] - max_a X[o, :, i])
// LogSoftmax uses the same view: Y[o, a, i] = X[o, a, i] - m - log sum_a exp(X[o, a, i] - m),
// m = max_a X[o, :, i].
struct SoftmaxParams {
  int64_t outer = 1, axis = 1, inner = 1;
};

// A reduction over the middle axis of [outer, axis, inner]: Y[o, i] = op_a X[o, a, i].
enum class ReduceOp : uint8_t { kMean, kSum, kMax };
struct ReduceParams {
  ReduceOp op = ReduceOp::kMean;
  int64_t outer = 1, axis = 1, inner = 1;
};

// Layer normalisation of `rows` contiguous rows of `n` elements:
//   Y[r, j] = (X[r, j] - mean_r) / sqrt(var_r + epsilon) * scale[j] + bias[j]
// with mean_r and var_r = mean((X[r, :] - mean_r)^2) over the row (biased variance).
struct LayerNormParams {
  int64_t rows = 0, n = 0;
  float epsilon = 1e-5f;
};

// Y[j_0, ..., j_{r-1}] = X[i] with i_{perm[d]} = j_d; X has shape in_shape (rank `rank`), Y has
// shape in_shape[perm[0]], ..., in_shape[perm[r-1]].
struct TransposeParams {
  int rank = 0;
  Dims in_shape{};
  Dims perm{};
};

}  // namespace qsearch::kernels
