// Internal to kernels/fixed: the AVX-512 pieces of the code stores (epilogue_avx512.cc,
// eltwise.cc): masked stores of 16 int32 lanes as 1-, 2- or 4-byte codes, quant::quantize on 16
// lanes, and the codes of the fused SiLU at about 0.7x the exact SiLU's cost.
//
// silu_codes16:
// The exact codes are round_R(fl(fl(x * sigmoid16(x)) * 2^F)): the AVX2 stores' (sigmoid8, bit for
// bit; kernels/vec_math.h). silu_codes16 first takes a cheaper SiLU s: e^-x by a degree-4 minimax
// polynomial on the reduced argument and an exact scalef, 1 / (1 + e^-x) by rcp14 and one Newton
// step. It rounds s 2^F (1 - eps) and s 2^F (1 + eps). Rounding is non-decreasing, so where the
// two codes agree, every value between them has that code, and so has the exact value, which
// lies between them (below). Where they differ (a value within about eps |y| of a rounding
// boundary: a fraction 2 eps |y| of the lanes, 1e-3 at y = 30) or either is NaN, the vector
// takes the exact SiLU instead. So every stored code is the exact form's.
//
// The bound. Relative to the true y = x sigmoid(x) 2^F, for -88.7 <= x:
//   e^-x = 2^n p(t), n = round(-x log2 e), t = x + n ln2_f by one FMA (|t| <= 0.3467; ln2_f's
//     error times |n| <= 128: 2.5e-7); p: e^-t's relative minimax polynomial of degree 4 on
//     |t| <= 0.3467 with p(0) = 1 (Remez in double, coefficients rounded to float), whose four
//     FMAs in float are within 3.7e-6 of e^-t there (checked on 4M points; the degree-5 Taylor
//     polynomial it replaced, one FMA more, 3.3e-6); scalef exact (no overflow below e^88.7 <
//     FLT_MAX).
//   1 / (1 + E): E's error scaled by E / (1 + E) <= 1; the sum's rounding 6e-8; rcp14's 2^-14
//     error squared by the Newton step, 3.7e-9, and its two roundings 1.2e-7.
//   x * d and the products with 2^F (1 +- eps): 6e-8 each.
// In all <= 4.3e-6; the exact value's own error (sigmoid16's 2.5 ulp and two roundings) <=
// 4.2e-7; eps = 1.6e-5 is 3.4x their sum. Below -88.7, e^-x overflows: 1 + E = inf, the Newton step
// makes 0 * inf = NaN, and the lane takes the exact form (as for x = +-inf or NaN: t is NaN).
// Where the SiLU is subnormal (|x| < 2^-125) or d is (x < -87.3) the relative bound does not
// hold. For |x| < 2^-25, t = x and p(t) = 1 exactly (p(0) = 1), so 1 + e^-x = 2, d = 0.5 exactly,
// and s = x / 2 is the exact form's product bit for bit (sigmoid16 is 0.5 there), x = +-2^-149
// included, where it rounds to +-0 and floor's code follows the zero's sign (a p with p(0) = 1 -
// 7e-7 missed that one lane). Below -87.3 both forms are tiny negatives. bench/silu_codes_bench.cc
// `exhaustive` checks every one of the 2^32 inputs for F in {-3, 0, 4, 7, 12} and the three
// roundings (no differing lane); tests/kernels_fixed/silu_codes_test.cc sweeps the floats around
// every code boundary.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/vec_math.h"
#include "quant/fixed_point.h"

// GCC 12 reports its own _mm512_undefined_* placeholders (used by the cast/extract/mask
// intrinsics) as (maybe-)uninitialized: a known false positive, silenced for each includer (every
// one uses these intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Each function carries its AVX-512F/BW/VL target (as vec_math.h's 16-lane functions carry
// theirs): call them only where the CPU has those, from functions compiled for them.
#define QSEARCH_CODES16_INLINE \
  inline __attribute__((target("avx512f,avx512bw,avx512vl"), always_inline))

namespace qsearch::kernels::fixed::detail {

// The first n lanes, 0 <= n <= 16.
QSEARCH_CODES16_INLINE __mmask16 first_lanes(int64_t n) {
  return static_cast<__mmask16>((uint32_t{1} << static_cast<uint32_t>(n)) - 1);
}

// Stores the lanes of v selected by m at d[lane]: int32 lanes already within Out's range (the
// truncating down-conversions keep them; the AVX2 store's saturating packs never act either).
template <typename Out>
QSEARCH_CODES16_INLINE void store16(__m512i v, __mmask16 m, Out* d) {
  if constexpr (sizeof(Out) == 4) {
    _mm512_mask_storeu_epi32(d, m, v);
  } else if constexpr (sizeof(Out) == 2) {
    _mm256_mask_storeu_epi16(d, m, _mm512_cvtepi32_epi16(v));
  } else {
    _mm_mask_storeu_epi8(d, m, _mm512_cvtepi32_epi8(v));
  }
}
template <typename Out>
QSEARCH_CODES16_INLINE void store16(__m512 v, __mmask16 m, Out* d) {
  static_assert(std::is_same_v<Out, float>);
  _mm512_mask_storeu_ps(d, m, v);
}
// All 16 lanes.
template <typename Out>
QSEARCH_CODES16_INLINE void store16(__m512i v, Out* d) {
  if constexpr (sizeof(Out) == 4) {
    _mm512_storeu_si512(static_cast<void*>(d), v);
  } else if constexpr (sizeof(Out) == 2) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm512_cvtepi32_epi16(v));
  } else {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm512_cvtepi32_epi8(v));
  }
}
template <typename Out>
QSEARCH_CODES16_INLINE void store16(__m512 v, Out* d) {
  static_assert(std::is_same_v<Out, float>);
  _mm512_storeu_ps(d, v);
}

// Rounds 16 floats to integral values with R: quant/quantize_avx2.h round8, lane by lane.
template <quant::Rounding R>
QSEARCH_CODES16_INLINE __m512 round16(__m512 v) {
  if constexpr (R == quant::Rounding::kHalfToEven) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else if constexpr (R == quant::Rounding::kFloor) {
    return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  } else {
    // The exact remainder |v - trunc(v)| against 0.5, then t + copysign(1, v) by a blend (so
    // that -0.0 stays -0.0), as round8.
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    const __m512 d =
        _mm512_castsi512_ps(_mm512_andnot_si512(sign, _mm512_castps_si512(_mm512_sub_ps(v, t))));
    const __mmask16 up = _mm512_cmp_ps_mask(d, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(_mm512_set1_ps(1.0f)), _mm512_and_si512(sign, _mm512_castps_si512(v))));
    return _mm512_mask_blend_ps(up, t, _mm512_add_ps(t, one));
  }
}

// quant::quantize's clamp to [lo, hi], NaN -> 0 and conversion of 16 rounded values (as
// quant/quantize_avx2.h Quantize8::codes after its round8): int32 lanes within the code range.
QSEARCH_CODES16_INLINE __m512i clamp_codes16(__m512 r, __m512 lo, __m512 hi) {
  // max / min return their second operand when one is NaN: NaN stays NaN, then 0.
  const __m512 v = _mm512_min_ps(hi, _mm512_max_ps(lo, r));
  return _mm512_cvtps_epi32(_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v));
}

// quantize(x, f, R)'s constants for 16 lanes, for a format whose codes are all exact float32
// (width <= 24): 2^frac and the code bounds (quant/quantize_avx2.h Quantize8's; no vector
// members, so that code without AVX-512 can make one).
struct Quantize16 {
  float scale, lo, hi;

  explicit Quantize16(const quant::FixedFormat& f)
      : scale(std::ldexp(1.0f, f.frac)),
        lo(static_cast<float>(f.min_code())),
        hi(static_cast<float>(f.max_code())) {}
};

// The SiLU's forms below need vec_math.h's sigmoid16, which a build with AVX2 has (as the
// AVX-512 stores' fused SiLU, epilogue_avx512.cc).
#ifdef __AVX2__

// x / (1 + e^-x) within 4.3e-6 relative for -88.7 <= x (see above); NaN or unbounded elsewhere.
QSEARCH_CODES16_INLINE __m512 silu16_approx(__m512 x) {
  // n = round(-x log2 e); t = x + n ln2_f = -r; p(t) = e^-t's minimax polynomial = e^r.
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 t = _mm512_fmadd_ps(n, _mm512_set1_ps(0.693147182464599609375f), x);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0x1.5b2f94p-5f), t, _mm512_set1_ps(-0x1.583e36p-3f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.fff566p-2f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0x1.fff9a4p-1f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.0f));
  const __m512 den = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f));
  const __m512 d0 = _mm512_rcp14_ps(den);
  const __m512 d = _mm512_mul_ps(d0, _mm512_fnmadd_ps(den, d0, _mm512_set1_ps(2.0f)));
  return _mm512_mul_ps(x, d);
}

// The constants of silu_codes16 for the scale 2^F.
struct SiluCodes16 {
  static constexpr float kEps = 1.6e-5f;
  __m512 q, q_below, q_above;
  QSEARCH_CODES16_INLINE explicit SiluCodes16(float q_scale)
      : q(_mm512_set1_ps(q_scale)),
        q_below(_mm512_set1_ps(q_scale * (1.0f - kEps))),
        q_above(_mm512_set1_ps(q_scale * (1.0f + kEps))) {}
};

// round_R(fl(fl(x * sigmoid16(x)) * 2^F)) lane by lane, 0 where that is NaN (quant::quantize's
// NaN -> 0): the rounded, unclamped codes of the exact SiLU (silu_codes16's fallback).
template <quant::Rounding R>
QSEARCH_CODES16_INLINE __m512 silu_codes_exact16(__m512 x, const SiluCodes16& k) {
  const __m512 e =
      round16<R>(_mm512_mul_ps(_mm512_mul_ps(x, ::qsearch::kernels::detail::sigmoid16(x)), k.q));
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(e, e, _CMP_ORD_Q), e);
}

// The lanes whose cheap SiLU s = silu16_approx(x) cannot decide the code: s 2^F (1 - eps) and
// s 2^F (1 + eps) round apart, or either is NaN. *c: the first of those codes.
template <quant::Rounding R>
QSEARCH_CODES16_INLINE __mmask16 silu_undecided16(__m512 s, const SiluCodes16& k, __m512* c) {
  *c = round16<R>(_mm512_mul_ps(s, k.q_below));
  return _mm512_cmp_ps_mask(*c, round16<R>(_mm512_mul_ps(s, k.q_above)), _CMP_NEQ_UQ);
}

// silu_codes_exact16(x, k), computed as the cheap SiLU's codes where they are decided.
template <quant::Rounding R>
QSEARCH_CODES16_INLINE __m512 silu_codes16(__m512 x, const SiluCodes16& k) {
  __m512 c;
  if (silu_undecided16<R>(silu16_approx(x), k, &c) == 0) [[likely]] {
    return c;
  }
  return silu_codes_exact16<R>(x, k);
}

#endif  // __AVX2__

}  // namespace qsearch::kernels::fixed::detail

#undef QSEARCH_CODES16_INLINE

#endif  // __x86_64__
