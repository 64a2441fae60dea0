#include "kernels/conv.h"

#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/simd_util.h"
#include "kernels/ukernel.h"
#include "kernels/vec_math.h"

// GCC 12 reports its own _mm512_undefined_* placeholders (in the AVX-512 intrinsics of
// silu_run16) as (maybe-)uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace qsearch::kernels {

Isa silu_store_isa() { return best_isa(); }

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
constexpr int kMaxMr = 8;

// SiLU of 8 lanes: v * sigmoid(v) with vmath's sigmoid, the bits of a separate Sigmoid step
// (vmath::map_f32) followed by Mul.
inline __m256 silu8(__m256 v) { return _mm256_mul_ps(v, detail::sigmoid8(v)); }

// silu_run on 16 lanes (AVX-512F): sigmoid16 is sigmoid8 bit for bit (kernels/vec_math.h) and
// the Mul rounds the same, so every value is the 8-lane one's.
__attribute__((target("avx512f"))) void silu_run16(float* dst, const float* src, int64_t len) {
  int64_t e = 0;
  for (; e + 16 <= len; e += 16) {
    const __m512 v = _mm512_loadu_ps(src + e);
    _mm512_storeu_ps(dst + e, _mm512_mul_ps(v, detail::sigmoid16(v)));
  }
  if (e < len) {
    const __mmask16 m = static_cast<__mmask16>((1u << (len - e)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, src + e);
    _mm512_mask_storeu_ps(dst + e, m, _mm512_mul_ps(v, detail::sigmoid16(v)));
  }
}

// dst[e] = silu(src[e]) for e in [0, len); dst may equal src.
inline void silu_run(float* dst, const float* src, int64_t len) {
  static const bool wide = silu_store_isa() == Isa::kAvx512;
  if (wide) return silu_run16(dst, src, len);
  int64_t e = 0;
  for (; e + 8 <= len; e += 8) _mm256_storeu_ps(dst + e, silu8(_mm256_loadu_ps(src + e)));
  if (e < len) {
    const __m256i m = detail::first_lanes8(len - e);
    detail::store_first8(dst + e, silu8(_mm256_maskload_ps(src + e, m)), len - e);
  }
}

// A run of consecutive output pixels of one output row inside a pixel panel.
struct Segment {
  int64_t oh, ow0, len, col;  // col: first column of the panel it fills
  const float* xg;            // the group's first input channel in the segment's image
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
void pack_col_block(const ConvCtx& ctx, const Segment* segs, int nsegs, int cols, int64_t k0,
                    int64_t kc, float* dst) {
  const Conv2dParams& p = *ctx.p;
  const int nr = ctx.u->nr;
  const int64_t khw = p.kernel_h * p.kernel_w;
  int64_t c = k0 / khw, i = (k0 / p.kernel_w) % p.kernel_h, j = k0 % p.kernel_w;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* row = dst + kk * nr;
    const int64_t c_off = c * p.in_h * p.in_w;
    for (int s = 0; s < nsegs; ++s) {
      const Segment& sg = segs[s];
      const float* xc = sg.xg + c_off;
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
      // (No division at stride 1: one per segment and tap would cost more than the copy.)
      const int64_t sw = p.stride_w;
      int64_t t_lo = iw0 >= 0 ? 0 : (sw == 1 ? -iw0 : (-iw0 + sw - 1) / sw);
      int64_t t_hi = iw0 >= p.in_w ? 0 : (sw == 1 ? p.in_w - iw0 : (p.in_w - iw0 + sw - 1) / sw);
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
    const float* xg = ctx.x + (b * p.in_channels + g * cg) * p.in_h * p.in_w;
    int nsegs = 0;
    for (int col = 0; col < cols;) {
      const int64_t pix = pix0 + col;
      const int64_t oh = pix / p.out_w, ow = pix % p.out_w;
      const int64_t len = std::min<int64_t>(cols - col, p.out_w - ow);
      segs[nsegs++] = {oh, ow, len, col, xg};
      col += static_cast<int>(len);
    }
    const int64_t y_off = (b * p.out_channels + g * mg) * ohw + pix0;
    for (int64_t k0 = 0; k0 < w.k || k0 == 0; k0 += detail::kColKc) {
      const int64_t kc = std::min(detail::kColKc, w.k - k0);
      const bool last = k0 + kc >= w.k;
      pack_col_block(ctx, segs, nsegs, cols, k0, kc, bbuf);
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
        if (last && ctx.ep->silu) {
          for (int i = 0; i < mr; ++i) silu_run(ctx.y + off + i * ohw, ctx.y + off + i * ohw, cols);
        }
      }
      if (w.k == 0) break;
    }
  }
}

// Stores one run of finished accumulators (alpha and bias applied, not yet clamped when there
// is a residual): dst = clamp(src + r) or clamp(src) + r (residual_after_clamp), or a copy when
// there is no residual (the microkernel clamped already). dst may equal src when r is given.
inline void store_run(float* dst, const float* src, const float* r, int64_t len, bool after,
                      float lo, float hi) {
  if (r == nullptr) {
    if (len == 1) {
      *dst = *src;
    } else {
      detail::copy_floats(dst, src, len);
    }
  } else if (after) {
    for (int64_t e = 0; e < len; ++e) {
      const float v = src[e];
      dst[e] = (v < lo ? lo : (v > hi ? hi : v)) + r[e];
    }
  } else {
    for (int64_t e = 0; e < len; ++e) {
      const float v = src[e] + r[e];
      dst[e] = v < lo ? lo : (v > hi ? hi : v);  // NaN passes through
    }
  }
}

// ---- batch-blocked path: the whole batch's output pixels are the GEMM's columns -------------
//
// Per group, column n is output pixel n % ohw of image n / ohw, so that at small images
// (ResNet-18's 4x4..1x1 maps at CIFAR size) panels are full and each packed block of weights
// serves a whole block of columns, not one image's few pixels. Work item = (group, block of
// columns, block of weight tiles): per block of kBlkKc taps, the columns are packed into panels
// (im2col, on the stack) and each weight tile runs over every panel of the block, accumulating
// in a tile buffer that is scattered to Y (residual and clamp applied there) after the last
// tap block. Same FMA chain per output as the other paths (ascending k, one rounding per step).

constexpr int64_t kBlkCols = 128;  // columns per item (a multiple of every NR)
constexpr int64_t kBlkRows = 128;  // output channels per item (rounded up to whole tiles)
constexpr int64_t kBlkKc = 256;    // taps per packed block
constexpr int64_t kToYMaxPixels = 4096;

struct BlockedGeom {
  int64_t cols;  // batch * ohw
  int64_t panels, panels_per_block, col_blocks;
  int64_t tiles_per_block, m_blocks;
  bool pointwise;  // pack_col_pointwise (runs of >= 4 pixels), else pack_col_gather
};

// Packs taps [k0, k0 + kc) of columns [n0, n0 + cols) with AVX2 gathers, 8 columns at a time:
// column `col` of tap (c, i, j) is x[base[col] + c * plane + i * dh * in_w + j * dw] when its
// input row ih0[col] + i * dh and column iw0[col] + j * dw are inside the image, else 0. Needs
// the indices of the images a panel spans to fit in int32 (gather_fits). Cheap per element whatever
// the runs of the panel, unlike pack_col_block, which pays its set-up per run.
void pack_col_gather(const ConvCtx& ctx, int64_t g, int64_t n0, int cols, int64_t k0, int64_t kc,
                     float* dst) {
  const Conv2dParams& p = *ctx.p;
  const int nr = ctx.u->nr;
  const int64_t ohw = p.out_h * p.out_w, plane = p.in_h * p.in_w;
  const int64_t cg = p.in_channels / p.groups;
  // Indices are relative to the group's first channel in the panel's first image.
  const int64_t b0 = n0 / ohw;
  const float* x0 = ctx.x + (b0 * p.in_channels + g * cg) * plane;
  alignas(32) int32_t base[kMaxNr], ih0[kMaxNr], iw0[kMaxNr];
  for (int col = 0; col < nr; ++col) {
    if (col < cols) {
      const int64_t n = n0 + col, b = n / ohw, pix = n % ohw;
      const int64_t h = (pix / p.out_w) * p.stride_h - p.pad_top;
      const int64_t w = (pix % p.out_w) * p.stride_w - p.pad_left;
      ih0[col] = static_cast<int32_t>(h);
      iw0[col] = static_cast<int32_t>(w);
      base[col] = static_cast<int32_t>((b - b0) * p.in_channels * plane + h * p.in_w + w);
    } else {
      ih0[col] = -(1 << 30);  // never inside: the padding columns of the panel pack 0
      iw0[col] = 0;
      base[col] = 0;
    }
  }
  const __m256i hv = _mm256_set1_epi32(static_cast<int32_t>(p.in_h));
  const __m256i wv = _mm256_set1_epi32(static_cast<int32_t>(p.in_w));
  const __m256i minus1 = _mm256_set1_epi32(-1);
  const __m256 zero = _mm256_setzero_ps();
  const int64_t khw = p.kernel_h * p.kernel_w;
  int64_t c = k0 / khw, i = (k0 / p.kernel_w) % p.kernel_h, j = k0 % p.kernel_w;
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* row = dst + kk * nr;
    const int32_t di = static_cast<int32_t>(i * p.dilation_h);
    const int32_t dj = static_cast<int32_t>(j * p.dilation_w);
    const __m256i off = _mm256_set1_epi32(static_cast<int32_t>(c * plane + di * p.in_w + dj));
    const __m256i div = _mm256_set1_epi32(di), djv = _mm256_set1_epi32(dj);
    for (int v = 0; v < nr; v += 8) {
      const __m256i ih =
          _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(ih0 + v)), div);
      const __m256i iw =
          _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(iw0 + v)), djv);
      const __m256i in = _mm256_and_si256(
          _mm256_and_si256(_mm256_cmpgt_epi32(ih, minus1), _mm256_cmpgt_epi32(hv, ih)),
          _mm256_and_si256(_mm256_cmpgt_epi32(iw, minus1), _mm256_cmpgt_epi32(wv, iw)));
      const __m256i idx =
          _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(base + v)), off);
      _mm256_store_ps(row + v, _mm256_mask_i32gather_ps(zero, x0, idx, _mm256_castsi256_ps(in), 4));
    }
    if (++j == p.kernel_w) {
      j = 0;
      if (++i == p.kernel_h) {
        i = 0;
        ++c;
      }
    }
  }
}

// Pointwise convolutions (1x1, stride 1, no padding): column n of tap c is x[b, g * C/G + c,
// pixel], so a panel is a few contiguous runs per tap (one per image it spans) and is packed by
// copies, without index arithmetic per element.
bool pointwise(const Conv2dParams& p) {
  return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top == 0 && p.pad_left == 0 && p.out_h == p.in_h && p.out_w == p.in_w;
}

void pack_col_pointwise(const ConvCtx& ctx, int64_t g, int64_t n0, int cols, int64_t k0, int64_t kc,
                        float* dst) {
  const Conv2dParams& p = *ctx.p;
  const int nr = ctx.u->nr;
  const int64_t ohw = p.out_h * p.out_w, cg = p.in_channels / p.groups;
  const float* src[kMaxNr];
  int col0[kMaxNr], len[kMaxNr];
  int runs = 0;
  for (int col = 0; col < cols;) {
    const int64_t n = n0 + col, b = n / ohw, pix = n % ohw;
    len[runs] = static_cast<int>(std::min<int64_t>(cols - col, ohw - pix));
    col0[runs] = col;
    src[runs++] = ctx.x + (b * p.in_channels + g * cg + k0) * ohw + pix;
    col += len[runs - 1];
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* row = dst + kk * nr;
    const int64_t off = kk * ohw;
    for (int r = 0; r < runs; ++r) {
      if (len[r] == 1) {
        row[col0[r]] = src[r][off];
      } else {
        detail::copy_floats(row + col0[r], src[r] + off, len[r]);
      }
    }
    for (int col = cols; col < nr; ++col) row[col] = 0.0f;
  }
}

// ---- thin panels: at most kThinCols columns (a 7x7 map's 49th pixel, 14x14's last 4, 2x2 / 1x1
// maps at batch 1) ----------------------------------------------------------------------------
//
// The microkernel computes all NR columns of a panel whatever `cols` (a 1-column panel costs a
// 16-column one). Here the lanes are the tile's MR output channels instead: per tap k, one load
// of the packed weights a[k * MR .. + 8) (lanes >= MR are the next tap's, ignored) times the
// column's value, for kThinTiles(NC) tiles at once so that enough FMA chains are in flight. Per
// output the same chain as the microkernel (acc = C or 0, then fma(a, b, acc) in ascending k)
// and the same epilogue (fma(acc, alpha, bias), residual before / after max(lo, .) / min(hi, .)),
// so the same bits; SiLU, when asked, is applied to the stored lanes (to_y blocks).

constexpr int kThinCols = 4;

struct ThinTile {
  const float* a;  // packed weights at the block's first tap
  float* c;        // the tile's first element (row stride ldc)
  int mr;
  const float* bias;      // the tile's first channel, or nullptr
  const float* residual;  // the tile's first element (row stride residual_stride), or nullptr
};

template <int NC, int T>
void thin_tiles(int64_t kc, const ThinTile* tiles, int ntiles, int mr_stride, const float* b,
                int nr, int64_t ldc, bool accumulate, const detail::TileEpilogue* ep, bool silu) {
  for (int t0 = 0; t0 < ntiles; t0 += T) {
    const int nt = std::min(T, ntiles - t0);
    __m256 acc[T][NC];
    alignas(32) float lane[8];
    for (int t = 0; t < T; ++t) {
      for (int j = 0; j < NC; ++j) {
        acc[t][j] = _mm256_setzero_ps();
        if (accumulate && t < nt) {
          const ThinTile& tt = tiles[t0 + t];
          for (int i = 0; i < 8; ++i) lane[i] = i < tt.mr ? tt.c[i * ldc + j] : 0.0f;
          acc[t][j] = _mm256_load_ps(lane);
        }
      }
    }
    const float* a[T];
    for (int t = 0; t < T; ++t) a[t] = tiles[t0 + std::min(t, nt - 1)].a;
    // The last tap's load would read past the panel: masked.
    const __m256i last_mask = detail::first_lanes8(mr_stride);
    for (int64_t k = 0; k < kc; ++k) {
      __m256 bv[NC];
      for (int j = 0; j < NC; ++j) bv[j] = _mm256_broadcast_ss(b + k * nr + j);
      for (int t = 0; t < T; ++t) {
        const float* ak = a[t] + k * mr_stride;
        const __m256 av = k + 1 < kc ? _mm256_loadu_ps(ak) : _mm256_maskload_ps(ak, last_mask);
        for (int j = 0; j < NC; ++j) acc[t][j] = _mm256_fmadd_ps(av, bv[j], acc[t][j]);
      }
    }
    for (int t = 0; t < nt; ++t) {
      const ThinTile& tt = tiles[t0 + t];
      const __m256i rows = detail::first_lanes8(tt.mr);
      for (int j = 0; j < NC; ++j) {
        __m256 x = acc[t][j];
        if (ep != nullptr) {
          const __m256 bias =
              tt.bias != nullptr ? _mm256_maskload_ps(tt.bias, rows) : _mm256_setzero_ps();
          x = _mm256_fmadd_ps(x, _mm256_set1_ps(ep->alpha), bias);
          __m256 r = _mm256_setzero_ps();
          if (tt.residual != nullptr) {
            for (int i = 0; i < 8; ++i) {
              lane[i] = i < tt.mr ? tt.residual[i * ep->residual_stride + j] : 0.0f;
            }
            r = _mm256_load_ps(lane);
          }
          if (!ep->residual_after_clamp) x = _mm256_add_ps(x, r);
          x = _mm256_max_ps(_mm256_set1_ps(ep->lo), x);  // NaN in x propagates
          x = _mm256_min_ps(_mm256_set1_ps(ep->hi), x);
          if (ep->residual_after_clamp) x = _mm256_add_ps(x, r);
          if (silu) x = silu8(x);
        }
        _mm256_store_ps(lane, x);
        for (int i = 0; i < tt.mr; ++i) tt.c[i * ldc + j] = lane[i];
      }
    }
  }
}

// Dispatch on the panel's column count (1..kThinCols).
void thin_panel(int64_t kc, const ThinTile* tiles, int ntiles, int mr_stride, const float* b,
                int nr, int cols, int64_t ldc, bool accumulate, const detail::TileEpilogue* ep,
                bool silu) {
  switch (cols) {
    case 1:
      thin_tiles<1, 8>(kc, tiles, ntiles, mr_stride, b, nr, ldc, accumulate, ep, silu);
      break;
    case 2:
      thin_tiles<2, 4>(kc, tiles, ntiles, mr_stride, b, nr, ldc, accumulate, ep, silu);
      break;
    case 3:
      thin_tiles<3, 3>(kc, tiles, ntiles, mr_stride, b, nr, ldc, accumulate, ep, silu);
      break;
    default:
      thin_tiles<4, 3>(kc, tiles, ntiles, mr_stride, b, nr, ldc, accumulate, ep, silu);
      break;
  }
}

// pack_col_gather's int32 indices: a panel of nr columns spans at most nr + 1 images (fewer
// than nr + 1 when an image has more than one output pixel), each of C * H * W floats (plus
// the padding reach of the taps, below one image).
bool gather_fits(const Conv2dParams& p, int nr) {
  const int64_t per_image = p.in_channels * p.in_h * p.in_w;
  const int64_t ohw = p.out_h * p.out_w;
  const int64_t images = std::min<int64_t>(p.batch, (nr + ohw - 1) / ohw + 1);
  return (images + 1) * per_image < (int64_t{1} << 31);
}

void blocked_items(const ConvCtx& ctx, const BlockedGeom& geo, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const detail::UKernelInfo& u = *ctx.u;
  const PackedConvWeights& w = *ctx.w;
  const int64_t ohw = p.out_h * p.out_w;
  const int64_t mg = p.out_channels / p.groups;
  const Epilogue& ep = *ctx.ep;
  const bool residual = ep.residual != nullptr;
  alignas(64) float bbuf[kBlkKc * kBlkCols];
  alignas(64) float cbuf[(kBlkRows + kMaxMr) * kBlkCols];
  for (int64_t item = begin; item < end; ++item) {
    const int64_t mb = item % geo.m_blocks;
    const int64_t cb = (item / geo.m_blocks) % geo.col_blocks;
    const int64_t g = item / (geo.m_blocks * geo.col_blocks);
    const int64_t t0 = mb * geo.tiles_per_block;
    int64_t t1 = std::min(w.tiles_per_group, t0 + geo.tiles_per_block);
    if (t0 >= t1) continue;
    const int64_t q0 = cb * geo.panels_per_block;
    const int64_t q1 = std::min(geo.panels, q0 + geo.panels_per_block);
    const int64_t n0 = q0 * u.nr;
    const int64_t ncols = std::min(geo.cols, q1 * u.nr) - n0;
    // Columns of one image (always at batch 1, and on large maps but where a block straddles two
    // images): the tiles go straight to Y (row stride ohw) with the whole epilogue, instead of
    // through the tile buffer and a second pass. The same operations, so the same bits. Not on
    // maps above 64x64, where a tile's rows lie pages apart (MobileNetV2's 112x112 pointwise
    // convs ran at half speed).
    const bool to_y = ohw <= kToYMaxPixels && n0 / ohw == (n0 + ncols - 1) / ohw;
    if (to_y) {
      // No tile buffer to fill: this chunk's following items of the same columns (the next
      // blocks of output channels) run with these, so their columns are packed once, not once
      // per 128 channels (ResNet-18's 512-channel layer4 at batch 1: 4 times).
      while (item + 1 < end && (item + 1) % geo.m_blocks != 0) {
        ++item;
        t1 = std::min(w.tiles_per_group, (item % geo.m_blocks + 1) * geo.tiles_per_block);
      }
    }
    const int64_t y0 =
        ((n0 / ohw) * p.out_channels + g * mg + t0 * u.mr) * ohw + n0 % ohw;  // tile (t0, q0)
    // A whole image narrower than a panel (EfficientNet's 2x2 / 1x1 maps at batch 1): its rows
    // are contiguous in Y, and SiLU over them in one pass after the last tap block costs an
    // eighth of one masked 8-lane SiLU per row of one to four pixels.
    const bool silu_after = to_y && ep.silu && ncols == ohw && ohw < u.nr;
    for (int64_t k0 = 0; k0 < w.k || k0 == 0; k0 += kBlkKc) {
      const int64_t kc = std::min(kBlkKc, w.k - k0);
      const bool last = k0 + kc >= w.k;
      for (int64_t q = q0; q < q1; ++q) {
        const int cols = static_cast<int>(std::min<int64_t>(u.nr, geo.cols - q * u.nr));
        float* panel = bbuf + (q - q0) * kc * u.nr;
        if (geo.pointwise) {
          pack_col_pointwise(ctx, g, q * u.nr, cols, k0, kc, panel);
        } else {
          pack_col_gather(ctx, g, q * u.nr, cols, k0, kc, panel);
        }
      }
      // GotoBLAS order: a packed panel stays in L1 while the block's weight tiles stream from L2.
      for (int64_t q = q0; q < q1; ++q) {
        const int cols = static_cast<int>(std::min<int64_t>(u.nr, geo.cols - q * u.nr));
        const float* bpanel = bbuf + (q - q0) * kc * u.nr;
        if (cols <= kThinCols && u.mr <= 8) {
          // A thin panel: the tiles' channels in the lanes (thin_tiles), a few dozen at a time.
          detail::TileEpilogue tep{};
          tep.alpha = ep.alpha;
          tep.residual_stride = ohw;
          tep.residual_after_clamp = to_y && ep.residual_after_clamp;
          tep.lo = residual && !to_y ? -std::numeric_limits<float>::infinity() : ep.clamp_min;
          tep.hi = residual && !to_y ? std::numeric_limits<float>::infinity() : ep.clamp_max;
          constexpr int kChunk = 24;
          ThinTile tiles[kChunk];
          for (int64_t tc = t0; tc < t1; tc += kChunk) {
            const int n = static_cast<int>(std::min<int64_t>(kChunk, t1 - tc));
            for (int i = 0; i < n; ++i) {
              const int64_t t = tc + i;
              const int64_t off = to_y ? y0 + (t - t0) * u.mr * ohw + (q - q0) * u.nr
                                       : (t - t0) * u.mr * kBlkCols + (q - q0) * u.nr;
              tiles[i].a = w.panel(g, t) + k0 * u.mr;
              tiles[i].c = (to_y ? ctx.y : cbuf) + off;
              tiles[i].mr = static_cast<int>(std::min<int64_t>(u.mr, mg - t * u.mr));
              tiles[i].bias = ep.bias != nullptr ? ep.bias + g * mg + t * u.mr : nullptr;
              tiles[i].residual = to_y && residual ? ep.residual + off : nullptr;
            }
            thin_panel(kc, tiles, n, u.mr, bpanel, u.nr, cols, to_y ? ohw : kBlkCols, k0 > 0,
                       last ? &tep : nullptr, to_y && ep.silu && !silu_after);
          }
          continue;
        }
        for (int64_t t = t0; t < t1; ++t) {
          const int mr = static_cast<int>(std::min<int64_t>(u.mr, mg - t * u.mr));
          detail::TileEpilogue tep;
          if (last) {
            tep.alpha = ep.alpha;
            tep.bias = ep.bias != nullptr ? ep.bias + g * mg + t * u.mr : nullptr;
            tep.bias_per_row = true;
            tep.residual = nullptr;
            tep.residual_stride = 0;
            tep.residual_after_clamp = false;
            // A residual has Y's layout, not the buffer's: it and the clamp come in the scatter.
            tep.lo = residual ? -std::numeric_limits<float>::infinity() : ep.clamp_min;
            tep.hi = residual ? std::numeric_limits<float>::infinity() : ep.clamp_max;
          }
          if (to_y) {
            const int64_t off = y0 + (t - t0) * u.mr * ohw + (q - q0) * u.nr;
            if (last) {
              tep.residual = residual ? ep.residual + off : nullptr;
              tep.residual_stride = ohw;
              tep.residual_after_clamp = ep.residual_after_clamp;
              tep.lo = ep.clamp_min;
              tep.hi = ep.clamp_max;
            }
            float* c = ctx.y + off;
            u.fn(kc, w.panel(g, t) + k0 * u.mr, bpanel, nullptr, c, ohw, mr, cols, k0 > 0,
                 last ? &tep : nullptr);
            if (last && ep.silu && !silu_after) {
              for (int i = 0; i < mr; ++i) silu_run(c + i * ohw, c + i * ohw, cols);
            }
            continue;
          }
          u.fn(kc, w.panel(g, t) + k0 * u.mr, bpanel, nullptr,
               cbuf + (t - t0) * u.mr * kBlkCols + (q - q0) * u.nr, kBlkCols, mr, cols, k0 > 0,
               last ? &tep : nullptr);
        }
      }
      if (w.k == 0) break;
    }
    const int64_t rows = std::min(mg, t1 * u.mr) - t0 * u.mr;
    if (silu_after) silu_run(ctx.y + y0, ctx.y + y0, rows * ohw);
    if (to_y) continue;
    if (ep.silu) {
      // SiLU on each of the buffer's rows, all the block's columns at once, then the row's
      // scatter: on maps of a few pixels (EfficientNet's 2x2 and 1x1 at batch > 1) the runs are
      // 1-4 columns long, and one masked 8-lane SiLU per run cost more than the convolution. The
      // residual and the clamp come first, as in store_run; the same operations per element, so
      // the same bits. The runs (their first column, length and offset in Y at the block's first
      // row) are found once per block, not once per row.
      int64_t run_col[kBlkCols + 1], run_off[kBlkCols];
      int nruns = 0;
      for (int64_t col = 0; col < ncols;) {
        const int64_t n = n0 + col, b = n / ohw, pix = n % ohw;
        run_col[nruns] = col;
        run_off[nruns++] = (b * p.out_channels + g * mg + t0 * u.mr) * ohw + pix;
        col += std::min(ncols - col, ohw - pix);
      }
      run_col[nruns] = ncols;
      for (int64_t o = 0; o < rows; ++o) {
        float* row = cbuf + o * kBlkCols;
        if (residual) {
          for (int r = 0; r < nruns; ++r) {
            const int64_t col = run_col[r];
            store_run(row + col, row + col, ep.residual + run_off[r] + o * ohw,
                      run_col[r + 1] - col, ep.residual_after_clamp, ep.clamp_min, ep.clamp_max);
          }
        }
        silu_run(row, row, ncols);
        for (int r = 0; r < nruns; ++r) {
          const int64_t col = run_col[r];
          store_run(ctx.y + run_off[r] + o * ohw, row + col, nullptr, run_col[r + 1] - col, false,
                    0.0f, 0.0f);
        }
      }
      continue;
    }
    // Scatter: runs of columns inside one image are contiguous in Y.
    for (int64_t col = 0; col < ncols;) {
      const int64_t n = n0 + col, b = n / ohw, pix = n % ohw;
      const int64_t len = std::min(ncols - col, ohw - pix);
      const int64_t off0 = (b * p.out_channels + g * mg + t0 * u.mr) * ohw + pix;
      for (int64_t o = 0; o < rows; ++o) {
        const int64_t off = off0 + o * ohw;
        store_run(ctx.y + off, cbuf + o * kBlkCols + col, residual ? ep.residual + off : nullptr,
                  len, ep.residual_after_clamp, ep.clamp_min, ep.clamp_max);
      }
      col += len;
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
          segs[nsegs++] = {oh, ow, len, col, nullptr};
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
            } else if (!ctx.ep->silu) {
              detail::copy_floats(dst, src, sg.len);
            }
            if (ctx.ep->silu) silu_run(dst, residual ? dst : src, sg.len);
          }
        }
      }
    }
  }
}

// ---- depthwise path: one input channel per group (MobileNet / EfficientNet) ------------------
//
// Per output plane (image b, channel o of group g = o / (M/G)): the group's input plane is
// copied, zero-padded and split into stride_w column phases (phase q, column c holds padded
// column c * stride_w + q), so that tap (i, j) of 8 consecutive output pixels of a row is one
// contiguous load; 4 output rows x 8 pixels are accumulated at a time in ascending tap order
// k = i * kW + j, the padding contributing fma(w, 0, acc) as in the GEMM paths (same bits),
// and the epilogue is the microkernel's.

constexpr int64_t kDwMaxFloats = 32 * 1024;  // the phase-split copy (128 KB of stack)
constexpr int64_t kDwRows = 4;               // output rows per block

struct DwGeom {
  int64_t hp;    // padded rows read: (out_h - 1) * stride_h + (kH - 1) * dilation_h + 1
  int64_t rows;  // rows per phase, with slack for the last row block
  int64_t wq;    // columns per phase, with slack for full-vector loads
  int64_t floats;
};

bool dw_geometry(const Conv2dParams& p, int mr, DwGeom& g) {
  if (p.in_channels != p.groups || p.out_channels / p.groups >= mr) return false;
  g.hp = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  g.rows = g.hp + (kDwRows - 1) * p.stride_h;
  g.wq = p.out_w + (p.kernel_w - 1) * p.dilation_w / p.stride_w + 8;
  g.floats = p.stride_w * g.rows * g.wq;
  return g.floats <= kDwMaxFloats && p.kernel_h * p.kernel_w <= 64;
}

// Stride 2: input column w of a row goes to padded column u = w + pad, i.e. column u / 2 of
// phase u % 2 (ph0, ph1); 16 input columns per step split into even and odd vectors.
void split_row2(const float* src, int64_t in_w, int64_t pad, float* ph0, float* ph1) {
  float* ph[2] = {ph0, ph1};
  int64_t w = 0;
  if (pad % 2 != 0 && in_w > 0) {  // the first column alone, so that w + pad is even below
    ph[1][pad / 2] = src[0];
    w = 1;
  }
  for (; w + 16 <= in_w; w += 16) {
    const __m256 a = _mm256_loadu_ps(src + w), b = _mm256_loadu_ps(src + w + 8);
    const __m256 even = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    const __m256 odd = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
    const int64_t c = (w + pad) / 2;
    _mm256_storeu_ps(ph0 + c, even);
    _mm256_storeu_ps(ph1 + c, odd);
  }
  for (; w < in_w; ++w) ph[(w + pad) % 2][(w + pad) / 2] = src[w];
}

void dw_items(const ConvCtx& ctx, const DwGeom& geo, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const detail::UKernelInfo& u = *ctx.u;
  const PackedConvWeights& w = *ctx.w;
  const Epilogue& ep = *ctx.ep;
  const int64_t mg = p.out_channels / p.groups, ohw = p.out_h * p.out_w;
  const int64_t khw = p.kernel_h * p.kernel_w, sw = p.stride_w;
  const int64_t phase = geo.rows * geo.wq;
  alignas(64) float buf[kDwMaxFloats];
  std::fill(buf, buf + geo.floats, 0.0f);  // the padding stays zero: planes fill the interior
  // Interior of phase q: columns c with input column c * sw + q - pad_left in [0, in_w).
  int64_t c_lo[8], c_hi[8];
  for (int64_t q = 0; q < sw && q < 8; ++q) {
    const int64_t first = p.pad_left - q;  // c * sw >= first
    c_lo[q] = first <= 0 ? 0 : (first + sw - 1) / sw;
    c_hi[q] = std::clamp<int64_t>((p.in_w + p.pad_left - q + sw - 1) / sw, c_lo[q], geo.wq);
  }
  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  const __m256 lo = _mm256_set1_ps(ep.clamp_min), hi = _mm256_set1_ps(ep.clamp_max);
  float wk[64];
  // Every input column lands inside its phase's row (columns >= wq are never read).
  const bool split2 = sw == 2 && (p.in_w - 1 + p.pad_left) / 2 < geo.wq;
  // Offset of tap k = i * kW + j from a block's first pixel in the phase-split copy (the
  // divisions once per call, not per block and tap).
  int64_t tap_off[64];
  for (int64_t i = 0; i < p.kernel_h; ++i) {
    for (int64_t j = 0; j < p.kernel_w; ++j) {
      const int64_t dj = j * p.dilation_w;
      tap_off[i * p.kernel_w + j] = (dj % sw) * phase + dj / sw + i * p.dilation_h * geo.wq;
    }
  }
  // SiLU per stored vector, except on planes whose rows end in a partial vector (EfficientNet's
  // 14x14 / 28x28 maps): there one pass over the plane, still in L1, after its last row block
  // (a masked 8-lane SiLU per row of 6 or 4 pixels cost as much as a whole one). Same bits.
  const bool inline_silu = ep.silu && (p.out_w % 8 == 0 || ohw > 4096);
  for (int64_t item = begin; item < end; ++item) {
    const int64_t b = item / p.out_channels, o = item % p.out_channels, g = o / mg;
    const float* xp = ctx.x + (b * p.in_channels + g) * p.in_h * p.in_w;
    for (int64_t r = 0; r < geo.hp; ++r) {
      const int64_t ih = r - p.pad_top;
      if (ih < 0 || ih >= p.in_h) continue;
      const float* src = xp + ih * p.in_w;
      if (split2) {
        split_row2(src, p.in_w, p.pad_left, buf + r * geo.wq, buf + phase + r * geo.wq);
        continue;
      }
      for (int64_t q = 0; q < sw; ++q) {
        float* dst = buf + q * phase + r * geo.wq;
        if (sw == 1) {
          detail::copy_floats(dst + c_lo[0], src + c_lo[0] - p.pad_left, c_hi[0] - c_lo[0]);
        } else {
          for (int64_t c = c_lo[q]; c < c_hi[q]; ++c) dst[c] = src[c * sw + q - p.pad_left];
        }
      }
    }
    const int64_t oo = o % mg;
    const float* panel = w.panel(g, oo / u.mr);
    for (int64_t k = 0; k < khw; ++k) wk[k] = panel[k * u.mr + oo % u.mr];
    const __m256 bias = ep.bias != nullptr ? _mm256_set1_ps(ep.bias[o]) : _mm256_setzero_ps();
    float* yp = ctx.y + (b * p.out_channels + o) * ohw;
    const float* rp =
        ep.residual != nullptr ? ep.residual + (b * p.out_channels + o) * ohw : nullptr;
    const int64_t row_step = p.stride_h * geo.wq;
    for (int64_t oh0 = 0; oh0 < p.out_h; oh0 += kDwRows) {
      const int64_t nrows = std::min(kDwRows, p.out_h - oh0);
      // 16 pixels (two vectors) per row where the row has them: 8 independent FMA chains keep
      // both FMA units busy (4 chains of 9 dependent FMAs wait on their latency).
      for (int64_t ow0 = 0; ow0 < p.out_w; ow0 += 16) {
        const bool two = ow0 + 8 < p.out_w;
        __m256 acc[kDwRows][2];
        for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
        const float* block = buf + ow0 + oh0 * row_step;
        if (two) {
          for (int64_t k = 0; k < khw; ++k) {
            const float* base = block + tap_off[k];
            const __m256 wv = _mm256_set1_ps(wk[k]);
#pragma GCC unroll 4
            for (int64_t r = 0; r < kDwRows; ++r) {
              acc[r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(base + r * row_step), acc[r][0]);
              acc[r][1] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(base + r * row_step + 8), acc[r][1]);
            }
          }
        } else {
          for (int64_t k = 0; k < khw; ++k) {
            const float* base = block + tap_off[k];
            const __m256 wv = _mm256_set1_ps(wk[k]);
#pragma GCC unroll 4
            for (int64_t r = 0; r < kDwRows; ++r) {
              acc[r][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(base + r * row_step), acc[r][0]);
            }
          }
        }
        for (int v = 0; v < (two ? 2 : 1); ++v) {
          const int64_t n = p.out_w - ow0 - 8 * v;
          const __m256i mask = detail::first_lanes8(n);
          for (int64_t r = 0; r < nrows; ++r) {
            const int64_t off = (oh0 + r) * p.out_w + ow0 + 8 * v;
            __m256 x = _mm256_fmadd_ps(acc[r][v], alpha, bias);
            const __m256 res =
                rp != nullptr ? _mm256_maskload_ps(rp + off, mask) : _mm256_setzero_ps();
            if (!ep.residual_after_clamp) x = _mm256_add_ps(x, res);
            x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // NaN in x propagates
            if (ep.residual_after_clamp) x = _mm256_add_ps(x, res);
            if (inline_silu) x = silu8(x);
            detail::store_first8(yp + off, x, n);
          }
        }
      }
    }
    if (ep.silu && !inline_silu) silu_run(yp, yp, ohw);
  }
}

// Small maps (out_w < 8, where a row fills few lanes): 8 output channels per vector instead.
// The 8 input planes they read are copied, zero-padded, into one channel-interleaved buffer
// ([row][column][8]), so that a tap of one output pixel is one load for 8 channels; the FMA
// chain per output is the same as above.

bool dw8_geometry(const Conv2dParams& p, int mr, DwGeom& g) {
  if (p.in_channels != p.groups || p.out_channels / p.groups >= mr || p.out_w >= 8) return false;
  g.hp = (p.out_h - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1;
  g.rows = g.hp;
  g.wq = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
  g.floats = g.rows * g.wq * 8;
  return g.floats <= kDwMaxFloats && p.kernel_h * p.kernel_w <= 64;
}

void dw8_items(const ConvCtx& ctx, const DwGeom& geo, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const detail::UKernelInfo& u = *ctx.u;
  const PackedConvWeights& w = *ctx.w;
  const Epilogue& ep = *ctx.ep;
  const int64_t mg = p.out_channels / p.groups, ohw = p.out_h * p.out_w;
  const int64_t khw = p.kernel_h * p.kernel_w;
  alignas(64) float buf[kDwMaxFloats];
  alignas(32) float wk[64 * 8];
  alignas(32) float lane[8], bias[8], res[8];
  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  const __m256 lo = _mm256_set1_ps(ep.clamp_min), hi = _mm256_set1_ps(ep.clamp_max);
  std::fill(buf, buf + geo.floats, 0.0f);  // the padding stays zero: blocks fill the interior
  int64_t have = -1;                       // the channel block whose weights are in wk
  for (int64_t item = begin; item < end; ++item) {
    // Images fastest: consecutive items of a chunk share the block's weights.
    const int64_t b = item % p.batch, blk = item / p.batch, o0 = blk * 8;
    const int nl = static_cast<int>(std::min<int64_t>(8, p.out_channels - o0));
    for (int l = 0; l < 8 && blk != have; ++l) {
      const int64_t o = o0 + std::min(l, nl - 1), g = o / mg, oo = o % mg;
      const float* panel = w.panel(g, oo / u.mr);
      for (int64_t k = 0; k < khw; ++k) wk[k * 8 + l] = panel[k * u.mr + oo % u.mr];
      bias[l] = ep.bias != nullptr ? ep.bias[o] : 0.0f;
    }
    have = blk;
    for (int l = 0; l < 8; ++l) {
      const int64_t g = (o0 + std::min(l, nl - 1)) / mg;
      const float* xp = ctx.x + (b * p.in_channels + g) * p.in_h * p.in_w;
      for (int64_t ih = 0; ih < p.in_h; ++ih) {
        const int64_t r = ih + p.pad_top;
        if (r >= geo.rows) break;
        for (int64_t iw = 0; iw < p.in_w; ++iw) {
          const int64_t c = iw + p.pad_left;
          if (c >= geo.wq) break;
          buf[(r * geo.wq + c) * 8 + l] = xp[ih * p.in_w + iw];
        }
      }
    }
    const __m256 bv = _mm256_load_ps(bias);
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t i = 0; i < p.kernel_h; ++i) {
          const float* row =
              buf + ((oh * p.stride_h + i * p.dilation_h) * geo.wq + ow * p.stride_w) * 8;
          for (int64_t j = 0; j < p.kernel_w; ++j) {
            acc = _mm256_fmadd_ps(_mm256_load_ps(wk + (i * p.kernel_w + j) * 8),
                                  _mm256_load_ps(row + j * p.dilation_w * 8), acc);
          }
        }
        const int64_t off = (b * p.out_channels + o0) * ohw + oh * p.out_w + ow;
        __m256 x = _mm256_fmadd_ps(acc, alpha, bv);
        __m256 rv = _mm256_setzero_ps();
        if (ep.residual != nullptr) {
          for (int l = 0; l < 8; ++l) res[l] = l < nl ? ep.residual[off + l * ohw] : 0.0f;
          rv = _mm256_load_ps(res);
        }
        if (!ep.residual_after_clamp) x = _mm256_add_ps(x, rv);
        x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // NaN in x propagates
        if (ep.residual_after_clamp) x = _mm256_add_ps(x, rv);
        _mm256_store_ps(lane, x);
        for (int l = 0; l < nl; ++l) ctx.y[off + l * ohw] = lane[l];
      }
    }
    // SiLU over the block's nl planes (contiguous in Y, a few KB) in one pass: 8 full lanes per
    // vector whatever out_w, and off the per-pixel chain of taps. Same bits as per pixel.
    if (ep.silu) {
      float* yb = ctx.y + (b * p.out_channels + o0) * ohw;
      silu_run(yb, yb, nl * ohw);
    }
  }
}

}  // namespace

void silu_f32(float* y, int64_t n) {
  parallel_for(0, n, 16384,
               [y](int64_t begin, int64_t end) { silu_run(y + begin, y + begin, end - begin); });
}

bool conv2d_direct_applies(const Conv2dParams& p, Isa isa) {
  DirectGeom g;
  return direct_geometry(p, detail::ukernel_for(isa).nr, g);
}

void conv2d_f32_packed(const Conv2dParams& p, const float* x, const PackedConvWeights& w, float* y,
                       const Epilogue& ep, ConvAlgo algo) {
  const auto& u = detail::ukernel_for(w.isa);
  QSEARCH_DCHECK(u.nr <= kMaxNr && u.mr <= kMaxMr && w.out_channels == p.out_channels &&
                 w.groups == p.groups && kBlkCols % u.nr == 0 && kBlkRows >= u.mr);
  QSEARCH_DCHECK(w.in_channels_per_group * p.groups == p.in_channels);
  const int64_t ohw = p.out_h * p.out_w;
  if (p.batch <= 0 || ohw <= 0 || p.out_channels <= 0) return;
  ConvCtx ctx{&p, x, &w, y, &ep, &u, (ohw + u.nr - 1) / u.nr};
  DirectGeom geo;
  if (algo == ConvAlgo::kAuto) algo = conv2d_algo(p, w.isa);
  DwGeom dg;
  if (algo == ConvAlgo::kDepthwise && dw8_geometry(p, u.mr, dg)) {
    parallel_for(0, p.batch * ((p.out_channels + 7) / 8), 1,
                 [&ctx, &dg](int64_t begin, int64_t end) { dw8_items(ctx, dg, begin, end); });
    return;
  }
  if (algo == ConvAlgo::kDepthwise && dw_geometry(p, u.mr, dg) && p.stride_w <= 8) {
    parallel_for(0, p.batch * p.out_channels, 1,
                 [&ctx, &dg](int64_t begin, int64_t end) { dw_items(ctx, dg, begin, end); });
    return;
  }
  if (algo == ConvAlgo::kDirect && direct_geometry(p, u.nr, geo)) {
    // Enough items for every thread even at batch 1: split an image's panels into chunks
    // (each chunk pads its own copy). Chunking does not change any output value.
    const int64_t images = p.batch * p.groups;
    geo.chunks = std::clamp<int64_t>((4 * num_threads() + images - 1) / images, 1, geo.panels);
    DirectCtx dctx{&ctx, &geo};
    parallel_for(0, images * geo.chunks, 1,
                 [&dctx](int64_t begin, int64_t end) { direct_items(dctx, begin, end); });
    return;
  }
  if (algo == ConvAlgo::kImagePanels || !gather_fits(p, u.nr)) {
    parallel_for(0, p.batch * p.groups * ctx.panels, 1,
                 [&ctx](int64_t begin, int64_t end) { conv_items(ctx, begin, end); });
    return;
  }
  BlockedGeom bg;
  bg.cols = p.batch * ohw;
  bg.pointwise = pointwise(p) && ohw >= 4;
  bg.panels = (bg.cols + u.nr - 1) / u.nr;
  bg.panels_per_block = std::min<int64_t>(kBlkCols / u.nr, bg.panels);
  const int64_t max_tiles = (kBlkRows + u.mr - 1) / u.mr;  // at most kBlkRows + MR - 1 rows
  bg.m_blocks = (w.tiles_per_group + max_tiles - 1) / max_tiles;
  // Enough items for every thread (when the kernel runs threaded): narrower column blocks. The
  // blocking does not change any output value.
  const int64_t want = in_parallel_region() ? 1 : 2 * static_cast<int64_t>(num_threads());
  while (bg.panels_per_block > 1 &&
         p.groups * bg.m_blocks * ((bg.panels + bg.panels_per_block - 1) / bg.panels_per_block) <
             want) {
    --bg.panels_per_block;
  }
  bg.col_blocks = (bg.panels + bg.panels_per_block - 1) / bg.panels_per_block;
  bg.tiles_per_block = (w.tiles_per_group + bg.m_blocks - 1) / bg.m_blocks;
  parallel_for(0, p.groups * bg.col_blocks * bg.m_blocks, 1,
               [&ctx, &bg](int64_t begin, int64_t end) { blocked_items(ctx, bg, begin, end); });
}

ConvAlgo conv2d_algo(const Conv2dParams& p, Isa isa) {
  DirectGeom g;
  DwGeom dg;
  const int nr = detail::ukernel_for(isa).nr;
  // One input channel per group and fewer output channels than a weight tile: per plane.
  if (dw8_geometry(p, detail::ukernel_for(isa).mr, dg) ||
      (dw_geometry(p, detail::ukernel_for(isa).mr, dg) && p.stride_w <= 8)) {
    return ConvAlgo::kDepthwise;
  }
  // Large images with a padded copy that fits: the direct path (no im2col), except pointwise
  // convs (their panels are plain copies); else batch-blocked.
  if (!pointwise(p) && p.out_h * p.out_w >= 4 * nr && direct_geometry(p, nr, g)) {
    return ConvAlgo::kDirect;
  }
  return ConvAlgo::kBatchBlocked;
}

}  // namespace qsearch::kernels
