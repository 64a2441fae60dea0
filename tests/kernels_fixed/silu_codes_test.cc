// The fused SiLU's codes of the AVX-512 quantizing stores (kernels/fixed/codes_avx512.h):
// silu_codes16 must give round_R(fl(fl(x * sigmoid16(x)) * 2^F)), bit for bit (+0 for NaN), for
// every input.
// Checked on the 4096 consecutive floats around each input where that product crosses a
// rounding boundary (found in double, on both branches of the SiLU: it falls to its minimum
// -0.278 at x = -1.278, then rises), for binary points F in {-3, 0, 4, 7, 12} and the three
// roundings, and on special values (+-0, subnormals, -88.7 where the cheap form's e^-x
// overflows, far negative and positive inputs, +-inf, NaN). The sweeps must reach the exact
// fallback and must mostly not need it (both counted).
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/fixed/codes_avx512.h"
#include "kernels/fixed/isa.h"

#if defined(__x86_64__) && defined(__AVX2__)

namespace qsearch::kernels::fixed::detail {
namespace {

using quant::Rounding;

struct Counts {
  int64_t lanes = 0, bad = 0, undecided = 0;
};

// x[0..n) (n a multiple of 16): compares silu_codes16 with the exact codes lane by lane, bit for
// bit (a NaN code as +0, quant::quantize's NaN -> 0; written out here, not the header's
// silu_codes_exact16, so that the reference does not share its code) and counts the lanes whose
// cheap roundings disagree.
template <Rounding R>
__attribute__((target("avx512f,avx512bw,avx512vl"))) void check(const std::vector<float>& x,
                                                                float q_scale, Counts* c,
                                                                std::vector<float>* first_bad) {
  const SiluCodes16 k(q_scale);
  alignas(64) float got[16], want[16];
  for (size_t i = 0; i < x.size(); i += 16) {
    const __m512 v = _mm512_loadu_ps(&x[i]);
    _mm512_store_ps(got, silu_codes16<R>(v, k));
    const __m512 e =
        round16<R>(_mm512_mul_ps(_mm512_mul_ps(v, ::qsearch::kernels::detail::sigmoid16(v)), k.q));
    _mm512_store_ps(want, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(e, e, _CMP_ORD_Q), e));
    __m512 cheap;
    c->undecided += __builtin_popcount(silu_undecided16<R>(silu16_approx(v), k, &cheap));
    for (int j = 0; j < 16; ++j) {
      ++c->lanes;
      const bool same = std::bit_cast<uint32_t>(got[j]) == std::bit_cast<uint32_t>(want[j]);
      if (!same) {
        ++c->bad;
        if (first_bad->empty()) *first_bad = {x[i + j], got[j], want[j]};
      }
    }
  }
}

// x where x / (1 + e^-x) * q = y, on the rising branch (x >= -1.2785) or the falling one.
double solve(double y, double q, bool rising) {
  const auto f = [&](double x) { return x / (1.0 + std::exp(-x)) * q - y; };
  double lo = rising ? -1.2784645 : -120.0, hi = rising ? 200.0 : -1.2784645;
  // f rises on the rising branch and falls on the other.
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    if ((f(mid) < 0) == rising) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

// The 4096 consecutive floats centred on x.
void add_neighbourhood(float x, std::vector<float>* out) {
  const int32_t b = std::bit_cast<int32_t>(x);
  for (int32_t d = -2048; d < 2048; ++d) out->push_back(std::bit_cast<float>(b + d));
}

template <Rounding R>
void run_format(int f) {
  SCOPED_TRACE(testing::Message() << "F=" << f << " rounding=" << quant::rounding_name(R));
  const double q = std::ldexp(1.0, f);
  std::vector<float> x;
  // The code boundaries: y = k + 1/2 (nearest) or y = k (floor), for |y| up to 300 and at most
  // 400 of them per branch (thinned evenly beyond that). The falling branch spans y in
  // (-0.2785 q, 0).
  const double offset = R == Rounding::kFloor ? 0.0 : 0.5;
  const double min_y = -0.27846454 * q;
  for (bool rising : {true, false}) {
    const double lo = std::max(min_y, -300.0);
    const double hi = rising ? 300.0 : 0.0;
    const double first = std::ceil(lo - offset), last = std::floor(hi - offset);
    const double count = last - first + 1;
    const double step = count > 400 ? std::ceil(count / 400) : 1;
    for (double k = first; k <= last; k += step) {
      const double y = k + offset;
      if (y <= min_y || (!rising && y >= 0)) continue;
      add_neighbourhood(static_cast<float>(solve(y, q, rising)), &x);
    }
  }
  // Special values and the cheap form's edges, each in a vector of its own (the rest zeros, which
  // the cheap form decides): a vector takes the exact form as a whole when any lane needs it,
  // which would hide a wrong cheap code beside -88.1 or NaN.
  while (x.size() % 16 != 0) x.push_back(0.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f,         -0.0f,
                  FLT_MIN,      -FLT_MIN,
                  FLT_TRUE_MIN, -FLT_TRUE_MIN,
                  1e-30f,       -1e-30f,
                  -87.9f,       -88.0f,
                  -88.1f,       -103.9f,
                  -104.0f,      -104.5f,
                  -150.0f,      -1e6f,
                  -1e30f,       -FLT_MAX,
                  87.0f,        104.5f,
                  1e6f,         1e30f,
                  FLT_MAX,      inf,
                  -inf,         std::numeric_limits<float>::quiet_NaN()}) {
    x.push_back(v);
    x.resize(x.size() + 15, 0.0f);
  }
  add_neighbourhood(-88.0f, &x);
  add_neighbourhood(-88.72f, &x);  // e^-x overflows from -88.7228 down
  add_neighbourhood(-17.0f, &x);   // floor's smallest codes: SiLU near -2^-20
  while (x.size() % 16 != 0) x.push_back(0.0f);
  Counts c;
  std::vector<float> first_bad;
  check<R>(x, static_cast<float>(q), &c, &first_bad);
  EXPECT_EQ(c.bad, 0) << "first: x=" << (first_bad.empty() ? 0.0f : first_bad[0])
                      << " got=" << (first_bad.empty() ? 0.0f : first_bad[1])
                      << " want=" << (first_bad.empty() ? 0.0f : first_bad[2]);
  // The sweeps straddle the boundaries, so some lanes need the exact form, but few.
  EXPECT_GT(c.undecided, 0);
  EXPECT_LT(c.undecided, c.lanes / 8);
}

TEST(SiluCodes, CheapCodesEqualTheExactCodesAtEveryBoundary) {
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) {
    GTEST_SKIP() << "no AVX-512BW/VL on this CPU";
  }
  for (int f : {-3, 0, 4, 7, 12}) {
    run_format<Rounding::kHalfToEven>(f);
    run_format<Rounding::kHalfAwayFromZero>(f);
    run_format<Rounding::kFloor>(f);
  }
}

}  // namespace
}  // namespace qsearch::kernels::fixed::detail

#endif  // __x86_64__ && __AVX2__
