// Internal: small AVX2 helpers shared by the float kernels (the build's baseline ISA).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace qsearch::kernels::detail {

// Lane mask with the first n (0..8) lanes set.
inline __m256i first_lanes8(int64_t n) {
  alignas(32) static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  n = n < 0 ? 0 : (n > 8 ? 8 : n);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

// dst[0, min(n, 8)) = the first lanes of v. A partial vector goes through the stack and scalar
// stores: vmaskmovps stores are slow on AMD's cores (Zen 3: a third of a depthwise conv's time).
inline void store_first8(float* dst, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(dst, v);
    return;
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  for (int64_t i = 0; i < n; ++i) dst[i] = t[i];
}

// dst[0, n) = src[0, n) for short runs (a row of a small image): inline vector moves instead
// of a call to memmove (scalar moves for the tail, see store_first8). The ranges must not
// overlap.
inline void copy_floats(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// max(a, b) that returns NaN when either is NaN (like PyTorch's max pooling).
inline __m256 nan_max8(__m256 a, __m256 b) {
  const __m256 m = _mm256_max_ps(a, b);  // b when either is NaN
  return _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

// In-register transpose of an 8x8 block of floats: v[i][j] becomes v[j][i] (row i's 8 values in
// v[i] become column i's lanes).
inline void transpose8x8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

}  // namespace qsearch::kernels::detail
