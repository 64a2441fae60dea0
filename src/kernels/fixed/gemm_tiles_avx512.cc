// AVX-512BW and AVX-512 VNNI tiles, compiled with target pragmas; gemm.cc calls them only when
// cpu_supports() says the CPU has them.
#include <cstring>
#include <utility>

#include "kernels/fixed/gemm_tiles.h"

#include "kernels/fixed/epilogue.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders (used by the cast/extract/convert
// intrinsics) as (maybe-)uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Target pragmas (not attributes) so that the helper templates inherit the ISA too. VNNI is
// enabled only around the VNNI kernel: with it, GCC may fuse vpmaddwd + vpaddd into vpdpwssd,
// which AVX-512BW-only CPUs lack.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")

namespace qsearch::kernels::fixed::detail {

namespace {

template <typename T>
inline __m512i broadcast4(const T* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// All 16 columns of one k-pair as int16 pairs.
template <typename BT>
inline __m512i load_pairs(const BT* b) {
  if constexpr (sizeof(BT) == 1) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
  } else {
    return _mm512_loadu_si512(b);
  }
}

}  // namespace

template <typename BT>
void pairs_s32_avx512(const void* a_, int64_t as, const void* b_, int64_t groups, int32_t* out) {
  constexpr int kMr = kMrPairsAvx512;
  const int16_t* a = static_cast<const int16_t*>(a_);
  const BT* b = static_cast<const BT*>(b_);
  __m512i acc[kMr];
  for (auto& v : acc) v = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i bv = load_pairs(b + g * 2 * kNr);
    for (int r = 0; r < kMr; ++r) {
      acc[r] = _mm512_add_epi32(acc[r], _mm512_madd_epi16(broadcast4(a + r * as + 2 * g), bv));
    }
  }
  for (int r = 0; r < kMr; ++r) _mm512_storeu_si512(out + r * kNr, acc[r]);
}
template void pairs_s32_avx512<int8_t>(const void*, int64_t, const void*, int64_t, int32_t*);
template void pairs_s32_avx512<int16_t>(const void*, int64_t, const void*, int64_t, int32_t*);

namespace {
// kR rows x kP panels: kR * kP accumulators (24 of the 32 zmm registers at 8 x 3), one
// broadcast per row and one B load per panel for every kR * kP vpmaddwd (8 x 1: 9 loads for 8).
template <typename BT, int kR, int kP>
void pairs_rp(const int16_t* a, int64_t as, const BT* b, int64_t bs, int64_t groups, int32_t* out) {
  __m512i acc[kR][kP];
  for (auto& row : acc) {
    for (auto& v : row) v = _mm512_setzero_si512();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m512i bv[kP];
    for (int p = 0; p < kP; ++p) bv[p] = load_pairs(b + p * bs + g * 2 * kNr);
    for (int r = 0; r < kR; ++r) {
      const __m512i av = broadcast4(a + r * as + 2 * g);
      for (int p = 0; p < kP; ++p) {
        acc[r][p] = _mm512_add_epi32(acc[r][p], _mm512_madd_epi16(av, bv[p]));
      }
    }
  }
  for (int p = 0; p < kP; ++p) {
    for (int r = 0; r < kR; ++r) {
      _mm512_storeu_si512(out + (p * kMrPairsAvx512 + r) * kNr, acc[r][p]);
    }
  }
}

// Calls F<kR, kP>() for rows in [1, 8] and np in [1, kNpAvx512].
template <template <int, int> class F, typename... Args>
void dispatch_rp(int np, int rows, Args... args) {
  static_assert(kMrPairsAvx512 == 8 && kMrQuadsVnni == 8 && kNpAvx512 >= 2 && kNpAvx512 <= 3);
  auto one = [&](auto p) {
    constexpr int kP = decltype(p)::value;
    switch (rows) {
      case 1:
        return F<1, kP>::run(args...);
      case 2:
        return F<2, kP>::run(args...);
      case 3:
        return F<3, kP>::run(args...);
      case 4:
        return F<4, kP>::run(args...);
      case 5:
        return F<5, kP>::run(args...);
      case 6:
        return F<6, kP>::run(args...);
      case 7:
        return F<7, kP>::run(args...);
      default:
        return F<8, kP>::run(args...);
    }
  };
  if (np == 1) return one(std::integral_constant<int, 1>{});
  if constexpr (kNpAvx512 >= 3) {
    if (np == 2) return one(std::integral_constant<int, 2>{});
    return one(std::integral_constant<int, kNpAvx512>{});
  }
  return one(std::integral_constant<int, 2>{});
}

template <typename BT>
struct PairsRP {
  template <int kR, int kP>
  struct F {
    static void run(const int16_t* a, int64_t as, const BT* b, int64_t bs, int64_t groups,
                    int32_t* out) {
      pairs_rp<BT, kR, kP>(a, as, b, bs, groups, out);
    }
  };
};
}  // namespace

template <typename BT>
void pairs_rows_avx512(const void* a, int64_t as, const void* b, int64_t bs, int64_t groups, int np,
                       int rows, int32_t* out) {
  dispatch_rp<PairsRP<BT>::template F>(np, rows, static_cast<const int16_t*>(a), as,
                                       static_cast<const BT*>(b),
                                       bs / static_cast<int64_t>(sizeof(BT)), groups, out);
}
template void pairs_rows_avx512<int8_t>(const void*, int64_t, const void*, int64_t, int64_t, int,
                                        int, int32_t*);
template void pairs_rows_avx512<int16_t>(const void*, int64_t, const void*, int64_t, int64_t, int,
                                         int, int32_t*);

// int16 x int16 into int64 with the offset trick of pairs16_s64_avx2 (see there).
void pairs16_s64_avx512(const void* a_, int64_t as, const void* b_, int64_t groups, int64_t* out) {
  constexpr int kMr = kMrPairs16S64Avx512;
  constexpr int64_t kOffset = (int64_t{1} << 31) - (int64_t{1} << 16);
  const int16_t* a = static_cast<const int16_t*>(a_);
  const int16_t* b = static_cast<const int16_t*>(b_);
  const __m512i off = _mm512_set1_epi32(static_cast<int32_t>(kOffset));
  __m512i lo[kMr], hi[kMr];
  for (int r = 0; r < kMr; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i bv = load_pairs(b + g * 2 * kNr);
    for (int r = 0; r < kMr; ++r) {
      const __m512i v =
          _mm512_add_epi32(_mm512_madd_epi16(broadcast4(a + r * as + 2 * g), bv), off);
      lo[r] = _mm512_add_epi64(lo[r], _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v)));
      hi[r] = _mm512_add_epi64(hi[r], _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    }
  }
  const __m512i total = _mm512_set1_epi64(
      static_cast<int64_t>(static_cast<uint64_t>(groups) * static_cast<uint64_t>(kOffset)));
  for (int r = 0; r < kMr; ++r) {
    _mm512_storeu_si512(out + r * kNr, _mm512_sub_epi64(lo[r], total));
    _mm512_storeu_si512(out + r * kNr + 8, _mm512_sub_epi64(hi[r], total));
  }
}

namespace {
// epilogue.cc's shift_round32 on 16 int32 lanes.
template <quant::Rounding R>
inline __m512i shift_round32x16(__m512i v, int s) {
  const __m128i count = _mm_cvtsi32_si128(s);
  const __m512i q = _mm512_sra_epi32(v, count);
  if constexpr (R == quant::Rounding::kFloor) {
    return q;
  } else {
    const __m512i rem = _mm512_and_si512(v, _mm512_set1_epi32((int32_t{1} << s) - 1));
    const __m512i half = _mm512_set1_epi32(int32_t{1} << (s - 1));
    __mmask16 tie_up;
    if constexpr (R == quant::Rounding::kHalfToEven) {
      tie_up = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    } else {
      tie_up = _mm512_cmpge_epi32_mask(v, _mm512_setzero_si512());
    }
    const __mmask16 up =
        _mm512_cmpgt_epi32_mask(rem, half) | (_mm512_cmpeq_epi32_mask(rem, half) & tie_up);
    return _mm512_mask_add_epi32(q, up, q, _mm512_set1_epi32(1));
  }
}

// 16 int64 values (masked to `m`) truncated to int32 lanes.
inline __m512i low32x16(const int64_t* p, __mmask16 m) {
  const __m256i a = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(__mmask8(m), p));
  const __m256i b = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(__mmask8(m >> 8), p + 8));
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

template <typename Out, quant::Rounding R>
void requantize32_rows(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                       int64_t col0, void* c) {
  const __mmask16 m = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __m512i bias = low32x16(e.bias_ + col0, m);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_);
  const __m512i lo = _mm512_set1_epi32(static_cast<int32_t>(e.lo_));
  const __m512i hi = _mm512_set1_epi32(static_cast<int32_t>(e.hi_));
  for (int r = 0; r < rows; ++r) {
    // (uint32(S) << shift) + int32(bias): exact in int32 (the accumulator's bound).
    const __m512i acc = _mm512_add_epi32(_mm512_sll_epi32(low32x16(tile + r * 16, m), shift), bias);
    const __m512i q =
        _mm512_min_epi32(_mm512_max_epi32(shift_round32x16<R>(acc, e.rshift_), lo), hi);
    Out* o = static_cast<Out*>(c) + (row0 + r) * e.ldc_m_ + col0;
    if constexpr (sizeof(Out) == 1) {
      _mm512_mask_cvtepi32_storeu_epi8(o, m, q);  // truncating: q is already in range
    } else {
      _mm512_mask_cvtepi32_storeu_epi16(o, m, q);
    }
  }
}

template <typename Out>
EpilogueFn requantize32_for(quant::Rounding r) {
  return quant::with_rounding(r,
                              [](auto R) { return EpilogueFn(&requantize32_rows<Out, R.value>); });
}
}  // namespace

EpilogueFn requantize32_avx512(DType out, quant::Rounding rounding) {
  switch (out) {
    case DType::kInt8:
      return requantize32_for<int8_t>(rounding);
    case DType::kUInt8:
      return requantize32_for<uint8_t>(rounding);
    case DType::kInt16:
      return requantize32_for<int16_t>(rounding);
    default:
      return nullptr;
  }
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")

namespace qsearch::kernels::fixed::detail {

namespace {
inline __m512i broadcast_u8x4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
}  // namespace

// u8 x s8 quads with vpdpbusd (no saturation: the non-"s" form wraps modulo 2^32).
void quads_s32_vnni(const void* a_, int64_t as, const void* b_, int64_t groups, int32_t* out) {
  constexpr int kMr = kMrQuadsVnni;
  const uint8_t* a = static_cast<const uint8_t*>(a_);
  const int8_t* b = static_cast<const int8_t*>(b_);
  __m512i acc[kMr];
  for (auto& v : acc) v = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i bv = _mm512_loadu_si512(b + g * 4 * kNr);
    for (int r = 0; r < kMr; ++r) {
      acc[r] = _mm512_dpbusd_epi32(acc[r], broadcast_u8x4(a + r * as + 4 * g), bv);
    }
  }
  for (int r = 0; r < kMr; ++r) _mm512_storeu_si512(out + r * kNr, acc[r]);
}

namespace {
// kR rows x kP panels of vpdpbusd: kR * kP accumulators, kR + kP loads for kR * kP products.
template <int kR, int kP>
struct QuadsRP {
  static void run(const uint8_t* a, int64_t as, const int8_t* b, int64_t bs, int64_t groups,
                  int32_t* out) {
    __m512i acc[kR][kP];
    for (auto& row : acc) {
      for (auto& v : row) v = _mm512_setzero_si512();
    }
    for (int64_t g = 0; g < groups; ++g) {
      __m512i bv[kP];
      for (int p = 0; p < kP; ++p) bv[p] = _mm512_loadu_si512(b + p * bs + g * 4 * kNr);
      for (int r = 0; r < kR; ++r) {
        const __m512i av = broadcast_u8x4(a + r * as + 4 * g);
        for (int p = 0; p < kP; ++p) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], av, bv[p]);
      }
    }
    for (int p = 0; p < kP; ++p) {
      for (int r = 0; r < kR; ++r) {
        _mm512_storeu_si512(out + (p * kMrQuadsVnni + r) * kNr, acc[r][p]);
      }
    }
  }
};
}  // namespace

void quads_rows_vnni(const void* a, int64_t as, const void* b, int64_t bs, int64_t groups, int np,
                     int rows, int32_t* out) {
  dispatch_rp<QuadsRP>(np, rows, static_cast<const uint8_t*>(a), as, static_cast<const int8_t*>(b),
                       bs, groups, out);
}

namespace {
template <int NP>
void sparse_row(const uint8_t* a, const int32_t* quads, int64_t n_quads, const int8_t* panels,
                int64_t panel_stride, int32_t* out) {
  __m512i acc[NP];
  for (auto& v : acc) v = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t i = 0; i < n_quads; ++i) {
    const int64_t g = quads[i];
    // The prepared quad holds A + 128: flip back to the signed codes.
    const __m512i av = _mm512_xor_si512(broadcast_u8x4(a + 4 * g), flip);
    const int8_t* b = panels + g * 4 * kNr;
    for (int p = 0; p < NP; ++p) {
      const __m512i bv = _mm512_xor_si512(_mm512_loadu_si512(b + p * panel_stride), flip);
      acc[p] = _mm512_dpbusd_epi32(acc[p], bv, av);  // (B + 128) unsigned x A signed
    }
  }
  for (int p = 0; p < NP; ++p) _mm512_storeu_si512(out + p * kNr, acc[p]);
}

template <int... NP>
void sparse_row_np(int np, std::integer_sequence<int, NP...>, const uint8_t* a,
                   const int32_t* quads, int64_t n_quads, const int8_t* panels, int64_t ps,
                   int32_t* out) {
  ((np == NP + 1 ? sparse_row<NP + 1>(a, quads, n_quads, panels, ps, out) : void()), ...);
}
}  // namespace

SparseRow list_nonzero_quads_avx512(const uint8_t* a, int64_t groups, int32_t* list) {
  const __m512i zero_quad = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i bytes = _mm512_setzero_si512();  // 8 x uint64 sums of the bytes read
  int32_t n = 0;
  for (int64_t g0 = 0; g0 < groups; g0 += 16) {
    const int64_t left = groups - g0;
    const __mmask16 in = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512i v = _mm512_maskz_loadu_epi32(in, a + 4 * g0);
    const __mmask16 nz = _mm512_mask_cmpneq_epi32_mask(in, v, zero_quad);
    _mm512_mask_compressstoreu_epi32(
        list + n, nz, _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int32_t>(g0))));
    n += __builtin_popcount(nz);
    bytes = _mm512_add_epi64(bytes, _mm512_sad_epu8(v, _mm512_setzero_si512()));
  }
  // A zero quad's bytes are 4 x 128: sum over all read quads of (byte - 128) is the sum over the
  // listed ones.
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, bytes);
  uint64_t sum = 0;
  for (uint64_t l : lanes) sum += l;
  const uint32_t codes = static_cast<uint32_t>(sum - 512u * static_cast<uint64_t>(groups));
  return {n, codes * 128u};
}

void quads_sparse_row_vnni(const uint8_t* a, const int32_t* quads, int64_t n_quads,
                           const void* panels, int64_t panel_stride, int np, int32_t* out) {
  sparse_row_np(np, std::make_integer_sequence<int, kSparsePanels>{}, a, quads, n_quads,
                static_cast<const int8_t*>(panels), panel_stride, out);
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
