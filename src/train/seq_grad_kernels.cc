// Forward and backward kernels of the transformer ops the trainer supports (grad_kernels.h,
// "transformer ops").
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "train/grad_kernels.h"

namespace qsearch::train {

namespace {

constexpr int64_t kElemGrain = 1 << 14;

// Row-major strides of a shape.
std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int d = static_cast<int>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

}  // namespace

void permute(const float* x, const Shape& xs, const std::vector<int64_t>& perm, float* y) {
  const int rank = static_cast<int>(xs.size());
  QSEARCH_CHECK(static_cast<int>(perm.size()) == rank && rank >= 1);
  const std::vector<int64_t> xst = strides_of(xs);
  Shape ys(rank);
  std::vector<int64_t> src(rank);  // input stride of each output dim
  for (int d = 0; d < rank; ++d) {
    ys[d] = xs[perm[d]];
    src[d] = xst[perm[d]];
  }
  const int64_t outer = ys[0], inner = shape_numel(ys) / std::max<int64_t>(outer, 1);
  parallel_for(0, outer, 1, [&](int64_t o0, int64_t o1) {
    std::vector<int64_t> idx(rank, 0);
    for (int64_t o = o0; o < o1; ++o) {
      std::fill(idx.begin(), idx.end(), 0);
      int64_t off = o * src[0];
      float* out = y + o * inner;
      for (int64_t i = 0; i < inner; ++i) {
        out[i] = x[off];
        for (int d = rank - 1; d >= 1; --d) {
          off += src[d];
          if (++idx[d] < ys[d]) break;
          off -= src[d] * ys[d];
          idx[d] = 0;
        }
      }
    }
  });
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
  return p;
}

namespace {

// c[m, n] (+)= a[m, k] b[k, n] with arbitrary transposition expressed through strides:
// a(i, l) = a[i * as0 + l * as1], b(l, j) = b[l * bs0 + j * bs1]. Each output element is one
// chain over l in ascending order (float), so results do not depend on the split.
void small_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t as0, int64_t as1,
                const float* b, int64_t bs0, int64_t bs1, float* c, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float acc = accumulate ? c[i * n + j] : 0.0f;
      for (int64_t l = 0; l < k; ++l) acc += a[i * as0 + l * as1] * b[l * bs0 + j * bs1];
      c[i * n + j] = acc;
    }
  }
}

}  // namespace

void batched_matmul_forward(const BatchedMatMul& p, const float* a, const float* b, float* y) {
  const int64_t sa = p.m * p.k, sb = p.k * p.n, sy = p.m * p.n;
  parallel_for(0, p.batches, 8, [&](int64_t b0, int64_t b1) {
    for (int64_t t = b0; t < b1; ++t) {
      small_gemm(p.m, p.n, p.k, a + p.a_index[t] * sa, p.k, 1, b + p.b_index[t] * sb, p.n, 1,
                 y + t * sy, false);
    }
  });
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
          small_gemm(p.m, p.k, p.n, dy + t * sy, p.n, 1, b + p.b_index[t] * sb, 1, p.n,
                     da + p.a_index[t] * sa, false);
        }
      });
    } else {
      std::fill(da, da + p.a_batches * sa, 0.0f);
      for (int64_t t = 0; t < p.batches; ++t) {
        small_gemm(p.m, p.k, p.n, dy + t * sy, p.n, 1, b + p.b_index[t] * sb, 1, p.n,
                   da + p.a_index[t] * sa, true);
      }
    }
  }
  if (db != nullptr) {
    if (p.b_batches == p.batches) {
      parallel_for(0, p.batches, 8, [&](int64_t b0, int64_t b1) {
        for (int64_t t = b0; t < b1; ++t) {
          small_gemm(p.k, p.n, p.m, a + p.a_index[t] * sa, 1, p.k, dy + t * sy, p.n, 1,
                     db + p.b_index[t] * sb, false);
        }
      });
    } else {
      std::fill(db, db + p.b_batches * sb, 0.0f);
      for (int64_t t = 0; t < p.batches; ++t) {
        small_gemm(p.k, p.n, p.m, a + p.a_index[t] * sa, 1, p.k, dy + t * sy, p.n, 1,
                   db + p.b_index[t] * sb, true);
      }
    }
  }
}

void softmax_forward(const float* x, int64_t rows, int64_t n, float* y) {
  parallel_for(0, rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * n;
      float* yr = y + r * n;
      float mx = xr[0];
      for (int64_t j = 1; j < n; ++j) mx = std::max(mx, xr[j]);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        yr[j] = std::exp(xr[j] - mx);
        sum += yr[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
    }
  });
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
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += xr[j];
      const double mean = s / n;
      double v = 0;
      for (int64_t j = 0; j < n; ++j) v += (xr[j] - mean) * (xr[j] - mean);
      const double invstd = 1.0 / std::sqrt(v / n + epsilon);
      save_mean[r] = static_cast<float>(mean);
      save_invstd[r] = static_cast<float>(invstd);
      const float m = save_mean[r], is = save_invstd[r];
      for (int64_t j = 0; j < n; ++j) {
        y[r * n + j] = (xr[j] - m) * is * scale[j] + (bias != nullptr ? bias[j] : 0.0f);
      }
    }
  });
}

void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t n,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  if (dx != nullptr) {
    parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float *xr = x + r * n, *gr = dy + r * n;
        const float m = save_mean[r], is = save_invstd[r];
        double s1 = 0, s2 = 0;  // mean of g and of g * xhat, g = dy * scale
        for (int64_t j = 0; j < n; ++j) {
          const double g = static_cast<double>(gr[j]) * scale[j];
          s1 += g;
          s2 += g * ((xr[j] - m) * is);
        }
        const double a = s1 / n, b = s2 / n;
        for (int64_t j = 0; j < n; ++j) {
          const double xhat = (xr[j] - m) * is;
          const double g = static_cast<double>(gr[j]) * scale[j];
          dx[r * n + j] = static_cast<float>(is * (g - a - xhat * b));
        }
      }
    });
  }
  // Per column over the rows in ascending order.
  parallel_for(0, n, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t j = c0; j < c1; ++j) {
      double ds = 0, db = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const double g = dy[r * n + j];
        ds += g * ((x[r * n + j] - save_mean[r]) * save_invstd[r]);
        db += g;
      }
      if (dscale != nullptr) dscale[j] = static_cast<float>(ds);
      if (dbias != nullptr) dbias[j] = static_cast<float>(db);
    }
  });
}

void gelu_forward(const float* x, float* y, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * static_cast<float>(M_SQRT1_2)));
    }
  });
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  // d/dx [x Phi(x)] = Phi(x) + x phi(x).
  parallel_for(0, n, kElemGrain, [&](int64_t i0, int64_t i1) {
    const float k = static_cast<float>(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1 / sqrt(2 pi)
    for (int64_t i = i0; i < i1; ++i) {
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
