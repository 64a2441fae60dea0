#include "kernels/ref/gemm.h"

#include "core/check.h"

namespace qsearch::kernels::ref {

void gemm_f32(const GemmParams& p, const float* a, const float* b, const float* c, float* y) {
  QSEARCH_DCHECK(p.m >= 0 && p.n >= 0 && p.k >= 0);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < p.k; ++k) {
        double av = p.trans_a ? a[k * p.m + i] : a[i * p.k + k];
        double bv = p.trans_b ? b[j * p.k + k] : b[k * p.n + j];
        acc += av * bv;
      }
      double v = static_cast<double>(p.alpha) * acc;
      if (c != nullptr) {
        v += static_cast<double>(p.beta) * c[i * p.c_stride_m + j * p.c_stride_n];
      }
      y[i * p.n + j] = static_cast<float>(v);
    }
  }
}

void matmul_f32(const MatMulParams& p, const float* a, const float* b, float* y) {
  QSEARCH_DCHECK(p.batch_rank >= 0 && p.batch_rank <= kMaxRank);
  int64_t batches = 1;
  for (int d = 0; d < p.batch_rank; ++d) batches *= p.batch_shape[d];
  for (int64_t flat = 0; flat < batches; ++flat) {
    // Decompose the flat batch index into per-dim indices, last dim fastest.
    int64_t rem = flat, a_off = 0, b_off = 0;
    for (int d = p.batch_rank - 1; d >= 0; --d) {
      int64_t idx = rem % p.batch_shape[d];
      rem /= p.batch_shape[d];
      a_off += idx * p.a_batch_stride[d];
      b_off += idx * p.b_batch_stride[d];
    }
    const float* am = a + a_off;
    const float* bm = b + b_off;
    float* ym = y + flat * p.m * p.n;
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < p.k; ++k) {
          acc += static_cast<double>(am[i * p.k + k]) * static_cast<double>(bm[k * p.n + j]);
        }
        ym[i * p.n + j] = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace qsearch::kernels::ref
