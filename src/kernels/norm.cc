#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"

namespace qsearch::kernels {

namespace {
constexpr int64_t kGrain = 1 << 14;  // elements per chunk, as the elementwise kernels

int64_t row_grain(int64_t per_row) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, per_row));
}
}  // namespace

void reduce_f32(const ReduceParams& p, const float* x, float* y) {
  const ReduceParams q = p;
  parallel_for(0, p.outer, row_grain(p.axis * p.inner), [&q, x, y](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const float* xo = x + o * q.axis * q.inner;
      float* yo = y + o * q.inner;
      if (q.op == ReduceOp::kMax) {
        for (int64_t i = 0; i < q.inner; ++i) yo[i] = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < q.axis; ++a) {
          for (int64_t i = 0; i < q.inner; ++i) {
            const float v = xo[a * q.inner + i];
            yo[i] = std::isnan(v) || std::isnan(yo[i]) ? std::numeric_limits<float>::quiet_NaN()
                                                       : std::max(yo[i], v);
          }
        }
        continue;
      }
      for (int64_t i = 0; i < q.inner; ++i) yo[i] = 0.0f;
      for (int64_t a = 0; a < q.axis; ++a) {
        for (int64_t i = 0; i < q.inner; ++i) yo[i] += xo[a * q.inner + i];
      }
      if (q.op == ReduceOp::kMean) {
        const float n = static_cast<float>(q.axis);
        for (int64_t i = 0; i < q.inner; ++i) yo[i] /= n;
      }
    }
  });
}

void layer_norm_f32(const LayerNormParams& p, const float* x, const float* scale, const float* bias,
                    float* y) {
  const LayerNormParams q = p;
  parallel_for(0, p.rows, row_grain(p.n), [&q, x, scale, bias, y](int64_t begin, int64_t end) {
    const float n = static_cast<float>(q.n);
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * q.n;
      float* yr = y + r * q.n;
      float sum = 0.0f;
      for (int64_t j = 0; j < q.n; ++j) sum += xr[j];
      const float mean = sum / n;
      float sq = 0.0f;
      for (int64_t j = 0; j < q.n; ++j) {
        const float d = xr[j] - mean;
        sq = std::fma(d, d, sq);
      }
      const float inv = 1.0f / std::sqrt(sq / n + q.epsilon);
      for (int64_t j = 0; j < q.n; ++j) {
        const float v = (xr[j] - mean) * inv;
        yr[j] = std::fma(v, scale[j], bias != nullptr ? bias[j] : 0.0f);
      }
    }
  });
}

void softmax_f32(const SoftmaxParams& p, const float* x, float* y) {
  const SoftmaxParams q = p;
  parallel_for(0, p.outer, row_grain(p.axis * p.inner), [&q, x, y](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t in = 0; in < q.inner; ++in) {
        const float* xs = x + o * q.axis * q.inner + in;
        float* ys = y + o * q.axis * q.inner + in;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < q.axis; ++a) mx = std::max(mx, xs[a * q.inner]);
        float sum = 0.0f;
        for (int64_t a = 0; a < q.axis; ++a) {
          const float e = std::exp(xs[a * q.inner] - mx);
          ys[a * q.inner] = e;
          sum += e;
        }
        const float inv = 1.0f / sum;
        for (int64_t a = 0; a < q.axis; ++a) ys[a * q.inner] *= inv;
      }
    }
  });
}

}  // namespace qsearch::kernels
