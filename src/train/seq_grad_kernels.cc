// Forward and backward kernels of the transformer ops the trainer supports (grad_kernels.h,
// "transformer ops").
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/vec_math.h"
#include "train/grad_kernels.h"
#include "train/lanes.h"

#ifdef __AVX2__
#include <immintrin.h>

#include "kernels/simd_util.h"
#endif

namespace qsearch::train {

namespace {

constexpr int64_t kElemGrain = 1 << 14;

}  // namespace

void permute(const float* x, const Shape& xs, const std::vector<int64_t>& perm, float* y) {
  // The inference kernel (a copy: runs of the innermost dim, else one-stride gathers).
  const int rank = static_cast<int>(xs.size());
  QSEARCH_CHECK(static_cast<int>(perm.size()) == rank && rank >= 1 && rank <= kernels::kMaxRank);
  kernels::TransposeParams p;
  p.rank = rank;
  for (int d = 0; d < rank; ++d) {
    p.in_shape[d] = xs[d];
    p.perm[d] = perm[d];
  }
  kernels::transpose_f32(p, x, y);
}

BatchedMatMul batched_matmul_shapes(const Shape& a, const Shape& b) {
  QSEARCH_CHECK(a.size() >= 2 && b.size() >= 2);
  BatchedMatMul p;
  p.m = a[a.size() - 2];
  p.k = a.back();
  p.n = b.back();
  QSEARCH_CHECK(b[b.size() - 2] == p.k);
  const size_t ra = a.size() - 2, rb = b.size() - 2, r = std::max(ra, rb);
  Shape out(r), as(r, 1), bs(r, 1);
  for (size_t d = 0; d < r; ++d) {
    if (d + ra >= r) as[d] = a[d + ra - r];
    if (d + rb >= r) bs[d] = b[d + rb - r];
    QSEARCH_CHECK(as[d] == bs[d] || as[d] == 1 || bs[d] == 1);
    out[d] = std::max(as[d], bs[d]);
  }
  const int64_t total = shape_numel(out);
  p.batches = total;
  p.a_batches = shape_numel(as);
  p.b_batches = shape_numel(bs);
  p.a_index.resize(total);
  p.b_index.resize(total);
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < total; ++i) {
    int64_t ai = 0, bi = 0;
    for (size_t d = 0; d < r; ++d) {
      ai = ai * as[d] + (as[d] == 1 ? 0 : idx[d]);
      bi = bi * bs[d] + (bs[d] == 1 ? 0 : idx[d]);
    }
    p.a_index[i] = ai;
    p.b_index[i] = bi;
    for (int d = static_cast<int>(r) - 1; d >= 0; --d) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  // The same product for the inference kernel (kernels::matmul_f32): batch strides in floats,
  // 0 on a broadcast dim.
  QSEARCH_CHECK(r <= static_cast<size_t>(kernels::kMaxRank));
  p.fwd.m = p.m;
  p.fwd.k = p.k;
  p.fwd.n = p.n;
  p.fwd.batch_rank = static_cast<int>(r);
  int64_t sa = p.m * p.k, sb = p.k * p.n;
  for (int d = static_cast<int>(r) - 1; d >= 0; --d) {
    p.fwd.batch_shape[d] = out[d];
    p.fwd.a_batch_stride[d] = as[d] == 1 ? 0 : sa;
    p.fwd.b_batch_stride[d] = bs[d] == 1 ? 0 : sb;
    sa *= as[d];
    sb *= bs[d];
  }
  return p;
}

namespace {

// c[i, j] (+)= sum_l a(i, l) b[l, j] for i < m, j < n: c and b are row-major with n columns,
// a(i, l) = a[i * as0 + l * as1] (a transposed operand is a stride). Each output element is one
// fma chain over ascending l starting at 0 (or at c's value when accumulating), as in
// kernels::matmul_f32, so the result does not depend on how the work is split.
#ifdef __AVX2__
// Rows i0 .. i0 + R of columns j0 .. j0 + 16 (masked past n).
template <int R>
void strided_tile16(const float* a, int64_t as0, int64_t as1, int64_t k, const float* b, int64_t n,
                    float* c, int64_t j0, bool accumulate) {
  const int64_t w = std::min<int64_t>(16, n - j0);
  const __m256i m0 = kernels::detail::first_lanes8(w), m1 = kernels::detail::first_lanes8(w - 8);
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) {
    acc0[r] = accumulate ? _mm256_maskload_ps(c + r * n + j0, m0) : _mm256_setzero_ps();
    acc1[r] =
        accumulate && w > 8 ? _mm256_maskload_ps(c + r * n + j0 + 8, m1) : _mm256_setzero_ps();
  }
  const float* bj = b + j0;
  for (int64_t l = 0; l < k; ++l) {
    const __m256 b0 = _mm256_maskload_ps(bj + l * n, m0);
    const __m256 b1 = w > 8 ? _mm256_maskload_ps(bj + l * n + 8, m1) : _mm256_setzero_ps();
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * as0 + l * as1);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(c + r * n + j0, m0, acc0[r]);
    if (w > 8) _mm256_maskstore_ps(c + r * n + j0 + 8, m1, acc1[r]);
  }
}

template <int R>
void strided_rows(const float* a, int64_t as0, int64_t as1, int64_t k, const float* b, int64_t n,
                  float* c, bool accumulate) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) strided_tile16<R>(a, as0, as1, k, b, n, c, j0, accumulate);
}
#endif

void strided_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t as0, int64_t as1,
                  const float* b, float* c, bool accumulate) {
  int64_t i = 0;
#ifdef __AVX2__
  for (; i + 4 <= m; i += 4) strided_rows<4>(a + i * as0, as0, as1, k, b, n, c + i * n, accumulate);
  for (; i < m; ++i) strided_rows<1>(a + i * as0, as0, as1, k, b, n, c + i * n, accumulate);
#else
  for (; i < m; ++i) {
    float* ci = c + i * n;
    if (!accumulate) std::fill(ci, ci + n, 0.0f);
    for (int64_t l = 0; l < k; ++l) {
      const float av = a[i * as0 + l * as1];
      for (int64_t j = 0; j < n; ++j) ci[j] = std::fma(av, b[l * n + j], ci[j]);
    }
  }
#endif
}

// Per-thread scratch for B^T (dA = dY B^T reads B transposed as a row-major operand).
std::vector<float>& bt_scratch() {
  thread_local std::vector<float> s;
  return s;
}

// dA_a (+)= dY_t B_b^T for one output batch.
void matmul_grad_a(const BatchedMatMul& p, const float* b, const float* dy, float* da,
                   bool accumulate) {
  std::vector<float>& bt = bt_scratch();
  bt.resize(p.n * p.k);
  for (int64_t l = 0; l < p.k; ++l) {
    for (int64_t j = 0; j < p.n; ++j) bt[j * p.k + l] = b[l * p.n + j];
  }
  strided_gemm(p.m, p.k, p.n, dy, p.n, 1, bt.data(), da, accumulate);
}

// dB_b (+)= A_a^T dY_t for one output batch (A read through strides, no copy).
void matmul_grad_b(const BatchedMatMul& p, const float* a, const float* dy, float* db,
                   bool accumulate) {
  strided_gemm(p.k, p.n, p.m, a, 1, p.k, dy, db, accumulate);
}

}  // namespace

void batched_matmul_forward(const BatchedMatMul& p, const float* a, const float* b, float* y) {
  kernels::matmul_f32(p.fwd, a, b, y);  // the inference kernel: the same product
}

void batched_matmul_backward(const BatchedMatMul& p, const float* a, const float* b,
                             const float* dy, float* da, float* db) {
  const int64_t sa = p.m * p.k, sb = p.k * p.n, sy = p.m * p.n;
  // dA[m, k] = dY[m, n] B^T; dB[k, n] = A^T dY. A broadcast operand sums its contributions over
  // the output batches in ascending order (serially), so the order is fixed.
  if (da != nullptr) {
    if (p.a_batches == p.batches) {
      parallel_for(0, p.batches, 8, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) {
          matmul_grad_a(p, b + p.b_index[t] * sb, dy + t * sy, da + p.a_index[t] * sa, false);
        }
      });
    } else {
      std::fill(da, da + p.a_batches * sa, 0.0f);
      for (int64_t t = 0; t < p.batches; ++t) {
        matmul_grad_a(p, b + p.b_index[t] * sb, dy + t * sy, da + p.a_index[t] * sa, true);
      }
    }
  }
  if (db != nullptr) {
    if (p.b_batches == p.batches) {
      parallel_for(0, p.batches, 8, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) {
          matmul_grad_b(p, a + p.a_index[t] * sa, dy + t * sy, db + p.b_index[t] * sb, false);
        }
      });
    } else {
      std::fill(db, db + p.b_batches * sb, 0.0f);
      for (int64_t t = 0; t < p.batches; ++t) {
        matmul_grad_b(p, a + p.a_index[t] * sa, dy + t * sy, db + p.b_index[t] * sb, true);
      }
    }
  }
}

void softmax_forward(const float* x, int64_t rows, int64_t n, float* y) {
  kernels::SoftmaxParams p;  // the inference kernel: softmax over the last axis
  p.outer = rows;
  p.axis = n;
  p.inner = 1;
  kernels::softmax_f32(p, x, y);
}

void softmax_backward(const float* y, const float* dy, int64_t rows, int64_t n, float* dx) {
  parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float *yr = y + r * n, *gr = dy + r * n;
      double dot = 0;
      for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(yr[j]) * gr[j];
      const float d = static_cast<float>(dot);
      for (int64_t j = 0; j < n; ++j) dx[r * n + j] = yr[j] * (gr[j] - d);
    }
  });
}

void layer_norm_forward(const float* x, int64_t rows, int64_t n, float epsilon, const float* scale,
                        const float* bias, float* y, float* save_mean, float* save_invstd) {
  parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      detail::Lanes8 s;
      detail::lanes_sum(s, xr, n);
      const double mean = s.total() / n;
      detail::Lanes8 v;
      detail::lanes_sum_sq_dev(v, xr, n, mean);
      const double invstd = 1.0 / std::sqrt(v.total() / n + epsilon);
      save_mean[r] = static_cast<float>(mean);
      save_invstd[r] = static_cast<float>(invstd);
      const float m = save_mean[r], is = save_invstd[r];
      float* yr = y + r * n;
      if (bias != nullptr) {
        for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - m) * is * scale[j] + bias[j];
      } else {
        for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - m) * is * scale[j];
      }
    }
  });
}

void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t n,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  // Rows in fixed chunks (a function of the shape only): each chunk writes its rows' dx and its
  // partial column sums of dy * xhat and dy (double, rows ascending); the chunks' partials are
  // then added in chunk order. So the result does not depend on the thread count.
  constexpr int64_t kChunkRows = 256;
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  std::vector<double> part(chunks * 2 * n);
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double* ps = part.data() + c * 2 * n;  // sum dy * xhat
      double* pb = ps + n;                   // sum dy
      std::fill(ps, ps + 2 * n, 0.0);
      const int64_t rb = c * kChunkRows, re = std::min(rows, rb + kChunkRows);
      for (int64_t r = rb; r < re; ++r) {
        const float *xr = x + r * n, *gr = dy + r * n;
        const float m = save_mean[r], is = save_invstd[r];
        for (int64_t j = 0; j < n; ++j) {
          const double g = gr[j];
          ps[j] += g * ((xr[j] - m) * is);
          pb[j] += g;
        }
        if (dx == nullptr) continue;
        detail::Lanes8 s1, s2;  // sums of g and g * xhat, g = dy * scale
        detail::lanes_ln_grad(s1, s2, xr, gr, scale, n, m, is);
        const float a = static_cast<float>(s1.total() / n), b = static_cast<float>(s2.total() / n);
        float* dr = dx + r * n;
        for (int64_t j = 0; j < n; ++j) {
          const float xhat = (xr[j] - m) * is;
          dr[j] = is * (gr[j] * scale[j] - a - xhat * b);
        }
      }
    }
  });
  for (int64_t j = 0; j < n; ++j) {
    double ds = 0, db = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      ds += part[c * 2 * n + j];
      db += part[c * 2 * n + n + j];
    }
    if (dscale != nullptr) dscale[j] = static_cast<float>(ds);
    if (dbias != nullptr) dbias[j] = static_cast<float>(db);
  }
}

void gelu_forward(const float* x, float* y, int64_t n) {
  // The inference kernel's vectorised GELU (kernels/vec_math.h, within 3 ulp of the exact one).
  parallel_for(0, n, kElemGrain, [&](int64_t i0, int64_t i1) {
    kernels::vmath::map_f32(kernels::vmath::Fn::kGelu, x + i0, y + i0, i1 - i0);
  });
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  // d/dx [x Phi(x)] = Phi(x) + x phi(x); erf and exp from kernels/vec_math.h.
  parallel_for(0, n, kElemGrain, [&](int64_t i0, int64_t i1) {
    const float k = static_cast<float>(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1 / sqrt(2 pi)
    int64_t i = i0;
#ifdef __AVX2__
    const __m256 half = _mm256_set1_ps(0.5f),
                 rsqrt2 = _mm256_set1_ps(static_cast<float>(M_SQRT1_2));
    const __m256 kv = _mm256_set1_ps(k), mhalf = _mm256_set1_ps(-0.5f);
    auto body = [&](__m256 v, __m256 g) {
      const __m256 cdf = _mm256_mul_ps(
          half,
          _mm256_add_ps(_mm256_set1_ps(1.0f), kernels::detail::erf8(_mm256_mul_ps(v, rsqrt2))));
      const __m256 pdf =
          _mm256_mul_ps(kv, kernels::detail::exp8(_mm256_mul_ps(mhalf, _mm256_mul_ps(v, v))));
      return _mm256_mul_ps(g, _mm256_add_ps(cdf, _mm256_mul_ps(v, pdf)));
    };
    for (; i + 8 <= i1; i += 8) {
      _mm256_storeu_ps(dx + i, body(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i)));
    }
    if (i < i1) {
      const __m256i m = kernels::detail::first_lanes8(i1 - i);
      _mm256_maskstore_ps(dx + i, m,
                          body(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(dy + i, m)));
      i = i1;
    }
#endif
    for (; i < i1; ++i) {
      const float v = x[i];
      const float cdf = 0.5f * (1.0f + std::erf(v * static_cast<float>(M_SQRT1_2)));
      const float pdf = k * std::exp(-0.5f * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  });
}

void scale_values(const float* x, float c, float* y, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = x[i] * c;
  });
}

void reduce_mean_forward(const float* x, int64_t outer, int64_t r, int64_t inner, float* y) {
  parallel_for(0, outer, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        double s = 0;
        for (int64_t k = 0; k < r; ++k) s += x[(o * r + k) * inner + i];
        y[o * inner + i] = static_cast<float>(s / r);
      }
    }
  });
}

void reduce_mean_backward(const float* dy, int64_t outer, int64_t r, int64_t inner, float* dx) {
  const float inv = 1.0f / static_cast<float>(r);
  parallel_for(0, outer, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t k = 0; k < r; ++k) {
        for (int64_t i = 0; i < inner; ++i) dx[(o * r + k) * inner + i] = dy[o * inner + i] * inv;
      }
    }
  });
}

}  // namespace qsearch::train
