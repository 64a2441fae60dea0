// The int conv's float store with its fused post operations (GemmParams::post_scale / post_lo /
// post_hi, post_silu, post_quantize; issue 14) on the depthwise path, where small maps (output
// width < 8, channel multiplier 1) store 16 channels of a pixel at once (ChannelLanes), on the
// pointwise convs of maps of at most 7 pixels (the GEMM of rows (pixel, image)), and on the
// other conv paths: every value equals the exact reference conv's float (ref::conv2d, one
// rounding) followed by the scalar definitions, one element at a time: fma(v, scale[c],
// shift[c]), the clamp's two comparisons, u * sigmoid(u) with the Sigmoid step's function
// (vmath::map_f32) and the Mul's rounding, then quant::quantize. Channel counts that are and are
// not multiples of 16, maps 1x1..9x9, strides 1 and 2, 3x3 and 5x5 kernels, batches 1..4, int32
// and int64 accumulators, every ISA, int8 / uint8 / int16 / int32 codes (and 28-bit ones, the
// scalar store), the three roundings; the affine's channels include infinite, NaN and -0.0
// scales so that NaN and +-inf reach the SiLU and the quantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "kernels/vec_math.h"
#include "kernels_fixed/tester.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::make_codes;

Conv2dGeometry depthwise(int64_t c, int64_t hw, int64_t k, int64_t stride, int64_t mult = 1) {
  Conv2dGeometry g;
  g.in_channels = c;
  g.in_h = g.in_w = hw;
  g.out_channels = c * mult;
  g.kernel_h = g.kernel_w = k;
  g.groups = c;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = k / 2;
  g.stride_h = g.stride_w = stride;
  return g;
}

// A 1x1 conv on an h x w map (1x1 by default), c -> oc channels, one group.
Conv2dGeometry pointwise(int64_t c, int64_t oc, int64_t h = 1, int64_t w = 1) {
  Conv2dGeometry g;
  g.in_channels = c;
  g.in_h = h;
  g.in_w = w;
  g.out_channels = oc;
  return g;
}

float silu(float u) {
  float s = 0.0f;
  vmath::map_f32(vmath::Fn::kSigmoid, &u, &s, 1);
  return u * s;
}

TEST(IntDepthwiseStore, FusedPostOperationsEqualTheScalarDefinitions) {
  Rng rng(9090);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    Conv2dGeometry g;
    int64_t batch;
  };
  const std::vector<Case> cases = {
      {depthwise(32, 1, 3, 1), 3},    // 1x1 maps: one pixel, 16 channels a store
      {depthwise(20, 2, 3, 1), 2},    // 2x2, a partial block of 4 channels
      {depthwise(37, 4, 3, 2), 4},    // stride 2 to 2x2
      {depthwise(16, 4, 5, 1), 1},    // 5x5 taps
      {depthwise(24, 7, 3, 1), 2},    // 7x7: the widest small map
      {depthwise(40, 14, 3, 2), 2},   // 7x7 from stride 2
      {depthwise(18, 9, 3, 1), 2},    // 9x9: the tap-pair path
      {depthwise(8, 3, 3, 1, 2), 2},  // channel multiplier 2: per-channel stores
      // 1x1 maps under one tap (the 5x5 cut to its centre): one product per channel and image,
      // 16 channels a store, or the images as the Epilogue's rows (19: a block of 16, then 3).
      {depthwise(40, 1, 5, 1), 19},
      // Pointwise convs on 1x1 maps: the GEMM of the images with its plain float store, then
      // the post on rows of channels (conv2d.cc few_pixels_float), at every batch and K; and on
      // maps of 2 to 7 pixels, whose codes are gathered into rows (pixel, image) and whose
      // values go back to NCHW; 2x4 (8 pixels) takes the other paths.
      {pointwise(24, 40), 3},
      {pointwise(300, 20), 17},
      {pointwise(700, 18), 18},
      {pointwise(40, 13), 33},
      {pointwise(24, 40, 2, 2), 3},
      {pointwise(300, 20, 1, 3), 5},
      {pointwise(64, 17, 7, 1), 2},
      {pointwise(40, 13, 2, 3), 17},
      {pointwise(20, 24, 2, 4), 2},
  };
  const FixedFormat a_format{8, 3, true}, w_format{6, 4, true}, bias_format{16, 6, true};
  const int acc_frac = a_format.frac + w_format.frac;
  // (Unsigned 32-bit codes are stored as int64: the few-pixel path's 8-byte copies.)
  const std::vector<std::pair<int, bool>> widths = {{8, true},  {4, false}, {8, false},
                                                    {12, true}, {16, true}, {24, true},
                                                    {28, true}, {32, false}};
  const quant::Rounding roundings[] = {quant::Rounding::kHalfToEven,
                                       quant::Rounding::kHalfAwayFromZero, quant::Rounding::kFloor};
  int64_t stores = 0, silu_nan = 0, silu_values = 0;
  for (const Case& c : cases) {
    const Conv2dGeometry& g = c.g;
    const int64_t oc = g.out_channels, ohw = g.out_h() * g.out_w(), cg = g.in_channels / g.groups;
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
    // Every channel its own scale and shift (a lane mixed up shows); three special channels.
    Tensor scale({oc}, DType::kFloat32), shift({oc}, DType::kFloat32);
    for (int64_t o = 0; o < oc; ++o) {
      // Full 24-bit mantissas: v * s is inexact, so only a fused multiply-add matches.
      const float s =
          static_cast<float>(rng.uniform(0.25, 4.25)) * (rng.uniform_int(3) == 0 ? -1.0f : 1.0f);
      scale.data<float>()[o] = o == 5 ? inf : o == 6 ? nan : o == 7 ? -0.0f : s;
      shift.data<float>()[o] =
          o % 5 == 0 ? -0.0f : (static_cast<float>(rng.uniform_int(33)) - 16.0f) / 8.0f;
    }
    const int64_t n = c.batch * oc * ohw;
    GemmParams fp;
    fp.acc = AccType::kInt64;
    fp.output = GemmOutput::kFloat;
    Tensor exact({n}, DType::kFloat32);
    ref::conv2d(x.raw(), c.batch, g, cw, fp, exact.raw());
    for (Isa isa : supported_isas()) {
      const PackedConv2d pc = pack_conv2d(g, cw, isa);
      const bool int32_acc = accumulator_bound(pc).need == AccNeed::kInt32;
      for (int variant = 0; variant < 12; ++variant) {
        // post: 0 none, 1 affine, 2 +relu, 3 +clip [-1.5, 2], 4 affine + silu, 5 clip + silu.
        const int post = variant % 6;
        GemmParams p;
        p.acc = int32_acc && variant < 6 ? AccType::kInt32 : AccType::kInt64;
        p.output = GemmOutput::kFloat;
        if (post != 0) {
          p.post_scale = scale.data<float>();
          p.post_shift = shift.data<float>();
          if (post == 2) p.post_lo = 0.0f;
          if (post == 3 || post == 5) p.post_lo = -1.5f, p.post_hi = 2.0f;
          p.post_silu = post >= 4;
        }
        // The float each element's chain ends in.
        std::vector<float> want_f(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const int64_t o = i / ohw % oc;
          float v = exact.data<float>()[i];
          if (post != 0) {
            v = std::fma(v, scale.data<float>()[o], shift.data<float>()[o]);
            v = v < p.post_lo ? p.post_lo : v;
            v = v > p.post_hi ? p.post_hi : v;
            if (p.post_silu) {
              v = silu(v);
              silu_nan += std::isnan(v);
              ++silu_values;
            }
          }
          want_f[static_cast<size_t>(i)] = v;
        }
        const std::string what =
            fmt::format("isa={} C={} {}x{} OC={} k={} stride={} batch={} acc={} post={}",
                        isa_name(isa), g.in_channels, g.in_h, g.in_w, oc, g.kernel_h, g.stride_h,
                        c.batch, p.acc == AccType::kInt32 ? 32 : 64, post);
        Tensor got_f({n}, DType::kFloat32);
        conv2d(x.raw(), c.batch, pc, p, got_f.raw());
        ++stores;
        ASSERT_TRUE(equal_exactly(want_f.data(), got_f.raw(), DType::kFloat32, n, what));
        for (const auto& [width, is_signed] : widths) {
          const quant::Rounding r = roundings[rng.uniform_int(3)];
          p.post_quantize = true;
          p.post_format = {width, acc_frac - static_cast<int>(rng.uniform_int(6)), is_signed};
          p.post_rounding = r;
          const DType t = quant::storage_dtype(p.post_format);
          Tensor want({n}, t), got({n}, t);
          for (int64_t i = 0; i < n; ++i) {
            quant::store_code(want.raw(), t, i,
                              quant::quantize(want_f[static_cast<size_t>(i)], p.post_format, r));
          }
          conv2d(x.raw(), c.batch, pc, p, got.raw());
          ++stores;
          ASSERT_TRUE(
              equal_exactly(want.raw(), got.raw(), t, n,
                            what + fmt::format(" codes={} {}", quant::format_name(p.post_format),
                                               quant::rounding_name(r))));
        }
      }
    }
  }
  EXPECT_GT(stores, 500);
  EXPECT_GT(silu_values, 10000);
  EXPECT_GT(silu_nan, 100);  // the NaN channel (and silu(-inf) = -inf * 0)
}

}  // namespace
}  // namespace qsearch::kernels::fixed
