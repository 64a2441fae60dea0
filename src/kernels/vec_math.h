// Internal: vectorised float transcendentals (exp, sigmoid, tanh, erf, erfc, the two GELUs) for
// the float kernels (Softmax, Sigmoid, Tanh, Erf, Exp, GELU; SiLU is Sigmoid then Mul).
//
//   detail::exp8(v), sigmoid8(v), tanh8(v), erf8(v), gelu8(v), gelu_tanh8(v)   // 8 lanes, AVX2+FMA
//   detail::exp16_nonan(v), sigmoid16(v)   // 16 lanes, AVX-512F, bit for bit exp8_nonan / sigmoid8
//   vmath::map_f32(kind, x, y, n)     // y[i] = f(x[i]) for a whole array (vector body, masked
//   tail)
//
// Our own range reduction and polynomials (coefficients fitted by weighted least squares in
// double, then rounded to float), evaluated with FMA:
//   exp:   n = round(x / ln 2), r = x - n ln 2 (two-part ln 2), e^r by its degree-7 Taylor
//          polynomial (|r| <= ln 2 / 2, truncation < 2^-27), scaled by 2^n in two steps so that
//          subnormal results round once. x < -104 gives 0, x > 88.8 gives +inf.
//   tanh:  |x| < 0.625: x + x^3 Q(x^2) (Q of degree 5, relative fit error < 2e-10);
//          else sign(x) (1 - 2 / (e^{2|x|} + 1)).
//   erf:   |x| < 0.9: x P(x^2) (P of degree 6, fit error < 3e-10); else sign(x) (1 - erfc|x|)
//          with erfc(a) = e^{-a^2} R(1 / (1 + a / 2)), R of degree 8 (fit error < 1e-8 relative
//          on [0.9, 10.5]) and a^2 split into its float rounding plus the exact remainder.
//   sigmoid = 1 / (1 + e^-x) (e^x / (1 + e^x) for x < 0); GELU = x/2 (1 + erf(x/sqrt 2)) (x/2
//   erfc(|x|/sqrt 2) for
//          x < -0.9 sqrt 2, so the left tail keeps its relative accuracy); tanh GELU =
//          x / (1 + e^{-2 k (x + 0.044715 x^3)}), the same function without 1 + tanh's
//          cancellation.
// Maximum error against the double-precision value, in units of the float spacing there (the
// subnormal spacing below FLT_MIN), asserted over dense grids by tests/kernels/vec_math_test.cc:
// exp 1.1 ulp, sigmoid 2.5, tanh 2.5, erf 2.5; the GELUs 3 ulp or 3 * 2^-24 |x| where that is
// larger (x / sqrt 2 and the tanh argument are rounded to float, as PyTorch computes them, which
// alone moves a far-left tail value by many of its own ulps but never by more than ~2^-24 |x|).
// Special values follow C's functions: NaN -> NaN, exp(-inf) = 0, exp(+inf) = +inf, tanh/erf(+-inf)
// = +-1, odd functions keep -0. GELU(-inf) is NaN, as x/2 (1 + erf(x/sqrt 2)) is in PyTorch and in
// our reference.
//
// ISA: AVX2 + FMA are the build's baseline (QSEARCH_ARCH = x86-64-v3, as kernels/simd_util.h);
// a build without them (QSEARCH_ARCH="") compiles map_f32's scalar fallback over std::.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __AVX2__
#include <immintrin.h>

#include "kernels/simd_util.h"
#endif

namespace qsearch::kernels::vmath {

enum class Fn { kExp, kSigmoid, kTanh, kErf, kGelu, kGeluTanh };

// The scalar definitions the vector code approximates (and the fallback without AVX2).
inline float reference_f32(Fn f, float v) {
  switch (f) {
    case Fn::kExp:
      return std::exp(v);
    case Fn::kSigmoid:
      return 1.0f / (1.0f + std::exp(-v));
    case Fn::kTanh:
      return std::tanh(v);
    case Fn::kErf:
      return std::erf(v);
    case Fn::kGelu:
      return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
    case Fn::kGeluTanh:
      return 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  }
  return v;
}

}  // namespace qsearch::kernels::vmath

#ifdef __AVX2__
namespace qsearch::kernels::detail {

inline __m256 nan_passthrough8(__m256 result, __m256 x) {
  return _mm256_blendv_ps(result, _mm256_add_ps(x, x), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// e^x without the NaN pass-through (callers whose x cannot be NaN, or that fix it themselves).
inline __m256 exp8_nonan(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.8f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 = 0.693145751953125 (exact, 16 significant bits, so n * it is exact) + 1.4286068e-6.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  // 1 + r + r^2 p: the small part first, then one rounding onto 1.
  p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  // 2^n = 2^n1 * 2^n2 with n1 = floor(n / 2): both factors are normal for n in [-150, 128], and
  // the second product is the only one that can round (subnormal results).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

inline __m256 exp8(__m256 x) { return nan_passthrough8(exp8_nonan(x), x); }

inline __m256 sign_bit8() { return _mm256_set1_ps(-0.0f); }

// 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0: e^-|x| never overflows, so the left tail
// keeps its relative accuracy down to the subnormals.
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8_nonan(_mm256_or_ps(x, sign_bit8()));
  const __m256 num = _mm256_blendv_ps(one, e, x);  // sign bit of x selects e
  return nan_passthrough8(_mm256_div_ps(num, _mm256_add_ps(one, e)), x);
}

// 16-lane twins of exp8_nonan / sigmoid8 for the AVX-512 stores (kernels/fixed/
// epilogue_avx512.cc): each lane performs exactly the 8-lane operations in the same order (the
// same constants, FMA where they use FMA, vrndscaleps with scale 0 for vroundps, a mask blend on
// the same sign bit / unordered compare for blendv), except that the scaling by 2^n is one
// vscalefps (the same correctly rounded product), so every lane equals sigmoid8's bit for
// bit (tests/kernels/vec_math_test.cc compares them over a dense sweep). Compiled for AVX-512F
// by their target attribute whatever the including file's target (so every copy is the same
// code); call them only where the CPU has AVX-512F, from functions compiled for it.
#define QSEARCH_AVX512F_INLINE inline __attribute__((target("avx512f"), always_inline))

QSEARCH_AVX512F_INLINE __m512 exp16_nonan(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  // p * 2^n correctly rounded (vscalefps): exp8_nonan's p * 2^n1 * 2^n2, whose first product is
  // exact and whose second rounds once, is that value too, in one instruction instead of nine
  // (bench/silu_codes_bench.cc `exhaustive`: sigmoid16 equals sigmoid8 on all 2^32 inputs).
  return _mm512_scalef_ps(p, n);
}

QSEARCH_AVX512F_INLINE __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512i xi = _mm512_castps_si512(x);
  const __m512i sign = _mm512_set1_epi32(INT32_MIN);
  const __m512 e = exp16_nonan(_mm512_castsi512_ps(_mm512_or_si512(xi, sign)));
  const __m512 num = _mm512_mask_blend_ps(_mm512_test_epi32_mask(xi, sign), one, e);
  const __m512 s = _mm512_div_ps(num, _mm512_add_ps(one, e));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), s, _mm512_add_ps(x, x));
}

#undef QSEARCH_AVX512F_INLINE

inline __m256 tanh8(__m256 x) {
  const __m256 a = _mm256_andnot_ps(sign_bit8(), x);
  const __m256 u = _mm256_mul_ps(x, x);
  __m256 q = _mm256_set1_ps(-0.00566011460f);
  q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.0205911261f));
  q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.0537211232f));
  q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(0.133311285f));
  q = _mm256_fmadd_ps(q, u, _mm256_set1_ps(-0.333332606f));
  // (The or keeps tanh(-0) = -0.)
  const __m256 small =
      _mm256_or_ps(_mm256_fmadd_ps(_mm256_mul_ps(x, u), q, x), _mm256_and_ps(sign_bit8(), x));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8_nonan(_mm256_add_ps(a, a));
  const __m256 big_abs =
      _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  const __m256 big = _mm256_or_ps(big_abs, _mm256_and_ps(sign_bit8(), x));
  const __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
  return nan_passthrough8(_mm256_blendv_ps(big, small, is_small), x);
}

// erf(x) / x for |x| < 0.9 as P(x^2).
inline __m256 erf_small_ratio8(__m256 u) {
  __m256 p = _mm256_set1_ps(8.51320900e-05f);
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-8.17566771e-04f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(5.20386213e-03f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-2.68605100e-02f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.12837151e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-3.76126350e-01f));
  return _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.12837917e+00f));
}

// erfc(a) for a >= 0.9 (any a >= 0 is accepted; 0 beyond 10.5 where erfc underflows).
inline __m256 erfc_large8(__m256 a) {
  const __m256 ac = _mm256_min_ps(a, _mm256_set1_ps(10.5f));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(ac, _mm256_set1_ps(0.5f), one));
  __m256 r = _mm256_set1_ps(0.076201733f);
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-0.170936731f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.0071481249f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.117848854f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.152809008f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.254305774f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.280787156f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(0.282216178f));
  r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-4.67295657e-06f));
  // e^{-a^2} = e^{-hi} e^{-lo} ~ e^{-hi} (1 - lo), hi = fl(a^2), lo = a^2 - hi exactly.
  const __m256 hi = _mm256_mul_ps(ac, ac);
  const __m256 lo = _mm256_fmsub_ps(ac, ac, hi);
  const __m256 e = exp8_nonan(_mm256_sub_ps(_mm256_setzero_ps(), hi));
  return _mm256_mul_ps(_mm256_fnmadd_ps(e, lo, e), r);
}

inline __m256 erf8(__m256 x) {
  const __m256 a = _mm256_andnot_ps(sign_bit8(), x);
  const __m256 small = _mm256_mul_ps(x, erf_small_ratio8(_mm256_mul_ps(x, x)));
  const __m256 big_abs = _mm256_sub_ps(_mm256_set1_ps(1.0f), erfc_large8(a));
  const __m256 big = _mm256_or_ps(big_abs, _mm256_and_ps(sign_bit8(), x));
  const __m256 is_small = _mm256_cmp_ps(a, _mm256_set1_ps(0.9f), _CMP_LT_OQ);
  return nan_passthrough8(_mm256_blendv_ps(big, small, is_small), x);
}

inline __m256 gelu8(__m256 x) {
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
  const __m256 az = _mm256_andnot_ps(sign_bit8(), z);
  const __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  // |z| < 0.9: x/2 (1 + z P(z^2)).
  const __m256 small =
      _mm256_fmadd_ps(half_x, _mm256_mul_ps(z, erf_small_ratio8(_mm256_mul_ps(z, z))), half_x);
  // Else h = x/2 erfc(|z|): x - h for x > 0, h for x < 0 (h = 0 where erfc is 0, so +inf stays).
  const __m256 ec = erfc_large8(az);
  const __m256 h =
      _mm256_and_ps(_mm256_mul_ps(half_x, ec), _mm256_cmp_ps(ec, _mm256_setzero_ps(), _CMP_NEQ_OQ));
  const __m256 pos = _mm256_sub_ps(x, h);
  const __m256 neg = _mm256_mul_ps(half_x, ec);      // -inf * 0 = NaN, as the definition gives
  const __m256 big = _mm256_blendv_ps(pos, neg, x);  // sign bit of x selects
  const __m256 is_small = _mm256_cmp_ps(az, _mm256_set1_ps(0.9f), _CMP_LT_OQ);
  return nan_passthrough8(_mm256_blendv_ps(big, small, is_small), x);
}

inline __m256 gelu_tanh8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 inner = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f),
                                     _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
  // x/2 (1 + tanh w) = x / (1 + e^{-2w}).
  const __m256 e = exp8_nonan(_mm256_mul_ps(inner, _mm256_set1_ps(-2.0f)));
  const __m256 y = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  return nan_passthrough8(y, x);
}

template <vmath::Fn F>
inline __m256 apply8(__m256 v) {
  if constexpr (F == vmath::Fn::kExp) return exp8(v);
  if constexpr (F == vmath::Fn::kSigmoid) return sigmoid8(v);
  if constexpr (F == vmath::Fn::kTanh) return tanh8(v);
  if constexpr (F == vmath::Fn::kErf) return erf8(v);
  if constexpr (F == vmath::Fn::kGelu) return gelu8(v);
  return gelu_tanh8(v);
}

template <vmath::Fn F>
inline void map8(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, apply8<F>(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = first_lanes8(n - i);
    _mm256_maskstore_ps(y + i, m, apply8<F>(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace qsearch::kernels::detail
#endif

namespace qsearch::kernels::vmath {

// y[i] = f(x[i]) for i in [0, n) on the calling thread; y may equal x.
inline void map_f32(Fn f, const float* x, float* y, int64_t n) {
#ifdef __AVX2__
  switch (f) {
    case Fn::kExp:
      return detail::map8<Fn::kExp>(x, y, n);
    case Fn::kSigmoid:
      return detail::map8<Fn::kSigmoid>(x, y, n);
    case Fn::kTanh:
      return detail::map8<Fn::kTanh>(x, y, n);
    case Fn::kErf:
      return detail::map8<Fn::kErf>(x, y, n);
    case Fn::kGelu:
      return detail::map8<Fn::kGelu>(x, y, n);
    case Fn::kGeluTanh:
      return detail::map8<Fn::kGeluTanh>(x, y, n);
  }
#else
  for (int64_t i = 0; i < n; ++i) y[i] = reference_f32(f, x[i]);
#endif
}

}  // namespace qsearch::kernels::vmath
