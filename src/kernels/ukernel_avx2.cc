// AVX2 + FMA microkernel: 6 x 16 tile (12 ymm accumulators, 2 B vectors, 1 broadcast).
#include <immintrin.h>

#include "kernels/ukernel.h"

namespace qsearch::kernels::detail {

namespace {

constexpr int kMr = 6;
constexpr int kNv = 2;  // vectors of 8 floats per row
constexpr int kNr = kNv * 8;

// Lane mask with the first n (0..8) lanes set.
__m256i first_lanes(int n) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  n = n < 0 ? 0 : (n > 8 ? 8 : n);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

template <bool kIndirect>
void ukernel_6x16(int64_t kc, const float* a, const float* b, const int64_t* b_offsets, float* c,
                  int64_t ldc, int mr, int nr, bool accumulate, const TileEpilogue* ep) {
  const bool full = nr == kNr;
  __m256i mask[kNv];
#pragma GCC unroll 2
  for (int v = 0; v < kNv; ++v) mask[v] = first_lanes(nr - v * 8);

  __m256 acc[kMr][kNv];
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      if (accumulate && i < mr) {
        acc[i][v] = full ? _mm256_loadu_ps(c + i * ldc + v * 8)
                         : _mm256_maskload_ps(c + i * ldc + v * 8, mask[v]);
      } else {
        acc[i][v] = _mm256_setzero_ps();
      }
    }
  }

  for (int64_t k = 0; k < kc; ++k) {
    // Packed panels are aligned and k-major; indirect rows are anywhere (unaligned).
    const float* bk = kIndirect ? b + b_offsets[k] : b;
    const __m256 b0 = kIndirect ? _mm256_loadu_ps(bk) : _mm256_load_ps(bk);
    const __m256 b1 = kIndirect ? _mm256_loadu_ps(bk + 8) : _mm256_load_ps(bk + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += kMr;
    if (!kIndirect) b += kNr;
  }

  if (ep != nullptr) {
    const __m256 alpha = _mm256_set1_ps(ep->alpha);
    const __m256 lo = _mm256_set1_ps(ep->lo);
    const __m256 hi = _mm256_set1_ps(ep->hi);
    __m256 col_bias[kNv];
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      col_bias[v] = ep->bias != nullptr && !ep->bias_per_row
                        ? _mm256_maskload_ps(ep->bias + v * 8, mask[v])
                        : _mm256_setzero_ps();
    }
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      if (i >= mr) break;
      const __m256 row_bias = ep->bias != nullptr && ep->bias_per_row
                                  ? _mm256_broadcast_ss(ep->bias + i)
                                  : _mm256_setzero_ps();
#pragma GCC unroll 2
      for (int v = 0; v < kNv; ++v) {
        __m256 x = _mm256_fmadd_ps(acc[i][v], alpha, ep->bias_per_row ? row_bias : col_bias[v]);
        const __m256 r =
            ep->residual != nullptr
                ? _mm256_maskload_ps(ep->residual + i * ep->residual_stride + v * 8, mask[v])
                : _mm256_setzero_ps();
        if (!ep->residual_after_clamp) x = _mm256_add_ps(x, r);
        // max/min return their second operand when either is NaN: NaN in x propagates.
        x = _mm256_max_ps(lo, x);
        x = _mm256_min_ps(hi, x);
        acc[i][v] = ep->residual_after_clamp ? _mm256_add_ps(x, r) : x;
      }
    }
  }

#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 2
    for (int v = 0; v < kNv; ++v) {
      if (full || nr >= (v + 1) * 8) {
        _mm256_storeu_ps(c + i * ldc + v * 8, acc[i][v]);
      } else if (nr > v * 8) {
        // Not vmaskmovps: its stores are slow on AMD's cores.
        alignas(32) float t[8];
        _mm256_store_ps(t, acc[i][v]);
        for (int e = 0; e < nr - v * 8; ++e) c[i * ldc + v * 8 + e] = t[e];
      }
    }
  }
}

}  // namespace

const UKernelInfo& ukernel_avx2() {
  static const UKernelInfo info{kMr, kNr, &ukernel_6x16<false>, &ukernel_6x16<true>};
  return info;
}

}  // namespace qsearch::kernels::detail
