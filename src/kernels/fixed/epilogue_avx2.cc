// The AVX2 stores of the int conv's pixel-major tiles (Epilogue::run_t32 / run_t32_runs,
// gemm_tiles.h): int32 sums stored column by column -> the accumulator, requantized codes,
// float32, or the codes of that float (the fused BatchNorm affine, ReLU / Clip / SiLU and the
// next layer's quantizer). Compiled with a target pragma so that they exist whatever the build
// baseline; epilogue.cc selects them only when the CPU has AVX2 (and FMA for the affine).
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/fixed/code_type.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "kernels/vec_math.h"
#include "quant/quantize_avx2.h"

namespace qsearch::kernels::fixed::detail {

namespace {

// The 16 lanes of one pixel-major column (v0: lanes 0..7, v1: 8..15), already clamped to Out's
// range, stored as Out: all 16 when rows == 16, else the first `rows` through a buffer.
template <typename Out>
inline void store_column(__m256i v0, __m256i v1, int rows, Out* o) {
  alignas(32) Out buf[16];
  Out* d = rows == 16 ? o : buf;
  if constexpr (sizeof(Out) == 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), v0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 8), v1);
  } else {
    // packs interleaves the 128-bit halves: (v0 0-3, v1 0-3, v0 4-7, v1 4-7) -> reorder. The
    // values are in range, so the saturation never acts.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
    if constexpr (sizeof(Out) == 2) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), w);
    } else {
      const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
      const __m128i b = std::is_signed_v<Out> ? _mm_packs_epi16(lo, hi) : _mm_packus_epi16(lo, hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d), b);
    }
  }
  if (rows != 16) std::memcpy(o, buf, static_cast<size_t>(rows) * sizeof(Out));
}

// acc * 2^-s rounded with R (epilogue.cc, shift_round32), 1 <= s <= 30, on int32 lanes: rem is
// in [0, 2^s), so the signed compares are exact.
template <quant::Rounding R>
inline __m256i shift_round(__m256i acc, __m128i s, __m256i mask, __m256i half) {
  const __m256i q = _mm256_sra_epi32(acc, s);
  if constexpr (R == quant::Rounding::kFloor) {
    return q;
  } else {
    const __m256i rem = _mm256_and_si256(acc, mask);
    const __m256i ones = _mm256_set1_epi32(1);
    const __m256i tie_up = R == quant::Rounding::kHalfToEven
                               ? _mm256_cmpeq_epi32(_mm256_and_si256(q, ones), ones)
                               : _mm256_cmpgt_epi32(acc, _mm256_set1_epi32(-1));
    const __m256i up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                       _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), tie_up));
    return _mm256_sub_epi32(q, up);  // up is -1 (all ones) where the result rounds up
  }
}

template <typename Out, quant::Rounding R>
void requantize32_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                      int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_), s = _mm_cvtsi32_si128(e.rshift_);
  const __m256i mask = _mm256_set1_epi32(static_cast<int32_t>((uint32_t{1} << e.rshift_) - 1));
  const __m256i half = _mm256_set1_epi32(int32_t{1} << (e.rshift_ - 1));
  const __m256i lo = _mm256_set1_epi32(static_cast<int32_t>(e.lo_));
  const __m256i hi = _mm256_set1_epi32(static_cast<int32_t>(e.hi_));
  for (int j = 0; j < cols; ++j) {
    const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(e.bias_[col0 + j]));
    const int32_t* t = tile + j * 16;
    // (S << shift) + bias modulo 2^32: exact, the true value fits int32 (AccType::kInt32).
    __m256i a0 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)), shift), bias);
    __m256i a1 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8)), shift), bias);
    a0 = _mm256_min_epi32(_mm256_max_epi32(shift_round<R>(a0, s, mask, half), lo), hi);
    a1 = _mm256_min_epi32(_mm256_max_epi32(shift_round<R>(a1, s, mask, half), lo), hi);
    store_column(a0, a1, rows, out + row0 + (col0 + j) * e.ldc_n_);
  }
}

// Epilogue::post on 8 lanes of column col: fma, then `u < lo ? lo : u` (max_ps(lo, u) returns
// its second operand unless lo > u, NaN included) and `u > hi ? hi : u` (min_ps(hi, u)), then
// the fused SiLU with the Sigmoid step's own vector sigmoid (the Epilogue uses these stores with
// a SiLU only in a build with AVX2, where vec_math.h has it).
inline __m256 post8(const Epilogue& e, __m256 v, int64_t col) {
  const __m256 u =
      _mm256_fmadd_ps(v, _mm256_set1_ps(e.post_scale_[col]), _mm256_set1_ps(e.post_shift_[col]));
  const __m256 c =
      _mm256_min_ps(_mm256_set1_ps(e.post_hi_), _mm256_max_ps(_mm256_set1_ps(e.post_lo_), u));
#ifdef __AVX2__
  if (e.silu_) return _mm256_mul_ps(c, ::qsearch::kernels::detail::sigmoid8(c));
#endif
  return c;
}

template <typename Out, bool kPost = false>
void exact_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
               int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_);
  const __m256 scale = _mm256_set1_ps(e.scale_);
  for (int j = 0; j < cols; ++j) {
    const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(e.bias_[col0 + j]));
    const int32_t* t = tile + j * 16;
    const __m256i a0 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)), shift), bias);
    const __m256i a1 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8)), shift), bias);
    Out* o = out + row0 + (col0 + j) * e.ldc_n_;
    if constexpr (std::is_same_v<Out, float>) {
      // One rounding (int32 -> float32, to nearest even as the scalar conversion), then the
      // exact power-of-two scale.
      alignas(32) float buf[16];
      float* d = rows == 16 ? o : buf;
      __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), scale);
      __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), scale);
      if constexpr (kPost) {
        v0 = post8(e, v0, col0 + j);
        v1 = post8(e, v1, col0 + j);
      }
      _mm256_storeu_ps(d, v0);
      _mm256_storeu_ps(d + 8, v1);
      if (rows != 16) std::memcpy(o, buf, static_cast<size_t>(rows) * sizeof(float));
    } else {
      store_column(a0, a1, rows, o);
    }
  }
}

// n <= 16 codes from src to dst in fixed-size pieces (no library call).
template <size_t kPiece>
inline void copy_piece(std::byte*& d, const std::byte*& s, size_t bytes) {
  if ((bytes & kPiece) != 0) {
    std::memcpy(d, s, kPiece);
    d += kPiece;
    s += kPiece;
  }
}
template <typename Out>
inline void copy_codes(Out* dst, const Out* src, int64_t n) {
  if (n == 1) {  // tiny maps' gathered panels: every run one pixel
    *dst = *src;
    return;
  }
  auto* d = reinterpret_cast<std::byte*>(dst);
  const auto* s = reinterpret_cast<const std::byte*>(src);
  const size_t bytes = static_cast<size_t>(n) * sizeof(Out);
  if constexpr (sizeof(Out) >= 4) copy_piece<64>(d, s, bytes);
  if constexpr (sizeof(Out) >= 2) copy_piece<32>(d, s, bytes);
  copy_piece<16>(d, s, bytes);
  copy_piece<8>(d, s, bytes);
  if constexpr (sizeof(Out) <= 4) copy_piece<4>(d, s, bytes);
  if constexpr (sizeof(Out) <= 2) copy_piece<2>(d, s, bytes);
  if constexpr (sizeof(Out) == 1) copy_piece<1>(d, s, bytes);
}

template <typename Out, quant::Rounding R>
void requantize32_runs(const Epilogue& e, const int32_t* tile, const int64_t (*runs)[3], int nruns,
                       int cols, int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_), s = _mm_cvtsi32_si128(e.rshift_);
  const __m256i mask = _mm256_set1_epi32(static_cast<int32_t>((uint32_t{1} << e.rshift_) - 1));
  const __m256i half = _mm256_set1_epi32(int32_t{1} << (e.rshift_ - 1));
  const __m256i lo = _mm256_set1_epi32(static_cast<int32_t>(e.lo_));
  const __m256i hi = _mm256_set1_epi32(static_cast<int32_t>(e.hi_));
  const int64_t* bias_col = e.bias_ + col0;
  const int64_t ldc = e.ldc_n_;
  const bool full = nruns == 1 && runs[0][1] == 16;
  alignas(64) Out buf[16];
  for (int j = 0; j < cols; ++j) {
    const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(bias_col[j]));
    const int32_t* t = tile + j * 16;
    __m256i a0 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)), shift), bias);
    __m256i a1 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8)), shift), bias);
    a0 = _mm256_min_epi32(_mm256_max_epi32(shift_round<R>(a0, s, mask, half), lo), hi);
    a1 = _mm256_min_epi32(_mm256_max_epi32(shift_round<R>(a1, s, mask, half), lo), hi);
    Out* o = out + (col0 + j) * ldc;
    if (full) {  // one run of all 16 lanes (a 1x1 conv's panel): straight from the registers
      store_column(a0, a1, 16, o + runs[0][2]);
      continue;
    }
    store_column(a0, a1, 16, buf);
    for (int r = 0; r < nruns; ++r) {
      copy_codes(o + runs[r][2], buf + runs[r][0], runs[r][1]);
    }
  }
}

// exact_t32 for the runs of one tile (Epilogue::run_t32_runs): each column converted once, then
// stored run by run (the per-run calls went through a buffer and libc memcpy for every run).
template <typename Out, bool kPost = false>
void exact_runs(const Epilogue& e, const int32_t* tile, const int64_t (*runs)[3], int nruns,
                int cols, int64_t col0, void* c) {
  Out* out = static_cast<Out*>(c);
  const __m128i shift = _mm_cvtsi32_si128(e.shift_);
  const __m256 scale = _mm256_set1_ps(e.scale_);
  const int64_t* bias_col = e.bias_ + col0;
  const int64_t ldc = e.ldc_n_;
  const bool full = nruns == 1 && runs[0][1] == 16;
  alignas(64) Out buf[16];
  for (int j = 0; j < cols; ++j) {
    const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(bias_col[j]));
    const int32_t* t = tile + j * 16;
    const __m256i a0 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)), shift), bias);
    const __m256i a1 = _mm256_add_epi32(
        _mm256_sll_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8)), shift), bias);
    if constexpr (std::is_same_v<Out, float>) {
      // As exact_t32: one rounding (int32 -> float32), then the exact power-of-two scale.
      __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), scale);
      __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), scale);
      if constexpr (kPost) {
        v0 = post8(e, v0, col0 + j);
        v1 = post8(e, v1, col0 + j);
      }
      Out* d = full ? out + (col0 + j) * ldc + runs[0][2] : buf;
      _mm256_storeu_ps(d, v0);
      _mm256_storeu_ps(d + 8, v1);
    } else {
      Out* d = full ? out + (col0 + j) * ldc + runs[0][2] : buf;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), a0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 8), a1);
    }
    if (full) continue;  // one run of all 16 lanes: stored straight from the registers
    Out* o = out + (col0 + j) * ldc;
    for (int r = 0; r < nruns; ++r) {
      copy_codes(o + runs[r][2], buf + runs[r][0], runs[r][1]);
    }
  }
}

// The float store with GemmParams::post_quantize on pixel-major columns: exact_t32's float
// values (and the fused affine, clamp and SiLU), then their codes, bit for bit quant::quantize
// (quant/quantize_avx2.h: round8, the clamp to the code range, NaN -> 0) for widths <= 24. The
// Epilogue picks the form (QuantizeStore, epilogue.h) from what its layer can produce:
//   kPlain:  no affine; the value float(acc) * 2^-F is finite, so no NaN test.
//   kPost:   fma, the float clamp [post_lo, post_hi], round, the code clamp, NaN -> 0.
//   kMerged: the two clamps as one on the rounded value: round(x * 2^f) is non-decreasing in x,
//            so round(clamp(u, lo, hi) * 2^f) = clamp(round(u * 2^f), round(lo * 2^f),
//            round(hi * 2^f)) (NaN stays NaN through both), and the code clamp after that is one
//            clamp to the intersection [q_clamp_lo_, q_clamp_hi_] (non-empty, else kPost).
//   kMergedFinite: kMerged where every channel's post_scale and post_shift are finite: fma of
//            finite values is never NaN (at worst +-inf, which the clamp bounds), so no NaN test;
//            and where every post_scale * 2^-F is exact, so that fma(float(acc) * 2^-F, scale,
//            shift) = fma(float(acc), scale * 2^-F, shift) (float(acc) * 2^-F is exact too:
//            -96 <= F <= 126, Epilogue): one multiply less.
//   kSilu:   fma, the float clamp, the SiLU (NaN possible: silu(-inf) = -inf * 0), then as kPost.
//   kSiluUnclamped: kSilu without the clamp to [-inf, inf] (max / min there return every value,
//            NaN included, unchanged).
// The constants of one store call, loaded once (Code stores may alias the Epilogue's fields, so
// reading them in the column loop would reload them after every store).
struct QuantizeConsts {
  __m128i shift;
  __m256 scale, q_scale, lo, hi, post_lo, post_hi;
  float scale1;  // 2^-F
  const int64_t* bias;
  const float *post_scale, *post_shift;

  explicit QuantizeConsts(const Epilogue& e, QuantizeStore mode)
      : shift(_mm_cvtsi32_si128(e.shift_)),
        scale(_mm256_set1_ps(e.scale_)),
        q_scale(_mm256_set1_ps(e.q_scale_)),
        lo(_mm256_set1_ps(mode == QuantizeStore::kMerged || mode == QuantizeStore::kMergedFinite
                              ? e.q_clamp_lo_
                              : e.q_lo_)),
        hi(_mm256_set1_ps(mode == QuantizeStore::kMerged || mode == QuantizeStore::kMergedFinite
                              ? e.q_clamp_hi_
                              : e.q_hi_)),
        post_lo(_mm256_set1_ps(e.post_lo_)),
        post_hi(_mm256_set1_ps(e.post_hi_)),
        scale1(e.scale_),
        bias(e.bias_),
        post_scale(e.post_scale_),
        post_shift(e.post_shift_) {}
};

// The codes of one column's 16 lanes t[0..16) (column col): *c0 lanes 0..7, *c1 lanes 8..15, as
// int32 within the code range. kShift: acc_shift != 0.
// Always inlined: in the SiLU form the compiler otherwise calls it, passing the codes through
// memory and keeping two columns' sigmoids from overlapping.
template <QuantizeStore kMode, quant::Rounding R, bool kShift>
__attribute__((always_inline)) inline void quantize16(const QuantizeConsts& k, const int32_t* t,
                                                      int64_t col, __m256i* c0, __m256i* c1) {
  const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(k.bias[col]));
  __m256i a[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8))};
  __m256i c[2];
  for (int h = 0; h < 2; ++h) {
    // (S << shift) + bias modulo 2^32: exact, the true value fits int32 (AccType::kInt32); one
    // rounding to float32, then the exact power-of-two scale.
    if constexpr (kShift) a[h] = _mm256_sll_epi32(a[h], k.shift);
    __m256 v = _mm256_cvtepi32_ps(_mm256_add_epi32(a[h], bias));
    if constexpr (kMode == QuantizeStore::kMergedFinite) {
      v = _mm256_fmadd_ps(v, _mm256_set1_ps(k.post_scale[col] * k.scale1),
                          _mm256_set1_ps(k.post_shift[col]));
    } else {
      v = _mm256_mul_ps(v, k.scale);
      if constexpr (kMode != QuantizeStore::kPlain) {
        v = _mm256_fmadd_ps(v, _mm256_set1_ps(k.post_scale[col]),
                            _mm256_set1_ps(k.post_shift[col]));
      }
    }
    if constexpr (kMode == QuantizeStore::kPost || kMode == QuantizeStore::kSilu) {
      // `u < lo ? lo : u`, then `u > hi ? hi : u` (max_ps / min_ps return their second operand
      // when one is NaN: NaN passes, as in Epilogue::post).
      v = _mm256_min_ps(k.post_hi, _mm256_max_ps(k.post_lo, v));
    }
    if constexpr (kMode == QuantizeStore::kSilu || kMode == QuantizeStore::kSiluUnclamped) {
      v = _mm256_mul_ps(v, ::qsearch::kernels::detail::sigmoid8(v));
    }
    v = _mm256_min_ps(k.hi,
                      _mm256_max_ps(k.lo, quant::avx2::round8<R>(_mm256_mul_ps(v, k.q_scale))));
    if constexpr (kMode == QuantizeStore::kPost || kMode == QuantizeStore::kMerged ||
                  kMode == QuantizeStore::kSilu || kMode == QuantizeStore::kSiluUnclamped) {
      v = _mm256_andnot_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), v);  // NaN -> 0
    }
    c[h] = _mm256_cvtps_epi32(v);
  }
  *c0 = c[0];
  *c1 = c[1];
}

// Two columns' 16 codes each (int32 lanes within Out's range) stored at o0[0..16) and
// o1[0..16): for one-byte codes both columns go through one pack and one permute.
template <typename Out>
inline void store_two_columns(__m256i a0, __m256i a1, __m256i b0, __m256i b1, Out* o0, Out* o1) {
  if constexpr (sizeof(Out) == 1) {
    // packs_epi32 gives, per 128-bit half, (lanes 0-3, 8-11 | 4-7, 12-15) of a column as int16;
    // the byte pack of both columns leaves dwords (a 0-3, a 8-11, b 0-3, b 8-11 | a 4-7, a 12-15,
    // b 4-7, b 12-15), which the permute puts in order.
    const __m256i wa = _mm256_packs_epi32(a0, a1), wb = _mm256_packs_epi32(b0, b1);
    const __m256i w =
        std::is_signed_v<Out> ? _mm256_packs_epi16(wa, wb) : _mm256_packus_epi16(wa, wb);
    const __m256i v = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o0), _mm256_castsi256_si128(v));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o1), _mm256_extracti128_si256(v, 1));
  } else {
    store_column(a0, a1, 16, o0);
    store_column(b0, b1, 16, o1);
  }
}

// quantize_t32 (kRuns false: `rows` lanes from row0) and quantize_runs (kRuns: the runs of the
// tile) with the column loop for one kShift. A full run (one run of all 16 lanes: a 1x1 conv's
// panel) is stored straight from the registers, two columns at a time.
template <typename Out, quant::Rounding R, QuantizeStore kMode, bool kShift>
void quantize_columns(const Epilogue& e, const int32_t* tile, int rows, int64_t row0,
                      const int64_t (*runs)[3], int nruns, int cols, int64_t col0, Out* out) {
  const QuantizeConsts k(e, kMode);
  const int64_t ldc = e.ldc_n_;
  const bool full = runs != nullptr ? nruns == 1 && runs[0][1] == 16 : rows == 16;
  if (full) {
    Out* o = out + (runs != nullptr ? runs[0][2] : row0) + col0 * ldc;
    int j = 0;
    for (; j + 2 <= cols; j += 2) {
      __m256i a0, a1, b0, b1;
      quantize16<kMode, R, kShift>(k, tile + j * 16, col0 + j, &a0, &a1);
      quantize16<kMode, R, kShift>(k, tile + j * 16 + 16, col0 + j + 1, &b0, &b1);
      store_two_columns(a0, a1, b0, b1, o + j * ldc, o + (j + 1) * ldc);
    }
    if (j < cols) {
      __m256i a0, a1;
      quantize16<kMode, R, kShift>(k, tile + j * 16, col0 + j, &a0, &a1);
      store_column(a0, a1, 16, o + j * ldc);
    }
    return;
  }
  alignas(64) Out buf[16];
  for (int j = 0; j < cols; ++j) {
    __m256i c0, c1;
    quantize16<kMode, R, kShift>(k, tile + j * 16, col0 + j, &c0, &c1);
    if (runs == nullptr) {
      store_column(c0, c1, rows, out + row0 + (col0 + j) * ldc);
      continue;
    }
    store_column(c0, c1, 16, buf);
    Out* o = out + (col0 + j) * ldc;
    for (int r = 0; r < nruns; ++r) copy_codes(o + runs[r][2], buf + runs[r][0], runs[r][1]);
  }
}

template <typename Out, quant::Rounding R, QuantizeStore kMode>
void quantize_t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0,
                  int64_t col0, void* c) {
  if (e.shift_ != 0) {
    quantize_columns<Out, R, kMode, true>(e, tile, rows, row0, nullptr, 0, cols, col0,
                                          static_cast<Out*>(c));
  } else {
    quantize_columns<Out, R, kMode, false>(e, tile, rows, row0, nullptr, 0, cols, col0,
                                           static_cast<Out*>(c));
  }
}

template <typename Out, quant::Rounding R, QuantizeStore kMode>
void quantize_runs(const Epilogue& e, const int32_t* tile, const int64_t (*runs)[3], int nruns,
                   int cols, int64_t col0, void* c) {
  if (e.shift_ != 0) {
    quantize_columns<Out, R, kMode, true>(e, tile, 16, 0, runs, nruns, cols, col0,
                                          static_cast<Out*>(c));
  } else {
    quantize_columns<Out, R, kMode, false>(e, tile, 16, 0, runs, nruns, cols, col0,
                                           static_cast<Out*>(c));
  }
}

template <typename Out>
EpilogueFnRuns requantize32_runs_for(quant::Rounding r) {
  return quant::with_rounding(
      r, [](auto R) { return EpilogueFnRuns(&requantize32_runs<Out, R.value>); });
}

template <typename Out>
EpilogueFn32 requantize32_t32_for(quant::Rounding r) {
  return quant::with_rounding(r,
                              [](auto R) { return EpilogueFn32(&requantize32_t32<Out, R.value>); });
}

}  // namespace

// f(Code{}) for the code type of `out` (with_code_type); null for 64-bit codes (no such store).
template <typename Fn, typename F>
Fn for_code_dtype(DType out, F f) {
  return with_code_type(out, [&](auto code) -> Fn {
    if constexpr (sizeof(code) == 8) {
      return nullptr;
    } else {
      return f(code);
    }
  });
}

EpilogueFn32 requantize32_t32_avx2(DType out, quant::Rounding rounding) {
  return for_code_dtype<EpilogueFn32>(
      out, [&](auto code) { return requantize32_t32_for<decltype(code)>(rounding); });
}

EpilogueFnRuns requantize32_runs_avx2(DType out, quant::Rounding rounding) {
  return for_code_dtype<EpilogueFnRuns>(
      out, [&](auto code) { return requantize32_runs_for<decltype(code)>(rounding); });
}

EpilogueFnRuns exact_runs_avx2(DType out, bool post) {
  switch (out) {
    case DType::kInt32:
      return &exact_runs<int32_t>;
    case DType::kFloat32:
      return post ? &exact_runs<float, true> : &exact_runs<float>;
    default:
      return nullptr;
  }
}

// Calls f(std::integral_constant<QuantizeStore, m>) for the mode m.
template <typename Fn, typename F>
Fn for_quantize_store(QuantizeStore m, F f) {
  using Q = QuantizeStore;
  switch (m) {
    case Q::kPlain:
      return f(std::integral_constant<Q, Q::kPlain>{});
    case Q::kPost:
      return f(std::integral_constant<Q, Q::kPost>{});
    case Q::kMerged:
      return f(std::integral_constant<Q, Q::kMerged>{});
    case Q::kMergedFinite:
      return f(std::integral_constant<Q, Q::kMergedFinite>{});
    case Q::kSilu:
      return f(std::integral_constant<Q, Q::kSilu>{});
    case Q::kSiluUnclamped:
      return f(std::integral_constant<Q, Q::kSiluUnclamped>{});
  }
  return nullptr;
}

EpilogueFn32 quantize_t32_avx2(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m) {
  if (f.width > 24) return nullptr;
  return for_code_dtype<EpilogueFn32>(quant::storage_dtype(f), [&](auto code) {
    using Out = decltype(code);
    return quant::with_rounding(r, [m](auto R) {
      using RC = decltype(R);
      return for_quantize_store<EpilogueFn32>(
          m, [](auto M) { return EpilogueFn32(&quantize_t32<Out, RC::value, M.value>); });
    });
  });
}

EpilogueFnRuns quantize_runs_avx2(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m) {
  if (f.width > 24) return nullptr;
  return for_code_dtype<EpilogueFnRuns>(quant::storage_dtype(f), [&](auto code) {
    using Out = decltype(code);
    return quant::with_rounding(r, [m](auto R) {
      using RC = decltype(R);
      return for_quantize_store<EpilogueFnRuns>(
          m, [](auto M) { return EpilogueFnRuns(&quantize_runs<Out, RC::value, M.value>); });
    });
  });
}

EpilogueFn32 exact_t32_avx2(DType out, bool post) {
  switch (out) {
    case DType::kInt32:
      return &exact_t32<int32_t>;
    case DType::kFloat32:
      return post ? &exact_t32<float, true> : &exact_t32<float>;
    default:
      return nullptr;
  }
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
