#include "train/grad_kernels.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "train/lanes.h"
#include "train/transpose8.h"

namespace qsearch::train {

namespace {
// Elementwise loops are split in chunks of this many elements (large enough that a chunk costs
// more than handing it to a worker).
constexpr int64_t kElemGrain = 1 << 14;

#ifdef __AVX2__
// Eight 2x2 windows: rows x0, x1 (16 floats each), gradients g (8), writes d0, d1 (16 each).
// Same rule as the scalar loop: the first maximum in tap order (a b / c d), NaN winning.
inline void max_pool_2x2_backward8(const float* x0, const float* x1, const float* g, float* d0,
                                   float* d1) {
  const __m256 p0 = _mm256_loadu_ps(x0), p1 = _mm256_loadu_ps(x0 + 8);
  const __m256 q0 = _mm256_loadu_ps(x1), q1 = _mm256_loadu_ps(x1 + 8);
  // Even / odd columns, windows in the order 0 1 4 5 | 2 3 6 7 (per 128-bit lane).
  const __m256 a = _mm256_shuffle_ps(p0, p1, 0x88), b = _mm256_shuffle_ps(p0, p1, 0xDD);
  const __m256 c = _mm256_shuffle_ps(q0, q1, 0x88), d = _mm256_shuffle_ps(q0, q1, 0xDD);
  const __m256 gv =
      _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_loadu_ps(g)), 0xD8));
  auto wins = [](__m256 v, __m256 best) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  };
  __m256 best = a;
  const __m256 tb = wins(b, best);
  best = _mm256_blendv_ps(best, b, tb);
  const __m256 tc = wins(c, best);
  best = _mm256_blendv_ps(best, c, tc);
  const __m256 td = wins(d, best);
  const __m256 sd = td;
  const __m256 sc = _mm256_andnot_ps(td, tc);
  const __m256 sb = _mm256_andnot_ps(_mm256_or_ps(tc, td), tb);
  const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  const __m256 ma = _mm256_andnot_ps(_mm256_or_ps(tb, _mm256_or_ps(tc, td)), all);
  const __m256 oa = _mm256_and_ps(ma, gv), ob = _mm256_and_ps(sb, gv);
  const __m256 oc = _mm256_and_ps(sc, gv), od = _mm256_and_ps(sd, gv);
  _mm256_storeu_ps(d0, _mm256_unpacklo_ps(oa, ob));
  _mm256_storeu_ps(d0 + 8, _mm256_unpackhi_ps(oa, ob));
  _mm256_storeu_ps(d1, _mm256_unpacklo_ps(oc, od));
  _mm256_storeu_ps(d1 + 8, _mm256_unpackhi_ps(oc, od));
}
#endif

}  // namespace

void transpose(const float* x, int64_t rows, int64_t cols, float* y) {
  // 32x32 tiles keep both the reads and the writes within a few cache lines; inside a tile,
  // 8x8 blocks go through the AVX2 transpose (a copy: the same bits as the scalar loop).
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  // At least 16K floats per chunk: a weight matrix (a pointwise conv's 64x64) is copied on the
  // calling thread, not in a fork-join costing more than the copy.
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / (kTile * std::max<int64_t>(cols, 1)));
  parallel_for(0, row_tiles, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        int64_t r = r0;
#ifdef __AVX2__
        for (; r + 8 <= r1; r += 8) {
          int64_t c = c0;
          for (; c + 8 <= c1; c += 8) {
            const float* src[8];
            for (int u = 0; u < 8; ++u) src[u] = x + (r + u) * cols + c;
            detail::transpose8x8_store(src, y + c * rows + r, rows);
          }
          for (; c < c1; ++c) {
            for (int64_t u = r; u < r + 8; ++u) y[c * rows + u] = x[u * cols + c];
          }
        }
#endif
        for (; r < r1; ++r) {
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

void parallel_loops(std::initializer_list<ItemLoop> loops) {
  if (loops.size() == 1) {
    const ItemLoop& l = *loops.begin();
    parallel_for(0, l.items, l.grain, l.fn);
    return;
  }
  auto units = [](const ItemLoop& l) {
    return l.items <= 0 ? 0 : (l.items + l.grain - 1) / std::max<int64_t>(1, l.grain);
  };
  int64_t total = 0;
  for (const ItemLoop& l : loops) total += units(l);
  parallel_for(0, total, 1, [&](int64_t u0, int64_t u1) {
    int64_t base = 0;
    for (const ItemLoop& l : loops) {
      const int64_t nu = units(l), g = std::max<int64_t>(1, l.grain);
      const int64_t a = std::max(u0, base), b = std::min(u1, base + nu);
      if (a < b) l.fn((a - base) * g, std::min(l.items, (b - base) * g));
      base += nu;
    }
  });
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

// BatchNorm walks a chunk of channels image by image (for each image, the chunk's planes are one
// contiguous block), keeping each channel's lanes in a per-chunk array: every channel still
// sees its planes in image order, so the sums (and bits) are those of a channel-by-channel walk,
// but the memory is read in long runs instead of one short plane per image and channel.
namespace {

// batch_norm_train_forward, and with relu_y != nullptr also relu_y = relu(y) in the same pass.
void batch_norm_forward_impl(const kernels::BatchNormParams& p, double momentum, const float* x,
                             const float* scale, const float* bias, float* y, float* relu_y,
                             float* running_mean, float* running_var, float* save_mean,
                             float* save_invstd) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  parallel_for(0, p.channels, 1, [&](int64_t c0, int64_t c1) {
    // One pass in double (Lanes8) over x - K, K = the channel's first value (near the mean,
    // so the centred sum of squares S2 - S1^2 / n keeps its precision), then one for y.
    thread_local std::vector<detail::Lanes8> s1, s2;
    thread_local std::vector<float> a, shift;
    const int64_t nc = c1 - c0;
    s1.assign(nc, detail::Lanes8{});
    s2.assign(nc, detail::Lanes8{});
    a.resize(nc);
    shift.resize(nc);
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t c = c0; c < c1; ++c) {
        const double k0 = x[c * p.spatial];
        detail::lanes_shifted_moments(s1[c - c0], s2[c - c0], x + b * stride + c * p.spatial,
                                      p.spatial, k0);
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      const double k0 = x[c * p.spatial];
      const double d1 = s1[c - c0].total();
      const double mean = k0 + d1 / static_cast<double>(n);
      const double sq = std::max(0.0, s2[c - c0].total() - d1 * d1 / static_cast<double>(n));
      const double var = sq / static_cast<double>(n);
      const double invstd = 1.0 / std::sqrt(var + static_cast<double>(p.epsilon));
      a[c - c0] = static_cast<float>(scale[c] * invstd);
      shift[c - c0] = static_cast<float>(bias[c] - mean * scale[c] * invstd);
      const double unbiased = n > 1 ? sq / static_cast<double>(n - 1) : var;
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
      save_mean[c] = static_cast<float>(mean);
      save_invstd[c] = static_cast<float>(invstd);
    }
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t c = c0; c < c1; ++c) {
        const float* xs = x + b * stride + c * p.spatial;
        float* ys = y + b * stride + c * p.spatial;
        const float ac = a[c - c0], sc = shift[c - c0];
        if (relu_y == nullptr) {
          for (int64_t s = 0; s < p.spatial; ++s) ys[s] = xs[s] * ac + sc;
          continue;
        }
        float* rs = relu_y + b * stride + c * p.spatial;
        for (int64_t s = 0; s < p.spatial; ++s) {
          const float v = xs[s] * ac + sc;
          ys[s] = v;
          rs[s] = std::isnan(v) ? v : std::max(v, 0.0f);  // relu_forward's rule
        }
      }
    }
  });
}

}  // namespace

void batch_norm_train_forward(const kernels::BatchNormParams& p, double momentum, const float* x,
                              const float* scale, const float* bias, float* y, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd) {
  batch_norm_forward_impl(p, momentum, x, scale, bias, y, nullptr, running_mean, running_var,
                          save_mean, save_invstd);
}

void batch_norm_relu_train_forward(const kernels::BatchNormParams& p, double momentum,
                                   const float* x, const float* scale, const float* bias, float* y,
                                   float* relu_y, float* running_mean, float* running_var,
                                   float* save_mean, float* save_invstd) {
  batch_norm_forward_impl(p, momentum, x, scale, bias, y, relu_y, running_mean, running_var,
                          save_mean, save_invstd);
}

namespace {

// batch_norm_backward; with relu_y != nullptr, dy is first masked by the ReLU after the BatchNorm
// (relu_backward's rule), plane by plane in the same pass, into g (the BatchNorm output's
// gradient, then read as dy).
void batch_norm_backward_impl(const kernels::BatchNormParams& p, const float* x, const float* dy,
                              const float* relu_y, float* g, const float* scale,
                              const float* save_mean, const float* save_invstd, float* dx,
                              float* dscale, float* dbias) {
  const int64_t n = p.batch * p.spatial;
  const int64_t stride = p.channels * p.spatial;
  parallel_for(0, p.channels, 1, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<detail::Lanes8> sg, sgx;  // sums of dy and of dy * xhat, in double
    thread_local std::vector<float> k, mean_dy, mean_dy_xhat;
    const int64_t nc = c1 - c0;
    sg.assign(nc, detail::Lanes8{});
    sgx.assign(nc, detail::Lanes8{});
    k.resize(nc);
    mean_dy.resize(nc);
    mean_dy_xhat.resize(nc);
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = b * stride + c * p.spatial;
        if (relu_y != nullptr) {
          const float *ry = relu_y + off, *gy = dy + off;
          float* gs = g + off;
          for (int64_t s = 0; s < p.spatial; ++s) {
            const float v = gy[s];
            gs[s] = ry[s] > 0.0f ? v : 0.0f;
          }
        }
        detail::lanes_bn_grad(sg[c - c0], sgx[c - c0], x + off, (relu_y ? g : dy) + off, p.spatial,
                              save_mean[c], save_invstd[c]);
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      const double sum_dy = sg[c - c0].total(), sum_dy_xhat = sgx[c - c0].total();
      dbias[c] = static_cast<float>(sum_dy);
      dscale[c] = static_cast<float>(sum_dy_xhat);
      // dx = k (dy - mean(dy) - xhat mean(dy xhat)), elementwise in float (vectorised).
      k[c - c0] = static_cast<float>(scale[c] * static_cast<double>(save_invstd[c]));
      mean_dy[c - c0] = static_cast<float>(sum_dy / static_cast<double>(n));
      mean_dy_xhat[c - c0] = static_cast<float>(sum_dy_xhat / static_cast<double>(n));
    }
    if (dx == nullptr) return;
    for (int64_t b = 0; b < p.batch; ++b) {
      for (int64_t c = c0; c < c1; ++c) {
        const float* xs = x + b * stride + c * p.spatial;
        const float* gs = (relu_y ? g : dy) + b * stride + c * p.spatial;
        float* ds = dx + b * stride + c * p.spatial;
        const float kc = k[c - c0], md = mean_dy[c - c0], mdx = mean_dy_xhat[c - c0];
        const float mf = save_mean[c], isf = save_invstd[c];
        for (int64_t s = 0; s < p.spatial; ++s) {
          const float xhat = (xs[s] - mf) * isf;
          ds[s] = kc * (gs[s] - md - xhat * mdx);
        }
      }
    }
  });
}

}  // namespace

void batch_norm_backward(const kernels::BatchNormParams& p, const float* x, const float* dy,
                         const float* scale, const float* save_mean, const float* save_invstd,
                         float* dx, float* dscale, float* dbias) {
  batch_norm_backward_impl(p, x, dy, nullptr, nullptr, scale, save_mean, save_invstd, dx, dscale,
                           dbias);
}

void batch_norm_relu_backward(const kernels::BatchNormParams& p, const float* x,
                              const float* relu_y, const float* relu_dy, float* dy,
                              const float* scale, const float* save_mean, const float* save_invstd,
                              float* dx, float* dscale, float* dbias) {
  batch_norm_backward_impl(p, x, relu_dy, relu_y, dy, scale, save_mean, save_invstd, dx, dscale,
                           dbias);
}

void relu_forward(const float* x, float* y, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = std::isnan(x[i]) ? x[i] : std::max(x[i], 0.0f);
  });
}

void relu_backward(const float* y, const float* dy, float* dx, int64_t n) {
  parallel_for(0, n, kElemGrain, [&](int64_t b, int64_t e) {
    // dy is read unconditionally, so that the select vectorises (a conditional load does not).
    for (int64_t i = b; i < e; ++i) {
      const float g = dy[i];
      dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
  });
}

void max_pool2d_backward(const kernels::Pool2dParams& p, const float* x, const float* dy,
                         float* dx) {
  const int64_t in_hw = p.in_h * p.in_w, out_hw = p.out_h * p.out_w;
  const bool tiled = p.kernel_h == p.stride_h && p.kernel_w == p.stride_w && p.pad_top == 0 &&
                     p.pad_left == 0 && p.dilation_h == 1 && p.dilation_w == 1 &&
                     p.out_h * p.kernel_h <= p.in_h && p.out_w * p.kernel_w <= p.in_w;
  if (tiled) {
    // Windows tile the image (the usual 2x2 / stride 2): each input is in at most one window,
    // so every dx element is written exactly once, without bounds checks.
    parallel_for(0, p.batch * p.channels, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xc = x + r * in_hw;
        const float* gc = dy + r * out_hw;
        float* dc = dx + r * in_hw;
        for (int64_t oh = 0; oh < p.out_h; ++oh) {
          for (int64_t i = 0; i < p.kernel_h; ++i) {
            float* row = dc + (oh * p.kernel_h + i) * p.in_w;
            std::fill(row + p.out_w * p.kernel_w, row + p.in_w, 0.0f);  // uncovered columns
          }
          if (p.kernel_h == 2 && p.kernel_w == 2) {
            // The common case, branch-free: the first maximum of (a, b, c, d) in tap order.
            const float* x0 = xc + 2 * oh * p.in_w;
            const float* x1 = x0 + p.in_w;
            float* d0 = dc + 2 * oh * p.in_w;
            float* d1 = d0 + p.in_w;
            int64_t ow = 0;
#ifdef __AVX2__
            for (; ow + 8 <= p.out_w; ow += 8)
              max_pool_2x2_backward8(x0 + 2 * ow, x1 + 2 * ow, gc + oh * p.out_w + ow, d0 + 2 * ow,
                                     d1 + 2 * ow);
#endif
            for (; ow < p.out_w; ++ow) {
              const float a = x0[2 * ow], b = x0[2 * ow + 1], c = x1[2 * ow], d = x1[2 * ow + 1];
              float best = a;
              int arg = 0;
              // NaN wins, and a later NaN over an earlier one, as in PyTorch's kernel.
              const bool tb = b > best || b != b;
              best = tb ? b : best;
              arg = tb ? 1 : arg;
              const bool tc = c > best || c != c;
              best = tc ? c : best;
              arg = tc ? 2 : arg;
              const bool td = d > best || d != d;
              arg = td ? 3 : arg;
              const float g = gc[oh * p.out_w + ow];
              d0[2 * ow] = arg == 0 ? g : 0.0f;
              d0[2 * ow + 1] = arg == 1 ? g : 0.0f;
              d1[2 * ow] = arg == 2 ? g : 0.0f;
              d1[2 * ow + 1] = arg == 3 ? g : 0.0f;
            }
            continue;
          }
          for (int64_t ow = 0; ow < p.out_w; ++ow) {
            const int64_t base = oh * p.kernel_h * p.in_w + ow * p.kernel_w;
            int64_t arg = base;
            float best = xc[base];
            for (int64_t i = 0; i < p.kernel_h; ++i) {
              for (int64_t j = 0; j < p.kernel_w; ++j) {
                const int64_t at = base + i * p.in_w + j;
                const float v = xc[at];
                const bool take = at != base && (v > best || v != v);
                best = take ? v : best;
                arg = take ? at : arg;
                dc[at] = 0.0f;
              }
            }
            dc[arg] = gc[oh * p.out_w + ow];
          }
        }
        std::fill(dc + p.out_h * p.kernel_h * p.in_w, dc + in_hw, 0.0f);  // uncovered rows
      }
    });
    return;
  }
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
              if (arg < 0 || v > best || std::isnan(v)) {
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
