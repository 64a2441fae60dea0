#include "kernels/pool.h"

#include <algorithm>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/ref/pool.h"

namespace qsearch::kernels {

namespace {

// Row buffers live on the stack; wider images use the reference kernel.
constexpr int64_t kMaxRow = 4096;

// The valid taps [i0, i1) of a window starting at `start` with `k` taps `d` apart in [0, n).
inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t n, int64_t& i0, int64_t& i1) {
  i0 = start >= 0 ? 0 : (-start + d - 1) / d;
  i1 = start >= n ? 0 : std::min<int64_t>(k, (n - start + d - 1) / d);
  if (i1 < i0) i1 = i0;
}

inline float nan_max(float m, float v) { return (v > m || v != v) ? v : m; }

template <bool kMax>
void pool_planes(const Pool2dParams& p, const float* x, float* y, int64_t begin, int64_t end) {
  alignas(64) float row[kMaxRow];
  for (int64_t plane = begin; plane < end; ++plane) {
    const float* xp = x + plane * p.in_h * p.in_w;
    float* yp = y + plane * p.out_h * p.out_w;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_top;
      int64_t i0, i1;
      tap_range(h0, p.kernel_h, p.dilation_h, p.in_h, i0, i1);
      // Pass 1: reduce the window's rows into `row` (W wide).
      if (i1 <= i0) {
        std::fill(row, row + p.in_w, kMax ? -std::numeric_limits<float>::infinity() : 0.0f);
      } else {
        const float* r0 = xp + (h0 + i0 * p.dilation_h) * p.in_w;
        std::copy(r0, r0 + p.in_w, row);
        for (int64_t i = i0 + 1; i < i1; ++i) {
          const float* r = xp + (h0 + i * p.dilation_h) * p.in_w;
          if constexpr (kMax) {
            for (int64_t w = 0; w < p.in_w; ++w) row[w] = nan_max(row[w], r[w]);
          } else {
            for (int64_t w = 0; w < p.in_w; ++w) row[w] += r[w];
          }
        }
      }
      // Pass 2: reduce across the window's columns.
      const int64_t rows_inside = i1 - i0;
      int64_t rows_padded = 0;
      if constexpr (!kMax) {
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const int64_t h = h0 + i * p.dilation_h;
          rows_padded += h >= -p.pad_top && h < p.in_h + p.pad_bottom;
        }
      }
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_left;
        int64_t j0, j1;
        tap_range(w0, p.kernel_w, p.dilation_w, p.in_w, j0, j1);
        if constexpr (kMax) {
          float m = -std::numeric_limits<float>::infinity();
          if (rows_inside > 0) {
            for (int64_t j = j0; j < j1; ++j) m = nan_max(m, row[w0 + j * p.dilation_w]);
          }
          yp[oh * p.out_w + ow] = m;
        } else {
          float s = 0.0f;
          for (int64_t j = j0; j < j1; ++j) s += row[w0 + j * p.dilation_w];
          int64_t count;
          if (p.count_include_pad) {
            int64_t cols_padded = 0;
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              const int64_t w = w0 + j * p.dilation_w;
              cols_padded += w >= -p.pad_left && w < p.in_w + p.pad_right;
            }
            count = rows_padded * cols_padded;
          } else {
            count = rows_inside * (j1 - j0);
          }
          yp[oh * p.out_w + ow] = s / static_cast<float>(count);
        }
      }
    }
  }
}

template <bool kMax>
void pool(const Pool2dParams& p, const float* x, float* y) {
  if (p.in_w > kMaxRow) {
    return kMax ? ref::max_pool2d_f32(p, x, y) : ref::avg_pool2d_f32(p, x, y);
  }
  struct Ctx {
    const Pool2dParams* p;
    const float* x;
    float* y;
  } ctx{&p, x, y};
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.in_h * p.in_w));
  parallel_for(0, p.batch * p.channels, grain, [&ctx](int64_t begin, int64_t end) {
    pool_planes<kMax>(*ctx.p, ctx.x, ctx.y, begin, end);
  });
}

}  // namespace

void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y) { pool<true>(p, x, y); }
void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y) { pool<false>(p, x, y); }

}  // namespace qsearch::kernels
