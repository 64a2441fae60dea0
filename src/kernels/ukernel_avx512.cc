// AVX-512F microkernel: 8 x 32 tile (16 zmm accumulators, 2 B vectors, 1 broadcast). Compiled
// with a target attribute on top of the x86-64-v3 baseline; only called when the CPU has
// AVX-512F (ukernel_for checks).
#include <immintrin.h>

#include "kernels/ukernel.h"

#define QSEARCH_AVX512 __attribute__((target("avx512f")))

namespace qsearch::kernels::detail {

namespace {

constexpr int kMr = 8;
constexpr int kNv = 2;  // vectors of 16 floats per row
constexpr int kNr = kNv * 16;

QSEARCH_AVX512 inline __mmask16 first_lanes(int n) {
  n = n < 0 ? 0 : (n > 16 ? 16 : n);
  return static_cast<__mmask16>((1u << n) - 1u);
}

template <bool kIndirect>
QSEARCH_AVX512 void ukernel_8x32(int64_t kc, const float* a, const float* b,
                                 const int64_t* b_offsets, float* c, int64_t ldc, int mr, int nr,
                                 bool accumulate, const TileEpilogue* ep) {
  __mmask16 mask[kNv];
#pragma GCC unroll 2
  for (int v = 0; v < kNv; ++v) mask[v] = first_lanes(nr - v * 16);

  __m512 acc[kMr][kNv];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      acc[i][v] = accumulate && i < mr ? _mm512_maskz_loadu_ps(mask[v], c + i * ldc + v * 16)
                                       : _mm512_setzero_ps();
    }
  }

  for (int64_t k = 0; k < kc; ++k) {
    // Packed panels are aligned and k-major; indirect rows are anywhere (unaligned).
    const float* bk = kIndirect ? b + b_offsets[k] : b;
    const __m512 b0 = kIndirect ? _mm512_loadu_ps(bk) : _mm512_load_ps(bk);
    const __m512 b1 = kIndirect ? _mm512_loadu_ps(bk + 16) : _mm512_load_ps(bk + 16);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += kMr;
    if (!kIndirect) b += kNr;
  }

  if (ep != nullptr) {
    const __m512 alpha = _mm512_set1_ps(ep->alpha);
    const __m512 lo = _mm512_set1_ps(ep->lo);
    const __m512 hi = _mm512_set1_ps(ep->hi);
    __m512 col_bias[kNv];
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      col_bias[v] = ep->bias != nullptr && !ep->bias_per_row
                        ? _mm512_maskz_loadu_ps(mask[v], ep->bias + v * 16)
                        : _mm512_setzero_ps();
    }
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      if (i >= mr) break;
      const __m512 row_bias = ep->bias != nullptr && ep->bias_per_row ? _mm512_set1_ps(ep->bias[i])
                                                                      : _mm512_setzero_ps();
#pragma GCC unroll 2
      for (int v = 0; v < kNv; ++v) {
        __m512 x = _mm512_fmadd_ps(acc[i][v], alpha, ep->bias_per_row ? row_bias : col_bias[v]);
        const __m512 r =
            ep->residual != nullptr
                ? _mm512_maskz_loadu_ps(mask[v], ep->residual + i * ep->residual_stride + v * 16)
                : _mm512_setzero_ps();
        if (!ep->residual_after_clamp) x = _mm512_add_ps(x, r);
        // max/min return their second operand when either is NaN: NaN in x propagates.
        x = _mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), lo, x);
        x = _mm512_maskz_min_ps(static_cast<__mmask16>(0xFFFF), hi, x);
        acc[i][v] = ep->residual_after_clamp ? _mm512_add_ps(x, r) : x;
      }
    }
  }

#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) _mm512_mask_storeu_ps(c + i * ldc + v * 16, mask[v], acc[i][v]);
  }
}

}  // namespace

const UKernelInfo& ukernel_avx512() {
  static const UKernelInfo info{kMr, kNr, &ukernel_8x32<false>, &ukernel_8x32<true>};
  return info;
}

}  // namespace qsearch::kernels::detail
