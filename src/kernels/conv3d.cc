#include "kernels/conv3d.h"

#include <cstring>

namespace qsearch::kernels {

namespace {
// The input row t / s a transposed tap reads, or -1 when s does not divide t (an inserted zero).
int64_t tap(int64_t t, int64_t s) { return t >= 0 && t % s == 0 ? t / s : -1; }

// Calls row(reads, d, h) for each gathered row of one (image, channel) plane, in im2col3d's
// order (tap i, tap r, output depth, output row): the input depth d and row h it reads, and
// whether they lie inside the input (otherwise the row is padding or an inserted zero).
template <typename Row>
void gathered_rows(const Im2Col3dParams& p, Row&& row) {
  for (int64_t i = 0; i < p.kernel_d; ++i) {
    for (int64_t r = 0; r < p.kernel_h; ++r) {
      for (int64_t od = 0; od < p.out_d; ++od) {
        int64_t d = od * p.stride_d - p.pad_d + i * p.dilation_d;
        if (p.transposed) d = tap(od + p.pad_d - i * p.dilation_d, p.stride_d);
        for (int64_t oh = 0; oh < p.out_h; ++oh) {
          int64_t h = oh * p.stride_h - p.pad_h + r * p.dilation_h;
          if (p.transposed) h = tap(oh + p.pad_h - r * p.dilation_h, p.stride_h);
          row(d >= 0 && d < p.in_d && h >= 0 && h < p.in_h, d, h);
        }
      }
    }
  }
}
}  // namespace

void im2col3d(const Im2Col3dParams& p, int elem_size, const void* x, void* y) {
  const auto* in = static_cast<const unsigned char*>(x);
  auto* out = static_cast<unsigned char*>(y);
  const int64_t row = p.width * elem_size;  // one W row, in bytes
  const int64_t plane = p.in_h * row, volume = p.in_d * plane;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const unsigned char* src = in + (n * p.channels + c) * volume;
      gathered_rows(p, [&](bool reads, int64_t d, int64_t h) {
        if (reads) {
          std::memcpy(out, src + d * plane + h * row, static_cast<size_t>(row));
        } else {
          std::memset(out, 0, static_cast<size_t>(row));
        }
        out += row;
      });
    }
  }
}

void im2col3d_backward(const Im2Col3dParams& p, const float* dy, float* dx) {
  const int64_t plane = p.in_h * p.width, volume = p.in_d * plane;
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t c = 0; c < p.channels; ++c) {
      float* dst = dx + (n * p.channels + c) * volume;
      for (int64_t e = 0; e < volume; ++e) dst[e] = 0.0f;
      gathered_rows(p, [&](bool reads, int64_t d, int64_t h) {
        if (reads) {
          float* row = dst + d * plane + h * p.width;
          for (int64_t w = 0; w < p.width; ++w) row[w] += dy[w];
        }
        dy += p.width;
      });
    }
  }
}

}  // namespace qsearch::kernels
