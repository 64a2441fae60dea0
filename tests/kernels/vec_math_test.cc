// The vectorised transcendentals (kernels/vec_math.h) against double-precision std:: over dense
// grids of float bit patterns (both signs, every magnitude from subnormal to huge) and special
// values, with the maximum errors in ulps that the header states.
#include "kernels/vec_math.h"

#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

// GCC 12 reports its own _mm512_undefined_* placeholders (in the AVX-512 intrinsics that
// sigmoid16 uses) as (maybe-)uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qsearch::kernels::vmath {
namespace {

double exact(Fn f, double v) {
  switch (f) {
    case Fn::kExp:
      return std::exp(v);
    case Fn::kSigmoid:
      return 1.0 / (1.0 + std::exp(-v));
    case Fn::kTanh:
      return std::tanh(v);
    case Fn::kErf:
      return std::erf(v);
    case Fn::kGelu:
      return v < 0 ? 0.5 * v * std::erfc(-v / std::sqrt(2.0))
                   : 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    case Fn::kGeluTanh: {
      // The float kernel rounds x * 0.044715f and the constant k; the definition uses both.
      const double w = 0.79788456080286536 * (v + 0.044715 * v * v * v);
      return v / (1.0 + std::exp(-2.0 * w));
    }
  }
  return v;
}

// Error of `got` in units of the float spacing at the exact value (subnormal spacing below
// FLT_MIN, so tiny results are measured in 2^-149 steps).
// `floor`: a minimum spacing (the GELUs' 2^-24 |x|, see kernels/vec_math.h).
double ulps(float got, double want, double floor = 0) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e30;
  if (std::isinf(want)) return got == static_cast<float>(want) ? 0 : 1e30;
  const float wf = static_cast<float>(want);
  if (std::isinf(wf)) return std::isinf(got) && (got > 0) == (want > 0) ? 0 : 1e30;
  const double a = std::max(std::fabs(want), static_cast<double>(FLT_MIN));
  const double spacing = std::max(std::ldexp(1.0, std::ilogb(a) - 23), floor);
  return std::fabs(static_cast<double>(got) - want) / spacing;
}

// Every 307th positive float bit pattern (about 7 million values with both signs) up to +inf.
std::vector<float> dense_grid() {
  std::vector<float> v;
  for (uint32_t b = 0; b < 0x7f800000u; b += 307) {
    const float f = std::bit_cast<float>(b);
    v.push_back(f);
    v.push_back(-f);
  }
  return v;
}

struct Worst {
  double ulps = 0;
  float at = 0;
};

Worst worst_error(Fn f, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  map_f32(f, x.data(), y.data(), static_cast<int64_t>(x.size()));
  Worst w;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool gelu = f == Fn::kGelu || f == Fn::kGeluTanh;
    const double e = ulps(y[i], exact(f, x[i]), gelu ? std::ldexp(std::fabs(x[i]), -24) : 0.0);
    if (e > w.ulps) w = {e, x[i]};
  }
  return w;
}

TEST(VecMath, MaxUlpErrorOverDenseGridsIsWithinTheStatedBounds) {
#ifndef __AVX2__
  GTEST_SKIP() << "the bounds are those of the AVX2 code (this build uses std::)";
#endif
  const std::vector<float> x = dense_grid();
  struct Case {
    Fn f;
    const char* name;
    double bound;
  };
  // Bounds of kernels/vec_math.h.
  for (const Case& c : {Case{Fn::kExp, "exp", 1.1}, Case{Fn::kSigmoid, "sigmoid", 2.5},
                        Case{Fn::kTanh, "tanh", 2.5}, Case{Fn::kErf, "erf", 2.5},
                        Case{Fn::kGelu, "gelu", 3.0}, Case{Fn::kGeluTanh, "gelu_tanh", 3.0}}) {
    const Worst w = worst_error(c.f, x);
    EXPECT_LE(w.ulps, c.bound) << c.name << " worst at x = " << w.at;
    std::printf("%-9s max %.3f ulp at x = %.9g\n", c.name, w.ulps, w.at);
  }
}

TEST(VecMath, ValuesAroundEveryBranchPointAndTheExpRangeEnds) {
#ifndef __AVX2__
  GTEST_SKIP() << "the bounds are those of the AVX2 code (this build uses std::)";
#endif
  // Dense sweeps (every float) around the polynomial switch points and exp's clamps.
  std::vector<float> x;
  for (const float c :
       {0.625f, 0.9f, 0.9f * 1.41421356f, 88.72f, -87.33f, -103.9f, 10.5f, 14.85f, 1e-4f}) {
    float lo = c, hi = c;
    for (int i = 0; i < 20000; ++i) {
      x.push_back(lo);
      x.push_back(-lo);
      x.push_back(hi);
      x.push_back(-hi);
      lo = std::nextafter(lo, 0.0f);
      hi = std::nextafter(hi, 1e30f);
    }
  }
  EXPECT_LE(worst_error(Fn::kExp, x).ulps, 1.1);
  EXPECT_LE(worst_error(Fn::kSigmoid, x).ulps, 2.5);
  EXPECT_LE(worst_error(Fn::kTanh, x).ulps, 2.5);
  EXPECT_LE(worst_error(Fn::kErf, x).ulps, 2.5);
  EXPECT_LE(worst_error(Fn::kGelu, x).ulps, 3.0);
  EXPECT_LE(worst_error(Fn::kGeluTanh, x).ulps, 3.0);
}

TEST(VecMath, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float den = std::numeric_limits<float>::denorm_min();
  const std::vector<float> x = {0.0f,    -0.0f,   inf,      -inf,  nan,    -nan,   den,    -den,
                                FLT_MIN, FLT_MAX, -FLT_MAX, 1e30f, -1e30f, 1e-30f, -1e-30f};
  auto run = [&](Fn f) {
    std::vector<float> y(x.size());
    map_f32(f, x.data(), y.data(), static_cast<int64_t>(x.size()));
    return y;
  };
  const std::vector<float> e = run(Fn::kExp);
  EXPECT_EQ(e[0], 1.0f);
  EXPECT_EQ(e[1], 1.0f);
  EXPECT_EQ(e[2], inf);
  EXPECT_EQ(e[3], 0.0f);
  EXPECT_TRUE(std::isnan(e[4]) && std::isnan(e[5]));
  EXPECT_EQ(e[6], 1.0f);
  EXPECT_EQ(e[9], inf);
  EXPECT_EQ(e[10], 0.0f);
  for (const Fn f : {Fn::kTanh, Fn::kErf}) {
    const std::vector<float> y = run(f);
    EXPECT_TRUE(y[0] == 0.0f && !std::signbit(y[0]));
    EXPECT_TRUE(y[1] == 0.0f && std::signbit(y[1]));  // odd functions keep -0
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], -1.0f);
    EXPECT_TRUE(std::isnan(y[4]) && std::isnan(y[5]));
    EXPECT_EQ(y[9], 1.0f);
    EXPECT_EQ(y[10], -1.0f);
  }
  const std::vector<float> s = run(Fn::kSigmoid);
  EXPECT_EQ(s[0], 0.5f);
  EXPECT_EQ(s[2], 1.0f);
  EXPECT_EQ(s[3], 0.0f);
  EXPECT_TRUE(std::isnan(s[4]));
  for (const Fn f : {Fn::kGelu, Fn::kGeluTanh}) {
    const std::vector<float> y = run(f);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_EQ(y[2], inf);
    EXPECT_TRUE(std::isnan(y[3]));  // -inf / 2 * (1 + erf(-inf)) = -inf * 0, as PyTorch
    EXPECT_TRUE(std::isnan(y[4]));
    EXPECT_EQ(y[9], FLT_MAX);
    EXPECT_EQ(y[10], 0.0f);
    EXPECT_EQ(y[11], 1e30f);
  }
}

TEST(VecMath, EveryLengthAndInPlaceGiveTheSameValuesAsOneLongRun) {
  // The masked tail computes exactly what the 8-wide body does, and y may equal x.
  std::vector<float> x(37);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -9.0f + 0.47f * static_cast<float>(i);
  for (const Fn f : {Fn::kExp, Fn::kSigmoid, Fn::kTanh, Fn::kErf, Fn::kGelu, Fn::kGeluTanh}) {
    std::vector<float> all(x.size());
    map_f32(f, x.data(), all.data(), static_cast<int64_t>(x.size()));
    for (size_t n = 0; n <= x.size(); ++n) {
      for (size_t off = 0; off + n <= x.size(); off += 5) {
        std::vector<float> y(x.begin() + off, x.begin() + off + n);
        map_f32(f, y.data(), y.data(), static_cast<int64_t>(n));
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(all[off + i]));
        }
      }
    }
  }
}

#ifdef __AVX2__
// exp8_nonan / sigmoid8 and exp16_nonan / sigmoid16 on x (n a multiple of 16), lane by lane.
void run8(const float* x, float* e, float* s, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(e + i, detail::exp8_nonan(v));
    _mm256_storeu_ps(s + i, detail::sigmoid8(v));
  }
}
__attribute__((target("avx512f"))) void run16(const float* x, float* e, float* s, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    _mm512_storeu_ps(e + i, detail::exp16_nonan(v));
    _mm512_storeu_ps(s + i, detail::sigmoid16(v));
  }
}
#endif

// The 16-lane sigmoid of the AVX-512 conv stores (kernels/fixed/epilogue_avx512.cc) must equal
// the 8-lane one bit for bit (the int conv's fused SiLU stores the same values on both paths):
// every 1021st float bit pattern (both signs, every exponent, NaNs with payloads), every float in
// [86, 106] of either sign (exp's subnormal results, its clamp at -104, sigmoid's underflow and
// saturation to 1), runs of consecutive floats around 0, the denormals, the exp clamps (88.8,
// -104) and the rounding points of n = round(x / ln 2), and the special values.
TEST(VecMath, Sigmoid16EqualsSigmoid8BitForBit) {
#ifndef __AVX2__
  GTEST_SKIP() << "no AVX2 sigmoid8 in this build";
#else
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512F on this CPU";
  std::vector<float> x;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 1021) {
    x.push_back(std::bit_cast<float>(static_cast<uint32_t>(b)));
  }
  for (uint32_t b = std::bit_cast<uint32_t>(86.0f); b <= std::bit_cast<uint32_t>(106.0f); ++b) {
    x.push_back(std::bit_cast<float>(b));
    x.push_back(std::bit_cast<float>(b | 0x80000000u));
  }
  for (uint32_t b = 0; b < 200000; ++b) {  // +-0, the smallest denormals, ...
    x.push_back(std::bit_cast<float>(b));
    x.push_back(std::bit_cast<float>(b | 0x80000000u));
    x.push_back(std::bit_cast<float>(0x00800000u - b));  // ... the largest ones and FLT_MIN
    x.push_back(-std::bit_cast<float>(0x00800000u - b));
  }
  for (int k = -160; k <= 160; ++k) {  // x / ln 2 at the half-integers n + 1/2
    float lo = (static_cast<float>(k) + 0.5f) * 0.693147181f, hi = lo;
    for (int i = 0; i < 64; ++i) {
      x.push_back(lo);
      x.push_back(hi);
      lo = std::nextafter(lo, -1e30f);
      hi = std::nextafter(hi, 1e30f);
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (const float c : {88.8f, -88.8f, 104.0f, -104.0f, 88.72f, -87.33f, 0.0f}) {
    float lo = c, hi = c;
    for (int i = 0; i < 1000; ++i) {
      x.push_back(lo);
      x.push_back(hi);
      lo = std::nextafter(lo, -inf);
      hi = std::nextafter(hi, inf);
    }
  }
  for (const uint32_t b : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u,
                           0xff800001u, 0x7fc12345u, 0x7f7fffffu, 0xff7fffffu}) {
    x.push_back(std::bit_cast<float>(b));
  }
  while (x.size() % 16 != 0) x.push_back(std::bit_cast<float>(0x7fa5a5a5u));
  const size_t n = x.size();
  std::vector<float> e8(n), s8(n), e16(n), s16(n);
  run8(x.data(), e8.data(), s8.data(), n);
  run16(x.data(), e16.data(), s16.data(), n);
  int64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t a = std::bit_cast<uint32_t>(e8[i]), b = std::bit_cast<uint32_t>(e16[i]);
    const uint32_t c = std::bit_cast<uint32_t>(s8[i]), d = std::bit_cast<uint32_t>(s16[i]);
    if ((a != b || c != d) && bad++ < 10) {
      ADD_FAILURE() << "x bits " << std::hex << std::bit_cast<uint32_t>(x[i]) << ": exp8 " << a
                    << " exp16 " << b << ", sigmoid8 " << c << " sigmoid16 " << d;
    }
  }
  EXPECT_EQ(bad, 0) << "of " << n;
  EXPECT_GT(n, 9000000u);
#endif
}

}  // namespace
}  // namespace qsearch::kernels::vmath
