// AVX2 tiles. Compiled with a target pragma so that they exist whatever the build baseline;
// gemm.cc calls them only when cpu_supports(Isa::kAvx2).
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "kernels/vec_math.h"
#include "quant/quantize_avx2.h"

namespace qsearch::kernels::fixed::detail {

namespace {

inline __m256i broadcast_pair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Columns 0..7 and 8..15 of one k-pair as int16 pairs.
template <typename BT>
inline void load_pairs(const BT* b, __m256i* b0, __m256i* b1) {
  if constexpr (sizeof(BT) == 1) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    *b0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(raw));
    *b1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(raw, 1));
  } else {
    *b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    *b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
  }
}

}  // namespace

template <typename BT>
void pairs_s32_avx2(const void* a_, int64_t as, const void* b_, int64_t groups, int32_t* out) {
  static_assert(kMrPairsAvx2 == 4);
  const int16_t* a = static_cast<const int16_t*>(a_);
  const BT* b = static_cast<const BT*>(b_);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
  __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int64_t g = 0; g < groups; ++g) {
    __m256i b0, b1;
    load_pairs(b + g * 2 * kNr, &b0, &b1);
    __m256i av = broadcast_pair(a + 2 * g);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
    av = broadcast_pair(a + as + 2 * g);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
    av = broadcast_pair(a + 2 * as + 2 * g);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
    av = broadcast_pair(a + 3 * as + 2 * g);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
  }
  __m256i* o = reinterpret_cast<__m256i*>(out);
  _mm256_storeu_si256(o + 0, c00);
  _mm256_storeu_si256(o + 1, c01);
  _mm256_storeu_si256(o + 2, c10);
  _mm256_storeu_si256(o + 3, c11);
  _mm256_storeu_si256(o + 4, c20);
  _mm256_storeu_si256(o + 5, c21);
  _mm256_storeu_si256(o + 6, c30);
  _mm256_storeu_si256(o + 7, c31);
}
template void pairs_s32_avx2<int8_t>(const void*, int64_t, const void*, int64_t, int32_t*);
template void pairs_s32_avx2<int16_t>(const void*, int64_t, const void*, int64_t, int32_t*);

namespace {
// Columns 0..7 and 8..15 of one k-pair as int16 pairs; int8 weights sign-extended straight from
// memory (two vpmovsxbw loads: no extract from a 256-bit load).
template <typename BT>
inline void load_pairs16(const BT* b, __m256i* b0, __m256i* b1) {
  if constexpr (sizeof(BT) == 1) {
    *b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    *b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
  } else {
    *b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    *b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
  }
}

// kRows <= 6 rows x 16 columns of int16-pair products, the body of pairs_rows_avx2 (GEMM panels)
// and conv_pairs_s32_avx2 (conv2d's pixel-major pairs, Winograd): row r's k-pair g is the int16
// pair at a + r * as + 2 * g, the 16 columns' pairs of k-pair g come from load_b(g, &b0, &b1)
// (columns 0..7 and 8..15), and row r of the sums goes to out + r * out_stride. 12 named
// accumulators (an array of them made GCC rotate registers through moves and a stack spill every
// k-pair), the two B vectors and a broadcast: 15 of the 16 ymm registers.
template <int kRows, class LoadB>
inline void pairs_rows6(const int16_t* a, int64_t as, LoadB load_b, int64_t groups, int32_t* out,
                        int64_t out_stride) {
  static_assert(kRows >= 1 && kRows <= 6);
  const __m256i zero = _mm256_setzero_si256();
  __m256i c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  __m256i c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  for (int64_t g = 0; g < groups; ++g) {
    __m256i b0, b1;
    load_b(g, &b0, &b1);
    const int16_t* ag = a + 2 * g;
    __m256i av = broadcast_pair(ag);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(av, b0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(av, b1));
    if constexpr (kRows > 1) {
      av = broadcast_pair(ag + as);
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(av, b0));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(av, b1));
    }
    if constexpr (kRows > 2) {
      av = broadcast_pair(ag + 2 * as);
      c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(av, b0));
      c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(av, b1));
    }
    if constexpr (kRows > 3) {
      av = broadcast_pair(ag + 3 * as);
      c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(av, b0));
      c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(av, b1));
    }
    if constexpr (kRows > 4) {
      av = broadcast_pair(ag + 4 * as);
      c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(av, b0));
      c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(av, b1));
    }
    if constexpr (kRows > 5) {
      av = broadcast_pair(ag + 5 * as);
      c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(av, b0));
      c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(av, b1));
    }
  }
  auto store = [&](int r, __m256i lo, __m256i hi) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_stride + 8), hi);
  };
  store(0, c00, c01);
  if constexpr (kRows > 1) store(1, c10, c11);
  if constexpr (kRows > 2) store(2, c20, c21);
  if constexpr (kRows > 3) store(3, c30, c31);
  if constexpr (kRows > 4) store(4, c40, c41);
  if constexpr (kRows > 5) store(5, c50, c51);
}

// pairs_rows6 for rows in [1, 6] (more: 6).
template <class LoadB>
void pairs_rows_upto6(int rows, const int16_t* a, int64_t as, LoadB load_b, int64_t groups,
                      int32_t* out, int64_t out_stride) {
  switch (rows) {
    case 1:
      return pairs_rows6<1>(a, as, load_b, groups, out, out_stride);
    case 2:
      return pairs_rows6<2>(a, as, load_b, groups, out, out_stride);
    case 3:
      return pairs_rows6<3>(a, as, load_b, groups, out, out_stride);
    case 4:
      return pairs_rows6<4>(a, as, load_b, groups, out, out_stride);
    case 5:
      return pairs_rows6<5>(a, as, load_b, groups, out, out_stride);
    default:
      return pairs_rows6<6>(a, as, load_b, groups, out, out_stride);
  }
}
}  // namespace

template <typename BT>
void pairs_rows_avx2(const void* a_, int64_t as, const void* b_, int64_t /*bs*/, int64_t groups,
                     int /*np: 1*/, int rows, int32_t* out) {
  static_assert(kMrPairsRowsAvx2 == 6);
  const BT* b = static_cast<const BT*>(b_);
  pairs_rows_upto6(
      rows, static_cast<const int16_t*>(a_), as,
      [b](int64_t g, __m256i* b0, __m256i* b1) { load_pairs16(b + g * 2 * kNr, b0, b1); }, groups,
      out, kNr);
}
template void pairs_rows_avx2<int8_t>(const void*, int64_t, const void*, int64_t, int64_t, int, int,
                                      int32_t*);
template void pairs_rows_avx2<int16_t>(const void*, int64_t, const void*, int64_t, int64_t, int,
                                       int, int32_t*);

namespace {
// max over the lane pairs (2i, 2i + 1) of a (lanes 0..7) and b (8..15): 8 results in order.
inline __m256i pair_max(__m256i a, __m256i b) {
  a = _mm256_max_epi32(a, _mm256_srli_epi64(a, 32));  // even lanes: max(a[2i], a[2i + 1])
  b = _mm256_max_epi32(b, _mm256_srli_epi64(b, 32));
  // Per 128-bit half: (a0, a2, b0, b2 | a4, a6, b4, b6), then the middle quarters swapped.
  const __m256i even = _mm256_castps_si256(
      _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), _MM_SHUFFLE(2, 0, 2, 0)));
  return _mm256_permute4x64_epi64(even, 0xD8);
}
}  // namespace

void conv_pool_lanes_s32_avx2(const int16_t* wc, const int32_t* x2, const int64_t* xoff,
                              const int64_t* goff, int64_t groups, int32_t* out) {
  __m256i acc[4][2];
  for (auto& r : acc) r[0] = r[1] = _mm256_setzero_si256();
  const int32_t* x[4] = {x2 + xoff[0], x2 + xoff[1], x2 + xoff[2], x2 + xoff[3]};
  for (int64_t g = 0; g < groups; ++g) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wc + g * 32));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wc + g * 32 + 16));
    const int64_t o = goff[g];
    for (int r = 0; r < 4; ++r) {
      const __m256i a = _mm256_set1_epi32(x[r][o]);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a, w1));
    }
  }
  for (int h = 0; h < 2; ++h) {
    const __m256i m = _mm256_max_epi32(_mm256_max_epi32(acc[0][h], acc[1][h]),
                                       _mm256_max_epi32(acc[2][h], acc[3][h]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * h), m);
  }
}

void max_pool2x2_s32_avx2(const int32_t* s, int64_t ld, int32_t* out) {
  auto load = [](const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const int32_t* t = s + ld;
  for (int h = 0; h < 2; ++h) {
    const __m256i a = _mm256_max_epi32(load(s + 16 * h), load(t + 16 * h));
    const __m256i b = _mm256_max_epi32(load(s + 16 * h + 8), load(t + 16 * h + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * h), pair_max(a, b));
  }
}

void depthwise_s32_avx2(const int16_t* xp, const int32_t* wpairs, const int64_t* off, int64_t pairs,
                        int64_t blocks, int32_t* out) {
  auto load = [](const int16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  // unpacklo / unpackhi of two rows of 16 codes interleave them per 128-bit half: the pair sums
  // land at positions (0-3, 8-11) and (4-7, 12-15); one permute per block restores the order.
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const int16_t* x = xp + b * 16;
    __m256i lo0 = _mm256_setzero_si256(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    for (int64_t q = 0; q < pairs; ++q) {
      const __m256i wq = _mm256_set1_epi32(wpairs[q]);
      const int16_t* a = x + off[2 * q];
      const int16_t* c = x + off[2 * q + 1];
      const __m256i a0 = load(a), c0 = load(c), a1 = load(a + 16), c1 = load(c + 16);
      lo0 = _mm256_add_epi32(lo0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a0, c0), wq));
      hi0 = _mm256_add_epi32(hi0, _mm256_madd_epi16(_mm256_unpackhi_epi16(a0, c0), wq));
      lo1 = _mm256_add_epi32(lo1, _mm256_madd_epi16(_mm256_unpacklo_epi16(a1, c1), wq));
      hi1 = _mm256_add_epi32(hi1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a1, c1), wq));
    }
    int32_t* o = out + b * 16;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_permute2x128_si256(lo0, hi0, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8),
                        _mm256_permute2x128_si256(lo0, hi0, 0x31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16),
                        _mm256_permute2x128_si256(lo1, hi1, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 24),
                        _mm256_permute2x128_si256(lo1, hi1, 0x31));
  }
  if (b < blocks) {
    const int16_t* x = xp + b * 16;
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    for (int64_t q = 0; q < pairs; ++q) {
      const __m256i wq = _mm256_set1_epi32(wpairs[q]);
      const __m256i a = load(x + off[2 * q]), c = load(x + off[2 * q + 1]);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, c), wq));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, c), wq));
    }
    int32_t* o = out + b * 16;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

void conv_pairs_s32_avx2(const int16_t* w, int64_t w_stride, const int32_t* x2, const int64_t* goff,
                         int64_t groups, int rows, int32_t* out, int64_t out_stride) {
  static_assert(kMrConvPairsAvx2 == 6);
  // The 16 positions' pairs of k-pair g: 16 consecutive int32 (int16 pairs) at x2 + goff[g].
  pairs_rows_upto6(
      rows, w, w_stride,
      [x2, goff](int64_t g, __m256i* b0, __m256i* b1) {
        const int32_t* b = x2 + goff[g];
        *b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
        *b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 8));
      },
      groups, out, out_stride);
}

// int16 x int16 into int64. A pair sum t lies in [-2^31 + 2^16, 2^31]; vpmaddwd returns it
// modulo 2^32, so t = 2^31 arrives as INT32_MIN. Adding kOffset = 2^31 - 2^16 maps the range
// onto [0, 2^32 - 2^16], which zero-extends exactly; the offsets are removed once at the end.
void pairs16_s64_avx2(const void* a_, int64_t as, const void* b_, int64_t groups, int64_t* out) {
  static_assert(kMrPairs16S64Avx2 == 2);
  constexpr int64_t kOffset = (int64_t{1} << 31) - (int64_t{1} << 16);
  const int16_t* a = static_cast<const int16_t*>(a_);
  const int16_t* b = static_cast<const int16_t*>(b_);
  const __m256i off = _mm256_set1_epi32(static_cast<int32_t>(kOffset));
  __m256i acc[2][4];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm256_setzero_si256();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m256i b0, b1;
    load_pairs(b + g * 2 * kNr, &b0, &b1);
    for (int r = 0; r < 2; ++r) {
      const __m256i av = broadcast_pair(a + r * as + 2 * g);
      const __m256i v0 = _mm256_add_epi32(_mm256_madd_epi16(av, b0), off);
      const __m256i v1 = _mm256_add_epi32(_mm256_madd_epi16(av, b1), off);
      acc[r][0] = _mm256_add_epi64(acc[r][0], _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v0)));
      acc[r][1] =
          _mm256_add_epi64(acc[r][1], _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v0, 1)));
      acc[r][2] = _mm256_add_epi64(acc[r][2], _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v1)));
      acc[r][3] =
          _mm256_add_epi64(acc[r][3], _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v1, 1)));
    }
  }
  const __m256i total = _mm256_set1_epi64x(
      static_cast<int64_t>(static_cast<uint64_t>(groups) * static_cast<uint64_t>(kOffset)));
  for (int r = 0; r < 2; ++r) {
    for (int q = 0; q < 4; ++q) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * kNr + 4 * q),
                          _mm256_sub_epi64(acc[r][q], total));
    }
  }
}

// int32 codes: vpmuldq multiplies the low 32 bits of each 64-bit lane exactly into 64 bits.
void wide_s64_avx2(const void* a_, int64_t as, const void* b_, int64_t groups, int64_t* out) {
  static_assert(kMrWideAvx2 == 2);
  const int32_t* a = static_cast<const int32_t*>(a_);
  const int32_t* b = static_cast<const int32_t*>(b_);
  __m256i acc[2][4];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm256_setzero_si256();
  }
  for (int64_t k = 0; k < groups; ++k) {
    const int32_t* bk = b + k * kNr;
    __m256i bv[4];
    for (int q = 0; q < 4; ++q) {
      bv[q] = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bk + 4 * q)));
    }
    for (int r = 0; r < 2; ++r) {
      const __m256i av = _mm256_set1_epi64x(a[r * as + k]);
      for (int q = 0; q < 4; ++q)
        acc[r][q] = _mm256_add_epi64(acc[r][q], _mm256_mul_epi32(av, bv[q]));
    }
  }
  for (int r = 0; r < 2; ++r) {
    for (int q = 0; q < 4; ++q) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * kNr + 4 * q), acc[r][q]);
    }
  }
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
