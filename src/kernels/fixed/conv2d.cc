#include "kernels/fixed/conv2d.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"
#include "kernels/fixed/scratch.h"
#include "kernels/fixed/winograd.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed {

namespace {

// Rows [row0, row0 + rows) of the im2col matrix, written straight into the GEMM's prepared row
// layout (detail::gemm_rows): row p (pixel y = p / OW, x = p % OW) holds
//   A[p, (c * KH + u) * KW + v] = X[c, y*sh - pt + u*dh, x*sw - pl + v*dw] (code 0 outside)
// matching the [OC, C/G, KH, KW] weights, each code stored as prepare_rows() in gemm.cc stores it:
// `conv(code)` (int16 / int32 widening, or uint8 ^ 0x80 for int8 codes in the VNNI quads).
// k is zero padded to kp and the rows to rows_padded, as there.
template <typename T, typename E, typename Conv>
void im2col_rows(const T* x, const Conv2dGeometry& g, int64_t channels, int64_t row0, int64_t rows,
                 int64_t rows_padded, int64_t kp, Conv conv, E* dst) {
  const int64_t ow = g.out_w();
  const int64_t k = channels * g.kernel_h * g.kernel_w;
  const E zero = conv(T{0});
  int64_t py = row0 / ow, px = row0 % ow;
  for (int64_t r = 0; r < rows; ++r) {
    E* row = dst + r * kp;
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = x + c * g.in_h * g.in_w;
      for (int64_t u = 0; u < g.kernel_h; ++u) {
        const int64_t iy = py * g.stride_h - g.pad_top + u * g.dilation_h;
        E* out = row + (c * g.kernel_h + u) * g.kernel_w;
        if (iy < 0 || iy >= g.in_h) {
          std::fill(out, out + g.kernel_w, zero);
          continue;
        }
        const T* src = plane + iy * g.in_w;
        const int64_t ix0 = px * g.stride_w - g.pad_left;
        if (g.dilation_w == 1 && ix0 >= 0 && ix0 + g.kernel_w <= g.in_w) {
          for (int64_t v = 0; v < g.kernel_w; ++v) out[v] = conv(src[ix0 + v]);
        } else {
          for (int64_t v = 0; v < g.kernel_w; ++v) {
            const int64_t ix = ix0 + v * g.dilation_w;
            out[v] = (ix < 0 || ix >= g.in_w) ? zero : conv(src[ix]);
          }
        }
      }
    }
    std::fill(row + k, row + kp, E{0});
    if (++px == ow) {
      px = 0;
      ++py;
    }
  }
  std::fill(dst + rows * kp, dst + rows_padded * kp, E{0});
}

// The k-pairs of the pixel-major path (PixelJob):
//  - kChannels (an even number of input channels per group): pair q = (c / 2, u, v) multiplies
//    the taps (u, v) of the two channels c, c + 1 (no padding of k);
//  - kTaps (one input channel per group, odd KW, KH > 1: LeNet's first conv): the KH * KW taps
//    in row-major order t = u * KW + v, pair q = (t = 2q, t = 2q + 1), one zero weight at the
//    end when KH * KW is odd (25 taps: 13 pairs, where kRows takes 15);
//  - kRows (otherwise): pair q = (c, u, v' / 2) two neighbours (v', v' + 1) of one kernel row,
//    KW rounded up to even with zero weights.
enum class PairMode { kChannels, kTaps, kRows };
PairMode pair_mode(const Conv2dGeometry& g) {
  const int64_t cg = g.in_channels / g.groups;
  if (cg % 2 == 0) return PairMode::kChannels;
  if (cg == 1 && g.kernel_w % 2 == 1 && g.kernel_h > 1) return PairMode::kTaps;
  return PairMode::kRows;
}
// The reduction length of the pixel-major weight rows (K' in conv2d.h).
int64_t pair_k(const Conv2dGeometry& g, PairMode mode) {
  const int64_t cg = g.in_channels / g.groups;
  switch (mode) {
    case PairMode::kChannels:
      return cg * g.kernel_h * g.kernel_w;
    case PairMode::kTaps:
      return (g.kernel_h * g.kernel_w + 1) / 2 * 2;
    default:
      return cg * g.kernel_h * ((g.kernel_w + 1) / 2 * 2);
  }
}

// d[0, n) = s[0, n) as int16 in fixed-size pieces the compiler vectorises: 16 at a time, the last
// piece overlapping the one before (it rewrites the same values) instead of a scalar tail, which
// LeNet's and the residual CNN's 28-column rows spent most of the copy in.
template <int kN, typename T>
inline void widen_piece(const T* s, int16_t* d) {
  for (int k = 0; k < kN; ++k) d[k] = static_cast<int16_t>(s[k]);
}
template <typename T>
void widen_codes(const T* s, int16_t* d, int64_t n) {
  if (n >= 16) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) widen_piece<16>(s + j, d + j);
    if (j < n) widen_piece<16>(s + n - 16, d + n - 16);
  } else if (n >= 8) {
    widen_piece<8>(s, d);
    widen_piece<8>(s + n - 8, d + n - 8);
  } else {
    for (int64_t j = 0; j < n; ++j) d[j] = static_cast<int16_t>(s[j]);
  }
}

// The image (and group) whose rows one gemm_rows() call makes.
struct ConvRows {
  const std::byte* x;  // the group's first input channel of this image
  const Conv2dGeometry* g;
  int64_t channels;  // per group

  template <typename T>
  static void fill_typed(const ConvRows& s, int64_t row0, int64_t rows, int64_t rows_padded,
                         const PackedWeights& w, void* dst) {
    const T* x = reinterpret_cast<const T*>(s.x);
    const int64_t kp = w.k_padded();
    switch (w.layout()) {
      case PackedWeights::Layout::kPairs:
        im2col_rows(
            x, *s.g, s.channels, row0, rows, rows_padded, kp,
            [](T v) { return static_cast<int16_t>(v); }, static_cast<int16_t*>(dst));
        break;
      case PackedWeights::Layout::kQuads: {
        // vpdpbusd's unsigned operand: int8 codes as code + 128 (gemm.cc, prepare_rows).
        constexpr uint8_t flip = std::is_same_v<T, int8_t> ? 0x80 : 0;
        im2col_rows(
            x, *s.g, s.channels, row0, rows, rows_padded, kp,
            [](T v) { return static_cast<uint8_t>(static_cast<uint8_t>(v) ^ flip); },
            static_cast<uint8_t*>(dst));
        break;
      }
      case PackedWeights::Layout::kWide32:
        im2col_rows(
            x, *s.g, s.channels, row0, rows, rows_padded, kp,
            [](T v) { return static_cast<int32_t>(v); }, static_cast<int32_t*>(dst));
        break;
    }
  }

  static void fill(const void* ctx, int64_t row0, int64_t rows, int64_t rows_padded,
                   const PackedWeights& w, void* dst) {
    const ConvRows& s = *static_cast<const ConvRows*>(ctx);
    switch (w.a_dtype()) {
      case DType::kInt8:
        return fill_typed<int8_t>(s, row0, rows, rows_padded, w, dst);
      case DType::kUInt8:
        return fill_typed<uint8_t>(s, row0, rows, rows_padded, w, dst);
      case DType::kInt16:
        return fill_typed<int16_t>(s, row0, rows, rows_padded, w, dst);
      default:
        return fill_typed<int32_t>(s, row0, rows, rows_padded, w, dst);
    }
  }
};

}  // namespace

size_t PackedConv2d::packed_bytes() const {
  size_t total = 0;
  for (const auto& p : groups_) total += p.packed_bytes();
  return total;
}

PackedConv2d pack_conv2d(const Conv2dGeometry& g, const Conv2dWeights& w, Isa isa) {
  if (g.in_channels < 1 || g.in_h < 1 || g.in_w < 1 || g.out_channels < 1 || g.kernel_h < 1 ||
      g.kernel_w < 1 || g.groups < 1 || g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 ||
      g.dilation_w < 1 || g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0) {
    fail(
        "integer Conv2d: invalid geometry (channels {}->{}, input {}x{}, kernel {}x{}, groups {}, "
        "strides {}x{}, dilations {}x{}, pads {},{},{},{})",
        g.in_channels, g.out_channels, g.in_h, g.in_w, g.kernel_h, g.kernel_w, g.groups, g.stride_h,
        g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, g.pad_bottom, g.pad_right);
  }
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    fail("integer Conv2d: {} input and {} output channels are not divisible by group = {}",
         g.in_channels, g.out_channels, g.groups);
  }
  if (g.out_h() < 1 || g.out_w() < 1) {
    fail("integer Conv2d: the {}x{} kernel (dilations {}x{}) does not fit the padded {}x{} input",
         g.kernel_h, g.kernel_w, g.dilation_h, g.dilation_w, g.in_h + g.pad_top + g.pad_bottom,
         g.in_w + g.pad_left + g.pad_right);
  }
  PackedConv2d out;
  out.geometry_ = g;
  const int64_t cg = g.in_channels / g.groups, ocg = g.out_channels / g.groups;
  const int64_t k = cg * g.kernel_h * g.kernel_w;
  const size_t w_es = dtype_size(w.w_dtype), b_es = dtype_size(w.bias_dtype);
  for (int64_t gi = 0; gi < g.groups; ++gi) {
    GemmWeights s;
    s.b = static_cast<const std::byte*>(w.w) + gi * ocg * k * w_es;
    s.b_dtype = w.w_dtype;
    s.k = k;
    s.n = ocg;
    s.stride_k = 1;
    s.stride_n = k;
    s.b_format = w.w_format;
    if (w.bias != nullptr) {
      s.bias = static_cast<const std::byte*>(w.bias) + gi * ocg * b_es;
      s.bias_dtype = w.bias_dtype;
      s.bias_format = w.bias_format;
    }
    s.a_format = w.a_format;
    s.a_dtype = w.a_dtype;
    s.bit_pack = w.bit_pack;
    out.groups_.push_back(pack_weights(s, isa));
  }
  const bool pixel_major =
      out.groups_.front().isa() >= Isa::kAvx2 &&
      (w.w_dtype == DType::kInt8 || w.w_dtype == DType::kInt16) &&
      (w.a_dtype == DType::kInt8 || w.a_dtype == DType::kUInt8 || w.a_dtype == DType::kInt16);
  if (pixel_major) {
    // Channel pairs: k' = ((c / 2, u, v), c % 2). Tap pairs: k' = u * KW + v (c = 0), the weight
    // of k' = KH * KW (when odd) is 0. Row pairs: k' = (c, u, v') with v' < KW rounded up to
    // even, the weights of v' = KW are 0 (pair_mode above, PixelJob).
    const PairMode mode = pair_mode(g);
    const int64_t kwp = mode == PairMode::kRows ? (g.kernel_w + 1) / 2 * 2 : g.kernel_w;
    const int64_t rows = (ocg + 7) / 8 * 8, kp = pair_k(g, mode);
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      Tensor t({rows * kp}, DType::kInt16);
      int16_t* d = t.data<int16_t>();
      std::fill(d, d + rows * kp, int16_t{0});
      for (int64_t o = 0; o < ocg; ++o) {
        for (int64_t c = 0; c < cg; ++c) {
          for (int64_t u = 0; u < g.kernel_h; ++u) {
            for (int64_t v = 0; v < g.kernel_w; ++v) {
              const int64_t i =
                  ((gi * ocg + o) * cg + c) * g.kernel_h * g.kernel_w + u * g.kernel_w + v;
              // pack_weights() above validated every code against w_format (|code| <= 2^15).
              const int64_t kk = mode == PairMode::kChannels
                                     ? ((c / 2 * g.kernel_h + u) * g.kernel_w + v) * 2 + c % 2
                                     : (c * g.kernel_h + u) * kwp + v;  // kTaps: c = 0, kwp = KW
              d[o * kp + kk] = static_cast<int16_t>(quant::load_code(w.w, w.w_dtype, i));
            }
          }
        }
      }
      // [block][q][lane][h] = rows[block * 16 + lane][2q + h].
      const int64_t blocks = (ocg + 15) / 16;
      Tensor lanes({blocks * kp * 16}, DType::kInt16);
      int16_t* l = lanes.data<int16_t>();
      std::fill(l, l + blocks * kp * 16, int16_t{0});
      for (int64_t o = 0; o < ocg; ++o) {
        for (int64_t kk = 0; kk < kp; ++kk) {
          l[((o / 16 * (kp / 2) + kk / 2) * 16 + o % 16) * 2 + kk % 2] = d[o * kp + kk];
        }
      }
      out.weight_rows_.push_back(std::move(t));
      out.weight_lanes_.push_back(std::move(lanes));
    }
    const int64_t taps = g.kernel_h * g.kernel_w;
    if (cg == 1 && g.groups > 1 && taps <= PackedConv2d::kMaxDepthwiseTaps) {
      const int64_t pairs = (taps + 1) / 2;
      Tensor t({g.out_channels * pairs}, DType::kInt32);
      int32_t* d = t.data<int32_t>();
      for (int64_t o = 0; o < g.out_channels; ++o) {
        for (int64_t q = 0; q < pairs; ++q) {
          const int64_t i = o * taps + 2 * q;
          const auto lo = static_cast<uint16_t>(quant::load_code(w.w, w.w_dtype, i));
          const auto hi = 2 * q + 1 < taps
                              ? static_cast<uint16_t>(quant::load_code(w.w, w.w_dtype, i + 1))
                              : uint16_t{0};
          d[o * pairs + q] = static_cast<int32_t>(lo | (static_cast<uint32_t>(hi) << 16));
        }
      }
      out.depthwise_pairs_ = std::move(t);
    }
    if (w.winograd != Conv2dWeights::Winograd::kOff) {
      out.winograd_ = pack_winograd(g, w, out.groups_.front());
    }
  }
  return out;
}

AccumulatorBound accumulator_bound(const PackedConv2d& w) {
  AccumulatorBound worst;
  for (const auto& p : w.groups()) {
    const AccumulatorBound b = accumulator_bound(p);
    if (b.max_abs > worst.max_abs) worst.max_abs = b.max_abs;
    worst.need = std::max(worst.need, b.need);
  }
  return worst;
}

namespace {

#if defined(__x86_64__)
// The pixel-major path (conv2d.h). Each k-pair multiplies two taps that sit at a fixed distance
// D in the padded input (channel_pairs): with an even channel count per group, the taps (u, v)
// of channels 2c' and 2c' + 1 (D = one plane, k not padded); otherwise two neighbours (v', v' + 1)
// of one kernel row of one channel (D = dw; the reduction index is k' = (c, u, v') with v' < KWp,
// KW rounded up to even, the weights of v' = KW are 0). Per work item (image, group, range of
// 16-position panels):
//   xp[c][i][j] = X[c][i - pt][j - pl] as int16, 0 in the padding (Hp = H + pt + pb rows,
//                 Wp = W + pl + pr columns) and in a slack after the planes: im2col never
//                 bounds-checks;
//   x2 = the int16 pairs of the taps D apart: row pairs x2[i] = (xp[i], xp[i + dw]); channel
//        pairs x2[c'][i][j] = (xp[2c'][i][j], xp[2c' + 1][i][j]), half as many planes, 0 in the
//        slack. The pair of k-pair q for the output position whose window starts at plane offset
//        b is x2[b + goff(q)];
//   S[o][j] = sum_k' W[o][k'] * X'[k'][j] by detail::conv_pairs_s32_avx2 (vpmaddwd on int16 pairs,
//             int32 lanes: exact modulo 2^32, and the true sum fits int32 by the caller's
//             AccType), then the epilogue with the tile stored column by column
//             (Epilogue::run_t32): row = pixel, column = channel, bias per channel, as the
//             im2col path.
// Stride 1 ("extended"): the 16 lanes of a panel are positions p' = y * Wp + x, x < Wp, whose
// window origins are consecutive, so every pair row is 16 consecutive x2 entries read in place;
// positions with x >= OW are computed and dropped. Other strides gather the pairs of 16 output
// pixels into a panel first.
// Fused 2x2 max pool (ConvPool::kMax2x2, run_pooled): a work item's pooled rows go in bands;
// per band the sums of its conv rows (all channels, the same panels) land in a plane S[o][p] of
// the band's positions, then each pooled output is the max of its four sums
// (detail::max_pool2x2_s32_avx2) and the epilogue stores 16 pooled outputs per channel. Where
// that computes many dropped positions for many channels (LeNet's second conv: 144 lanes for
// 100 outputs, 16 channels), the channels are the lanes instead (run_pooled_lanes): per pooled
// output, the four windows' pairs are broadcast straight from x2 against 16 channels' weights
// (PackedConv2d::weight_lanes) and the max of the four sums goes to the epilogue.
struct PixelJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;  // ldc for NCHW; each work item makes its group's Epilogue (a few stores)
  static constexpr int kMr = detail::kMrConvPairsAvx2;
  // The channels of a group in mblocks = ceil(ocg / kMr) blocks of as equal sizes as can be
  // (LeNet's 6: one block; 16: 6, 5, 5), each one pass of the pair kernel.
  DType a_dtype;
  int64_t cg, ocg, mblocks, pixels, kwp, kp, hp, wp, panels, chunks, slack;
  // Pooled: units are pooled rows (else panels), `band` pooled rows per S plane of row length
  // `ls`, out_pixels = (OH / 2) * (OW / 2) (else pixels).
  int64_t units, band, ls, out_pixels;
  bool extended, pool, lanes;
  PairMode mode;
  size_t a_es, y_es;

  template <typename T>
  void pad_input(const T* x, int16_t* xp) const {
    const Conv2dGeometry& g = w->geometry();
    std::fill(xp, xp + cg * hp * wp + slack, int16_t{0});
    if (wp == g.in_w) {
      // No column padding: a channel's rows are one contiguous run (one loop that vectorises,
      // where rows as narrow as LeNet's 14 columns stayed scalar).
      const int64_t n = g.in_h * g.in_w;
      for (int64_t c = 0; c < cg; ++c) widen_codes(x + c * n, xp + (c * hp + g.pad_top) * wp, n);
      return;
    }
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t i = 0; i < g.in_h; ++i) {
        widen_codes(x + (c * g.in_h + i) * g.in_w, xp + (c * hp + i + g.pad_top) * wp + g.pad_left,
                    g.in_w);
      }
    }
  }

  // Scratch of one work item: xp (planes + slack + dw), x2 (planes + slack), the pair offsets,
  // the pooled path's S plane.
  struct Buffers {
    int16_t* xp;
    int32_t* x2;
    int64_t* goff;
    int32_t* sums;
  };
  // kTaps: the distance in xp from the last tap of a kernel row to the first of the next.
  int64_t cross() const {
    const Conv2dGeometry& g = w->geometry();
    return mode == PairMode::kTaps ? wp * g.dilation_h - (g.kernel_w - 1) * g.dilation_w : 0;
  }

  Buffers buffers() const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t n = cg * hp * wp + slack;
    const size_t xp_bytes =
        static_cast<size_t>(n + std::max(g.dilation_w, cross()) + 8) * 2 / 64 * 64 + 64;
    const size_t x2_bytes =
        static_cast<size_t>(mode == PairMode::kTaps ? 2 * n : n) * 4 / 64 * 64 + 64;
    const size_t goff_bytes = static_cast<size_t>(kp) * 8 / 64 * 64 + 64;
    const size_t sums_bytes = pool && !lanes ? static_cast<size_t>(ocg * ls) * 4 : 0;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, xp_bytes + x2_bytes + goff_bytes + sums_bytes));
    return {reinterpret_cast<int16_t*>(base), reinterpret_cast<int32_t*>(base + xp_bytes),
            reinterpret_cast<int64_t*>(base + xp_bytes + x2_bytes),
            reinterpret_cast<int32_t*>(base + xp_bytes + x2_bytes + goff_bytes)};
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t chunk = item % chunks, ig = item / chunks;
    const int64_t img = ig / g.groups, gi = ig % g.groups;
    const Buffers buf = buffers();
    const std::byte* xin = x + (img * g.in_channels + gi * cg) * g.in_h * g.in_w * a_es;
    switch (a_dtype) {
      case DType::kInt8:
        pad_input(reinterpret_cast<const int8_t*>(xin), buf.xp);
        break;
      case DType::kUInt8:
        pad_input(reinterpret_cast<const uint8_t*>(xin), buf.xp);
        break;
      default:
        pad_input(reinterpret_cast<const int16_t*>(xin), buf.xp);
        break;
    }
    const int64_t n = cg * hp * wp + slack;
    auto pair = [](int16_t lo, int16_t hi) {
      return static_cast<int32_t>(static_cast<uint16_t>(lo) |
                                  (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
    };
    if (mode == PairMode::kChannels) {
      const int64_t plane = hp * wp, m = cg / 2 * plane;
      for (int64_t c2 = 0; c2 < cg / 2; ++c2) {
        const int16_t* a = buf.xp + 2 * c2 * plane;
        int32_t* d = buf.x2 + c2 * plane;
        for (int64_t i = 0; i < plane; ++i) d[i] = pair(a[i], a[i + plane]);
      }
      std::fill(buf.x2 + m, buf.x2 + m + slack, 0);
      // Pair q = (c', u, v) starts at x2 offset goff(q) from the window origin.
      int64_t* o = buf.goff;
      for (int64_t c2 = 0; c2 < cg / 2; ++c2) {
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          for (int64_t v = 0; v < g.kernel_w; ++v) {
            *o++ = (c2 * hp + u * g.dilation_h) * wp + v * g.dilation_w;
          }
        }
      }
    } else if (mode == PairMode::kTaps) {
      // Two pair planes of the one channel: x2[i] = (xp[i], xp[i + dw]) for the pairs within a
      // kernel row, x2[n + i] = (xp[i], xp[i + cross()]) for the pairs across two rows.
      const int64_t dc = cross();
      std::fill(buf.xp + n, buf.xp + n + std::max(g.dilation_w, dc), int16_t{0});
      for (int64_t i = 0; i < n; ++i) buf.x2[i] = pair(buf.xp[i], buf.xp[i + g.dilation_w]);
      int32_t* x2c = buf.x2 + n;
      for (int64_t i = 0; i < n; ++i) x2c[i] = pair(buf.xp[i], buf.xp[i + dc]);
      const int64_t taps = g.kernel_h * g.kernel_w;
      for (int64_t q = 0, u = 0, v = 0; q < kp / 2; ++q) {  // tap t = 2q = u * KW + v
        const int64_t base = u * g.dilation_h * wp + v * g.dilation_w;
        // The last tap of a row pairs with the next row's first; the odd last tap pairs with a
        // zero weight (any plane).
        buf.goff[q] = (v == g.kernel_w - 1 && 2 * q + 1 < taps) ? n + base : base;
        for (v += 2; v >= g.kernel_w; v -= g.kernel_w) ++u;  // KW = 1 wraps twice
      }
    } else {
      std::fill(buf.xp + n, buf.xp + n + g.dilation_w, int16_t{0});
      for (int64_t i = 0; i < n; ++i) buf.x2[i] = pair(buf.xp[i], buf.xp[i + g.dilation_w]);
      // Pair q = (c, u, v'/2) starts at xp offset koff(c, u, v') from the window origin.
      int64_t* o = buf.goff;
      for (int64_t c = 0; c < cg; ++c) {
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          for (int64_t v = 0; v < kwp; v += 2) {
            *o++ = (c * hp + u * g.dilation_h) * wp + v * g.dilation_w;
          }
        }
      }
    }
    const int16_t* rows = w->weight_rows()[gi].data<int16_t>();
    const Epilogue e(w->groups()[gi], q);
    std::byte* out = y + (img * g.out_channels + gi * ocg) * out_pixels * y_es;
    const int64_t q0 = units * chunk / chunks, q1 = units * (chunk + 1) / chunks;
    if (pool && lanes) {
      run_pooled_lanes(buf, w->weight_lanes()[gi].data<int16_t>(), e, out, q0, q1);
    } else if (pool) {
      run_pooled(buf, rows, e, out, q0, q1);
    } else if (extended) {
      run_extended(buf, rows, e, out, q0, q1);
    } else {
      run_gathered(buf, rows, e, out, q0, q1);
    }
  }

  void run_extended(const Buffers& buf, const int16_t* rows, const Epilogue& e, std::byte* out,
                    int64_t q0, int64_t q1) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow = g.out_w(), positions = (g.out_h() - 1) * wp + ow;
    alignas(64) int32_t s[kMr * 16 + 16];  // run_t32 reads 16 lanes from a run's start
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t p0 = q * 16;
      // Runs of kept positions: {first lane, lanes, output pixel}.
      int64_t runs[16][3];
      int nruns = 0;
      for (int j = 0; j < 16;) {
        const int64_t pp = p0 + j, py = pp / wp, px = pp % wp;
        if (pp >= positions) break;
        if (px >= ow) {
          j += static_cast<int>(wp - px);
          continue;
        }
        const int len = static_cast<int>(std::min<int64_t>(16 - j, ow - px));
        runs[nruns][0] = j;
        runs[nruns][1] = len;
        runs[nruns][2] = py * ow + px;
        ++nruns;
        j += len;
      }
      for (int64_t b = 0; b < mblocks; ++b) {
        const int64_t o0 = ocg * b / mblocks;
        const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
        detail::conv_pairs_s32_avx2(rows + o0 * kp, kp, buf.x2 + p0, buf.goff, kp / 2, cols, s);
        e.run_t32_runs(s, runs, nruns, cols, o0, out);
      }
    }
  }

  // Pooled rows [u0, u1): per band of at most `band` pooled rows, the sums of conv rows
  // 2 * ub .. 2 * ue - 1 at positions p = y * srow + x (extended: p' of the padded input,
  // srow = Wp; gathered: output pixels, srow = OW) from the band's first, then the pooled
  // outputs.
  void run_pooled(const Buffers& buf, const int16_t* rows, const Epilogue& e, std::byte* out,
                  int64_t u0, int64_t u1) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow = g.out_w(), ow2 = ow / 2, srow = extended ? wp : ow;
    int32_t* panel = nullptr;
    int64_t* poff = nullptr;
    if (!extended) {
      panel = static_cast<int32_t*>(
          scratch(ScratchSlot::kGemmB, static_cast<size_t>(kp / 2 * 16 + kp / 2 * 2) * 4));
      poff = reinterpret_cast<int64_t*>(panel + kp / 2 * 16);
      for (int64_t q = 0; q < kp / 2; ++q) poff[q] = q * 16;
    }
    alignas(64) int32_t tile[16 * 16];
    const int64_t nbands = (u1 - u0 + band - 1) / band;
    for (int64_t bi = 0; bi < nbands; ++bi) {
      const int64_t ub = u0 + (u1 - u0) * bi / nbands, ue = u0 + (u1 - u0) * (bi + 1) / nbands;
      const int64_t begin = 2 * ub * srow, end = (2 * ue - 1) * srow + 2 * ow2;
      for (int64_t p0 = begin; p0 < end; p0 += 16) {
        const int32_t* src = buf.x2 + p0;
        const int64_t* offs = buf.goff;
        if (!extended) {
          gather_panel(buf, p0, static_cast<int>(std::min<int64_t>(16, end - p0)), panel);
          src = panel;
          offs = poff;
        }
        for (int64_t b = 0; b < mblocks; ++b) {
          const int64_t o0 = ocg * b / mblocks;
          const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
          detail::conv_pairs_s32_avx2(rows + o0 * kp, kp, src, offs, kp / 2, cols,
                                      buf.sums + o0 * ls + (p0 - begin), ls);
        }
      }
      for (int64_t o0 = 0; o0 < ocg; o0 += 16) {
        const int cols = static_cast<int>(std::min<int64_t>(16, ocg - o0));
        for (int64_t u = ub; u < ue; ++u) {
          const int32_t* s = buf.sums + o0 * ls + 2 * u * srow - begin;
          for (int64_t x0 = 0; x0 < ow2; x0 += 16) {
            for (int j = 0; j < cols; ++j) {
              detail::max_pool2x2_s32_avx2(s + j * ls + 2 * x0, srow, tile + j * 16);
            }
            e.run_t32(tile, static_cast<int>(std::min<int64_t>(16, ow2 - x0)), cols, u * ow2 + x0,
                      o0, out);
          }
        }
      }
    }
  }

  // Pooled rows [u0, u1) with the channels as lanes: pooled outputs P (row-major over the
  // pooled plane) in blocks of 16, each the max of its window's four sums per channel.
  void run_pooled_lanes(const Buffers& buf, const int16_t* wl, const Epilogue& e, std::byte* out,
                        int64_t u0, int64_t u1) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow2 = g.out_w() / 2, dy = g.stride_h * wp, dx = g.stride_w;
    alignas(64) int32_t tile[16 * 16];
    alignas(64) int32_t m[16];
    for (int64_t p0 = u0 * ow2; p0 < u1 * ow2; p0 += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, u1 * ow2 - p0));
      for (int64_t o0 = 0; o0 < ocg; o0 += 16) {
        const int cols = static_cast<int>(std::min<int64_t>(16, ocg - o0));
        const int16_t* wc = wl + o0 / 16 * (kp / 2) * 32;
        for (int i = 0; i < n; ++i) {
          const int64_t p = p0 + i, base = 2 * (p / ow2) * dy + 2 * (p % ow2) * dx;
          const int64_t xoff[4] = {base, base + dx, base + dy, base + dy + dx};
          detail::conv_pool_lanes_s32_avx2(wc, buf.x2, xoff, buf.goff, kp / 2, m);
          for (int j = 0; j < cols; ++j) tile[j * 16 + i] = m[j];
        }
        e.run_t32(tile, n, cols, p0, o0, out);
      }
    }
  }

  // The pairs of the n <= 16 output pixels from p0 (the gathered path), zero past n.
  void gather_panel(const Buffers& buf, int64_t p0, int n, int32_t* panel) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow = g.out_w();
    int64_t off[16];
    for (int j = 0; j < n; ++j) {
      const int64_t p = p0 + j, py = p / ow, px = p % ow;
      off[j] = py * g.stride_h * wp + px * g.stride_w;
    }
    for (int64_t gq = 0; gq < kp / 2; ++gq) {
      const int32_t* src = buf.x2 + buf.goff[gq];
      int32_t* d = panel + gq * 16;
      for (int j = 0; j < n; ++j) d[j] = src[off[j]];
      for (int j = n; j < 16; ++j) d[j] = 0;
    }
  }

  void run_gathered(const Buffers& buf, const int16_t* rows, const Epilogue& e, std::byte* out,
                    int64_t q0, int64_t q1) const {
    alignas(64) int32_t s[kMr * 16 + 16];  // run_t32 reads 16 lanes from a run's start
    auto* panel = static_cast<int32_t*>(
        scratch(ScratchSlot::kGemmB, static_cast<size_t>(kp / 2 * 16 + kp / 2 * 2) * 4));
    auto* poff = reinterpret_cast<int64_t*>(panel + kp / 2 * 16);
    for (int64_t q = 0; q < kp / 2; ++q) poff[q] = q * 16;
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t p0 = q * 16;
      const int n = static_cast<int>(std::min<int64_t>(16, pixels - p0));
      gather_panel(buf, p0, n, panel);
      for (int64_t b = 0; b < mblocks; ++b) {
        const int64_t o0 = ocg * b / mblocks;
        const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
        detail::conv_pairs_s32_avx2(rows + o0 * kp, kp, panel, poff, kp / 2, cols, s);
        e.run_t32(s, n, cols, p0, o0, out);
      }
    }
  }
};

// The depthwise path (conv2d.h): one input channel per group, groups > 1, ocg = OC / G output
// channels per group (the channel multiplier, 1 for MobileNet's depthwise convs). Per work item
// (image, group) the input channel is copied once into sh * sw int16 phase planes of hq x wq,
//   P[s][r][i][j] = xp[i * sh + s][j * sw + r],  xp the zero-padded input (Hp x Wp),
// hq = ceil(Hp / sh), wq = ceil(Wp / sw), zero where xp ends. Output (y, x)'s tap (u, v) reads
// xp[y * sh + u * dh][x * sw + v * dw] = P[s][r][y + (u * dh) / sh][x + (v * dw) / sw] with
// s = (u * dh) % sh, r = (v * dw) % sw: at flat offset off(u, v) from the position p = y * wq + x.
// So 16 consecutive positions read 16 consecutive codes for every tap
// (detail::depthwise_s32_avx2: tap pairs with vpmaddwd, exact modulo 2^32, and the true sums
// fit int32 by the caller's AccType); positions with x >= OW are computed and dropped, and the
// epilogue stores the kept runs of each 16-lane block (Epilogue::run_t32_runs, one column).
struct DepthwiseJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;
  DType a_dtype;
  size_t a_es, y_es;
  int64_t ocg, hp, wp, hq, wq, planes, positions, blocks, pairs, plane_elems, pixels;
  int64_t off[PackedConv2d::kMaxDepthwiseTaps + 2];  // 2 * pairs offsets (odd taps: one repeat)

  template <typename T>
  void fill_planes(const T* src, int16_t* dst) const {
    const Conv2dGeometry& g = w->geometry();
    std::fill(dst, dst + plane_elems, int16_t{0});
    const int64_t sh = g.stride_h, sw = g.stride_w;
    for (int64_t i = 0; i < g.in_h; ++i) {
      const int64_t ip = i + g.pad_top;
      const T* row = src + i * g.in_w;
      int16_t* prow = dst + ((ip % sh) * sw * hq + ip / sh) * wq;
      if (sw == 1) {
        widen_codes(row, prow + g.pad_left, g.in_w);
        continue;
      }
      // Phase r holds the input columns j with (j + pl) % sw == r, at (j + pl) / sw: no
      // division per code (an idiv per code cost more than the taps' multiplies).
      for (int64_t r = 0; r < sw; ++r) {
        const int64_t j0 = ((r - g.pad_left) % sw + sw) % sw;
        int16_t* d = prow + r * hq * wq + (j0 + g.pad_left) / sw;
        for (int64_t j = j0; j < g.in_w; j += sw) *d++ = static_cast<int16_t>(row[j]);
      }
    }
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t img = item / g.groups, gi = item % g.groups;
    const size_t xp_bytes = static_cast<size_t>(plane_elems) * 2 / 64 * 64 + 64;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, xp_bytes + static_cast<size_t>(blocks * 16 + 16) * 4));
    auto* xp = reinterpret_cast<int16_t*>(base);
    auto* sums = reinterpret_cast<int32_t*>(base + xp_bytes);
    const std::byte* xin = x + (img * g.in_channels + gi) * g.in_h * g.in_w * a_es;
    switch (a_dtype) {
      case DType::kInt8:
        fill_planes(reinterpret_cast<const int8_t*>(xin), xp);
        break;
      case DType::kUInt8:
        fill_planes(reinterpret_cast<const uint8_t*>(xin), xp);
        break;
      default:
        fill_planes(reinterpret_cast<const int16_t*>(xin), xp);
        break;
    }
    const Epilogue e(w->groups()[gi], q);
    const int64_t ow = g.out_w();
    std::byte* out = y + (img * g.out_channels + gi * ocg) * pixels * y_es;
    for (int64_t j = 0; j < ocg; ++j) {
      const int32_t* wq_pairs = w->depthwise_pairs().data<int32_t>() + (gi * ocg + j) * pairs;
      detail::depthwise_s32_avx2(xp, wq_pairs, off, pairs, blocks, sums);
      // Position cur = py * wq + px walks the kept runs (px < OW) block by block, without
      // divisions: {first lane, lanes, output pixel} per run of a block.
      int64_t cur = 0, py = 0, px = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        int64_t runs[16][3];
        int nruns = 0;
        const int64_t end = std::min(b * 16 + 16, positions);
        while (cur < end) {
          if (px >= ow) {
            cur += wq - px;
            px = 0;
            ++py;
            continue;
          }
          const int64_t len = std::min(end - cur, ow - px);
          runs[nruns][0] = cur - b * 16;
          runs[nruns][1] = len;
          runs[nruns][2] = py * ow + px;
          ++nruns;
          cur += len;
          px += len;
        }
        e.run_t32_runs(sums + b * 16, runs, nruns, 1, j, out);
      }
    }
  }
};

bool run_depthwise(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                   void* y, ConvPool pool) {
  if (w.depthwise_pairs().numel() == 0 || p.acc != AccType::kInt32 || pool != ConvPool::kNone) {
    return false;
  }
  const Conv2dGeometry& g = w.geometry();
  DepthwiseJob job;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.q = p;
  job.pixels = g.out_h() * g.out_w();
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.q.ldc_n = job.pixels;
  job.a_dtype = w.a_dtype();
  job.a_es = dtype_size(job.a_dtype);
  job.y_es = dtype_size(gemm_output_dtype(p));
  job.ocg = g.out_channels / g.groups;
  job.hp = g.in_h + g.pad_top + g.pad_bottom;
  job.wp = g.in_w + g.pad_left + g.pad_right;
  job.hq = (job.hp + g.stride_h - 1) / g.stride_h;
  job.wq = (job.wp + g.stride_w - 1) / g.stride_w;
  job.planes = g.stride_h * g.stride_w;
  job.positions = (g.out_h() - 1) * job.wq + g.out_w();
  job.blocks = (job.positions + 15) / 16;
  const int64_t taps = g.kernel_h * g.kernel_w;
  job.pairs = (taps + 1) / 2;
  int64_t max_off = 0;
  for (int64_t t = 0; t < 2 * job.pairs; ++t) {
    const int64_t tt = std::min(t, taps - 1);  // the odd last tap's partner has weight 0
    const int64_t u = tt / g.kernel_w, v = tt % g.kernel_w;
    const int64_t du = u * g.dilation_h, dv = v * g.dilation_w;
    const int64_t plane = (du % g.stride_h) * g.stride_w + dv % g.stride_w;
    job.off[t] = (plane * job.hq + du / g.stride_h) * job.wq + dv / g.stride_w;
    max_off = std::max(max_off, job.off[t]);
  }
  // Every lane of every block reads inside the buffer (dropped lanes read zeros or codes).
  job.plane_elems = std::max(job.planes * job.hq * job.wq, job.blocks * 16 + max_off) + 16;
  const DepthwiseJob* shared = &job;
  parallel_for(0, batch * g.groups, 1, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) shared->run(i);
  });
  return true;
}

#endif  // __x86_64__

// ConvPool::kMax2x2 on `channels` planes of h x w (NCHW) into planes of (h / 2) x (w / 2).
template <typename T>
void max_pool2x2_planes(const T* x, int64_t channels, int64_t h, int64_t w, T* y) {
  const int64_t h2 = h / 2, w2 = w / 2;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t a = 0; a < h2; ++a) {
      const T* r0 = x + (c * h + 2 * a) * w;
      const T* r1 = r0 + w;
      T* d = y + (c * h2 + a) * w2;
      for (int64_t b = 0; b < w2; ++b) {
        d[b] = std::max(std::max(r0[2 * b], r0[2 * b + 1]), std::max(r1[2 * b], r1[2 * b + 1]));
      }
    }
  }
}

void max_pool2x2_planes(const void* x, DType dtype, int64_t channels, int64_t h, int64_t w,
                        void* y) {
  switch (dtype) {
    case DType::kInt8:
      return max_pool2x2_planes(static_cast<const int8_t*>(x), channels, h, w,
                                static_cast<int8_t*>(y));
    case DType::kUInt8:
      return max_pool2x2_planes(static_cast<const uint8_t*>(x), channels, h, w,
                                static_cast<uint8_t*>(y));
    case DType::kInt16:
      return max_pool2x2_planes(static_cast<const int16_t*>(x), channels, h, w,
                                static_cast<int16_t*>(y));
    case DType::kInt32:
      return max_pool2x2_planes(static_cast<const int32_t*>(x), channels, h, w,
                                static_cast<int32_t*>(y));
    case DType::kInt64:
      return max_pool2x2_planes(static_cast<const int64_t*>(x), channels, h, w,
                                static_cast<int64_t*>(y));
    default:  // float32 (GemmOutput::kFloat: finite values, never NaN)
      return max_pool2x2_planes(static_cast<const float*>(x), channels, h, w,
                                static_cast<float*>(y));
  }
}

// State shared by the work items of one conv2d() call (captured by pointer: no allocation).
struct ConvJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;
  int64_t cg, ocg, pixels, k, out_pixels;
  size_t a_es, y_es;
  DType y_dtype;
  bool pool;

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t img = item / g.groups, gi = item % g.groups;
    const ConvRows rows{x + (img * g.in_channels + gi * cg) * g.in_h * g.in_w * a_es, &g, cg};
    std::byte* out = y + (img * g.out_channels + gi * ocg) * out_pixels * y_es;
    if (!pool) {
      detail::gemm_rows(&ConvRows::fill, &rows, pixels, w->groups()[gi], q, out);
      return;
    }
    // The group's full output in this thread's buffer (the gemm's own threads, if any, write
    // into it too; it returns when they are done), then the pool.
    void* full = scratch(ScratchSlot::kConvOutput, static_cast<size_t>(ocg * pixels) * y_es);
    detail::gemm_rows(&ConvRows::fill, &rows, pixels, w->groups()[gi], q, full);
    max_pool2x2_planes(full, y_dtype, ocg, g.out_h(), g.out_w(), out);
  }
};

// The pooled path's S plane holds at most about this many bytes (a band of pooled rows).
constexpr int64_t kPoolBandBytes = 16384;

bool run_pixel_major(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                     void* y, ConvPool pool) {
#if !defined(__x86_64__)
  (void)x, (void)batch, (void)w, (void)p, (void)y, (void)pool;
  return false;
#else
  if (w.weight_rows().empty() || p.acc != AccType::kInt32) return false;
  const Conv2dGeometry& g = w.geometry();
  PixelJob job;
  GemmParams q = p;
  const int64_t oh2 = conv_pool_out(pool, g.out_h()), ow2 = conv_pool_out(pool, g.out_w());
  q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  q.ldc_n = oh2 * ow2;
  job.q = q;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.a_dtype = w.a_dtype();
  job.cg = g.in_channels / g.groups;
  job.ocg = g.out_channels / g.groups;
  job.mblocks = (job.ocg + PixelJob::kMr - 1) / PixelJob::kMr;
  job.pixels = g.out_h() * g.out_w();
  job.mode = pair_mode(g);
  job.kwp = job.mode == PairMode::kRows ? (g.kernel_w + 1) / 2 * 2 : g.kernel_w;
  job.kp = pair_k(g, job.mode);
  job.hp = g.in_h + g.pad_top + g.pad_bottom;
  job.wp = g.in_w + g.pad_left + g.pad_right;
  // Reads past the planes: a panel's 16 lanes past the last kept position, v' = KW.
  job.slack = 32 + (g.kernel_w + 1) / 2 * 2 * g.dilation_w;
  job.extended = g.stride_h == 1 && g.stride_w == 1;
  job.panels =
      job.extended ? ((g.out_h() - 1) * job.wp + g.out_w() + 15) / 16 : (job.pixels + 15) / 16;
  job.a_es = dtype_size(w.a_dtype());
  job.y_es = dtype_size(gemm_output_dtype(p));
  job.pool = pool != ConvPool::kNone;
  job.out_pixels = oh2 * ow2;
  job.units = job.panels;
  job.band = job.ls = 0;
  job.lanes = false;
  if (job.pool) {
    if (job.out_pixels == 0) return true;  // nothing to write
    const int64_t srow = job.extended ? job.wp : g.out_w();
    job.units = oh2;
    job.band = std::clamp<int64_t>(kPoolBandBytes / (job.ocg * 4 * 2 * srow), 1, oh2);
    job.ls = ((2 * job.band - 1) * srow + 2 * ow2 + 15) / 16 * 16 + 32;
    // The multiply count of each way: positions (2 * srow per pooled row, the dropped ones
    // included) x channels, against the four windows' positions x 16-channel blocks.
    const int64_t by_positions = 2 * oh2 * srow * job.ocg;
    const int64_t by_channels = 4 * oh2 * ow2 * ((job.ocg + 15) / 16 * 16);
    job.lanes = by_channels < by_positions;
  }
  const int64_t images = batch * g.groups;
  const int64_t threads = num_threads();
  job.chunks = images >= threads ? 1 : std::min(job.units, (threads + images - 1) / images);
  const PixelJob* shared = &job;
  parallel_for(0, images * job.chunks, 1, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) shared->run(i);
  });
  return true;
#endif
}

}  // namespace

void conv2d(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p, void* y,
            ConvPool pool) {
  if (batch <= 0) return;
  if (winograd_conv2d(x, batch, w, p, y, pool)) return;
#if defined(__x86_64__)
  if (run_depthwise(x, batch, w, p, y, pool)) return;
#endif
  if (run_pixel_major(x, batch, w, p, y, pool)) return;
  const Conv2dGeometry& g = w.geometry();
  ConvJob job;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.cg = g.in_channels / g.groups;
  job.ocg = g.out_channels / g.groups;
  job.pixels = g.out_h() * g.out_w();
  job.a_es = dtype_size(w.a_dtype());
  job.y_dtype = gemm_output_dtype(p);
  job.y_es = dtype_size(job.y_dtype);
  job.pool = pool != ConvPool::kNone;
  job.out_pixels = conv_pool_out(pool, g.out_h()) * conv_pool_out(pool, g.out_w());
  if (job.out_pixels == 0) return;
  job.q = p;
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.q.ldc_n = job.pixels;
  const int64_t items = batch * g.groups;
  if (items >= num_threads()) {
    const ConvJob* shared = &job;
    parallel_for(0, items, 1, [shared](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) shared->run(i);  // the inner gemm runs inline here
    });
  } else {
    for (int64_t i = 0; i < items; ++i) job.run(i);  // the gemm parallelises instead
  }
}

}  // namespace qsearch::kernels::fixed
