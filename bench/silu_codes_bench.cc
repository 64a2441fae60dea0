// bench-deps: kernels_fixed quant core
//
// The fused SiLU's codes on 16 lanes (kernels/fixed/codes_avx512.h): ns per vector of the
// exact form (round(x * sigmoid16(x) * 2^F)) and of silu_codes16 (the cheap SiLU, exact where it
// cannot decide), on 4096 BatchNorm-like inputs in [-6, 6), F = 4, half to even. With
// `exhaustive`, it also checks silu_codes16 against the exact codes on every one of the 2^32
// float inputs for F in {-3, 0, 4, 7, 12} and the three roundings (about 2 minutes per F) and
// prints the differing lanes (must be 0) and the lanes that took the exact form; and first
// checks sigmoid16 against sigmoid8 bit for bit on all 2^32 inputs.
//
//   build/bin/silu_codes_bench [ROUNDS=20] [exhaustive]
#include <immintrin.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/fixed/codes_avx512.h"

namespace qd = qsearch::kernels::fixed::detail;
using qsearch::quant::Rounding;

namespace {

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"), noinline))

// Codes of x[0..n) into y, the exact form (fast false) or silu_codes16.
AVX512 void codes(const float* x, float* y, int n, bool fast) {
  const qd::SiluCodes16 k(16.0f);
  for (int i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    _mm512_storeu_ps(y + i, fast ? qd::silu_codes16<Rounding::kHalfToEven>(v, k)
                                 : qd::silu_codes_exact16<Rounding::kHalfToEven>(v, k));
  }
}

// Over all 2^32 bit patterns: lanes whose codes differ (before the clamp; NaN -> 0) and lanes
// silu_codes16 could not decide cheaply (counted by re-running its test here).
template <Rounding R>
AVX512 void sweep(float q_scale, uint64_t* bad, uint64_t* exact) {
  const qd::SiluCodes16 k(q_scale);
  const __m512i step = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  uint64_t b = 0, e = 0;
  for (uint64_t base = 0; base < (uint64_t{1} << 32); base += 16) {
    const __m512 x =
        _mm512_castsi512_ps(_mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(base)), step));
    const __m512 got = qd::silu_codes16<R>(x, k), want = qd::silu_codes_exact16<R>(x, k);
    // Equal as codes (NaN is 0 in both).
    const __mmask16 same = _mm512_cmp_ps_mask(got, want, _CMP_EQ_OQ);
    b += static_cast<uint64_t>(__builtin_popcount(static_cast<uint16_t>(~same)));
    __m512 c;
    e += static_cast<uint64_t>(
        __builtin_popcount(qd::silu_undecided16<R>(qd::silu16_approx(x), k, &c)));
  }
  *bad = b;
  *exact = e;
}

// Over all 2^32 bit patterns: lanes where sigmoid16 differs from sigmoid8 in any bit (the
// AVX-512 sigmoid must be the AVX2 one's twin; vec_math.h).
AVX512 uint64_t sigmoid_sweep() {
  const __m512i step = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  uint64_t bad = 0;
  for (uint64_t base = 0; base < (uint64_t{1} << 32); base += 16) {
    const __m512i xi = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(base)), step);
    const __m512 s16 = qsearch::kernels::detail::sigmoid16(_mm512_castsi512_ps(xi));
    const __m512 s8 = _mm512_insertf32x8(
        _mm512_castps256_ps512(
            qsearch::kernels::detail::sigmoid8(_mm256_castsi256_ps(_mm512_castsi512_si256(xi)))),
        qsearch::kernels::detail::sigmoid8(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(xi, 1))),
        1);
    bad += static_cast<uint64_t>(__builtin_popcount(
        _mm512_cmp_epi32_mask(_mm512_castps_si512(s16), _mm512_castps_si512(s8), _MM_CMPINT_NE)));
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) {
    std::printf("no AVX-512BW/VL on this CPU\n");
    return 0;
  }
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 20;
  const bool exhaustive = argc > 2 && std::strcmp(argv[2], "exhaustive") == 0;
  std::vector<float> x(4096), y(4096);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>((static_cast<int64_t>(i) * 7919 % 4096) - 2048) * 0.00293f;
  }
  std::printf("| form | ns per 16 lanes |\n|---|---|\n");
  for (bool fast : {false, true}) {
    double best = 1e300;
    for (int r = 0; r < rounds; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < 1000; ++k) codes(x.data(), y.data(), 4096, fast);
      const double ns =
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
          (1000.0 * 256);
      best = std::min(best, ns);
    }
    std::printf("| %s | %.2f |\n", fast ? "silu_codes16" : "exact", best);
  }
  if (!exhaustive) return 0;
  std::printf("sigmoid16 lanes differing from sigmoid8 in any bit: %lu\n",
              static_cast<unsigned long>(sigmoid_sweep()));
  for (int f : {-3, 0, 4, 7, 12}) {
    const float q = std::ldexp(1.0f, f);
    uint64_t bad[3], ex[3];
    sweep<Rounding::kHalfToEven>(q, &bad[0], &ex[0]);
    sweep<Rounding::kHalfAwayFromZero>(q, &bad[1], &ex[1]);
    sweep<Rounding::kFloor>(q, &bad[2], &ex[2]);
    std::printf("F=%d differing lanes (even / away / floor): %lu %lu %lu; undecided: %lu %lu %lu\n",
                f, static_cast<unsigned long>(bad[0]), static_cast<unsigned long>(bad[1]),
                static_cast<unsigned long>(bad[2]), static_cast<unsigned long>(ex[0]),
                static_cast<unsigned long>(ex[1]), static_cast<unsigned long>(ex[2]));
    std::fflush(stdout);
  }
  return 0;
}
