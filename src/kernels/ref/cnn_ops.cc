#include "kernels/ref/cnn_ops.h"

#include <cmath>
#include <limits>

namespace qsearch::kernels::ref {

void hard_sigmoid_f32(float alpha, float beta, bool swish, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::fma(alpha, x[i], beta);
    const float h = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    y[i] = swish ? x[i] * h : h;
  }
}

void global_max_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < spatial; ++s) {
      const float v = x[r * spatial + s];
      if (v > m || std::isnan(v)) m = v;
      if (std::isnan(m)) break;
    }
    y[r] = m;
  }
}

void pad_f32(const PadParams& p, const float* x, float* y) {
  Dims out{};
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) {
    out[d] = p.in_shape[d] + p.begin[d] + p.end[d];
    total *= out[d];
  }
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rem = flat, src = 0, stride = 1;
    bool inside = true;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t i = rem % out[d];
      rem /= out[d];
      const int64_t s = pad_source(i, p.in_shape[d], p.begin[d], p.mode);
      if (s < 0) inside = false;
      src += s * stride;
      stride *= p.in_shape[d];
    }
    y[flat] = inside ? x[src] : p.value;
  }
}

void resize_f32(const ResizeParams& p, const float* x, float* y) {
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * p.in_h * p.in_w;
    for (int64_t oy = 0; oy < p.out_h; ++oy) {
      const ResizeTap ty = resize_tap(oy, p.in_h, p.out_h, p.scale_h, p.linear, p.coord, p.nearest);
      for (int64_t ox = 0; ox < p.out_w; ++ox) {
        const ResizeTap tx =
            resize_tap(ox, p.in_w, p.out_w, p.scale_w, p.linear, p.coord, p.nearest);
        y[(pl * p.out_h + oy) * p.out_w + ox] = resize_value(xp, p.in_w, ty, tx);
      }
    }
  }
}

}  // namespace qsearch::kernels::ref
