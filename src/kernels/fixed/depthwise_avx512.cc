// The depthwise path's tap-pair kernel on 512-bit vectors (gemm_tiles.h, depthwise_s32_avx512),
// compiled with a target pragma; conv2d.cc calls it only when the conv was packed for
// AVX-512BW or better (Isa, cpu_supports).
#include <cstdint>

#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders (used by the cast/extract intrinsics) as
// (maybe-)uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")

namespace qsearch::kernels::fixed::detail {

namespace {

inline __m512i load32(const int16_t* p) { return _mm512_loadu_si512(static_cast<const void*>(p)); }

// unpacklo / unpackhi of two rows of 32 codes interleave them per 128-bit lane: the pair sums of
// positions 8L + 0..3 land in lanes 4L..4L+3 of lo, those of 8L + 4..7 in the same lanes of hi.
// These indices (>= 16: hi) put positions 0..15 and 16..31 back in order.
inline void store32(__m512i lo, __m512i hi, int32_t* o) {
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  _mm512_storeu_si512(static_cast<void*>(o), _mm512_permutex2var_epi32(lo, first, hi));
  _mm512_storeu_si512(static_cast<void*>(o + 16), _mm512_permutex2var_epi32(lo, second, hi));
}

}  // namespace

void depthwise_s32_avx512(const int16_t* xp, const int32_t* wpairs, const int64_t* off,
                          int64_t pairs, int64_t blocks, int32_t* out) {
  // 64 positions (4 blocks) per pass: two independent chains of 32 (vpmaddwd then vpaddd, exact
  // modulo 2^32 as the AVX2 kernel), then 32, then the AVX2 kernel for a last odd block.
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const int16_t* x = xp + b * 16;
    __m512i lo0 = _mm512_setzero_si512(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    for (int64_t q = 0; q < pairs; ++q) {
      const __m512i wq = _mm512_set1_epi32(wpairs[q]);
      const int16_t* a = x + off[2 * q];
      const int16_t* c = x + off[2 * q + 1];
      const __m512i a0 = load32(a), c0 = load32(c), a1 = load32(a + 32), c1 = load32(c + 32);
      lo0 = _mm512_add_epi32(lo0, _mm512_madd_epi16(_mm512_unpacklo_epi16(a0, c0), wq));
      hi0 = _mm512_add_epi32(hi0, _mm512_madd_epi16(_mm512_unpackhi_epi16(a0, c0), wq));
      lo1 = _mm512_add_epi32(lo1, _mm512_madd_epi16(_mm512_unpacklo_epi16(a1, c1), wq));
      hi1 = _mm512_add_epi32(hi1, _mm512_madd_epi16(_mm512_unpackhi_epi16(a1, c1), wq));
    }
    store32(lo0, hi0, out + b * 16);
    store32(lo1, hi1, out + b * 16 + 32);
  }
  if (b + 2 <= blocks) {
    const int16_t* x = xp + b * 16;
    __m512i lo = _mm512_setzero_si512(), hi = lo;
    for (int64_t q = 0; q < pairs; ++q) {
      const __m512i wq = _mm512_set1_epi32(wpairs[q]);
      const __m512i a = load32(x + off[2 * q]), c = load32(x + off[2 * q + 1]);
      lo = _mm512_add_epi32(lo, _mm512_madd_epi16(_mm512_unpacklo_epi16(a, c), wq));
      hi = _mm512_add_epi32(hi, _mm512_madd_epi16(_mm512_unpackhi_epi16(a, c), wq));
    }
    store32(lo, hi, out + b * 16);
    b += 2;
  }
  if (b < blocks) depthwise_s32_avx2(xp + b * 16, wpairs, off, pairs, blocks - b, out + b * 16);
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
