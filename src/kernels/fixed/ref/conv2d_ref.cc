#include "kernels/fixed/ref/conv2d_ref.h"

#include "kernels/fixed/ref/gemm_ref.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed::ref {

void conv2d(const void* x, int64_t batch, const Conv2dGeometry& g, const Conv2dWeights& w,
            const GemmParams& p, void* y) {
  const int64_t cg = g.in_channels / g.groups, ocg = g.out_channels / g.groups;
  const int64_t oh = g.out_h(), ow = g.out_w();
  const bool has_bias = w.bias != nullptr;
  const int f = acc_frac_of(w.a_format.frac, w.w_format.frac, has_bias, w.bias_format.frac);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t o = 0; o < g.out_channels; ++o) {
      const int64_t group = o / ocg;
      for (int64_t py = 0; py < oh; ++py) {
        for (int64_t px = 0; px < ow; ++px) {
          __int128_t sum = 0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t u = 0; u < g.kernel_h; ++u) {
              for (int64_t v = 0; v < g.kernel_w; ++v) {
                const int64_t iy = py * g.stride_h - g.pad_top + u * g.dilation_h;
                const int64_t ix = px * g.stride_w - g.pad_left + v * g.dilation_w;
                if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) continue;  // zero pad
                const int64_t xi =
                    ((n * g.in_channels + group * cg + c) * g.in_h + iy) * g.in_w + ix;
                const int64_t wi = ((o * cg + c) * g.kernel_h + u) * g.kernel_w + v;
                sum += static_cast<__int128_t>(quant::load_code(x, w.a_dtype, xi)) *
                       quant::load_code(w.w, w.w_dtype, wi);
              }
            }
          }
          __int128_t acc = shift_left(sum, f - w.a_format.frac - w.w_format.frac);
          if (has_bias) {
            acc += shift_left(quant::load_code(w.bias, w.bias_dtype, o), f - w.bias_format.frac);
          }
          store_exact(acc, f, p, y, ((n * g.out_channels + o) * oh + py) * ow + px);
        }
      }
    }
  }
}

}  // namespace qsearch::kernels::fixed::ref
