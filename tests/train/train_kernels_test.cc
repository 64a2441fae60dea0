// The fast training kernels (train/grad_kernels.h) against their reference twins (namespace
// train::ref: direct definitions, serial, sums in double): BatchNorm forward/backward, the
// one-channel-per-group convolution forward and backward (depthwise; a first conv on a
// one-channel image), the pointwise convolution forward and input gradient, the attention MatMul
// forward/backward, LayerNorm forward/backward, GELU forward/backward, and the transposes (exact
// copies). Shapes are chosen to hit every vector tail, chunk boundary and padding case of the
// fast paths; each is also run with 1 and 3 threads, which must give the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "train/grad_kernels.h"

namespace qsearch::train {
namespace {

std::vector<float> random_vec(int64_t n, Rng& rng, double lo = -1, double hi = 1) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

// |got - want| <= tol * max(max |want| over the tensor, min_scale) + 1e-6, element by element.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const std::string& what, double min_scale = 0) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = min_scale;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::abs(w)));
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol * scale + 1e-6) && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: " << got[i] << " vs " << want[i] << " (scale "
                    << scale << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements differ";
}

// Runs fn with 1 and 3 threads and checks the bits agree; returns the 1-thread result.
std::vector<float> same_for_threads(const std::function<std::vector<float>()>& fn,
                                    const std::string& what) {
  set_num_threads(1);
  const std::vector<float> one = fn();
  set_num_threads(3);
  const std::vector<float> three = fn();
  set_num_threads(2);
  EXPECT_EQ(one.size(), three.size()) << what;
  EXPECT_EQ(0, std::memcmp(one.data(), three.data(), one.size() * sizeof(float)))
      << what << ": the thread count changed the result";
  return one;
}

// same_for_threads for a kernel with several outputs: compares all of them, returns each.
using Parts = std::vector<std::vector<float>>;
Parts same_parts_for_threads(const std::function<Parts()>& fn, const std::string& what) {
  Parts parts;
  const std::vector<float> flat = same_for_threads(
      [&] {
        parts = fn();
        std::vector<float> out;
        for (const auto& v : parts) out.insert(out.end(), v.begin(), v.end());
        return out;
      },
      what);
  size_t at = 0;
  for (auto& v : parts) {
    std::copy(flat.begin() + at, flat.begin() + at + v.size(), v.begin());
    at += v.size();
  }
  return parts;
}

TEST(TrainKernels, BatchNormForwardAndBackwardMatchTheReference) {
  struct Case {
    int64_t batch, channels, spatial;
    double offset = 0;  // added to x: statistics of values far from 0
  };
  // spatial 1 (BatchNorm1d), tails of 1..7 after blocks of 8, several blocks.
  for (const Case& c : {Case{5, 3, 1}, Case{2, 4, 7}, Case{3, 2, 13}, Case{4, 5, 49},
                        Case{2, 3, 196}, Case{4, 3, 49, 1000}}) {
    SCOPED_TRACE(testing::Message() << c.batch << "x" << c.channels << "x" << c.spatial);
    Rng rng(3);
    kernels::BatchNormParams p;
    p.batch = c.batch;
    p.channels = c.channels;
    p.spatial = c.spatial;
    p.epsilon = 1e-5f;
    const int64_t n = c.batch * c.channels * c.spatial;
    const std::vector<float> x = random_vec(n, rng, c.offset - 2, c.offset + 3),
                             dy = random_vec(n, rng);
    const std::vector<float> scale = random_vec(c.channels, rng, 0.5, 1.5);
    const std::vector<float> bias = random_vec(c.channels, rng);
    const std::vector<float> rm0 = random_vec(c.channels, rng),
                             rv0 = random_vec(c.channels, rng, 0.5, 2);
    // Everything the forward and backward write, concatenated.
    auto run = [&](bool fast) {
      std::vector<float> y(n), rm = rm0, rv = rv0, sm(c.channels), si(c.channels), dx(n),
                               ds(c.channels), db(c.channels);
      (fast ? batch_norm_train_forward : ref::batch_norm_train_forward)(
          p, 0.1, x.data(), scale.data(), bias.data(), y.data(), rm.data(), rv.data(), sm.data(),
          si.data());
      (fast ? batch_norm_backward : ref::batch_norm_backward)(p, x.data(), dy.data(), scale.data(),
                                                              sm.data(), si.data(), dx.data(),
                                                              ds.data(), db.data());
      return Parts{y, rm, rv, sm, si, dx, ds, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "batch norm");
    const char* names[] = {"y",           "running_mean", "running_var", "save_mean",
                           "save_invstd", "dx",           "dscale",      "dbias"};
    for (size_t k = 0; k < want.size(); ++k) {
      // y = x a + (bias - mean a) in float, as PyTorch's CPU kernel computes it: its rounding
      // is relative to |x a|, not to |y|.
      double xa = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t ch = (i / c.spatial) % c.channels;
        xa = std::max(xa, std::abs(x[i] * scale[ch] * static_cast<double>(want[4][ch])));
      }
      expect_close(got[k], want[k], 2e-6, names[k], k == 0 ? xa : 0);
    }
  }
}

TEST(TrainKernels, FusedBatchNormReluIsBitIdenticalToTheSeparateKernels) {
  // batch_norm_relu_train_forward = batch_norm_train_forward + relu_forward and
  // batch_norm_relu_backward = relu_backward + batch_norm_backward, bit for bit (spatial 1, vector
  // tails, a map of several blocks; exact zeros, negative zero and a NaN in x).
  for (const auto& [batch, channels, spatial] :
       {std::array<int64_t, 3>{5, 3, 1}, {3, 2, 13}, {4, 5, 49}, {2, 3, 196}}) {
    SCOPED_TRACE(testing::Message() << batch << "x" << channels << "x" << spatial);
    Rng rng(21);
    kernels::BatchNormParams p;
    p.batch = batch;
    p.channels = channels;
    p.spatial = spatial;
    p.epsilon = 1e-5f;
    const int64_t n = batch * channels * spatial;
    std::vector<float> x = random_vec(n, rng, -2, 2);
    const std::vector<float> dy = random_vec(n, rng);
    const std::vector<float> scale = random_vec(channels, rng, 0.5, 1.5),
                             bias = random_vec(channels, rng, -0.2, 0.2);
    x[n - 1] = 0.0f;
    x[n - 2] = -0.0f;
    // A NaN in the last channel (its statistics and outputs become NaN; ReLU passes them on).
    if (spatial > 1) x[(channels - 1) * spatial + 1] = std::nanf("");
    auto run = [&](bool fused) {
      std::vector<float> y(n), yr(n), rm(channels, 0.1f), rv(channels, 0.9f), sm(channels),
          si(channels), g(n), dx(n), ds(channels), db(channels);
      if (fused) {
        batch_norm_relu_train_forward(p, 0.1, x.data(), scale.data(), bias.data(), y.data(),
                                      yr.data(), rm.data(), rv.data(), sm.data(), si.data());
        batch_norm_relu_backward(p, x.data(), yr.data(), dy.data(), g.data(), scale.data(),
                                 sm.data(), si.data(), dx.data(), ds.data(), db.data());
      } else {
        batch_norm_train_forward(p, 0.1, x.data(), scale.data(), bias.data(), y.data(), rm.data(),
                                 rv.data(), sm.data(), si.data());
        relu_forward(y.data(), yr.data(), n);
        relu_backward(yr.data(), dy.data(), g.data(), n);
        batch_norm_backward(p, x.data(), g.data(), scale.data(), sm.data(), si.data(), dx.data(),
                            ds.data(), db.data());
      }
      return Parts{y, yr, rm, rv, sm, si, g, dx, ds, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "fused batch norm relu");
    const char* names[] = {"y",           "relu_y", "running_mean", "running_var", "save_mean",
                           "save_invstd", "dy",     "dx",           "dscale",      "dbias"};
    for (size_t k = 0; k < want.size(); ++k) {
      ASSERT_EQ(got[k].size(), want[k].size());
      EXPECT_EQ(0, std::memcmp(got[k].data(), want[k].data(), want[k].size() * sizeof(float)))
          << names[k];
    }
    int64_t positive = 0;
    for (float v : want[1]) positive += v > 0;
    EXPECT_GT(positive, 0);
    EXPECT_LT(positive, n);
  }
}

TEST(TrainKernels, ParallelLoopsRunEveryItemOfEveryLoopOnce) {
  // Loops of 0, 1, a partial last unit and many units, for 1 to 4 threads.
  for (int threads = 1; threads <= 4; ++threads) {
    set_num_threads(threads);
    std::vector<std::vector<int>> seen(4);
    const int64_t items[] = {0, 1, 37, 500}, grains[] = {3, 1, 8, 64};
    for (int k = 0; k < 4; ++k) seen[k].assign(items[k], 0);
    auto mark = [&](int k) {
      return [&, k](int64_t i0, int64_t i1) {
        ASSERT_LE(0, i0);
        ASSERT_LE(i0, i1);
        ASSERT_LE(i1, items[k]);
        for (int64_t i = i0; i < i1; ++i) __atomic_add_fetch(&seen[k][i], 1, __ATOMIC_RELAXED);
      };
    };
    auto f0 = mark(0), f1 = mark(1), f2 = mark(2), f3 = mark(3);
    parallel_loops({ItemLoop{items[0], grains[0], f0}, ItemLoop{items[1], grains[1], f1},
                    ItemLoop{items[2], grains[2], f2}, ItemLoop{items[3], grains[3], f3}});
    parallel_loops({ItemLoop{items[3], grains[3], f3}});
    for (int k = 0; k < 4; ++k) {
      for (int64_t i = 0; i < items[k]; ++i) {
        EXPECT_EQ(seen[k][i], k == 3 ? 2 : 1) << threads << " threads, loop " << k << " item " << i;
      }
    }
  }
  set_num_threads(2);
}

TEST(TrainKernels, PointwiseConvBackwardMatchesTheReference) {
  // conv2d_backward of a 1x1 conv: dX (the pointwise kernel) and dW (image chunks) in one
  // parallel region; maps of 7x7 (several images per dW chunk), 14x14 and 70x70 (one image per
  // chunk), with and without bias.
  struct Case {
    int64_t batch, in, out, h, w;
  };
  for (const Case& c : {Case{9, 32, 64, 7, 7}, Case{5, 16, 32, 14, 14}, Case{3, 6, 10, 70, 70},
                        Case{4, 7, 13, 3, 5}}) {
    SCOPED_TRACE(testing::Message()
                 << c.batch << " " << c.in << "->" << c.out << " " << c.h << "x" << c.w);
    kernels::Conv2dParams p;
    p.batch = c.batch;
    p.in_channels = c.in;
    p.out_channels = c.out;
    p.in_h = p.out_h = c.h;
    p.in_w = p.out_w = c.w;
    p.kernel_h = p.kernel_w = 1;
    Rng rng(12);
    const std::vector<float> x = random_vec(c.batch * c.in * c.h * c.w, rng);
    const std::vector<float> w = random_vec(c.out * c.in, rng);
    const std::vector<float> dy = random_vec(c.batch * c.out * c.h * c.w, rng);
    auto run = [&](bool fast) {
      std::vector<float> dx(x.size()), dw(w.size()), db(c.out);
      (fast ? conv2d_backward : ref::conv2d_backward)(p, x.data(), w.data(), dy.data(), dx.data(),
                                                      dw.data(), db.data());
      return Parts{dw, dx, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "pointwise backward");
    const char* names[] = {"dw", "dx", "db"};
    for (size_t k = 0; k < want.size(); ++k) expect_close(got[k], want[k], 1e-5, names[k]);
  }
}

TEST(TrainKernels, OneChannelPerGroupConvBackwardMatchesTheReference) {
  struct Case {
    int64_t batch, channels, groups, mult, h, w, k, stride, dilation, pad_t, pad_l;
  };
  // Depthwise (mult 1) and channel multipliers, strides 1 / 2 / 3, dilation, asymmetric and
  // oversized padding (pad > dilation * (k - 1): dX cannot be a convolution), a map whose
  // chunks hold one image (several chunks), widths that leave every vector tail, and a
  // two-channel group (the GEMM path) for comparison.
  for (const Case& c :
       {Case{3, 4, 4, 1, 9, 11, 3, 1, 1, 1, 1}, Case{2, 3, 3, 1, 14, 14, 3, 2, 1, 1, 1},
        Case{2, 2, 2, 3, 10, 7, 3, 2, 2, 2, 0}, Case{2, 1, 1, 16, 14, 14, 3, 2, 1, 1, 1},
        Case{2, 2, 2, 1, 6, 5, 3, 1, 1, 3, 2}, Case{3, 2, 2, 1, 70, 66, 3, 1, 1, 1, 1},
        Case{2, 3, 3, 2, 9, 13, 5, 3, 1, 2, 2}, Case{2, 4, 2, 1, 8, 9, 3, 1, 1, 1, 1},
        Case{2, 3, 3, 1, 9, 10, 3, 1, 2, 2, 1}, Case{2, 2, 2, 2, 7, 12, 5, 1, 1, 0, 3}}) {
    SCOPED_TRACE(testing::Message() << "batch " << c.batch << " C " << c.channels << " G "
                                    << c.groups << " mult " << c.mult << " " << c.h << "x" << c.w
                                    << " k " << c.k << " s " << c.stride << " d " << c.dilation);
    kernels::Conv2dParams p;
    p.batch = c.batch;
    p.in_channels = c.channels;
    p.in_h = c.h;
    p.in_w = c.w;
    p.out_channels = c.groups * c.mult;
    p.kernel_h = p.kernel_w = c.k;
    p.stride_h = p.stride_w = c.stride;
    p.dilation_h = p.dilation_w = c.dilation;
    p.pad_top = c.pad_t;
    p.pad_left = c.pad_l;
    p.groups = c.groups;
    const int64_t ext = c.dilation * (c.k - 1) + 1;
    p.out_h = (c.h + 2 * c.pad_t - ext) / c.stride + 1;  // symmetric bottom / right pads
    p.out_w = (c.w + 2 * c.pad_l - ext) / c.stride + 1;
    Rng rng(11);
    const int64_t cg = c.channels / c.groups;
    const std::vector<float> x = random_vec(c.batch * c.channels * c.h * c.w, rng);
    const std::vector<float> w = random_vec(p.out_channels * cg * c.k * c.k, rng);
    const std::vector<float> dy = random_vec(c.batch * p.out_channels * p.out_h * p.out_w, rng);
    auto run = [&](bool fast) {
      std::vector<float> dx(x.size()), dw(w.size()), db(p.out_channels);
      (fast ? conv2d_backward : ref::conv2d_backward)(p, x.data(), w.data(), dy.data(), dx.data(),
                                                      dw.data(), db.data());
      return Parts{dw, dx, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "conv backward");
    const char* names[] = {"dw", "dx", "db"};
    for (size_t k = 0; k < want.size(); ++k) expect_close(got[k], want[k], 1e-5, names[k]);
  }
}

TEST(TrainKernels, OneChannelPerGroupConvForwardMatchesTheReference) {
  struct Case {
    int64_t batch, channels, mult, h, w, kh, kw, stride_h, stride_w, dilation, pad_t, pad_l;
    bool bias;
  };
  // Depthwise 3x3 at strides 1 and 2 (mobilenet-s), channel multipliers (a first conv on a
  // one-channel image), a patch embedding (stride = kernel), stride 3, dilation, asymmetric and
  // oversized padding, non-square kernels and strides, 1-pixel outputs, widths that leave every
  // vector tail.
  for (const Case& c : {Case{3, 4, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, false},
                        Case{2, 3, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, true},
                        Case{2, 1, 16, 28, 28, 3, 3, 2, 2, 1, 1, 1, false},
                        Case{2, 1, 5, 28, 28, 7, 7, 7, 7, 1, 0, 0, true},
                        Case{2, 2, 3, 10, 7, 3, 3, 2, 2, 2, 2, 0, false},
                        Case{2, 3, 2, 9, 13, 5, 5, 3, 3, 1, 2, 2, true},
                        Case{2, 2, 1, 6, 5, 3, 3, 1, 1, 1, 3, 2, false},
                        Case{2, 3, 1, 9, 10, 3, 2, 1, 2, 2, 2, 1, false},
                        Case{1, 2, 1, 3, 3, 3, 3, 1, 1, 1, 0, 0, true},
                        Case{2, 5, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, false}}) {
    SCOPED_TRACE(testing::Message()
                 << "batch " << c.batch << " C " << c.channels << " mult " << c.mult << " " << c.h
                 << "x" << c.w << " k " << c.kh << "x" << c.kw << " s " << c.stride_h << ","
                 << c.stride_w << " d " << c.dilation);
    kernels::Conv2dParams p;
    p.batch = c.batch;
    p.in_channels = c.channels;
    p.in_h = c.h;
    p.in_w = c.w;
    p.out_channels = c.channels * c.mult;
    p.kernel_h = c.kh;
    p.kernel_w = c.kw;
    p.stride_h = c.stride_h;
    p.stride_w = c.stride_w;
    p.dilation_h = p.dilation_w = c.dilation;
    p.pad_top = c.pad_t;
    p.pad_left = c.pad_l;
    p.groups = c.channels;
    p.out_h = (c.h + 2 * c.pad_t - c.dilation * (c.kh - 1) - 1) / c.stride_h + 1;
    p.out_w = (c.w + 2 * c.pad_l - c.dilation * (c.kw - 1) - 1) / c.stride_w + 1;
    ASSERT_TRUE(one_channel_conv_applies(p));
    Rng rng(5);
    const std::vector<float> x = random_vec(c.batch * c.channels * c.h * c.w, rng);
    const std::vector<float> w = random_vec(p.out_channels * c.kh * c.kw, rng);
    const std::vector<float> b = random_vec(p.out_channels, rng);
    const int64_t ny = c.batch * p.out_channels * p.out_h * p.out_w;
    std::vector<float> want(ny);
    ref::conv2d_forward(p, x.data(), w.data(), c.bias ? b.data() : nullptr, want.data());
    const std::vector<float> got = same_for_threads(
        [&] {
          std::vector<float> y(ny, std::nanf(""));
          one_channel_conv_forward(p, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data());
          return y;
        },
        "conv forward");
    expect_close(got, want, 1e-5, "y");
  }
}

TEST(TrainKernels, PointwiseConvForwardAndInputGradMatchTheReference) {
  struct Case {
    int64_t batch, in, out, h, w;
    bool bias;
  };
  // Row counts around the 6-row tile (1, 5, 6, 7, 13 and the zoo's 16 / 32 / 64), pixel counts
  // around the 16-pixel tile (1, 15, 16, 17, 49, 196: every tail), one image and several.
  for (const Case& c :
       {Case{3, 16, 32, 14, 14, true}, Case{2, 32, 64, 7, 7, false}, Case{2, 64, 64, 7, 7, true},
        Case{1, 7, 5, 1, 1, false}, Case{2, 5, 13, 3, 5, true}, Case{3, 13, 6, 4, 4, false},
        Case{2, 6, 7, 1, 17, true}, Case{2, 1, 1, 5, 3, false}}) {
    SCOPED_TRACE(testing::Message() << "batch " << c.batch << " " << c.in << " -> " << c.out << " "
                                    << c.h << "x" << c.w);
    kernels::Conv2dParams p;
    p.batch = c.batch;
    p.in_channels = c.in;
    p.out_channels = c.out;
    p.in_h = p.out_h = c.h;
    p.in_w = p.out_w = c.w;
    p.kernel_h = p.kernel_w = 1;
    ASSERT_TRUE(pointwise_conv_applies(p));
    Rng rng(9);
    const int64_t hw = c.h * c.w;
    const std::vector<float> x = random_vec(c.batch * c.in * hw, rng);
    const std::vector<float> w = random_vec(c.out * c.in, rng);
    const std::vector<float> b = random_vec(c.out, rng);
    const std::vector<float> dy = random_vec(c.batch * c.out * hw, rng);
    const float* bias = c.bias ? b.data() : nullptr;
    std::vector<float> want_y(dy.size()), want_dx(x.size()), dw(w.size());
    ref::conv2d_forward(p, x.data(), w.data(), bias, want_y.data());
    ref::conv2d_backward(p, x.data(), w.data(), dy.data(), want_dx.data(), dw.data(), nullptr);
    const Parts got = same_parts_for_threads(
        [&] {
          std::vector<float> y(dy.size(), std::nanf("")), dx(x.size(), std::nanf(""));
          pointwise_conv_forward(p, x.data(), w.data(), bias, y.data());
          pointwise_conv_input_grad(p, w.data(), dy.data(), dx.data());
          return Parts{y, dx};
        },
        "pointwise conv");
    expect_close(got[0], want_y, 1e-5, "y");
    expect_close(got[1], want_dx, 1e-5, "dx");
  }
}

TEST(TrainKernels, AttentionMatMulMatchesTheReference) {
  struct Case {
    Shape a, b;
  };
  // The ViT's heads ([B, 4, 16, 16]), sizes off the 4-row and 16-column tiles, broadcasts of
  // either operand, and a rank-2 operand against a batch.
  for (const Case& c : {Case{{3, 4, 16, 16}, {3, 4, 16, 16}}, Case{{2, 5, 7}, {2, 7, 19}},
                        Case{{2, 3, 6, 9}, {1, 3, 9, 33}}, Case{{1, 2, 3, 5}, {4, 2, 5, 8}},
                        Case{{3, 9, 4}, {4, 17}}}) {
    SCOPED_TRACE(testing::Message() << shape_str(c.a) << " @ " << shape_str(c.b));
    const BatchedMatMul p = batched_matmul_shapes(c.a, c.b);
    Rng rng(5);
    const std::vector<float> a = random_vec(shape_numel(c.a), rng);
    const std::vector<float> b = random_vec(shape_numel(c.b), rng);
    const std::vector<float> dy = random_vec(p.batches * p.m * p.n, rng);
    auto run = [&](bool fast) {
      std::vector<float> y(dy.size()), da(a.size()), db(b.size());
      (fast ? batched_matmul_forward : ref::batched_matmul_forward)(p, a.data(), b.data(),
                                                                    y.data());
      (fast ? batched_matmul_backward : ref::batched_matmul_backward)(
          p, a.data(), b.data(), dy.data(), da.data(), db.data());
      return Parts{y, da, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "matmul");
    const char* names[] = {"y", "da", "db"};
    for (size_t k = 0; k < want.size(); ++k) expect_close(got[k], want[k], 1e-5, names[k]);
  }
}

TEST(TrainKernels, LayerNormMatchesTheReference) {
  struct Case {
    int64_t rows, n;
    bool bias;
  };
  // Row lengths with every tail, rows over several 256-row chunks, with and without bias.
  for (const Case& c :
       {Case{7, 5, true}, Case{300, 64, true}, Case{513, 67, false}, Case{3, 8, true}}) {
    SCOPED_TRACE(testing::Message() << c.rows << "x" << c.n);
    Rng rng(9);
    const std::vector<float> x = random_vec(c.rows * c.n, rng, 1, 3),
                             dy = random_vec(c.rows * c.n, rng);
    const std::vector<float> scale = random_vec(c.n, rng, 0.5, 1.5), bias = random_vec(c.n, rng);
    auto run = [&](bool fast) {
      std::vector<float> y(x.size()), sm(c.rows), si(c.rows), dx(x.size()), ds(c.n), db(c.n);
      (fast ? layer_norm_forward : ref::layer_norm_forward)(
          x.data(), c.rows, c.n, 1e-5f, scale.data(), c.bias ? bias.data() : nullptr, y.data(),
          sm.data(), si.data());
      (fast ? layer_norm_backward : ref::layer_norm_backward)(x.data(), dy.data(), c.rows, c.n,
                                                              scale.data(), sm.data(), si.data(),
                                                              dx.data(), ds.data(), db.data());
      return Parts{y, sm, si, dx, ds, db};
    };
    const Parts want = run(false);
    const Parts got = same_parts_for_threads([&] { return run(true); }, "layer norm");
    const char* names[] = {"y", "save_mean", "save_invstd", "dx", "dscale", "dbias"};
    for (size_t k = 0; k < want.size(); ++k) expect_close(got[k], want[k], 2e-6, names[k]);
  }
}

TEST(TrainKernels, GeluMatchesTheReference) {
  // A dense grid over [-9, 9] (both erf branches, the left tail) and a length with a tail.
  std::vector<float> x;
  for (int i = 0; i <= 18003; ++i) x.push_back(-9.0f + 0.001f * static_cast<float>(i));
  Rng rng(4);
  const std::vector<float> dy = random_vec(static_cast<int64_t>(x.size()), rng);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(n), yr(n), dx(n), dxr(n);
  gelu_forward(x.data(), y.data(), n);
  ref::gelu_forward(x.data(), yr.data(), n);
  gelu_backward(x.data(), dy.data(), dx.data(), n);
  ref::gelu_backward(x.data(), dy.data(), dxr.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    // GELU within 3 ulp or 3 * 2^-24 |x| (kernels/vec_math.h); its derivative within 1e-6 absolute
    // (it is at most 1.13 in size, and 1 + erf cancels in the left tail as in PyTorch's float
    // kernel).
    const double ulp = std::numeric_limits<float>::epsilon();
    ASSERT_NEAR(y[i], yr[i], std::max(4 * ulp * std::abs(yr[i]), 4 * ulp / 2 * std::abs(x[i])))
        << "gelu(" << x[i] << ")";
    ASSERT_NEAR(dx[i], dxr[i], 1e-6) << "gelu'(" << x[i] << ")";
  }
}

TEST(TrainKernels, TransposesAreExactCopies) {
  Rng rng(6);
  // train::transpose: sizes with 8x8 blocks, their tails and several 32-row tiles.
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 70}, {8, 8}, {5, 3}, {64, 17}}) {
    const std::vector<float> x = random_vec(rows * cols, rng);
    std::vector<float> y(x.size());
    transpose(x.data(), rows, cols, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(y[c * rows + r], x[r * cols + c])
            << rows << "x" << cols << " at " << r << ", " << c;
      }
    }
  }
  // train::permute (the inference transpose): the ViT's head split and k^T.
  const Shape xs{2, 3, 4, 5};
  const std::vector<float> x = random_vec(shape_numel(xs), rng);
  for (const std::vector<int64_t>& perm :
       {std::vector<int64_t>{0, 2, 1, 3}, {0, 2, 3, 1}, {0, 3, 1, 2}, {0, 1, 3, 2}}) {
    std::vector<float> y(x.size());
    permute(x.data(), xs, perm, y.data());
    const Shape ys{xs[perm[0]], xs[perm[1]], xs[perm[2]], xs[perm[3]]};
    int64_t at = 0;
    for (int64_t i0 = 0; i0 < ys[0]; ++i0) {
      for (int64_t i1 = 0; i1 < ys[1]; ++i1) {
        for (int64_t i2 = 0; i2 < ys[2]; ++i2) {
          for (int64_t i3 = 0; i3 < ys[3]; ++i3, ++at) {
            int64_t src[4];
            src[perm[0]] = i0;
            src[perm[1]] = i1;
            src[perm[2]] = i2;
            src[perm[3]] = i3;
            ASSERT_EQ(y[at], x[((src[0] * xs[1] + src[1]) * xs[2] + src[2]) * xs[3] + src[3]]);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::train
