// Fast packed GEMM (kernels/gemm.h) against the reference (kernels/ref/gemm.h) on odd shapes,
// for every ISA this CPU runs, with the bound of docs/numerics.md "Float kernels".
#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/float_test_util.h"
#include "kernels/ref/gemm.h"
#include "kernels/ukernel.h"

namespace qsearch::kernels {
namespace {

using testing::dot_bound;
using testing::random_floats;

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out = {Isa::kAvx2};
  if (isa_supported(Isa::kAvx512)) out.push_back(Isa::kAvx512);
  return out;
}

struct Case {
  int64_t m, n, k;
  bool trans_b, bias, residual, relu;
  float alpha;
  bool residual_after_clamp = false;
};

// Runs one case and checks every element against the reference plus the epilogue.
void check_case(Isa isa, const Case& c, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << isa_name(isa) << " m=" << c.m << " n=" << c.n << " k=" << c.k
               << " trans_b=" << c.trans_b << " bias=" << c.bias << " residual=" << c.residual
               << " relu=" << c.relu << " alpha=" << c.alpha);
  const int64_t lda = c.k + 3;  // a row stride larger than K
  auto a = random_floats(c.m * lda, seed);
  auto b = random_floats(c.k * c.n, seed + 1);
  auto bias = random_floats(c.n, seed + 2);
  auto res = random_floats(c.m * c.n, seed + 3);
  // Reference: dense A, then the epilogue in double.
  std::vector<float> a_dense(c.m * c.k);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t kk = 0; kk < c.k; ++kk) a_dense[i * c.k + kk] = a[i * lda + kk];
  }
  std::vector<float> ref(c.m * c.n);
  GemmParams p{.m = c.m, .n = c.n, .k = c.k, .trans_b = c.trans_b};
  ref::gemm_f32(p, a_dense.data(), b.data(), nullptr, ref.data());

  PackedB pb = pack_b(b.data(), c.k, c.n, c.trans_b, isa);
  const int64_t ldy = c.n + 5;
  std::vector<float> y(c.m * ldy, -7.0f);
  Epilogue ep;
  ep.alpha = c.alpha;
  if (c.bias) ep.bias = bias.data();
  if (c.residual) {
    ep.residual = res.data();
    ep.residual_stride = c.n;
    ep.residual_after_clamp = c.residual_after_clamp;
  }
  if (c.relu) ep.clamp_min = 0.0f;
  gemm_f32_packed(c.m, a.data(), lda, pb, y.data(), ldy, ep);

  int failures = 0;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      double mag = 0.0;
      for (int64_t kk = 0; kk < c.k; ++kk) {
        const float bv = c.trans_b ? b[j * c.k + kk] : b[kk * c.n + j];
        mag += std::fabs(static_cast<double>(a_dense[i * c.k + kk]) * bv);
      }
      double want = static_cast<double>(c.alpha) * ref[i * c.n + j];
      mag *= std::fabs(c.alpha);
      if (c.bias) {
        want += bias[j];
        mag += std::fabs(bias[j]);
      }
      const double r = c.residual ? res[i * c.n + j] : 0.0;
      mag += std::fabs(r);
      if (!c.residual_after_clamp) want += r;
      if (c.relu) want = std::max(want, 0.0);
      if (c.residual_after_clamp) want += r;
      const double got = y[i * ldy + j];
      // +|alpha| * |ref| * eps covers the reference's own rounding before scaling.
      const double bound = dot_bound(c.k, mag) + FLT_EPSILON * std::fabs(want);
      if (!(std::fabs(got - want) <= bound) && ++failures <= 5) {
        ADD_FAILURE() << "y[" << i << "," << j << "] = " << got << ", want " << want << " +- "
                      << bound;
      }
    }
    // Columns past N (the row stride padding) are untouched.
    for (int64_t j = c.n; j < ldy && i < c.m; ++j) {
      if (y[i * ldy + j] != -7.0f && ++failures <= 5) {
        ADD_FAILURE() << "wrote past column " << c.n << " in row " << i;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(FastGemm, OddShapesEveryIsa) {
  for (Isa isa : runnable_isas()) {
    const TileShape t = tile_shape(isa);
    const int64_t ms[] = {1, t.mr - 1, t.mr, t.mr + 1, 4 * t.mr + 1, 37};
    const int64_t ns[] = {1, t.nr - 1, t.nr, t.nr + 1, 4 * t.nr + 3, 67};
    // K blocks of detail::kKc: one short of, exactly and one past a block.
    const int64_t ks[] = {1, 7, 255, 784, detail::kKc - 1, detail::kKc, detail::kKc + 1};
    uint64_t seed = 1;
    for (int64_t m : ms) {
      for (int64_t n : ns) {
        for (int64_t k : ks) {
          check_case(isa, {m, n, k, (seed & 1) != 0, (seed & 2) != 0, false, false, 1.0f}, seed);
          ++seed;
        }
      }
    }
  }
}

TEST(FastGemm, LargeK) {
  for (Isa isa : runnable_isas()) {
    check_case(isa, {13, 29, 2000, true, true, false, false, 1.0f}, 99);
    check_case(isa, {5, 40, 4099, false, false, false, false, 1.0f}, 98);
  }
}

TEST(FastGemm, EpilogueVariants) {
  for (Isa isa : runnable_isas()) {
    const TileShape t = tile_shape(isa);
    for (int variant = 0; variant < 8; ++variant) {
      const bool bias = variant & 1, residual = variant & 2, relu = variant & 4;
      check_case(isa, {2 * t.mr + 3, 2 * t.nr + 5, 300, true, bias, residual, relu, 1.0f},
                 100 + variant);
      check_case(isa, {t.mr - 1, t.nr - 3, 20, false, bias, residual, relu, -0.75f}, 200 + variant);
    }
  }
}

TEST(FastGemm, KZeroGivesEpilogueOnly) {
  for (Isa isa : runnable_isas()) {
    std::vector<float> bias = {1, -2, 3};
    PackedB pb = pack_b(nullptr, 0, 3, true, isa);
    std::vector<float> y(6, 9.0f);
    Epilogue ep{.bias = bias.data(), .clamp_min = 0.0f};
    gemm_f32_packed(2, nullptr, 0, pb, y.data(), 3, ep);
    EXPECT_EQ(y, (std::vector<float>{1, 0, 3, 1, 0, 3}));
  }
}

TEST(FastGemm, ClampPropagatesNan) {
  for (Isa isa : runnable_isas()) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> a = {nan, 1.0f}, b = {1.0f, -1.0f};  // A [2,1], B [1,2]
    PackedB pb = pack_b(b.data(), 1, 2, false, isa);
    std::vector<float> y(4);
    Epilogue ep{.clamp_min = 0.0f, .clamp_max = 6.0f};
    gemm_f32_packed(2, a.data(), 1, pb, y.data(), 2, ep);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], 0.0f);
  }
}

TEST(FastGemm, SameBitsOnEveryIsa) {
  // docs/numerics.md "Float kernels": the ISAs differ in tile shape only; each element is the
  // same FMA chain, so AVX2 and AVX-512 results are identical.
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t m = 37, n = 45, k = 1100;
  auto a = random_floats(m * k, 11), b = random_floats(n * k, 12), bias = random_floats(n, 13);
  auto res = random_floats(m * n, 14);
  std::vector<float> y2(m * n), y5(m * n);
  const Epilogue ep{.alpha = 0.5f,
                    .bias = bias.data(),
                    .residual = res.data(),
                    .residual_stride = n,
                    .clamp_min = -0.1f};
  gemm_f32_packed(m, a.data(), k, pack_b(b.data(), k, n, true, Isa::kAvx2), y2.data(), n, ep);
  gemm_f32_packed(m, a.data(), k, pack_b(b.data(), k, n, true, Isa::kAvx512), y5.data(), n, ep);
  EXPECT_EQ(y2, y5);
}

TEST(FastGemm, SameBitsForOneAndTwoThreads) {
  const int saved = num_threads();
  for (Isa isa : runnable_isas()) {
    const int64_t m = 211, n = 149, k = 517;
    auto a = random_floats(m * k, 5), b = random_floats(k * n, 6), bias = random_floats(n, 7);
    PackedB pb = pack_b(b.data(), k, n, false, isa);
    Epilogue ep{.bias = bias.data(), .clamp_min = 0.0f};
    std::vector<float> y1(m * n), y2(m * n);
    set_num_threads(1);
    gemm_f32_packed(m, a.data(), k, pb, y1.data(), n, ep);
    set_num_threads(2);
    gemm_f32_packed(m, a.data(), k, pb, y2.data(), n, ep);
    EXPECT_EQ(y1, y2) << isa_name(isa);
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::kernels

namespace qsearch::kernels {
namespace {

// The few-rows path (m <= detail::kFewRows: A packed once, the threads split only the columns,
// K in blocks of detail::kFewRowsKc) against the row-blocked path: the same rows computed as the
// first rows of a taller A must give the same bits, with 1, 2 and 3 threads, on random shapes
// and epilogues (bias, residual before / after the clamp, relu, alpha); and both paths stay
// within the reference's bound.
TEST(FastGemm, FewRowsPathEqualsRowBlockedPathForAnyThreadCount) {
  const int saved = num_threads();
  Rng rng(2026);
  auto pick = [&rng](int64_t lo, int64_t hi) {  // uniform in [lo, hi]
    return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
  };
  for (Isa isa : runnable_isas()) {
    for (int trial = 0; trial < 24; ++trial) {
      const int64_t m = trial < 3 ? std::array<int64_t, 3>{1, 6, detail::kFewRows}[trial]
                                  : pick(1, detail::kFewRows);
      const int64_t k = trial % 4 == 0 ? detail::kFewRowsKc * pick(1, 9) : pick(1, 2600);
      const int64_t n = pick(1, 200);
      const int64_t tall = m + detail::kFewRows + 3;  // the row-blocked path
      SCOPED_TRACE(::testing::Message() << isa_name(isa) << " m=" << m << " k=" << k << " n=" << n);
      const uint64_t seed = 1000 + static_cast<uint64_t>(trial);
      auto a = random_floats(tall * k, seed);
      auto b = random_floats(k * n, seed + 1);
      auto bias = random_floats(n, seed + 2);
      auto res = random_floats(tall * n, seed + 3);
      PackedB pb = pack_b(b.data(), k, n, (trial & 1) != 0, isa);
      Epilogue ep;
      ep.alpha = (trial & 2) != 0 ? 0.75f : 1.0f;
      if ((trial & 4) != 0) ep.bias = bias.data();
      if ((trial & 8) != 0) {
        ep.residual = res.data();
        ep.residual_stride = n;
        ep.residual_after_clamp = (trial & 16) != 0;
      }
      if (trial % 3 != 0) ep.clamp_min = 0.0f;
      std::vector<float> want(tall * n);
      set_num_threads(2);
      gemm_f32_packed(tall, a.data(), k, pb, want.data(), n, ep);
      want.resize(m * n);
      for (int threads = 1; threads <= 3; ++threads) {
        set_num_threads(threads);
        std::vector<float> got(m * n, -7.0f);
        gemm_f32_packed(m, a.data(), k, pb, got.data(), n, ep);
        ASSERT_EQ(got, want) << threads << " threads";
      }
    }
    // The bound against the reference on either side of the switch.
    check_case(isa, {detail::kFewRows, 37, 600, true, true, true, true, 1.0f}, 71);
    check_case(isa, {detail::kFewRows + 1, 37, 600, false, true, true, true, 1.0f}, 72);
    check_case(isa, {200, 70, 1500, true, true, false, false, 0.5f}, 73);
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::kernels

namespace qsearch::kernels {
namespace {

// pack_b_in_place gives pack_b's panels, both layouts, in w's own buffer; it refuses (w
// untouched) when N is not a whole number of panels.
TEST(FastGemm, PackInPlaceEqualsPackAndReusesTheBuffer) {
  for (Isa isa : runnable_isas()) {
    const int64_t nr = tile_shape(isa).nr;
    const int64_t shapes[][2] = {{1, 1}, {7, 3}, {300, 2}, {784, 5}, {33, 16}, {1, 9}};
    uint64_t seed = 40;
    for (const auto& kp : shapes) {
      for (bool trans : {false, true}) {
        const int64_t k = kp[0], n = kp[1] * nr;
        SCOPED_TRACE(::testing::Message()
                     << isa_name(isa) << " k=" << k << " n=" << n << " trans=" << trans);
        const auto v = random_floats(k * n, ++seed);
        const PackedB want = pack_b(v.data(), k, n, trans, isa);
        Tensor w = Tensor::from(trans ? Shape{n, k} : Shape{k, n}, v);
        const void* buffer = w.raw();
        PackedB got;
        ASSERT_TRUE(pack_b_in_place(w, k, n, trans, isa, &got));
        EXPECT_EQ(got.data.raw(), buffer);
        EXPECT_EQ(got.nr, want.nr);
        EXPECT_EQ(got.k, k);
        EXPECT_EQ(got.n, n);
        ASSERT_EQ(got.data.numel(), want.data.numel());
        EXPECT_EQ(std::vector<float>(got.data.data<float>(), got.data.data<float>() + k * n),
                  std::vector<float>(want.data.data<float>(), want.data.data<float>() + k * n));
      }
    }
    const auto v = random_floats(12 * (nr + 1), 3);
    Tensor w = Tensor::from(Shape{nr + 1, 12}, v);
    PackedB out;
    EXPECT_FALSE(pack_b_in_place(w, 12, nr + 1, true, isa, &out));
    EXPECT_EQ(std::vector<float>(w.data<float>(), w.data<float>() + w.numel()), v);
  }
}

}  // namespace
}  // namespace qsearch::kernels
