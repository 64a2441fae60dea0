#include "quant/quantize.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/check.h"

#ifdef __AVX2__
#include <immintrin.h>

#include "quant/quantize_avx2.h"
#endif

namespace qsearch::quant {

namespace {

template <typename F>
void dispatch_int(DType t, F&& f) {
  switch (t) {
    case DType::kInt8:
      f(int8_t{});
      return;
    case DType::kUInt8:
      f(uint8_t{});
      return;
    case DType::kInt16:
      f(int16_t{});
      return;
    case DType::kInt32:
      f(int32_t{});
      return;
    case DType::kInt64:
      f(int64_t{});
      return;
    case DType::kFloat32:
    case DType::kFloat64:
      break;
  }
  QSEARCH_CHECK(false && "integer dtype expected");
}

#ifdef __AVX2__
// Stores 8 int32 lanes whose values already fit Code (the clamp above guarantees it), narrowing
// with packs: saturation never triggers, so this is a plain conversion.
template <typename Code>
inline void store8(Code* out, __m256i c) {
  if constexpr (sizeof(Code) == 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), c);
  } else if constexpr (sizeof(Code) == 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(c)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(c, 1)));
  } else {
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    if constexpr (sizeof(Code) == 2) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), w16);
    } else if constexpr (std::is_same_v<Code, uint8_t>) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w16, w16));
    } else {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packs_epi16(w16, w16));
    }
  }
}
#endif

template <typename Code, Rounding R>
void quantize_typed(std::span<const float> x, const FixedFormat& f, Code* out) {
  const int64_t n = static_cast<int64_t>(x.size());
  int64_t i = 0;
#ifdef __AVX2__
  // Vector path only where every code is an exact float32 (|code| <= 2^24), so the float clamp
  // equals the integer clamp and the conversion to int32 is exact (quantize_avx2.h).
  if (f.width <= 24) {
    const avx2::Quantize8 q(f);
    for (; i + 8 <= n; i += 8) store8(out + i, q.codes<R>(_mm256_loadu_ps(x.data() + i)));
  }
#endif
  for (; i < n; ++i) out[i] = static_cast<Code>(quantize(x[i], f, R));
}

template <typename Code>
void dequantize_typed(const Code* c, int64_t n, float inv_scale, float* out) {
  int64_t i = 0;
#ifdef __AVX2__
  // int32 -> float32 rounds to nearest even as static_cast<float> does (exact for |code| <= 2^24),
  // then the same exact power-of-two product. int64 codes (unsigned 32-bit formats) stay scalar.
  if constexpr (sizeof(Code) <= 4) {
    const __m256 s = _mm256_set1_ps(inv_scale);
    for (; i + 8 <= n; i += 8) {
      __m256i v;
      if constexpr (sizeof(Code) == 4) {
        v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + i));
      } else if constexpr (sizeof(Code) == 2) {
        v = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i)));
      } else if constexpr (std::is_same_v<Code, uint8_t>) {
        v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + i)));
      } else {
        v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + i)));
      }
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
    }
  }
#endif
  for (; i < n; ++i) out[i] = static_cast<float>(c[i]) * inv_scale;
}

}  // namespace

int64_t load_code(const void* p, DType t, int64_t i) {
  int64_t v = 0;
  dispatch_int(t, [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<const T*>(p)[i];
  });
  return v;
}

void store_code(void* p, DType t, int64_t i, int64_t v) {
  dispatch_int(t, [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(p)[i] = static_cast<T>(v);
  });
}

void quantize(std::span<const float> x, const FixedFormat& f, Rounding r, void* codes,
              DType code_dtype) {
  QSEARCH_CHECK(dtype_holds(code_dtype, f));
  dispatch_int(code_dtype, [&](auto tag) {
    using T = decltype(tag);
    with_rounding(r, [&](auto R) { quantize_typed<T, R.value>(x, f, static_cast<T*>(codes)); });
  });
}

Tensor quantize(const Tensor& x, const FixedFormat& f, Rounding r) {
  QSEARCH_CHECK(x.dtype() == DType::kFloat32);
  Tensor out(x.shape(), storage_dtype(f));
  quantize(x.span<float>(), f, r, out.raw(), out.dtype());
  return out;
}

void dequantize(const void* codes, DType code_dtype, int64_t n, int frac, float* out) {
  // Multiplying by the exact power of two 2^-frac is the same as ldexp for |frac| <= 62.
  const float inv_scale = std::ldexp(1.0f, -frac);
  dispatch_int(code_dtype, [&](auto tag) {
    using T = decltype(tag);
    dequantize_typed(static_cast<const T*>(codes), n, inv_scale, out);
  });
}

Tensor dequantize(const Tensor& codes, int frac) {
  Tensor out(codes.shape(), DType::kFloat32);
  dequantize(codes.raw(), codes.dtype(), codes.numel(), frac, out.data<float>());
  return out;
}

void fake_quantize(std::span<const float> x, const FixedFormat& f, Rounding r,
                   std::span<float> out) {
  QSEARCH_CHECK(out.size() == x.size());
  const int64_t n = static_cast<int64_t>(x.size());
  int64_t i = 0;
#ifdef __AVX2__
  const __m256 scale = _mm256_set1_ps(std::ldexp(1.0f, f.frac));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(f.min_code()));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(f.max_code()));
  with_rounding(r, [&](auto R) {
    for (; i + 8 <= n; i += 8) {
      const __m256 v = avx2::round8<R.value>(_mm256_mul_ps(_mm256_loadu_ps(x.data() + i), scale));
      _mm256_storeu_ps(out.data() + i, _mm256_div_ps(avx2::clamp8(v, lo, hi), scale));
    }
  });
#endif
  for (; i < n; ++i) out[i] = fake_quantize(x[i], f, r);
}

Tensor fake_quantize(const Tensor& x, const FixedFormat& f, Rounding r) {
  QSEARCH_CHECK(x.dtype() == DType::kFloat32);
  Tensor out(x.shape(), DType::kFloat32);
  fake_quantize(x.span<float>(), f, r, out.span<float>());
  return out;
}

void requantize(const void* in, DType in_dtype, int64_t n, int from_frac, const FixedFormat& to,
                Rounding r, void* out, DType out_dtype) {
  QSEARCH_CHECK(dtype_holds(out_dtype, to));
  dispatch_int(in_dtype, [&](auto in_tag) {
    using I = decltype(in_tag);
    dispatch_int(out_dtype, [&](auto out_tag) {
      using O = decltype(out_tag);
      const I* src = static_cast<const I*>(in);
      O* dst = static_cast<O*>(out);
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<O>(requantize(src[i], from_frac, to, r));
    });
  });
}

Tensor requantize(const Tensor& codes, int from_frac, const FixedFormat& to, Rounding r) {
  Tensor out(codes.shape(), storage_dtype(to));
  requantize(codes.raw(), codes.dtype(), codes.numel(), from_frac, to, r, out.raw(), out.dtype());
  return out;
}

}  // namespace qsearch::quant
