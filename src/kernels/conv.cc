#include "kernels/conv.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/simd_util.h"
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
  alignas(64) float bbuf[detail::kColKc * kMaxNr];
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
    for (int64_t k0 = 0; k0 < w.k || k0 == 0; k0 += detail::kColKc) {
      const int64_t kc = std::min(detail::kColKc, w.k - k0);
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
          tep.residual_after_clamp = ctx.ep->residual_after_clamp;
          tep.lo = ctx.ep->clamp_min;
          tep.hi = ctx.ep->clamp_max;
        }
        u.fn(kc, w.panel(g, t) + k0 * u.mr, bbuf, nullptr, ctx.y + off, ohw, mr, cols, k0 > 0,
             last ? &tep : nullptr);
      }
      if (w.k == 0) break;
    }
  }
}

// ---- direct path: stride 1, the image fits a zero-padded copy on the stack -----------------
//
// Output pixels are laid on a grid of the padded width wp: grid pixel p = oh * wp + ow, so that
// tap (c, i, j) of every pixel of a panel is the contiguous run padded[p + off(c, i, j)] with
// off = c * hp * wp + i * dilation_h * wp + j * dilation_w. The microkernel reads those runs
// in place (indirect B); grid columns ow >= out_w are computed and dropped when the tile is
// copied out.

constexpr int64_t kMaxPadded = 32 * 1024;  // floats (128 KB of stack)
constexpr int64_t kMaxTaps = 4096;
constexpr int kMaxMr = 8;

struct DirectGeom {
  int64_t hp, wp, grid, panels, chunks, padded_floats;
};

bool direct_geometry(const Conv2dParams& p, int nr, DirectGeom& g) {
  if (p.stride_h != 1 || p.stride_w != 1) return false;
  const int64_t cg = p.in_channels / p.groups;
  g.hp = p.out_h + (p.kernel_h - 1) * p.dilation_h;
  g.wp = p.out_w + (p.kernel_w - 1) * p.dilation_w;
  g.grid = p.out_h * g.wp;
  g.panels = (g.grid + nr - 1) / nr;
  g.padded_floats = cg * g.hp * g.wp + (p.kernel_w - 1) * p.dilation_w + nr;
  return g.padded_floats <= kMaxPadded && cg * p.kernel_h * p.kernel_w <= kMaxTaps;
}

struct DirectCtx {
  const ConvCtx* c;
  const DirectGeom* g;
};

void direct_items(const DirectCtx& dctx, int64_t begin, int64_t end) {
  const ConvCtx& ctx = *dctx.c;
  const DirectGeom& geo = *dctx.g;
  const Conv2dParams& p = *ctx.p;
  const detail::UKernelInfo& u = *ctx.u;
  const PackedConvWeights& w = *ctx.w;
  const int64_t ohw = p.out_h * p.out_w;
  const int64_t mg = p.out_channels / p.groups;
  const int64_t cg = p.in_channels / p.groups;
  const int64_t plane = geo.hp * geo.wp;
  alignas(64) float padded[kMaxPadded];
  alignas(64) float tile[kMaxMr * kMaxNr];
  int64_t offsets[kMaxTaps];
  {
    int64_t k = 0;
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t i = 0; i < p.kernel_h; ++i) {
        for (int64_t j = 0; j < p.kernel_w; ++j) {
          offsets[k++] = c * plane + i * p.dilation_h * geo.wp + j * p.dilation_w;
        }
      }
    }
  }
  const bool residual = ctx.ep->residual != nullptr;
  const bool after = ctx.ep->residual_after_clamp;
  const float lo = ctx.ep->clamp_min, hi = ctx.ep->clamp_max;
  int64_t padded_for = -1;  // (image, group) whose padded copy is in `padded`
  for (int64_t item = begin; item < end; ++item) {
    const int64_t bg = item / geo.chunks, chunk = item % geo.chunks;
    const int64_t b = bg / p.groups, g = bg % p.groups;
    if (bg != padded_for) {
      // The padding is zero from the first fill on; later images only overwrite the interior.
      if (padded_for < 0) std::fill(padded, padded + geo.padded_floats, 0.0f);
      const float* xg = ctx.x + (b * p.in_channels + g * cg) * p.in_h * p.in_w;
      // Input column 0 sits at padded column pad_left; columns past wp are never read.
      const int64_t len = std::min(p.in_w, geo.wp - p.pad_left);
      for (int64_t c = 0; c < cg; ++c) {
        for (int64_t r = 0; r < geo.hp; ++r) {
          const int64_t h = r - p.pad_top;
          if (h < 0 || h >= p.in_h || len <= 0) continue;
          detail::copy_floats(padded + c * plane + r * geo.wp + p.pad_left,
                              xg + (c * p.in_h + h) * p.in_w, len);
        }
      }
      padded_for = bg;
    }
    const int64_t q0 = chunk * geo.panels / geo.chunks, q1 = (chunk + 1) * geo.panels / geo.chunks;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t p0 = q * u.nr;
      const int cols = static_cast<int>(std::min<int64_t>(u.nr, geo.grid - p0));
      // Valid runs of the panel: grid columns ow < out_w of each grid row it touches.
      Segment segs[kMaxNr];
      int nsegs = 0;
      for (int col = 0; col < cols;) {
        const int64_t gp = p0 + col, oh = gp / geo.wp, ow = gp % geo.wp;
        const int64_t row_left = geo.wp - ow;
        if (ow < p.out_w) {
          const int64_t len = std::min<int64_t>(cols - col, p.out_w - ow);
          segs[nsegs++] = {oh, ow, len, col};
        }
        col += static_cast<int>(std::min<int64_t>(cols - col, row_left));
      }
      for (int64_t t = 0; t < w.tiles_per_group; ++t) {
        const int mr = static_cast<int>(std::min<int64_t>(u.mr, mg - t * u.mr));
        detail::TileEpilogue tep;
        tep.alpha = ctx.ep->alpha;
        tep.bias = ctx.ep->bias != nullptr ? ctx.ep->bias + g * mg + t * u.mr : nullptr;
        tep.bias_per_row = true;
        tep.residual = nullptr;
        tep.residual_stride = 0;
        tep.residual_after_clamp = false;
        // A residual has y's layout, not the grid's: it and the clamp are applied while
        // copying out.
        tep.lo = residual ? -std::numeric_limits<float>::infinity() : lo;
        tep.hi = residual ? std::numeric_limits<float>::infinity() : hi;
        u.fn_indirect(w.k, w.panel(g, t), padded + p0, offsets, tile, u.nr, mr, cols, false, &tep);
        const int64_t ch0 = b * p.out_channels + g * mg + t * u.mr;
        for (int i = 0; i < mr; ++i) {
          for (int sgi = 0; sgi < nsegs; ++sgi) {
            const Segment& sg = segs[sgi];
            const int64_t off = (ch0 + i) * ohw + sg.oh * p.out_w + sg.ow0;
            const float* src = tile + i * u.nr + sg.col;
            float* dst = ctx.y + off;
            if (residual) {
              const float* r = ctx.ep->residual + off;
              if (after) {
                for (int64_t e = 0; e < sg.len; ++e) {
                  const float v = src[e];
                  dst[e] = (v < lo ? lo : (v > hi ? hi : v)) + r[e];
                }
              } else {
                for (int64_t e = 0; e < sg.len; ++e) {
                  const float v = src[e] + r[e];
                  dst[e] = v < lo ? lo : (v > hi ? hi : v);  // NaN passes through
                }
              }
            } else {
              detail::copy_floats(dst, src, sg.len);
            }
          }
        }
      }
    }
  }
}

}  // namespace

bool conv2d_direct_applies(const Conv2dParams& p, Isa isa) {
  DirectGeom g;
  return direct_geometry(p, detail::ukernel_for(isa).nr, g);
}

void conv2d_f32_packed(const Conv2dParams& p, const float* x, const PackedConvWeights& w, float* y,
                       const Epilogue& ep) {
  const auto& u = detail::ukernel_for(w.isa);
  QSEARCH_DCHECK(u.nr <= kMaxNr && u.mr <= kMaxMr && w.out_channels == p.out_channels &&
                 w.groups == p.groups);
  QSEARCH_DCHECK(w.in_channels_per_group * p.groups == p.in_channels);
  const int64_t ohw = p.out_h * p.out_w;
  if (p.batch <= 0 || ohw <= 0 || p.out_channels <= 0) return;
  ConvCtx ctx{&p, x, &w, y, &ep, &u, (ohw + u.nr - 1) / u.nr};
  DirectGeom geo;
  if (direct_geometry(p, u.nr, geo)) {
    // Enough items for every thread even at batch 1: split an image's panels into chunks
    // (each chunk pads its own copy). Chunking does not change any output value.
    const int64_t images = p.batch * p.groups;
    geo.chunks = std::clamp<int64_t>((4 * num_threads() + images - 1) / images, 1, geo.panels);
    DirectCtx dctx{&ctx, &geo};
    parallel_for(0, images * geo.chunks, 1,
                 [&dctx](int64_t begin, int64_t end) { direct_items(dctx, begin, end); });
    return;
  }
  parallel_for(0, p.batch * p.groups * ctx.panels, 1,
               [&ctx](int64_t begin, int64_t end) { conv_items(ctx, begin, end); });
}

}  // namespace qsearch::kernels
