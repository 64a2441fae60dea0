// AVX-512BW and AVX-512 VNNI tiles, compiled with target pragmas; gemm.cc calls them only when
// cpu_supports() says the CPU has them.
#include <cstring>
#include <utility>

#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders (used by the cast/extract/convert
// intrinsics) as maybe-uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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
