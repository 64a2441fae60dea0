#include "kernels/winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/ukernel.h"

namespace qsearch::kernels {

namespace {

constexpr int kIn = 6;     // input tile side
constexpr int kOut = 4;    // output tile side
constexpr int kXi = 36;    // transformed tile positions
constexpr int kLanes = 8;  // tiles per AVX2 vector

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

// A 32-byte aligned scratch area of n floats in a per-thread buffer that only grows.
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 8) buf.resize(n + 8);
  auto addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((32 - addr % 32) % 32) / sizeof(float);
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

// Zero-padded copy of X: plane (b, c) is hp x wp with the image at (pad_top, pad_left).
void pad_input(const Conv2dParams& p, const Geom& g, const float* x, float* xp) {
  parallel_for(0, p.batch * p.in_channels, 1, [&](int64_t begin, int64_t end) {
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
        const float* s = src + h * p.in_w;
        for (int64_t col = 0; col < 4 * g.pw; ++col) {
          const int64_t w = col - p.pad_left;
          row[(col % 4) * g.pw + col / 4] = w >= 0 && w < p.in_w ? s[w] : 0.0f;
        }
      }
    }
  });
}

struct Ctx {
  const Conv2dParams* p;
  const Geom* g;
  const float* xp;
  const WinogradWeights* w;
  float* y;
  const Epilogue* ep;
  const detail::UKernelInfo* u;
};

// Lane mask of lanes [b, e).
__m256i lane_range(int b, int e) {
  alignas(32) int32_t m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = l >= b && l < e ? -1 : 0;
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// V = B^T d B of every channel for one group of lanes; load(a) returns the 8 lanes' input at
// a = channel c's plane + q, q = row * 4 * pw + phase * pw + shift (from each lane's tile).
template <typename Load>
void transform_group(const Ctx& ctx, int64_t npan, int64_t panel, int64_t lane0, float* vp,
                     const Load& load) {
  const Geom& g = *ctx.g;
  const int nr = ctx.u->nr;
  const int64_t c_count = ctx.p->in_channels;
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
        _mm256_store_ps(dst + (i * kIn + k) * npan * c_count * nr, v[i]);
      }
    }
  }
}

// V of the item's tiles: vp[xi][panel][c][NR]. A run of lanes on consecutive tiles of one tile
// row reads its inputs with one (masked) vector load per tap; groups of more than 3 runs
// (maps under 4 tiles wide) gather per lane. Lanes past the batch's last tile hold zeros or a
// copy of a valid tile (never read back).
void input_transform(const Ctx& ctx, int64_t t0, int64_t npan, float* vp) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const int nr = ctx.u->nr;
  for (int64_t grp = 0; grp < npan * nr / kLanes; ++grp) {
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

// Y of the item's tiles and output channels [o0, o1) from m[xi][o - o0][nb].
void output_transform(const Ctx& ctx, int64_t t0, int64_t nb, int64_t o0, int64_t o1,
                      const float* m) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const Epilogue& ep = *ctx.ep;
  const int64_t xi_stride = (o1 - o0 + ctx.u->mr - 1) / ctx.u->mr * ctx.u->mr * nb;
  const int64_t plane = p.out_h * p.out_w;
  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  const __m256 lo = _mm256_set1_ps(ep.clamp_min), hi = _mm256_set1_ps(ep.clamp_max);
  const bool res = ep.residual != nullptr, after = ep.residual_after_clamp;
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
      alignas(32) float out[kOut * kOut][kLanes];
      for (int j = 0; j < kOut; ++j) {
        const __m256 col[kIn] = {q[0][j], q[1][j], q[2][j], q[3][j], q[4][j], q[5][j]};
        __m256 v[kOut];
        at4(col, v);
        for (int i = 0; i < kOut; ++i) {
          __m256 r = _mm256_fmadd_ps(v[i], alpha, bias);
          if (!res) r = _mm256_min_ps(hi, _mm256_max_ps(lo, r));  // NaN propagates
          _mm256_store_ps(out[i * kOut + j], r);
        }
      }
      for (int l = 0; l < kLanes; ++l) {
        const int64_t base = lt.out_off[l] + o * plane;
        for (int i = 0; i < lt.rows[l]; ++i) {
          float* dst = ctx.y + base + i * p.out_w;
          if (!res) {
            for (int j = 0; j < lt.cols[l]; ++j) dst[j] = out[i * kOut + j][l];
            continue;
          }
          const float* rr = ep.residual + base + i * p.out_w;
          for (int j = 0; j < lt.cols[l]; ++j) {
            float v = out[i * kOut + j][l];
            if (!after) v += rr[j];
            v = v < ep.clamp_min ? ep.clamp_min : (v > ep.clamp_max ? ep.clamp_max : v);
            dst[j] = after ? v + rr[j] : v;
          }
        }
      }
    }
  }
}

thread_local std::vector<float> tl_pad, tl_v, tl_m;

void items(const Ctx& ctx, int64_t begin, int64_t end) {
  const Conv2dParams& p = *ctx.p;
  const Geom& g = *ctx.g;
  const WinogradWeights& w = *ctx.w;
  const auto& u = *ctx.u;
  const int64_t c_count = p.in_channels;
  for (int64_t item = begin; item < end; ++item) {
    const int64_t tb = item / g.ochunks, oc = item % g.ochunks;
    const int64_t t0 = tb * g.nb, nb = std::min(g.nb, (g.tiles - t0 + u.nr - 1) / u.nr * u.nr);
    const int64_t npan = nb / u.nr;
    const int64_t p0 = oc * g.panels_per_chunk, p1 = std::min(w.panels, p0 + g.panels_per_chunk);
    if (p0 >= p1) continue;
    const int64_t o0 = p0 * u.mr, o1 = std::min(p.out_channels, p1 * u.mr);
    const int64_t rows = (p1 - p0) * u.mr;
    float* vp = scratch(tl_v, static_cast<size_t>(kXi * npan * c_count * u.nr));
    float* m = scratch(tl_m, static_cast<size_t>(kXi * rows * nb));
    input_transform(ctx, t0, npan, vp);
    for (int xi = 0; xi < kXi; ++xi) {
      for (int64_t tp = 0; tp < npan; ++tp) {
        const float* b = vp + (xi * npan + tp) * c_count * u.nr;
        for (int64_t pt = p0; pt < p1; ++pt) {
          const int mr = static_cast<int>(std::min<int64_t>(u.mr, o1 - pt * u.mr));
          u.fn(c_count, w.panel(xi, pt), b, nullptr,
               m + (xi * rows + (pt - p0) * u.mr) * nb + tp * u.nr, nb, mr, u.nr, false, nullptr);
        }
      }
    }
    output_transform(ctx, t0, nb, o0, o1, m);
  }
}

}  // namespace

WinogradWeights pack_winograd_weights(const float* w, int64_t out_channels, int64_t in_channels,
                                      Isa isa) {
  const auto& u = detail::ukernel_for(isa);
  WinogradWeights ww;
  ww.isa = isa;
  ww.mr = u.mr;
  ww.nr = u.nr;
  ww.out_channels = out_channels;
  ww.in_channels = in_channels;
  ww.panels = (out_channels + u.mr - 1) / u.mr;
  ww.data = Tensor({kXi * ww.panels * in_channels * u.mr}, DType::kFloat32);
  float* d = ww.data.data<float>();
  std::fill(d, d + ww.data.numel(), 0.0f);
  for (int64_t o = 0; o < out_channels; ++o) {
    for (int64_t c = 0; c < in_channels; ++c) {
      const float* g = w + (o * in_channels + c) * 9;
      double t[kIn][3];  // G g
      for (int i = 0; i < kIn; ++i) {
        for (int b = 0; b < 3; ++b) {
          t[i][b] = kG[i][0] * g[b] + kG[i][1] * g[3 + b] + kG[i][2] * g[6 + b];
        }
      }
      for (int i = 0; i < kIn; ++i) {
        for (int k = 0; k < kIn; ++k) {
          const double v = t[i][0] * kG[k][0] + t[i][1] * kG[k][1] + t[i][2] * kG[k][2];
          const int64_t pt = o / u.mr, lane = o % u.mr;
          d[((((i * kIn + k) * ww.panels + pt) * in_channels) + c) * u.mr + lane] =
              static_cast<float>(v);
        }
      }
    }
  }
  return ww;
}

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

void conv2d_winograd_f32(const Conv2dParams& p, const float* x, const WinogradWeights& w, float* y,
                         const Epilogue& ep) {
  QSEARCH_DCHECK(winograd_applies(p) && w.out_channels == p.out_channels &&
                 w.in_channels == p.in_channels);
  const auto& u = detail::ukernel_for(w.isa);
  Geom g = geometry(p);
  // 8 floats of margin before and after (the masked loads of input_transform).
  float* xp = scratch(tl_pad, static_cast<size_t>(p.batch * p.in_channels * g.plane + 16)) + 8;
  pad_input(p, g, x, xp);
  // Work items: blocks of nb tiles x chunks of output-channel panels; narrower blocks, then
  // more chunks, until every thread has two. The blocking changes no output value.
  const int64_t want = in_parallel_region() ? 1 : 2 * static_cast<int64_t>(num_threads());
  g.nb = 4 * u.nr;
  g.ochunks = 1;
  auto blocks = [&] { return (g.tiles + g.nb - 1) / g.nb; };
  while (g.nb > u.nr && blocks() < want) g.nb -= u.nr;
  g.tblocks = blocks();
  while (g.tblocks * g.ochunks < want && g.ochunks < w.panels) ++g.ochunks;
  g.panels_per_chunk = (w.panels + g.ochunks - 1) / g.ochunks;
  Ctx ctx{&p, &g, xp, &w, y, &ep, &u};
  parallel_for(0, g.tblocks * g.ochunks, 1,
               [&ctx](int64_t begin, int64_t end) { items(ctx, begin, end); });
}

}  // namespace qsearch::kernels
