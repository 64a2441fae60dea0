// Training kernels: the parts of the forward pass that only training has (batch-statistics
// BatchNorm, Dropout masks) and the backward pass of every op the trainer supports. Pure
// functions over pointers and the float kernels' parameter structs (kernels/params.h); the
// products themselves go through the fast GEMM (kernels/gemm.h) in train/network.cc.
//
// Conventions: x is an op's input, y its output, dy = dL/dy, dx = dL/dx. A backward kernel
// overwrites dx unless its name ends in _add (then dx += contribution). Reductions run in an
// order fixed by the shapes alone -- statistics in double over eight lanes (element i of a run to
// lane i % 8, lanes added in a fixed tree; train/lanes.h), products as one fma chain per output,
// partial sums over fixed chunks added in chunk order -- so results depend neither on the thread
// count nor on how work is split; loops parallelise over independent outputs (channels, rows,
// planes, chunks) only.
//
//   BatchNorm (training, PyTorch's definition), per channel c over n = batch * spatial values:
//     mean_c = sum x / n,  var_c = sum (x - mean_c)^2 / n  (biased, used to normalise)
//     xhat = (x - mean_c) / sqrt(var_c + eps),  y = scale_c * xhat + bias_c
//     running_mean = (1 - m) running_mean + m mean_c,
//     running_var  = (1 - m) running_var  + m var_c * n / (n - 1)  (unbiased)
//     dbias_c = sum dy,  dscale_c = sum dy * xhat,
//     dx = scale_c / sqrt(var_c + eps) * (dy - dbias_c / n - xhat * dscale_c / n)
//   m is PyTorch's momentum (0.1 by default; ONNX stores 1 - m).
//
//   Dropout (training, inverted): y = x * mask / (1 - p), mask_i ~ Bernoulli(1 - p) drawn from
//   a qsearch::Rng in element order; dx = dy * mask / (1 - p).
//
//   Softmax cross-entropy (PyTorch CrossEntropyLoss, reduction "mean"):
//     L = (1/B) sum_b [logsumexp(z_b) - z_b[y_b]],  dz_b = (softmax(z_b) - onehot(y_b)) / B
#pragma once

#include <cstdint>
#include <vector>

#include <initializer_list>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/params.h"

namespace qsearch::train {

// ---- parallel regions -----------------------------------------------------------------------

// An independent loop fn(i0, i1) over items [0, items), handed out `grain` items at a time; any
// split of the range must give the same results (every item writes its own outputs).
struct ItemLoop {
  int64_t items;
  int64_t grain;
  ChunkFn fn;  // refers to a callable that must outlive parallel_loops
};
// Runs the loops in one parallel region: one fork-join instead of one per loop (on a loaded
// machine each join waits for whichever thread was preempted). One loop is
// parallel_for(0, items, grain, fn).
void parallel_loops(std::initializer_list<ItemLoop> loops);

// ---- dense ----------------------------------------------------------------------------------

// y[c, r] = x[r, c] for x [rows, cols] (row strides = cols, rows).
void transpose(const float* x, int64_t rows, int64_t cols, float* y);

// db[j] (+)= sum_i dy[i, j] over dy [m, n]; accumulate adds to db.
void column_sums(const float* dy, int64_t m, int64_t n, float* db, bool accumulate);

// ---- convolution ----------------------------------------------------------------------------

// Columns of one image for the weight and input gradients:
//   col[(c * kh + i) * kw + j, oh * out_w + ow] = X[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
// (0 outside the image). x is one image [C, H, W]; col is [C*kh*kw, out_h*out_w]. Groups are
// handled by the caller: pass one group's channels (p.in_channels = C/G). Rows of col are `ld`
// floats apart (ld >= out_h*out_w), so several images can sit side by side.
void im2col(const kernels::Conv2dParams& p, const float* x, float* col, int64_t ld);

// The adjoint of im2col: dx[c, h, w] += every col entry that im2col read from (c, h, w).
void col2im_add(const kernels::Conv2dParams& p, const float* col, int64_t ld, float* dx);

// Gradients of Y = conv(X, W) + b (kernels::Conv2dParams, W [M, C/G, kh, kw]), all overwritten:
//   dW[o, k] = sum_n sum_p dY[n, o, p] col_n[k, p]
//   db[o]    = sum_n sum_p dY[n, o, p]                            (db may be null)
//   dX       = sum over taps of W^T dY scattered back (col2im)    (dx may be null)
// Images are processed in chunks of max(1, 4096 / (out_h*out_w)) (a function of the shape
// only); each chunk's dW is a GEMM over its pixels, and chunk results are summed in chunk
// order, so the result does not depend on the thread count. For stride 1, dX is computed as
// the convolution of dY with the flipped, transposed weights (the fast conv kernel), or for a
// pointwise conv pointwise_conv_input_grad. With one input channel and at most 4 output channels
// per group (depthwise), dW and dX come from the one_channel_conv_* kernels below instead.
void conv2d_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db);

// Convolutions with one input channel per group (depthwise, channel multipliers, a first conv
// on a one-channel image; any kernel, stride, dilation and padding), on output grids of the
// zero-padded, stride-phase-split input plane (depthwise.cc): every tap of every output pixel is
// one contiguous run, so each output plane is a sum of 8-lane scaled runs, with no im2col and
// no GEMM whose inner dimension would be a handful of taps. Items are (image, group); each
// element is summed in a fixed order inside its item, so the bits do not depend on the thread
// count.
bool one_channel_conv_applies(const kernels::Conv2dParams& p);  // in_channels == groups
// Y = conv(X, W) + bias (bias may be null).
void one_channel_conv_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                              const float* bias, float* y);
// dX (overwritten): the stride-1 convolution of dY spread by the stride, with flipped taps.
void one_channel_conv_input_grad(const kernels::Conv2dParams& p, const float* w, const float* dy,
                                 float* dx);
// partial[c, o, t] = sum over chunk c's images (chunk images each, `chunks` of them) and output
// pixels of dY[n, o, p] X_padded[n, group(o), tap t of p]; 8 lanes per (o, t), summed in a fixed
// order at the end of the chunk.
void one_channel_conv_weight_grad(const kernels::Conv2dParams& p, const float* x, const float* dy,
                                  int64_t chunk, int64_t chunks, float* partial);
// Both of the above (dX when dx != nullptr) in one parallel region.
void one_channel_conv_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                               const float* dy, float* dx, int64_t chunk, int64_t chunks,
                               float* partial);

// Pointwise convolutions (1x1, stride 1, no padding, one group; pointwise.cc): Y[n] = W X[n]
// (+ bias) and dX[n] = W^T dY[n] per image, with a 6x16 register tile that reads the image's
// channel rows in place (no packing, no column buffer). Items are images; every element is one
// FMA chain in channel order, so the bits do not depend on the thread count.
bool pointwise_conv_applies(const kernels::Conv2dParams& p);
void pointwise_conv_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                            const float* bias, float* y);
// with (may be null): another loop run in the same parallel region (conv2d_backward's dW).
void pointwise_conv_input_grad(const kernels::Conv2dParams& p, const float* w, const float* dy,
                               float* dx, const ItemLoop* with = nullptr);

// ---- BatchNorm (training) -------------------------------------------------------------------

// Normalises with batch statistics and updates the running statistics in place. Writes the
// per-channel batch mean and 1/sqrt(var + eps) (for the backward pass). x, y are [batch,
// channels, spatial]; y may not alias x (x is kept for the backward pass).
void batch_norm_train_forward(const kernels::BatchNormParams& p, double momentum, const float* x,
                              const float* scale, const float* bias, float* y, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd);

// dx (may be null: not needed), dscale, dbias (overwritten). save_* from the forward pass.
void batch_norm_backward(const kernels::BatchNormParams& p, const float* x, const float* dy,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias);

// A BatchNorm whose only consumer is a ReLU, in the passes of one BatchNorm: the forward also
// writes relu_y = relu(y) (y is still written), the backward first masks relu_dy by relu_y > 0
// into dy (the BatchNorm output's gradient, written) and continues as batch_norm_backward from
// it. Bit-identical to batch_norm_train_forward + relu_forward and relu_backward +
// batch_norm_backward, with one parallel region instead of two.
void batch_norm_relu_train_forward(const kernels::BatchNormParams& p, double momentum,
                                   const float* x, const float* scale, const float* bias, float* y,
                                   float* relu_y, float* running_mean, float* running_var,
                                   float* save_mean, float* save_invstd);
void batch_norm_relu_backward(const kernels::BatchNormParams& p, const float* x,
                              const float* relu_y, const float* relu_dy, float* dy,
                              const float* scale, const float* save_mean, const float* save_invstd,
                              float* dx, float* dscale, float* dbias);

// ---- activations, pooling -------------------------------------------------------------------

// y = max(x, 0) (NaN propagates).
void relu_forward(const float* x, float* y, int64_t n);
// dx = dy where y > 0, else 0 (PyTorch's threshold_backward on the result).
void relu_backward(const float* y, const float* dy, float* dx, int64_t n);

// dx[window argmax] += dy for every output, dx overwritten. The argmax is the first tap (in
// (i, j) order) holding the window's maximum, as PyTorch's max_pool2d picks it.
void max_pool2d_backward(const kernels::Pool2dParams& p, const float* x, const float* dy,
                         float* dx);
// dx overwritten: each output spreads dy / divisor over its taps (divisor as in forward).
void avg_pool2d_backward(const kernels::Pool2dParams& p, const float* dy, float* dx);
// dx[r, s] = dy[r] / spatial.
void global_avg_pool_backward(int64_t rows, int64_t spatial, const float* dy, float* dx);

// ---- Dropout --------------------------------------------------------------------------------

// mask[i] = 1 with probability 1 - ratio (uniform() >= ratio), else 0, in index order.
void dropout_mask(Rng& rng, float ratio, uint8_t* mask, int64_t n);
// y = x * mask * scale (scale = 1 / (1 - ratio)); the backward pass is the same map on dy.
void dropout_apply(const float* x, const uint8_t* mask, float scale, float* y, int64_t n);

// ---- transformer ops (seq_grad_kernels.cc) ----------------------------------------------------
//
//   MatMul of two activations (ONNX/numpy: batch dims broadcast, last two multiplied):
//     Y_t = A_a(t) B_b(t);  dA_a += dY_t B^T,  dB_b += A^T dY_t, summed over the output batches t
//     that read a broadcast operand, in ascending t.
//   Softmax (last axis): y = exp(x - max) / sum;  dx = y (dy - sum_j dy_j y_j).
//   LayerNorm (over the last n values of each row; biased variance):
//     xhat = (x - mean) / sqrt(var + eps), y = scale xhat + bias;  g = dy scale,
//     dx = invstd (g - mean(g) - xhat mean(g xhat)),  dscale = sum_rows dy xhat,  dbias = sum dy.
//   GELU (exact): y = x Phi(x);  dx = dy (Phi(x) + x phi(x)).
//   ReduceMean over r consecutive values: dx = dy / r.   Transpose: dx = dy permuted back.

// y = x with its dims permuted (ONNX Transpose: y's dim d is x's dim perm[d]).
void permute(const float* x, const Shape& xs, const std::vector<int64_t>& perm, float* y);

struct BatchedMatMul {
  int64_t m = 0, k = 0, n = 0;
  int64_t batches = 0, a_batches = 0, b_batches = 0;
  std::vector<int64_t> a_index, b_index;  // per output batch: the operands' batch
  kernels::MatMulParams fwd;              // the same product for kernels::matmul_f32
};
// A [..., M, K] times B [..., K, N] (rank >= 2 each), batch dims broadcast.
BatchedMatMul batched_matmul_shapes(const Shape& a, const Shape& b);
void batched_matmul_forward(const BatchedMatMul& p, const float* a, const float* b, float* y);
// da, db may be null (not needed); overwritten.
void batched_matmul_backward(const BatchedMatMul& p, const float* a, const float* b,
                             const float* dy, float* da, float* db);

void softmax_forward(const float* x, int64_t rows, int64_t n, float* y);
void softmax_backward(const float* y, const float* dy, int64_t rows, int64_t n, float* dx);

// save_mean / save_invstd: [rows]. bias may be null. dx, dscale, dbias may be null.
void layer_norm_forward(const float* x, int64_t rows, int64_t n, float epsilon, const float* scale,
                        const float* bias, float* y, float* save_mean, float* save_invstd);
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t n,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias);

void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);

// y = x * c (Mul by a constant scalar, Div by one as c = 1 / d; the backward is the same map).
void scale_values(const float* x, float c, float* y, int64_t n);

// x viewed as [outer, r, inner], y [outer, inner] = mean over r.
void reduce_mean_forward(const float* x, int64_t outer, int64_t r, int64_t inner, float* y);
void reduce_mean_backward(const float* dy, int64_t outer, int64_t r, int64_t inner, float* dx);

// ---- loss -----------------------------------------------------------------------------------

struct LossSums {
  double loss_sum = 0;  // sum over the batch of per-sample cross-entropy
  int64_t correct = 0;  // arg-max hits (ties to the lowest class, like torch.argmax)
};

// Softmax cross-entropy of logits [batch, classes] against labels; writes dlogits of the MEAN
// loss (divided by `mean_over`, normally batch). dlogits may be null (evaluation).
LossSums softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t batch,
                               int64_t classes, int64_t mean_over, float* dlogits);

// ---- reference kernels (ref_grad_kernels.cc) ------------------------------------------------
//
// The definitions above computed directly, serially, with every sum in double: the twins of the
// fast kernels for tests/train/train_kernels_test.cc (the trainer does not call them). Same
// signatures and conventions; conv2d_backward here sums every product straight into dW / dX
// (no chunks, no GEMM), batched_matmul_* in double.
namespace ref {
void batch_norm_train_forward(const kernels::BatchNormParams& p, double momentum, const float* x,
                              const float* scale, const float* bias, float* y, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd);
void batch_norm_backward(const kernels::BatchNormParams& p, const float* x, const float* dy,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias);
void conv2d_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db);
// Y = conv(X, W) + bias (bias may be null), each output summed in double.
void conv2d_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                    const float* bias, float* y);
void batched_matmul_forward(const BatchedMatMul& p, const float* a, const float* b, float* y);
void batched_matmul_backward(const BatchedMatMul& p, const float* a, const float* b,
                             const float* dy, float* da, float* db);
void layer_norm_forward(const float* x, int64_t rows, int64_t n, float epsilon, const float* scale,
                        const float* bias, float* y, float* save_mean, float* save_invstd);
void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t n,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias);
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n);
}  // namespace ref

}  // namespace qsearch::train
