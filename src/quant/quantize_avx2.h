// AVX2 building blocks of quant::quantize (fixed_point.h) on 8 float32 lanes, shared by the
// buffer conversions (quant/quantize.cc) and the integer conv's quantizing store
// (kernels/fixed/gemm_tiles_avx2.cc). Each lane equals the scalar spec bit for bit: rounding
// (ties, NaN, +-inf, the sign of zero), clamping, NaN -> code 0.
//
// Include only where AVX2 code may be generated: a TU built with AVX2 in its baseline, or after
// `#pragma GCC target("avx2")` (the functions are inline and take the TU's target).
//
//   const Quantize8 q(FixedFormat{8, 4, true});             // needs width <= 24
//   __m256i codes = q.codes<Rounding::kHalfToEven>(x);      // 8 int32 codes in [lo, hi]
#pragma once

#if defined(__x86_64__)

#include <immintrin.h>

#include <cmath>

#include "quant/fixed_point.h"

namespace qsearch::quant::avx2 {

// Rounds 8 floats to integral values with R, matching round_to_integral() lane by lane
// (NaN, +-inf and the sign of zero included).
template <Rounding R>
inline __m256 round8(__m256 v) {
  if constexpr (R == Rounding::kHalfToEven) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else if constexpr (R == Rounding::kFloor) {
    return _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  } else {
    // floor(|v| + 0.5) is wrong for 0.5 - 2^-25 (the addition rounds up); use the exact
    // remainder v - trunc(v) instead.
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 d = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign, v));
    // A blend, not t + (up & one): adding +0.0 would turn -0.0 into +0.0.
    return _mm256_blendv_ps(t, _mm256_add_ps(t, one), up);
  }
}

// torch.clamp order: NaN and -0.0 pass through.
inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  v = _mm256_blendv_ps(v, lo, _mm256_cmp_ps(v, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(v, hi, _mm256_cmp_ps(v, hi, _CMP_GT_OQ));
}

// quantize(x, f, R) on 8 lanes for a format whose codes are all exact float32 (width <= 24):
// then the float clamp equals quantize()'s integer clamp and the conversion to int32 is exact.
struct Quantize8 {
  __m256 scale, lo, hi;

  explicit Quantize8(const FixedFormat& f)
      : Quantize8(std::ldexp(1.0f, f.frac), static_cast<float>(f.min_code()),
                  static_cast<float>(f.max_code())) {}
  // From 2^frac and the code bounds as float32, precomputed (exact for width <= 24).
  Quantize8(float scale2f, float lo_code, float hi_code)
      : scale(_mm256_set1_ps(scale2f)), lo(_mm256_set1_ps(lo_code)), hi(_mm256_set1_ps(hi_code)) {}

  template <Rounding R>
  __m256i codes(__m256 x) const {
    // The clamp as max / min (half the instructions of clamp8): each returns its second operand
    // when one is NaN, so NaN stays NaN (then 0); the sign of a zero does not reach the code.
    __m256 v = _mm256_min_ps(hi, _mm256_max_ps(lo, round8<R>(_mm256_mul_ps(x, scale))));
    v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);  // NaN -> 0
    return _mm256_cvtps_epi32(v);
  }
};

}  // namespace qsearch::quant::avx2

#endif  // __x86_64__
