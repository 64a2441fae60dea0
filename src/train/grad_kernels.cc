#include "train/grad_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/thread_pool.h"

namespace qsearch::train {

namespace {
// Elementwise loops are split in chunks of this many elements (large enough that a chunk costs
// more than handing it to a worker).
constexpr int64_t kElemGrain = 1 << 14;
}  // namespace

void transpose(const float* x, int64_t rows, int64_t cols, float* y) {
  // 32x32 tiles keep both the reads and the writes within a few cache lines.
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  parallel_for(0, row_tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) y[c * rows + r] = x[r * cols + c];
        }
      }
    }
  });
}

void column_sums(const float* dy, int64_t m, int64_t n, float* db, bool accumulate) {
  // Each thread owns a block of columns and walks the rows in order: a fixed summation order
  // per column whatever the split.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    double acc[kBlock];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t j0 = b * kBlock, j1 = std::min(n, j0 + kBlock);
      std::fill(acc, acc + (j1 - j0), 0.0);
      for (int64_t i = 0; i < m; ++i) {
        const float* row = dy + i * n;
        for (int64_t j = j0; j < j1; ++j) acc[j - j0] += row[j];
      }
      for (int64_t j = j0; j < j1; ++j) {
        const float v = static_cast<float>(acc[j - j0]);
        db[j] = accumulate ? db[j] + v : v;
      }
    }
  });
}

void im2col(const kernels::Conv2dParams& p, const float* x, float* col, int64_t ld) {
  for (int64_t c = 0; c < p.in_channels; ++c) {
    const float* xc = x + c * p.in_h * p.in_w;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        float* row = col + ((c * p.kernel_h + i) * p.kernel_w + j) * ld;
        for (int64_t oh = 0; oh < p.out_h; ++oh) {
          const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          float* dst = row + oh * p.out_w;
          if (h < 0 || h >= p.in_h) {
            std::fill(dst, dst + p.out_w, 0.0f);
            continue;
          }
          const float* src = xc + h * p.in_w;
          const int64_t w0 = -p.pad_left + j * p.dilation_w;
          if (p.stride_w == 1) {
            // Contiguous run: zero the left/right overhang, copy the middle.
            const int64_t lo = std::clamp<int64_t>(-w0, 0, p.out_w);
            const int64_t hi = std::clamp<int64_t>(p.in_w - w0, lo, p.out_w);
            std::fill(dst, dst + lo, 0.0f);
            std::memcpy(dst + lo, src + w0 + lo, (hi - lo) * sizeof(float));
            std::fill(dst + hi, dst + p.out_w, 0.0f);
          } else {
            for (int64_t ow = 0; ow < p.out_w; ++ow) {
              const int64_t w = ow * p.stride_w + w0;
              dst[ow] = (w >= 0 && w < p.in_w) ? src[w] : 0.0f;
            }
          }
        }
      }
    }
  }
}

void col2im_add(const kernels::Conv2dParams& p, const float* col, int64_t ld, float* dx) {
  for (int64_t c = 0; c < p.in_channels; ++c) {
    float* dxc = dx + c * p.in_h * p.in_w;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const float* row = col + ((c * p.kernel_h + i) * p.kernel_w + j) * ld;
        for (int64_t oh = 0; oh < p.out_h; ++oh) {
          const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          if (h < 0 || h >= p.in_h) continue;
          float* dst = dxc + h * p.in_w;
          const float* src = row + oh * p.out_w;
          const int64_t w0 = -p.pad_left + j * p.dilation_w;
          const int64_t lo = std::clamp<int64_t>((-w0 + p.stride_w - 1) / p.stride_w, 0, p.out_w);
          for (int64_t ow = lo; ow < p.out_w; ++ow) {
            const int64_t w = ow * p.stride_w + w0;
            if (w >= p.in_w) break;
            dst[w] += src[ow];
          }
        }
      }
    }
  }
}

void batch_norm_train_forward(const kernels::BatchNormParams& p, double momentum, const float* x,
                              const float* scale, const float* bias, float* y, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  parallel_for(0, p.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      // Two passes in double: the mean, then the centred sum of squares (no cancellation).
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
      const float a = static_cast<float>(scale[c] * invstd);
      const float shift = static_cast<float>(bias[c] - mean * scale[c] * invstd);
      for (int64_t b = 0; b < p.batch; ++b) {
        const float* xs = x + b * stride + c * p.spatial;
        float* ys = y + b * stride + c * p.spatial;
        for (int64_t s = 0; s < p.spatial; ++s) ys[s] = xs[s] * a + shift;
      }
      const double unbiased = n > 1 ? sq / static_cast<double>(n - 1) : var;
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
      save_mean[c] = static_cast<float>(mean);
      save_invstd[c] = static_cast<float>(invstd);
    }
  });
}

void batch_norm_backward(const kernels::BatchNormParams& p, const float* x, const float* dy,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  parallel_for(0, p.channels, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
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
  });
}

void relu_forward(const float* x, float* y, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = std::isnan(x[i]) ? x[i] : std::max(x[i], 0.0f);
  });
}

void relu_backward(const float* y, const float* dy, float* dx, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  });
}

void max_pool2d_backward(const kernels::Pool2dParams& p, const float* x, const float* dy,
                         float* dx) {
  const int64_t in_hw = p.in_h * p.in_w, out_hw = p.out_h * p.out_w;
  parallel_for(0, p.batch * p.channels, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xc = x + r * in_hw;
      const float* gc = dy + r * out_hw;
      float* dc = dx + r * in_hw;
      std::fill(dc, dc + in_hw, 0.0f);
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t arg = -1;
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
            if (h < 0 || h >= p.in_h) continue;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t w = ow * p.stride_w - p.pad_left + j * p.dilation_w;
              if (w < 0 || w >= p.in_w) continue;
              const float v = xc[h * p.in_w + w];
              if (arg < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                best = v;
                arg = h * p.in_w + w;
              }
            }
          }
          if (arg >= 0) dc[arg] += gc[oh * p.out_w + ow];
        }
      }
    }
  });
}

void avg_pool2d_backward(const kernels::Pool2dParams& p, const float* dy, float* dx) {
  const int64_t in_hw = p.in_h * p.in_w, out_hw = p.out_h * p.out_w;
  parallel_for(0, p.batch * p.channels, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* gc = dy + r * out_hw;
      float* dc = dx + r * in_hw;
      std::fill(dc, dc + in_hw, 0.0f);
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          int64_t inside = 0, padded = 0;
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
            const bool h_in = h >= 0 && h < p.in_h;
            const bool h_pad = h >= -p.pad_top && h < p.in_h + p.pad_bottom;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t w = ow * p.stride_w - p.pad_left + j * p.dilation_w;
              const bool w_in = w >= 0 && w < p.in_w;
              const bool w_pad = w >= -p.pad_left && w < p.in_w + p.pad_right;
              padded += h_pad && w_pad;
              inside += h_in && w_in;
            }
          }
          const int64_t count = p.count_include_pad ? padded : inside;
          if (count == 0) continue;
          const float g = gc[oh * p.out_w + ow] / static_cast<float>(count);
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
            if (h < 0 || h >= p.in_h) continue;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t w = ow * p.stride_w - p.pad_left + j * p.dilation_w;
              if (w >= 0 && w < p.in_w) dc[h * p.in_w + w] += g;
            }
          }
        }
      }
    }
  });
}

void global_avg_pool_backward(int64_t rows, int64_t spatial, const float* dy, float* dx) {
  const float inv = 1.0f / static_cast<float>(spatial);
  parallel_for(0, rows, std::max<int64_t>(1, kElemGrain / std::max<int64_t>(spatial, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float g = dy[r] * inv;
                   std::fill(dx + r * spatial, dx + (r + 1) * spatial, g);
                 }
               });
}

void dropout_mask(Rng& rng, float ratio, uint8_t* mask, int64_t n) {
  for (int64_t i = 0; i < n; ++i) mask[i] = rng.uniform() >= ratio ? 1 : 0;
}

void dropout_apply(const float* x, const uint8_t* mask, float scale, float* y, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = mask[i] ? x[i] * scale : 0.0f;
  });
}

LossSums softmax_cross_entropy(const float* logits, const int64_t* labels, int64_t batch,
                               int64_t classes, int64_t mean_over, float* dlogits) {
  LossSums sums;
  const double inv = 1.0 / static_cast<double>(mean_over);
  for (int64_t b = 0; b < batch; ++b) {
    const float* z = logits + b * classes;
    int64_t arg = 0;
    for (int64_t c = 1; c < classes; ++c) {
      if (z[c] > z[arg]) arg = c;
    }
    const double mx = z[arg];
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(z[c] - mx);
    const int64_t y = labels[b];
    QSEARCH_DCHECK(y >= 0 && y < classes);
    sums.loss_sum += std::log(sum) + mx - z[y];
    sums.correct += arg == y;
    if (dlogits != nullptr) {
      float* d = dlogits + b * classes;
      for (int64_t c = 0; c < classes; ++c) {
        const double prob = std::exp(z[c] - mx) / sum;
        d[c] = static_cast<float>((prob - (c == y ? 1.0 : 0.0)) * inv);
      }
    }
  }
  return sums;
}

}  // namespace qsearch::train
