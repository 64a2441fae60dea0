// Hand-computed goldens for every reference float kernel (kernels/ref/).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ref/conv.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/gemm.h"
#include "kernels/ref/layout.h"
#include "kernels/ref/pool.h"

namespace qsearch::kernels {
namespace {

using V = std::vector<float>;

TEST(RefGemm, BiasAndTransposedB) {
  // y = x * w^T + b; x [2,3], w [2,3] (transposed), b [2]
  V x = {1, 2, 3, 4, 5, 6}, w = {1, 0, -1, 2, 1, 0}, b = {10, 20}, y(4);
  GemmParams p{.m = 2, .n = 2, .k = 3, .trans_b = true, .c_stride_m = 0, .c_stride_n = 1};
  ref::gemm_f32(p, x.data(), w.data(), b.data(), y.data());
  EXPECT_EQ(y, (V{1 - 3 + 10, 2 + 2 + 20, 4 - 6 + 10, 8 + 5 + 20}));
}

TEST(RefGemm, AlphaBetaTransAAndFullC) {
  // A stored [K=2, M=2] (trans_a), B [K=2, N=1], C full [2,1]; alpha 2, beta -1.
  V a = {1, 2, 3, 4}, b = {5, 6}, c = {1, 2}, y(2);
  GemmParams p{.m = 2,
               .n = 1,
               .k = 2,
               .alpha = 2,
               .beta = -1,
               .trans_a = true,
               .c_stride_m = 1,
               .c_stride_n = 0};
  ref::gemm_f32(p, a.data(), b.data(), c.data(), y.data());
  // A' = [[1,3],[2,4]]: A'B = [1*5+3*6, 2*5+4*6] = [23, 34]
  EXPECT_EQ(y, (V{2 * 23 - 1, 2 * 34 - 2}));
}

TEST(RefGemm, NoC) {
  V a = {1, 2}, b = {3, 4}, y(1);
  ref::gemm_f32({.m = 1, .n = 1, .k = 2}, a.data(), b.data(), nullptr, y.data());
  EXPECT_EQ(y[0], 11.0f);
}

TEST(RefMatMul, BroadcastBatch) {
  // A [2, 1, 2] x B [2, 1] (B broadcast over the batch): y [2, 1, 1]
  V a = {1, 2, 3, 4}, b = {10, 100}, y(2);
  MatMulParams p{.m = 1, .n = 1, .k = 2, .batch_rank = 1};
  p.batch_shape[0] = 2;
  p.a_batch_stride[0] = 2;
  p.b_batch_stride[0] = 0;
  ref::matmul_f32(p, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (V{210, 430}));
}

TEST(RefConv, PaddedThreeByThree) {
  // 1 channel 3x3 input, 3x3 all-ones kernel, pad 1: each output sums its neighbourhood.
  V x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w(9, 1.0f), bias = {0.5f}, y(9);
  Conv2dParams p{.batch = 1,
                 .in_channels = 1,
                 .in_h = 3,
                 .in_w = 3,
                 .out_channels = 1,
                 .out_h = 3,
                 .out_w = 3,
                 .kernel_h = 3,
                 .kernel_w = 3,
                 .pad_top = 1,
                 .pad_left = 1};
  ref::conv2d_f32(p, x.data(), w.data(), bias.data(), y.data());
  EXPECT_EQ(y, (V{12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5}));
}

TEST(RefConv, StrideDilationGroups) {
  // 2 groups of 1 channel, 4x4 input, 2x2 kernel with dilation 2, stride 2: out 1x1.
  V x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);
  V w = {1, 1, 1, 1, 1, -1, 0, 0}, y(2);
  Conv2dParams p{.batch = 1,
                 .in_channels = 2,
                 .in_h = 4,
                 .in_w = 4,
                 .out_channels = 2,
                 .out_h = 1,
                 .out_w = 1,
                 .kernel_h = 2,
                 .kernel_w = 2,
                 .stride_h = 2,
                 .stride_w = 2,
                 .dilation_h = 2,
                 .dilation_w = 2,
                 .groups = 2};
  ref::conv2d_f32(p, x.data(), w.data(), nullptr, y.data());
  // group 0 taps x[0], x[2], x[8], x[10]; group 1 taps x[16] - x[18].
  EXPECT_EQ(y, (V{0 + 2 + 8 + 10, 16 - 18}));
}

TEST(RefBatchNorm, Formula) {
  V x = {1, 2, 3, 4}, scale = {2, 1}, bias = {1, 0}, mean = {1, 4}, var = {4, 1}, y(4);
  ref::batch_norm_f32({.batch = 1, .channels = 2, .spatial = 2, .epsilon = 0}, x.data(),
                      scale.data(), bias.data(), mean.data(), var.data(), y.data());
  EXPECT_EQ(y, (V{1, 2, -1, 0}));
}

TEST(RefPool, MaxCeilModeAndPadding) {
  // 3x3 input, kernel 2 stride 2 ceil_mode: out 2x2, last window hangs over the edge.
  V x = {1, 5, 2, 7, 3, 0, 4, 8, 6}, y(4);
  Pool2dParams p{.batch = 1,
                 .channels = 1,
                 .in_h = 3,
                 .in_w = 3,
                 .out_h = 2,
                 .out_w = 2,
                 .kernel_h = 2,
                 .kernel_w = 2,
                 .stride_h = 2,
                 .stride_w = 2};
  ref::max_pool2d_f32(p, x.data(), y.data());
  EXPECT_EQ(y, (V{7, 2, 8, 6}));
}

TEST(RefPool, MaxPropagatesNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  V x = {1, nan, 3, 4}, y(1);
  Pool2dParams p{.batch = 1,
                 .channels = 1,
                 .in_h = 2,
                 .in_w = 2,
                 .out_h = 1,
                 .out_w = 1,
                 .kernel_h = 2,
                 .kernel_w = 2};
  ref::max_pool2d_f32(p, x.data(), y.data());
  EXPECT_TRUE(std::isnan(y[0]));
}

TEST(RefPool, AverageCountIncludePad) {
  // 2x2 input, kernel 2, stride 1, pad 1 all around: 3x3 outputs. Corner (0,0) covers one
  // pixel and three padding taps.
  V x = {4, 8, 12, 16}, y(9);
  Pool2dParams p{.batch = 1,
                 .channels = 1,
                 .in_h = 2,
                 .in_w = 2,
                 .out_h = 3,
                 .out_w = 3,
                 .kernel_h = 2,
                 .kernel_w = 2,
                 .pad_top = 1,
                 .pad_left = 1,
                 .pad_bottom = 1,
                 .pad_right = 1};
  ref::avg_pool2d_f32(p, x.data(), y.data());
  EXPECT_EQ(y[0], 4.0f);   // excludes padding
  EXPECT_EQ(y[4], 10.0f);  // centre: all four pixels
  p.count_include_pad = true;
  ref::avg_pool2d_f32(p, x.data(), y.data());
  EXPECT_EQ(y[0], 1.0f);  // 4 / 4 taps
  EXPECT_EQ(y[1], 3.0f);  // (4 + 8) / 4
}

TEST(RefPool, AverageCeilOverhangNotCounted) {
  // 3 wide, kernel 2 stride 2 ceil_mode, pad 0: the last window has one real tap and one tap
  // past the end that is not padding, so both modes divide by 1.
  V x = {2, 4, 9}, y(2);
  Pool2dParams p{.batch = 1,
                 .channels = 1,
                 .in_h = 1,
                 .in_w = 3,
                 .out_h = 1,
                 .out_w = 2,
                 .kernel_h = 1,
                 .kernel_w = 2,
                 .stride_h = 1,
                 .stride_w = 2,
                 .count_include_pad = true};
  ref::avg_pool2d_f32(p, x.data(), y.data());
  EXPECT_EQ(y, (V{3, 9}));
}

TEST(RefPool, GlobalAverage) {
  V x = {1, 2, 3, 4, 10, 20, 30, 40}, y(2);
  ref::global_avg_pool_f32(2, 4, x.data(), y.data());
  EXPECT_EQ(y, (V{2.5, 25}));
}

TEST(RefElementwise, BinaryBroadcast) {
  // [2,3] - [3] and [2,1] / [1,3]
  V a = {1, 2, 3, 4, 5, 6}, b = {1, 1, 2}, y(6);
  BinaryParams p{
      .op = BinaryOp::kSub, .rank = 2, .shape = {2, 3}, .a_stride = {3, 1}, .b_stride = {0, 1}};
  ref::binary_f32(p, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (V{0, 1, 1, 3, 4, 4}));
  V c = {6, 12}, d = {1, 2, 3};
  BinaryParams q{
      .op = BinaryOp::kDiv, .rank = 2, .shape = {2, 3}, .a_stride = {1, 0}, .b_stride = {0, 1}};
  ref::binary_f32(q, c.data(), d.data(), y.data());
  EXPECT_EQ(y, (V{6, 3, 2, 12, 6, 4}));
  BinaryParams s{.op = BinaryOp::kMul, .rank = 0};
  ref::binary_f32(s, a.data() + 1, c.data(), y.data());
  EXPECT_EQ(y[0], 12.0f);
}

TEST(RefElementwise, Unary) {
  V x = {-2, -0.5, 0, 3}, y(4);
  ref::unary_f32({.op = UnaryOp::kRelu}, x.data(), y.data(), 4);
  EXPECT_EQ(y, (V{0, 0, 0, 3}));
  ref::unary_f32({.op = UnaryOp::kLeakyRelu, .alpha = 0.5f}, x.data(), y.data(), 4);
  EXPECT_EQ(y, (V{-1, -0.25, 0, 3}));
  ref::unary_f32({.op = UnaryOp::kClip, .min = -1, .max = 1}, x.data(), y.data(), 4);
  EXPECT_EQ(y, (V{-1, -0.5, 0, 1}));
  ref::unary_f32({.op = UnaryOp::kSigmoid}, x.data(), y.data(), 4);
  EXPECT_FLOAT_EQ(y[2], 0.5f);
  EXPECT_FLOAT_EQ(y[3], 1.0f / (1.0f + std::exp(-3.0f)));
  ref::unary_f32({.op = UnaryOp::kTanh}, x.data(), y.data(), 4);
  EXPECT_FLOAT_EQ(y[0], std::tanh(-2.0f));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  V n = {nan};
  ref::unary_f32({.op = UnaryOp::kRelu}, n.data(), y.data(), 1);
  EXPECT_TRUE(std::isnan(y[0]));
}

TEST(RefElementwise, SoftmaxAlongMiddleAxis) {
  // [1, 2, 2]: softmax over the axis of size 2 for each of the 2 inner positions.
  V x = {0, 1, std::log(3.0f), 1}, y(4);
  ref::softmax_f32({.outer = 1, .axis = 2, .inner = 2}, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], 0.25f);
  EXPECT_FLOAT_EQ(y[2], 0.75f);
  EXPECT_FLOAT_EQ(y[1], 0.5f);
  EXPECT_FLOAT_EQ(y[3], 0.5f);
}

// Issue 8 item 6: log-softmax is x - max - log(sum(exp(x - max))), finite where the softmax
// itself underflows to 0 in float32.
TEST(RefElementwise, LogSoftmaxAlongMiddleAxisIsStable) {
  V x = {0, 1, std::log(3.0f), 1}, y(4);  // [1, 2, 2] as in the softmax test
  ref::log_softmax_f32({.outer = 1, .axis = 2, .inner = 2}, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], std::log(0.25f));
  EXPECT_FLOAT_EQ(y[2], std::log(0.75f));
  EXPECT_FLOAT_EQ(y[1], std::log(0.5f));
  EXPECT_FLOAT_EQ(y[3], std::log(0.5f));
  // exp(-300) is 0 in float32: log(softmax) would give -inf, the stable form gives -300.
  V big = {1000, 700, 1000}, p(3), l(3);  // [1, 3, 1]
  ref::softmax_f32({.outer = 1, .axis = 3, .inner = 1}, big.data(), p.data());
  EXPECT_EQ(p[1], 0.0f);
  ref::log_softmax_f32({.outer = 1, .axis = 3, .inner = 1}, big.data(), l.data());
  EXPECT_FLOAT_EQ(l[1], -300.0f - std::log(2.0f));
  EXPECT_FLOAT_EQ(l[0], -std::log(2.0f));
  EXPECT_FLOAT_EQ(l[2], -std::log(2.0f));
}

TEST(RefLayout, Transpose) {
  V x = {0, 1, 2, 3, 4, 5}, y(6);  // [2, 3]
  TransposeParams p{.rank = 2, .in_shape = {2, 3}, .perm = {1, 0}};
  ref::transpose_f32(p, x.data(), y.data());
  EXPECT_EQ(y, (V{0, 3, 1, 4, 2, 5}));
  // [1, 2, 3] -> perm (2, 0, 1) -> [3, 1, 2]
  TransposeParams q{.rank = 3, .in_shape = {1, 2, 3}, .perm = {2, 0, 1}};
  ref::transpose_f32(q, x.data(), y.data());
  EXPECT_EQ(y, (V{0, 3, 1, 4, 2, 5}));
}

TEST(RefLayout, Concat) {
  V a = {1, 2, 3, 4, 5, 6}, b = {7, 8}, y(8);  // [2,3] ++ [2,1] along axis 1
  const float* in[] = {a.data(), b.data()};
  int64_t inner[] = {3, 1};
  ref::concat_f32(2, in, inner, 2, y.data());
  EXPECT_EQ(y, (V{1, 2, 3, 7, 4, 5, 6, 8}));
}

}  // namespace
}  // namespace qsearch::kernels
