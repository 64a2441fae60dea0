#include "kernels/fixed/eltwise.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/check.h"
#include "kernels/fixed/code_type.h"
#include "kernels/fixed/isa.h"
#include "quant/fixed_point.h"

#if defined(__x86_64__)
#include <immintrin.h>
// Quantize8's inline functions take this target (the TU's baseline may lack AVX2).
#pragma GCC push_options
#pragma GCC target("avx2")
#include "quant/quantize_avx2.h"
#pragma GCC pop_options
#include "kernels/fixed/codes_avx512.h"
#endif

namespace qsearch::kernels::fixed {

namespace {

int64_t dtype_max_abs(DType t) {
  switch (t) {
    case DType::kInt8:
      return 128;
    case DType::kUInt8:
      return 255;
    case DType::kInt16:
      return 32768;
    case DType::kInt32:
      return int64_t{1} << 31;
    default:
      return std::numeric_limits<int64_t>::max();
  }
}

bool lane32(DType t) { return t != DType::kInt64; }

// x * 2^s exactly, s >= 0, for values the callers guarantee to fit.
inline int64_t shl(int64_t x, int s) { return static_cast<int64_t>(static_cast<uint64_t>(x) << s); }

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2")

template <typename T>
inline __m256i load8(const T* p) {
  if constexpr (std::is_same_v<T, int8_t>) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (std::is_same_v<T, int16_t>) {
    return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
}

// Stores 8 int32 lanes that already fit O.
template <typename O>
inline void store8(O* p, __m256i v) {
  if constexpr (sizeof(O) == 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  } else {
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0x08);
    const __m128i h = _mm256_castsi256_si128(w16);
    if constexpr (sizeof(O) == 2) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
    } else if constexpr (std::is_same_v<O, uint8_t>) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(h, h));
    } else {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi16(h, h));
    }
  }
}

// Requantization of int32 lanes to a format of width <= 32 held in int32: a rounding right shift
// by 1..31, or an exact left shift by any amount, then the clamp.
struct Requant8 {
  bool right;
  __m128i count;
  __m256i mask, half, one, lo, hi, tlo, thi;
  Rounding r;

  Requant8(int s, const FixedFormat& f, Rounding rounding) : right(s > 0), r(rounding) {
    const int64_t lo64 = f.min_code(), hi64 = f.max_code();
    auto clip = [](int64_t v) {
      return static_cast<int32_t>(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));
    };
    lo = _mm256_set1_epi32(clip(lo64));
    hi = _mm256_set1_epi32(clip(hi64));
    one = _mm256_set1_epi32(1);
    if (right) {
      count = _mm_cvtsi32_si128(s);
      mask = _mm256_set1_epi32(static_cast<int32_t>((int64_t{1} << s) - 1));
      half = _mm256_set1_epi32(static_cast<int32_t>(int64_t{1} << (s - 1)));
    } else {
      const int ls = -s;
      count = _mm_cvtsi32_si128(std::min(ls, 63));
      // x << ls exceeds hi exactly when x > floor(hi / 2^ls); likewise below ceil(lo / 2^ls).
      thi = _mm256_set1_epi32(clip(ls >= 63 ? 0 : hi64 >> ls));
      tlo = _mm256_set1_epi32(clip(ls >= 63 ? 0 : -((-lo64) >> ls)));
    }
  }

  __m256i operator()(__m256i x) const {
    if (!right) {
      __m256i v = _mm256_sll_epi32(x, count);
      v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi32(x, thi));
      return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi32(tlo, x));
    }
    __m256i q = _mm256_sra_epi32(x, count);  // floor
    if (r != Rounding::kFloor) {
      const __m256i rem = _mm256_and_si256(x, mask);
      const __m256i tie = _mm256_cmpeq_epi32(rem, half);
      const __m256i tie_up = r == Rounding::kHalfToEven
                                 ? _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one)
                                 : _mm256_cmpgt_epi32(x, _mm256_set1_epi32(-1));
      const __m256i up =
          _mm256_or_si256(_mm256_cmpgt_epi32(rem, half), _mm256_and_si256(tie, tie_up));
      q = _mm256_sub_epi32(q, up);  // up is -1 where rounding up
    }
    return _mm256_max_epi32(_mm256_min_epi32(q, hi), lo);
  }
};

template <typename I, typename O>
int64_t requantize_avx2(const I* in, int64_t n, const Requant8& rq, O* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, rq(load8(in + i)));
  return i;
}

template <typename A, typename B, typename O>
int64_t add_avx2(const A* a, int sa, const B* b, int sb, int64_t n, const Requant8& rq, O* out) {
  const __m128i ca = _mm_cvtsi32_si128(sa), cb = _mm_cvtsi32_si128(sb);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i s =
        _mm256_add_epi32(_mm256_sll_epi32(load8(a + i), ca), _mm256_sll_epi32(load8(b + i), cb));
    store8(out + i, rq(s));
  }
  return i;
}

// One output row of the 2x2 stride-2 max pool on byte codes, 2 * ow >= 16: the max of the input
// rows r0 and r1 over 16 columns, then of each column pair (as 16-bit lanes), 8 outputs per step;
// the last step overlaps the previous one when 16 does not divide 2 * ow (same values again).
template <typename T>
void max_pool_2x2_row_bytes(const T* r0, const T* r1, int64_t ow, T* d) {
  const int64_t n = 2 * ow;
  for (int64_t c0 = 0; c0 < n; c0 += 16) {
    const int64_t c = std::min(c0, n - 16);
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + c));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + c));
    __m128i pairs;
    if constexpr (std::is_signed_v<T>) {
      const __m128i m = _mm_max_epi8(a, b);
      const __m128i even = _mm_srai_epi16(_mm_slli_epi16(m, 8), 8), odd = _mm_srai_epi16(m, 8);
      pairs = _mm_packs_epi16(_mm_max_epi16(even, odd), _mm_setzero_si128());
    } else {
      const __m128i m = _mm_max_epu8(a, b);
      const __m128i even = _mm_and_si128(m, _mm_set1_epi16(0xFF)), odd = _mm_srli_epi16(m, 8);
      pairs = _mm_packus_epi16(_mm_max_epi16(even, odd), _mm_setzero_si128());
    }
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + c / 2), pairs);
  }
}

// float_op_quantize on n consecutive values, 8 lanes at a time: s[0] for each (SFull false) or
// s[i] (SFull); the float op as vaddps / vmulps (IEEE, like the scalar one), then
// quant::quantize's Quantize8 (which needs out.width <= 24). Returns how many values it did.
template <typename O, Rounding R, FloatOp Op, bool SFirst, bool SFull>
int64_t float_op_quantize_avx2(const float* x, const float* s, int64_t n,
                               const quant::avx2::Quantize8& q, O* codes, float* y) {
  const __m256 s1 = _mm256_set1_ps(s[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 sv = SFull ? _mm256_loadu_ps(s + i) : s1, xv = _mm256_loadu_ps(x + i);
    const __m256 a = SFirst ? sv : xv, b = SFirst ? xv : sv;
    const __m256 v = Op == FloatOp::kAdd ? _mm256_add_ps(a, b) : _mm256_mul_ps(a, b);
    if (y != nullptr) _mm256_storeu_ps(y + i, v);
    store8(codes + i, q.codes<R>(v));
  }
  return i;
}

#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")

// float_op_quantize_avx2 on 16 lanes (the same float op, then Quantize8's operations: lane for
// lane the same values and codes), the last step masked: does all n values.
template <typename O, Rounding R, FloatOp Op, bool SFirst, bool SFull>
int64_t float_op_quantize_avx512(const float* x, const float* s, int64_t n,
                                 const detail::Quantize16& q, O* codes, float* y) {
  const __m512 s1 = _mm512_set1_ps(s[0]);
  const __m512 scale = _mm512_set1_ps(q.scale), lo = _mm512_set1_ps(q.lo),
               hi = _mm512_set1_ps(q.hi);
  auto step = [&](int64_t i, __mmask16 m) {
    const __m512 sv = SFull ? _mm512_maskz_loadu_ps(m, s + i) : s1;
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 a = SFirst ? sv : xv, b = SFirst ? xv : sv;
    const __m512 v = Op == FloatOp::kAdd ? _mm512_add_ps(a, b) : _mm512_mul_ps(a, b);
    if (y != nullptr) _mm512_mask_storeu_ps(y + i, m, v);
    detail::store16(detail::clamp_codes16(detail::round16<R>(_mm512_mul_ps(v, scale)), lo, hi), m,
                    codes + i);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) step(i, 0xFFFF);
  if (i < n) step(i, detail::first_lanes(n - i));
  return n;
}

#pragma GCC pop_options

// The vector bodies of float_op_quantize: Body<...>::run(x, s, n, q, codes, y) as
// float_op_quantize_avx2 / _avx512 (Q their quantizer).
struct Avx2Body {
  using Q = quant::avx2::Quantize8;
  template <typename O, Rounding R, FloatOp Op, bool SFirst, bool SFull>
  static int64_t run(const float* x, const float* s, int64_t n, const Q& q, O* codes, float* y) {
    return float_op_quantize_avx2<O, R, Op, SFirst, SFull>(x, s, n, q, codes, y);
  }
};
struct Avx512Body {
  using Q = detail::Quantize16;
  template <typename O, Rounding R, FloatOp Op, bool SFirst, bool SFull>
  static int64_t run(const float* x, const float* s, int64_t n, const Q& q, O* codes, float* y) {
    return float_op_quantize_avx512<O, R, Op, SFirst, SFull>(x, s, n, q, codes, y);
  }
};
#endif  // __x86_64__

bool use_avx2() { return max_isa() >= Isa::kAvx2; }
bool use_avx512() { return max_isa() >= Isa::kAvx512Bw && __builtin_cpu_supports("avx512vl"); }

}  // namespace

void requantize(const void* in, DType in_dtype, int in_frac, int64_t n, const FixedFormat& out,
                Rounding r, void* out_codes) {
  const DType out_dtype = quant::storage_dtype(out);
  const int s = in_frac - out.frac;
  with_code_type(in_dtype, [&](auto it) {
    using I = decltype(it);
    with_code_type(out_dtype, [&](auto ot) {
      using O = decltype(ot);
      const I* src = static_cast<const I*>(in);
      O* dst = static_cast<O*>(out_codes);
      int64_t i = 0;
#if defined(__x86_64__)
      if (use_avx2() && lane32(in_dtype) && lane32(out_dtype) && s <= 31) {
        i = requantize_avx2(src, n, Requant8(s, out, r), dst);
      }
#endif
      for (; i < n; ++i) dst[i] = static_cast<O>(quant::requantize(src[i], in_frac, out, r));
    });
  });
}

void float_op_quantize(FloatOp op, const float* x, const float* s, bool s_first, int64_t rows,
                       int64_t inner, const FixedFormat& out, Rounding r, void* codes, float* y) {
  const DType out_dtype = quant::storage_dtype(out);
  const int64_t n = rows * inner;
  // Values [i0, i1) one by one (the tails).
  auto scalar = [&](auto code, int64_t i0, int64_t i1) {
    using O = decltype(code);
    O* c = static_cast<O*>(codes);
    for (int64_t i = i0; i < i1; ++i) {
      const float a = s_first ? s[i / inner] : x[i], b = s_first ? x[i] : s[i / inner];
      const float v = op == FloatOp::kAdd ? a + b : a * b;
      c[i] = static_cast<O>(quant::quantize(v, out, r));
      if (y != nullptr) y[i] = v;
    }
  };
  with_code_type(out_dtype, [&](auto code) {
    using O = decltype(code);
#if defined(__x86_64__)
    if (use_avx2() && out.width <= 24 && lane32(out_dtype)) {
      O* c = static_cast<O*>(codes);
      // Body's instances for op and s_first: per_row (s[0] for each value) and full (s[i]).
      auto body = [&](auto b, const auto& q) {
        using Body = decltype(b);
        auto run = [&](auto per_row, auto full) {
          // Rows of 16 values or more: s[row] broadcast along each. Shorter rows (the small maps
          // of a 32x32 input, 1 for the same shape): s spread to one value per element, in
          // pieces.
          if (inner >= 16) {
            for (int64_t row = 0; row < rows; ++row) {
              const int64_t i = row * inner;
              const int64_t done =
                  per_row(x + i, s + row, inner, q, c + i, y != nullptr ? y + i : nullptr);
              scalar(code, i + done, i + inner);
            }
            return;
          }
          if (inner == 1) {
            scalar(code, full(x, s, n, q, c, y), n);
            return;
          }
          constexpr int64_t kPiece = 1024;
          float spread[kPiece];
          const int64_t piece_rows = kPiece / inner;
          for (int64_t row0 = 0; row0 < rows; row0 += piece_rows) {
            const int64_t nr = std::min(piece_rows, rows - row0), i = row0 * inner;
            for (int64_t k = 0; k < nr; ++k) std::fill_n(spread + k * inner, inner, s[row0 + k]);
            const int64_t done =
                full(x + i, spread, nr * inner, q, c + i, y != nullptr ? y + i : nullptr);
            scalar(code, i + done, i + nr * inner);
          }
        };
        quant::with_rounding(r, [&](auto R) {
          constexpr Rounding kR = R.value;
          auto go = [&](auto kOp, auto kSFirst) {
            run(&Body::template run<O, kR, kOp.value, kSFirst.value, false>,
                &Body::template run<O, kR, kOp.value, kSFirst.value, true>);
          };
          using Add = std::integral_constant<FloatOp, FloatOp::kAdd>;
          using Mul = std::integral_constant<FloatOp, FloatOp::kMul>;
          if (op == FloatOp::kAdd) {
            s_first ? go(Add{}, std::true_type{}) : go(Add{}, std::false_type{});
          } else {
            s_first ? go(Mul{}, std::true_type{}) : go(Mul{}, std::false_type{});
          }
        });
      };
      if (use_avx512()) {
        body(Avx512Body{}, detail::Quantize16(out));
      } else {
        body(Avx2Body{}, quant::avx2::Quantize8(out));
      }
      return;
    }
#endif
    scalar(code, 0, n);
  });
}

bool add_fits_int64(const FixedFormat& a, const FixedFormat& b) {
  const int f = std::max(a.frac, b.frac);
  const int sa = f - a.frac, sb = f - b.frac;
  // |code| <= 2^32, so each term stays below 2^62 when its shift is at most 30.
  return sa <= 30 && sb <= 30;
}

void add(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
         int64_t n, const FixedFormat& out, Rounding r, void* out_codes) {
  const int f = std::max(a_frac, b_frac);
  const int sa = f - a_frac, sb = f - b_frac;
  QSEARCH_DCHECK(sa <= 30 && sb <= 30);
  const DType out_dtype = quant::storage_dtype(out);
  const int s = f - out.frac;
  // int32 lanes hold the aligned sum when the dtypes' extremes cannot leave int32.
  const bool fits32 = lane32(a_dtype) && lane32(b_dtype) &&
                      shl(dtype_max_abs(a_dtype), sa) + shl(dtype_max_abs(b_dtype), sb) <=
                          std::numeric_limits<int32_t>::max();
  with_code_type(a_dtype, [&](auto at) {
    using A = decltype(at);
    with_code_type(b_dtype, [&](auto bt) {
      using B = decltype(bt);
      with_code_type(out_dtype, [&](auto ot) {
        using O = decltype(ot);
        const A* pa = static_cast<const A*>(a);
        const B* pb = static_cast<const B*>(b);
        O* dst = static_cast<O*>(out_codes);
        int64_t i = 0;
#if defined(__x86_64__)
        if (use_avx2() && fits32 && lane32(out_dtype) && s <= 31) {
          i = add_avx2(pa, sa, pb, sb, n, Requant8(s, out, r), dst);
        }
#endif
        for (; i < n; ++i) {
          const int64_t sum = shl(pa[i], sa) + shl(pb[i], sb);
          dst[i] = static_cast<O>(quant::requantize(sum, f, out, r));
        }
      });
    });
  });
}

int add_exact(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
              int64_t n, int64_t* out) {
  const int f = std::max(a_frac, b_frac);
  const int sa = f - a_frac, sb = f - b_frac;
  QSEARCH_DCHECK(sa <= 30 && sb <= 30);
  with_code_type(a_dtype, [&](auto at) {
    using A = decltype(at);
    with_code_type(b_dtype, [&](auto bt) {
      using B = decltype(bt);
      const A* pa = static_cast<const A*>(a);
      const B* pb = static_cast<const B*>(b);
      for (int64_t i = 0; i < n; ++i) out[i] = shl(pa[i], sa) + shl(pb[i], sb);
    });
  });
  return f;
}

void relu(const void* in, DType dtype, int64_t n, void* out) {
  with_code_type(dtype, [&](auto t) {
    using T = decltype(t);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
    // A plain loop: the compiler turns it into vpmaxs{b,w,d} at the AVX2 baseline.
    for (int64_t i = 0; i < n; ++i) dst[i] = std::max(src[i], T{0});
  });
}

void max_pool2d(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t h, int64_t w,
                const MaxPool2dParams& p, void* y) {
  const int64_t oh = p.out_h(h), ow = p.out_w(w);
  const bool two_by_two = p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 &&
                          p.stride_w == 2 && p.dilation_h == 1 && p.dilation_w == 1 &&
                          p.pad_top == 0 && p.pad_left == 0 && p.pad_bottom == 0 &&
                          p.pad_right == 0;
  with_code_type(dtype, [&](auto t) {
    using T = decltype(t);
    if (two_by_two) {  // the CNN case: no padding, every window inside the input
      for (int64_t plane = 0; plane < batch * channels; ++plane) {
        const T* src = static_cast<const T*>(x) + plane * h * w;
        T* dst = static_cast<T*>(y) + plane * oh * ow;
        T rows[256];  // the max of the two input rows, in pieces of 256 columns
        for (int64_t py = 0; py < oh; ++py) {
          const T* r0 = src + 2 * py * w;
          const T* r1 = r0 + w;
          T* d = dst + py * ow;
#if defined(__x86_64__)
          if constexpr (sizeof(T) == 1) {
            if (2 * ow >= 16 && use_avx2()) {
              max_pool_2x2_row_bytes(r0, r1, ow, d);
              continue;
            }
          }
#endif
          for (int64_t c0 = 0; c0 < 2 * ow; c0 += 256) {
            const int64_t n = std::min<int64_t>(256, 2 * ow - c0);
            for (int64_t i = 0; i < n; ++i) rows[i] = std::max(r0[c0 + i], r1[c0 + i]);
            if constexpr (sizeof(T) == 1) {  // byte codes: each pair as one 16-bit load
              for (int64_t i = 0; i < n / 2; ++i) {
                uint16_t pair;
                std::memcpy(&pair, rows + 2 * i, 2);
                d[c0 / 2 + i] = std::max(static_cast<T>(pair & 0xFF), static_cast<T>(pair >> 8));
              }
            } else {
              for (int64_t i = 0; i < n / 2; ++i) {
                d[c0 / 2 + i] = std::max(rows[2 * i], rows[2 * i + 1]);
              }
            }
          }
        }
      }
      return;
    }
    for (int64_t plane = 0; plane < batch * channels; ++plane) {
      const T* src = static_cast<const T*>(x) + plane * h * w;
      T* dst = static_cast<T*>(y) + plane * oh * ow;
      for (int64_t py = 0; py < oh; ++py) {
        const int64_t y0 = py * p.stride_h - p.pad_top;
        // Kernel rows inside the input: u in [u0, u1).
        int64_t u0 = 0, u1 = p.kernel_h;
        while (u0 < u1 && y0 + u0 * p.dilation_h < 0) ++u0;
        while (u1 > u0 && y0 + (u1 - 1) * p.dilation_h >= h) --u1;
        for (int64_t px = 0; px < ow; ++px) {
          const int64_t x0 = px * p.stride_w - p.pad_left;
          int64_t v0 = 0, v1 = p.kernel_w;
          while (v0 < v1 && x0 + v0 * p.dilation_w < 0) ++v0;
          while (v1 > v0 && x0 + (v1 - 1) * p.dilation_w >= w) --v1;
          T best = std::numeric_limits<T>::lowest();
          for (int64_t u = u0; u < u1; ++u) {
            const int64_t row = (y0 + u * p.dilation_h) * w + x0;
            for (int64_t v = v0; v < v1; ++v) best = std::max(best, src[row + v * p.dilation_w]);
          }
          dst[py * ow + px] = best;
        }
      }
    }
  });
}

}  // namespace qsearch::kernels::fixed
