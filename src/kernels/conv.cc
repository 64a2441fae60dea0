#include "kernels/conv.h"

#include <algorithm>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/ukernel.h"

namespace qsearch::kernels {

PackedConvWeights pack_conv_weights(const float* w, int64_t out_channels,
                                    int64_t in_channels_per_group, int64_t kernel_h,
                                    int64_t kernel_w, int64_t groups, Isa isa) {
  const auto& u = detail::ukernel_for(isa);
  QSEARCH_CHECK(groups >= 1 && out_channels % groups == 0);
  PackedConvWeights p;
  p.isa = isa;
  p.mr = u.mr;
  p.nr = u.nr;
  p.out_channels = out_channels;
  p.in_channels_per_group = in_channels_per_group;
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.groups = groups;
  p.k = in_channels_per_group * kernel_h * kernel_w;
  const int64_t mg = out_channels / groups;
  p.tiles_per_group = (mg + u.mr - 1) / u.mr;
  p.data = Tensor({std::max<int64_t>(1, groups * p.tiles_per_group * p.k * u.mr)}, DType::kFloat32);
  float* dst = p.data.data<float>();
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t t = 0; t < p.tiles_per_group; ++t) {
      float* panel = dst + (g * p.tiles_per_group + t) * p.k * u.mr;
      for (int i = 0; i < u.mr; ++i) {
        const int64_t o = t * u.mr + i;  // channel within the group
        if (o >= mg) continue;           // stays zero
        const float* src = w + (g * mg + o) * p.k;
        for (int64_t kk = 0; kk < p.k; ++kk) panel[kk * u.mr + i] = src[kk];
      }
    }
  }
  return p;
}

namespace {

constexpr int kMaxNr = 32;

// A run of consecutive output pixels of one output row inside a pixel panel.
struct Segment {
  int64_t oh, ow0, len, col;  // col: first column of the panel it fills
};

struct ConvCtx {
  const Conv2dParams* p;
  const float* x;
  const PackedConvWeights* w;
  float* y;
  const Epilogue* ep;
  const detail::UKernelInfo* u;
  int64_t panels;  // pixel panels per image
};

// Packs taps [k0, k0 + kc) of the segments into dst[kc][nr_full] (columns >= `cols` zero).
void pack_col_block(const ConvCtx& ctx, const float* xg, const Segment* segs, int nsegs, int cols,
                    int64_t k0, int64_t kc, float* dst) {
  const Conv2dParams& p = *ctx.p;
  const int nr = ctx.u->nr;
  const int64_t khw = p.kernel_h * p.kernel_w;
  int64_t c = k0 / khw, i = (k0 / p.kernel_w) % p.kernel_h, j = k0 % p.kernel_w;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* row = dst + kk * nr;
    const float* xc = xg + c * p.in_h * p.in_w;
    for (int s = 0; s < nsegs; ++s) {
      const Segment& sg = segs[s];
      float* out = row + sg.col;
      const int64_t ih = sg.oh * p.stride_h - p.pad_top + i * p.dilation_h;
      if (ih < 0 || ih >= p.in_h) {
        for (int64_t t = 0; t < sg.len; ++t) out[t] = 0.0f;
        continue;
      }
      const float* xrow = xc + ih * p.in_w;
      // iw(t) = (ow0 + t) * stride_w + off is inside [0, in_w) for t in [t_lo, t_hi).
      const int64_t off = j * p.dilation_w - p.pad_left;
      const int64_t iw0 = sg.ow0 * p.stride_w + off;
      int64_t t_lo = iw0 >= 0 ? 0 : (-iw0 + p.stride_w - 1) / p.stride_w;
      int64_t t_hi = iw0 >= p.in_w ? 0 : (p.in_w - iw0 + p.stride_w - 1) / p.stride_w;
      t_lo = std::min(t_lo, sg.len);
      t_hi = std::clamp(t_hi, t_lo, sg.len);
      for (int64_t t = 0; t < t_lo; ++t) out[t] = 0.0f;
      if (p.stride_w == 1) {
        const float* src = xrow + iw0;
        for (int64_t t = t_lo; t < t_hi; ++t) out[t] = src[t];
      } else {
        for (int64_t t = t_lo; t < t_hi; ++t) out[t] = xrow[iw0 + t * p.stride_w];
      }
      for (int64_t t = t_hi; t < sg.len; ++t) out[t] = 0.0f;
    }
    for (int t = cols; t < nr; ++t) row[t] = 0.0f;
    if (++j == p.kernel_w) {
      j = 0;
      if (++i == p.kernel_h) {
        i = 0;
        ++c;
      }
    }
  }
}

void conv_items(const ConvCtx& ctx, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const detail::UKernelInfo& u = *ctx.u;
  const PackedConvWeights& w = *ctx.w;
  const int64_t ohw = p.out_h * p.out_w;
  const int64_t mg = p.out_channels / p.groups;
  const int64_t cg = p.in_channels / p.groups;
  alignas(64) float bbuf[detail::kKc * kMaxNr];
  Segment segs[kMaxNr];
  for (int64_t item = begin; item < end; ++item) {
    const int64_t q = item % ctx.panels;
    const int64_t bg = item / ctx.panels;
    const int64_t g = bg % p.groups;
    const int64_t b = bg / p.groups;
    const int64_t pix0 = q * u.nr;
    const int cols = static_cast<int>(std::min<int64_t>(u.nr, ohw - pix0));
    int nsegs = 0;
    for (int col = 0; col < cols;) {
      const int64_t pix = pix0 + col;
      const int64_t oh = pix / p.out_w, ow = pix % p.out_w;
      const int64_t len = std::min<int64_t>(cols - col, p.out_w - ow);
      segs[nsegs++] = {oh, ow, len, col};
      col += static_cast<int>(len);
    }
    const float* xg = ctx.x + (b * p.in_channels + g * cg) * p.in_h * p.in_w;
    const int64_t y_off = (b * p.out_channels + g * mg) * ohw + pix0;
    for (int64_t k0 = 0; k0 < w.k || k0 == 0; k0 += detail::kKc) {
      const int64_t kc = std::min(detail::kKc, w.k - k0);
      const bool last = k0 + kc >= w.k;
      pack_col_block(ctx, xg, segs, nsegs, cols, k0, kc, bbuf);
      for (int64_t t = 0; t < w.tiles_per_group; ++t) {
        const int mr = static_cast<int>(std::min<int64_t>(u.mr, mg - t * u.mr));
        const int64_t off = y_off + t * u.mr * ohw;
        detail::TileEpilogue tep;
        if (last) {
          tep.alpha = ctx.ep->alpha;
          tep.bias = ctx.ep->bias != nullptr ? ctx.ep->bias + g * mg + t * u.mr : nullptr;
          tep.bias_per_row = true;
          tep.residual = ctx.ep->residual != nullptr ? ctx.ep->residual + off : nullptr;
          tep.residual_stride = ohw;
          tep.lo = ctx.ep->clamp_min;
          tep.hi = ctx.ep->clamp_max;
        }
        u.fn(kc, w.panel(g, t) + k0 * u.mr, bbuf, ctx.y + off, ohw, mr, cols, k0 > 0,
             last ? &tep : nullptr);
      }
      if (w.k == 0) break;
    }
  }
}

}  // namespace

void conv2d_f32_packed(const Conv2dParams& p, const float* x, const PackedConvWeights& w, float* y,
                       const Epilogue& ep) {
  const auto& u = detail::ukernel_for(w.isa);
  QSEARCH_DCHECK(u.nr <= kMaxNr && w.out_channels == p.out_channels && w.groups == p.groups);
  QSEARCH_DCHECK(w.in_channels_per_group * p.groups == p.in_channels);
  const int64_t ohw = p.out_h * p.out_w;
  if (p.batch <= 0 || ohw <= 0 || p.out_channels <= 0) return;
  ConvCtx ctx{&p, x, &w, y, &ep, &u, (ohw + u.nr - 1) / u.nr};
  parallel_for(0, p.batch * p.groups * ctx.panels, 1,
               [&ctx](int64_t begin, int64_t end) { conv_items(ctx, begin, end); });
}

}  // namespace qsearch::kernels
