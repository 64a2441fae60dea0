#include "kernels/matmul.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"

namespace qsearch::kernels {

void matmul_f32(const MatMulParams& p, const float* a, const float* b, float* y) {
  int64_t batches = 1;
  for (int d = 0; d < p.batch_rank; ++d) batches *= p.batch_shape[d];
  const MatMulParams q = p;
  const int64_t rows = batches * p.m;
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, p.n * p.k));
  parallel_for(0, rows, grain, [&q, a, b, y](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t flat = r / q.m, i = r % q.m;
      int64_t rem = flat, a_off = 0, b_off = 0;
      for (int d = q.batch_rank - 1; d >= 0; --d) {
        const int64_t idx = rem % q.batch_shape[d];
        rem /= q.batch_shape[d];
        a_off += idx * q.a_batch_stride[d];
        b_off += idx * q.b_batch_stride[d];
      }
      const float* ar = a + a_off + i * q.k;
      const float* bm = b + b_off;
      float* yr = y + r * q.n;
      for (int64_t j = 0; j < q.n; ++j) yr[j] = 0.0f;
      // k outermost: each yr[j] is its own fma chain in ascending k; the j loop vectorises.
      for (int64_t k = 0; k < q.k; ++k) {
        const float av = ar[k];
        const float* br = bm + k * q.n;
        for (int64_t j = 0; j < q.n; ++j) yr[j] = std::fma(av, br[j], yr[j]);
      }
    }
  });
}

}  // namespace qsearch::kernels
