// Integer Conv2d (im2col + packed integer GEMM) == ref::conv2d (direct loops) exactly, for every
// ISA path, dtype pairs, groups (incl. depthwise), pads, strides, dilations and output kinds.
#include "kernels/fixed/conv2d.h"

#include <gtest/gtest.h>

#include <array>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "kernels_fixed/tester.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::Fill;
using testing::make_codes;

constexpr uint64_t kSeed = 777;

struct ConvCase {
  Conv2dGeometry g;
  int64_t batch = 2;
  DType a_dtype = DType::kInt8, w_dtype = DType::kInt8;
  FixedFormat a_format{8, 4, true}, w_format{8, 5, true}, bias_format{16, 9, true};
  bool bias = true;
  Fill fill = Fill::kRandom;
  ConvPool pool = ConvPool::kNone;  // fused into the fast conv2d; the reference pools after
  bool few_outputs = false;         // only the raw, float and int8 requantized outputs
  std::vector<int> threads;         // the fast conv with each of these thread counts (else as set)
};

// The 2x2 stride-2 max pool (floor) of `channels` planes h x w of dtype t, by the definition.
Tensor pool_2x2(const Tensor& full, int64_t planes, int64_t h, int64_t w) {
  const DType t = full.dtype();
  Tensor out({planes * (h / 2) * (w / 2)}, t);
  int64_t i = 0;
  for (int64_t c = 0; c < planes; ++c) {
    for (int64_t a = 0; a < h / 2; ++a) {
      for (int64_t b = 0; b < w / 2; ++b, ++i) {
        const int64_t at = (c * h + 2 * a) * w + 2 * b;
        for (int64_t k : {at, at + 1, at + w, at + w + 1}) {
          if (t == DType::kFloat32) {
            const float v = full.data<float>()[k];
            if (k == at || v > out.data<float>()[i]) out.data<float>()[i] = v;
          } else {
            const int64_t v = quant::load_code(full.raw(), t, k);
            if (k == at || v > quant::load_code(out.raw(), t, i)) {
              quant::store_code(out.raw(), t, i, v);
            }
          }
        }
      }
    }
  }
  return out;
}

void check(const ConvCase& c, Rng& rng) {
  const Conv2dGeometry& g = c.g;
  const int64_t cg = g.in_channels / g.groups;
  Tensor x =
      make_codes(c.a_dtype, c.batch * g.in_channels * g.in_h * g.in_w, c.a_format, rng, c.fill);
  Tensor w =
      make_codes(c.w_dtype, g.out_channels * cg * g.kernel_h * g.kernel_w, c.w_format, rng, c.fill);
  Tensor b = make_codes(DType::kInt32, g.out_channels, c.bias_format, rng);
  Conv2dWeights cw;
  cw.w = w.raw();
  cw.w_dtype = c.w_dtype;
  cw.w_format = c.w_format;
  if (c.bias) {
    cw.bias = b.raw();
    cw.bias_dtype = DType::kInt32;
    cw.bias_format = c.bias_format;
  }
  cw.a_format = c.a_format;
  cw.a_dtype = c.a_dtype;
  const int64_t full_n = c.batch * g.out_channels * g.out_h() * g.out_w();
  const int64_t out_n = c.batch * g.out_channels * conv_pool_out(c.pool, g.out_h()) *
                        conv_pool_out(c.pool, g.out_w());

  std::vector<GemmParams> params;
  GemmParams p;
  p.acc = AccType::kInt64;
  params.push_back(p);
  p.output = GemmOutput::kFloat;
  params.push_back(p);
  p.output = GemmOutput::kRequantize;
  p.out_format = {8, c.a_format.frac, false};  // a ReLU input of the next layer
  p.rounding = Rounding::kHalfToEven;
  params.push_back(p);
  p.out_format = {12, c.a_format.frac + c.w_format.frac + 2, true};  // a left shift
  p.rounding = Rounding::kFloor;
  params.push_back(p);
  // Signed int8 codes of the next layer, with and without a ReLU fused into the store; int16
  // codes (the pixel-major and im2col stores of every output dtype).
  p.out_format = {8, c.a_format.frac, true};
  p.rounding = Rounding::kHalfAwayFromZero;
  params.push_back(p);
  p.relu = true;
  params.push_back(p);
  p.out_format = {16, c.a_format.frac + 3, true};
  p.rounding = Rounding::kHalfToEven;
  params.push_back(p);
  p.relu = false;
  params.push_back(p);
  // Every rounding with every code dtype of the int32 stores (int8, uint8, int16, int32 codes;
  // rounding shifts 1 and 3-5, so that ties are frequent), with and without a fused ReLU.
  for (Rounding r : {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero, Rounding::kFloor}) {
    p.rounding = r;
    for (FixedFormat f : {FixedFormat{8, c.a_format.frac, true}, FixedFormat{6, 2, false},
                          FixedFormat{16, c.a_format.frac + c.w_format.frac - 1, true},
                          FixedFormat{24, c.a_format.frac + 1, true}}) {
      p.out_format = f;
      p.relu = r == Rounding::kFloor;
      params.push_back(p);
    }
  }
  p.relu = false;
  // A Clip fused into the store (ReLU6 on int8 codes; a band of uint8 codes; with a ReLU).
  p.out_format = {8, c.a_format.frac, true};
  p.clamp_lo = 0;
  p.clamp_hi = std::min<int64_t>(127, int64_t{6} << c.a_format.frac);
  params.push_back(p);
  p.out_format = {8, 2, false};
  p.clamp_lo = 3;
  p.clamp_hi = 200;
  params.push_back(p);
  p.out_format = {16, c.a_format.frac + 3, true};
  p.clamp_lo = -5;
  p.clamp_hi = 1000;
  p.relu = true;
  params.push_back(p);
  p.relu = false;
  p.clamp_lo = INT64_MIN;
  p.clamp_hi = INT64_MAX;
  if (c.few_outputs) params = {params[0], params[1], params[5]};

  for (Isa isa : supported_isas()) {
    const PackedConv2d pc = pack_conv2d(g, cw, isa);
    std::vector<GemmParams> ps = params;
    if (accumulator_bound(pc).need == AccNeed::kInt32) {
      for (GemmParams& q : ps) q.acc = AccType::kInt32;
      ps.push_back(params[0]);  // and int64 once more
    }
    for (const GemmParams& q : ps) {
      const DType t = gemm_output_dtype(q);
      Tensor ref_y({full_n}, t), fast_y({out_n}, t);
      ref::conv2d(x.raw(), c.batch, g, cw, q, ref_y.raw());
      conv2d(x.raw(), c.batch, pc, q, fast_y.raw(), c.pool);
      const int saved = num_threads();
      for (int threads : c.threads) {
        set_num_threads(threads);
        Tensor other({out_n}, t);
        conv2d(x.raw(), c.batch, pc, q, other.raw(), c.pool);
        set_num_threads(saved);
        ASSERT_TRUE(equal_exactly(fast_y.raw(), other.raw(), t, out_n,
                                  fmt::format("{} threads vs {}", threads, saved)));
      }
      if (c.pool == ConvPool::kMax2x2) {
        // Fused == the reference conv, then the pool; and == the unfused fast conv, then the pool.
        Tensor unfused({full_n}, t);
        conv2d(x.raw(), c.batch, pc, q, unfused.raw());
        const Tensor pooled = pool_2x2(unfused, c.batch * g.out_channels, g.out_h(), g.out_w());
        ASSERT_TRUE(equal_exactly(pooled.raw(), fast_y.raw(), t, out_n, "fused vs unfused"));
        ref_y = pool_2x2(ref_y, c.batch * g.out_channels, g.out_h(), g.out_w());
      }
      ASSERT_TRUE(equal_exactly(
          ref_y.raw(), fast_y.raw(), t, out_n,
          fmt::format("isa={} C={} HxW={}x{} OC={} k={}x{} groups={} pads={},{},{},{} "
                      "strides={}x{} dilations={}x{} batch={} A={}:{} W={}:{} output={} {}{} "
                      "acc={}{}",
                      isa_name(isa), g.in_channels, g.in_h, g.in_w, g.out_channels, g.kernel_h,
                      g.kernel_w, g.groups, g.pad_top, g.pad_left, g.pad_bottom, g.pad_right,
                      g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, c.batch,
                      dtype_name(c.a_dtype), quant::format_name(c.a_format), dtype_name(c.w_dtype),
                      quant::format_name(c.w_format), static_cast<int>(q.output),
                      quant::format_name(q.out_format), q.relu ? " relu" : "",
                      q.acc == AccType::kInt32 ? 32 : 64,
                      c.pool == ConvPool::kMax2x2 ? " +maxpool2x2" : "")));
    }
  }
}

Conv2dGeometry geometry(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k, int64_t groups,
                        int64_t pad, int64_t stride, int64_t dilation) {
  Conv2dGeometry g;
  g.in_channels = c;
  g.in_h = h;
  g.in_w = w;
  g.out_channels = oc;
  g.kernel_h = g.kernel_w = k;
  g.groups = groups;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = pad;
  g.stride_h = g.stride_w = stride;
  g.dilation_h = g.dilation_w = dilation;
  return g;
}

TEST(IntConv2d, MnistCnnFirstLayerShape) {
  Rng rng(kSeed);
  ConvCase c;
  c.g = geometry(1, 28, 28, 8, 3, 1, 1, 1, 1);
  check(c, rng);
}

TEST(IntConv2d, GroupsPadsStridesDilations) {
  Rng rng(kSeed + 1);
  const Conv2dGeometry geometries[] = {
      geometry(4, 9, 7, 6, 3, 2, 1, 2, 1),       // 2 groups, stride 2, odd sizes
      geometry(6, 8, 8, 6, 3, 6, 1, 1, 1),       // depthwise
      geometry(3, 10, 11, 5, 3, 1, 2, 1, 2),     // dilation 2
      geometry(210, 4, 5, 140, 3, 70, 1, 2, 1),  // 70 groups of 3 channels (row pairs)
      geometry(5, 6, 6, 17, 1, 1, 0, 1, 1),      // 1x1, N = tile + 1
      geometry(2, 5, 5, 3, 5, 1, 0, 1, 1),       // kernel = input: one pixel
  };
  for (const Conv2dGeometry& g : geometries) {
    ConvCase c;
    c.g = g;
    check(c, rng);
    if (::testing::Test::HasFatalFailure()) return;
  }
  ConvCase asym;
  asym.g = geometry(3, 7, 9, 4, 3, 1, 0, 1, 1);
  asym.g.kernel_w = 2;
  asym.g.pad_top = 2;
  asym.g.pad_right = 1;
  asym.g.stride_w = 3;
  asym.g.dilation_h = 2;
  check(asym, rng);
}

TEST(IntConv2d, DtypePairsAndUnsignedInputPadsWithZero) {
  Rng rng(kSeed + 2);
  struct Types {
    DType a, w;
    FixedFormat af, wf;
  };
  const Types types[] = {{DType::kUInt8, DType::kInt8, {8, 4, false}, {6, 4, true}},
                         {DType::kInt16, DType::kInt8, {12, 6, true}, {8, 6, true}},
                         {DType::kInt8, DType::kInt16, {8, 4, true}, {16, 12, true}},
                         {DType::kInt16, DType::kInt16, {16, 8, true}, {16, 8, true}},
                         {DType::kInt32, DType::kInt8, {20, 10, true}, {8, 4, true}}};
  for (const Types& t : types) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      ConvCase c;
      c.g = geometry(3, 6, 5, 5, 3, 1, 1, 1, 1);
      c.a_dtype = t.a;
      c.w_dtype = t.w;
      c.a_format = t.af;
      c.w_format = t.wf;
      c.fill = fill;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// The pixel-major path pairs two input channels per k-pair when a group has an even channel
// count (and kernel-row neighbours otherwise): even counts with every geometry feature, at the
// dtype extremes.
TEST(IntConv2d, EvenChannelCountsPairChannels) {
  Rng rng(kSeed + 5);
  std::vector<Conv2dGeometry> geometries = {
      geometry(6, 9, 9, 16, 5, 1, 0, 1, 1),   // LeNet's second conv
      geometry(16, 6, 6, 8, 3, 1, 1, 1, 1),   // a residual block's 3x3
      geometry(16, 6, 6, 8, 1, 1, 0, 2, 1),   // a 1x1 downsample, stride 2
      geometry(4, 10, 11, 6, 3, 2, 2, 1, 2),  // 2 groups of 2, dilation 2
      geometry(2, 5, 5, 3, 5, 1, 0, 1, 1),    // kernel = input: one pixel
      // Grouped convs with more groups than the pixel-major path's old limit of 64 (issue 14).
      geometry(144, 5, 6, 72, 3, 72, 1, 1, 1),   // 72 groups of 2 channels, 1 output each
      geometry(160, 6, 5, 240, 3, 80, 1, 2, 1),  // 80 groups of 2 -> 3, stride 2 (gathered)
  };
  Conv2dGeometry asym = geometry(4, 7, 9, 6, 3, 1, 0, 1, 1);
  asym.kernel_w = 2;
  asym.pad_top = 2;
  asym.pad_right = 1;
  asym.dilation_h = 2;
  geometries.push_back(asym);
  asym.stride_w = 3;
  geometries.push_back(asym);
  for (const Conv2dGeometry& g : geometries) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      ConvCase c;
      c.g = g;
      c.fill = fill;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kUInt8;
      c.a_format = {8, 4, false};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kInt16;
      c.w_dtype = DType::kInt16;
      c.a_format = {12, 6, true};
      c.w_format = {10, 8, true};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// One input channel per group with an odd kernel width pairs the taps across the flattened
// kernel (row ends pair with the next row's start, an odd tap count ends with a zero weight):
// every geometry feature, both tap-count parities, at the dtype extremes.
TEST(IntConv2d, OneChannelPairsTapsAcrossKernelRows) {
  Rng rng(kSeed + 6);
  std::vector<Conv2dGeometry> geometries = {
      geometry(1, 28, 28, 6, 5, 1, 2, 1, 1),   // LeNet's first conv
      geometry(1, 11, 9, 9, 3, 1, 1, 2, 1),    // stride 2, 9 taps
      geometry(1, 12, 13, 5, 3, 1, 2, 1, 2),   // dilation 2
      geometry(4, 9, 10, 8, 3, 4, 1, 1, 1),    // depthwise, 4 groups
      geometry(1, 5, 5, 3, 5, 1, 0, 1, 1),     // kernel = input: one pixel
      geometry(1, 16, 16, 17, 7, 1, 3, 1, 1),  // 49 taps, 17 channels (3 weight tiles)
  };
  Conv2dGeometry asym = geometry(1, 8, 9, 4, 3, 1, 0, 1, 1);
  asym.kernel_h = 4;  // 12 taps: no zero weight
  asym.pad_top = 2;
  asym.pad_right = 1;
  asym.dilation_h = 2;
  geometries.push_back(asym);
  asym.stride_w = 3;
  asym.dilation_w = 2;
  geometries.push_back(asym);
  Conv2dGeometry column = geometry(1, 9, 7, 5, 1, 1, 0, 1, 1);
  column.kernel_h = 5;  // a 5x1 kernel: two taps of a pair in two kernel rows
  column.pad_top = 1;
  geometries.push_back(column);
  for (const Conv2dGeometry& g : geometries) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      ConvCase c;
      c.g = g;
      c.fill = fill;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kUInt8;
      c.a_format = {8, 4, false};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kInt16;
      c.w_dtype = DType::kInt16;
      c.a_format = {12, 6, true};
      c.w_format = {10, 8, true};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// A 2x2 stride-2 max pool fused into the store equals the conv, then the pool (reference and
// fast unfused), for every output kind, code dtype, rounding and fused ReLU of check(): even and
// odd output sizes (floor drops the last row / column), the channel-pair, tap-pair and row-pair
// k-pairs, stride 1 (extended panels) and 2 (gathered), 1-17 output channels (kMr remainders
// and more than one 16-channel pooled tile), pooled rows wider than 16, groups, and a batch of
// one (threads split an image's pooled rows).
TEST(IntConv2d, FusedMaxPool2x2EqualsConvThenPool) {
  Rng rng(kSeed + 7);
  std::vector<Conv2dGeometry> geometries = {
      geometry(1, 28, 28, 6, 5, 1, 2, 1, 1),   // LeNet's first conv (tap pairs), 28 -> 14
      geometry(6, 14, 14, 16, 5, 1, 0, 1, 1),  // LeNet's second (channel pairs), 10 -> 5
      geometry(3, 9, 11, 5, 3, 1, 0, 1, 1),    // row pairs, 7x9 -> 3x4 (odd: floor)
      geometry(2, 13, 12, 17, 3, 1, 1, 1, 1),  // 17 channels, 13x12 -> 6x6
      geometry(1, 7, 7, 1, 2, 1, 0, 1, 1),     // one channel, 6x6 -> 3x3
      geometry(2, 11, 10, 3, 3, 1, 1, 2, 1),   // stride 2 (gathered), 6x5 -> 3x2
      geometry(4, 12, 12, 8, 3, 2, 1, 1, 2),   // groups, dilation 2, 10x10 -> 5x5
      geometry(2, 3, 40, 4, 1, 1, 0, 1, 1),    // 3x40 -> 1x20: a pooled row wider than 16
      geometry(2, 4, 5, 3, 3, 1, 0, 1, 1),     // 2x3 -> 1x1
      // Channels as lanes (fewer multiplies than the positions way; LeNet's second conv above
      // too): 32 channels (two blocks) on odd 7x7, 12 (four zero lanes), stride 2 with row
      // pairs, 2 groups of 16, tap pairs (one input channel).
      geometry(4, 9, 9, 32, 3, 1, 0, 1, 1),
      geometry(1, 12, 12, 16, 3, 1, 1, 1, 1),
      geometry(2, 8, 8, 12, 5, 1, 2, 1, 1),
      geometry(3, 10, 13, 16, 3, 1, 1, 2, 1),
      geometry(8, 10, 10, 32, 3, 2, 1, 1, 1),
  };
  for (const Conv2dGeometry& g : geometries) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      ConvCase c;
      c.g = g;
      c.fill = fill;
      c.pool = ConvPool::kMax2x2;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kUInt8;
      c.a_format = {8, 4, false};
      c.batch = 1;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kInt16;
      c.w_dtype = DType::kInt16;
      c.a_format = {12, 6, true};
      c.w_format = {10, 8, true};
      c.batch = 3;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// Depthwise convs (one input channel per group, groups > 1) take their own path on AVX2 (per
// channel phase planes, tap pairs): 96 groups (MobileNetV2's 14x14 stage), channel
// multipliers, strides 1-3 (phase planes), dilations, odd and even tap counts, asymmetric pads
// and kernels, 1-D (1 x KW) kernels, rows wider than a 16-lane block, output rows narrower than
// a block's drops, kernels past kMaxDepthwiseTaps (the im2col path), and planes stored as several
// 16 x 16 tiles of one channel (Epilogue::column_tile) with ragged ends, at the dtype extremes.
TEST(IntConv2d, DepthwiseEqualsReference) {
  Rng rng(kSeed + 8);
  std::vector<Conv2dGeometry> geometries = {
      geometry(96, 14, 14, 96, 3, 96, 1, 1, 1),  // MobileNetV2 at 14x14, 96 groups
      geometry(32, 15, 13, 32, 3, 32, 1, 2, 1),  // stride 2, odd sizes
      geometry(24, 9, 9, 24, 5, 24, 2, 2, 1),    // EfficientNet's 5x5, stride 2
      geometry(8, 12, 10, 16, 3, 8, 1, 1, 1),    // channel multiplier 2
      geometry(6, 11, 12, 6, 3, 6, 2, 1, 2),     // dilation 2
      geometry(5, 7, 7, 5, 7, 5, 3, 1, 1),       // 49 taps
      geometry(3, 3, 50, 3, 3, 3, 1, 1, 1),      // rows wider than 16 lanes
      geometry(4, 5, 5, 4, 5, 4, 0, 1, 1),       // kernel = input: one pixel
      geometry(4, 6, 6, 4, 1, 4, 0, 2, 1),       // 1x1 taps, stride 2
      geometry(3, 2, 2, 6, 3, 3, 1, 1, 1),       // 2x2 image, multiplier 2
      geometry(2, 12, 12, 2, 12, 2, 0, 1, 1),    // 144 taps: the im2col path
      // Planes of more than one 16 x 16 store tile (256 outputs), with a ragged last column.
      geometry(4, 23, 19, 4, 3, 4, 1, 1, 1),  // 437 outputs = 256 + 11 x 16 + 5
      geometry(3, 21, 17, 6, 3, 3, 1, 1, 1),  // multiplier 2: 357 outputs per channel
      geometry(2, 40, 39, 2, 3, 2, 1, 2, 1),  // stride 2: 20 x 20 = 400
  };
  Conv2dGeometry asym = geometry(6, 10, 11, 6, 3, 6, 0, 1, 1);
  asym.kernel_h = 2;
  asym.kernel_w = 4;  // 8 taps: no zero weight
  asym.pad_top = 2;
  asym.pad_right = 1;
  asym.stride_h = 3;
  asym.dilation_h = 2;
  geometries.push_back(asym);
  asym.stride_h = 1;
  asym.stride_w = 3;
  asym.dilation_w = 2;
  geometries.push_back(asym);
  Conv2dGeometry line = geometry(8, 1, 37, 8, 1, 8, 0, 1, 1);
  line.kernel_w = 5;  // Conv1d as a 1 x 5 kernel
  line.pad_left = line.pad_right = 2;
  geometries.push_back(line);
  for (const Conv2dGeometry& g : geometries) {
    if (g.kernel_h * g.kernel_w <= PackedConv2d::kMaxDepthwiseTaps && cpu_supports(Isa::kAvx2)) {
      Tensor w =
          make_codes(DType::kInt8, g.out_channels * g.kernel_h * g.kernel_w, {8, 5, true}, rng);
      Conv2dWeights cw;
      cw.w = w.raw();
      cw.w_format = {8, 5, true};
      cw.a_format = {8, 4, true};
      EXPECT_GT(pack_conv2d(g, cw).depthwise_pairs().numel(), 0) << "not the depthwise path";
      // int8 weights and 8-bit codes packed for VNNI add the tap quads (check() runs every
      // supported ISA: the pairs below VNNI, the quads on it).
      EXPECT_EQ(pack_conv2d(g, cw, Isa::kAvx2).depthwise_quads().numel(), 0);
      if (cpu_supports(Isa::kAvx512Vnni)) {
        EXPECT_EQ(pack_conv2d(g, cw, Isa::kAvx512Vnni).depthwise_quads().numel(),
                  g.out_channels * ((g.kernel_h * g.kernel_w + 3) / 4));
      }
    }
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      ConvCase c;
      c.g = g;
      c.fill = fill;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kUInt8;
      c.a_format = {8, 4, false};
      c.batch = 1;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
      c.a_dtype = DType::kInt16;
      c.w_dtype = DType::kInt16;
      c.a_format = {16, 6, true};  // every int16 code; 49 taps x 2^15 x 2^9 fits int32
      c.w_format = {10, 8, true};
      c.batch = 3;
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// The depthwise path at stride 2 on rows of 16 codes and more (EfficientNet-B0's and
// MobileNetV2's stride-2 depthwise convs at 224): each row is split into its two column phases
// 32 or 16 codes at a time (conv2d.cc split_pair, a byte shuffle, then sign or zero extension),
// the last piece overlapping the one before, an odd row's last code alone; the planes' zeros are
// written once per work item, whose later images overwrite the codes alone. Odd and even left pads
// (the phase that takes the even columns changes), widths with and without a tail past the 32-code
// pieces, int8 and uint8 codes (random and the extremes, where a wrong extension shows), batches of
// several images per work item, 1 and 2 threads, every output kind: equal to the reference bit for
// bit.
TEST(IntConv2d, DepthwiseStrideTwoWideRowsEqualReference) {
  Rng rng(kSeed + 12);
  std::vector<Conv2dGeometry> geometries = {
      geometry(16, 9, 70, 16, 3, 16, 1, 2, 1),  // pad 1: even columns in phase 1, a tail of 6
      geometry(16, 8, 67, 16, 5, 16, 2, 2, 1),  // 5x5, pad 2: even columns in phase 0
      geometry(16, 7, 64, 16, 3, 16, 0, 2, 1),  // no pad, two whole pieces
      geometry(24, 5, 33, 24, 3, 24, 1, 2, 1),  // one piece and one code
      geometry(16, 6, 56, 16, 3, 16, 1, 2, 1),  // a piece, then one ending at the row's end
      geometry(16, 6, 28, 16, 3, 16, 1, 2, 1),  // 16-code pieces, the last overlapping
      geometry(16, 5, 21, 16, 5, 16, 2, 2, 1),  // a 16-code piece overlapping, one code left
      geometry(16, 4, 16, 16, 3, 16, 1, 2, 1),  // one 16-code piece
  };
  Conv2dGeometry asym = geometry(16, 6, 45, 16, 3, 16, 0, 2, 1);
  asym.pad_left = 3;  // odd left pad, no right pad
  asym.stride_h = 1;
  geometries.push_back(asym);
  const int saved = num_threads();
  set_num_threads(2);
  for (const Conv2dGeometry& g : geometries) {
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      for (DType a : {DType::kInt8, DType::kUInt8}) {
        ConvCase c;
        c.g = g;
        c.fill = fill;
        c.batch = 5;
        c.a_dtype = a;
        c.a_format = {8, 4, a == DType::kInt8};
        c.threads = {1};
        check(c, rng);
        if (::testing::Test::HasFatalFailure()) break;
      }
      if (::testing::Test::HasFatalFailure()) break;
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
  set_num_threads(saved);
}

// Batch blocking of the pixel-major path (issue 14): a work item runs several images' panels
// per block of weight rows; on maps of 1x1 .. 4x4 (and some wider) the panels' lanes are the
// pixels of several images (gathered) or each image's padded rows (extended). Batches that
// split into uneven image blocks, panels that straddle images, weight rows in several passes,
// the channels split between threads, for 1, 2 and 3 threads: an image or offset mix-up shows as
// a mismatch against the reference. The depthwise path's work items (several images of one
// group) too.
TEST(IntConv2d, BatchBlockedSmallMapsEqualReference) {
  Rng rng(kSeed + 9);
  std::vector<Conv2dGeometry> geometries;
  for (int64_t hw : {1, 2, 3, 4}) {
    geometries.push_back(geometry(64, hw, hw, 96, 3, 1, 1, 1, 1));  // 3x3, 16 channel blocks
    geometries.push_back(geometry(6, hw, hw, 10, 1, 1, 0, 1, 1));   // 1x1, channel pairs
    geometries.push_back(geometry(3, hw, hw, 8, 3, 1, 1, 1, 1));    // row pairs (3 channels)
    geometries.push_back(geometry(1, hw, hw, 8, 3, 1, 1, 1, 1));    // tap pairs (1 channel)
    geometries.push_back(geometry(8, hw, hw, 40, 3, 1, 1, 2, 1));   // stride 2: gathered
    geometries.push_back(geometry(8, hw, hw, 12, 3, 2, 1, 1, 1));   // 2 groups
    // Depthwise, 16 groups: a work item runs up to 8 images of one group.
    geometries.push_back(geometry(16, hw, hw, 16, 3, 16, 1, 1, 1));
    geometries.push_back(geometry(16, hw + 1, hw, 32, 3, 16, 1, 2, 1));           // stride 2, x2
    geometries.push_back(geometry(72, hw, hw + 1, 72, 3, 72, 1, hw % 2 + 1, 1));  // 16-lane blocks
  }
  geometries.push_back(geometry(16, 9, 7, 24, 3, 1, 1, 1, 1));   // extended, several panels
  geometries.push_back(geometry(64, 8, 8, 96, 3, 1, 1, 1, 1));   // extended, rows in two passes
  geometries.push_back(geometry(256, 4, 4, 16, 3, 1, 1, 1, 1));  // images in several blocks
  geometries.push_back(geometry(96, 7, 7, 40, 3, 1, 1, 1, 1));   // 7x7 (gathered)
  const int saved = num_threads();
  set_num_threads(2);  // the reference's result compared against 2 threads, then 1 and 3
  for (const Conv2dGeometry& g : geometries) {
    for (int64_t batch : {1, 3, 7, 20}) {
      ConvCase c;
      c.g = g;
      c.batch = batch;
      c.few_outputs = true;
      c.threads = {1, 3};
      c.a_dtype = batch == 3 ? DType::kUInt8 : DType::kInt8;
      c.a_format = {8, 4, batch != 3};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) break;
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
  set_num_threads(saved);
}

// check() of every geometry at each batch, the activation codes cycling through int8 s8.4,
// uint8 u8.3 and int16 s12.6, the fast conv also run with 1 and 3 threads.
void check_each(const std::vector<Conv2dGeometry>& geometries,
                std::initializer_list<int64_t> batches, Rng& rng) {
  const DType a_dtypes[] = {DType::kInt8, DType::kUInt8, DType::kInt16};
  const FixedFormat a_formats[] = {{8, 4, true}, {8, 3, false}, {12, 6, true}};
  int k = 0;
  for (const Conv2dGeometry& g : geometries) {
    for (int64_t batch : batches) {
      ConvCase c;
      c.g = g;
      c.batch = batch;
      c.a_dtype = a_dtypes[k % 3];
      c.a_format = a_formats[k % 3];
      ++k;
      c.threads = {1, 3};
      check(c, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

// Convs on 1x1 maps whose (cut) kernel is 1x1 (issue 14: EfficientNet's squeeze-excitation
// convs, the last stages of the 32x32 CNNs): a pointwise conv runs as the GEMM of the images
// (conv2d.cc run_single_pixel, at batch >= 16 with a requantizing store only for K >= 256), a
// depthwise conv as one product per channel and image (run_depthwise_single_tap: 16
// channels a block, the images as the Epilogue's rows, 16 at a time). Channel counts on both
// sides of the thresholds and of 16-channel blocks, batches below, at and past 16 and 32, every
// activation dtype, 1, 2 and 3 threads, every output kind: equal to the reference bit for bit.
TEST(IntConv2d, OnePixelMapsEqualReference) {
  Rng rng(kSeed + 13);
  const std::vector<Conv2dGeometry> geometries = {
      geometry(40, 1, 1, 24, 1, 1, 0, 1, 1),   // K = 40
      geometry(300, 1, 1, 20, 3, 1, 1, 1, 1),  // 3x3 pad 1 cut to its centre; K = 300
      geometry(700, 1, 1, 36, 1, 1, 0, 2, 1),  // K = 700, stride 2
      geometry(40, 1, 1, 40, 3, 40, 1, 1, 1),  // depthwise: 2.5 blocks of 16 channels
      geometry(16, 1, 1, 16, 5, 16, 2, 1, 1),  // depthwise 5x5 cut to one tap
      geometry(12, 1, 1, 24, 3, 12, 1, 1, 1),  // channel multiplier 2: not the one-tap path
  };
  const int saved = num_threads();
  set_num_threads(2);
  check_each(geometries, {1, 5, 16, 19, 33}, rng);
  set_num_threads(saved);
}

// Pointwise convs (1x1 kernel, stride 1, one group) on maps of 2 to 7 pixels: a float output is
// the GEMM of rows (pixel, image) (conv2d.cc few_pixels_float; the codes gathered from NCHW and
// the values put back), the other outputs keep their paths; 8 pixels (2x4) take the quads or
// pair panels. K below and above 256, output channels past a 16-column panel, batches 1 to 19,
// 1 and 3 threads.
TEST(IntConv2d, FewPixelPointwiseMapsEqualReference) {
  Rng rng(kSeed + 17);
  const std::vector<Conv2dGeometry> geometries = {
      geometry(40, 2, 2, 24, 1, 1, 0, 1, 1),
      geometry(300, 1, 3, 20, 1, 1, 0, 1, 1),  // K = 300, a 1x3 map
      geometry(64, 7, 1, 37, 1, 1, 0, 1, 1),   // 7x1
      geometry(24, 2, 3, 16, 1, 1, 0, 1, 1),   // 2x3
      geometry(32, 2, 4, 20, 1, 1, 0, 1, 1),   // 2x4: not this path
  };
  check_each(geometries, {1, 5, 19}, rng);
}

// The kernel rows u (or columns) that read the image for some output: u * d - pad + o * s in
// [0, in) for an o in [0, out), by enumeration.
std::vector<bool> live_rows(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad, int64_t d) {
  std::vector<bool> live(static_cast<size_t>(k), false);
  for (int64_t u = 0; u < k; ++u) {
    for (int64_t o = 0; o < out; ++o) {
      const int64_t i = u * d - pad + o * s;
      if (i >= 0 && i < in) live[static_cast<size_t>(u)] = true;
    }
  }
  return live;
}

// The quads path (int8 weights, 8-bit codes, VNNI, strides other than 1x1: conv2d.cc QuadJob):
// channel quads (4 | C/G) and row quads (other counts: 1, 2, 3, 6 channels; kernel widths 1 to
// 9, the last quad part zero weights), strides 2, 3, 2x1, 1x2 and 4x4 (phase planes, some never
// read), asymmetric pads, dilation 2, 2 groups, output channels past a 12-row block (13, 25, 64)
// and positions past a 32-lane tile (16-lane last tiles), signed codes (+128 and the
// correction) and unsigned ones at the extremes, and 1, 2 and 3 threads (tiles or channel blocks
// split). Each geometry is checked to take the path (where the CPU has VNNI).
TEST(IntConv2d, QuadsPathEqualsReference) {
  Rng rng(kSeed + 11);
  std::vector<Conv2dGeometry> geometries = {
      geometry(8, 14, 14, 13, 3, 1, 1, 2, 1),   // channel quads, 3x3 stride 2
      geometry(16, 12, 12, 25, 1, 1, 0, 2, 1),  // channel quads, 1x1 stride 2 (one phase)
      geometry(3, 23, 23, 16, 7, 1, 3, 2, 1),   // row quads, a 7x7 stride-2 stem
      geometry(3, 17, 17, 12, 3, 1, 1, 2, 1),   // row quads, 3x3 stride 2 (MobileNet's stem)
      geometry(1, 15, 16, 5, 5, 1, 2, 2, 1),    // 1 channel, 5x5
      geometry(2, 13, 11, 7, 9, 1, 4, 3, 1),    // 2 channels, 9x9 stride 3 (three quads)
      geometry(6, 16, 16, 64, 3, 1, 1, 2, 2),   // 6 channels, dilation 2
      geometry(8, 20, 20, 12, 3, 2, 1, 2, 1),   // 2 groups of 4 channels
      geometry(4, 17, 18, 12, 4, 1, 1, 4, 1),   // 4x4 stride 4 (16 phases)
      geometry(12, 9, 9, 24, 2, 1, 0, 2, 1),    // 2x2 stride 2
      // Unpadded 1x1 convs of stride 1 (issue 14: EfficientNet's and MobileNet's pointwise
      // convs at 32x32 inputs): an 8x8 map (two 32-lane tiles), a 4x4 one (one 16-lane tile), a
      // 5x7 one (a part-full tile), a 3x3 one (the plane's channel quads 8 at a time), row quads
      // (6 channels) and 2 groups.
      geometry(16, 8, 8, 24, 1, 1, 0, 1, 1),
      geometry(12, 4, 4, 20, 1, 1, 0, 1, 1),
      geometry(8, 5, 7, 9, 1, 1, 0, 1, 1),
      geometry(8, 3, 3, 5, 1, 1, 0, 1, 1),
      geometry(6, 6, 6, 13, 1, 1, 0, 1, 1),
      geometry(8, 4, 6, 10, 1, 2, 0, 1, 1),
  };
  Conv2dGeometry asym = geometry(4, 15, 13, 9, 3, 1, 0, 1, 1);
  asym.stride_h = 2;
  asym.pad_top = 2;
  asym.pad_right = 1;
  geometries.push_back(asym);  // stride 2x1
  asym = geometry(8, 9, 5, 6, 1, 1, 0, 1, 1);
  asym.stride_h = 2;
  geometries.push_back(asym);  // 1x1 stride 2x1 on 5-column rows (channel quads one by one)
  asym = geometry(3, 11, 19, 14, 3, 1, 1, 1, 1);
  asym.stride_w = 2;
  asym.kernel_w = 5;
  asym.pad_left = 0;
  asym.pad_right = 2;
  geometries.push_back(asym);  // stride 1x2, a 3x5 kernel
  const bool vnni = cpu_supports(Isa::kAvx512Vnni);
  if (vnni) {
    // Stride 1 keeps the pair panels where the quads would drop most lanes (a 2x2 map keeps 4
    // of 16) and wherever the conv is not an unpadded 1x1 (Winograd / extended panels).
    for (const Conv2dGeometry& g :
         {geometry(16, 2, 2, 24, 1, 1, 0, 1, 1), geometry(16, 8, 8, 24, 3, 1, 1, 1, 1),
          geometry(16, 8, 8, 24, 1, 1, 1, 1, 1)}) {
      std::vector<int8_t> zeros(
          static_cast<size_t>(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w));
      Conv2dWeights cw;
      cw.w = zeros.data();
      cw.w_format = {8, 5, true};
      cw.a_format = {8, 4, true};
      EXPECT_TRUE(pack_conv2d(g, cw, Isa::kAvx512Vnni).weight_quads().empty())
          << g.in_h << "x" << g.in_w << " map, kernel " << g.kernel_h << ", pad " << g.pad_top;
    }
  }
  const int saved = num_threads();
  set_num_threads(2);
  for (const Conv2dGeometry& g : geometries) {
    Conv2dWeights cw;  // only the path's choice (codes unread)
    std::vector<int8_t> zeros(
        static_cast<size_t>(g.out_channels * g.in_channels / g.groups * g.kernel_h * g.kernel_w));
    cw.w = zeros.data();
    cw.w_format = {8, 5, true};
    cw.a_format = {8, 4, true};
    if (vnni) {
      EXPECT_FALSE(pack_conv2d(g, cw, Isa::kAvx512Vnni).weight_quads().empty())
          << g.in_channels << " channels, " << g.in_h << "x" << g.in_w << ", stride " << g.stride_h
          << "x" << g.stride_w;
    }
    EXPECT_TRUE(pack_conv2d(g, cw, Isa::kAvx2).weight_quads().empty());
    for (Fill fill : {Fill::kRandom, Fill::kExtremes}) {
      for (int64_t batch : {1, 3}) {
        ConvCase c;
        c.g = g;
        c.batch = batch;
        c.fill = fill;
        c.few_outputs = true;
        c.threads = {1, 3};
        check(c, rng);
        if (::testing::Test::HasFatalFailure()) break;
        c.a_dtype = DType::kUInt8;
        c.a_format = {8, 4, false};
        check(c, rng);
        if (::testing::Test::HasFatalFailure()) break;
      }
      if (::testing::Test::HasFatalFailure()) break;
    }
    if (::testing::Test::HasFatalFailure()) break;
  }
  set_num_threads(saved);
}

// pack_conv2d() cuts off the kernel taps that only ever read the zero padding (code 0) and runs
// the rest (issue 14: a 3x3 pad-1 conv on a 1x1 map keeps its centre tap, 9x fewer multiplies).
// Random geometries on maps of 1x1 .. 4x4 (and a few wider), kernels 1..5, asymmetric pads 0..3,
// strides and dilations 1..3, groups (depthwise too), every activation and weight dtype, batches
// of 1..5, 1, 2 and 3 threads: the packed geometry keeps every live tap, cuts only dead ones (all
// of them with dilation 1), keeps the input and output sizes and pads >= 0; and the results
// equal ref::conv2d on the uncut geometry and weights bit for bit.
TEST(IntConv2d, TapsThatOnlyReadPaddingAreCutOff) {
  Rng rng(kSeed + 11);
  const DType a_dtypes[] = {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32};
  const FixedFormat a_formats[] = {{8, 4, true}, {8, 3, false}, {12, 6, true}, {18, 5, true}};
  const DType w_dtypes[] = {DType::kInt8, DType::kInt16, DType::kInt32};
  const FixedFormat w_formats[] = {{8, 5, true}, {11, 7, true}, {17, 9, true}};
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
  };
  const int saved = num_threads();
  set_num_threads(2);
  int cut = 0, cases = 0;
  for (int trial = 0; cases < 160 && trial < 5000; ++trial) {
    Conv2dGeometry g;
    const int64_t groups = std::array<int64_t, 4>{1, 1, 2, 4}[pick(0, 3)];
    g.groups = groups;
    g.in_channels = groups * (groups == 4 ? 1 : pick(1, 5));  // 4 groups: depthwise
    g.out_channels = groups * pick(1, 6);
    g.in_h = trial % 10 == 0 ? pick(5, 9) : pick(1, 4);
    g.in_w = trial % 10 == 1 ? pick(5, 9) : pick(1, 4);
    g.kernel_h = pick(1, 5);
    g.kernel_w = pick(1, 5);
    g.pad_top = pick(0, 3);
    g.pad_bottom = pick(0, 3);
    g.pad_left = pick(0, 3);
    g.pad_right = pick(0, 3);
    g.stride_h = pick(1, 3);
    g.stride_w = pick(1, 3);
    g.dilation_h = trial % 3 == 0 ? pick(2, 3) : 1;
    g.dilation_w = trial % 3 == 1 ? pick(2, 3) : 1;
    if (g.in_h + g.pad_top + g.pad_bottom < g.dilation_h * (g.kernel_h - 1) + 1 ||
        g.in_w + g.pad_left + g.pad_right < g.dilation_w * (g.kernel_w - 1) + 1) {
      EXPECT_THROW(pack_conv2d(g, Conv2dWeights{}), Error);  // the kernel does not fit
      continue;
    }
    ++cases;
    ConvCase c;
    c.g = g;
    c.batch = pick(1, 5);
    c.few_outputs = true;
    c.threads = {1, 3};
    c.a_dtype = a_dtypes[cases % 4];
    c.a_format = a_formats[cases % 4];
    c.w_dtype = w_dtypes[cases / 4 % 3];
    c.w_format = w_formats[cases / 4 % 3];
    c.bias = cases % 5 != 0;

    // The packed geometry against the enumeration of the live taps.
    Tensor w =
        make_codes(c.w_dtype, g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w,
                   c.w_format, rng);
    Conv2dWeights cw;
    cw.w = w.raw();
    cw.w_dtype = c.w_dtype;
    cw.w_format = c.w_format;
    cw.a_format = c.a_format;
    cw.a_dtype = c.a_dtype;
    const Conv2dGeometry r = pack_conv2d(g, cw).geometry();
    const std::string where =
        fmt::format("in {}x{} kernel {}x{} pads {},{},{},{} strides {}x{} dilations {}x{}", g.in_h,
                    g.in_w, g.kernel_h, g.kernel_w, g.pad_top, g.pad_left, g.pad_bottom,
                    g.pad_right, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w);
    ASSERT_EQ(r.out_h(), g.out_h()) << where;
    ASSERT_EQ(r.out_w(), g.out_w()) << where;
    ASSERT_TRUE(r.in_h == g.in_h && r.in_w == g.in_w && r.in_channels == g.in_channels &&
                r.out_channels == g.out_channels && r.groups == g.groups &&
                r.stride_h == g.stride_h && r.stride_w == g.stride_w &&
                r.dilation_h == g.dilation_h && r.dilation_w == g.dilation_w)
        << where;
    ASSERT_TRUE(r.pad_top >= 0 && r.pad_left >= 0 && r.pad_bottom >= 0 && r.pad_right >= 0)
        << where;
    struct Axis {
      int64_t in, out, k, s, pad, d, k_run, pad_run;
    };
    for (const Axis& a : {Axis{g.in_h, g.out_h(), g.kernel_h, g.stride_h, g.pad_top, g.dilation_h,
                               r.kernel_h, r.pad_top},
                          Axis{g.in_w, g.out_w(), g.kernel_w, g.stride_w, g.pad_left, g.dilation_w,
                               r.kernel_w, r.pad_left}}) {
      ASSERT_EQ((a.pad - a.pad_run) % a.d, 0) << where;
      const int64_t first = (a.pad - a.pad_run) / a.d;  // the first kept kernel row
      ASSERT_TRUE(first >= 0 && a.k_run >= 1 && first + a.k_run <= a.k) << where;
      const std::vector<bool> live = live_rows(a.in, a.out, a.k, a.s, a.pad, a.d);
      int64_t lo = a.k, hi = -1;
      for (int64_t u = 0; u < a.k; ++u) {
        if (!live[static_cast<size_t>(u)]) continue;
        lo = std::min(lo, u);
        hi = u;
        ASSERT_TRUE(u >= first && u < first + a.k_run) << where << ": live row " << u << " cut";
      }
      if (a.d == 1 && lo <= hi) {  // every dead row at either end is cut
        ASSERT_EQ(first, lo) << where;
        ASSERT_EQ(first + a.k_run - 1, hi) << where;
      }
    }
    if (r.kernel_h != g.kernel_h || r.kernel_w != g.kernel_w) ++cut;
    check(c, rng);
    if (::testing::Test::HasFatalFailure()) break;
  }
  set_num_threads(saved);
  EXPECT_EQ(cases, 160);
  EXPECT_GE(cut, 60);  // most tiny-map cases cut taps
}

// A 3x3 pad-1 conv on a 1x1 map sums its centre tap only, so its accumulator bound is the
// centre's: int16 activations (|x| <= 2^15) times 15-bit weights (|w| <= 2^14) need int64 over
// 9 taps (9 * 2^29 > 2^31 - 1) but int32 over the one (2^29), and then run on the int32 paths,
// exactly.
TEST(IntConv2d, CutTapsTightenTheAccumulatorBound) {
  Rng rng(kSeed + 12);
  ConvCase c;
  c.g = geometry(1, 1, 1, 8, 3, 1, 1, 1, 1);
  c.batch = 3;
  c.a_dtype = c.w_dtype = DType::kInt16;
  c.a_format = {16, 8, true};
  c.w_format = {15, 10, true};
  c.bias = false;
  c.fill = Fill::kExtremes;
  c.few_outputs = true;
  Tensor w = make_codes(c.w_dtype, 8 * 9, c.w_format, rng, Fill::kMin);
  Conv2dWeights cw;
  cw.w = w.raw();
  cw.w_dtype = c.w_dtype;
  cw.w_format = c.w_format;
  cw.a_format = c.a_format;
  cw.a_dtype = c.a_dtype;
  const PackedConv2d pc = pack_conv2d(c.g, cw);
  EXPECT_EQ(pc.geometry().kernel_h, 1);
  EXPECT_EQ(pc.geometry().kernel_w, 1);
  EXPECT_EQ(accumulator_bound(pc).need, AccNeed::kInt32);
  EXPECT_EQ(accumulator_bound(pc).max_abs, 536870912.0);  // 2^15 * 2^14
  // On a 3x3 map every tap reads the image: nothing is cut, and the bound is the 9 taps'.
  const PackedConv2d wide = pack_conv2d(geometry(1, 3, 3, 8, 3, 1, 1, 1, 1), cw);
  EXPECT_EQ(wide.geometry().kernel_h, 3);
  EXPECT_EQ(accumulator_bound(wide).need, AccNeed::kInt64);
  check(c, rng);
}

TEST(IntConv2d, BatchOfOneUsesTheParallelGemm) {
  Rng rng(kSeed + 3);
  ConvCase c;
  c.batch = 1;
  c.g = geometry(8, 12, 12, 16, 3, 1, 1, 1, 1);
  c.bias = false;
  check(c, rng);
}

TEST(IntConv2d, BadGeometryIsAnError) {
  Rng rng(kSeed + 4);
  Tensor w = make_codes(DType::kInt8, 6 * 2 * 9, {8, 4, true}, rng);
  Conv2dWeights cw;
  cw.w = w.raw();
  cw.w_format = {8, 4, true};
  cw.a_format = {8, 4, true};
  Conv2dGeometry g = geometry(3, 8, 8, 6, 3, 2, 1, 1, 1);  // 3 channels, 2 groups
  try {
    pack_conv2d(g, cw);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not divisible by group = 2"), std::string::npos);
  }
  g = geometry(2, 2, 2, 6, 5, 1, 0, 1, 1);  // 5x5 kernel on 2x2 input
  EXPECT_THROW(pack_conv2d(g, cw), Error);
  // A 4x4 kernel on the 2x2 input, stride 3: out_h()'s (2 - 3 - 1) / 3 + 1 truncates to 1.
  g = geometry(2, 2, 2, 6, 4, 1, 0, 3, 1);
  EXPECT_THROW(pack_conv2d(g, cw), Error);
}

}  // namespace
}  // namespace qsearch::kernels::fixed
