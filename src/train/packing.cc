#include "train/packing.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <vector>

#include "train/transpose8.h"

namespace qsearch::train {

namespace {

// Sizes `out` for a [k, n] B operand and returns its first panel.
float* prepare(int64_t k, int64_t n, kernels::PackedB& out) {
  const kernels::Isa isa = kernels::best_isa();
  const int nr = kernels::tile_shape(isa).nr;
  const int64_t need = std::max<int64_t>(1, (n + nr - 1) / nr * k * nr);
  if (out.data.empty() || out.data.numel() < need || out.isa != isa) {
    out.data = Tensor({need}, DType::kFloat32);
  }
  out.isa = isa;
  out.nr = nr;
  out.k = k;
  out.n = n;
  return out.data.data<float>();
}

}  // namespace

void pack_b_into(const float* b, int64_t k, int64_t n, bool trans, kernels::PackedB& out) {
  float* dst = prepare(k, n, out);
  const int nr = out.nr;
  const int64_t panels = (n + nr - 1) / nr;
  for (int64_t j = 0; j < panels; ++j) {
    float* panel = dst + j * k * nr;
    const int64_t c0 = j * nr;
    const int64_t width = std::min<int64_t>(nr, n - c0);
    if (!trans) {
      for (int64_t kk = 0; kk < k; ++kk) {
        float* row = panel + kk * nr;
        std::memcpy(row, b + kk * n + c0, width * sizeof(float));
        std::fill(row + width, row + nr, 0.0f);
      }
    } else {
      // b is [n, k]: each of the panel's columns is a contiguous row of b.
      for (int64_t c = 0; c < width; ++c) {
        const float* src = b + (c0 + c) * k;
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * nr + c] = src[kk];
      }
      for (int64_t c = width; c < nr; ++c) {
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * nr + c] = 0.0f;
      }
    }
  }
}

#ifdef __AVX2__
// pack_conv_columns for stride_w = 1: each image's channels are first copied into a zero-padded
// buffer large enough that every tap of every output reads inside it, so all blocks of 8
// pixels x 8 taps go through the transposing store (a short last block stores fewer rows).
void pack_conv_columns_stride1(const kernels::Conv2dParams& p, const float* x, int64_t image_stride,
                               int64_t images, kernels::PackedB& out) {
  const int64_t pixels = p.out_h * p.out_w;
  const int64_t taps = p.in_channels * p.kernel_h * p.kernel_w;
  const int64_t k = images * pixels;
  float* dst = prepare(k, taps, out);
  const int nr = out.nr;
  const int64_t panels = (taps + nr - 1) / nr;
  const int64_t hp = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  const int64_t wp = (p.out_w - 1) + (p.kernel_w - 1) * p.dilation_w + 8;
  thread_local std::vector<float> padded;
  padded.assign(p.in_channels * hp * wp, 0.0f);
  // Offsets of each tap's first read in the padded image of output pixel (0, 0).
  std::vector<int64_t> tap(taps);
  for (int64_t c = 0; c < p.in_channels; ++c) {
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        tap[(c * p.kernel_h + i) * p.kernel_w + j] =
            (c * hp + i * p.dilation_h) * wp + j * p.dilation_w;
      }
    }
  }
  // Image rows / columns that land inside the padded buffer.
  const int64_t h_lo = std::max<int64_t>(0, -p.pad_top);
  const int64_t h_hi = std::min<int64_t>(p.in_h, hp - p.pad_top);
  const int64_t w_lo = std::max<int64_t>(0, -p.pad_left);
  const int64_t w_hi = std::min<int64_t>(p.in_w, wp - p.pad_left);
  alignas(32) float block[64];
  for (int64_t img = 0; img < images; ++img) {
    const float* xi = x + img * image_stride;
    for (int64_t c = 0; c < p.in_channels; ++c) {
      for (int64_t h = h_lo; h < h_hi; ++h) {
        if (w_hi <= w_lo) break;
        std::memcpy(padded.data() + (c * hp + h + p.pad_top) * wp + w_lo + p.pad_left,
                    xi + (c * p.in_h + h) * p.in_w + w_lo, (w_hi - w_lo) * sizeof(float));
      }
    }
    for (int64_t j = 0; j < panels; ++j) {
      const int64_t t0 = j * nr, width = std::min<int64_t>(nr, taps - t0);
      float* panel = dst + (j * k + img * pixels) * nr;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const float* base = padded.data() + oh * p.stride_h * wp;
        float* lines = panel + oh * p.out_w * nr;
        for (int64_t ow0 = 0; ow0 < p.out_w; ow0 += 8) {
          const int64_t rows = std::min<int64_t>(8, p.out_w - ow0);
          float* d = lines + ow0 * nr;
          int64_t t = 0;
          for (; t + 8 <= width; t += 8) {
            const float* src[8];
            for (int u = 0; u < 8; ++u) src[u] = base + tap[t0 + t + u] + ow0;
            if (rows == 8) {
              detail::transpose8x8_store(src, d + t, nr);
            } else {
              detail::transpose8x8_store(src, block, 8);
              for (int64_t r = 0; r < rows; ++r) std::memcpy(d + r * nr + t, block + r * 8, 32);
            }
          }
          for (; t < width; ++t) {
            const float* src = base + tap[t0 + t] + ow0;
            for (int64_t r = 0; r < rows; ++r) d[r * nr + t] = src[r];
          }
          for (; t < nr; ++t) {
            for (int64_t r = 0; r < rows; ++r) d[r * nr + t] = 0.0f;
          }
        }
      }
    }
    // The next image overwrites exactly the same area of `padded`; the border stays zero.
  }
}
#endif

void pack_conv_columns(const kernels::Conv2dParams& p, const float* x, int64_t image_stride,
                       int64_t images, kernels::PackedB& out) {
#ifdef __AVX2__
  if (p.stride_w == 1) {
    pack_conv_columns_stride1(p, x, image_stride, images, out);
    return;
  }
#endif
  const int64_t pixels = p.out_h * p.out_w;
  const int64_t taps = p.in_channels * p.kernel_h * p.kernel_w;
  const int64_t k = images * pixels;
  float* dst = prepare(k, taps, out);
  const int nr = out.nr;
  const int64_t panels = (taps + nr - 1) / nr;
  // Per tap: the input channel's offset, the row offset and the column offset of its tap.
  struct Tap {
    int64_t channel, dh, w0;
  };
  std::vector<Tap> tap(taps);
  for (int64_t c = 0; c < p.in_channels; ++c) {
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        tap[(c * p.kernel_h + i) * p.kernel_w + j] = {
            c * p.in_h * p.in_w, i * p.dilation_h - p.pad_top, j * p.dilation_w - p.pad_left};
      }
    }
  }
  // A block of 8 output pixels of one row: its destination lines (8 x NR floats) stay in L1
  // while every tap of the panel fills its lane, element by element.
  constexpr int64_t kBlock = 8;
  for (int64_t j = 0; j < panels; ++j) {
    const int64_t t0 = j * nr, width = std::min<int64_t>(nr, taps - t0);
    float* panel = dst + j * k * nr;
    for (int64_t img = 0; img < images; ++img) {
      const float* xi = x + img * image_stride;
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        for (int64_t ow0 = 0; ow0 < p.out_w; ow0 += kBlock) {
          const int64_t ow1 = std::min(p.out_w, ow0 + kBlock);
          float* lines = panel + (img * pixels + oh * p.out_w) * nr;
          int64_t t = 0;
          for (; t < width; ++t) {
            const Tap& tp = tap[t0 + t];
            const int64_t h = oh * p.stride_h + tp.dh;
            if (h < 0 || h >= p.in_h) {
              for (int64_t ow = ow0; ow < ow1; ++ow) lines[ow * nr + t] = 0.0f;
              continue;
            }
            const float* row = xi + tp.channel + h * p.in_w;
            for (int64_t ow = ow0; ow < ow1; ++ow) {
              const int64_t w = ow * p.stride_w + tp.w0;
              lines[ow * nr + t] = (w >= 0 && w < p.in_w) ? row[w] : 0.0f;
            }
          }
          for (int64_t tt = width; tt < nr; ++tt) {
            for (int64_t ow = ow0; ow < ow1; ++ow) lines[ow * nr + tt] = 0.0f;
          }
        }
      }
    }
  }
}

}  // namespace qsearch::train
