#include "kernels/cnn_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/thread_pool.h"

namespace qsearch::kernels {

void hard_sigmoid_f32(float alpha, float beta, bool swish, const float* x, float* y, int64_t n) {
  parallel_for(0, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = std::fma(alpha, x[i], beta);
      const float h = std::min(std::max(v, 0.0f), 1.0f);
      // std::max(NaN, 0) is 0: keep NaN as the reference does.
      const float hh = std::isnan(v) ? v : h;
      y[i] = swish ? x[i] * hh : hh;
    }
  });
}

void global_max_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y) {
  parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, spatial)),
               [&](int64_t b, int64_t e) {
                 ref::global_max_pool_f32(e - b, spatial, x + b * spatial, y + b);
               });
}

void pad_f32(const PadParams& p, const float* x, float* y) {
  if (p.rank == 0) {
    y[0] = x[0];
    return;
  }
  const int last = p.rank - 1;
  const int64_t in_w = p.in_shape[last], b0 = p.begin[last], e0 = p.end[last];
  const int64_t out_w = in_w + b0 + e0;
  Dims out{};
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) {
    out[d] = p.in_shape[d] + p.begin[d] + p.end[d];
    rows *= out[d];
  }
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out_w)),
               [&](int64_t rb, int64_t re) {
                 for (int64_t r = rb; r < re; ++r) {
                   int64_t rem = r, src = 0, stride = in_w;
                   bool inside = true;
                   for (int d = last - 1; d >= 0; --d) {
                     const int64_t i = rem % out[d];
                     rem /= out[d];
                     const int64_t s = pad_source(i, p.in_shape[d], p.begin[d], p.mode);
                     if (s < 0) inside = false;
                     src += s * stride;
                     stride *= p.in_shape[d];
                   }
                   float* yr = y + r * out_w;
                   if (!inside) {
                     std::fill(yr, yr + out_w, p.value);
                     continue;
                   }
                   const float* xr = x + src;
                   for (int64_t i = 0; i < b0; ++i) {
                     const int64_t s = pad_source(i, in_w, b0, p.mode);
                     yr[i] = s < 0 ? p.value : xr[s];
                   }
                   if (in_w > 0)
                     std::memcpy(yr + b0, xr, static_cast<size_t>(in_w) * sizeof(float));
                   for (int64_t i = b0 + in_w; i < out_w; ++i) {
                     const int64_t s = pad_source(i, in_w, b0, p.mode);
                     yr[i] = s < 0 ? p.value : xr[s];
                   }
                 }
               });
}

void resize_f32(const ResizeParams& p, const float* x, float* y) {
  std::vector<ResizeTap> ty(p.out_h), tx(p.out_w);
  for (int64_t o = 0; o < p.out_h; ++o) {
    ty[o] = resize_tap(o, p.in_h, p.out_h, p.scale_h, p.linear, p.coord, p.nearest);
  }
  for (int64_t o = 0; o < p.out_w; ++o) {
    tx[o] = resize_tap(o, p.in_w, p.out_w, p.scale_w, p.linear, p.coord, p.nearest);
  }
  parallel_for(0, p.planes * p.out_h, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.out_w)),
               [&](int64_t b, int64_t e) {
                 for (int64_t r = b; r < e; ++r) {
                   const int64_t pl = r / p.out_h, oy = r % p.out_h;
                   const float* xp = x + pl * p.in_h * p.in_w;
                   float* yr = y + r * p.out_w;
                   for (int64_t ox = 0; ox < p.out_w; ++ox) {
                     yr[ox] = resize_value(xp, p.in_w, ty[oy], tx[ox]);
                   }
                 }
               });
}

}  // namespace qsearch::kernels
