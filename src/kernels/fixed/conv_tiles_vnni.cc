// conv2d's AVX-512 VNNI pixel-major tile (gemm_tiles.h, conv_quads_s32_vnni), compiled with a
// target pragma; conv2d.cc calls it only for weights packed for Isa::kAvx512Vnni.
#include <cstring>

#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_* placeholders as (maybe-)uninitialized (as in
// gemm_tiles_avx512.cc).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")

namespace qsearch::kernels::fixed::detail {

namespace {

inline __m512i broadcast_quad(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// c += vpdpbusd(x unsigned bytes, a signed bytes), in place. Inline asm: with the intrinsic GCC
// 12 copied the 24 accumulators through other registers and the stack every quad.
inline void dpbusd(__m512i& c, __m512i x, __m512i a) {
  asm("vpdpbusd %[a], %[x], %[c]" : [c] "+v"(c) : [x] "v"(x), [a] "v"(a));
}

// kRows rows x kHalves * 16 lanes. Named accumulators: at most 12 x 2 = 24 zmm registers, the
// two code vectors and a broadcast, 27 of 32.
template <int kRows, int kHalves>
void conv_quads_rows(const int8_t* w, int64_t w_stride, const uint32_t* x4, const int64_t* goff,
                     int64_t groups, const int32_t* corr, int32_t* out) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i c00 = zero, c01 = zero;
  __m512i c10 = zero, c11 = zero;
  __m512i c20 = zero, c21 = zero;
  __m512i c30 = zero, c31 = zero;
  __m512i c40 = zero, c41 = zero;
  __m512i c50 = zero, c51 = zero;
  __m512i c60 = zero, c61 = zero;
  __m512i c70 = zero, c71 = zero;
  __m512i c80 = zero, c81 = zero;
  __m512i c90 = zero, c91 = zero;
  __m512i c100 = zero, c101 = zero;
  __m512i c110 = zero, c111 = zero;
  for (int64_t g = 0; g < groups; ++g) {
    const uint32_t* b = x4 + goff[g];
    // (codes as unsigned bytes) x (weights as signed bytes), 4 products per int32 lane, summed
    // without saturation (modulo 2^32).
    const __m512i x0 = _mm512_loadu_si512(b);
    const __m512i x1 = kHalves > 1 ? _mm512_loadu_si512(b + 16) : zero;
    const int8_t* wg = w + 4 * g;
    __m512i a;
    if constexpr (kRows > 0) {
      a = broadcast_quad(wg + 0 * w_stride);
      dpbusd(c00, x0, a);
      if constexpr (kHalves > 1) dpbusd(c01, x1, a);
    }
    if constexpr (kRows > 1) {
      a = broadcast_quad(wg + 1 * w_stride);
      dpbusd(c10, x0, a);
      if constexpr (kHalves > 1) dpbusd(c11, x1, a);
    }
    if constexpr (kRows > 2) {
      a = broadcast_quad(wg + 2 * w_stride);
      dpbusd(c20, x0, a);
      if constexpr (kHalves > 1) dpbusd(c21, x1, a);
    }
    if constexpr (kRows > 3) {
      a = broadcast_quad(wg + 3 * w_stride);
      dpbusd(c30, x0, a);
      if constexpr (kHalves > 1) dpbusd(c31, x1, a);
    }
    if constexpr (kRows > 4) {
      a = broadcast_quad(wg + 4 * w_stride);
      dpbusd(c40, x0, a);
      if constexpr (kHalves > 1) dpbusd(c41, x1, a);
    }
    if constexpr (kRows > 5) {
      a = broadcast_quad(wg + 5 * w_stride);
      dpbusd(c50, x0, a);
      if constexpr (kHalves > 1) dpbusd(c51, x1, a);
    }
    if constexpr (kRows > 6) {
      a = broadcast_quad(wg + 6 * w_stride);
      dpbusd(c60, x0, a);
      if constexpr (kHalves > 1) dpbusd(c61, x1, a);
    }
    if constexpr (kRows > 7) {
      a = broadcast_quad(wg + 7 * w_stride);
      dpbusd(c70, x0, a);
      if constexpr (kHalves > 1) dpbusd(c71, x1, a);
    }
    if constexpr (kRows > 8) {
      a = broadcast_quad(wg + 8 * w_stride);
      dpbusd(c80, x0, a);
      if constexpr (kHalves > 1) dpbusd(c81, x1, a);
    }
    if constexpr (kRows > 9) {
      a = broadcast_quad(wg + 9 * w_stride);
      dpbusd(c90, x0, a);
      if constexpr (kHalves > 1) dpbusd(c91, x1, a);
    }
    if constexpr (kRows > 10) {
      a = broadcast_quad(wg + 10 * w_stride);
      dpbusd(c100, x0, a);
      if constexpr (kHalves > 1) dpbusd(c101, x1, a);
    }
    if constexpr (kRows > 11) {
      a = broadcast_quad(wg + 11 * w_stride);
      dpbusd(c110, x0, a);
      if constexpr (kHalves > 1) dpbusd(c111, x1, a);
    }
  }
  auto store = [&](int r, __m512i lo, __m512i hi) {
    const __m512i c = _mm512_set1_epi32(corr[r]);
    _mm512_storeu_si512(out + r * 16, _mm512_sub_epi32(lo, c));
    if constexpr (kHalves > 1) {
      _mm512_storeu_si512(out + (kMrConvQuadsVnni + r) * 16, _mm512_sub_epi32(hi, c));
    }
  };
  if constexpr (kRows > 0) store(0, c00, c01);
  if constexpr (kRows > 1) store(1, c10, c11);
  if constexpr (kRows > 2) store(2, c20, c21);
  if constexpr (kRows > 3) store(3, c30, c31);
  if constexpr (kRows > 4) store(4, c40, c41);
  if constexpr (kRows > 5) store(5, c50, c51);
  if constexpr (kRows > 6) store(6, c60, c61);
  if constexpr (kRows > 7) store(7, c70, c71);
  if constexpr (kRows > 8) store(8, c80, c81);
  if constexpr (kRows > 9) store(9, c90, c91);
  if constexpr (kRows > 10) store(10, c100, c101);
  if constexpr (kRows > 11) store(11, c110, c111);
}

template <int kHalves>
void conv_quads_halves(const int8_t* w, int64_t w_stride, const uint32_t* x4, const int64_t* goff,
                       int64_t groups, int rows, const int32_t* corr, int32_t* out) {
  static_assert(kMrConvQuadsVnni == 12);
  switch (rows) {
    case 1:
      return conv_quads_rows<1, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 2:
      return conv_quads_rows<2, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 3:
      return conv_quads_rows<3, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 4:
      return conv_quads_rows<4, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 5:
      return conv_quads_rows<5, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 6:
      return conv_quads_rows<6, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 7:
      return conv_quads_rows<7, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 8:
      return conv_quads_rows<8, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 9:
      return conv_quads_rows<9, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 10:
      return conv_quads_rows<10, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    case 11:
      return conv_quads_rows<11, kHalves>(w, w_stride, x4, goff, groups, corr, out);
    default:
      return conv_quads_rows<12, kHalves>(w, w_stride, x4, goff, groups, corr, out);
  }
}

}  // namespace

void conv_quads_s32_vnni(const int8_t* w, int64_t w_stride, const uint32_t* x4, const int64_t* goff,
                         int64_t groups, int rows, int halves, const int32_t* corr, int32_t* out) {
  if (halves == 1) return conv_quads_halves<1>(w, w_stride, x4, goff, groups, rows, corr, out);
  return conv_quads_halves<2>(w, w_stride, x4, goff, groups, rows, corr, out);
}

void depthwise_u8_vnni(const uint8_t* xp, const int32_t* wquads, const int64_t* off, int64_t quads,
                       int64_t passes, int32_t init, int32_t* out) {
  for (int64_t b = 0; b < passes; ++b) {
    const uint8_t* x = xp + b * 64;
    // a[k]'s 128-bit lane L sums positions 16L + 4k .. 16L + 4k + 3.
    __m512i a0 = _mm512_set1_epi32(init), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t q = 0; q < quads; ++q) {
      const int64_t* o = off + 4 * q;
      const __m512i t0 = _mm512_loadu_si512(x + o[0]), t1 = _mm512_loadu_si512(x + o[1]);
      const __m512i t2 = _mm512_loadu_si512(x + o[2]), t3 = _mm512_loadu_si512(x + o[3]);
      // Per 128-bit lane: the bytes of taps 0 and 1 (2 and 3) interleaved, positions 0-7 (lo)
      // and 8-15 (hi); then their 16-bit pairs interleaved: the quads of 4 positions each.
      const __m512i lo01 = _mm512_unpacklo_epi8(t0, t1), hi01 = _mm512_unpackhi_epi8(t0, t1);
      const __m512i lo23 = _mm512_unpacklo_epi8(t2, t3), hi23 = _mm512_unpackhi_epi8(t2, t3);
      const __m512i w = _mm512_set1_epi32(wquads[q]);
      dpbusd(a0, _mm512_unpacklo_epi16(lo01, lo23), w);
      dpbusd(a1, _mm512_unpackhi_epi16(lo01, lo23), w);
      dpbusd(a2, _mm512_unpacklo_epi16(hi01, hi23), w);
      dpbusd(a3, _mm512_unpackhi_epi16(hi01, hi23), w);
    }
    // The 4 x 4 transpose of 128-bit lanes: output vector L = lane L of a0, a1, a2, a3.
    const __m512i t0 = _mm512_shuffle_i32x4(a0, a1, 0x44), t1 = _mm512_shuffle_i32x4(a2, a3, 0x44);
    const __m512i t2 = _mm512_shuffle_i32x4(a0, a1, 0xee), t3 = _mm512_shuffle_i32x4(a2, a3, 0xee);
    int32_t* d = out + b * 64;
    _mm512_storeu_si512(d, _mm512_shuffle_i32x4(t0, t1, 0x88));
    _mm512_storeu_si512(d + 16, _mm512_shuffle_i32x4(t0, t1, 0xdd));
    _mm512_storeu_si512(d + 32, _mm512_shuffle_i32x4(t2, t3, 0x88));
    _mm512_storeu_si512(d + 48, _mm512_shuffle_i32x4(t2, t3, 0xdd));
  }
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
