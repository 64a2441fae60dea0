#include "kernels/matmul.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"

#ifdef __AVX2__
#include <immintrin.h>

#include "kernels/simd_util.h"
#endif

namespace qsearch::kernels {

namespace {

// Rows of A per task: a tile of R rows shares every load of B.
constexpr int64_t kTileRows = 4;

#ifdef __AVX2__
// y[r, j0 : j0 + 16) for R rows: two column vectors (the second, or both, masked at the end of
// the row), each output its own fma chain over ascending k, kept in a register.
template <int R>
void tile16(const float* a, int64_t k, const float* b, int64_t n, float* y, int64_t j0) {
  const int64_t w = std::min<int64_t>(16, n - j0);
  const __m256i m0 = detail::first_lanes8(w), m1 = detail::first_lanes8(w - 8);
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  const float* bj = b + j0;
  if (w == 16) {
    for (int64_t q = 0; q < k; ++q) {
      const __m256 b0 = _mm256_loadu_ps(bj + q * n), b1 = _mm256_loadu_ps(bj + q * n + 8);
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r * k + q);
        acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
      }
    }
  } else if (w > 8) {
    for (int64_t q = 0; q < k; ++q) {
      const __m256 b0 = _mm256_loadu_ps(bj + q * n), b1 = _mm256_maskload_ps(bj + q * n + 8, m1);
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r * k + q);
        acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
      }
    }
  } else {
    for (int64_t q = 0; q < k; ++q) {
      const __m256 b0 = _mm256_maskload_ps(bj + q * n, m0);
      for (int r = 0; r < R; ++r) {
        acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * k + q), b0, acc0[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    float* yr = y + r * n + j0;
    if (w == 16) {
      _mm256_storeu_ps(yr, acc0[r]);
      _mm256_storeu_ps(yr + 8, acc1[r]);
    } else {
      _mm256_maskstore_ps(yr, m0, acc0[r]);
      if (w > 8) _mm256_maskstore_ps(yr + 8, m1, acc1[r]);
    }
  }
}

template <int R>
void rows_avx2(const float* a, int64_t k, const float* b, int64_t n, float* y) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) tile16<R>(a, k, b, n, y, j0);
}
#endif

// `rows` (1..kTileRows) rows of one batch's product: y[i, :] = a[i, :] @ b.
void matmul_rows(const float* a, int64_t k, const float* b, int64_t n, float* y, int64_t rows) {
#ifdef __AVX2__
  switch (rows) {
    case 1:
      return rows_avx2<1>(a, k, b, n, y);
    case 2:
      return rows_avx2<2>(a, k, b, n, y);
    case 3:
      return rows_avx2<3>(a, k, b, n, y);
    default:
      return rows_avx2<4>(a, k, b, n, y);
  }
#else
  for (int64_t i = 0; i < rows; ++i) {
    const float* ar = a + i * k;
    float* yr = y + i * n;
    for (int64_t j = 0; j < n; ++j) yr[j] = 0.0f;
    // k outermost: each yr[j] is its own fma chain in ascending k; the j loop vectorises.
    for (int64_t q = 0; q < k; ++q) {
      const float av = ar[q];
      const float* br = b + q * n;
      for (int64_t j = 0; j < n; ++j) yr[j] = std::fma(av, br[j], yr[j]);
    }
  }
#endif
}

}  // namespace

void matmul_f32(const MatMulParams& p, const float* a, const float* b, float* y) {
  int64_t batches = 1;
  for (int d = 0; d < p.batch_rank; ++d) batches *= p.batch_shape[d];
  if (batches == 0 || p.m == 0 || p.n == 0) return;
  const MatMulParams q = p;
  const int64_t tiles_per_batch = (p.m + kTileRows - 1) / kTileRows;
  const int64_t grain =
      std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, kTileRows * p.n * p.k));
  parallel_for(0, batches * tiles_per_batch, grain,
               [&q, a, b, y, tiles_per_batch](int64_t begin, int64_t end) {
                 for (int64_t t = begin; t < end; ++t) {
                   const int64_t flat = t / tiles_per_batch;
                   const int64_t i0 = (t % tiles_per_batch) * kTileRows;
                   int64_t rem = flat, a_off = 0, b_off = 0;
                   for (int d = q.batch_rank - 1; d >= 0; --d) {
                     const int64_t idx = rem % q.batch_shape[d];
                     rem /= q.batch_shape[d];
                     a_off += idx * q.a_batch_stride[d];
                     b_off += idx * q.b_batch_stride[d];
                   }
                   matmul_rows(a + a_off + i0 * q.k, q.k, b + b_off, q.n,
                               y + (flat * q.m + i0) * q.n, std::min(kTileRows, q.m - i0));
                 }
               });
}

}  // namespace qsearch::kernels
