#include "kernels/fixed/conv2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"
#include "kernels/fixed/scratch.h"
#include "kernels/fixed/winograd.h"
#include "kernels/vec_math.h"
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

// The quads path (QuadJob): 4 k-values per int32 lane, multiplied with vpdpbusd
// (detail::conv_quads_s32_vnni). Channel quads when 4 divides the channels per group: quad
// q = (c / 4, u, v) holds the taps (u, v) of channels 4c', .., 4c' + 3; else row quads:
// q = (c, u, v' / 4) holds the neighbours v' .. v' + 3 of one kernel row (v' < KW rounded up to a
// multiple of 4, zero weights past KW). The input goes into phase planes (one per stride phase
// (a, b) that some quad reads: a = (u * dh) % sh, b = (v' * dw) % sw) of hq x wq positions
// P[s][a, b][i][j] = quad s of the padded input at row i * sh + a, column j * sw + b, so that the
// output position p = y * wq + x reads quad q at P[s][a, b] + p + (u * dh / sh) * wq +
// v' * dw / sw: 16 consecutive positions are 16 consecutive quads, for every stride.
struct QuadLayout {
  bool channels = false;
  int64_t kw4 = 0;         // row quads: KW rounded up to a multiple of 4
  int64_t kq = 0;          // quads per output channel (K'' / 4)
  int64_t sources = 0;     // cg / 4 channel quads or cg channels (row quads)
  int64_t hq = 0, wq = 0;  // phase plane rows and columns
  int64_t positions = 0;   // (OH - 1) * wq + OW
  int nph = 0;             // phase planes per source
  int8_t phase[16] = {};   // phase index of (a, b) at a * sw + b, -1 if no quad reads it
};

// Strides up to this many phases (sh * sw) take the quads path.
constexpr int64_t kMaxQuadPhases = 16;

QuadLayout quad_layout(const Conv2dGeometry& g) {
  QuadLayout l;
  const int64_t cg = g.in_channels / g.groups;
  l.channels = cg % 4 == 0;
  l.kw4 = (g.kernel_w + 3) / 4 * 4;
  l.kq = l.channels ? cg / 4 * g.kernel_h * g.kernel_w : cg * g.kernel_h * (l.kw4 / 4);
  l.sources = l.channels ? cg / 4 : cg;
  const int64_t hp = g.in_h + g.pad_top + g.pad_bottom, wp = g.in_w + g.pad_left + g.pad_right;
  l.hq = (hp + g.stride_h - 1) / g.stride_h;
  l.wq = (wp + g.stride_w - 1) / g.stride_w;
  l.positions = (g.out_h() - 1) * l.wq + g.out_w();
  std::fill(std::begin(l.phase), std::end(l.phase), int8_t{-1});
  if (g.stride_h * g.stride_w > kMaxQuadPhases) return l;
  const int64_t vstep = l.channels ? 1 : 4;
  for (int64_t u = 0; u < g.kernel_h; ++u) {
    for (int64_t v = 0; v < g.kernel_w; v += vstep) {
      const int64_t k =
          (u * g.dilation_h) % g.stride_h * g.stride_w + (v * g.dilation_w) % g.stride_w;
      if (l.phase[k] < 0) l.phase[k] = static_cast<int8_t>(l.nph++);
    }
  }
  return l;
}

// Whether pack_conv2d() packs the quads path for this geometry and these weights: int8 weights
// and 8-bit codes packed for VNNI, a stride other than 1x1 (stride 1 takes Winograd or the
// extended pair panels), and phase planes that keep at least half of the lanes (tiny maps keep
// the gathered pair panels, whose lanes run over the images).
// Whether vpdpbusd can take these operands: int8 weights, 8-bit codes, packed for VNNI.
bool byte_quads_isa(const Conv2dWeights& w, Isa isa) {
  return isa >= Isa::kAvx512Vnni && w.w_dtype == DType::kInt8 &&
         (w.a_dtype == DType::kInt8 || w.a_dtype == DType::kUInt8);
}

bool quads_apply(const Conv2dGeometry& g, const Conv2dWeights& w, Isa isa) {
  if (!byte_quads_isa(w, isa)) return false;
  // Stride 1: only the unpadded 1x1 convs (a GEMM over the pixels: channel quads, every lane
  // kept on maps of 16, 32, ... pixels), which have no Winograd and whose pair panels are
  // vpmaddwd on int16.
  const bool pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
                         g.pad_bottom == 0 && g.pad_right == 0 && g.dilation_h == 1 &&
                         g.dilation_w == 1;
  if ((g.stride_h == 1 && g.stride_w == 1 && !pointwise) ||
      g.stride_h * g.stride_w > kMaxQuadPhases) {
    return false;
  }
  const QuadLayout l = quad_layout(g);
  return (l.positions + 15) / 16 * 16 <= 2 * g.out_h() * g.out_w();
}

// A code as the element of a depthwise plane (and of the other int16 copies): D = int16_t
// widens it; D = uint8_t gives vpdpbusd's unsigned byte, the code's byte ^ flip (0x80 for int8
// codes: code + 128; 0 for uint8 ones).
template <typename D, typename T>
inline D plane_code(T v, uint8_t flip) {
  static_assert(std::is_same_v<D, int16_t> || (std::is_same_v<D, uint8_t> && sizeof(T) == 1));
  if constexpr (std::is_same_v<D, int16_t>) {
    return static_cast<int16_t>(v);
  } else {
    return static_cast<uint8_t>(static_cast<uint8_t>(v) ^ flip);
  }
}

// d[0, n) = plane_code(s[0, n)) in fixed-size pieces: 16 at a time, the last piece overlapping
// the one before (it rewrites the same values) instead of a scalar tail, which LeNet's and the
// residual CNN's 28-column rows spent most of the copy in. int16: loops the compiler vectorises;
// bytes: one load, xor and store (GCC left the byte loop scalar, every store possibly aliasing).
template <int kN, typename T, typename D>
inline void widen_piece(const T* s, D* d, uint8_t flip) {
#ifdef __AVX2__
  if constexpr (std::is_same_v<D, uint8_t>) {
    const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
    if constexpr (kN == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d),
                       _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)), f));
    } else {
      static_assert(kN == 8);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d),
                       _mm_xor_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)), f));
    }
    return;
  }
#endif
  for (int k = 0; k < kN; ++k) d[k] = plane_code<D>(s[k], flip);
}
template <typename T, typename D = int16_t>
void widen_codes(const T* s, D* d, int64_t n, uint8_t flip = 0) {
  if (n >= 16) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) widen_piece<16>(s + j, d + j, flip);
    if (j < n) widen_piece<16>(s + n - 16, d + n - 16, flip);
  } else if (n >= 8) {
    widen_piece<8>(s, d, flip);
    widen_piece<8>(s + n - 8, d + n - 8, flip);
  } else {
    for (int64_t j = 0; j < n; ++j) d[j] = plane_code<D>(s[j], flip);
  }
}

// A row of n codes split by column parity as plane_code: even[m] = s[2m], odd[m] = s[2m + 1]
// (the depthwise path's two column phases at stride 2). 8-bit codes go 32 at a time (a byte
// shuffle puts each 128-bit half's even bytes before its odd ones, a qword permute joins the
// halves, then sign or zero extension as the scalar cast, or the flip for bytes), or 16 at a
// time on rows of 16 to 31 codes; the last piece starts at the last even column that keeps it
// inside the row and rewrites values already written (a scalar tail cost as much as the pieces on
// 56- and 28-code rows), leaving at most one code (odd n) for the scalar loop, as do rows under 16
// codes.
#ifdef __AVX2__
template <typename T, typename D>
inline void split_piece32(const T* s, D* even, D* odd, uint8_t flip) {
  const __m256i order = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2,
                                         4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
  v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, order), 0xd8);
  const __m128i e = _mm256_castsi256_si128(v), o = _mm256_extracti128_si256(v, 1);
  if constexpr (std::is_same_v<D, uint8_t>) {
    const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(even), _mm_xor_si128(e, f));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(odd), _mm_xor_si128(o, f));
    return;
  }
  const __m256i we = std::is_signed_v<T> ? _mm256_cvtepi8_epi16(e) : _mm256_cvtepu8_epi16(e);
  const __m256i wo = std::is_signed_v<T> ? _mm256_cvtepi8_epi16(o) : _mm256_cvtepu8_epi16(o);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(even), we);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(odd), wo);
}
template <typename T, typename D>
inline void split_piece16(const T* s, D* even, D* odd, uint8_t flip) {
  const __m128i order = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)), order);
  const __m128i o = _mm_unpackhi_epi64(v, v);
  if constexpr (std::is_same_v<D, uint8_t>) {
    const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(even), _mm_xor_si128(v, f));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(odd), _mm_xor_si128(o, f));
    return;
  }
  const __m128i we = std::is_signed_v<T> ? _mm_cvtepi8_epi16(v) : _mm_cvtepu8_epi16(v);
  const __m128i wo = std::is_signed_v<T> ? _mm_cvtepi8_epi16(o) : _mm_cvtepu8_epi16(o);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(even), we);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(odd), wo);
}
#endif
template <typename T, typename D = int16_t>
void split_pair(const T* s, int64_t n, D* even, D* odd, uint8_t flip = 0) {
  int64_t j = 0;
#ifdef __AVX2__
  if constexpr (sizeof(T) == 1) {
    auto pieces = [&](auto piece, int64_t len) {
      for (; j + len <= n; j += len) piece(s + j, even + j / 2, odd + j / 2, flip);
      if (j + 1 < n) {  // two codes or more left: a last piece ending at n or n - 1
        j = (n - len) & ~int64_t{1};
        piece(s + j, even + j / 2, odd + j / 2, flip);
        j += len;
      }
    };
    if (n >= 32) {
      pieces(split_piece32<T, D>, 32);
    } else if (n >= 16) {
      pieces(split_piece16<T, D>, 16);
    }
  }
#endif
  for (; j < n; ++j) (j % 2 == 0 ? even : odd)[j / 2] = plane_code<D>(s[j], flip);
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

// The kernel rows (or columns) [first, last] that read the image for some output: tap t reads
// rows t * d - pad + o * s, o in [0, out); the taps outside only ever multiply the zero padding
// (code 0). The live taps are one interval (the rows a tap reads move with t). Widened where
// cutting would leave a negative pad (dilation > 1: the kernels take pads >= 0), and all kept when
// no tap reads the image (the outputs are the bias alone).
std::pair<int64_t, int64_t> live_taps(int64_t in, int64_t out, int64_t k, int64_t stride,
                                      int64_t pad_before, int64_t pad_after, int64_t dilation) {
  int64_t first = k, last = -1;
  for (int64_t t = 0; t < k; ++t) {
    const int64_t lo = t * dilation - pad_before, hi = lo + (out - 1) * stride;
    // The first row of lo, lo + stride, ..., hi that is >= 0.
    const int64_t r = lo >= 0 ? lo : lo + (-lo + stride - 1) / stride * stride;
    if (r <= hi && r < in) {
      first = std::min(first, t);
      last = t;
    }
  }
  if (first > last) return {0, k - 1};
  return {std::min(first, pad_before / dilation), std::max(last, k - 1 - pad_after / dilation)};
}

// g with the taps that only ever read the zero padding cut off (conv2d.h, PackedConv2d::
// geometry()): kernel rows [u0, u1] and columns [v0, v1] of g's, the pads less the cut rows and
// columns. The output size is g's: OH's numerator H + pt + pb - dh * (KH - 1) - 1 loses
// u0 * dh + (KH - 1 - u1) * dh from the pads and as much from the kernel term.
Conv2dGeometry live_geometry(const Conv2dGeometry& g, int64_t* u0, int64_t* v0) {
  const auto [r0, r1] =
      live_taps(g.in_h, g.out_h(), g.kernel_h, g.stride_h, g.pad_top, g.pad_bottom, g.dilation_h);
  const auto [c0, c1] =
      live_taps(g.in_w, g.out_w(), g.kernel_w, g.stride_w, g.pad_left, g.pad_right, g.dilation_w);
  Conv2dGeometry t = g;
  t.kernel_h = r1 - r0 + 1;
  t.kernel_w = c1 - c0 + 1;
  t.pad_top -= r0 * g.dilation_h;
  t.pad_bottom -= (g.kernel_h - 1 - r1) * g.dilation_h;
  t.pad_left -= c0 * g.dilation_w;
  t.pad_right -= (g.kernel_w - 1 - c1) * g.dilation_w;
  *u0 = r0;
  *v0 = c0;
  return t;
}

void validate(const Conv2dGeometry& g) {
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
  // (The padded input must hold the dilated kernel: out_h()'s division truncates a numerator
  // of -1 .. 1 - stride to one output.)
  if (g.in_h + g.pad_top + g.pad_bottom < g.dilation_h * (g.kernel_h - 1) + 1 ||
      g.in_w + g.pad_left + g.pad_right < g.dilation_w * (g.kernel_w - 1) + 1) {
    fail("integer Conv2d: the {}x{} kernel (dilations {}x{}) does not fit the padded {}x{} input",
         g.kernel_h, g.kernel_w, g.dilation_h, g.dilation_w, g.in_h + g.pad_top + g.pad_bottom,
         g.in_w + g.pad_left + g.pad_right);
  }
}

}  // namespace

size_t PackedConv2d::packed_bytes() const {
  size_t total = 0;
  for (const auto& p : groups_) total += p.packed_bytes();
  return total;
}

PackedConv2d pack_conv2d(const Conv2dGeometry& full, const Conv2dWeights& full_w, Isa isa) {
  validate(full);
  // Cut off the taps that only ever read the zero padding (a 3x3 pad-1 conv on a 1x1 map keeps
  // its centre tap): the same sums, as those taps multiply code 0 (conv2d.h).
  int64_t u0 = 0, v0 = 0;
  const Conv2dGeometry g = live_geometry(full, &u0, &v0);
  Conv2dWeights w = full_w;
  Tensor cut;
  if (g.kernel_h != full.kernel_h || g.kernel_w != full.kernel_w) {
    const int64_t rows = full.out_channels * (full.in_channels / full.groups);
    if (full_w.w_dtype == DType::kInt8 || full_w.w_dtype == DType::kInt16 ||
        full_w.w_dtype == DType::kInt32) {
      // The cut codes too are checked against the format, as pack_weights() checks the rest.
      const FixedFormat& f = full_w.w_format;
      for (int64_t i = 0; i < rows * full.kernel_h * full.kernel_w; ++i) {
        const int64_t v = quant::load_code(full_w.w, full_w.w_dtype, i);
        if (v < f.min_code() || v > f.max_code()) {
          fail("integer Conv2d: weight code {} at {} is outside format {}", v, i,
               quant::format_name(f));
        }
      }
    }
    const size_t es = dtype_size(full_w.w_dtype);
    cut = Tensor({rows * g.kernel_h * g.kernel_w}, full_w.w_dtype);
    const auto* src = static_cast<const std::byte*>(full_w.w);
    auto* dst = static_cast<std::byte*>(cut.raw());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t u = 0; u < g.kernel_h; ++u) {
        std::memcpy(dst + ((r * g.kernel_h + u) * g.kernel_w) * es,
                    src + ((r * full.kernel_h + u0 + u) * full.kernel_w + v0) * es,
                    static_cast<size_t>(g.kernel_w) * es);
      }
    }
    w.w = cut.raw();
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
  const bool quads = pixel_major && quads_apply(g, w, out.groups_.front().isa());
  if (quads) {
    // Channel quads: k'' = ((c / 4, u, v), c % 4). Row quads: k'' = (c, u, v') with v' < KW
    // rounded up to a multiple of 4, the weights of v' >= KW are 0 (quad_layout above).
    const QuadLayout l = quad_layout(g);
    const int64_t rows =
        (ocg + detail::kMrConvQuadsVnni - 1) / detail::kMrConvQuadsVnni * detail::kMrConvQuadsVnni;
    const int64_t kp = l.kq * 4;
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      Tensor t({rows * kp}, DType::kInt8);
      int8_t* d = t.data<int8_t>();
      std::fill(d, d + rows * kp, int8_t{0});
      Tensor corr({ocg}, DType::kInt32);
      for (int64_t o = 0; o < ocg; ++o) {
        uint32_t sum = 0;
        for (int64_t c = 0; c < cg; ++c) {
          for (int64_t u = 0; u < g.kernel_h; ++u) {
            for (int64_t v = 0; v < g.kernel_w; ++v) {
              const int64_t i =
                  ((gi * ocg + o) * cg + c) * g.kernel_h * g.kernel_w + u * g.kernel_w + v;
              const int64_t kk = l.channels
                                     ? ((c / 4 * g.kernel_h + u) * g.kernel_w + v) * 4 + c % 4
                                     : (c * g.kernel_h + u) * l.kw4 + v;
              const auto code = static_cast<int8_t>(quant::load_code(w.w, w.w_dtype, i));
              d[o * kp + kk] = code;
              sum += static_cast<uint32_t>(static_cast<int32_t>(code));
            }
          }
        }
        // Signed codes go in as code + 128 (the unsigned operand of vpdpbusd).
        corr.data<int32_t>()[o] =
            w.a_dtype == DType::kInt8 ? static_cast<int32_t>(sum * 128u) : int32_t{0};
      }
      out.weight_quads_.push_back(std::move(t));
      out.quad_corrections_.push_back(std::move(corr));
    }
  }
  if (pixel_major) {
    // Channel pairs: k' = ((c / 2, u, v), c % 2). Tap pairs: k' = u * KW + v (c = 0), the weight
    // of k' = KH * KW (when odd) is 0. Row pairs: k' = (c, u, v') with v' < KW rounded up to
    // even, the weights of v' = KW are 0 (pair_mode above, PixelJob).
    const PairMode mode = pair_mode(g);
    const int64_t kwp = mode == PairMode::kRows ? (g.kernel_w + 1) / 2 * 2 : g.kernel_w;
    const int64_t rows = (ocg + 7) / 8 * 8, kp = pair_k(g, mode);
    for (int64_t gi = 0; gi < (quads ? 0 : g.groups); ++gi) {
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
      if (w.may_pool) {
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
        out.weight_lanes_.push_back(std::move(lanes));
      }
      out.weight_rows_.push_back(std::move(t));
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
      if (byte_quads_isa(w, out.groups_.front().isa())) {
        // The same taps in quads of int8 weights, and the accumulator's start: minus the
        // 128 * sum of the weights that signed codes as code + 128 add.
        const int64_t quads = (taps + 3) / 4;
        Tensor tq({g.out_channels * quads}, DType::kInt32);
        Tensor init({g.out_channels}, DType::kInt32);
        for (int64_t o = 0; o < g.out_channels; ++o) {
          uint32_t sum = 0;
          for (int64_t q = 0; q < quads; ++q) {
            uint32_t word = 0;
            for (int64_t i = 0; i < 4 && 4 * q + i < taps; ++i) {
              const auto code =
                  static_cast<int8_t>(quant::load_code(w.w, w.w_dtype, o * taps + 4 * q + i));
              word |= static_cast<uint32_t>(static_cast<uint8_t>(code)) << (8 * i);
              sum += static_cast<uint32_t>(static_cast<int32_t>(code));
            }
            tq.data<int32_t>()[o * quads + q] = static_cast<int32_t>(word);
          }
          init.data<int32_t>()[o] =
              w.a_dtype == DType::kInt8 ? static_cast<int32_t>(0u - sum * 128u) : int32_t{0};
        }
        out.depthwise_quads_ = std::move(tq);
        out.depthwise_quad_init_ = std::move(init);
      }
      const PackedWeights& g0 = out.groups_.front();
      const bool uniform = std::all_of(out.groups_.begin(), out.groups_.end(), [&](const auto& gw) {
        return gw.acc_shift() == g0.acc_shift() && gw.acc_frac() == g0.acc_frac();
      });
      if (g.out_channels == g.groups && uniform) {
        out.channel_biases_.reserve(static_cast<size_t>(g.groups));
        for (const PackedWeights& gw : out.groups_) {
          out.channel_biases_.push_back(gw.bias_aligned()[0]);
        }
      }
    }
    if (w.winograd != Conv2dWeights::Winograd::kOff) {
      out.winograd_ = pack_winograd(g, w, out.groups_.front());
      // Winograd takes every batch without a pool: neither the direct path nor the im2col GEMM
      // ever runs (its epilogue reads the bias and shifts, kept).
      if (!w.may_pool && out.winograd_ != nullptr && out.winograd_->min_batch <= 1) {
        out.weight_rows_.clear();
        out.groups_.front().release_panels();
      }
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
// The kept runs (x < OW) of every 16-lane block of an image's positions p = y * wq + x, p <
// positions (the stride-1 extended panels of QuadJob, the depthwise path's blocks): block b's
// runs are runs[first[b] .. first[b + 1]), each {first lane, lanes, output pixel}. Position cur =
// y * wq + x walks them block by block without divisions.
void make_kept_runs(int64_t ow, int64_t wq, int64_t positions, int64_t blocks, int64_t (*runs)[3],
                    int64_t* first) {
  int64_t cur = 0, py = 0, px = 0, nruns = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    first[b] = nruns;
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
  }
  first[blocks] = nruns;
}

// The pixel-major path (conv2d.h). Each k-pair multiplies two taps that sit at a fixed distance
// D in the padded input (channel_pairs): with an even channel count per group, the taps (u, v)
// of channels 2c' and 2c' + 1 (D = one plane, k not padded); otherwise two neighbours (v', v' + 1)
// of one kernel row of one channel (D = dw; the reduction index is k' = (c, u, v') with v' < KWp,
// KW rounded up to even, the weights of v' = KW are 0). Per work item (a block of images, a
// group, a range of 16-lane panels or of channel blocks), for each image of the block:
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
// positions with x >= OW are computed and dropped. Other strides, and stride 1 where that
// drops many lanes (maps of 1x1 .. 7x7: a 1x1 map keeps 1 lane of 16), gather the pairs of 16
// output pixels into a panel first; those lanes run over the pixels of all the block's images
// (image-major), so a panel straddles images and tiny maps fill whole panels.
// Batch blocking (unpooled): the block's images are as many as keep their x2 planes within
// kImageBlockBytes; each block of weight rows (kWeightPassBytes of them, or one gathered panel
// group) passes all the block's panels before the next is read, so ResNet-18's 2.4 MB layer4
// weights are streamed once per block of images, not once per image and panel. Where the images
// are too few for the threads and the map is tiny, the threads split the channel blocks instead.
// Fused 2x2 max pool (ConvPool::kMax2x2, run_pooled): a work item's pooled rows go in bands;
// per band the sums of its conv rows (all channels, the same panels) land in a plane S[o][p] of
// the band's positions, then each pooled output is the max of its four sums
// (detail::max_pool2x2_s32_avx2) and the epilogue stores 16 pooled outputs per channel. Where
// that computes many dropped positions for many channels (LeNet's second conv: 144 lanes for
// 100 outputs, 16 channels), the channels are the lanes instead (run_pooled_lanes): per pooled
// output, the four windows' pairs are broadcast straight from x2 against 16 channels' weights
// (PackedConv2d::weight_lanes) and the max of the four sums goes to the epilogue.
// Batch blocking of the unpooled pixel-major path: a work item's images keep their pair planes
// within about kImageBlockBytes; kWeightPassBytes of weight rows pass all of a work item's
// extended panels at a time; the gathered panels go in groups of about kPanelBytes (at most
// kMaxPanelGroup panels).
constexpr int64_t kImageBlockBytes = 256 * 1024;
constexpr int64_t kWeightPassBytes = 96 * 1024;
constexpr int64_t kPanelBytes = 192 * 1024;
constexpr int64_t kMaxPanelGroup = 32;

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
  // Batch blocking (unpooled): a work item covers `nb` images (the last block fewer) of
  // `batch`; x2n int32 per image's pair planes, one after the other. `gathered`: the panels'
  // 16 lanes are consecutive output pixels of the block's images (image-major), gathered
  // (every stride other than 1, and stride 1 where the extended panels would waste many lanes);
  // else each image's extended panels. by_channels: a work item's chunk is a range of channel
  // blocks (else of panels / pooled rows).
  int64_t batch, nb, x2n;
  bool gathered, by_channels;
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
    const size_t x2_bytes = static_cast<size_t>(nb * x2n) * 4 / 64 * 64 + 64;
    const size_t goff_bytes = static_cast<size_t>(kp) * 8 / 64 * 64 + 64;
    const size_t sums_bytes = pool && !lanes ? static_cast<size_t>(ocg * ls) * 4 : 0;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, xp_bytes + x2_bytes + goff_bytes + sums_bytes));
    return {reinterpret_cast<int16_t*>(base), reinterpret_cast<int32_t*>(base + xp_bytes),
            reinterpret_cast<int64_t*>(base + xp_bytes + x2_bytes),
            reinterpret_cast<int32_t*>(base + xp_bytes + x2_bytes + goff_bytes)};
  }

  // This image's pair planes x2 from its padded planes xp (whose tail make_pairs zeroes).
  void make_pairs(int16_t* xp, int32_t* x2) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t n = cg * hp * wp + slack;
    auto pair = [](int16_t lo, int16_t hi) {
      return static_cast<int32_t>(static_cast<uint16_t>(lo) |
                                  (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
    };
    if (mode == PairMode::kChannels) {
      const int64_t plane = hp * wp, m = cg / 2 * plane;
      for (int64_t c2 = 0; c2 < cg / 2; ++c2) {
        const int16_t* a = xp + 2 * c2 * plane;
        int32_t* d = x2 + c2 * plane;
        for (int64_t i = 0; i < plane; ++i) d[i] = pair(a[i], a[i + plane]);
      }
      std::fill(x2 + m, x2 + m + slack, 0);
    } else if (mode == PairMode::kTaps) {
      // Two pair planes of the one channel: x2[i] = (xp[i], xp[i + dw]) for the pairs within a
      // kernel row, x2[n + i] = (xp[i], xp[i + cross()]) for the pairs across two rows.
      const int64_t dc = cross();
      std::fill(xp + n, xp + n + std::max(g.dilation_w, dc), int16_t{0});
      for (int64_t i = 0; i < n; ++i) x2[i] = pair(xp[i], xp[i + g.dilation_w]);
      int32_t* x2c = x2 + n;
      for (int64_t i = 0; i < n; ++i) x2c[i] = pair(xp[i], xp[i + dc]);
    } else {
      std::fill(xp + n, xp + n + g.dilation_w, int16_t{0});
      for (int64_t i = 0; i < n; ++i) x2[i] = pair(xp[i], xp[i + g.dilation_w]);
    }
  }

  // The offsets goff(q) of the k-pairs from a window origin in an image's x2 (make_pairs).
  void make_offsets(int64_t* goff) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t n = cg * hp * wp + slack;
    int64_t* o = goff;
    if (mode == PairMode::kChannels) {
      // Pair q = (c', u, v) starts at x2 offset goff(q) from the window origin.
      for (int64_t c2 = 0; c2 < cg / 2; ++c2) {
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          for (int64_t v = 0; v < g.kernel_w; ++v) {
            *o++ = (c2 * hp + u * g.dilation_h) * wp + v * g.dilation_w;
          }
        }
      }
    } else if (mode == PairMode::kTaps) {
      const int64_t taps = g.kernel_h * g.kernel_w;
      for (int64_t q = 0, u = 0, v = 0; q < kp / 2; ++q) {  // tap t = 2q = u * KW + v
        const int64_t base = u * g.dilation_h * wp + v * g.dilation_w;
        // The last tap of a row pairs with the next row's first; the odd last tap pairs with a
        // zero weight (any plane).
        goff[q] = (v == g.kernel_w - 1 && 2 * q + 1 < taps) ? n + base : base;
        for (v += 2; v >= g.kernel_w; v -= g.kernel_w) ++u;  // KW = 1 wraps twice
      }
    } else {
      // Pair q = (c, u, v'/2) starts at xp offset koff(c, u, v') from the window origin.
      for (int64_t c = 0; c < cg; ++c) {
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          for (int64_t v = 0; v < kwp; v += 2) {
            *o++ = (c * hp + u * g.dilation_h) * wp + v * g.dilation_w;
          }
        }
      }
    }
  }

  // The output pixels of one image block: nimg images from img0.
  int64_t block_units(int64_t nimg) const {
    if (pool) return units;
    return gathered ? (nimg * pixels + 15) / 16 : panels;
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t chunk = item % chunks, ig = item / chunks;
    const int64_t img0 = ig / g.groups * nb, gi = ig % g.groups;
    const int64_t nimg = std::min(nb, batch - img0);
    const Buffers buf = buffers();
    for (int64_t i = 0; i < nimg; ++i) {
      const std::byte* xin = x + ((img0 + i) * g.in_channels + gi * cg) * g.in_h * g.in_w * a_es;
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
      make_pairs(buf.xp, buf.x2 + i * x2n);
    }
    make_offsets(buf.goff);
    const int16_t* rows = w->weight_rows()[gi].data<int16_t>();
    const Epilogue e(w->groups()[gi], q, gi * ocg);
    std::byte* out = y + (img0 * g.out_channels + gi * ocg) * out_pixels * y_es;
    const int64_t nu = block_units(nimg);
    int64_t q0 = 0, q1 = nu, b0 = 0, b1 = mblocks;
    if (by_channels) {
      b0 = mblocks * chunk / chunks;
      b1 = mblocks * (chunk + 1) / chunks;
    } else {
      q0 = nu * chunk / chunks;
      q1 = nu * (chunk + 1) / chunks;
    }
    if (pool && lanes) {
      run_pooled_lanes(buf, w->weight_lanes()[gi].data<int16_t>(), e, out, q0, q1);
    } else if (pool) {
      run_pooled(buf, rows, e, out, q0, q1);
    } else if (gathered) {
      run_gathered(buf, rows, e, out, nimg, q0, q1, b0, b1);
    } else {
      run_extended(buf, rows, e, out, nimg, q0, q1, b0, b1);
    }
  }

  // The weight rows of this many channel blocks stay in cache while a work item's panels (of
  // all its images) pass them (the weights are read once per work item, not once per panel).
  int64_t blocks_per_pass() const {
    return std::max<int64_t>(1, kWeightPassBytes / (kMr * kp * 2));
  }

  // Extended panels [q0, q1) of each of the nimg images, channel blocks [b0, b1).
  void run_extended(const Buffers& buf, const int16_t* rows, const Epilogue& e, std::byte* out,
                    int64_t nimg, int64_t q0, int64_t q1, int64_t b0, int64_t b1) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow = g.out_w(), positions = (g.out_h() - 1) * wp + ow;
    const int64_t image_out = g.out_channels * out_pixels;  // output elements per image
    const int64_t pass = blocks_per_pass();
    alignas(64) int32_t s[kMr * 16 + 16];  // run_t32 reads 16 lanes from a run's start
    for (int64_t r0 = b0; r0 < b1; r0 += pass) {
      const int64_t r1 = std::min(b1, r0 + pass);
      for (int64_t i = 0; i < nimg; ++i) {
        const int32_t* x2 = buf.x2 + i * x2n;
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t p0 = q * 16;
          // Runs of kept positions: {first lane, lanes, output element of the block's first
          // image}.
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
            runs[nruns][2] = i * image_out + py * ow + px;
            ++nruns;
            j += len;
          }
          for (int64_t b = r0; b < r1; ++b) {
            const int64_t o0 = ocg * b / mblocks;
            const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
            detail::conv_pairs_s32_avx2(rows + o0 * kp, kp, x2 + p0, buf.goff, kp / 2, cols, s);
            e.run_t32_runs(s, runs, nruns, cols, o0, out);
          }
        }
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

  // The pairs of the n <= 16 lanes from l0 (the gathered paths), zero past n: lane l is output
  // pixel l % pixels of the block's image l / pixels (one image: l is the output pixel).
  void gather_panel(const Buffers& buf, int64_t l0, int n, int32_t* panel) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t ow = g.out_w();
    int64_t off[16];
    for (int j = 0; j < n; ++j) {
      const int64_t l = l0 + j, i = l / pixels, p = l % pixels, py = p / ow, px = p % ow;
      off[j] = i * x2n + py * g.stride_h * wp + px * g.stride_w;
    }
    for (int64_t gq = 0; gq < kp / 2; ++gq) {
      const int32_t* src = buf.x2 + buf.goff[gq];
      int32_t* d = panel + gq * 16;
      for (int j = 0; j < n; ++j) d[j] = src[off[j]];
      for (int j = n; j < 16; ++j) d[j] = 0;
    }
  }

  // Gathered panels [q0, q1) of the block's nimg images (lane l = image l / pixels, pixel
  // l % pixels), channel blocks [b0, b1): the panels go in groups that fit kPanelBytes (when the
  // weight rows are larger than kWeightPassBytes), and each channel block passes a whole group.
  void run_gathered(const Buffers& buf, const int16_t* rows, const Epilogue& e, std::byte* out,
                    int64_t nimg, int64_t q0, int64_t q1, int64_t b0, int64_t b1) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t image_out = g.out_channels * out_pixels;  // output elements per image
    const int64_t lanes_end = nimg * pixels;
    const int64_t ps = kp / 2 * 16;  // int32 per panel
    // Weight rows that stay in cache anyway (a 7x7 stem's 21 KB) pass one panel at a time, which
    // stays in L1; larger ones pass a group of panels per read.
    const int64_t group = ocg * kp * 2 <= kWeightPassBytes
                              ? 1
                              : std::clamp<int64_t>(kPanelBytes / (ps * 4), 1, kMaxPanelGroup);
    alignas(64) int32_t s[kMr * 16 + 16];  // run_t32 reads 16 lanes from a run's start
    auto* panels_buf = static_cast<int32_t*>(scratch(
        ScratchSlot::kGemmB, static_cast<size_t>(group * ps) * 4 + static_cast<size_t>(kp) * 8));
    auto* poff = reinterpret_cast<int64_t*>(panels_buf + group * ps);
    for (int64_t q = 0; q < kp / 2; ++q) poff[q] = q * 16;
    int64_t runs[kMaxPanelGroup][16][3];
    int nruns[kMaxPanelGroup];
    for (int64_t g0 = q0; g0 < q1; g0 += group) {
      const int64_t g1 = std::min(q1, g0 + group);
      for (int64_t q = g0; q < g1; ++q) {
        const int64_t l0 = q * 16;
        const int n = static_cast<int>(std::min<int64_t>(16, lanes_end - l0));
        gather_panel(buf, l0, n, panels_buf + (q - g0) * ps);
        // Runs of lanes in one image: {first lane, lanes, output element}.
        auto& r = runs[q - g0];
        int nr = 0;
        for (int j = 0; j < n;) {
          const int64_t l = l0 + j, i = l / pixels, p = l % pixels;
          const int len = static_cast<int>(std::min<int64_t>(n - j, pixels - p));
          r[nr][0] = j;
          r[nr][1] = len;
          r[nr][2] = i * image_out + p;
          ++nr;
          j += len;
        }
        nruns[q - g0] = nr;
      }
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t o0 = ocg * b / mblocks;
        const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
        for (int64_t q = g0; q < g1; ++q) {
          detail::conv_pairs_s32_avx2(rows + o0 * kp, kp, panels_buf + (q - g0) * ps, poff, kp / 2,
                                      cols, s);
          e.run_t32_runs(s, runs[q - g0], nruns[q - g0], cols, o0, out);
        }
      }
    }
  }
};

// d[j] = (s0[j] | s1[j] << 8 | s2[j] << 16 | s3[j] << 24) ^ pad for j < n: four rows of 8-bit
// codes interleaved into quads (byte i from row i). 16 quads at a time by byte then word
// unpacks, the last piece overlapping the one before (it rewrites the same quads) instead of a
// scalar tail; rows under 16 codes go 8 at a time the same way, and under 8 one by one. The
// stride-1 channel quads of the 1x1 convs spent a fifth of the quads path here, byte by byte.
inline void interleave_quads(const uint8_t* s0, const uint8_t* s1, const uint8_t* s2,
                             const uint8_t* s3, int64_t n, uint32_t pad, uint32_t* d) {
  int64_t j = 0;
#ifdef __AVX2__
  const __m128i p = _mm_set1_epi32(static_cast<int32_t>(pad));
  auto store = [&](__m128i q, int64_t at) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + at), _mm_xor_si128(q, p));
  };
  auto piece16 = [&](int64_t at) {
    const auto load = [at](const uint8_t* s) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + at));
    };
    const __m128i a0 = load(s0), a1 = load(s1), a2 = load(s2), a3 = load(s3);
    const __m128i lo01 = _mm_unpacklo_epi8(a0, a1), hi01 = _mm_unpackhi_epi8(a0, a1);
    const __m128i lo23 = _mm_unpacklo_epi8(a2, a3), hi23 = _mm_unpackhi_epi8(a2, a3);
    store(_mm_unpacklo_epi16(lo01, lo23), at);
    store(_mm_unpackhi_epi16(lo01, lo23), at + 4);
    store(_mm_unpacklo_epi16(hi01, hi23), at + 8);
    store(_mm_unpackhi_epi16(hi01, hi23), at + 12);
  };
  auto piece8 = [&](int64_t at) {
    const auto load = [at](const uint8_t* s) {
      return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + at));
    };
    const __m128i a01 = _mm_unpacklo_epi8(load(s0), load(s1));
    const __m128i a23 = _mm_unpacklo_epi8(load(s2), load(s3));
    store(_mm_unpacklo_epi16(a01, a23), at);
    store(_mm_unpackhi_epi16(a01, a23), at + 4);
  };
  if (n >= 16) {
    for (; j + 16 <= n; j += 16) piece16(j);
    if (j < n) piece16(n - 16);
    return;
  }
  if (n >= 8) {
    piece8(0);
    piece8(n - 8);
    return;
  }
#endif
  for (; j < n; ++j) {
    d[j] = (static_cast<uint32_t>(s0[j]) | static_cast<uint32_t>(s1[j]) << 8 |
            static_cast<uint32_t>(s2[j]) << 16 | static_cast<uint32_t>(s3[j]) << 24) ^
           pad;
  }
}

// The quads path (PackedConv2d::weight_quads, quad_layout above): int8 weights and 8-bit codes
// on AVX-512 VNNI, strides other than 1x1 and the unpadded 1x1 convs (quads_apply). Per work
// item (a block of images, a group, a range of 32-lane tiles or of channel blocks), for each
// image of the block:
//   xb[c][i][j] = X[c][i - pt][j - pl] as an unsigned byte (int8 codes + 128, i.e. code ^ 0x80;
//                 uint8 codes as they are), the padding byte (0 ^ 0x80 or 0) around it, with
//                 rows up to hq * sh and columns up to wq * sw + 3 * dw (the row quads' reach);
//   x4 = the phase planes of quads (4 bytes per uint32, byte i = k-value i of the quad) of xb,
//        then a zero slack: a 32-lane tile never bounds-checks. Channel quads skip xb: they
//        interleave four channels' codes straight into x4 (channel_quads).
// Per block of <= 12 channels and tile of 32 positions p = y * wq + x (the last tile of an image
// 16 when that covers it), detail::conv_quads_s32_vnni multiplies the weight rows with the quads
// of the 32 positions (vpdpbusd: 4 products per lane, exact modulo 2^32; the true sum fits int32
// by the caller's AccType) and subtracts the +128's correction; the epilogue stores the kept runs
// (x < OW) of each 16-lane half (Epilogue::run_t32_runs), dropping the x >= OW positions. No
// gather: every quad of a tile is one contiguous 64-byte load per half.
// Batch blocking as PixelJob's: a work item's images keep their x4 planes within
// kImageBlockBytes, and kWeightPassBytes of weight rows pass all its tiles at a time.
struct QuadJob {
  static constexpr int kMr = detail::kMrConvQuadsVnni;
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;
  QuadLayout l;
  DType a_dtype;
  size_t a_es, y_es;
  int64_t cg, ocg, mblocks, pixels, hpx, wpx, xbn, x4n, tiles, blocks16, nruns_max;
  int64_t batch, nb, chunks;
  bool by_channels;

  // Scratch of one work item.
  struct Buffers {
    uint8_t* xb;
    uint32_t* x4;
    int64_t* goff;
    int64_t (*runs)[3];
    int64_t* first;  // runs of 16-lane block b: runs[first[b] .. first[b + 1])
  };
  Buffers buffers() const {
    const size_t xb_bytes = static_cast<size_t>(xbn) / 64 * 64 + 64;
    const size_t x4_bytes = static_cast<size_t>(nb * x4n) * 4 / 64 * 64 + 64;
    const size_t goff_bytes = static_cast<size_t>(l.kq) * 8 / 64 * 64 + 64;
    const size_t runs_bytes = static_cast<size_t>(nruns_max) * 24 / 64 * 64 + 64;
    const size_t first_bytes = static_cast<size_t>(blocks16 + 1) * 8;
    auto* base = static_cast<std::byte*>(scratch(
        ScratchSlot::kConvColumns, xb_bytes + x4_bytes + goff_bytes + runs_bytes + first_bytes));
    Buffers b;
    b.xb = reinterpret_cast<uint8_t*>(base);
    b.x4 = reinterpret_cast<uint32_t*>(base + xb_bytes);
    b.goff = reinterpret_cast<int64_t*>(base + xb_bytes + x4_bytes);
    b.runs = reinterpret_cast<int64_t(*)[3]>(base + xb_bytes + x4_bytes + goff_bytes);
    b.first = reinterpret_cast<int64_t*>(base + xb_bytes + x4_bytes + goff_bytes + runs_bytes);
    return b;
  }

  // xb of one image (the group's channels at x).
  template <typename T>
  void fill_bytes(const T* src, uint8_t* xb) const {
    static_assert(sizeof(T) == 1);
    const Conv2dGeometry& g = w->geometry();
    constexpr uint8_t flip = std::is_signed_v<T> ? 0x80 : 0;
    std::memset(xb, flip, static_cast<size_t>(xbn));
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t i = 0; i < g.in_h; ++i) {
        const T* s = src + (c * g.in_h + i) * g.in_w;
        uint8_t* d = xb + (c * hpx + i + g.pad_top) * wpx + g.pad_left;
        for (int64_t j = 0; j < g.in_w; ++j) d[j] = static_cast<uint8_t>(s[j]) ^ flip;
      }
    }
  }

  // One row of a phase plane of row quads: d[j] = bytes j * sw + k * dw of the row r, k < 4.
  // Stride 2 reads 16-bit words (the even byte and its neighbour), which GCC vectorises; other
  // strides go byte by byte.
  static void quad_row_taps(const uint8_t* r, int64_t sw, int64_t dw, int64_t n, uint32_t* d) {
    if (dw == 1 && sw == 2) {
      for (int64_t j = 0; j < n; ++j) {
        uint16_t lo, hi;
        std::memcpy(&lo, r + 2 * j, 2);
        std::memcpy(&hi, r + 2 * j + 2, 2);
        d[j] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
      }
      return;
    }
    if (dw == 1) {
      for (int64_t j = 0; j < n; ++j) std::memcpy(d + j, r + j * sw, 4);
      return;
    }
    for (int64_t j = 0; j < n; ++j) {
      const uint8_t* b = r + j * sw;
      d[j] = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[dw]) << 8 |
             static_cast<uint32_t>(b[2 * dw]) << 16 | static_cast<uint32_t>(b[3 * dw]) << 24;
    }
  }

  // Channel quads straight from the codes (no xb; only the rows and columns the phases read):
  // quad (c', a, b)[i][j] = the codes of channels 4c' .. 4c' + 3 at row i * sh + a - pt, column
  // j * sw + b - pl as bytes (^ flip), the padding quad outside the image.
  template <typename T>
  void channel_quads(const T* x, uint32_t* x4) const {
    const Conv2dGeometry& g = w->geometry();
    constexpr uint32_t pad = std::is_signed_v<T> ? 0x80808080u : 0u;
    const int64_t sh = g.stride_h, sw = g.stride_w, h = g.in_h, wd = g.in_w;
    for (int64_t src = 0; src < l.sources; ++src) {
      for (int64_t a = 0; a < sh; ++a) {
        for (int64_t b = 0; b < sw; ++b) {
          const int ph = l.phase[a * sw + b];
          if (ph < 0) continue;
          if (sh == 1 && sw == 1 && g.pad_top == 0 && g.pad_left == 0 && l.hq == h && l.wq == wd) {
            // The unpadded stride-1 plane is its rows back to back in x and in x4: one row.
            const auto* s0 = reinterpret_cast<const uint8_t*>(x + 4 * src * h * wd);
            interleave_quads(s0, s0 + h * wd, s0 + 2 * h * wd, s0 + 3 * h * wd, h * wd, pad,
                             x4 + (src * l.nph + ph) * l.hq * l.wq);
            continue;
          }
          // Columns j * sw + b - pl in [0, W): j in [jlo, jhi); j < jw also reads column + 1.
          const int64_t jlo = std::min(l.wq, (g.pad_left - b + sw - 1) / sw);
          const int64_t jhi = std::max(jlo, std::min(l.wq, (wd + g.pad_left - b + sw - 1) / sw));
          const int64_t jw = std::max(jlo, std::min(jhi, (wd - 1 + g.pad_left - b + sw - 1) / sw));
          for (int64_t i = 0; i < l.hq; ++i) {
            uint32_t* d = x4 + ((src * l.nph + ph) * l.hq + i) * l.wq;
            const int64_t r = i * sh + a - g.pad_top;
            if (r < 0 || r >= h) {
              std::fill(d, d + l.wq, pad);
              continue;
            }
            std::fill(d, d + jlo, pad);
            std::fill(d + jhi, d + l.wq, pad);
            const auto* s0 = reinterpret_cast<const uint8_t*>(x + (4 * src * h + r) * wd);
            const uint8_t* s1 = s0 + h * wd;
            const uint8_t* s2 = s1 + h * wd;
            const uint8_t* s3 = s2 + h * wd;
            int64_t j = jlo;
            if (sw == 2) {
              // 16-bit words (the code and its right neighbour, inside the row), vectorised.
              for (; j < jw; ++j) {
                const int64_t col = 2 * j + b - g.pad_left;
                uint16_t w0, w1, w2, w3;
                std::memcpy(&w0, s0 + col, 2);
                std::memcpy(&w1, s1 + col, 2);
                std::memcpy(&w2, s2 + col, 2);
                std::memcpy(&w3, s3 + col, 2);
                d[j] =
                    ((static_cast<uint32_t>(w0) & 0xff) | (static_cast<uint32_t>(w1) & 0xff) << 8 |
                     (static_cast<uint32_t>(w2) & 0xff) << 16 | static_cast<uint32_t>(w3) << 24) ^
                    pad;
              }
            }
            if (sw == 1) {
              const int64_t col = j + b - g.pad_left;
              interleave_quads(s0 + col, s1 + col, s2 + col, s3 + col, jhi - j, pad, d + j);
              continue;
            }
            for (; j < jhi; ++j) {
              const int64_t col = j * sw + b - g.pad_left;
              d[j] = (static_cast<uint32_t>(s0[col]) | static_cast<uint32_t>(s1[col]) << 8 |
                      static_cast<uint32_t>(s2[col]) << 16 | static_cast<uint32_t>(s3[col]) << 24) ^
                     pad;
            }
          }
        }
      }
    }
    const int64_t used = l.sources * l.nph * l.hq * l.wq;
    std::fill(x4 + used, x4 + x4n, 0u);
  }

  // The row quads' phase planes of one image from its xb, and the zero slack after them.
  void make_quads(const uint8_t* xb, uint32_t* x4) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t sh = g.stride_h, sw = g.stride_w;
    for (int64_t src = 0; src < l.sources; ++src) {
      for (int64_t a = 0; a < sh; ++a) {
        for (int64_t b = 0; b < sw; ++b) {
          const int ph = l.phase[a * sw + b];
          if (ph < 0) continue;
          for (int64_t i = 0; i < l.hq; ++i) {
            uint32_t* d = x4 + ((src * l.nph + ph) * l.hq + i) * l.wq;
            quad_row_taps(xb + (src * hpx + i * sh + a) * wpx + b, sw, g.dilation_w, l.wq, d);
          }
        }
      }
    }
    const int64_t used = l.sources * l.nph * l.hq * l.wq;
    std::fill(x4 + used, x4 + x4n, 0u);
  }

  // The offsets of the quads from a position in an image's x4.
  void make_offsets(int64_t* goff) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t vstep = l.channels ? 1 : 4;
    int64_t* o = goff;
    for (int64_t src = 0; src < l.sources; ++src) {
      for (int64_t u = 0; u < g.kernel_h; ++u) {
        for (int64_t v = 0; v < g.kernel_w; v += vstep) {
          const int64_t du = u * g.dilation_h, dv = v * g.dilation_w;
          const int ph = l.phase[du % g.stride_h * g.stride_w + dv % g.stride_w];
          *o++ = ((src * l.nph + ph) * l.hq + du / g.stride_h) * l.wq + dv / g.stride_w;
        }
      }
    }
  }

  void make_runs(int64_t (*runs)[3], int64_t* first) const {
    make_kept_runs(w->geometry().out_w(), l.wq, l.positions, blocks16, runs, first);
  }

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t chunk = item % chunks, ig = item / chunks;
    const int64_t img0 = ig / g.groups * nb, gi = ig % g.groups;
    const int64_t nimg = std::min(nb, batch - img0);
    const Buffers buf = buffers();
    for (int64_t i = 0; i < nimg; ++i) {
      const std::byte* xin = x + ((img0 + i) * g.in_channels + gi * cg) * g.in_h * g.in_w * a_es;
      if (l.channels && a_dtype == DType::kInt8) {
        channel_quads(reinterpret_cast<const int8_t*>(xin), buf.x4 + i * x4n);
        continue;
      }
      if (l.channels) {
        channel_quads(reinterpret_cast<const uint8_t*>(xin), buf.x4 + i * x4n);
        continue;
      }
      if (a_dtype == DType::kInt8) {
        fill_bytes(reinterpret_cast<const int8_t*>(xin), buf.xb);
      } else {
        fill_bytes(reinterpret_cast<const uint8_t*>(xin), buf.xb);
      }
      make_quads(buf.xb, buf.x4 + i * x4n);
    }
    make_offsets(buf.goff);
    make_runs(buf.runs, buf.first);
    const int8_t* rows = w->weight_quads()[gi].data<int8_t>();
    const int32_t* corr = w->quad_corrections()[gi].data<int32_t>();
    const Epilogue e(w->groups()[gi], q, gi * ocg);
    const int64_t image_out = g.out_channels * pixels;  // output elements per image
    std::byte* out = y + (img0 * g.out_channels + gi * ocg) * pixels * y_es;
    int64_t t0 = 0, t1 = tiles, b0 = 0, b1 = mblocks;
    if (by_channels) {
      b0 = mblocks * chunk / chunks;
      b1 = mblocks * (chunk + 1) / chunks;
    } else {
      t0 = tiles * chunk / chunks;
      t1 = tiles * (chunk + 1) / chunks;
    }
    const int64_t kp = l.kq * 4;
    // The weight rows of this many channel blocks pass all the item's tiles at a time.
    const int64_t pass = std::max<int64_t>(1, kWeightPassBytes / (kMr * kp));
    alignas(64) int32_t s[2 * kMr * 16 + 16];  // run_t32 reads 16 lanes from a run's start
    for (int64_t r0 = b0; r0 < b1; r0 += pass) {
      const int64_t r1 = std::min(b1, r0 + pass);
      for (int64_t i = 0; i < nimg; ++i) {
        const uint32_t* x4 = buf.x4 + i * x4n;
        std::byte* oi = out + i * image_out * static_cast<int64_t>(y_es);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t p0 = t * 32;
          const int halves = p0 + 16 < l.positions ? 2 : 1;
          for (int64_t b = r0; b < r1; ++b) {
            const int64_t o0 = ocg * b / mblocks;
            const int cols = static_cast<int>(ocg * (b + 1) / mblocks - o0);
            detail::conv_quads_s32_vnni(rows + o0 * kp, kp, x4 + p0, buf.goff, l.kq, cols, halves,
                                        corr + o0, s);
            for (int h = 0; h < halves; ++h) {
              const int64_t blk = 2 * t + h;
              e.run_t32_runs(s + h * kMr * 16, buf.runs + buf.first[blk],
                             static_cast<int>(buf.first[blk + 1] - buf.first[blk]), cols, o0, oi);
            }
          }
        }
      }
    }
  }
};

bool run_quads(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p, void* y,
               ConvPool pool) {
  if (w.weight_quads().empty() || p.acc != AccType::kInt32 || pool != ConvPool::kNone) {
    return false;
  }
  const Conv2dGeometry& g = w.geometry();
  QuadJob job;
  job.q = p;
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.pixels = g.out_h() * g.out_w();
  job.q.ldc_n = job.pixels;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.l = quad_layout(g);
  job.a_dtype = w.a_dtype();
  job.a_es = dtype_size(job.a_dtype);
  job.y_es = dtype_size(gemm_output_dtype(p));
  job.cg = g.in_channels / g.groups;
  job.ocg = g.out_channels / g.groups;
  job.mblocks = (job.ocg + QuadJob::kMr - 1) / QuadJob::kMr;
  const QuadLayout& l = job.l;
  job.hpx = std::max(g.in_h + g.pad_top + g.pad_bottom, l.hq * g.stride_h);
  job.wpx = std::max(g.in_w + g.pad_left + g.pad_right, l.wq * g.stride_w) + 3 * g.dilation_w;
  job.xbn = l.channels ? 0 : job.cg * job.hpx * job.wpx;  // channel quads use no xb
  job.tiles = (l.positions + 31) / 32;
  job.blocks16 = 2 * job.tiles;
  job.nruns_max = job.blocks16 + g.out_h() + 1;
  int64_t max_off = 0;
  {
    // The largest quad offset (make_offsets' last source, row and column).
    const int64_t du = (g.kernel_h - 1) * g.dilation_h;
    const int64_t dv = (l.channels ? g.kernel_w - 1 : (l.kw4 - 4)) * g.dilation_w;
    max_off = (((l.sources - 1) * l.nph + l.nph - 1) * l.hq + du / g.stride_h) * l.wq +
              dv / g.stride_w + l.wq;
  }
  job.x4n =
      (std::max(l.sources * l.nph * l.hq * l.wq, max_off + job.tiles * 32) + 16 + 15) / 16 * 16;
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  job.batch = batch;
  // Images per work item as PixelJob's (unpooled).
  const int64_t fit = std::max<int64_t>(1, kImageBlockBytes / (job.x4n * 4));
  int64_t nblocks = (batch + fit - 1) / fit;
  const int64_t per_thread = (threads + g.groups - 1) / g.groups;
  if (nblocks < batch) {
    nblocks = std::min(batch, (nblocks + per_thread - 1) / per_thread * per_thread);
  }
  job.nb = (batch + nblocks - 1) / nblocks;
  const int64_t images = (batch + job.nb - 1) / job.nb * g.groups;
  job.chunks = 1;
  job.by_channels = false;
  if (images < threads) {
    const int64_t want = (threads + images - 1) / images;
    // Few tiles (small maps): the threads split the channel blocks instead.
    job.by_channels = job.tiles < 2 * want && job.mblocks >= 2 * want;
    job.chunks = std::min(job.by_channels ? job.mblocks : job.tiles, want);
  }
  const QuadJob* shared = &job;
  parallel_for(0, images * job.chunks, 1, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) shared->run(i);
  });
  return true;
}

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
// The depthwise path's channel-interleaved buffer (run_lanes) holds at most this many bytes.
constexpr int64_t kDepthwiseLanesBytes = 64 * 1024;
// run_lanes stores 16 channels of a pixel at once (ChannelLanes) on maps up to this many pixels.
constexpr int64_t kLanesStorePixels = 16;

// Stores `pixels` consecutive outputs of one channel whose int32 sums are sums[0 .. pixels)
// (readable up to 15 past) with ec, that channel's 16 x 16 tile (Epilogue::column_tile or
// channel_tile): a call per 256 outputs, the ragged rest as one partial column.
void store_channel_plane(const Epilogue& ec, const int32_t* sums, int64_t pixels, size_t y_es,
                         std::byte* out) {
  for (int64_t p0 = 0; p0 < pixels; p0 += 256) {
    const int64_t n = std::min<int64_t>(256, pixels - p0), full = n / 16;
    if (full > 0) ec.run_t32(sums + p0, 16, static_cast<int>(full), 0, 0, out + p0 * y_es);
    if (n % 16 != 0) {
      ec.run_t32(sums + p0 + full * 16, static_cast<int>(n % 16), 1, 0, 0,
                 out + (p0 + full * 16) * y_es);
    }
  }
}

struct DepthwiseJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;
  DType a_dtype;
  size_t a_es, y_es;
  int64_t ocg, hp, wp, hq, wq, planes, positions, blocks, pairs, plane_elems, pixels;
  // quads: the tap quads of 8-bit codes on VNNI (detail::depthwise_u8_vnni, byte planes, passes
  // of 64 positions), else the tap pairs (int16 planes).
  bool quads = false;
  int64_t nquads = 0, passes = 0;
  // Work items: groups (lanes: blocks of 16 channels) x image_blocks, nbi images each (the
  // last block fewer) of `batch`. lanes: run_lanes, on an lh x lw interleaved buffer.
  int64_t batch, nbi, image_blocks, lh, lw;
  bool lanes;
  bool avx512;  // run's tap-pair kernel: detail::depthwise_s32_avx512 (packed for AVX-512BW+)
  // The first input column of phase r < 16 and its plane column (wider strides compute theirs).
  int64_t col0[16], dcol0[16];
  // 2 * pairs or 4 * nquads offsets (past the last tap: the last tap's, under weight 0).
  int64_t off[PackedConv2d::kMaxDepthwiseTaps + 4];
  // Channel multiplier 1, every group's accumulator shift and fraction those of group 0: one
  // Epilogue for all channels (Epilogue::channel_tile), else null (an Epilogue per group).
  const Epilogue* shared = nullptr;

  // Channel c's 16 x 16 tile, channel multiplier 1 (run_lanes).
  Epilogue tile(int64_t c, Epilogue::ColumnLanes* lanes) const {
    if (shared != nullptr) return shared->channel_tile(w->channel_biases()[c], c, lanes);
    return Epilogue(w->groups()[c], q, c).column_tile(0, lanes);
  }

  // The input channel's codes into the phase planes: as int16 (D = int16_t, the tap pairs) or
  // as vpdpbusd's unsigned bytes (D = uint8_t, the tap quads: int8 codes + 128, i.e. code ^
  // 0x80, and the padding 0 ^ 0x80; uint8 codes as they are). The codes land at the same places
  // for every image, so the zeros (padding, the planes' ends, the slack) are written only when
  // `zero` (an item's first image): later images of the item overwrite the codes alone.
  template <typename T, typename D>
  void fill_planes(const T* src, D* dst, bool zero) const {
    constexpr uint8_t flip = std::is_same_v<D, uint8_t> && std::is_signed_v<T> ? 0x80 : 0;
    const Conv2dGeometry& g = w->geometry();
    if (zero) std::fill(dst, dst + plane_elems, static_cast<D>(flip));
    const int64_t sh = g.stride_h, sw = g.stride_w;
    // Padded row ip = i + pt lands in phase ip % sh at row ip / sh, walked without a division
    // per row (per-row divisions cost more than the copies on small maps).
    int64_t ph = g.pad_top % sh, pr = g.pad_top / sh;
    for (int64_t i = 0; i < g.in_h; ++i) {
      const T* row = src + i * g.in_w;
      D* prow = dst + (ph * sw * hq + pr) * wq;
      if (++ph == sh) {
        ph = 0;
        ++pr;
      }
      if (sw == 1) {
        widen_codes(row, prow + g.pad_left, g.in_w, flip);
        continue;
      }
      if (sw == 2) {
        split_pair(row, g.in_w, prow + (col0[0] == 0 ? 0 : hq * wq) + dcol0[col0[0] == 0 ? 0 : 1],
                   prow + (col0[0] == 0 ? hq * wq : 0) + dcol0[col0[0] == 0 ? 1 : 0], flip);
        continue;
      }
      // Phase r holds the input columns j with (j + pl) % sw == r, at (j + pl) / sw: no
      // division per code (an idiv per code cost more than the taps' multiplies).
      for (int64_t r = 0; r < sw; ++r) {
        const int64_t j0 = r < 16 ? col0[r] : ((r - g.pad_left) % sw + sw) % sw;
        D* d = prow + r * hq * wq + (r < 16 ? dcol0[r] : (j0 + g.pad_left) / sw);
        for (int64_t j = j0; j < g.in_w; j += sw) *d++ = plane_code<D>(row[j], flip);
      }
    }
  }

  // run_lanes' buffer: xi[i + pt][j + pl][c] = the code of input channel c < nc at (i, j), for
  // the rows and columns the outputs read (the rest of xi is zero).
  template <typename T>
  void interleave(const T* src, int64_t nc, int16_t* xi) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t i_end = std::min(g.in_h, lh - g.pad_top);
    const int64_t j_end = std::min(g.in_w, lw - g.pad_left);
    for (int64_t c = 0; c < nc; ++c) {
      for (int64_t i = 0; i < i_end; ++i) {
        const T* row = src + (c * g.in_h + i) * g.in_w;
        int16_t* d = xi + ((i + g.pad_top) * lw + g.pad_left) * 16 + c;
        for (int64_t j = 0; j < j_end; ++j) d[j * 16] = static_cast<int16_t>(row[j]);
      }
    }
  }

#ifdef __AVX2__
  // interleave() for 8-bit codes by 16x16 byte transposes: the 16 channel planes are copied
  // (zero for channels >= nc and past the plane) into tmp[c][hwp], hwp = the plane's size
  // rounded up to 16, then each block of 16 pixels is transposed into 16 pixels x 16 channels
  // and widened (sign or zero extension, as the scalar cast) into the pixels' places in xi.
  static constexpr int64_t kMaxTransposedPlane = 4096;
  template <typename T>
  void interleave8(const T* src, int64_t nc, int16_t* xi, uint8_t* tmp) const {
    static_assert(sizeof(T) == 1);
    const Conv2dGeometry& g = w->geometry();
    const int64_t i_end = std::min(g.in_h, lh - g.pad_top);
    const int64_t j_end = std::min(g.in_w, lw - g.pad_left);
    const int64_t hw = g.in_h * g.in_w, hwp = (hw + 15) / 16 * 16;
    for (int64_t c = 0; c < 16; ++c) {
      uint8_t* t = tmp + c * hwp;
      if (c < nc) std::memcpy(t, src + c * hw, static_cast<size_t>(hw));
      std::memset(t + (c < nc ? hw : 0), 0, static_cast<size_t>(c < nc ? hwp - hw : hwp));
    }
    int64_t i = 0, j = 0;  // pixel p0 + k at row i, column j
    for (int64_t p0 = 0; p0 < hw && i < i_end; p0 += 16) {
      __m128i r[16], a[16], b[16];
      for (int c = 0; c < 16; ++c) {
        r[c] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp + c * hwp + p0));
      }
      // a[h * 8 + k]: pixels 8h..8h+7, channels 2k, 2k + 1 (16-bit units by pixel).
      for (int k = 0; k < 8; ++k) {
        a[k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[8 + k] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
      }
      // b[q * 4 + m]: pixels 4q..4q+3, channels 4m..4m+3 (32-bit units).
      for (int h = 0; h < 2; ++h) {
        for (int m = 0; m < 4; ++m) {
          b[h * 8 + m] = _mm_unpacklo_epi16(a[h * 8 + 2 * m], a[h * 8 + 2 * m + 1]);
          b[h * 8 + 4 + m] = _mm_unpackhi_epi16(a[h * 8 + 2 * m], a[h * 8 + 2 * m + 1]);
        }
      }
      // a[q * 4 + d * 2 + n]: pixels 4q+2d, 4q+2d+1, channels 8n..8n+7 (64-bit units).
      for (int q = 0; q < 4; ++q) {
        for (int n = 0; n < 2; ++n) {
          a[q * 4 + n] = _mm_unpacklo_epi32(b[q * 4 + 2 * n], b[q * 4 + 2 * n + 1]);
          a[q * 4 + 2 + n] = _mm_unpackhi_epi32(b[q * 4 + 2 * n], b[q * 4 + 2 * n + 1]);
        }
      }
      // r[p]: pixel p0 + p, channels 0..15.
      for (int q = 0; q < 4; ++q) {
        for (int d = 0; d < 2; ++d) {
          r[4 * q + 2 * d] = _mm_unpacklo_epi64(a[q * 4 + d * 2], a[q * 4 + d * 2 + 1]);
          r[4 * q + 2 * d + 1] = _mm_unpackhi_epi64(a[q * 4 + d * 2], a[q * 4 + d * 2 + 1]);
        }
      }
      for (int k = 0; k < 16 && p0 + k < hw && i < i_end; ++k) {
        if (j < j_end) {
          const __m256i v =
              std::is_signed_v<T> ? _mm256_cvtepi8_epi16(r[k]) : _mm256_cvtepu8_epi16(r[k]);
          _mm256_storeu_si256(
              reinterpret_cast<__m256i*>(xi + ((i + g.pad_top) * lw + j + g.pad_left) * 16), v);
        }
        if (++j == g.in_w) {
          j = 0;
          ++i;
        }
      }
    }
  }
#endif

  // Small maps (OW < 8, channel multiplier 1): 16 channels as the lanes. Per work item (a
  // block of 16 channels, images [img0, img1)), each image's 16 input planes go zero-padded
  // into one channel-interleaved buffer xi[row][column][16] (only the rows and columns the
  // outputs read), so a tap of one output pixel is 16 consecutive codes; the sums (modulo 2^32,
  // as the tap-pair kernel's) land per channel and image in a plane of 16-pixel blocks, and
  // each channel's Epilogue is made once per item.
  void run_lanes(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t c0 = item / image_blocks * 16, img0 = item % image_blocks * nbi;
    const int64_t img1 = std::min(batch, img0 + nbi), nc = std::min<int64_t>(16, g.groups - c0);
    const int64_t taps = g.kernel_h * g.kernel_w, ow = g.out_w();
    const int64_t np = (pixels + 15) / 16 * 16;
    const size_t xi_bytes = static_cast<size_t>(lh * lw * 16) * 2 / 64 * 64 + 64;
    const size_t wt_bytes = static_cast<size_t>(taps * 16) * 4;
    const size_t sums_bytes = static_cast<size_t>((img1 - img0) * 16 * np) * 4;
    // interleave8's planes (8-bit codes, planes up to kMaxTransposedPlane).
    const int64_t plane = g.in_h * g.in_w;
#ifdef __AVX2__
    const bool transpose = a_es == 1 && plane <= kMaxTransposedPlane;
#else
    const bool transpose = false;
#endif
    const size_t tmp_bytes = transpose ? static_cast<size_t>(16 * ((plane + 15) / 16 * 16)) : 0;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, xi_bytes + wt_bytes + sums_bytes + tmp_bytes));
    auto* xi = reinterpret_cast<int16_t*>(base);
    [[maybe_unused]] auto* wt = reinterpret_cast<uint32_t*>(base + xi_bytes);  // no AVX2
    auto* sums = reinterpret_cast<int32_t*>(base + xi_bytes + wt_bytes);
    [[maybe_unused]] auto* tmp =
        reinterpret_cast<uint8_t*>(base + xi_bytes + wt_bytes + sums_bytes);
    const int32_t* wp_all = w->depthwise_pairs().data<int32_t>();
#ifdef __AVX2__
    // The tap pairs' weights interleaved per channel as the codes are below (an odd last tap's
    // partner has weight 0 and reads tap 0's codes), and each tap's offset in xi. The packed
    // pair of channel c (tap 2k in the low half, 2k + 1 in the high half) is the 32-bit lane
    // the codes' unpacks give channel c: channels 0-3 / 8-11 for the low unpack, 4-7 / 12-15 for
    // the high one; so the pairs are loaded as they are, no taps unpacked one by one.
    alignas(32) __m256i wq[PackedConv2d::kMaxDepthwiseTaps + 2];
    int64_t toff[PackedConv2d::kMaxDepthwiseTaps + 2];
    for (int64_t k = 0; k < pairs; ++k) {
      alignas(32) int32_t words[16];
      for (int c = 0; c < 16; ++c) words[c] = c < nc ? wp_all[(c0 + c) * pairs + k] : 0;
      const int64_t t0 = 2 * k, t1 = 2 * k + 1;
      auto half = [&](int c) {
        return _mm_load_si128(reinterpret_cast<const __m128i*>(words + c));
      };
      wq[t0] = _mm256_set_m128i(half(8), half(0));
      wq[t1] = _mm256_set_m128i(half(12), half(4));
      for (int64_t t : {t0, t1}) {
        const int64_t tt = t < taps ? t : 0;
        const int64_t u = tt / g.kernel_w, v = tt % g.kernel_w;
        toff[t] = (u * g.dilation_h * lw + v * g.dilation_w) * 16;
      }
    }
#else
    // wt[t][c] = tap t of channel c0 + c (0 for missing channels), from the packed tap pairs.
    for (int64_t t = 0; t < taps; ++t) {
      for (int64_t c = 0; c < 16; ++c) {
        int32_t v = 0;
        if (c < nc) {
          const auto word = static_cast<uint32_t>(wp_all[(c0 + c) * pairs + t / 2]);
          v = static_cast<int16_t>(static_cast<uint16_t>(t % 2 == 0 ? word : word >> 16));
        }
        wt[t * 16 + c] = static_cast<uint32_t>(v);
      }
    }
#endif
    // The float stores take the 16 channels of a pixel at once (channel multiplier 1: channel
    // c0 + c is group c0 + c's one column) on maps of at most 16 pixels, where the channel by
    // channel stores below fill few of their 16 lanes; the others go channel by channel.
    const ChannelLanes store(w->groups().data() + c0,
                             static_cast<int>(pixels <= kLanesStorePixels ? nc : 0), q, c0);
    for (int64_t img = img0; img < img1; ++img) {
      std::fill(xi, xi + lh * lw * 16, int16_t{0});
      const std::byte* xin = x + (img * g.in_channels + c0) * g.in_h * g.in_w * a_es;
      switch (a_dtype) {
#ifdef __AVX2__
        case DType::kInt8:
          if (transpose) {
            interleave8(reinterpret_cast<const int8_t*>(xin), nc, xi, tmp);
          } else {
            interleave(reinterpret_cast<const int8_t*>(xin), nc, xi);
          }
          break;
        case DType::kUInt8:
          if (transpose) {
            interleave8(reinterpret_cast<const uint8_t*>(xin), nc, xi, tmp);
          } else {
            interleave(reinterpret_cast<const uint8_t*>(xin), nc, xi);
          }
          break;
#else
        case DType::kInt8:
          interleave(reinterpret_cast<const int8_t*>(xin), nc, xi);
          break;
        case DType::kUInt8:
          interleave(reinterpret_cast<const uint8_t*>(xin), nc, xi);
          break;
#endif
        default:
          interleave(reinterpret_cast<const int16_t*>(xin), nc, xi);
          break;
      }
      int32_t* s = sums + (img - img0) * 16 * np;
      std::byte* out = y + (img * g.out_channels + c0) * pixels * y_es;
      for (int64_t p = 0; p < pixels; ++p) {
        const int64_t oy = p / ow, ox = p % ow;
        alignas(32) uint32_t acc[16] = {};
#ifdef __AVX2__
        // Tap pairs with vpmaddwd (as depthwise_s32_avx2): the codes of taps 2q and 2q + 1
        // interleaved per channel (unpack within 128-bit lanes: channels 0-3 / 8-11 and 4-7 /
        // 12-15), times the weights interleaved the same way (wq), exact modulo 2^32.
        const int16_t* xp = xi + (oy * g.stride_h * lw + ox * g.stride_w) * 16;
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (int64_t k = 0; k < pairs; ++k) {
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + toff[2 * k]));
          const __m256i x1 =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + toff[2 * k + 1]));
          lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), wq[2 * k]));
          hi =
              _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), wq[2 * k + 1]));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(acc),
                           _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_store_si256(reinterpret_cast<__m256i*>(acc + 8),
                           _mm256_permute2x128_si256(lo, hi, 0x31));
#else
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          for (int64_t v = 0; v < g.kernel_w; ++v) {
            const int16_t* xv = xi + ((oy * g.stride_h + u * g.dilation_h) * lw + ox * g.stride_w +
                                      v * g.dilation_w) *
                                         16;
            const uint32_t* wv = wt + (u * g.kernel_w + v) * 16;
            for (int c = 0; c < 16; ++c) {
              acc[c] += wv[c] * static_cast<uint32_t>(static_cast<int32_t>(xv[c]));
            }
          }
        }
#endif
        if (store.ok()) {
          // The 16 channels' values of this pixel in one pass (ChannelLanes).
          int32_t a[16];
          for (int c = 0; c < 16; ++c) a[c] = static_cast<int32_t>(acc[c]);
          store.run(a, out + p * y_es, pixels);
          continue;
        }
        for (int c = 0; c < 16; ++c) s[c * np + p] = static_cast<int32_t>(acc[c]);
      }
    }
    if (store.ok()) return;
    for (int64_t c = 0; c < nc; ++c) {
      Epilogue::ColumnLanes lanes;
      const Epilogue ec = tile(c0 + c, &lanes);  // channel multiplier 1
      for (int64_t img = img0; img < img1; ++img) {
        const int32_t* s = sums + ((img - img0) * 16 + c) * np;
        std::byte* out = y + (img * g.out_channels + c0 + c) * pixels * y_es;
        store_channel_plane(ec, s, pixels, y_es, out);  // reads end at s + np
      }
    }
  }

  // Work item: group gi = item / image_blocks, images [ib * nbi, ...) with ib = item %
  // image_blocks (the group's Epilogue made once per item). Each output channel's sums are
  // compacted to output order (the dropped positions x >= OW cut out of each row) and stored as
  // 16 x 16 tiles of that one channel (Epilogue::column_tile): a store call per 256 outputs,
  // where a call per 16-lane block with its kept runs cost about twice the tap pairs.
  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t gi = item / image_blocks, img0 = item % image_blocks * nbi;
    const int64_t img1 = std::min(batch, img0 + nbi);
    const int64_t oh = g.out_h(), ow = g.out_w();
    const size_t xp_bytes = static_cast<size_t>(plane_elems) * (quads ? 1 : 2) / 64 * 64 + 64;
    const int64_t nsums = (quads ? passes * 64 : blocks * 16) + 16;
    auto* base = static_cast<std::byte*>(
        scratch(ScratchSlot::kConvColumns, xp_bytes + static_cast<size_t>(nsums) * 4));
    auto* xp = reinterpret_cast<int16_t*>(base);
    auto* xb = reinterpret_cast<uint8_t*>(base);
    auto* sums = reinterpret_cast<int32_t*>(base + xp_bytes);
    // Made once per item: with the shared Epilogue (channel multiplier 1) the channel's tile,
    // else the group's Epilogue, whose columns' tiles are made per image. One object built in
    // place: two std::optional<Epilogue> were each zeroed first (rep stos, 176 bytes), once per
    // item, which at batch 1 is one channel (MobileNetV2's 14x14 576-channel conv 1.08x faster
    // without them).
    Epilogue::ColumnLanes lanes;
    const Epilogue ep = shared != nullptr
                            ? shared->channel_tile(w->channel_biases()[gi], gi, &lanes)
                            : Epilogue(w->groups()[gi], q, gi * ocg);
    for (int64_t img = img0; img < img1; ++img) {
      const std::byte* xin = x + (img * g.in_channels + gi) * g.in_h * g.in_w * a_es;
      // Byte planes for the quads (8-bit codes only: quads are packed for no other), else int16.
      const auto fill = [&](const auto* src) {
        if constexpr (sizeof(*src) == 1) {
          if (quads) return fill_planes(src, xb, img == img0);
        }
        fill_planes(src, xp, img == img0);
      };
      switch (a_dtype) {
        case DType::kInt8:
          fill(reinterpret_cast<const int8_t*>(xin));
          break;
        case DType::kUInt8:
          fill(reinterpret_cast<const uint8_t*>(xin));
          break;
        default:
          fill(reinterpret_cast<const int16_t*>(xin));
          break;
      }
      std::byte* out = y + (img * g.out_channels + gi * ocg) * pixels * y_es;
      for (int64_t j = 0; j < ocg; ++j) {
        const int64_t oc = gi * ocg + j;
        if (quads) {
          detail::depthwise_u8_vnni(xb, w->depthwise_quads().data<int32_t>() + oc * nquads, off,
                                    nquads, passes, w->depthwise_quad_init().data<int32_t>()[oc],
                                    sums);
        } else {
          (avx512 ? detail::depthwise_s32_avx512 : detail::depthwise_s32_avx2)(
              xp, w->depthwise_pairs().data<int32_t>() + oc * pairs, off, pairs, blocks, sums);
        }
        // Output (oy, ox) is position oy * wq + ox: rows move down in place (ow <= wq).
        if (wq != ow) {
          for (int64_t oy = 1; oy < oh; ++oy) {
            std::memmove(sums + oy * ow, sums + oy * wq, static_cast<size_t>(ow) * 4);
          }
        }
        // (Sums past the pixels are readable: nsums >= pixels + 16.)
        std::byte* o = out + j * pixels * y_es;
        if (shared != nullptr) {
          store_channel_plane(ep, sums, pixels, y_es, o);
        } else {
          Epilogue::ColumnLanes l;
          store_channel_plane(ep.column_tile(j, &l), sums, pixels, y_es, o);
        }
      }
    }
  }
};

// The depthwise path on a 1x1 map under one tap without padding (MobileNetV2's and EfficientNet's
// last depthwise convs at 32x32, whose 3x3 / 5x5 kernels are cut to the centre tap there), channel
// multiplier 1: each output is one product, y[b][c] = epilogue_c(x[b][c] * w[c]) (exact in int32:
// both codes have at most 16 bits). Per work item, a block of 16 channels: the weights once, then
// per image the 16 input codes (consecutive on a 1x1 map) times them, stored 16 channels at a
// time where a ChannelLanes store applies, else by each channel's Epilogue with the images as the
// tile's rows (16 at a time). run_lanes did the same sums through a zeroed, transposed buffer
// per image and block, which cost several times the products.
template <typename T>
void depthwise_single_tap(const T* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                          int64_t c0, std::byte* y) {
  const int64_t channels = w.geometry().out_channels;
  const int nc = static_cast<int>(std::min<int64_t>(16, channels - c0));
  const size_t y_es = dtype_size(gemm_output_dtype(p));
  int32_t wt[16] = {};
  for (int c = 0; c < nc; ++c) {
    // Tap 0 is the low half of the channel's one tap pair (pairs = 1).
    wt[c] =
        static_cast<int16_t>(static_cast<uint16_t>(w.depthwise_pairs().data<int32_t>()[c0 + c]));
  }
  const ChannelLanes store(w.groups().data() + c0, nc, p, c0);
  if (store.ok()) {
    alignas(32) int32_t acc[16] = {};
    for (int64_t b = 0; b < batch; ++b) {
      const T* xb = x + b * channels + c0;
      for (int c = 0; c < nc; ++c) acc[c] = static_cast<int32_t>(xb[c]) * wt[c];
      store.run(acc, y + (b * channels + c0) * y_es, 1);
    }
    return;
  }
  // Column j of channel c's tile is its one output column; row r is image b0 + r, at
  // y[(b0 + r) * channels + c] (ldc_m = channels).
  GemmParams q = p;
  q.ldc_m = channels;
  q.ldc_n = 1;
  alignas(32) int32_t tile[16];
  for (int c = 0; c < nc; ++c) {
    const Epilogue e(w.groups()[c0 + c], q, c0 + c);
    for (int64_t b0 = 0; b0 < batch; b0 += 16) {
      const int rows = static_cast<int>(std::min<int64_t>(16, batch - b0));
      for (int r = 0; r < 16; ++r) {
        tile[r] = r < rows ? static_cast<int32_t>(x[(b0 + r) * channels + c0 + c]) * wt[c] : 0;
      }
      e.run_t32(tile, rows, 1, b0, 0, y + (c0 + c) * y_es);
    }
  }
}

bool run_depthwise_single_tap(const void* x, int64_t batch, const PackedConv2d& w,
                              const GemmParams& p, void* y) {
  const Conv2dGeometry& g = w.geometry();
  if (g.in_h != 1 || g.in_w != 1 || g.kernel_h != 1 || g.kernel_w != 1 || g.pad_top != 0 ||
      g.pad_left != 0 || g.pad_bottom != 0 || g.pad_right != 0 || g.out_channels != g.groups) {
    return false;
  }
  const DType a = w.a_dtype();
  if (a != DType::kInt8 && a != DType::kUInt8 && a != DType::kInt16) return false;
  struct Job {
    const void* x;
    int64_t batch;
    const PackedConv2d* w;
    const GemmParams* p;
    std::byte* y;
    DType a;
  } job{x, batch, &w, &p, static_cast<std::byte*>(y), a};
  const Job* shared = &job;
  const int64_t blocks = (g.groups + 15) / 16;
  // A block's work is 16 products per image: split only when the blocks have many images each.
  const int64_t grain = batch >= 16 ? 1 : blocks;
  parallel_for(0, blocks, grain, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Job& j = *shared;
      switch (j.a) {
        case DType::kInt8:
          depthwise_single_tap(static_cast<const int8_t*>(j.x), j.batch, *j.w, *j.p, i * 16, j.y);
          break;
        case DType::kUInt8:
          depthwise_single_tap(static_cast<const uint8_t*>(j.x), j.batch, *j.w, *j.p, i * 16, j.y);
          break;
        default:
          depthwise_single_tap(static_cast<const int16_t*>(j.x), j.batch, *j.w, *j.p, i * 16, j.y);
          break;
      }
    }
  });
  return true;
}

bool run_depthwise(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                   void* y, ConvPool pool) {
  if (w.depthwise_pairs().numel() == 0 || p.acc != AccType::kInt32 || pool != ConvPool::kNone) {
    return false;
  }
  const Conv2dGeometry& g = w.geometry();
  if (run_depthwise_single_tap(x, batch, w, p, y)) return true;
  DepthwiseJob job;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.q = p;
  job.pixels = g.out_h() * g.out_w();
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.q.ldc_n = job.pixels;
  job.a_dtype = w.a_dtype();
  job.avx512 = w.groups().front().isa() >= Isa::kAvx512Bw;
  std::optional<Epilogue> one_epilogue;
  if (!w.channel_biases().empty())
    one_epilogue.emplace(w.groups().front(), job.q, 0, g.out_channels);
  job.shared = one_epilogue ? &*one_epilogue : nullptr;
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
  job.quads = w.depthwise_quads().numel() > 0;
  job.nquads = (taps + 3) / 4;
  job.passes = (job.positions + 63) / 64;
  int64_t max_off = 0;
  for (int64_t t = 0; t < std::max(2 * job.pairs, 4 * job.nquads); ++t) {
    const int64_t tt = std::min(t, taps - 1);  // the odd last tap's partner has weight 0
    const int64_t u = tt / g.kernel_w, v = tt % g.kernel_w;
    const int64_t du = u * g.dilation_h, dv = v * g.dilation_w;
    const int64_t plane = (du % g.stride_h) * g.stride_w + dv % g.stride_w;
    job.off[t] = (plane * job.hq + du / g.stride_h) * job.wq + dv / g.stride_w;
    max_off = std::max(max_off, job.off[t]);
  }
  // Every lane of every block (pass) reads inside the buffer (dropped lanes read zeros or codes).
  job.plane_elems = std::max(job.planes * job.hq * job.wq,
                             (job.quads ? job.passes * 64 : job.blocks * 16) + max_off) +
                    16;
  for (int64_t r = 0; r < std::min<int64_t>(g.stride_w, 16); ++r) {
    job.col0[r] = ((r - g.pad_left) % g.stride_w + g.stride_w) % g.stride_w;
    job.dcol0[r] = (job.col0[r] + g.pad_left) / g.stride_w;
  }
  // A work item runs several images of one group where there are groups enough for the threads
  // (one Epilogue and one set of runs per item; small maps spent more on those than on the taps).
  job.batch = batch;
  job.lh = (g.out_h() - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
  job.lw = (g.out_w() - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1;
  job.lanes = job.ocg == 1 && g.out_w() < 8 && job.lh * job.lw * 16 * 2 <= kDepthwiseLanesBytes;
  const int64_t units = job.lanes ? (g.groups + 15) / 16 : g.groups;
  // Inside a parallel region (batch-parallel schedules) the items run inline on one thread.
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  job.nbi = units >= 4 * threads ? std::min<int64_t>(batch, 8) : 1;
  job.image_blocks = (batch + job.nbi - 1) / job.nbi;
  const DepthwiseJob* shared = &job;
  parallel_for(0, job.image_blocks * units, 1, [shared](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) shared->lanes ? shared->run_lanes(i) : shared->run(i);
  });
  return true;
}

#endif  // __x86_64__

// Maps of at most this many pixels take run_single_pixel's GEMM under a 1x1 kernel (stride 1,
// float output): below 8 pixels the quads path does not apply (quads_apply: a 16-lane panel
// would keep fewer than half its lanes), and the pair panels gathered over the images ran
// MobileNetV2's 2x2 projections at 32x32 (576 -> 96) slower than the float engine.
constexpr int64_t kFewPixels = 7;

// dst[(n * oc + o) * hw + p] = src[(p * batch + n) * oc + o]: the GEMM's rows (pixel, image)
// back to NCHW, the writes in order.
template <typename T>
void rows_to_nchw(const T* src, int64_t batch, int64_t oc, int64_t hw, T* dst) {
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t o = 0; o < oc; ++o) {
      for (int64_t p = 0; p < hw; ++p) *dst++ = src[(p * batch + n) * oc + o];
    }
  }
}

// dst[(p * batch + n) * c + ch] = src[(n * c + ch) * hw + p]: an image's [C, HW] codes as the
// GEMM's rows (pixel, image) of C codes; the reads in order.
template <typename T>
void nchw_to_rows(const T* src, int64_t batch, int64_t c, int64_t hw, T* dst) {
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t p = 0; p < hw; ++p) dst[(p * batch + n) * c + ch] = *src++;
    }
  }
}

// fn(src, dst) with the element type of `es` bytes (1, 2, 4 or 8: int64 codes of unsigned
// 32-bit formats): the copies above move elements as they are.
template <typename Fn>
void with_elements(size_t es, const void* src, void* dst, Fn fn) {
  switch (es) {
    case 1:
      return fn(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst));
    case 2:
      return fn(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst));
    case 4:
      return fn(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst));
    default:
      QSEARCH_DCHECK(es == 8);
      return fn(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst));
  }
}

// run_single_pixel's float output (with or without a fused post: GemmParams::post_scale /
// post_silu / post_quantize, e.g. EfficientNet's SE fc1 with its SiLU and fc2's quantizer) on
// maps of hw <= kFewPixels pixels: the GEMM of the rows (pixel, image) (for hw > 1 the input
// gathered into them first) with its plain float store (the row-major AVX2 one, the same values
// v the post starts from), then the post on whole rows of channels: Epilogue::post's fma, clamps
// and SiLU (vmath's sigmoid, lanes independent of the count, then the Mul's rounding) and
// quant::quantize, vectorised, where the GEMM's row store ran them value by value (about 35 ns
// each: most of fc1's time at 1152 -> 48, batch 64); for hw > 1 the rows go back to NCHW last.
void few_pixels_float(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                      void* y) {
  const Conv2dGeometry& g = w.geometry();
  const int64_t oc = g.out_channels, hw = g.in_h * g.in_w, rows = batch * hw;
  GemmParams q = p;
  q.post_scale = q.post_shift = nullptr;
  q.post_silu = q.post_quantize = false;
  q.ldc_m = oc;  // C[row, oc] at t[row * OC + oc]
  q.ldc_n = 1;
  const DType code = quant::storage_dtype(p.post_format);
  const size_t es = p.post_quantize ? dtype_size(code) : sizeof(float);
  // The floats in this thread's buffer when codes are stored or the rows are reordered, else in
  // y itself; then the sigmoids of one row; then the codes of every row when they are reordered.
  const bool direct = hw == 1;
  const int64_t kept = p.post_quantize || !direct ? rows * oc : 0;
  const size_t codes_bytes = p.post_quantize && !direct ? static_cast<size_t>(rows * oc) * es : 0;
  // The codes start 64-byte aligned (int64 codes need 8).
  const size_t floats_bytes = (static_cast<size_t>(kept + oc) * sizeof(float) + 63) / 64 * 64;
  auto* buf = static_cast<float*>(scratch(ScratchSlot::kConvOutput, floats_bytes + codes_bytes));
  float* t = kept > 0 ? buf : static_cast<float*>(y);
  float* sig = buf + kept;
  auto* codes =
      direct ? static_cast<std::byte*>(y) : reinterpret_cast<std::byte*>(buf) + floats_bytes;
  const void* a = x;
  if (!direct) {
    const size_t a_es = dtype_size(w.a_dtype());
    void* gathered =
        scratch(ScratchSlot::kConvColumns, static_cast<size_t>(rows * g.in_channels) * a_es);
    with_elements(a_es, x, gathered,
                  [&](auto s, auto d) { nchw_to_rows(s, batch, g.in_channels, hw, d); });
    a = gathered;
  }
  gemm(a, rows, g.in_channels, w.groups().front(), q, t);
  for (int64_t b = 0; b < rows; ++b) {
    float* r = t + b * oc;
    if (p.post_scale != nullptr) {
      const float lo = p.post_lo, hi = p.post_hi;
      for (int64_t c = 0; c < oc; ++c) {
        const float u = std::fma(r[c], p.post_scale[c], p.post_shift[c]);
        const float v = u < lo ? lo : u;
        r[c] = v > hi ? hi : v;
      }
      if (p.post_silu) {
        vmath::map_f32(vmath::Fn::kSigmoid, r, sig, oc);
        for (int64_t c = 0; c < oc; ++c) r[c] *= sig[c];
      }
    }
    if (p.post_quantize) {
      quant::quantize(std::span<const float>(r, static_cast<size_t>(oc)), p.post_format,
                      p.post_rounding, codes + b * oc * es, code);
    }
  }
  if (!direct) {
    with_elements(es, p.post_quantize ? static_cast<const void*>(codes) : t, y,
                  [&](auto s, auto d) { rows_to_nchw(s, batch, oc, hw, d); });
  }
}

// A 1x1 kernel without padding, one group, on a 1x1 map (EfficientNet's squeeze-excitation
// convs, the last stages of MobileNetV2, EfficientNet and ResNet-18 at 32x32, whose 3x3 convs
// are cut to their centre tap there) or, with a float output, on a map of at most kFewPixels
// pixels at stride 1 (MobileNetV2's and EfficientNet's 2x2 stages at 32x32): the input
// [B, C, 1, 1] is the row-major matrix [B, C] (a few-pixel map's codes are gathered into rows
// (pixel, image) of C first), the output [B, OC, 1, 1] the matrix [B, OC], and the conv is gemm()
// of the rows with the group's packed weights: the same sums and the same Epilogue, so the same
// values. It pays where the pixel-major path's 16-lane panels of images are part empty (batch <
// 16: one image keeps 1 lane of 16), and at larger batches where the GEMM's faster multiplies
// (int8 VNNI / quads against int16 pairs) outweigh its per-value store. A float output runs
// few_pixels_float (the GEMM's plain float store, then the fused post on whole rows: fc1 1152 ->
// 48 at batch 64 in 0.03 ms instead of 0.2, bench/int_se_bench.cc), at every batch and K; the
// requantizing store stays per value in the GEMM, slower than the pixel-major column store by
// about 10 ns a value (EfficientNet-B0 / MobileNetV2 at 32x32, batch 64): so on 1x1 maps only,
// and K >= 256 with it at batch >= 16.
bool run_single_pixel(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                      void* y, ConvPool pool) {
  const Conv2dGeometry& g = w.geometry();
  const int64_t hw = g.in_h * g.in_w;
  if (g.groups != 1 || hw > kFewPixels || g.kernel_h != 1 || g.kernel_w != 1 || g.pad_top != 0 ||
      g.pad_left != 0 || g.pad_bottom != 0 || g.pad_right != 0 || pool != ConvPool::kNone) {
    return false;
  }
  if (hw > 1 && (g.stride_h != 1 || g.stride_w != 1 || p.output != GemmOutput::kFloat)) {
    return false;
  }
  if (p.output == GemmOutput::kFloat && (hw > 1 || p.post_scale != nullptr || p.post_quantize)) {
    few_pixels_float(x, batch, w, p, y);
    return true;
  }
  if (batch >= 16 && p.output == GemmOutput::kRequantize && g.in_channels < 256) return false;
  GemmParams q = p;
  q.ldc_m = g.out_channels;  // C[image, oc] at y[image * OC + oc]: NCHW of a 1x1 map
  q.ldc_n = 1;
  gemm(x, batch, g.in_channels, w.groups().front(), q, y);
  return true;
}

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
      GemmParams gq = q;  // the fused channel affine (GemmParams::post_scale) of this group
      if (gq.post_scale != nullptr) {
        gq.post_scale += gi * ocg;
        gq.post_shift += gi * ocg;
      }
      detail::gemm_rows(&ConvRows::fill, &rows, pixels, w->groups()[gi], gq, out);
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
    job.lanes = by_channels < by_positions && !w.weight_lanes().empty();
  }
  // Inside a parallel region (batch-parallel schedules) the items run inline on one thread:
  // no splitting for threads there.
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  job.batch = batch;
  job.nb = 1;
  job.by_channels = false;
  job.gathered = !job.extended;
  const int64_t n = job.cg * job.hp * job.wp + job.slack;
  job.x2n = ((job.mode == PairMode::kTaps ? 2 * n : n) + 15) / 16 * 16;
  if (!job.pool) {
    // Stride 1: gathered panels where the extended ones would cost more (tiny maps, whose
    // padded rows are mostly dropped lanes: a 1x1 map keeps 1 lane of 16); a gather costs
    // about three channel blocks' passes of its panel.
    if (job.extended) {
      const int64_t by_extended = job.panels * 16 * job.mblocks;
      const int64_t by_gathering = job.pixels * (job.mblocks + 3);
      job.gathered = 10 * by_gathering < 9 * by_extended;
    }
    // Images per work item: as many as keep their pair planes within kImageBlockBytes, in
    // blocks of equal sizes, a multiple of the threads (when there are enough images) so that
    // every thread gets as many.
    const int64_t fit = std::max<int64_t>(1, kImageBlockBytes / (job.x2n * 4));
    int64_t nblocks = (batch + fit - 1) / fit;
    const int64_t per_thread = (threads + g.groups - 1) / g.groups;  // blocks for all threads
    if (job.gathered && nblocks < per_thread && job.mblocks >= 2 * per_thread &&
        batch * job.pixels < 64 * per_thread) {
      // Tiny maps: splitting the images would leave part-empty panels; the threads split the
      // channels instead.
      job.by_channels = true;
    } else if (nblocks < batch) {
      nblocks = std::min(batch, (nblocks + per_thread - 1) / per_thread * per_thread);
    }
    job.nb = (batch + nblocks - 1) / nblocks;
  }
  const int64_t images = (batch + job.nb - 1) / job.nb * g.groups;  // work items but chunks
  job.chunks = 1;
  if (images < threads) {
    const int64_t want = (threads + images - 1) / images;
    job.chunks =
        job.by_channels ? std::min(job.mblocks, want) : std::min(job.block_units(job.nb), want);
  }
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
  if (run_single_pixel(x, batch, w, p, y, pool)) return;
#if defined(__x86_64__)
  if (run_depthwise(x, batch, w, p, y, pool)) return;
  if (run_quads(x, batch, w, p, y, pool)) return;
#endif
  if (run_pixel_major(x, batch, w, p, y, pool)) return;
  // Released only where Winograd runs every call (pack_conv2d, Conv2dWeights::may_pool).
  QSEARCH_CHECK(w.groups().front().panels().numel() > 0 && "a pool on a may_pool = false packing");
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
