// The exact integer Winograd paths of conv2d, F(2x2, 3x3) and F(4x4, 3x3) (kernels/fixed/
// winograd.h) == ref::conv2d (direct loops, __int128 sums) bit for bit: random geometries (odd/even
// maps, symmetric and asymmetric pads, channel counts that are not multiples of 8 or even odd,
// batch > 1), every code dtype, bias or none, every GemmOutput kind with ReLU / clamp, one and two
// threads; plus the exactness conditions at their edges (the path is taken exactly when they hold,
// and the results are exact on both sides of each edge).
#include "kernels/fixed/winograd.h"

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "kernels_fixed/tester.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::Fill;
using testing::make_codes;

constexpr uint64_t kSeed = 2026;

bool avx2() { return max_isa() >= Isa::kAvx2; }

struct WinoCase {
  Conv2dGeometry g;
  int64_t batch = 2;
  DType a_dtype = DType::kInt8, w_dtype = DType::kInt8;
  FixedFormat a_format{8, 4, true}, w_format{8, 5, true}, bias_format{16, 9, true};
  bool bias = true;
  Fill fill = Fill::kRandom;
  ConvPool pool = ConvPool::kNone;
  // kAlways: wherever exact, so that small random geometries test the path; kAuto: the cost
  // estimate decides too (ResNet-like shapes).
  Conv2dWeights::Winograd use = Conv2dWeights::Winograd::kAlways;
  int tile = 0;          // Conv2dWeights::winograd_tile
  bool may_pool = true;  // Conv2dWeights::may_pool
};

Conv2dGeometry geometry3x3(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pt, int64_t pl,
                           int64_t pb, int64_t pr) {
  Conv2dGeometry g;
  g.in_channels = c;
  g.in_h = h;
  g.in_w = w;
  g.out_channels = oc;
  g.kernel_h = g.kernel_w = 3;
  g.pad_top = pt;
  g.pad_left = pl;
  g.pad_bottom = pb;
  g.pad_right = pr;
  return g;
}

// Every output kind of the epilogue (as conv2d_test): raw accumulators, float, requantized codes
// of several dtypes with every rounding, fused ReLU and Clip.
std::vector<GemmParams> output_kinds(const WinoCase& c) {
  std::vector<GemmParams> ps;
  GemmParams p;
  p.acc = AccType::kInt64;
  ps.push_back(p);
  p.output = GemmOutput::kFloat;
  ps.push_back(p);
  p.output = GemmOutput::kRequantize;
  for (Rounding r : {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero, Rounding::kFloor}) {
    p.rounding = r;
    for (FixedFormat f : {FixedFormat{8, c.a_format.frac, true}, FixedFormat{8, 2, false},
                          FixedFormat{16, c.a_format.frac + c.w_format.frac - 1, true},
                          FixedFormat{12, c.a_format.frac + c.w_format.frac + 2, true},
                          FixedFormat{24, c.a_format.frac + 1, true}}) {
      p.out_format = f;
      p.relu = r == Rounding::kFloor;
      ps.push_back(p);
    }
  }
  p.relu = false;
  p.rounding = Rounding::kHalfToEven;
  p.out_format = {8, c.a_format.frac, true};
  p.clamp_lo = 0;
  p.clamp_hi = std::min<int64_t>(127, int64_t{6} << std::max(c.a_format.frac, 0));
  ps.push_back(p);
  p.out_format = {16, c.a_format.frac + 3, true};
  p.clamp_lo = -5;
  p.clamp_hi = 1000;
  p.relu = true;
  ps.push_back(p);
  return ps;
}

// Packs the case, checks whether the Winograd path was chosen (on AVX2 machines) and compares
// every output kind with ref::conv2d at one, two and three threads.
// want_tile: the tile the path must have taken (0: either).
void check(const WinoCase& c, Rng& rng, bool expect_winograd, int want_tile = 0) {
  const Conv2dGeometry& g = c.g;
  Tensor x =
      make_codes(c.a_dtype, c.batch * g.in_channels * g.in_h * g.in_w, c.a_format, rng, c.fill);
  Tensor w = make_codes(c.w_dtype, g.out_channels * g.in_channels * 9, c.w_format, rng, c.fill);
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
  cw.winograd = c.use;
  cw.winograd_tile = c.tile;
  cw.winograd_batch = c.batch;
  cw.may_pool = c.may_pool;
  const PackedConv2d pc = pack_conv2d(g, cw);
  const std::string what = fmt::format(
      "C={} HxW={}x{} OC={} pads={},{},{},{} batch={} A={}:{} W={}:{} bias={} tile={}",
      g.in_channels, g.in_h, g.in_w, g.out_channels, g.pad_top, g.pad_left, g.pad_bottom,
      g.pad_right, c.batch, dtype_name(c.a_dtype), quant::format_name(c.a_format),
      dtype_name(c.w_dtype), quant::format_name(c.w_format), c.bias,
      pc.winograd() != nullptr ? pc.winograd()->tile : 0);
  if (avx2()) {
    EXPECT_EQ(pc.winograd() != nullptr && pc.winograd()->min_batch <= c.batch, expect_winograd)
        << what;
    if (want_tile != 0 && pc.winograd() != nullptr) {
      EXPECT_EQ(pc.winograd()->tile, want_tile) << what;
    }
    // The Winograd-domain GEMM runs at the packing's level (ScopedMaxIsa caps it).
    if (pc.winograd() != nullptr) {
      EXPECT_EQ(pc.winograd()->isa, max_isa()) << what;
    }
    // Without a pool the lanes are never made, nor the rows when Winograd takes every batch; a
    // conv on the quads path (strided, VNNI) has its byte quads instead of rows and lanes.
    const bool quads = !pc.weight_quads().empty();
    EXPECT_EQ(pc.weight_lanes().empty(), !c.may_pool || quads) << what;
    const bool winograd_only =
        !c.may_pool && pc.winograd() != nullptr && pc.winograd()->min_batch <= 1;
    EXPECT_EQ(pc.weight_rows().empty(), winograd_only || quads) << what;
    EXPECT_EQ(pc.groups().front().panels().numel() == 0, winograd_only) << what;
  }
  std::vector<GemmParams> ps = output_kinds(c);
  if (accumulator_bound(pc).need == AccNeed::kInt32) {
    const size_t n = ps.size();
    for (size_t i = 0; i < n; ++i) {
      GemmParams q = ps[i];
      q.acc = AccType::kInt32;
      ps.push_back(q);
    }
  }
  const int64_t oh = conv_pool_out(c.pool, g.out_h()), ow = conv_pool_out(c.pool, g.out_w());
  const int64_t full_n = c.batch * g.out_channels * g.out_h() * g.out_w();
  const int64_t out_n = c.batch * g.out_channels * oh * ow;
  const int saved = num_threads();
  for (const GemmParams& q : ps) {
    const DType t = gemm_output_dtype(q);
    Tensor ref_y({full_n}, t);
    ref::conv2d(x.raw(), c.batch, g, cw, q, ref_y.raw());
    if (c.pool == ConvPool::kMax2x2) {
      // The fused pool stays on the direct path: == the max of each 2x2 window of the reference.
      Tensor fused({out_n}, t);
      conv2d(x.raw(), c.batch, pc, q, fused.raw(), c.pool);
      Tensor pooled({out_n}, t);
      const int64_t fh = g.out_h(), fw = g.out_w();
      for (int64_t pl = 0; pl < c.batch * g.out_channels; ++pl) {
        for (int64_t a = 0; a < oh; ++a) {
          for (int64_t bb = 0; bb < ow; ++bb) {
            const int64_t at = (pl * fh + 2 * a) * fw + 2 * bb, i = (pl * oh + a) * ow + bb;
            if (t == DType::kFloat32) {
              const float* r = ref_y.data<float>();
              pooled.data<float>()[i] =
                  std::max(std::max(r[at], r[at + 1]), std::max(r[at + fw], r[at + fw + 1]));
            } else {
              int64_t m = quant::load_code(ref_y.raw(), t, at);
              for (int64_t k : {at + 1, at + fw, at + fw + 1}) {
                m = std::max(m, quant::load_code(ref_y.raw(), t, k));
              }
              quant::store_code(pooled.raw(), t, i, m);
            }
          }
        }
      }
      ASSERT_TRUE(equal_exactly(pooled.raw(), fused.raw(), t, out_n, what + " pooled"));
      continue;
    }
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      Tensor fast_y({out_n}, t);
      conv2d(x.raw(), c.batch, pc, q, fast_y.raw());
      set_num_threads(saved);
      ASSERT_TRUE(equal_exactly(
          ref_y.raw(), fast_y.raw(), t, out_n,
          fmt::format("{} output={} {} {}{} acc={} threads={}", what, static_cast<int>(q.output),
                      quant::format_name(q.out_format), quant::rounding_name(q.rounding),
                      q.relu ? " relu" : "", q.acc == AccType::kInt32 ? 32 : 64, threads)));
    }
  }
}

int64_t pick(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
}

// Random geometries with Conv2dWeights::winograd_tile = tile. F(4x4) is taken wherever its
// conditions hold: always for 8-bit activations and int8 weights here (100 * 255 fits int16,
// 255 * 9 * 21 * 128 <= 2^25 - 1, |U'| <= 49 * 128), else F(2x2).
void random_geometries(int tile, uint64_t seed) {
  Rng rng(seed);
  for (int i = 0; i < 60; ++i) {
    WinoCase c;
    c.tile = tile;
    // Maps of 5..23 outputs each way (odd and even), pads 0..2 on each side independently.
    const int64_t pt = pick(rng, 0, 2), pl = pick(rng, 0, 2), pb = pick(rng, 0, 2),
                  pr = pick(rng, 0, 2);
    const int64_t h = pick(rng, 7, 23) - pt - pb, w = pick(rng, 7, 23) - pl - pr;
    c.g = geometry3x3(pick(rng, 1, 21), h, w, pick(rng, 1, 21), pt, pl, pb, pr);
    c.batch = pick(rng, 1, 3);
    switch (i % 3) {
      case 0:
        c.a_dtype = DType::kInt8;
        c.a_format = {static_cast<int>(pick(rng, 2, 8)), static_cast<int>(pick(rng, 0, 6)), true};
        break;
      case 1:
        c.a_dtype = DType::kUInt8;
        c.a_format = {static_cast<int>(pick(rng, 1, 8)), static_cast<int>(pick(rng, 0, 6)), false};
        break;
      default:  // int16 codes up to 13 bits: V = B^T d B fits int16
        c.a_dtype = DType::kInt16;
        c.a_format = {static_cast<int>(pick(rng, 9, 13)), static_cast<int>(pick(rng, 0, 8)), true};
        break;
    }
    if (i % 4 == 3) {
      c.w_dtype = DType::kInt16;
      c.w_format = {static_cast<int>(pick(rng, 9, 11)), static_cast<int>(pick(rng, 2, 10)), true};
    } else {
      c.w_format = {static_cast<int>(pick(rng, 2, 8)), static_cast<int>(pick(rng, 2, 7)), true};
    }
    c.bias = i % 5 != 4;
    c.fill = i % 7 == 6 ? Fill::kExtremes : Fill::kRandom;
    // int16 x int16 only with 8-bit activations' range (a int16 map meets int8 weights): every
    // case meets the exactness conditions (4 * 4096 * 128 * 9 * 21 < 2^31).
    if (c.w_dtype == DType::kInt16 && c.a_dtype == DType::kInt16) {
      c.a_dtype = DType::kInt8;
      c.a_format = {8, 4, true};
    }
    SCOPED_TRACE(i);
    const bool f4 = c.a_dtype != DType::kInt16 && c.w_dtype == DType::kInt8;
    check(c, rng, true, tile == 2 ? 2 : tile == 4 && f4 ? 4 : 0);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(IntWinograd, RandomGeometriesEqualReference) { random_geometries(2, kSeed); }

// Conv2dWeights::may_pool = false (the int lowering's convs that no 2x2 max pool follows): no lane
// copy of the weights, and neither direct rows nor GEMM panels where Winograd takes every batch.
// The same bits at every batch, also below a conv's min_batch (the direct path keeps its rows
// there), and with a pool where Winograd does not take every batch.
TEST(IntWinograd, WithoutAPoolTheDirectCopiesAreNotKept) {
  Rng rng(kSeed + 21);
  for (int i = 0; i < 24; ++i) {
    WinoCase c;
    c.may_pool = false;
    c.tile = i % 3 == 0 ? 2 : 0;
    // kAuto below 32 channels: never Winograd (the direct path on its rows).
    c.use = i % 2 == 0 ? Conv2dWeights::Winograd::kAlways : Conv2dWeights::Winograd::kAuto;
    const int64_t ch = pick(rng, 1, c.use == Conv2dWeights::Winograd::kAuto ? 31 : 40);
    c.g = geometry3x3(ch, pick(rng, 2, 13), pick(rng, 2, 13), pick(rng, 1, 20), 1, 1, 1, 1);
    c.batch = pick(rng, 1, 3);
    c.pool =
        i % 4 == 1 && c.use == Conv2dWeights::Winograd::kAuto ? ConvPool::kMax2x2 : ConvPool::kNone;
    SCOPED_TRACE(i);
    check(c, rng, c.use == Conv2dWeights::Winograd::kAlways);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // 32 channels on a 2x2 map: Winograd from a larger batch only (min_batch > 2); at batch 2 the
  // direct path runs on its rows.
  WinoCase c;
  c.may_pool = false;
  c.use = Conv2dWeights::Winograd::kAuto;
  c.g = geometry3x3(32, 2, 2, 8, 1, 1, 1, 1);
  c.batch = 2;
  check(c, rng, false);
}

// F(4x4)'s filters (72 bytes per output and input channel pair) above 16 MB take F(2x2) where
// F(4x4) would pay: 482 channels (16.7 MB of them) F(4x4), 483 (rounded up to 484: 16.8 MB)
// F(2x2). Packing only (ResNet-18's 512-channel convs are above).
TEST(IntWinograd, WideConvsTakeF2AboveTheFilterMemoryBound) {
  if (!avx2()) GTEST_SKIP() << "no AVX2";
  Rng rng(kSeed + 22);
  for (const auto& [ch, tile] : {std::pair<int64_t, int>{482, 4}, {483, 2}}) {
    const Conv2dGeometry g = geometry3x3(ch, 14, 14, ch, 1, 1, 1, 1);
    // 3-bit weights: F(4x4)'s sum bound holds over K = 9 * 483 (8-bit ones would exceed it).
    Tensor w = make_codes(DType::kInt8, ch * ch * 9, {3, 2, true}, rng, Fill::kRandom);
    Conv2dWeights cw;
    cw.w = w.raw();
    cw.w_format = {3, 2, true};
    cw.a_format = {8, 4, false};
    cw.a_dtype = DType::kUInt8;
    cw.winograd_batch = 16;
    const PackedConv2d pc = pack_conv2d(g, cw);
    ASSERT_NE(pc.winograd(), nullptr) << ch;
    EXPECT_EQ(pc.winograd()->tile, tile) << ch;
  }
}

TEST(IntWinograd, F4RandomGeometriesEqualReference) { random_geometries(4, kSeed + 11); }

// Tiny maps (outputs at most 6 wide: ResNet-18's 4x4 and 2x2 stages at 32x32) gather each
// tile's 4x4 input window instead of splitting padded rows, with the panels' lanes running over
// the tiles of several images: 1x1 .. 9x6 outputs, pads 0..2 on each side (windows mostly in
// the padding), batches whose tiles fill part of a panel, one, or several (and work items that
// split panels or output channels between 1-3 threads), every activation dtype.
void tiny_maps(int tile, uint64_t seed) {
  Rng rng(seed);
  const int64_t batches[] = {1, 3, 9, 17, 33};
  for (int i = 0; i < 30; ++i) {
    WinoCase c;
    c.tile = tile;
    const int64_t pt = pick(rng, 0, 2), pl = pick(rng, 0, 2), pb = pick(rng, 0, 2),
                  pr = pick(rng, 0, 2);
    // Outputs oh x ow with oh = h + pt + pb - 2, more than either pad, so that every tap reads
    // the image for some output (else pack_conv2d cuts the kernel, and it is no longer 3x3).
    const int64_t oh = pick(rng, std::max(pt, pb) + 1, i % 5 == 0 ? 9 : 6);
    const int64_t ow = pick(rng, std::max(pl, pr) + 1, 6);
    const int64_t h = oh + 2 - pt - pb, w = ow + 2 - pl - pr;
    c.batch = batches[i % 5];
    c.g = geometry3x3(pick(rng, 1, c.batch > 9 ? 12 : 24), h, w, pick(rng, 1, 10), pt, pl, pb, pr);
    switch (i % 3) {
      case 0:
        c.a_dtype = DType::kInt8;
        c.a_format = {8, 4, true};
        break;
      case 1:
        c.a_dtype = DType::kUInt8;
        c.a_format = {8, 3, false};
        break;
      default:
        c.a_dtype = DType::kInt16;
        c.a_format = {13, 6, true};
        break;
    }
    c.fill = i % 7 == 6 ? Fill::kExtremes : Fill::kRandom;
    SCOPED_TRACE(i);
    check(c, rng, true, tile == 4 && c.a_dtype != DType::kInt16 ? 4 : 2);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(IntWinograd, TinyMapsGatherTheirWindowsAcrossImages) { tiny_maps(2, kSeed + 7); }

// F(4x4) always gathers its 6x6 windows, lanes across tile rows and images.
TEST(IntWinograd, F4TinyMapsAcrossImages) { tiny_maps(4, kSeed + 12); }

// Every SIMD level of the Winograd-domain GEMM and F(4x4)'s input split this CPU has below the
// default (the other tests run that one): the AVX2 pair kernel and scalar split, AVX-512BW
// vpmaddwd + vpaddd (winograd.cc), on both tiles: random geometries (rows of 1-6 output channels,
// odd numbers of 16-lane panels: the 16- and 32-lane kernels; pads 0-2 against the masked split),
// tiny maps across images, and codes at their extremes.
TEST(IntWinograd, EveryIsaLevelEqualsReference) {
  const Isa top = max_isa();
  for (Isa isa : supported_isas()) {
    if (isa < Isa::kAvx2 || isa >= top) continue;
    ScopedMaxIsa cap(isa);
    SCOPED_TRACE(std::string(isa_name(isa)));
    random_geometries(2, kSeed + 21);
    random_geometries(4, kSeed + 22);
    tiny_maps(2, kSeed + 23);
    tiny_maps(4, kSeed + 24);
    if (::testing::Test::HasFatalFailure()) return;
    Rng rng(kSeed + 25);
    for (int tile : {2, 4}) {
      WinoCase wc;
      wc.g = geometry3x3(33, 12, 11, 9, 1, 1, 1, 1);
      wc.fill = Fill::kMin;  // -128 * -128 everywhere: the pair sums at 2^15 each
      wc.tile = tile;
      check(wc, rng, true, tile);
      wc.fill = Fill::kMax;
      check(wc, rng, true, tile);
    }
  }
}

TEST(IntWinograd, ResNetLikeShapesEqualReference) {
  Rng rng(kSeed + 1);
  // 64 and 70 channels (the pair kernel's blocks of 6 output channels, a ragged last block),
  // 56x56-like map at a smaller size, batch 2.
  for (int64_t c : {64, 70}) {
    WinoCase wc;
    wc.g = geometry3x3(c, 11, 10, c - 3, 1, 1, 1, 1);
    wc.a_format = {8, 4, false};
    wc.a_dtype = DType::kUInt8;
    wc.use = Conv2dWeights::Winograd::kAuto;
    check(wc, rng, true);
  }
}

// A work item's V2 above 640 KB (winograd.cc kBlockwiseV2Bytes) keeps the position order (every
// position's M of every output-channel block, then the stores); at or below it each block of
// output channels multiplies and stores on its own (M of one block). Few output channels and
// many input channels put one conv on both sides: at one thread F(4x4) over 150 channels (75
// pairs) and 64 lanes has 36 * 75 * 64 * 4 = 691 KB of V2, at two and three threads its work
// items take 32 and 16 lanes (block order); F(2x2) over 330 channels (165 pairs) takes 80 lanes
// at one thread (845 KB) and 64 at two (676 KB), 16 or 32 at three (block order). 20 and 13
// output channels: blocks of 5 and of 4, 4, 5.
TEST(IntWinograd, WideItemsKeepThePositionOrderNarrowOnesGoBlockByBlock) {
  Rng rng(kSeed + 26);
  {
    WinoCase wc;
    wc.g = geometry3x3(150, 16, 16, 20, 1, 1, 1, 1);  // F(4x4): 16 tiles per image, 4 panels
    wc.batch = 4;
    wc.tile = 4;
    check(wc, rng, true, 4);
  }
  {
    WinoCase wc;
    wc.g = geometry3x3(330, 16, 16, 13, 1, 1, 1, 1);  // F(2x2): 64 tiles per image, 8 panels
    wc.batch = 2;
    wc.tile = 2;
    wc.w_format = {6, 4, true};  // 4S within int32 over 9 * 330 products
    check(wc, rng, true, 2);
  }
}

TEST(IntWinograd, ExtremeCodesHitTheBoundExactly) {
  Rng rng(kSeed + 2);
  // uint8 activations (max 255) x int16 weights of 12 bits (|w| <= 2048, |U| <= 18432): 4S fits
  // int32 for up to 1028 products per output, i.e. C = 114 channels (4 * 255 * 2048 * 1026 =
  // 2143092480 < 2^31), but not C = 115 (2161029120). M itself comes close to wrapping.
  for (Fill fill : {Fill::kExtremes, Fill::kMax, Fill::kMin}) {
    for (int64_t c : {114, 115}) {
      WinoCase wc;
      wc.g = geometry3x3(c, 9, 10, 7, 1, 0, 1, 2);
      wc.batch = 1;
      wc.a_dtype = DType::kUInt8;
      wc.a_format = {8, 3, false};
      wc.w_dtype = DType::kInt16;
      wc.w_format = {12, 6, true};
      wc.fill = fill;
      wc.bias = fill != Fill::kMin;
      check(wc, rng, c == 114);
    }
  }
  // int8 x int8 at the most negative codes: -128 * -128 products everywhere (vpmaddwd's pair
  // sums and the transforms at their extremes).
  WinoCase wc;
  wc.g = geometry3x3(33, 12, 11, 9, 1, 1, 1, 1);
  wc.fill = Fill::kMin;
  check(wc, rng, true);
}

TEST(IntWinograd, FallsBackWhenNotExactOrNotApplicable) {
  Rng rng(kSeed + 3);
  WinoCase wc;
  wc.g = geometry3x3(8, 12, 12, 8, 1, 1, 1, 1);
  // 16-bit weights: U = (2G) g (2G)^T may leave int16 (weights near +-2^15).
  wc.w_dtype = DType::kInt16;
  wc.w_format = {16, 8, true};
  wc.fill = Fill::kExtremes;
  check(wc, rng, false);
  // 14-bit activations: 4 max|x| = 32768 does not fit int16.
  wc = WinoCase{};
  wc.g = geometry3x3(8, 12, 12, 8, 1, 1, 1, 1);
  wc.a_dtype = DType::kInt16;
  wc.a_format = {14, 6, true};
  check(wc, rng, false);
  // 13-bit activations: fits (4 * 4096 = 16384), with 8-bit weights 4S fits int32.
  wc.a_format = {13, 6, true};
  wc.fill = Fill::kExtremes;
  check(wc, rng, true);
  // Stride 2, dilation 2, groups 2, 5x5: the direct paths.
  wc = WinoCase{};
  wc.g = geometry3x3(8, 13, 12, 8, 1, 1, 1, 1);
  wc.g.stride_h = wc.g.stride_w = 2;
  check(wc, rng, false);
  wc.g = geometry3x3(8, 13, 12, 8, 2, 2, 2, 2);
  wc.g.dilation_h = 2;
  check(wc, rng, false);
  wc.g = geometry3x3(8, 13, 12, 8, 1, 1, 1, 1);
  wc.g.groups = 2;
  check(wc, rng, false);
  // kAuto: tiny maps (a CNN at 32x32's last stages) at small batches and few input channels keep
  // the direct path, which is cheaper there; kAlways takes Winograd, exactly; kOff never.
  wc.g = geometry3x3(64, 2, 2, 16, 1, 1, 1, 1);
  wc.use = Conv2dWeights::Winograd::kAuto;
  check(wc, rng, false);
  // A 2x2 map (one tile per image; 16 lanes of Winograd's 16 positions against 9 taps of the
  // direct path's panels of 4 pixels per image) pays from 9 images on.
  wc.batch = 9;
  check(wc, rng, true);
  wc.batch = 8;
  check(wc, rng, false);
  wc.g = geometry3x3(64, 1, 1, 16, 1, 1, 1, 1);  // 1x1: never
  wc.batch = 64;
  check(wc, rng, false);
  wc.batch = 2;
  wc.g = geometry3x3(64, 2, 2, 16, 1, 1, 1, 1);
  wc.use = Conv2dWeights::Winograd::kAlways;
  check(wc, rng, true);
  wc.g = geometry3x3(16, 20, 20, 16, 1, 1, 1, 1);
  wc.use = Conv2dWeights::Winograd::kAuto;
  check(wc, rng, false);
  wc.g.in_channels = 32;
  check(wc, rng, true);
  wc.use = Conv2dWeights::Winograd::kOff;
  check(wc, rng, false);
  wc.use = Conv2dWeights::Winograd::kAlways;
  // A fused max pool keeps the direct pixel-major path (the packed conv still has Winograd).
  wc.g = geometry3x3(6, 12, 14, 10, 1, 1, 1, 1);
  wc.pool = ConvPool::kMax2x2;
  check(wc, rng, true);
}

// F(4x4)'s selection at each of its edges (pack time, winograd.h), exact on both sides:
//  - |S| <= 2^25 - 1 from max|x| * max_o sum |W|: at the bound the sums reach it exactly (every
//    code at its extreme), one channel more takes F(2x2);
//  - V = B^T d B fits int16: 100 max|x| <= 32767 (9-bit int16 codes yes, 10-bit no);
//  - U' = G' g G'^T fits int16, on the actual weights (49 * 511 yes, 49 * 1023 no);
//  - tile 0: the map and the batch decide (the multiplies with the panels' padding); tile 2 never
//    takes F(4x4).
TEST(IntWinograd, F4TakenExactlyWhereExact) {
  Rng rng(kSeed + 13);
  // uint8 x int8 at their maxima: 255 * 127 * 9 * 115 = 33518475 <= 2^25 - 1 < ... * 116.
  for (int64_t c : {115, 116}) {
    WinoCase wc;
    wc.g = geometry3x3(c, 9, 10, 7, 1, 0, 1, 2);
    wc.batch = 1;
    wc.tile = 4;
    wc.a_dtype = DType::kUInt8;
    wc.a_format = {8, 3, false};
    wc.fill = Fill::kMax;
    check(wc, rng, true, c == 115 ? 4 : 2);
  }
  // int8 x int8 at -128: 128 * 128 * 9 * 227 = 33472512 <= 2^25 - 1 < ... * 228.
  for (int64_t c : {227, 228}) {
    WinoCase wc;
    wc.g = geometry3x3(c, 8, 9, 5, 1, 1, 1, 1);
    wc.batch = 1;
    wc.tile = 4;
    wc.fill = Fill::kMin;
    wc.bias = false;
    check(wc, rng, true, c == 227 ? 4 : 2);
  }
  // int16 activations: 9 bits (max|x| 256) F(4x4), 10 bits (512) F(2x2).
  for (int bits : {9, 10}) {
    WinoCase wc;
    wc.g = geometry3x3(13, 11, 12, 9, 1, 1, 1, 1);
    wc.tile = 4;
    wc.a_dtype = DType::kInt16;
    wc.a_format = {bits, 4, true};
    wc.fill = Fill::kExtremes;
    check(wc, rng, true, bits == 9 ? 4 : 2);
  }
  // int16 weights at their maximum: 10 bits (511: |U'| <= 25039) F(4x4), 11 bits (1023:
  // U'[3][3] = 49 * 1023) F(2x2).
  for (int bits : {10, 11}) {
    WinoCase wc;
    wc.g = geometry3x3(8, 11, 12, 9, 1, 1, 1, 1);
    wc.tile = 4;
    wc.w_dtype = DType::kInt16;
    wc.w_format = {bits, 6, true};
    wc.fill = Fill::kMax;
    check(wc, rng, true, bits == 10 ? 4 : 2);
  }
  // The map and the batch (tile 0, kAlways so that small channel counts take Winograd at all;
  // Conv2dWeights::winograd_batch = the batch): {outputs, batch, F(4x4)?}.
  const struct {
    int64_t o, batch;
    bool f4;
  } maps[] = {{11, 1, true}, {14, 1, true},  {10, 1, false}, {7, 1, false}, {7, 3, true},
              {4, 16, true}, {2, 16, false}, {9, 16, false}, {7, 16, true}};
  for (const auto& m : maps) {
    WinoCase wc;
    wc.g = geometry3x3(10, m.o, m.o, 6, 1, 1, 1, 1);
    wc.batch = m.batch;
    check(wc, rng, true, m.f4 ? 4 : 2);
    wc.tile = 2;
    check(wc, rng, true, 2);
  }
}

}  // namespace
}  // namespace qsearch::kernels::fixed
