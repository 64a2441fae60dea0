// Internal to src/train: sums in double over eight lanes, for the per-channel (BatchNorm) and
// per-row (LayerNorm) statistics of the training kernels.
#pragma once

#include <cstdint>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace qsearch::train::detail {

// Sums in double over eight lanes: element i of a run goes to lane i % 8 (a run's tail to lanes
// 0, 1, ...), runs accumulate into the same lanes, and total() adds the lanes in a fixed tree.
// The order depends on the shapes only (never on threads); the AVX2 and scalar bodies do the
// same double operations, so they give the same bits.
struct Lanes8 {
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  double total() const { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }
};

// acc += x[i]
inline void lanes_sum(Lanes8& acc, const float* x, int64_t n) {
  int64_t i = 0;
#ifdef __AVX2__
  __m256d a0 = _mm256_loadu_pd(acc.v), a1 = _mm256_loadu_pd(acc.v + 4);
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
  }
  _mm256_storeu_pd(acc.v, a0);
  _mm256_storeu_pd(acc.v + 4, a1);
#else
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc.v[l] += x[i + l];
  }
#endif
  for (int l = 0; i < n; ++i, ++l) acc.v[l] += x[i];
}

// s1 += x[i] - shift;  s2 += (x[i] - shift)^2  (one pass for a mean and a variance: with a
// shift near the mean, S2 - S1^2 / n loses nothing that matters in double)
inline void lanes_shifted_moments(Lanes8& s1, Lanes8& s2, const float* x, int64_t n, double shift) {
  int64_t i = 0;
#ifdef __AVX2__
  const __m256d k = _mm256_set1_pd(shift);
  __m256d a0 = _mm256_loadu_pd(s1.v), a1 = _mm256_loadu_pd(s1.v + 4);
  __m256d b0 = _mm256_loadu_pd(s2.v), b1 = _mm256_loadu_pd(s2.v + 4);
  for (; i + 8 <= n; i += 8) {
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), k);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), k);
    a0 = _mm256_add_pd(a0, d0);
    a1 = _mm256_add_pd(a1, d1);
    b0 = _mm256_add_pd(b0, _mm256_mul_pd(d0, d0));
    b1 = _mm256_add_pd(b1, _mm256_mul_pd(d1, d1));
  }
  _mm256_storeu_pd(s1.v, a0);
  _mm256_storeu_pd(s1.v + 4, a1);
  _mm256_storeu_pd(s2.v, b0);
  _mm256_storeu_pd(s2.v + 4, b1);
#else
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) {
      const double d = x[i + l] - shift;
      s1.v[l] += d;
      s2.v[l] += d * d;
    }
  }
#endif
  for (int l = 0; i < n; ++i, ++l) {
    const double d = x[i] - shift;
    s1.v[l] += d;
    s2.v[l] += d * d;
  }
}

// acc += (x[i] - mean)^2
inline void lanes_sum_sq_dev(Lanes8& acc, const float* x, int64_t n, double mean) {
  int64_t i = 0;
#ifdef __AVX2__
  const __m256d m = _mm256_set1_pd(mean);
  __m256d a0 = _mm256_loadu_pd(acc.v), a1 = _mm256_loadu_pd(acc.v + 4);
  for (; i + 8 <= n; i += 8) {
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m);
    a0 = _mm256_add_pd(a0, _mm256_mul_pd(d0, d0));
    a1 = _mm256_add_pd(a1, _mm256_mul_pd(d1, d1));
  }
  _mm256_storeu_pd(acc.v, a0);
  _mm256_storeu_pd(acc.v + 4, a1);
#else
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) {
      const double d = x[i + l] - mean;
      acc.v[l] += d * d;
    }
  }
#endif
  for (int l = 0; i < n; ++i, ++l) {
    const double d = x[i] - mean;
    acc.v[l] += d * d;
  }
}

// The norm gradients' row sums, g = dy[i] (BatchNorm) or dy[i] * scale[i] (LayerNorm, kScaled):
// sg += g;  sgx += g * ((x[i] - mean) * invstd)
template <bool kScaled>
inline void lanes_norm_grad(Lanes8& sg, Lanes8& sgx, const float* x, const float* dy,
                            const float* scale, int64_t n, double mean, double invstd) {
  const auto g_of = [&](int64_t j) {
    if constexpr (kScaled) return static_cast<double>(dy[j]) * scale[j];
    return static_cast<double>(dy[j]);
  };
  int64_t i = 0;
#ifdef __AVX2__
  const auto g_vec = [&](int64_t j) {
    const __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(dy + j));
    if constexpr (kScaled) return _mm256_mul_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(scale + j)));
    return d;
  };
  const __m256d m = _mm256_set1_pd(mean), is = _mm256_set1_pd(invstd);
  __m256d s0 = _mm256_loadu_pd(sg.v), s1 = _mm256_loadu_pd(sg.v + 4);
  __m256d t0 = _mm256_loadu_pd(sgx.v), t1 = _mm256_loadu_pd(sgx.v + 4);
  for (; i + 8 <= n; i += 8) {
    const __m256d g0 = g_vec(i), g1 = g_vec(i + 4);
    const __m256d h0 = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), m), is);
    const __m256d h1 =
        _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), m), is);
    s0 = _mm256_add_pd(s0, g0);
    s1 = _mm256_add_pd(s1, g1);
    t0 = _mm256_add_pd(t0, _mm256_mul_pd(g0, h0));
    t1 = _mm256_add_pd(t1, _mm256_mul_pd(g1, h1));
  }
  _mm256_storeu_pd(sg.v, s0);
  _mm256_storeu_pd(sg.v + 4, s1);
  _mm256_storeu_pd(sgx.v, t0);
  _mm256_storeu_pd(sgx.v + 4, t1);
#endif
  // Lane l takes elements l, l + 8, ... (the vector loop's order) and the tail's.
  for (int64_t j = i; j < n; ++j) {
    const int l = static_cast<int>((j - i) % 8);
    const double g = g_of(j);
    sg.v[l] += g;
    sgx.v[l] += g * ((x[j] - mean) * invstd);
  }
}

// BatchNorm's plane sums: sg += g[i];  sgx += g[i] * ((x[i] - mean) * invstd)
inline void lanes_bn_grad(Lanes8& sg, Lanes8& sgx, const float* x, const float* g, int64_t n,
                          double mean, double invstd) {
  lanes_norm_grad<false>(sg, sgx, x, g, nullptr, n, mean, invstd);
}

// LayerNorm's row sums: g = dy[i] * scale[i];  sg += g;  sgx += g * ((x[i] - mean) * invstd)
inline void lanes_ln_grad(Lanes8& sg, Lanes8& sgx, const float* x, const float* dy,
                          const float* scale, int64_t n, double mean, double invstd) {
  lanes_norm_grad<true>(sg, sgx, x, dy, scale, n, mean, invstd);
}

}  // namespace qsearch::train::detail
