#include "kernels/fixed/epilogue.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "core/check.h"
#include "kernels/fixed/gemm_tiles.h"
#include "kernels/vec_math.h"
#include "quant/fixed_point.h"
#ifdef __AVX2__
#include "quant/quantize_avx2.h"
#endif

namespace qsearch::kernels::fixed {

namespace {

// S of row r, column j in a tile stored row by row, or column by column (kT, Epilogue::run_t).
template <bool kT>
inline int64_t at(const int64_t* tile, int r, int j) {
  return kT ? tile[j * 16 + r] : tile[r * 16 + j];
}

inline int64_t accumulate(const Epilogue& e, int64_t s, int64_t col) {
  return static_cast<int64_t>(static_cast<uint64_t>(s) << e.shift_) + e.bias_[col];
}

template <typename Out, bool kT>
void run_accumulator(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                     int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      out[(row0 + r) * e.ldc_m_ + (col0 + j) * e.ldc_n_] =
          static_cast<Out>(accumulate(e, at<kT>(tile, r, j), col0 + j));
    }
  }
}

// kPost: then the fused channel affine and clamp (Epilogue::post).
template <bool kT, bool kPost>
void run_float(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
               int64_t col0, void* c) {
  float* out = static_cast<float*>(c);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      // One rounding (int64 -> float32); the power-of-two scale is exact (docs/numerics.md).
      const float v = static_cast<float>(accumulate(e, at<kT>(tile, r, j), col0 + j)) * e.scale_;
      out[(row0 + r) * e.ldc_m_ + (col0 + j) * e.ldc_n_] = kPost ? e.post(v, col0 + j) : v;
    }
  }
}

// kFloat with GemmParams::post_quantize: run_float's value (and affine), then its codes
// quant::quantize(v) stored as Code, the float store and the quantize step in one.
template <typename Code>
inline Code float_codes(const Epilogue& e, float v, int64_t col) {
  if (e.post_scale_ != nullptr) v = e.post(v, col);
  return static_cast<Code>(quant::quantize(v, e.q_format_, e.q_rounding_));
}

template <typename Code, bool kT>
void run_float_codes(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                     int64_t col0, void* c) {
  Code* out = static_cast<Code*>(c);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      const float v = static_cast<float>(accumulate(e, at<kT>(tile, r, j), col0 + j)) * e.scale_;
      out[(row0 + r) * e.ldc_m_ + (col0 + j) * e.ldc_n_] = float_codes<Code>(e, v, col0 + j);
    }
  }
}

// run_float_codes on int32 sums stored column by column (as run_exact_t32<float>).
template <typename Code>
void run_float_codes_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                         int64_t col0, void* c) {
  Code* out = static_cast<Code*>(c);
  for (int j = 0; j < cols; ++j) {
    const uint32_t bias = static_cast<uint32_t>(e.bias_[col0 + j]);
    const int32_t* t = tile + j * 16;
    Code* o = out + row0 + (col0 + j) * e.ldc_n_;
    for (int r = 0; r < rows; ++r) {
      const int32_t acc = static_cast<int32_t>((static_cast<uint32_t>(t[r]) << e.shift_) + bias);
      o[r] = float_codes<Code>(e, static_cast<float>(acc) * e.scale_, col0 + j);
    }
  }
}

#ifdef __AVX2__
// run_float<false, false> for a row-major output (ldc_n == 1), four columns at a time: int64 ->
// double is exact below 2^51 in magnitude (the sum is added into the mantissa of 2^52 + 2^51),
// and double -> float rounds once, so each value is the same single rounding as the scalar
// static_cast<float>(int64); a vector holding a larger sum falls back to the scalar loop.
void run_float_rows(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                    int64_t col0, void* c) {
  float* out = static_cast<float*>(c);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_);
  const __m256i magic_i = _mm256_set1_epi64x(0x4338000000000000);  // bits of 2^52 + 2^51
  const __m256d magic_d = _mm256_set1_pd(6755399441055744.0);
  const __m256i hi = _mm256_set1_epi64x((int64_t{1} << 51) - 1);
  const __m256i lo = _mm256_set1_epi64x(-(int64_t{1} << 51));
  const __m128 scale = _mm_set1_ps(e.scale_);
  for (int r = 0; r < rows; ++r) {
    const int64_t* t = tile + r * 16;
    float* o = out + (row0 + r) * e.ldc_m_ + col0;
    int j = 0;
    for (; j + 4 <= cols; j += 4) {
      const __m256i v = _mm256_add_epi64(
          _mm256_sll_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + j)), shift),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.bias_ + col0 + j)));
      const __m256i outside = _mm256_or_si256(_mm256_cmpgt_epi64(v, hi), _mm256_cmpgt_epi64(lo, v));
      if (_mm256_testz_si256(outside, outside)) {
        const __m256d d = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(v, magic_i)), magic_d);
        _mm_storeu_ps(o + j, _mm_mul_ps(_mm256_cvtpd_ps(d), scale));
      } else {
        for (int q = j; q < j + 4; ++q) {
          o[q] = static_cast<float>(accumulate(e, t[q], col0 + q)) * e.scale_;
        }
      }
    }
    for (; j < cols; ++j) o[j] = static_cast<float>(accumulate(e, t[j], col0 + j)) * e.scale_;
  }
}
#endif

// acc * 2^-s rounded with R, for 1 <= s <= 62 (no overflow in int64).
template <quant::Rounding R>
inline int64_t shift_round(int64_t v, int s) {
  const int64_t q = v >> s;
  if constexpr (R == quant::Rounding::kFloor) {
    return q;
  } else {
    const int64_t rem = v & ((int64_t{1} << s) - 1);
    const int64_t half = int64_t{1} << (s - 1);
    const bool tie_up = R == quant::Rounding::kHalfToEven ? (q & 1) != 0 : v >= 0;
    return q + ((rem > half) | ((rem == half) & tie_up));
  }
}

template <typename Out, quant::Rounding R, bool kT>
void run_requantize(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                    int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  for (int r = 0; r < rows; ++r) {
    for (int j = 0; j < cols; ++j) {
      const int64_t acc = accumulate(e, at<kT>(tile, r, j), col0 + j);
      int64_t q = e.fast_shift_ ? shift_round<R>(acc, e.rshift_)
                                : quant::rounding_shift_right(acc, e.rshift_, R);
      q = std::clamp(q, e.lo_, e.hi_);
      out[(row0 + r) * e.ldc_m_ + (col0 + j) * e.ldc_n_] = static_cast<Out>(q);
    }
  }
}

// The common case, written to vectorise: the accumulator fits int32 (AccType::kInt32, so the
// shifted sum plus the bias does too), the rounding shift is 1..30, and the output is contiguous
// along rows (GEMM, ldc_n == 1) or along columns (conv's NCHW, ldc_m == 1). Same values as
// run_requantize: int32 lanes hold every intermediate exactly.
template <quant::Rounding R>
inline int32_t shift_round32(int32_t v, int s) {
  const int32_t q = v >> s;
  if constexpr (R == quant::Rounding::kFloor) {
    return q;
  } else {
    const int32_t rem = v & ((int32_t{1} << s) - 1);
    const int32_t half = int32_t{1} << (s - 1);
    const int32_t tie_up = R == quant::Rounding::kHalfToEven ? (q & 1) : (v >= 0);
    return q + ((rem > half) | ((rem == half) & tie_up));
  }
}

template <typename Out, quant::Rounding R, bool kRowMajor, bool kT>
void run_requantize32(const Epilogue& e, const int64_t* tile, int rows, int cols, int64_t row0,
                      int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const int shift = e.shift_, s = e.rshift_;
  const int32_t lo = static_cast<int32_t>(e.lo_), hi = static_cast<int32_t>(e.hi_);
  const int64_t* bias = e.bias_ + col0;
  auto one = [&](int r, int j) {
    const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(at<kT>(tile, r, j)) << shift) +
                        static_cast<int32_t>(bias[j]);
    return static_cast<Out>(std::clamp(shift_round32<R>(acc, s), lo, hi));
  };
  if constexpr (kRowMajor) {
    for (int r = 0; r < rows; ++r) {
      Out* o = out + (row0 + r) * e.ldc_m_ + col0;
      for (int j = 0; j < cols; ++j) o[j] = one(r, j);
    }
  } else {
    for (int j = 0; j < cols; ++j) {
      Out* o = out + row0 + (col0 + j) * e.ldc_n_;
      for (int r = 0; r < rows; ++r) o[r] = one(r, j);
    }
  }
}

using Fn = void (*)(const Epilogue&, const int64_t*, int, int, int64_t, int64_t, void*);
using Fn32 = void (*)(const Epilogue&, const int32_t*, int, int, int64_t, int64_t, void*);

// Epilogue::run_t32 in general: widen the int32 sums (exact) and run run_t.
void run_t32_widen(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                   int64_t col0, void* c) {
  alignas(64) int64_t wide[16 * 16];
  for (int j = 0; j < cols; ++j) {
    for (int r = 0; r < rows; ++r) wide[j * 16 + r] = tile[j * 16 + r];
  }
  e.run_t(wide, rows, cols, row0, col0, c);
}

// run_requantize32's column-major case on int32 sums stored column by column (conv2d's pixel
// tiles): each column is `rows` contiguous sums and `rows` contiguous outputs. Reads 16 sums per
// column (Epilogue::run_t32).
template <typename Out, quant::Rounding R>
void run_requantize32_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                          int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const int shift = e.shift_, s = e.rshift_;
  const int32_t lo = static_cast<int32_t>(e.lo_), hi = static_cast<int32_t>(e.hi_);
  for (int j = 0; j < cols; ++j) {
    const int32_t bias = static_cast<int32_t>(e.bias_[col0 + j]);
    const int32_t* t = tile + j * 16;
    Out* o = out + row0 + (col0 + j) * e.ldc_n_;
    // All 16 lanes with fixed trip counts, so that the compiler vectorises; only `rows` are
    // stored. Lanes past `rows` may hold anything: unsigned arithmetic, no overflow.
    Out v[16];
    for (int r = 0; r < 16; ++r) {
      const int32_t acc = static_cast<int32_t>((static_cast<uint32_t>(t[r]) << shift) +
                                               static_cast<uint32_t>(bias));
      v[r] = static_cast<Out>(std::clamp(shift_round32<R>(acc, s), lo, hi));
    }
    if (rows == 16) {
      std::memcpy(o, v, sizeof(v));
    } else {
      for (int r = 0; r < rows; ++r) o[r] = v[r];
    }
  }
}

// kAccumulator / kFloat on int32 sums stored column by column (AccType::kInt32: the shifted sum
// plus the bias fits int32, so the int32 arithmetic is exact; unsigned so that lanes past `rows`,
// which may hold anything, cannot overflow). Out = int32 / int64 (the accumulator) or float.
template <typename Out, bool kPost = false>
void run_exact_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                   int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const int shift = e.shift_;
  for (int j = 0; j < cols; ++j) {
    const uint32_t bias = static_cast<uint32_t>(e.bias_[col0 + j]);
    const int32_t* t = tile + j * 16;
    Out* o = out + row0 + (col0 + j) * e.ldc_n_;
    Out v[16];
    for (int r = 0; r < 16; ++r) {
      const int32_t acc = static_cast<int32_t>((static_cast<uint32_t>(t[r]) << shift) + bias);
      if constexpr (std::is_same_v<Out, float>) {
        // One rounding (int32 -> float32); the power-of-two scale is exact, as run_float.
        v[r] = static_cast<float>(acc) * e.scale_;
        if constexpr (kPost) v[r] = e.post(v[r], col0 + j);
      } else {
        v[r] = static_cast<Out>(acc);
      }
    }
    if (rows == 16) {
      std::memcpy(o, v, sizeof(v));
    } else {
      for (int r = 0; r < rows; ++r) o[r] = v[r];
    }
  }
}

template <typename Out>
Fn32 requantize32_t32_fn(quant::Rounding r) {
  return quant::with_rounding(r, [](auto R) { return Fn32(&run_requantize32_t32<Out, R.value>); });
}

template <typename Out, bool kT>
Fn requantize32_fn(quant::Rounding r, bool row_major) {
  return quant::with_rounding(r, [row_major](auto R) {
    return row_major ? Fn(&run_requantize32<Out, R.value, true, kT>)
                     : Fn(&run_requantize32<Out, R.value, false, kT>);
  });
}

template <typename Out, bool kT>
Fn requantize_fn(quant::Rounding r) {
  return quant::with_rounding(r, [](auto R) { return Fn(&run_requantize<Out, R.value, kT>); });
}

// The epilogue function for output dtype `Out` (kRequantize), tiles stored as kT says.
template <typename Out, bool kT>
Fn requantize_out_fn(const Epilogue& e, bool fast32, bool row_major) {
  return fast32 ? requantize32_fn<Out, kT>(e.rounding_, row_major)
                : requantize_fn<Out, kT>(e.rounding_);
}

template <bool kT>
Fn requantize_dtype_fn(const Epilogue& e, DType out, bool fast32, bool row_major) {
  switch (out) {
    case DType::kInt8:
      return requantize_out_fn<int8_t, kT>(e, fast32, row_major);
    case DType::kUInt8:
      return requantize_out_fn<uint8_t, kT>(e, fast32, row_major);
    case DType::kInt16:
      return requantize_out_fn<int16_t, kT>(e, fast32, row_major);
    case DType::kInt32:
      return requantize_out_fn<int32_t, kT>(e, fast32, row_major);
    default:  // unsigned 32-bit codes (int64 storage): the general path
      return requantize_fn<int64_t, kT>(e.rounding_);
  }
}

// Whether the fused affine of n columns from post_scale_ can take the accumulator's scale 2^-F
// into its scales: every scale and shift finite, and scale * 2^-F exact (checked by scaling back:
// exact unless the product lost bits or overflowed), with -96 <= F <= 126 so that float(acc) *
// 2^-F is exact for every int32 acc. Then fma(float(acc), scale * 2^-F, shift) is
// fma(float(acc) * 2^-F, scale, shift) bit for bit, one multiply fewer.
bool scale_folds(const Epilogue& e, int64_t n) {
  const int f = -std::ilogb(e.scale_);
  bool folds = f >= -96 && f <= 126;
  const float back = std::ldexp(1.0f, f);
  for (int64_t c = 0; c < n && folds; ++c) {
    const float s = e.post_scale_[c];
    folds = std::isfinite(s) && std::isfinite(e.post_shift_[c]) && (s * e.scale_) * back == s;
  }
  return folds;
}

// Whether the fused float clamp is [-inf, inf] (it changes no value, NaN included).
bool unclamped(const Epilogue& e) {
  const float inf = std::numeric_limits<float>::infinity();
  return e.post_lo_ == -inf && e.post_hi_ == inf;
}

// Sets e.q_store_ (and the merged clamp's bounds) for e's fields: kFloat with post_quantize, n
// columns from post_scale_.
void set_quantize_store(Epilogue& e, int64_t n) {
  e.q_store_ = QuantizeStore::kPost;
  if (e.post_scale_ == nullptr) {
    e.q_store_ = QuantizeStore::kPlain;
    return;
  }
  if (e.silu_) {
    e.q_store_ =
        unclamped(e) && scale_folds(e, n) ? QuantizeStore::kSiluUnclamped : QuantizeStore::kSilu;
    return;
  }
  // The merged clamp needs an ordered float clamp and a non-empty intersection with the code
  // range (else every code is one bound, which kPost gives).
  const float lo = e.post_lo_, hi = e.post_hi_;
  if (!(lo <= hi)) return;
  const float glo = quant::round_to_integral(lo * e.q_scale_, e.q_rounding_);
  const float ghi = quant::round_to_integral(hi * e.q_scale_, e.q_rounding_);
  const float mlo = std::max(glo, e.q_lo_), mhi = std::min(ghi, e.q_hi_);
  if (!(mlo <= mhi)) return;
  e.q_clamp_lo_ = mlo;
  e.q_clamp_hi_ = mhi;
  // kMergedFinite: the scale folds, and no NaN can arise (every scale and shift finite).
  e.q_store_ = scale_folds(e, n) ? QuantizeStore::kMergedFinite : QuantizeStore::kMerged;
}

}  // namespace

float Epilogue::silu(float v) {
  // One lane of the vector sigmoid the Sigmoid step runs (vmath::map_f32), or its scalar
  // fallback in a build without AVX2; then the Mul's one rounding.
  float s = 0.0f;
  vmath::map_f32(vmath::Fn::kSigmoid, &v, &s, 1);
  return v * s;
}

Epilogue Epilogue::channel_tile(int64_t bias, int64_t post_col, ColumnLanes* lanes) const {
  QSEARCH_DCHECK(ldc_m_ == 1);
  Epilogue e = *this;
  std::fill(lanes->bias, lanes->bias + 16, bias);
  e.bias_ = lanes->bias;
  if (post_scale_ != nullptr) {
    std::fill(lanes->post_scale, lanes->post_scale + 16, post_scale_[post_col]);
    std::fill(lanes->post_shift, lanes->post_shift + 16, post_shift_[post_col]);
    e.post_scale_ = lanes->post_scale;
    e.post_shift_ = lanes->post_shift;
  }
  e.ldc_n_ = 16;
  return e;
}

Epilogue Epilogue::column_tile(int64_t col, ColumnLanes* lanes) const {
  return channel_tile(bias_[col], col, lanes);
}

Epilogue::Epilogue(const PackedWeights& w, const GemmParams& p, int64_t channel0, int64_t columns) {
  bias_ = w.bias_aligned().data();
  fn_t32_ = &run_t32_widen;
  const bool post = p.output == GemmOutput::kFloat && p.post_scale != nullptr;
  shift_ = std::min(w.acc_shift(), 63);
  ldc_m_ = p.ldc_m == 0 ? w.n() : p.ldc_m;
  ldc_n_ = p.ldc_n;
  switch (p.output) {
    case GemmOutput::kAccumulator:
      fn_ = p.acc == AccType::kInt32 ? &run_accumulator<int32_t, false>
                                     : &run_accumulator<int64_t, false>;
      fn_t_ = p.acc == AccType::kInt32 ? &run_accumulator<int32_t, true>
                                       : &run_accumulator<int64_t, true>;
      if (p.acc == AccType::kInt32 && ldc_m_ == 1 && shift_ <= 31) {
        fn_t32_ = &run_exact_t32<int32_t>;
      }
      break;
    case GemmOutput::kFloat:
      scale_ = std::ldexp(1.0f, -w.acc_frac());
      if (post) {
        post_scale_ = p.post_scale + channel0;
        post_shift_ = p.post_shift + channel0;
        post_lo_ = p.post_lo;
        post_hi_ = p.post_hi;
        silu_ = p.post_silu;
      }
      if (p.post_quantize) {
        q_format_ = p.post_format;
        q_rounding_ = p.post_rounding;
        q_scale_ = std::ldexp(1.0f, p.post_format.frac);
        q_lo_ = static_cast<float>(p.post_format.min_code());
        q_hi_ = static_cast<float>(p.post_format.max_code());
        set_quantize_store(*this, columns >= 0 ? columns : w.n());
        const bool t32 = p.acc == AccType::kInt32 && ldc_m_ == 1 && shift_ <= 31;
        auto set = [&](auto code) {
          using Code = decltype(code);
          fn_ = &run_float_codes<Code, false>;
          fn_t_ = &run_float_codes<Code, true>;
          if (t32) fn_t32_ = &run_float_codes_t32<Code>;
        };
        switch (quant::storage_dtype(p.post_format)) {
          case DType::kInt8:
            set(int8_t{});
            break;
          case DType::kUInt8:
            set(uint8_t{});
            break;
          case DType::kInt16:
            set(int16_t{});
            break;
          case DType::kInt32:
            set(int32_t{});
            break;
          default:
            set(int64_t{});
            break;
        }
        break;
      }
      fn_ = post ? &run_float<false, true> : &run_float<false, false>;
#ifdef __AVX2__
      if (ldc_n_ == 1 && !post) fn_ = &run_float_rows;
#endif
      fn_t_ = post ? &run_float<true, true> : &run_float<true, false>;
      if (p.acc == AccType::kInt32 && ldc_m_ == 1 && shift_ <= 31) {
        fn_t32_ = post ? &run_exact_t32<float, true> : &run_exact_t32<float>;
      }
      break;
    case GemmOutput::kRequantize: {
      rshift_ = w.acc_frac() - p.out_format.frac;
      fast_shift_ = rshift_ >= 1 && rshift_ <= 62;
      lo_ = p.relu ? std::max<int64_t>(0, p.out_format.min_code()) : p.out_format.min_code();
      hi_ = p.out_format.max_code();
      lo_ = std::min(std::max(lo_, p.clamp_lo), hi_);  // a fused Clip (GemmParams)
      hi_ = std::max(std::min(hi_, p.clamp_hi), lo_);
      rounding_ = p.rounding;
      const DType out = quant::storage_dtype(p.out_format);
      const bool row_major = ldc_n_ == 1;
      const bool fast32 = p.acc == AccType::kInt32 && rshift_ >= 1 && rshift_ <= 30 &&
                          shift_ <= 31 && (ldc_n_ == 1 || ldc_m_ == 1) && out != DType::kInt64;
      fn_ = requantize_dtype_fn<false>(*this, out, fast32, row_major);
      fn_t_ = requantize_dtype_fn<true>(*this, out, fast32, row_major);
      if (fast32 && ldc_m_ == 1) {
        switch (out) {
          case DType::kInt8:
            fn_t32_ = requantize32_t32_fn<int8_t>(p.rounding);
            break;
          case DType::kUInt8:
            fn_t32_ = requantize32_t32_fn<uint8_t>(p.rounding);
            break;
          case DType::kInt16:
            fn_t32_ = requantize32_t32_fn<int16_t>(p.rounding);
            break;
          case DType::kInt32:
            fn_t32_ = requantize32_t32_fn<int32_t>(p.rounding);
            break;
          default:
            break;
        }
      }
#if defined(__x86_64__)
      if (fast32 && row_major && w.isa() >= Isa::kAvx512Bw) {
        if (auto f = detail::requantize32_avx512(out, p.rounding)) fn_ = f;
      }
#endif
      break;
    }
  }
#if defined(__x86_64__)
    // The pixel-major conv's int32 column stores (run_t32) by hand in AVX2 where the portable loops
    // above apply (same values; the compiler vectorised them 4 lanes wide).
    // The fused affine (post) needs FMA for its vector fma (the scalar std::fma rounds the same).
    // The fused SiLU's vector sigmoid exists where the build has AVX2 (kernels/vec_math.h).
#ifdef __AVX2__
  constexpr bool kVectorSilu = true;
#else
  constexpr bool kVectorSilu = false;
#endif
  if (fn_t32_ != &run_t32_widen && w.isa() >= Isa::kAvx2 &&
      (!post || __builtin_cpu_supports("fma")) && (!silu_ || kVectorSilu)) {
    const bool codes = p.output == GemmOutput::kFloat && p.post_quantize;
    const detail::EpilogueFn32 f =
        p.output == GemmOutput::kRequantize
            ? detail::requantize32_t32_avx2(quant::storage_dtype(p.out_format), p.rounding)
        : codes ? detail::quantize_t32_avx2(p.post_format, p.post_rounding, q_store_)
                : detail::exact_t32_avx2(
                      p.output == GemmOutput::kFloat ? DType::kFloat32 : DType::kInt32, post);
    if (f != nullptr) {
      fn_t32_ = f;
      store_isa_ = Isa::kAvx2;
    }
    if (f != nullptr && p.output == GemmOutput::kRequantize) {
      fn_runs_ = detail::requantize32_runs_avx2(quant::storage_dtype(p.out_format), p.rounding);
    } else if (f != nullptr && codes) {
      fn_runs_ = detail::quantize_runs_avx2(p.post_format, p.post_rounding, q_store_);
    } else if (f != nullptr) {
      fn_runs_ = detail::exact_runs_avx2(
          p.output == GemmOutput::kFloat ? DType::kFloat32 : DType::kInt32, post);
    }
    // The same stores on 512-bit vectors (epilogue_avx512.cc: the same values, one vector per
    // column) for weights packed for AVX-512 (so the CPU has AVX-512F/BW) on a CPU with VL.
    if (f != nullptr && w.isa() >= Isa::kAvx512Bw && __builtin_cpu_supports("avx512vl")) {
      detail::EpilogueFn32 f16 = nullptr;
      detail::EpilogueFnRuns r16 = nullptr;
      if (p.output == GemmOutput::kRequantize) {
        f16 = detail::requantize32_t32_avx512(quant::storage_dtype(p.out_format), p.rounding);
        r16 = detail::requantize32_runs_avx512(quant::storage_dtype(p.out_format), p.rounding);
      } else if (codes) {
        f16 = detail::quantize_t32_avx512(p.post_format, p.post_rounding, q_store_);
        r16 = detail::quantize_runs_avx512(p.post_format, p.post_rounding, q_store_);
      } else {
        const DType out = p.output == GemmOutput::kFloat ? DType::kFloat32 : DType::kInt32;
        // The SiLU's affine without its [-inf, inf] clamp and with the scale folded in.
        const bool fast =
            silu_ && unclamped(*this) && scale_folds(*this, columns >= 0 ? columns : w.n());
        f16 = detail::exact_t32_avx512(out, post, silu_, fast);
        r16 = detail::exact_runs_avx512(out, post, silu_, fast);
      }
      if (f16 != nullptr && r16 != nullptr) {
        fn_t32_ = f16;
        fn_runs_ = r16;
        store_isa_ = Isa::kAvx512Bw;
      }
    }
  }
#endif
}

namespace {

#ifdef __AVX2__
// ChannelLanes::run for float values (Code = float) or their codes: kPost the fused affine and
// clamp, kSilu then the SiLU; exactly the operations of gemm_tiles_avx2.cc's exact_t32 /
// quantize_t32 (post8), lane by lane.
template <typename Code, quant::Rounding R, bool kPost, bool kSilu>
void lanes_store(const ChannelLanes& l, const int32_t* acc, void* out, int64_t stride) {
  const __m128i shift = _mm_cvtsi32_si128(l.shift_);
  const __m256 scale = _mm256_set1_ps(l.scale_);
  __m256 v[2];
  for (int h = 0; h < 2; ++h) {
    const __m256i a = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 8 * h)), shift),
        _mm256_load_si256(reinterpret_cast<const __m256i*>(l.bias_ + 8 * h)));
    v[h] = _mm256_mul_ps(_mm256_cvtepi32_ps(a), scale);
    if constexpr (kPost) {
      const __m256 u = _mm256_fmadd_ps(v[h], _mm256_load_ps(l.post_scale_ + 8 * h),
                                       _mm256_load_ps(l.post_shift_ + 8 * h));
      v[h] =
          _mm256_min_ps(_mm256_set1_ps(l.post_hi_), _mm256_max_ps(_mm256_set1_ps(l.post_lo_), u));
      if constexpr (kSilu) v[h] = _mm256_mul_ps(v[h], kernels::detail::sigmoid8(v[h]));
    }
  }
  Code* o = static_cast<Code*>(out);
  if constexpr (std::is_same_v<Code, float>) {
    alignas(32) float buf[16];
    _mm256_store_ps(buf, v[0]);
    _mm256_store_ps(buf + 8, v[1]);
    for (int c = 0; c < l.nc_; ++c) o[c * stride] = buf[c];
  } else {
    const quant::avx2::Quantize8 q(l.q_scale_, l.q_lo_, l.q_hi_);
    alignas(32) int32_t buf[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf), q.codes<R>(v[0]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 8), q.codes<R>(v[1]));
    for (int c = 0; c < l.nc_; ++c) o[c * stride] = static_cast<Code>(buf[c]);
  }
}

using LanesFn = void (*)(const ChannelLanes&, const int32_t*, void*, int64_t);

template <typename Code, quant::Rounding R>
LanesFn lanes_fn(bool post, bool silu) {
  using Fn = LanesFn;
  if (!post) return Fn(&lanes_store<Code, R, false, false>);
  return silu ? Fn(&lanes_store<Code, R, true, true>) : Fn(&lanes_store<Code, R, true, false>);
}
#endif

}  // namespace

ChannelLanes::ChannelLanes(const PackedWeights* groups, int nc, const GemmParams& p, int64_t c0) {
#ifdef __AVX2__
  if (p.output != GemmOutput::kFloat || p.acc != AccType::kInt32 || nc < 1 || nc > 16 ||
      (p.post_quantize && p.post_format.width > 24) || groups[0].isa() < Isa::kAvx2 ||
      !__builtin_cpu_supports("fma")) {
    return;
  }
  // The fields each channel's Epilogue would hold (its constructor, kFloat), made directly: this
  // runs once per work item of 16 channels.
  const int shift = groups[0].acc_shift(), frac = groups[0].acc_frac();
  if (shift > 31) return;
  for (int c = 0; c < nc; ++c) {
    const PackedWeights& w = groups[c];
    if (w.n() != 1 || w.acc_shift() != shift || w.acc_frac() != frac) return;
    bias_[c] = static_cast<int32_t>(w.bias_aligned()[0]);
    if (p.post_scale != nullptr) {
      post_scale_[c] = p.post_scale[c0 + c];
      post_shift_[c] = p.post_shift[c0 + c];
    }
  }
  shift_ = shift;
  scale_ = std::ldexp(1.0f, -frac);
  post_lo_ = p.post_lo;
  post_hi_ = p.post_hi;
  if (p.post_quantize) {
    q_scale_ = std::ldexp(1.0f, p.post_format.frac);
    q_lo_ = static_cast<float>(p.post_format.min_code());
    q_hi_ = static_cast<float>(p.post_format.max_code());
  }
  nc_ = nc;
  const bool post = p.post_scale != nullptr, silu = post && p.post_silu;
  // One 512-bit vector for the 16 channels (epilogue_avx512.cc, the same values).
  if (groups[0].isa() >= Isa::kAvx512Bw && __builtin_cpu_supports("avx512vl")) {
    const DType out = p.post_quantize ? quant::storage_dtype(p.post_format) : DType::kFloat32;
    if (auto f = detail::lanes_store_avx512(out, p.post_rounding, post, silu)) {
      fn_ = f;
      store_isa_ = Isa::kAvx512Bw;
      return;
    }
  }
  if (!p.post_quantize) {
    fn_ = lanes_fn<float, quant::Rounding::kHalfToEven>(post, silu);
    return;
  }
  quant::with_rounding(p.post_rounding, [&](auto R) {
    switch (quant::storage_dtype(p.post_format)) {
      case DType::kInt8:
        fn_ = lanes_fn<int8_t, R.value>(post, silu);
        break;
      case DType::kUInt8:
        fn_ = lanes_fn<uint8_t, R.value>(post, silu);
        break;
      case DType::kInt16:
        fn_ = lanes_fn<int16_t, R.value>(post, silu);
        break;
      case DType::kInt32:
        fn_ = lanes_fn<int32_t, R.value>(post, silu);
        break;
      default:
        break;
    }
    return 0;
  });
#else
  (void)groups, (void)nc, (void)p, (void)c0;
#endif
}

}  // namespace qsearch::kernels::fixed
