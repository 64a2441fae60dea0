#include "kernels/ref/conv.h"

#include <cmath>

#include "core/check.h"

namespace qsearch::kernels::ref {

void conv2d_f32(const Conv2dParams& p, const float* x, const float* w, const float* bias,
                float* y) {
  QSEARCH_DCHECK(p.groups >= 1 && p.in_channels % p.groups == 0 && p.out_channels % p.groups == 0);
  const int64_t cg = p.in_channels / p.groups;   // input channels per group
  const int64_t mg = p.out_channels / p.groups;  // output channels per group
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const int64_t g = o / mg;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          double acc = 0.0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t i = 0; i < p.kernel_h; ++i) {
              const int64_t h = oh * p.stride_h - p.pad_top + i * p.dilation_h;
              if (h < 0 || h >= p.in_h) continue;
              for (int64_t j = 0; j < p.kernel_w; ++j) {
                const int64_t ww = ow * p.stride_w - p.pad_left + j * p.dilation_w;
                if (ww < 0 || ww >= p.in_w) continue;
                const float xv = x[((b * p.in_channels + g * cg + c) * p.in_h + h) * p.in_w + ww];
                const float wv = w[((o * cg + c) * p.kernel_h + i) * p.kernel_w + j];
                acc += static_cast<double>(xv) * static_cast<double>(wv);
              }
            }
          }
          if (bias != nullptr) acc += bias[o];
          y[((b * p.out_channels + o) * p.out_h + oh) * p.out_w + ow] = static_cast<float>(acc);
        }
      }
    }
  }
}

void batch_norm_f32(const BatchNormParams& p, const float* x, const float* scale, const float* bias,
                    const float* mean, const float* var, float* y) {
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const double inv_std =
          1.0 / std::sqrt(static_cast<double>(var[c]) + static_cast<double>(p.epsilon));
      const int64_t base = (b * p.channels + c) * p.spatial;
      for (int64_t s = 0; s < p.spatial; ++s) {
        double v = (static_cast<double>(x[base + s]) - mean[c]) * inv_std * scale[c] + bias[c];
        y[base + s] = static_cast<float>(v);
      }
    }
  }
}

}  // namespace qsearch::kernels::ref
