// Reference training kernels (grad_kernels.h, namespace ref): the definitions of the fast ones in
// grad_kernels.cc, seq_grad_kernels.cc and conv_backward.cc, computed directly and serially with
// sums in double, for the equality tests (tests/train/train_kernels_test.cc); the trainer does
// not call them.
#include <algorithm>
#include <cmath>
#include <vector>

#include "train/grad_kernels.h"

namespace qsearch::train::ref {

void batch_norm_train_forward(const kernels::BatchNormParams& p, double momentum, const float* x,
                              const float* scale, const float* bias, float* y, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  for (int64_t c = 0; c < p.channels; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < p.batch; ++b) {
      const float* xs = x + b * stride + c * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) sum += xs[s];
    }
    const double mean = sum / static_cast<double>(n);
    double sq = 0;
    for (int64_t b = 0; b < p.batch; ++b) {
      const float* xs = x + b * stride + c * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) {
        const double d = xs[s] - mean;
        sq += d * d;
      }
    }
    const double var = sq / static_cast<double>(n);
    const double invstd = 1.0 / std::sqrt(var + static_cast<double>(p.epsilon));
    for (int64_t b = 0; b < p.batch; ++b) {
      const float* xs = x + b * stride + c * p.spatial;
      float* ys = y + b * stride + c * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) {
        ys[s] = static_cast<float>((xs[s] - mean) * invstd * scale[c] + bias[c]);
      }
    }
    const double unbiased = n > 1 ? sq / static_cast<double>(n - 1) : var;
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(invstd);
  }
}

void batch_norm_backward(const kernels::BatchNormParams& p, const float* x, const float* dy,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  for (int64_t c = 0; c < p.channels; ++c) {
    const double mean = save_mean[c], invstd = save_invstd[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t b = 0; b < p.batch; ++b) {
      const float* xs = x + b * stride + c * p.spatial;
      const float* gs = dy + b * stride + c * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) {
        sum_dy += gs[s];
        sum_dy_xhat += gs[s] * ((xs[s] - mean) * invstd);
      }
    }
    dbias[c] = static_cast<float>(sum_dy);
    dscale[c] = static_cast<float>(sum_dy_xhat);
    if (dx == nullptr) continue;
    const double k = scale[c] * invstd;
    const double mean_dy = sum_dy / static_cast<double>(n);
    const double mean_dy_xhat = sum_dy_xhat / static_cast<double>(n);
    for (int64_t b = 0; b < p.batch; ++b) {
      const float* xs = x + b * stride + c * p.spatial;
      const float* gs = dy + b * stride + c * p.spatial;
      float* ds = dx + b * stride + c * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) {
        const double xhat = (xs[s] - mean) * invstd;
        ds[s] = static_cast<float>(k * (gs[s] - mean_dy - xhat * mean_dy_xhat));
      }
    }
  }
}

void conv2d_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  const int64_t g = p.groups, mg = p.out_channels / g, cg = p.in_channels / g;
  const int64_t kh = p.kernel_h, kw = p.kernel_w, pixels = p.out_h * p.out_w;
  std::vector<double> dwd(p.out_channels * cg * kh * kw, 0.0), dbd(p.out_channels, 0.0);
  if (dx != nullptr) std::fill(dx, dx + p.batch * p.in_channels * p.in_h * p.in_w, 0.0f);
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const int64_t gi = o / mg;
      const float* dyo = dy + (n * p.out_channels + o) * pixels;
      for (int64_t q = 0; q < pixels; ++q) dbd[o] += dyo[q];
      for (int64_t c = 0; c < cg; ++c) {
        const int64_t ci = gi * cg + c;
        const float* xc = x + (n * p.in_channels + ci) * p.in_h * p.in_w;
        for (int64_t i = 0; i < kh; ++i) {
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t widx = ((o * cg + c) * kh + i) * kw + j;
            for (int64_t oh = 0; oh < p.out_h; ++oh) {
              const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
              if (h < 0 || h >= p.in_h) continue;
              for (int64_t ow = 0; ow < p.out_w; ++ow) {
                const int64_t wc = ow * p.stride_w - p.pad_left + j * p.dilation_w;
                if (wc < 0 || wc >= p.in_w) continue;
                const float gy = dyo[oh * p.out_w + ow];
                dwd[widx] += static_cast<double>(gy) * xc[h * p.in_w + wc];
                if (dx != nullptr) {
                  dx[(n * p.in_channels + ci) * p.in_h * p.in_w + h * p.in_w + wc] += w[widx] * gy;
                }
              }
            }
          }
        }
      }
    }
  }
  for (size_t i = 0; i < dwd.size(); ++i) dw[i] = static_cast<float>(dwd[i]);
  if (db != nullptr) {
    for (int64_t o = 0; o < p.out_channels; ++o) db[o] = static_cast<float>(dbd[o]);
  }
}

void conv2d_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                    const float* bias, float* y) {
  const int64_t g = p.groups, mg = p.out_channels / g, cg = p.in_channels / g;
  const int64_t kh = p.kernel_h, kw = p.kernel_w;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const int64_t gi = o / mg;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          double acc = bias != nullptr ? bias[o] : 0.0;
          for (int64_t c = 0; c < cg; ++c) {
            const int64_t ci = gi * cg + c;
            const float* xc = x + (n * p.in_channels + ci) * p.in_h * p.in_w;
            for (int64_t i = 0; i < kh; ++i) {
              const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
              if (h < 0 || h >= p.in_h) continue;
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t wc = ow * p.stride_w - p.pad_left + j * p.dilation_w;
                if (wc < 0 || wc >= p.in_w) continue;
                acc +=
                    static_cast<double>(w[((o * cg + c) * kh + i) * kw + j]) * xc[h * p.in_w + wc];
              }
            }
          }
          y[((n * p.out_channels + o) * p.out_h + oh) * p.out_w + ow] = static_cast<float>(acc);
        }
      }
    }
  }
}

void batched_matmul_forward(const BatchedMatMul& p, const float* a, const float* b, float* y) {
  const int64_t sa = p.m * p.k, sb = p.k * p.n, sy = p.m * p.n;
  for (int64_t t = 0; t < p.batches; ++t) {
    const float* at = a + p.a_index[t] * sa;
    const float* bt = b + p.b_index[t] * sb;
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < p.k; ++l)
          acc += static_cast<double>(at[i * p.k + l]) * bt[l * p.n + j];
        y[t * sy + i * p.n + j] = static_cast<float>(acc);
      }
    }
  }
}

void batched_matmul_backward(const BatchedMatMul& p, const float* a, const float* b,
                             const float* dy, float* da, float* db) {
  const int64_t sa = p.m * p.k, sb = p.k * p.n, sy = p.m * p.n;
  std::vector<double> dad(da != nullptr ? p.a_batches * sa : 0, 0.0);
  std::vector<double> dbd(db != nullptr ? p.b_batches * sb : 0, 0.0);
  for (int64_t t = 0; t < p.batches; ++t) {
    const float* at = a + p.a_index[t] * sa;
    const float* bt = b + p.b_index[t] * sb;
    const float* gt = dy + t * sy;
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        for (int64_t l = 0; l < p.k; ++l) {
          if (da != nullptr)
            dad[p.a_index[t] * sa + i * p.k + l] += gt[i * p.n + j] * bt[l * p.n + j];
          if (db != nullptr)
            dbd[p.b_index[t] * sb + l * p.n + j] += at[i * p.k + l] * gt[i * p.n + j];
        }
      }
    }
  }
  for (size_t i = 0; i < dad.size(); ++i) da[i] = static_cast<float>(dad[i]);
  for (size_t i = 0; i < dbd.size(); ++i) db[i] = static_cast<float>(dbd[i]);
}

void layer_norm_forward(const float* x, int64_t rows, int64_t n, float epsilon, const float* scale,
                        const float* bias, float* y, float* save_mean, float* save_invstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += xr[j];
    const double mean = s / n;
    double v = 0;
    for (int64_t j = 0; j < n; ++j) v += (xr[j] - mean) * (xr[j] - mean);
    const double invstd = 1.0 / std::sqrt(v / n + epsilon);
    save_mean[r] = static_cast<float>(mean);
    save_invstd[r] = static_cast<float>(invstd);
    for (int64_t j = 0; j < n; ++j) {
      y[r * n + j] = static_cast<float>((xr[j] - mean) * invstd * scale[j] +
                                        (bias != nullptr ? bias[j] : 0.0f));
    }
  }
}

void layer_norm_backward(const float* x, const float* dy, int64_t rows, int64_t n,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  std::vector<double> ds(n, 0.0), dbs(n, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * n, *gr = dy + r * n;
    const double m = save_mean[r], is = save_invstd[r];
    double s1 = 0, s2 = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double g = static_cast<double>(gr[j]) * scale[j];
      const double xhat = (xr[j] - m) * is;
      s1 += g;
      s2 += g * xhat;
      ds[j] += gr[j] * xhat;
      dbs[j] += gr[j];
    }
    if (dx == nullptr) continue;
    for (int64_t j = 0; j < n; ++j) {
      const double xhat = (xr[j] - m) * is;
      const double g = static_cast<double>(gr[j]) * scale[j];
      dx[r * n + j] = static_cast<float>(is * (g - s1 / n - xhat * s2 / n));
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    if (dscale != nullptr) dscale[j] = static_cast<float>(ds[j]);
    if (dbias != nullptr) dbias[j] = static_cast<float>(dbs[j]);
  }
}

void gelu_forward(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * std::erfc(-v * M_SQRT1_2));  // x Phi(x), no cancellation
  }
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
  const double k = 0.5 * M_2_SQRTPI * M_SQRT1_2;  // 1 / sqrt(2 pi)
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double cdf = 0.5 * std::erfc(-v * M_SQRT1_2);
    dx[i] = static_cast<float>(dy[i] * (cdf + v * k * std::exp(-0.5 * v * v)));
  }
}

}  // namespace qsearch::train::ref
