// Float Winograd F(4x4, 3x3) (kernels/winograd.h) against the reference convolution
// (kernels/ref/conv.h, double accumulation) over many random geometries, with the bound of
// docs/numerics.md "Float Winograd", and against itself across thread counts (same bits).
#include "kernels/winograd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/float_test_util.h"
#include "kernels/ref/conv.h"

namespace qsearch::kernels {
namespace {

using testing::random_floats;

// docs/numerics.md "Float Winograd": |y - exact| <= kWinoTol * magnitude, magnitude =
// sum_k |w_k x_k| + |bias| + |residual| (the direct conv's is (taps + 4) * FLT_EPSILON).
constexpr double kWinoTol = 1e-5;

struct Case {
  int64_t batch, c, h, w, m;
  int64_t pt, pl, pb, pr;  // pads top, left, bottom, right (bottom / right fix out_h / out_w)
  bool bias, residual, relu, after;
};

struct Result {
  std::vector<float> y;
  double worst = 0;  // max |y - exact| / magnitude
};

Result run_case(const Case& c, uint64_t seed, Isa isa, int threads, double* max_ratio = nullptr) {
  Conv2dParams p{.batch = c.batch,
                 .in_channels = c.c,
                 .in_h = c.h,
                 .in_w = c.w,
                 .out_channels = c.m,
                 .kernel_h = 3,
                 .kernel_w = 3,
                 .pad_top = c.pt,
                 .pad_left = c.pl};
  p.out_h = c.h + c.pt + c.pb - 2;
  p.out_w = c.w + c.pl + c.pr - 2;
  EXPECT_TRUE(winograd_applies(p));
  auto x = random_floats(c.batch * c.c * c.h * c.w, seed);
  auto w = random_floats(c.m * c.c * 9, seed + 1);
  auto bias = random_floats(c.m, seed + 2);
  const int64_t ny = c.batch * c.m * p.out_h * p.out_w;
  auto res = random_floats(ny, seed + 3);
  std::vector<float> exact(ny), mag(ny), ax(x.size()), aw(w.size());
  ref::conv2d_f32(p, x.data(), w.data(), nullptr, exact.data());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (size_t i = 0; i < w.size(); ++i) aw[i] = std::fabs(w[i]);
  ref::conv2d_f32(p, ax.data(), aw.data(), nullptr, mag.data());

  const PackedConvWeights ww = pack_conv_weights(w.data(), c.m, c.c, 3, 3, 1, isa);
  Epilogue ep;
  if (c.bias) ep.bias = bias.data();
  if (c.residual) ep.residual = res.data();
  ep.residual_after_clamp = c.after;
  if (c.relu) ep.clamp_min = 0.0f;
  Result r;
  r.y.assign(ny, -7.0f);
  const int saved = num_threads();
  set_num_threads(threads);
  conv2d_winograd_f32(p, x.data(), ww, r.y.data(), ep);
  set_num_threads(saved);

  const int64_t ohw = p.out_h * p.out_w;
  int bad = 0;
  for (int64_t i = 0; i < ny; ++i) {
    const int64_t o = i / ohw % c.m;
    const double b = c.bias ? bias[o] : 0.0, rv = c.residual ? res[i] : 0.0;
    double v = static_cast<double>(exact[i]) + b;
    const double lo = c.relu ? 0.0 : -INFINITY;
    if (c.residual && !c.after) v += rv;
    v = std::max(v, lo);
    if (c.residual && c.after) v += rv;
    // The reference's own float rounding (one per output) is inside the bound's slack.
    const double m = static_cast<double>(mag[i]) + std::fabs(b) + std::fabs(rv);
    const double err = std::fabs(r.y[i] - v);
    r.worst = std::max(r.worst, err / std::max(m, 1e-30));
    if (err > kWinoTol * m + 4 * FLT_EPSILON * std::fabs(v) && bad++ < 5) {
      ADD_FAILURE() << "output " << i << " (channel " << o << "): " << r.y[i] << " vs " << v
                    << ", error " << err << " > " << kWinoTol << " * magnitude " << m;
    }
  }
  if (max_ratio != nullptr) *max_ratio = std::max(*max_ratio, r.worst);
  return r;
}

std::vector<Isa> isas() {
  std::vector<Isa> v{Isa::kAvx2};
  if (isa_supported(Isa::kAvx512)) v.push_back(Isa::kAvx512);
  return v;
}

TEST(Winograd, MatchesReferenceOnRandomGeometries) {
  Rng rng(2026);
  double worst = 0;
  for (Isa isa : isas()) {
    for (int it = 0; it < 120; ++it) {
      Case c{};
      c.batch = 1 + static_cast<int64_t>(rng.uniform(0, 3));
      c.c = 1 + static_cast<int64_t>(rng.uniform(0, 70));
      c.m = 1 + static_cast<int64_t>(rng.uniform(0, 40));
      c.h = 1 + static_cast<int64_t>(rng.uniform(0, 19));
      c.w = 1 + static_cast<int64_t>(rng.uniform(0, 19));
      c.pt = static_cast<int64_t>(rng.uniform(0, 3));
      c.pl = static_cast<int64_t>(rng.uniform(0, 3));
      c.pb = static_cast<int64_t>(rng.uniform(0, 3));
      c.pr = static_cast<int64_t>(rng.uniform(0, 3));
      if (c.h + c.pt + c.pb < 3 || c.w + c.pl + c.pr < 3) continue;
      c.bias = rng.uniform(0, 1) < 0.7;
      c.residual = rng.uniform(0, 1) < 0.4;
      c.relu = rng.uniform(0, 1) < 0.5;
      c.after = rng.uniform(0, 1) < 0.5;
      SCOPED_TRACE(::testing::Message()
                   << isa_name(isa) << " b=" << c.batch << " c=" << c.c << " m=" << c.m << " "
                   << c.h << "x" << c.w << " pads " << c.pt << "," << c.pl << "," << c.pb << ","
                   << c.pr << " bias=" << c.bias << " res=" << c.residual << " relu=" << c.relu
                   << " after=" << c.after);
      run_case(c, 100 + it, isa, 1 + it % 2, &worst);
    }
  }
  std::printf("worst |error| / magnitude: %.3g (bound %.3g)\n", worst, kWinoTol);
}

// Maps 25..70 wide (8 and more tiles per row: the padded copy's rows are split into column
// phases 32 floats at a time, the rest one by one) with every left pad 0..2, right edges of
// 1..4 valid columns and every epilogue (the output tiles are stored a 4-float row at a time,
// masked at the right edge).
TEST(Winograd, MatchesReferenceOnWideMaps) {
  Rng rng(77);
  double worst = 0;
  for (Isa isa : isas()) {
    for (int it = 0; it < 40; ++it) {
      Case c{};
      c.batch = 1 + static_cast<int64_t>(rng.uniform(0, 2));
      c.c = 1 + static_cast<int64_t>(rng.uniform(0, 6));
      c.m = 1 + static_cast<int64_t>(rng.uniform(0, 10));
      c.h = 1 + static_cast<int64_t>(rng.uniform(0, 12));
      c.w = 25 + static_cast<int64_t>(rng.uniform(0, 46));
      c.pt = static_cast<int64_t>(rng.uniform(0, 3));
      c.pl = it % 3;
      c.pb = static_cast<int64_t>(rng.uniform(0, 3));
      c.pr = static_cast<int64_t>(rng.uniform(0, 3));
      if (c.h + c.pt + c.pb < 3) continue;
      c.bias = rng.uniform(0, 1) < 0.7;
      c.residual = it % 2 == 0;
      c.relu = rng.uniform(0, 1) < 0.5;
      c.after = it % 4 < 2;
      SCOPED_TRACE(::testing::Message()
                   << isa_name(isa) << " b=" << c.batch << " c=" << c.c << " m=" << c.m << " "
                   << c.h << "x" << c.w << " pads " << c.pt << "," << c.pl << "," << c.pb << ","
                   << c.pr << " res=" << c.residual << " relu=" << c.relu << " after=" << c.after);
      run_case(c, 300 + it, isa, 1 + it % 2, &worst);
    }
  }
  std::printf("worst |error| / magnitude: %.3g (bound %.3g)\n", worst, kWinoTol);
}

// ResNet-like layers (many channels: the bound must hold at C = 256 too).
TEST(Winograd, MatchesReferenceOnResNetLikeLayers) {
  const Case cases[] = {{2, 64, 14, 14, 64, 1, 1, 1, 1, true, true, true, true},
                        {1, 128, 9, 11, 72, 1, 1, 1, 1, true, false, true, false},
                        {3, 256, 7, 7, 100, 1, 1, 1, 1, true, true, false, false},
                        {1, 19, 23, 17, 131, 0, 2, 1, 0, false, false, false, false},
                        // several blocks of transformed filters per work item, the last partial
                        {2, 512, 7, 7, 64, 1, 1, 1, 1, true, true, true, false},
                        // the batch padded and run in slices (2 + 1 images)
                        {3, 256, 56, 56, 8, 1, 1, 1, 1, true, true, true, false}};
  double worst = 0;
  for (Isa isa : isas()) {
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << isa_name(isa) << " c=" << c.c << " m=" << c.m);
      run_case(c, 7, isa, 2, &worst);
    }
  }
  std::printf("worst |error| / magnitude: %.3g (bound %.3g)\n", worst, kWinoTol);
}

// Each output is one fixed sequence of operations: the blocking (which follows the thread
// count) changes no bit.
TEST(Winograd, SameBitsForOneAndTwoThreads) {
  const Case cases[] = {{3, 40, 13, 10, 50, 1, 1, 1, 1, true, true, true, false},
                        {16, 8, 6, 6, 20, 1, 0, 2, 1, true, false, false, false},
                        {1, 33, 30, 29, 7, 2, 1, 0, 1, false, true, true, true}};
  for (Isa isa : isas()) {
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << isa_name(isa) << " b=" << c.batch << " c=" << c.c);
      const Result one = run_case(c, 11, isa, 1), two = run_case(c, 11, isa, 2);
      const Result four = run_case(c, 11, isa, 4);
      EXPECT_EQ(one.y, two.y);
      EXPECT_EQ(one.y, four.y);
    }
  }
}

// The float engine runs one kernel per conv at every batch (docs/numerics.md): an image's outputs
// must then be the same bits whether it is convolved alone or with others (its tiles share
// GEMM panels and work items with other images' in a batch).
TEST(Winograd, SameBitsAloneAndInABatch) {
  const Case cases[] = {{7, 24, 9, 9, 30, 1, 1, 1, 1, true, true, true, false},
                        {5, 64, 7, 7, 40, 1, 1, 1, 1, true, false, true, false},
                        {3, 8, 2, 2, 12, 1, 1, 1, 1, false, true, false, true},
                        // the call pads the batch in slices of 2 images (kPadFloats)
                        {3, 256, 56, 56, 8, 1, 1, 1, 1, true, true, true, false}};
  for (Isa isa : isas()) {
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << isa_name(isa) << " b=" << c.batch << " c=" << c.c);
      Conv2dParams p{.batch = c.batch,
                     .in_channels = c.c,
                     .in_h = c.h,
                     .in_w = c.w,
                     .out_channels = c.m,
                     .out_h = c.h + c.pt + c.pb - 2,
                     .out_w = c.w + c.pl + c.pr - 2,
                     .kernel_h = 3,
                     .kernel_w = 3,
                     .pad_top = c.pt,
                     .pad_left = c.pl};
      const auto x = random_floats(c.batch * c.c * c.h * c.w, 21);
      const auto w = random_floats(c.m * c.c * 9, 22);
      const auto bias = random_floats(c.m, 23);
      const int64_t per = c.m * p.out_h * p.out_w;
      const auto res = random_floats(c.batch * per, 24);
      const PackedConvWeights pw = pack_conv_weights(w.data(), c.m, c.c, 3, 3, 1, isa);
      Epilogue ep;
      if (c.bias) ep.bias = bias.data();
      if (c.residual) ep.residual = res.data();
      ep.residual_after_clamp = c.after;
      if (c.relu) ep.clamp_min = 0.0f;
      std::vector<float> all(c.batch * per);
      conv2d_winograd_f32(p, x.data(), pw, all.data(), ep);
      Conv2dParams one = p;
      one.batch = 1;
      for (int64_t b = 0; b < c.batch; ++b) {
        Epilogue e1 = ep;
        if (c.residual) e1.residual = res.data() + b * per;
        std::vector<float> y(per);
        conv2d_winograd_f32(one, x.data() + b * c.c * c.h * c.w, pw, y.data(), e1);
        EXPECT_TRUE(std::equal(y.begin(), y.end(), all.begin() + b * per)) << "image " << b;
      }
    }
  }
}

TEST(Winograd, AppliesOnlyToStride1Dilation1Ungrouped3x3) {
  Conv2dParams p{.batch = 1,
                 .in_channels = 16,
                 .in_h = 8,
                 .in_w = 8,
                 .out_channels = 16,
                 .out_h = 8,
                 .out_w = 8,
                 .kernel_h = 3,
                 .kernel_w = 3,
                 .pad_top = 1,
                 .pad_left = 1};
  EXPECT_TRUE(winograd_applies(p));
  Conv2dParams q = p;
  q.stride_h = 2;
  EXPECT_FALSE(winograd_applies(q));
  q = p;
  q.dilation_w = 2;
  EXPECT_FALSE(winograd_applies(q));
  q = p;
  q.groups = 2;
  EXPECT_FALSE(winograd_applies(q));
  q = p;
  q.kernel_w = 1;
  EXPECT_FALSE(winograd_applies(q));
  q = p;
  q.batch = 1 << 22;  // padded offsets past int32
  EXPECT_FALSE(winograd_applies(q));
}

}  // namespace
}  // namespace qsearch::kernels
