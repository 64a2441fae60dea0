#include "kernels/ref/norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsearch::kernels::ref {

void reduce_f32(const ReduceParams& p, const float* x, float* y) {
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t in = 0; in < p.inner; ++in) {
      const float* xs = x + o * p.axis * p.inner + in;
      if (p.op == ReduceOp::kMax) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < p.axis; ++a) {
          const float v = xs[a * p.inner];
          m = std::isnan(v) || std::isnan(m) ? std::numeric_limits<float>::quiet_NaN()
                                             : std::max(m, v);
        }
        y[o * p.inner + in] = m;
        continue;
      }
      double sum = 0.0;
      for (int64_t a = 0; a < p.axis; ++a) sum += xs[a * p.inner];
      if (p.op == ReduceOp::kMean) sum /= static_cast<double>(p.axis);
      y[o * p.inner + in] = static_cast<float>(sum);
    }
  }
}

void layer_norm_f32(const LayerNormParams& p, const float* x, const float* scale, const float* bias,
                    float* y) {
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* xr = x + r * p.n;
    float* yr = y + r * p.n;
    double mean = 0.0;
    for (int64_t j = 0; j < p.n; ++j) mean += xr[j];
    mean /= static_cast<double>(p.n);
    double var = 0.0;
    for (int64_t j = 0; j < p.n; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<double>(p.n);
    const double inv = 1.0 / std::sqrt(var + static_cast<double>(p.epsilon));
    for (int64_t j = 0; j < p.n; ++j) {
      const double v = (xr[j] - mean) * inv * scale[j] + (bias != nullptr ? bias[j] : 0.0);
      yr[j] = static_cast<float>(v);
    }
  }
}

}  // namespace qsearch::kernels::ref
