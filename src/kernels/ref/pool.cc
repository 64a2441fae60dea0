#include "kernels/ref/pool.h"

#include <cmath>
#include <limits>

namespace qsearch::kernels::ref {

void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y) {
  for (int64_t bc = 0; bc < p.batch * p.channels; ++bc) {
    const float* xc = x + bc * p.in_h * p.in_w;
    float* yc = y + bc * p.out_h * p.out_w;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          if (h < 0 || h >= p.in_h) continue;
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            const int64_t w = ow * p.stride_w - p.pad_left + j * p.dilation_w;
            if (w < 0 || w >= p.in_w) continue;
            const float v = xc[h * p.in_w + w];
            if (v > m || std::isnan(v)) m = v;
            if (std::isnan(m)) break;
          }
        }
        yc[oh * p.out_w + ow] = m;
      }
    }
  }
}

void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y) {
  for (int64_t bc = 0; bc < p.batch * p.channels; ++bc) {
    const float* xc = x + bc * p.in_h * p.in_w;
    float* yc = y + bc * p.out_h * p.out_w;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        double sum = 0.0;
        int64_t inside = 0, padded = 0;
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
          const bool h_in = h >= 0 && h < p.in_h;
          const bool h_pad = h >= -p.pad_top && h < p.in_h + p.pad_bottom;
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            const int64_t w = ow * p.stride_w - p.pad_left + j * p.dilation_w;
            const bool w_in = w >= 0 && w < p.in_w;
            const bool w_pad = w >= -p.pad_left && w < p.in_w + p.pad_right;
            if (h_pad && w_pad) ++padded;
            if (h_in && w_in) {
              ++inside;
              sum += xc[h * p.in_w + w];
            }
          }
        }
        const int64_t count = p.count_include_pad ? padded : inside;
        yc[oh * p.out_w + ow] = static_cast<float>(sum / static_cast<double>(count));
      }
    }
  }
}

void global_avg_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t s = 0; s < spatial; ++s) sum += x[r * spatial + s];
    y[r] = static_cast<float>(sum / static_cast<double>(spatial));
  }
}

}  // namespace qsearch::kernels::ref
