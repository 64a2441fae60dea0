#include "kernels/norm.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/vec_math.h"

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

#ifdef __AVX2__
namespace {

float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

float hsum8(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// One contiguous softmax row (inner == 1): lane-wise max, exp and sum, then the scale.
void softmax_row(const float* x, float* y, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const int64_t body = n & ~int64_t{7};
  const __m256i tail = detail::first_lanes8(n - body);
  __m256 m8 = ninf;
  for (int64_t a = 0; a < body; a += 8) m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + a));
  if (body < n) {
    const __m256 v = _mm256_maskload_ps(x + body, tail);
    m8 = _mm256_max_ps(m8, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tail)));
  }
  const __m256 mx = _mm256_set1_ps(hmax8(m8));
  __m256 s8 = _mm256_setzero_ps();
  for (int64_t a = 0; a < body; a += 8) {
    const __m256 e = detail::exp8(_mm256_sub_ps(_mm256_loadu_ps(x + a), mx));
    _mm256_storeu_ps(y + a, e);
    s8 = _mm256_add_ps(s8, e);
  }
  if (body < n) {
    const __m256 e =
        _mm256_and_ps(detail::exp8(_mm256_sub_ps(_mm256_maskload_ps(x + body, tail), mx)),
                      _mm256_castsi256_ps(tail));
    _mm256_maskstore_ps(y + body, tail, e);
    s8 = _mm256_add_ps(s8, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum8(s8));
  for (int64_t a = 0; a < body; a += 8) {
    _mm256_storeu_ps(y + a, _mm256_mul_ps(_mm256_loadu_ps(y + a), inv));
  }
  if (body < n) {
    _mm256_maskstore_ps(y + body, tail, _mm256_mul_ps(_mm256_maskload_ps(y + body, tail), inv));
  }
}

// Softmax over a strided axis for `w` (1..8) adjacent inner positions at once, one lane each.
void softmax_lanes(const float* x, float* y, int64_t axis, int64_t inner, int64_t w) {
  const __m256i m = detail::first_lanes8(w);
  __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t a = 0; a < axis; ++a) {
    mx = _mm256_max_ps(mx, _mm256_maskload_ps(x + a * inner, m));
  }
  __m256 s = _mm256_setzero_ps();
  for (int64_t a = 0; a < axis; ++a) {
    const __m256 e = detail::exp8(_mm256_sub_ps(_mm256_maskload_ps(x + a * inner, m), mx));
    _mm256_maskstore_ps(y + a * inner, m, e);
    s = _mm256_add_ps(s, e);
  }
  const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), s);
  for (int64_t a = 0; a < axis; ++a) {
    _mm256_maskstore_ps(y + a * inner, m, _mm256_mul_ps(_mm256_maskload_ps(y + a * inner, m), inv));
  }
}

// One layer-norm row. The mean is carried as mh + c: mh = fl(sum / n) and c = sum(x - mh) / n,
// its correction, so that x - mean = (x - mh) - c keeps its relative accuracy even for x next to
// the mean (fl(mean) alone is off by up to half an ulp of |mean|, which can dwarf |x - mean|);
// var = sum (x - mh)^2 / n - c^2. Sums in 8 lanes, then added across.
void layer_norm_row(const float* x, const float* scale, const float* bias, float* y, int64_t n,
                    float epsilon) {
  const int64_t body = n & ~int64_t{7};
  const __m256i tail = detail::first_lanes8(n - body);
  __m256 s8 = _mm256_setzero_ps();
  for (int64_t j = 0; j < body; j += 8) s8 = _mm256_add_ps(s8, _mm256_loadu_ps(x + j));
  if (body < n) s8 = _mm256_add_ps(s8, _mm256_maskload_ps(x + body, tail));
  const float fn = static_cast<float>(n);
  const __m256 mh = _mm256_set1_ps(hsum8(s8) / fn);
  __m256 c8 = _mm256_setzero_ps(), q8 = _mm256_setzero_ps();
  for (int64_t j = 0; j < body; j += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + j), mh);
    c8 = _mm256_add_ps(c8, d);
    q8 = _mm256_fmadd_ps(d, d, q8);
  }
  if (body < n) {
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + body, tail), mh),
                                   _mm256_castsi256_ps(tail));
    c8 = _mm256_add_ps(c8, d);
    q8 = _mm256_fmadd_ps(d, d, q8);
  }
  const float c = hsum8(c8) / fn;
  const float var = std::max(0.0f, hsum8(q8) / fn - c * c);
  const __m256 inv = _mm256_set1_ps(1.0f / std::sqrt(var + epsilon));
  const __m256 cv = _mm256_set1_ps(c);
  for (int64_t j = 0; j < n; j += 8) {
    const __m256i m = j + 8 <= n ? _mm256_set1_epi32(-1) : tail;
    const __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), mh), cv);
    const __m256 t = bias != nullptr ? _mm256_maskload_ps(bias + j, m) : _mm256_setzero_ps();
    _mm256_maskstore_ps(
        y + j, m, _mm256_fmadd_ps(_mm256_mul_ps(d, inv), _mm256_maskload_ps(scale + j, m), t));
  }
}

}  // namespace
#endif

void layer_norm_f32(const LayerNormParams& p, const float* x, const float* scale, const float* bias,
                    float* y) {
  const LayerNormParams q = p;
  parallel_for(0, p.rows, row_grain(p.n), [&q, x, scale, bias, y](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * q.n;
      float* yr = y + r * q.n;
#ifdef __AVX2__
      layer_norm_row(xr, scale, bias, yr, q.n, q.epsilon);
#else
      // As layer_norm_row, one element at a time.
      const float n = static_cast<float>(q.n);
      float sum = 0.0f;
      for (int64_t j = 0; j < q.n; ++j) sum += xr[j];
      const float mh = sum / n;
      float c = 0.0f, sq = 0.0f;
      for (int64_t j = 0; j < q.n; ++j) {
        const float d = xr[j] - mh;
        c += d;
        sq = std::fma(d, d, sq);
      }
      c /= n;
      const float inv = 1.0f / std::sqrt(std::max(0.0f, sq / n - c * c) + q.epsilon);
      for (int64_t j = 0; j < q.n; ++j) {
        const float v = ((xr[j] - mh) - c) * inv;
        yr[j] = std::fma(v, scale[j], bias != nullptr ? bias[j] : 0.0f);
      }
#endif
    }
  });
}

void softmax_f32(const SoftmaxParams& p, const float* x, float* y) {
  const SoftmaxParams q = p;
  parallel_for(0, p.outer, row_grain(p.axis * p.inner), [&q, x, y](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const float* xo = x + o * q.axis * q.inner;
      float* yo = y + o * q.axis * q.inner;
#ifdef __AVX2__
      if (q.inner == 1) {
        softmax_row(xo, yo, q.axis);
      } else {
        for (int64_t in = 0; in < q.inner; in += 8) {
          softmax_lanes(xo + in, yo + in, q.axis, q.inner, std::min<int64_t>(8, q.inner - in));
        }
      }
#else
      for (int64_t in = 0; in < q.inner; ++in) {
        const float* xs = xo + in;
        float* ys = yo + in;
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
#endif
    }
  });
}

}  // namespace qsearch::kernels
