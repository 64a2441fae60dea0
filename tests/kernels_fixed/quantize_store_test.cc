// The int conv's quantizing float store (GemmParams::post_quantize, issue 14): each float value
// the store would write (after the fused affine and clamp, if any) is written as its codes
// quant::quantize(v, post_format, post_rounding). Compared with the same conv's float store
// followed by the scalar quant::quantize, element by element, on every conv2d path (pixel-major
// runs and tiles, gathered small maps, depthwise, Winograd, im2col, int64 accumulators), every
// ISA, every code dtype (int8 / uint8 / int16 / int32 through the AVX2 store, 25..32-bit codes
// through the scalar one), the three roundings, and binary points 0..7 below the accumulator's,
// so that ties fall at every frac width; the affine's channels include negative, zero, infinite
// and NaN scales, -0.0 shifts and clamps, so NaN, +-inf, -0.0 and saturation at both ends reach
// the quantizer (each counted: the test fails if a kind never occurs).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/fixed/conv2d.h"
#include "kernels_fixed/tester.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::make_codes;

Conv2dGeometry geometry(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k, int64_t groups,
                        int64_t pad, int64_t stride) {
  Conv2dGeometry g;
  g.in_channels = c;
  g.in_h = h;
  g.in_w = w;
  g.out_channels = oc;
  g.kernel_h = g.kernel_w = k;
  g.groups = groups;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = pad;
  g.stride_h = g.stride_w = stride;
  return g;
}

struct Seen {
  int64_t ties[8] = {};  // inside the code range, by d (the codes' binary point below acc's)
  int64_t nan = 0, inf = 0, neg_zero = 0, at_lo = 0, at_hi = 0;
};

// The float the store quantizes, v * 2^frac, is an exact tie of the integer grid.
bool is_tie(float v, int frac) {
  const float s = v * std::ldexp(1.0f, frac);
  return std::isfinite(s) && s - std::floor(s) == 0.5f;
}

TEST(IntConvQuantizingStore, EqualsFloatStoreThenScalarQuantize) {
  Rng rng(4242);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    Conv2dGeometry g;
    int64_t batch;
    Conv2dWeights::Winograd winograd = Conv2dWeights::Winograd::kOff;
  };
  const std::vector<Case> cases = {
      {geometry(16, 9, 9, 24, 1, 1, 0, 1), 2},    // 1x1: pixel-major runs
      {geometry(6, 8, 7, 20, 3, 1, 1, 1), 2},     // 3x3 stride 1: extended rows, runs
      {geometry(8, 9, 9, 18, 3, 1, 1, 2), 3},     // stride 2: tiles
      {geometry(24, 2, 2, 16, 3, 1, 1, 1), 5},    // tiny maps: gathered across images
      {geometry(24, 10, 9, 24, 3, 24, 1, 1), 2},  // depthwise
      {geometry(32, 8, 8, 16, 3, 1, 1, 1), 2, Conv2dWeights::Winograd::kAlways},
      {geometry(2, 12, 12, 2, 12, 2, 0, 1), 2},  // 144 taps: im2col
  };
  const FixedFormat a_format{8, 3, true}, w_format{6, 4, true}, bias_format{16, 6, true};
  const int acc_frac = a_format.frac + w_format.frac;
  // Code widths: the AVX2 store's int8 / uint8 / int16 / int32 (<= 24 bits) and the scalar
  // store's wider ones (25..31-bit int32, unsigned 32-bit int64).
  const std::vector<std::pair<int, bool>> widths = {{1, true},  {3, false}, {4, true},  {8, true},
                                                    {8, false}, {12, true}, {16, true}, {15, false},
                                                    {24, true}, {28, true}, {32, false}};
  const quant::Rounding roundings[] = {quant::Rounding::kHalfToEven,
                                       quant::Rounding::kHalfAwayFromZero, quant::Rounding::kFloor};
  Seen seen;
  int64_t stores = 0;
  for (const Case& c : cases) {
    const Conv2dGeometry& g = c.g;
    const int64_t cg = g.in_channels / g.groups, oc = g.out_channels;
    const Tensor x =
        make_codes(DType::kInt8, c.batch * g.in_channels * g.in_h * g.in_w, a_format, rng);
    const Tensor w = make_codes(DType::kInt8, oc * cg * g.kernel_h * g.kernel_w, w_format, rng);
    const Tensor b = make_codes(DType::kInt32, oc, bias_format, rng);
    Conv2dWeights cw;
    cw.w = w.raw();
    cw.w_format = w_format;
    cw.bias = b.raw();
    cw.bias_format = bias_format;
    cw.a_format = a_format;
    cw.winograd = c.winograd;
    // The fused affine per channel: powers of two (values stay on dyadic grids: ties), negative
    // and zero scales, one infinite and one NaN scale (NaN, +-inf reach the quantizer), shifts
    // of +-0.0 and of dyadic values.
    Tensor scale({oc}, DType::kFloat32), shift({oc}, DType::kFloat32);
    for (int64_t o = 0; o < oc; ++o) {
      const float s = std::ldexp(1.0f, static_cast<int>(rng.uniform_int(5)) - 2);
      // Channel 2: -0.0 * v + -0.0 is -0.0 for every v >= 0 (signed zeros reach the quantizer).
      scale.data<float>()[o] = o == 0 ? inf : o == 1 ? nan : o == 2 ? -0.0f : o % 3 == 0 ? -s : s;
      shift.data<float>()[o] = o % 4 == 0 || o == 2 ? -0.0f
                               : o % 4 == 1
                                   ? 0.0f
                                   : std::ldexp(static_cast<float>(rng.uniform_int(33)) - 16.0f,
                                                -static_cast<int>(rng.uniform_int(6)));
    }
    const int64_t n = c.batch * oc * g.out_h() * g.out_w();
    for (Isa isa : supported_isas()) {
      const PackedConv2d pc = pack_conv2d(g, cw, isa);
      if (c.winograd == Conv2dWeights::Winograd::kAlways && isa >= Isa::kAvx2) {
        ASSERT_NE(pc.winograd(), nullptr) << "not the Winograd path";
      }
      const bool int32_acc = accumulator_bound(pc).need == AccNeed::kInt32;
      int variant = 0;
      for (const auto& [width, is_signed] : widths) {
        for (int d = 0; d <= 7; ++d) {  // the codes' binary point d below the accumulator's
          for (quant::Rounding r : roundings) {
            GemmParams p;
            p.acc = int32_acc && variant % 5 != 4 ? AccType::kInt32 : AccType::kInt64;
            p.output = GemmOutput::kFloat;
            const int post = variant % 4;  // 0: none, 1: affine, 2: +relu, 3: +clip [-1.5, 2]
            if (post != 0) {
              p.post_scale = scale.data<float>();
              p.post_shift = shift.data<float>();
              if (post == 2) p.post_lo = 0.0f;
              if (post == 3) p.post_lo = -1.5f, p.post_hi = 2.0f;
            }
            ++variant;
            Tensor floats({n}, DType::kFloat32);
            conv2d(x.raw(), c.batch, pc, p, floats.raw());
            p.post_quantize = true;
            p.post_format = {width, acc_frac - d, is_signed};
            p.post_rounding = r;
            const DType t = quant::storage_dtype(p.post_format);
            ASSERT_EQ(gemm_output_dtype(p), t);
            Tensor want({n}, t), got({n}, t);
            for (int64_t i = 0; i < n; ++i) {
              const float v = floats.data<float>()[i];
              const int64_t q = quant::quantize(v, p.post_format, r);
              quant::store_code(want.raw(), t, i, q);
              seen.ties[d] += is_tie(v, p.post_format.frac) && q > p.post_format.min_code() &&
                              q < p.post_format.max_code();
              seen.nan += std::isnan(v);
              seen.inf += std::isinf(v);
              seen.neg_zero += v == 0.0f && std::signbit(v);
              seen.at_lo += !std::isnan(v) && q == p.post_format.min_code();
              seen.at_hi += !std::isnan(v) && q == p.post_format.max_code();
            }
            conv2d(x.raw(), c.batch, pc, p, got.raw());
            ++stores;
            ASSERT_TRUE(equal_exactly(
                want.raw(), got.raw(), t, n,
                fmt::format("isa={} C={} {}x{} OC={} k={} groups={} stride={} batch={} "
                            "winograd={} codes={} {} acc={} post={}",
                            isa_name(isa), g.in_channels, g.in_h, g.in_w, oc, g.kernel_h, g.groups,
                            g.stride_h, c.batch, pc.winograd() != nullptr,
                            quant::format_name(p.post_format), quant::rounding_name(r),
                            p.acc == AccType::kInt32 ? 32 : 64, post)));
          }
        }
      }
    }
  }
  EXPECT_GT(stores, 1000);
  // Every special case reached the quantizer many times.
  for (int d = 0; d <= 7; ++d) EXPECT_GT(seen.ties[d], 100) << "ties at d = " << d;
  EXPECT_GT(seen.nan, 100);
  EXPECT_GT(seen.inf, 100);
  EXPECT_GT(seen.neg_zero, 100);
  EXPECT_GT(seen.at_lo, 1000);
  EXPECT_GT(seen.at_hi, 1000);
}

}  // namespace
}  // namespace qsearch::kernels::fixed
