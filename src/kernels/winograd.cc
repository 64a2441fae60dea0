#include "kernels/winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/simd_util.h"
#include "kernels/ukernel.h"

namespace qsearch::kernels {

namespace {

constexpr int kIn = 6;     // input tile side
constexpr int kOut = 4;    // output tile side
constexpr int kXi = 36;    // transformed tile positions
constexpr int kLanes = 8;  // tiles per AVX2 vector
// Transformed filters held per thread at a time (1.8 MB): a few panels of 36 x C x MR, 4 of
// them at C = 512, so that each transformed input slab of an xi is read from L2 for 4 panels.
constexpr int64_t kFilterBlockFloats = 36 * 512 * 6 * 4;
// Transformed input per work item (at most, 4.7 MB): 36 x C x the item's tiles. The 512-channel
// layers need this much for their minimum of 4 panels of tiles anyway (the per-thread buffer
// grows to it), so the layers with fewer channels take more tiles per item in the same memory:
// each item transforms its filters once for all its tiles.
constexpr int64_t kInputBlockFloats = 36 * 512 * 64;
// GEMM output per block of transformed filters (at most, 1.2 MB, unless one panel needs more):
// 36 x the block's rows x the item's tiles; the output transform runs after each block.
constexpr int64_t kOutputBlockFloats = 36 * 128 * 64;
// The zero-padded input of a slice of the batch (4 MB, more when one slice of kMinSliceTiles
// tiles needs it).
constexpr int64_t kPadFloats = 1024 * 1024;
constexpr int64_t kMinSliceTiles = 256;

// G (6x3) of F(4x4, 3x3) with the points 0, 1, -1, 2, -2 (and infinity).
constexpr double kG[kIn][3] = {{1.0 / 4, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};

// out = B^T in (one 6-point input transform), B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
// 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
inline void bt6(const __m256 in[kIn], __m256 out[kIn]) {
  const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
  const __m256 two = _mm256_set1_ps(2.0f);
  out[0] = _mm256_fmadd_ps(four, in[0], _mm256_fnmadd_ps(five, in[2], in[4]));
  const __m256 s43 = _mm256_add_ps(in[4], in[3]), d43 = _mm256_sub_ps(in[4], in[3]);
  out[1] = _mm256_fnmadd_ps(four, _mm256_add_ps(in[1], in[2]), s43);
  out[2] = _mm256_fmadd_ps(four, _mm256_sub_ps(in[1], in[2]), d43);
  const __m256 d42 = _mm256_sub_ps(in[4], in[2]), d31 = _mm256_sub_ps(in[3], in[1]);
  out[3] = _mm256_fmadd_ps(two, d31, d42);
  out[4] = _mm256_fnmadd_ps(two, d31, d42);
  out[5] = _mm256_fmadd_ps(four, in[1], _mm256_fnmadd_ps(five, in[3], in[5]));
}

// out = A^T in (one output transform), A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
// 0 1 -1 8 -8 1].
inline void at4(const __m256 in[kIn], __m256 out[kOut]) {
  const __m256 s12 = _mm256_add_ps(in[1], in[2]), d12 = _mm256_sub_ps(in[1], in[2]);
  const __m256 s34 = _mm256_add_ps(in[3], in[4]), d34 = _mm256_sub_ps(in[3], in[4]);
  out[0] = _mm256_add_ps(_mm256_add_ps(in[0], s12), s34);
  out[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
  out[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s34, s12);
  out[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), in[5]);
}

// Stride of the 36 slabs of a transformed block (U, V or the GEMMs' output) of n floats each:
// n rounded up to an odd number of 64-byte lines. Slabs a multiple of 4 KB apart (V of 64
// channels, U of 512) fall into one set of the L1 cache, so that the 36 stores of a transform
// (or loads of the output transform) evicted each other; an odd number of lines spreads them
// over 36 sets. Keeps 64-byte alignment.
int64_t slab_stride(int64_t n) {
  int64_t lines = (n + 15) / 16;
  if (lines % 2 == 0) ++lines;
  return lines * 16;
}

// out = (24 G) in, G the 6x3 filter transform: 24 G = [6 0 0; -4 -4 -4; -4 4 -4; 1 2 4;
// 1 -2 4; 0 0 24] (small integers, so U' = (24 G) g (24 G)^T = 576 U).
inline void g6(const __m256 in[3], __m256 out[kIn]) {
  const __m256 s = _mm256_add_ps(in[0], in[2]);
  const __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), in[2], in[0]);
  out[0] = _mm256_mul_ps(_mm256_set1_ps(6.0f), in[0]);
  out[1] = _mm256_mul_ps(_mm256_set1_ps(-4.0f), _mm256_add_ps(s, in[1]));
  out[2] = _mm256_mul_ps(_mm256_set1_ps(4.0f), _mm256_sub_ps(in[1], s));
  out[3] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), in[1], q);
  out[4] = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), in[1], q);
  out[5] = _mm256_mul_ps(_mm256_set1_ps(24.0f), in[2]);
}

// U = G g G^T of up to 8 output channels (lanes) and one input channel: tap k of lane l at
// src[k * stride + l] (lanes past `mask` read as 0); u[xi], xi = 6 * i + j. In float, one fixed
// sequence of operations per value, so every call gives the same bits.
inline void filter_transform(const float* src, int64_t stride, __m256i mask, __m256 u[kXi]) {
  __m256 t[3][kIn];  // t[b][i] = ((24 G) g)[i][b]
  for (int b = 0; b < 3; ++b) {
    const __m256 col[3] = {_mm256_maskload_ps(src + b * stride, mask),
                           _mm256_maskload_ps(src + (3 + b) * stride, mask),
                           _mm256_maskload_ps(src + (6 + b) * stride, mask)};
    g6(col, t[b]);
  }
  const __m256 scale = _mm256_set1_ps(1.0f / 576.0f);
  for (int i = 0; i < kIn; ++i) {
    const __m256 row[3] = {t[0][i], t[1][i], t[2][i]};
    __m256 v[kIn];
    g6(row, v);
    for (int j = 0; j < kIn; ++j) u[i * kIn + j] = _mm256_mul_ps(v[j], scale);
  }
}

// Lane mask of lanes [b, e).
__m256i lane_range(int b, int e) {
  alignas(32) int32_t m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = l >= b && l < e ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// U of the direct packing's panels [pt0, pt1) (PackedConvWeights of a 3x3 conv: tap k of
// input channel c and lane l at panel + (9 c + k) * mr + l) into u[xi][pt - pt0][c][mr], the
// A panels of the 36 GEMMs. Lanes past the last output channel are zero, as in the packing.
void transform_filters(const PackedConvWeights& w, int64_t pt0, int64_t pt1, float* u) {
  const int mr = w.mr;
  const int64_t c_count = w.in_channels_per_group, np = pt1 - pt0;
  const __m256i mask = lane_range(0, mr);
  const int64_t xi_stride = slab_stride(np * c_count * mr);
  for (int64_t pt = pt0; pt < pt1; ++pt) {
    const float* panel = w.panel(0, pt);
    float* dst = u + (pt - pt0) * c_count * mr;
    for (int64_t c = 0; c < c_count; ++c) {
      __m256 v[kXi];
      filter_transform(panel + c * 9 * mr, mr, mask, v);
      float* d = dst + c * mr;
      if (mr == kLanes || c + 1 < c_count) {
        // 8 lanes: past mr they overwrite the next channel's first lanes, written next.
        for (int xi = 0; xi < kXi; ++xi) _mm256_storeu_ps(d + xi * xi_stride, v[xi]);
      } else {
        for (int xi = 0; xi < kXi; ++xi) {
          alignas(32) float tmp[kLanes];
          _mm256_store_ps(tmp, v[xi]);
          std::memcpy(d + xi * xi_stride, tmp, sizeof(float) * mr);
        }
      }
    }
  }
}

// A 64-byte aligned scratch area of n floats in a per-thread buffer that only grows: the
// AVX-512 microkernel reads its B panels (V) with aligned 64-byte loads. Its contents are never
// kept from call to call, so the old buffer is freed before the larger one is made (resize would
// copy it over and hold both).
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 16) {
    std::vector<float>().swap(buf);
    buf.resize(n + 16);
  }
  auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - addr % 64) % 64) / sizeof(float);
}

// The zero-padded input: per (image, channel) a plane of hp rows, each row split by column
// phase, row[phase][t] = column 4 * t + phase (t < pw = tw + 1), so that column 4 * tx + j of
// consecutive tiles tx is a contiguous run (phase j % 4, offset tx + j / 4).
struct Geom {
  int64_t th = 0, tw = 0;  // tiles per column / row of an image
  int64_t tiles = 0;       // of the whole batch
  int64_t hp = 0, pw = 0;  // padded plane: hp rows of 4 * pw floats
  int64_t plane = 0;       // hp * 4 * pw
  int64_t nb = 0;          // tiles per work item (a multiple of NR)
  int64_t tblocks = 0, ochunks = 0, panels_per_chunk = 0;
  int64_t upb = 1;  // panels per block of transformed filters
};

Geom geometry(const Conv2dParams& p) {
  Geom g;
  g.th = (p.out_h + kOut - 1) / kOut;
  g.tw = (p.out_w + kOut - 1) / kOut;
  g.tiles = p.batch * g.th * g.tw;
  g.hp = g.th * kOut + 2;
  g.pw = g.tw + 1;
  g.plane = g.hp * 4 * g.pw;
  return g;
}

// The tiles of one group of 8 lanes: input offsets (into channel 0's padded plane of image 0),
// output offsets (into channel 0 of image 0), the valid rows / columns of each output tile, and
// the runs of lanes whose tiles are consecutive in one tile row (lanes [seg[s], seg[s + 1]),
// whose inputs are contiguous; lanes past the batch's last tile are in no run).
struct LaneTiles {
  alignas(32) int32_t in_off[kLanes];
  int64_t out_off[kLanes];
  int rows[kLanes], cols[kLanes];
  int nseg = 0;
  int seg[kLanes + 1];
};

void lane_tiles(const Conv2dParams& p, const Geom& g, int64_t t0, LaneTiles& lt) {
  const int64_t per_image = g.th * g.tw;
  for (int l = 0; l < kLanes; ++l) {
    const bool valid = t0 + l < g.tiles;
    const int64_t t = valid ? t0 + l : g.tiles - 1;
    const int64_t b = t / per_image, r = t % per_image, ty = r / g.tw, tx = r % g.tw;
    lt.in_off[l] = static_cast<int32_t>(b * p.in_channels * g.plane + ty * kOut * 4 * g.pw + tx);
    lt.out_off[l] = (b * p.out_channels * p.out_h + ty * kOut) * p.out_w + tx * kOut;
    lt.rows[l] = valid ? static_cast<int>(std::min<int64_t>(kOut, p.out_h - ty * kOut)) : 0;
    lt.cols[l] = valid ? static_cast<int>(std::min<int64_t>(kOut, p.out_w - tx * kOut)) : 0;
    if (!valid) continue;
    if (l == 0 || lt.in_off[l] != lt.in_off[l - 1] + 1 || tx == 0) lt.seg[lt.nseg++] = l;
    lt.seg[lt.nseg] = l + 1;
  }
}

// dst[phase * n + t] = src[4 * t + phase] for t < n (src holds 4 * n floats): 32 source floats
// at a time by shuffles, the rest one by one.
void split_phases(const float* src, int64_t n, float* dst) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes) {
    const float* s = src + 4 * t;
    // a_k = floats 8k .. 8k + 7: taps t + 2k (low half) and t + 2k + 1 (high half).
    const __m256 a0 = _mm256_loadu_ps(s), a1 = _mm256_loadu_ps(s + 8);
    const __m256 a2 = _mm256_loadu_ps(s + 16), a3 = _mm256_loadu_ps(s + 24);
    const __m256 l01 = _mm256_unpacklo_ps(a0, a1), h01 = _mm256_unpackhi_ps(a0, a1);
    const __m256 l23 = _mm256_unpacklo_ps(a2, a3), h23 = _mm256_unpackhi_ps(a2, a3);
    // Phase p in the order t + 0, 2, 4, 6, 1, 3, 5, 7; `order` puts it back.
    const __m256 ph[4] = {
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(l01), _mm256_castps_pd(l23))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(l01), _mm256_castps_pd(l23))),
        _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(h01), _mm256_castps_pd(h23))),
        _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(h01), _mm256_castps_pd(h23)))};
    for (int ph_i = 0; ph_i < 4; ++ph_i) {
      _mm256_storeu_ps(dst + ph_i * n + t, _mm256_permutevar8x32_ps(ph[ph_i], order));
    }
  }
  for (; t < n; ++t) {
    for (int ph_i = 0; ph_i < 4; ++ph_i) dst[ph_i * n + t] = src[4 * t + ph_i];
  }
}

// Zero-padded copy of X: plane (b, c) is hp x wp with the image at (pad_top, pad_left), each
// row assembled in order (zeros, the image row, zeros) and then split by column phase.
void pad_input(const Conv2dParams& p, const Geom& g, const float* x, float* xp) {
  parallel_for(0, p.batch * p.in_channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> line(static_cast<size_t>(4 * g.pw));
    const int64_t left = std::min<int64_t>(p.pad_left, 4 * g.pw);
    const int64_t len = std::clamp<int64_t>(4 * g.pw - left, 0, p.in_w);
    std::fill(line.begin(), line.end(), 0.0f);
    for (int64_t pl = begin; pl < end; ++pl) {
      const float* src = x + pl * p.in_h * p.in_w;
      float* dst = xp + pl * g.plane;
      for (int64_t hp = 0; hp < g.hp; ++hp) {
        float* row = dst + hp * 4 * g.pw;
        const int64_t h = hp - p.pad_top;
        if (h < 0 || h >= p.in_h) {
          std::memset(row, 0, sizeof(float) * 4 * g.pw);
          continue;
        }
        // Columns outside [left, left + len) stay zero from the fill above.
        std::memcpy(line.data() + left, src + h * p.in_w, sizeof(float) * len);
        split_phases(line.data(), g.pw, row);
      }
    }
  });
}

struct Ctx {
  const Conv2dParams* p;
  const Geom* g;
  const float* xp;
  const PackedConvWeights* w;
  float* y;
  const Epilogue* ep;
  const detail::UKernelInfo* u;
  // V of all the call's tiles when one block holds them all (tblocks == 1): transformed once,
  // before the items, which then split only the output channels; nullptr = per item.
  const float* shared_v = nullptr;
};

// V = B^T d B of every channel for one group of lanes; load(a) returns the 8 lanes' input at
// a = channel c's plane + q, q = row * 4 * pw + phase * pw + shift (from each lane's tile).
template <typename Load>
void transform_group(const Ctx& ctx, int64_t npan, int64_t panel, int64_t lane0, float* vp,
                     const Load& load) {
  const Geom& g = *ctx.g;
  const int nr = ctx.u->nr;
  const int64_t c_count = ctx.p->in_channels;
  const int64_t vstride = slab_stride(npan * c_count * nr);
  int64_t q[kIn][kIn];
  for (int r = 0; r < kIn; ++r) {
    for (int j = 0; j < kIn; ++j) q[r][j] = r * 4 * g.pw + (j % 4) * g.pw + j / 4;
  }
  for (int64_t c = 0; c < c_count; ++c) {
    const float* xc = ctx.xp + c * g.plane;
    __m256 e[kIn][kIn];
    for (int r = 0; r < kIn; ++r) {
      __m256 d[kIn];
      for (int j = 0; j < kIn; ++j) d[j] = load(xc + q[r][j]);
      bt6(d, e[r]);
    }
    float* dst = vp + (panel * c_count + c) * nr + lane0;
    for (int k = 0; k < kIn; ++k) {
      const __m256 col[kIn] = {e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]};
      __m256 v[kIn];
      bt6(col, v);
      for (int i = 0; i < kIn; ++i) {
        _mm256_store_ps(dst + (i * kIn + k) * vstride, v[i]);
      }
    }
  }
}

// V of the item's tiles: vp[xi][panel][c][NR]. A run of lanes on consecutive tiles of one tile
// row reads its inputs with one (masked) vector load per tap; groups of more than 3 runs
// (maps under 4 tiles wide) gather per lane. Lanes past the batch's last tile hold zeros or a
// copy of a valid tile (never read back).
void input_transform(const Ctx& ctx, int64_t t0, int64_t npan, int64_t grp_begin, int64_t grp_end,
                     float* vp) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const int nr = ctx.u->nr;
  for (int64_t grp = grp_begin; grp < grp_end; ++grp) {
    LaneTiles lt;
    lane_tiles(p, g, t0 + grp * kLanes, lt);
    const int64_t panel = grp * kLanes / nr, lane0 = grp * kLanes % nr;
    // Run s: lane l reads at base[s] + l (the padded buffer has 8 floats of margin on each
    // side, so base[s] >= -7 stays inside the allocation).
    int64_t base[3] = {0, 0, 0};
    __m256i mask[3];
    const int nseg = lt.nseg;
    for (int s = 0; s < std::min(nseg, 3); ++s) {
      base[s] = lt.in_off[lt.seg[s]] - lt.seg[s];
      mask[s] = lane_range(lt.seg[s], lt.seg[s + 1]);
    }
    if (nseg == 1 && lt.seg[0] == 0 && lt.seg[1] == kLanes) {
      transform_group(ctx, npan, panel, lane0, vp,
                      [&](const float* a) { return _mm256_loadu_ps(a + base[0]); });
    } else if (nseg == 1) {
      transform_group(ctx, npan, panel, lane0, vp,
                      [&](const float* a) { return _mm256_maskload_ps(a + base[0], mask[0]); });
    } else if (nseg == 2) {
      transform_group(ctx, npan, panel, lane0, vp, [&](const float* a) {
        return _mm256_or_ps(_mm256_maskload_ps(a + base[0], mask[0]),
                            _mm256_maskload_ps(a + base[1], mask[1]));
      });
    } else if (nseg == 3) {
      transform_group(ctx, npan, panel, lane0, vp, [&](const float* a) {
        return _mm256_or_ps(_mm256_or_ps(_mm256_maskload_ps(a + base[0], mask[0]),
                                         _mm256_maskload_ps(a + base[1], mask[1])),
                            _mm256_maskload_ps(a + base[2], mask[2]));
      });
    } else {
      const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(lt.in_off));
      transform_group(ctx, npan, panel, lane0, vp,
                      [&](const float* a) { return _mm256_i32gather_ps(a, idx, 4); });
    }
  }
}

// Y of the item's tiles and output channels [o0, o1) from m[xi][o - o0][nb]. The 4x4 outputs of
// the 8 lanes are transposed to one vector per lane (rows 0-1, rows 2-3) and stored a tile row
// (4 floats, masked at the right edge) at a time, with the residual and clamp in vector too:
// the same operations per value as the scalar epilogue, so the same bits.
void output_transform(const Ctx& ctx, int64_t t0, int64_t nb, int64_t o0, int64_t o1,
                      const float* m) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const Epilogue& ep = *ctx.ep;
  const int64_t xi_stride = slab_stride((o1 - o0 + ctx.u->mr - 1) / ctx.u->mr * ctx.u->mr * nb);
  const int64_t plane = p.out_h * p.out_w;
  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  const __m256 lo = _mm256_set1_ps(ep.clamp_min), hi = _mm256_set1_ps(ep.clamp_max);
  const __m128 lo4 = _mm_set1_ps(ep.clamp_min), hi4 = _mm_set1_ps(ep.clamp_max);
  const bool res = ep.residual != nullptr, after = ep.residual_after_clamp;
  __m128i colmask[kOut + 1];
  for (int c = 0; c <= kOut; ++c) {
    colmask[c] = _mm_setr_epi32(c > 0 ? -1 : 0, c > 1 ? -1 : 0, c > 2 ? -1 : 0, c > 3 ? -1 : 0);
  }
  for (int64_t grp = 0; grp * kLanes < nb && t0 + grp * kLanes < g.tiles; ++grp) {
    LaneTiles lt;
    lane_tiles(p, g, t0 + grp * kLanes, lt);
    for (int64_t o = o0; o < o1; ++o) {
      const float* mo = m + (o - o0) * nb + grp * kLanes;
      __m256 q[kIn][kOut];
      for (int a = 0; a < kIn; ++a) {
        __m256 row[kIn];
        for (int b = 0; b < kIn; ++b) row[b] = _mm256_loadu_ps(mo + (a * kIn + b) * xi_stride);
        at4(row, q[a]);
      }
      const __m256 bias = _mm256_set1_ps(ep.bias != nullptr ? ep.bias[o] : 0.0f);
      // out[h][4 * (i % 2) + j] = output (i, j) for i in rows 2h, 2h + 1, lanes across.
      __m256 out[2][kLanes];
      for (int j = 0; j < kOut; ++j) {
        const __m256 col[kIn] = {q[0][j], q[1][j], q[2][j], q[3][j], q[4][j], q[5][j]};
        __m256 v[kOut];
        at4(col, v);
        for (int i = 0; i < kOut; ++i) {
          __m256 r = _mm256_fmadd_ps(v[i], alpha, bias);
          if (!res) r = _mm256_min_ps(hi, _mm256_max_ps(lo, r));  // NaN propagates
          out[i / 2][(i % 2) * kOut + j] = r;
        }
      }
      detail::transpose8x8(out[0]);
      detail::transpose8x8(out[1]);
      for (int l = 0; l < kLanes; ++l) {
        const int64_t base = lt.out_off[l] + o * plane;
        const int cols = lt.cols[l];
        for (int i = 0; i < lt.rows[l]; ++i) {
          const __m256 both = out[i / 2][l];
          __m128 v = i % 2 == 0 ? _mm256_castps256_ps128(both) : _mm256_extractf128_ps(both, 1);
          float* dst = ctx.y + base + i * p.out_w;
          if (res) {
            const float* rr = ep.residual + base + i * p.out_w;
            const __m128 r4 = cols == kOut ? _mm_loadu_ps(rr) : _mm_maskload_ps(rr, colmask[cols]);
            if (!after) v = _mm_add_ps(v, r4);
            v = _mm_min_ps(hi4, _mm_max_ps(lo4, v));  // NaN propagates
            if (after) v = _mm_add_ps(v, r4);
          }
          if (cols == kOut) {
            _mm_storeu_ps(dst, v);
          } else {
            _mm_maskstore_ps(dst, colmask[cols], v);
          }
        }
      }
    }
  }
}

thread_local std::vector<float> tl_pad, tl_v, tl_m, tl_u;

void items(const Ctx& ctx, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const PackedConvWeights& w = *ctx.w;
  const auto& u = *ctx.u;
  const int64_t c_count = p.in_channels;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t tb = item / g.ochunks, oc = item % g.ochunks;
    const int64_t t0 = tb * g.nb, nb = std::min(g.nb, (g.tiles - t0 + u.nr - 1) / u.nr * u.nr);
    const int64_t npan = nb / u.nr;
    const int64_t p0 = oc * g.panels_per_chunk,
                  p1 = std::min(w.tiles_per_group, p0 + g.panels_per_chunk);
    if (p0 >= p1) continue;
    const int64_t o1 = std::min(p.out_channels, p1 * u.mr);
    const int64_t vstride = slab_stride(npan * c_count * u.nr);
    const float* vp = ctx.shared_v;
    if (vp == nullptr) {
      float* own = scratch(tl_v, static_cast<size_t>(kXi * vstride));
      input_transform(ctx, t0, npan, 0, npan * u.nr / kLanes, own);
      vp = own;
    }
    float* m = scratch(tl_m, static_cast<size_t>(kXi * slab_stride(g.upb * u.mr * g.nb)));
    float* up = scratch(tl_u, static_cast<size_t>(kXi * slab_stride(g.upb * c_count * u.mr)));
    // The filters' U, a block of upb panels at a time (never stored: 4x the 3x3 weights), each
    // block's GEMMs against all the item's tiles and then its output transform.
    for (int64_t b0 = p0; b0 < p1; b0 += g.upb) {
      const int64_t b1 = std::min(p1, b0 + g.upb), nbp = b1 - b0;
      transform_filters(w, b0, b1, up);
      const int64_t ustride = slab_stride(nbp * c_count * u.mr);
      const int64_t mstride = slab_stride(nbp * u.mr * nb);
      for (int xi = 0; xi < kXi; ++xi) {
        for (int64_t tp = 0; tp < npan; ++tp) {
          const float* b = vp + xi * vstride + tp * c_count * u.nr;
          for (int64_t pt = b0; pt < b1; ++pt) {
            const int mr = static_cast<int>(std::min<int64_t>(u.mr, o1 - pt * u.mr));
            const float* a = up + xi * ustride + (pt - b0) * c_count * u.mr;
            u.fn(c_count, a, b, nullptr, m + xi * mstride + (pt - b0) * u.mr * nb + tp * u.nr, nb,
                 mr, u.nr, false, nullptr);
          }
        }
      }
      output_transform(ctx, t0, nb, b0 * u.mr, std::min(o1, b1 * u.mr), m);
    }
  }
}

}  // namespace

bool winograd_applies(const Conv2dParams& p) {
  if (p.kernel_h != 3 || p.kernel_w != 3 || p.stride_h != 1 || p.stride_w != 1 ||
      p.dilation_h != 1 || p.dilation_w != 1 || p.groups != 1 || p.pad_top < 0 || p.pad_left < 0 ||
      p.out_h <= 0 || p.out_w <= 0 || p.batch <= 0) {
    return false;
  }
  const Geom g = geometry(p);
  return p.batch * p.in_channels * g.plane < std::numeric_limits<int32_t>::max();
}

// Cost model in multiply-adds of the GEMM microkernel: the direct conv's 9 * C * M per output
// pixel against 36 * C * M per tile (columns rounded up to whole NR panels, which is what makes
// 1..4 tiles slow) plus the transforms, kTransformCost per tile and channel (in or out),
// measured on bench/float_conv_bench.cc --algos auto,winograd (ResNet-18's 3x3 layers at 32 and
// 224, batch 1 and 16: it wins from about 16 tiles of 4x4 with C = M = 64 and loses on 2x2 and
// 1x1 maps and at batch 1 on 8x8 and 7x7). Winograd runs where it is below kWinoShare of the
// direct conv.
constexpr double kTransformCost = 1000;
constexpr double kWinoShare = 0.8;

bool winograd_preferred(const Conv2dParams& p) {
  if (!winograd_applies(p)) return false;
  const Geom g = geometry(p);
  const double cm = static_cast<double>(p.in_channels) * static_cast<double>(p.out_channels);
  const double direct = 9.0 * cm * static_cast<double>(p.batch * p.out_h * p.out_w);
  const double cols = static_cast<double>((g.tiles + 15) / 16 * 16);
  const double wino = 36.0 * cm * cols + kTransformCost * static_cast<double>(g.tiles) *
                                             static_cast<double>(p.in_channels + p.out_channels);
  return wino < kWinoShare * direct;
}

namespace {

// conv2d_winograd_f32 on the images of p (a slice of the call's batch).
void run_images(const Conv2dParams& p, const float* x, const PackedConvWeights& w, float* y,
                const Epilogue& ep) {
  const auto& u = detail::ukernel_for(w.isa);
  Geom g = geometry(p);
  // 8 floats of margin before and after (the masked loads of input_transform).
  float* xp = scratch(tl_pad, static_cast<size_t>(p.batch * p.in_channels * g.plane + 16)) + 8;
  pad_input(p, g, x, xp);
  // Work items: blocks of nb tiles x chunks of output-channel panels, at least two per thread.
  // Each item transforms the filters of its chunk and the inputs of its tiles, so the split
  // that costs the fewest transforms wins: tblocks * M + ochunks * tiles (per input channel,
  // both about 28 vector operations: a filter transform serves 6 pairs, an input transform 8
  // tiles), with blocks of at most kInputBlockFloats floats of transformed input (4..16
  // panels). The blocking changes no output value.
  const int64_t want = in_parallel_region() ? 1 : 2 * static_cast<int64_t>(num_threads());
  const int64_t panels = w.tiles_per_group, tile_panels = (g.tiles + u.nr - 1) / u.nr;
  const int64_t max_np = std::min(
      tile_panels, std::clamp<int64_t>(kInputBlockFloats / (kXi * p.in_channels * u.nr), 4, 16));
  double best = std::numeric_limits<double>::infinity();
  for (int64_t np = 1; np <= max_np; ++np) {
    const int64_t tb = (tile_panels + np - 1) / np;
    int64_t oc = 1;
    while (tb * oc < want && oc < panels) ++oc;
    // With one block of tiles V is transformed once for all chunks (shared_v).
    const double cost = static_cast<double>(tb) * static_cast<double>(p.out_channels) +
                        static_cast<double>(tb == 1 ? 1 : oc) * static_cast<double>(g.tiles);
    if (cost < best) {
      best = cost;
      g.nb = np * u.nr;
      g.tblocks = tb;
      g.ochunks = oc;
    }
  }
  g.panels_per_chunk = (panels + g.ochunks - 1) / g.ochunks;
  // Panels per block of transformed filters: about kFilterBlockFloats floats of U and
  // kOutputBlockFloats of GEMM output per thread.
  g.upb = std::clamp<int64_t>(std::min(kFilterBlockFloats / (kXi * p.in_channels * u.mr),
                                       kOutputBlockFloats / (kXi * u.mr * g.nb)),
                              1, g.panels_per_chunk);
  Ctx ctx{&p, &g, xp, &w, y, &ep, &u};
  if (g.tblocks == 1 && g.ochunks > 1) {
    // One block of tiles, several chunks of output channels: V once, on the calling thread's
    // buffer (the items then use none of their own), its groups of 8 tiles split between the
    // threads, instead of once per item.
    const int64_t npan = g.nb / u.nr;
    float* vp = scratch(tl_v, static_cast<size_t>(kXi * slab_stride(npan * p.in_channels * u.nr)));
    parallel_for(0, npan * u.nr / kLanes, 1, [&ctx, npan, vp](int64_t begin, int64_t end) {
      input_transform(ctx, 0, npan, begin, end, vp);
    });
    ctx.shared_v = vp;
  }
  parallel_for(0, g.tblocks * g.ochunks, 1,
               [&ctx](int64_t begin, int64_t end) { items(ctx, begin, end); });
}

}  // namespace

void conv2d_winograd_f32(const Conv2dParams& p, const float* x, const PackedConvWeights& w,
                         float* y, const Epilogue& ep) {
  QSEARCH_CHECK(w.kernel_h == 3 && w.kernel_w == 3 && w.groups == 1 && w.mr <= kLanes);
  QSEARCH_DCHECK(winograd_applies(p) && w.out_channels == p.out_channels &&
                 w.in_channels_per_group == p.in_channels);
  // Slices of the batch, so that the zero-padded copy of the input stays near kPadFloats
  // (ResNet-18's 56x56 layer at batch 16 would take 14 MB) while each slice keeps at least
  // kMinSliceTiles tiles for the GEMMs' columns. Every image's outputs are the same bits in any
  // slice (each output is one fixed sequence of operations).
  const Geom g = geometry(p);
  const int64_t image_tiles = g.th * g.tw, image_floats = p.in_channels * g.plane;
  const int64_t slice = std::clamp<int64_t>(
      std::max(kPadFloats / image_floats, (kMinSliceTiles + image_tiles - 1) / image_tiles), 1,
      p.batch);
  const int64_t x_image = p.in_channels * p.in_h * p.in_w;
  const int64_t y_image = p.out_channels * p.out_h * p.out_w;
  for (int64_t b0 = 0; b0 < p.batch; b0 += slice) {
    Conv2dParams ps = p;
    ps.batch = std::min(slice, p.batch - b0);
    Epilogue es = ep;
    if (ep.residual != nullptr) es.residual = ep.residual + b0 * y_image;
    run_images(ps, x + b0 * x_image, w, y + b0 * y_image, es);
  }
}

}  // namespace qsearch::kernels
