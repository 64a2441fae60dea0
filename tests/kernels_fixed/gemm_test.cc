// Fast integer GEMM (kernels/fixed/gemm.h) == ref::gemm exactly, for every ISA path this CPU has,
// every dtype combination, odd shapes, the accumulator edge, and every output kind.
#include "kernels/fixed/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/ref/gemm_ref.h"
#include "kernels_fixed/tester.h"

namespace qsearch::kernels::fixed {
namespace {

using testing::equal_exactly;
using testing::Fill;
using testing::make_codes;
using testing::random_format;

constexpr uint64_t kSeed = 4242;
const DType kADtypes[] = {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32};
const DType kBDtypes[] = {DType::kInt8, DType::kInt16, DType::kInt32};
const Rounding kRoundings[] = {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero,
                               Rounding::kFloor};

struct Case {
  DType a_dtype = DType::kInt8, b_dtype = DType::kInt8;
  FixedFormat a_format, b_format, bias_format;
  bool bias = true;
  DType bias_dtype = DType::kInt32;
  int64_t m = 1, k = 1, n = 1;
  bool b_transposed = false;  // weights stored [N, K] like Linear
  Fill a_fill = Fill::kRandom, b_fill = Fill::kRandom, bias_fill = Fill::kRandom;
  int64_t lda_extra = 0;
};

struct Operands {
  Tensor a, b, bias;
  GemmWeights spec;
  int64_t lda = 0;
};

Operands make_operands(const Case& c, Rng& rng) {
  Operands o;
  o.lda = c.k + c.lda_extra;
  o.a = make_codes(c.a_dtype, c.m * o.lda, c.a_format, rng, c.a_fill);
  o.b = make_codes(c.b_dtype, c.k * c.n, c.b_format, rng, c.b_fill);
  GemmWeights& s = o.spec;
  s.b = o.b.raw();
  s.b_dtype = c.b_dtype;
  s.k = c.k;
  s.n = c.n;
  s.stride_k = c.b_transposed ? 1 : c.n;
  s.stride_n = c.b_transposed ? c.k : 1;
  s.b_format = c.b_format;
  s.a_format = c.a_format;
  s.a_dtype = c.a_dtype;
  if (c.bias) {
    o.bias = make_codes(c.bias_dtype, c.n, c.bias_format, rng, c.bias_fill);
    s.bias = o.bias.raw();
    s.bias_dtype = c.bias_dtype;
    s.bias_format = c.bias_format;
  }
  return o;
}

// Runs ref once and the fast kernel with each packing, expecting identical outputs.
void expect_same(const Operands& o, const std::vector<PackedWeights>& packed, int64_t m,
                 const GemmParams& p) {
  const DType t = gemm_output_dtype(p);
  const int64_t ldc_m = p.ldc_m == 0 ? o.spec.n : p.ldc_m;
  const int64_t size = (m - 1) * ldc_m + (o.spec.n - 1) * p.ldc_n + 1;
  Tensor ref_out({size}, t);
  ref::gemm(o.a.raw(), m, o.lda, o.spec, p, ref_out.raw());
  for (const PackedWeights& pw : packed) {
    Tensor fast_out({size}, t);
    gemm(o.a.raw(), m, o.lda, pw, p, fast_out.raw());
    ASSERT_TRUE(equal_exactly(ref_out.raw(), fast_out.raw(), t, size,
                              testing::describe(o.spec, p, pw.isa(), m)));
  }
}

void expect_same(const Operands& o, const PackedWeights& pw, int64_t m, const GemmParams& p) {
  expect_same(o, std::vector<PackedWeights>{pw}, m, p);
}

// Every output kind the bound allows, for each ISA: raw accumulators, requantization (a right
// shift, a left shift and the same binary point), float.
void check_all_outputs(const Operands& o, const std::vector<Isa>& isas, int64_t m, Rng& rng,
                       bool every_shift = true) {
  std::vector<PackedWeights> packed;
  for (Isa isa : isas) packed.push_back(pack_weights(o.spec, isa));
  const AccumulatorBound bound = accumulator_bound(packed[0]);
  ASSERT_NE(bound.need, AccNeed::kOverflowsInt64) << "test case must be runnable";
  std::vector<AccType> accs = {AccType::kInt64};
  if (bound.need == AccNeed::kInt32) accs.push_back(AccType::kInt32);
  for (AccType acc : accs) {
    GemmParams p;
    p.acc = acc;
    p.output = GemmOutput::kAccumulator;
    expect_same(o, packed, m, p);
    p.output = GemmOutput::kFloat;
    expect_same(o, packed, m, p);
    p.output = GemmOutput::kRequantize;
    for (int shift : {1 + static_cast<int>(rng.uniform_int(20)), 0, -3}) {
      if (!every_shift && shift <= 0) continue;
      p.out_format.width = 1 + static_cast<int>(rng.uniform_int(32));
      p.out_format.is_signed = rng.uniform_int(3) != 0;
      p.out_format.frac =
          std::clamp(packed[0].acc_frac() - shift, quant::kMinFrac, quant::kMaxFrac);
      p.rounding = kRoundings[rng.uniform_int(3)];
      expect_same(o, packed, m, p);
      p.relu = true;  // a ReLU fused into the store: max(requantize(acc), 0)
      expect_same(o, packed, m, p);
      // A Clip fused into the store: random bounds inside the code range (with and without the
      // ReLU; a bound may equal the other, or the range's end).
      const int64_t span = p.out_format.max_code() - p.out_format.min_code();
      const int64_t a = p.out_format.min_code() + static_cast<int64_t>(rng.uniform_int(span + 1));
      const int64_t b = p.out_format.min_code() + static_cast<int64_t>(rng.uniform_int(span + 1));
      p.clamp_lo = std::min(a, b);
      p.clamp_hi = std::max(a, b);
      expect_same(o, packed, m, p);
      p.relu = false;
      expect_same(o, packed, m, p);
      p.clamp_lo = INT64_MIN;
      p.clamp_hi = INT64_MAX;
    }
  }
}

GemmParams raw_params(AccType acc) {
  GemmParams p;
  p.acc = acc;
  return p;
}

int64_t pick(Rng& rng, std::initializer_list<int64_t> values) {
  return *(values.begin() + rng.uniform_int(values.size()));
}

TEST(IntGemm, EveryIsaEveryDtypeOddShapes) {
  Rng rng(kSeed);
  for (Isa isa : supported_isas()) {
    for (DType at : kADtypes) {
      for (DType bt : kBDtypes) {
        for (int rep = 0; rep < 5; ++rep) {
          Case c;
          c.a_dtype = at;
          c.b_dtype = bt;
          c.a_format = random_format(at, rng, /*allow_unsigned=*/true);
          c.b_format = random_format(bt, rng, /*allow_unsigned=*/false);
          c.bias = rep != 0;
          c.bias_dtype = DType::kInt32;
          c.bias_format = random_format(DType::kInt32, rng, false);
          // Finer or coarser than the products: both alignments of the bias occur.
          c.bias_format.frac =
              c.a_format.frac + c.b_format.frac + static_cast<int>(rng.uniform_int(10)) - 6;
          c.m = pick(rng, {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65});
          c.k = pick(rng, {1, 2, 3, 4, 5, 7, 8, 13, 31, 32, 33, 97, 128, 255});
          c.n = pick(rng, {1, 2, 10, 15, 16, 17, 31, 32, 33, 47, 64});
          c.b_transposed = rng.uniform_int(2) == 0;
          c.lda_extra = static_cast<int64_t>(rng.uniform_int(3));
          SCOPED_TRACE(::testing::Message() << "seed " << kSeed << " rep " << rep);
          const Operands o = make_operands(c, rng);
          check_all_outputs(o, {isa}, c.m, rng);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

// Mostly-zero int8 activations (MNIST pixels, ReLU outputs) take the sparse-row path on VNNI
// (gemm.cc, GemmJob::run_sparse): rows with 0-100% zero quads, k not a multiple of 4, weights
// bit-packed at every width up to 8 bits, every output kind; equal to ref::gemm exactly. Dense
// blocks in the same call take the tiles, so both paths meet in one output.
TEST(IntGemm, SparseActivationsEqualReference) {
  Rng rng(kSeed + 7);
  for (int rep = 0; rep < 60; ++rep) {
    Case c;
    c.a_dtype = DType::kInt8;
    c.b_dtype = DType::kInt8;
    c.a_format = random_format(DType::kInt8, rng, /*allow_unsigned=*/false);
    c.b_format = random_format(DType::kInt8, rng, /*allow_unsigned=*/false);
    c.b_format.width = 2 + static_cast<int>(rng.uniform_int(7));  // 2..8 bits: bit-packed below 8
    c.bias = rep % 3 != 0;
    c.bias_format = random_format(DType::kInt32, rng, false);
    c.bias_format.frac = c.a_format.frac + c.b_format.frac - 2;
    c.m = pick(rng, {1, 7, 8, 9, 63, 64, 65, 130});
    c.k = pick(rng, {1, 3, 4, 5, 31, 33, 97, 255, 784});
    c.n = pick(rng, {1, 10, 16, 17, 64, 100, 256, 300});
    c.b_transposed = rng.uniform_int(2) == 0;
    c.lda_extra = static_cast<int64_t>(rng.uniform_int(3));
    Operands o = make_operands(c, rng);
    o.spec.bit_pack = true;
    // Zero each 4-aligned quad of a row with that row's probability (0, 50, 75, 95 or 100%).
    int8_t* a = o.a.data<int8_t>();
    for (int64_t r = 0; r < c.m; ++r) {
      const uint64_t pct =
          *(std::initializer_list<uint64_t>{0, 50, 75, 95, 100}.begin() + rng.uniform_int(5));
      for (int64_t q = 0; q < c.k; q += 4) {
        if (rng.uniform_int(100) >= pct) continue;
        for (int64_t i = q; i < std::min(q + 4, c.k); ++i) a[r * o.lda + i] = 0;
      }
    }
    SCOPED_TRACE(::testing::Message() << "seed " << kSeed + 7 << " rep " << rep);
    check_all_outputs(o, supported_isas(), c.m, rng);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(IntGemm, AllZeroGivesTheBias) {
  Rng rng(kSeed + 1);
  for (Isa isa : supported_isas()) {
    Case c;
    c.a_format = {8, 3, true};
    c.b_format = {8, 5, true};
    c.bias_format = {16, 10, true};  // finer than fa + fb = 8: the products shift left by 2
    c.m = 9;
    c.k = 37;
    c.n = 33;
    c.a_fill = c.b_fill = Fill::kZero;
    const Operands o = make_operands(c, rng);
    check_all_outputs(o, {isa}, c.m, rng);
    const PackedWeights pw = pack_weights(o.spec, isa);
    EXPECT_EQ(pw.acc_frac(), 10);
    EXPECT_EQ(pw.acc_shift(), 2);
    std::vector<int64_t> out(c.m * c.n);
    gemm(o.a.raw(), c.m, o.lda, pw, raw_params(AccType::kInt64), out.data());
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        ASSERT_EQ(out[i * c.n + j], quant::load_code(o.bias.raw(), o.bias.dtype(), j));
      }
    }
  }
}

// The largest K whose worst case fits int32 when every code sits at its extreme, and K + 1.
int64_t largest_int32_k(const FixedFormat& a, const FixedFormat& b) {
  const int64_t per_k = a.max_abs_code() * b.max_abs_code();
  return std::numeric_limits<int32_t>::max() / per_k;
}

TEST(IntGemm, AccumulatorEdgeAllCodesAtTheirExtremes) {
  struct Edge {
    DType at, bt;
    FixedFormat af, bf;
  };
  const Edge edges[] = {
      {DType::kInt8, DType::kInt8, {8, 4, true}, {8, 4, true}},      // K = 131071
      {DType::kUInt8, DType::kInt8, {8, 4, false}, {8, 4, true}},    // K = 65793
      {DType::kInt16, DType::kInt8, {16, 8, true}, {8, 4, true}},    // K = 511
      {DType::kInt8, DType::kInt16, {8, 4, true}, {16, 8, true}},    // K = 511
      {DType::kInt16, DType::kInt16, {16, 8, true}, {16, 8, true}},  // K = 1
      {DType::kInt32, DType::kInt8, {20, 8, true}, {8, 4, true}},    // K = 31
      {DType::kInt32, DType::kInt16, {32, 8, true}, {2, 0, true}},   // K = 1 needs int64
      {DType::kInt32, DType::kInt32, {32, 0, true}, {32, 0, true}},  // K = 1: 2^62
  };
  Rng rng(kSeed + 2);
  {
    for (const Edge& e : edges) {
      const int64_t k_edge = largest_int32_k(e.af, e.bf);
      for (int64_t k : {k_edge, k_edge + 1}) {
        if (k == 0) continue;
        // A at its most negative code, B at both extremes (min * min is the largest product).
        for (Fill bfill : {Fill::kMin, Fill::kMax}) {
          Case c;
          c.a_dtype = e.at;
          c.b_dtype = e.bt;
          c.a_format = e.af;
          c.b_format = e.bf;
          c.bias = false;
          c.m = 2;
          c.k = k;
          c.n = 17;
          c.a_fill = Fill::kMin;
          c.b_fill = bfill;
          const Operands o = make_operands(c, rng);
          const PackedWeights pw = pack_weights(o.spec);
          const AccumulatorBound bound = accumulator_bound(pw);
          const int64_t b_abs = bfill == Fill::kMin ? e.bf.max_abs_code() : e.bf.max_code();
          const int64_t worst = k * e.af.max_abs_code() * b_abs;
          EXPECT_EQ(bound.max_abs, static_cast<double>(worst));
          EXPECT_EQ(bound.need, worst <= INT32_MAX ? AccNeed::kInt32 : AccNeed::kInt64)
              << " K=" << k;
          if (bfill == Fill::kMin) {
            EXPECT_EQ(bound.need, k == k_edge ? AccNeed::kInt32 : AccNeed::kInt64);
          }
          SCOPED_TRACE(::testing::Message() << "edge K=" << k);
          check_all_outputs(o, supported_isas(), c.m, rng, /*every_shift=*/false);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(IntGemm, Int16PairAtMinusTwoToThe15SquaredTwiceInInt64) {
  // vpmaddwd returns (-32768)^2 * 2 = 2^31 as INT32_MIN; the int64 path must still be exact.
  Rng rng(kSeed + 3);
  for (Isa isa : supported_isas()) {
    Case c;
    c.a_dtype = c.b_dtype = DType::kInt16;
    c.a_format = c.b_format = {16, 0, true};
    c.bias = false;
    c.m = 5;
    c.k = 6;
    c.n = 16;
    c.a_fill = c.b_fill = Fill::kMin;
    const Operands o = make_operands(c, rng);
    const PackedWeights pw = pack_weights(o.spec, isa);
    std::vector<int64_t> out(c.m * c.n);
    gemm(o.a.raw(), c.m, o.lda, pw, raw_params(AccType::kInt64), out.data());
    for (int64_t v : out) ASSERT_EQ(v, int64_t{6} << 30) << isa_name(isa);
    // And the most negative pair sums, (-32768) * 32767 * 2, next to them.
    c.b_fill = Fill::kExtremes;
    const Operands mixed = make_operands(c, rng);
    check_all_outputs(mixed, {isa}, c.m, rng);
  }
}

TEST(IntGemm, LargeKCrossesInt32Blocks) {
  // int64 accumulators built from int32 blocks: K beyond one block for each blocked path.
  Rng rng(kSeed + 4);
  struct Big {
    DType at, bt;
    int64_t k;
  };
  const Big bigs[] = {{DType::kInt16, DType::kInt8, 1500},
                      {DType::kUInt8, DType::kInt16, 1001},
                      {DType::kInt8, DType::kInt8, 70001}};
  {
    for (const Big& b : bigs) {
      Case c;
      c.a_dtype = b.at;
      c.b_dtype = b.bt;
      c.a_format = b.at == DType::kUInt8  ? FixedFormat{8, 2, false}
                   : b.at == DType::kInt8 ? FixedFormat{8, 2, true}
                                          : FixedFormat{16, 2, true};
      c.b_format = b.bt == DType::kInt8 ? FixedFormat{8, 3, true} : FixedFormat{16, 3, true};
      c.bias_format = {32, 5, true};
      c.m = 3;
      c.k = b.k;
      c.n = 18;
      c.a_fill = Fill::kExtremes;
      c.b_fill = Fill::kExtremes;
      const Operands o = make_operands(c, rng);
      const PackedWeights pw = pack_weights(o.spec);
      EXPECT_NE(accumulator_bound(pw).need, AccNeed::kInt32);
      SCOPED_TRACE(::testing::Message() << "K=" << b.k);
      check_all_outputs(o, supported_isas(), c.m, rng, /*every_shift=*/false);
    }
  }
}

TEST(IntGemm, SameResultForAnyThreadCount) {
  Rng rng(kSeed + 5);
  Case c;
  c.a_format = {8, 4, true};
  c.b_format = {8, 4, true};
  c.bias_format = {8, 4, true};
  c.m = 301;
  c.k = 100;
  c.n = 70;
  const Operands o = make_operands(c, rng);
  const PackedWeights pw = pack_weights(o.spec);
  const GemmParams p = raw_params(AccType::kInt32);
  const int saved = num_threads();
  std::vector<int32_t> one(c.m * c.n), many(c.m * c.n);
  set_num_threads(1);
  gemm(o.a.raw(), c.m, o.lda, pw, p, one.data());
  set_num_threads(4);
  gemm(o.a.raw(), c.m, o.lda, pw, p, many.data());
  set_num_threads(saved);
  EXPECT_EQ(one, many);
  expect_same(o, pw, c.m, p);
}

TEST(IntGemm, StridedOutputAsConvUsesIt) {
  Rng rng(kSeed + 6);
  Case c;
  c.a_format = {8, 4, true};
  c.b_format = {8, 4, true};
  c.m = 13;
  c.k = 20;
  c.n = 19;
  const Operands o = make_operands(c, rng);
  for (Isa isa : supported_isas()) {
    const PackedWeights pw = pack_weights(o.spec, isa);
    // Column-major C (ldc_m = 1, ldc_n = M), as conv2d writes NCHW.
    expect_same(o, pw, c.m,
                GemmParams{.acc = AccType::kInt32,
                           .output = GemmOutput::kRequantize,
                           .out_format = {8, 6, false},
                           .ldc_m = 1,
                           .ldc_n = c.m});
  }
}

// The register-blocked int32 tiles (gemm_tiles.h, TileKernel::rows_fn: AVX2 6 rows x 1 panel,
// AVX-512BW pairs and VNNI quads 8 rows x 3 panels): every row count of a block's last tile
// (1..8, and blocks of 6-row tiles), 1-3 panels in a step (panel counts not a multiple of 3, panel
// chunks split over 1-3 threads), k tails of pairs and quads, int8 and int16 weights, element
// and bit-packed panels, random and extreme codes (the VNNI +128 correction at -128 and 127),
// each at an int32 accumulator (the bound checked), against ref::gemm exactly.
TEST(IntGemm, RegisterBlockedTilesEveryRowPanelAndKTail) {
  Rng rng(kSeed + 10);
  struct Types {
    DType at, bt;
    FixedFormat af, bf;
  };
  const Types types[] = {
      {DType::kInt8, DType::kInt8, {8, 3, true}, {8, 5, true}},
      {DType::kUInt8, DType::kInt8, {8, 3, false}, {8, 5, true}},
      {DType::kInt16, DType::kInt8, {16, 6, true}, {8, 5, true}},
      {DType::kInt8, DType::kInt16, {8, 3, true}, {14, 9, true}},
      {DType::kInt16, DType::kInt16, {12, 6, true}, {12, 9, true}},
  };
  const int saved = num_threads();
  for (Isa isa : supported_isas()) {
    for (const Types& t : types) {
      for (int rep = 0; rep < 14; ++rep) {
        Case c;
        c.a_dtype = t.at;
        c.b_dtype = t.bt;
        c.a_format = t.af;
        c.b_format = t.bf;
        c.bias = rep % 4 != 3;
        c.bias_format = {20, t.af.frac + t.bf.frac - 1, true};
        // Rows: 1..8 and around two 6- and 8-row tiles, around a 64-row block.
        c.m = rep < 9 ? rep + 1 : pick(rng, {11, 12, 13, 16, 17, 64, 65, 67, 131});
        c.k = pick(rng, {1, 2, 3, 4, 5, 6, 7, 9, 33, 130});
        c.n = pick(rng, {1, 15, 16, 17, 32, 33, 48, 49, 80, 97});
        c.b_transposed = rng.uniform_int(2) == 0;
        c.lda_extra = static_cast<int64_t>(rng.uniform_int(3));
        const Fill fills[] = {Fill::kRandom, Fill::kExtremes, Fill::kMin, Fill::kMax};
        c.a_fill = fills[rng.uniform_int(4)];
        c.b_fill = fills[rng.uniform_int(4)];
        Operands o = make_operands(c, rng);
        o.spec.bit_pack = rep % 3 == 1;
        const PackedWeights pw = pack_weights(o.spec, isa);
        ASSERT_EQ(accumulator_bound(pw).need, AccNeed::kInt32);
        SCOPED_TRACE(::testing::Message() << "seed " << kSeed + 10 << " rep " << rep << " m " << c.m
                                          << " k " << c.k << " n " << c.n);
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          expect_same(o, pw, c.m, raw_params(AccType::kInt32));
          GemmParams p;
          p.acc = AccType::kInt32;
          p.output = GemmOutput::kRequantize;
          p.out_format = {8, pw.acc_frac() - 4, false};
          p.relu = true;
          expect_same(o, pw, c.m, p);
          if (::testing::Test::HasFatalFailure()) break;
        }
        set_num_threads(saved);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST(AccumulatorBound, ReportsInt64OverflowAndCountsTheBiasShift) {
  Rng rng(kSeed + 7);
  Case c;
  c.a_dtype = c.b_dtype = DType::kInt32;
  c.a_format = c.b_format = {32, 0, true};
  c.bias = false;
  c.m = 1;
  c.k = 3;
  c.n = 2;
  c.a_fill = c.b_fill = Fill::kMin;
  {
    const Operands o = make_operands(c, rng);
    const AccumulatorBound b = accumulator_bound(pack_weights(o.spec));
    EXPECT_EQ(b.need, AccNeed::kOverflowsInt64);  // 3 * 2^62 > 2^63 - 1
  }
  c.k = 1;
  {
    const Operands o = make_operands(c, rng);
    EXPECT_EQ(accumulator_bound(pack_weights(o.spec)).need, AccNeed::kInt64);  // 2^62
  }
  // A bias 40 bits finer than the products shifts the product sum left by 40.
  c.a_dtype = c.b_dtype = DType::kInt8;
  c.a_format = c.b_format = {8, 0, true};
  c.bias = true;
  c.bias_format = {8, 40, true};
  c.bias_fill = Fill::kZero;
  c.k = 4;
  const Operands o = make_operands(c, rng);
  const PackedWeights pw = pack_weights(o.spec);
  EXPECT_EQ(pw.acc_shift(), 40);
  const AccumulatorBound b = accumulator_bound(pw);
  EXPECT_EQ(b.need, AccNeed::kInt64);
  EXPECT_EQ(b.max_abs, std::ldexp(4.0 * 128 * 128, 40));
}

TEST(PackWeights, RejectsBadSpecsWithTheReason) {
  Rng rng(kSeed + 8);
  Case c;
  c.a_format = {8, 4, true};
  c.b_format = {8, 4, true};
  c.m = 1;
  c.k = 2;
  c.n = 2;
  Operands o = make_operands(c, rng);
  GemmWeights bad = o.spec;
  bad.b_format = {4, 2, true};  // int8 codes of s8.4 are outside s4.2
  quant::store_code(o.b.raw(), o.b.dtype(), 1, 100);
  try {
    pack_weights(bad);
    FAIL() << "out-of-format weights accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside format s4.2"), std::string::npos) << e.what();
  }
  bad = o.spec;
  bad.a_dtype = DType::kInt64;
  EXPECT_THROW(pack_weights(bad), Error);
  bad = o.spec;
  bad.a_format = {9, 4, true};  // int8 cannot hold s9
  EXPECT_THROW(pack_weights(bad), Error);
  bad = o.spec;
  bad.b_dtype = DType::kUInt8;
  EXPECT_THROW(pack_weights(bad), Error);
  bad = o.spec;
  bad.b_format.width = 40;
  EXPECT_THROW(pack_weights(bad), Error);
}

TEST(PackWeights, ForcedIsaIsRecordedAndBytesAreMeasured) {
  Rng rng(kSeed + 9);
  Case c;
  c.a_format = {8, 4, true};
  c.b_format = {8, 4, true};
  c.k = 784;
  c.n = 256;
  const Operands o = make_operands(c, rng);
  for (Isa isa : supported_isas()) {
    const PackedWeights pw = pack_weights(o.spec, isa);
    EXPECT_EQ(pw.isa(), isa);
    EXPECT_EQ(pw.packed_bytes(), static_cast<size_t>(784 * 256));  // int8, no padding here
  }
  {
    ScopedMaxIsa cap(Isa::kScalar);
    EXPECT_EQ(pack_weights(o.spec, max_isa()).isa(), Isa::kScalar);
  }
}

}  // namespace
}  // namespace qsearch::kernels::fixed
