// The AVX-512 twins of epilogue_avx2.cc's stores of the int conv's pixel-major tiles
// (Epilogue::run_t32 / run_t32_runs, gemm_tiles.h): int32 sums stored column by column -> the
// int32 accumulator, requantized codes, float32, or the codes of that float (the fused BatchNorm
// affine, ReLU / Clip / SiLU and the next layer's quantizer). A column's 16 lanes are one 512-bit
// vector, where the AVX2 stores use two: every lane performs exactly the AVX2 store's operations
// in the same order (the same int32 arithmetic, conversions, FMA, max / min, roundings, NaN test,
// and sigmoid16 for sigmoid8, kernels/vec_math.h), so each stored value is bit for bit the AVX2
// store's (the fused SiLU's codes take silu_codes16, codes_avx512.h: another route to the same
// codes); the AVX2 compares and blends become mask compares and mask blends on the same
// conditions. Partial columns and runs are masked stores (lanes outside the mask are neither
// read from memory nor written, and cannot fault). Compiled with a target pragma; epilogue.cc
// selects these stores only for weights packed for AVX-512BW or better on a CPU with AVX-512VL.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/fixed/code_type.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Included before the target pragma: its inline functions keep the build's target in every file
// (sigmoid16 carries its own AVX-512F attribute). It has sigmoid16 in a build with AVX2, the
// only build where the Epilogue fuses the SiLU into a vector store (epilogue.cc, kVectorSilu).
#include "kernels/fixed/codes_avx512.h"
#include "kernels/vec_math.h"
#ifdef __AVX2__
#define QSEARCH_EPILOGUE512_SILU 1
#endif

// GCC 12 reports its own _mm512_undefined_* placeholders (used by the cast/extract intrinsics) as
// (maybe-)uninitialized: a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")

namespace qsearch::kernels::fixed::detail {

namespace {

// p - k elements, as an address: the base of a masked store whose first stored lane is k (the
// lanes below k are masked off, so nothing is written or read there).
template <typename Out>
inline Out* back(Out* p, int64_t k) {
  return reinterpret_cast<Out*>(reinterpret_cast<uintptr_t>(p) -
                                static_cast<uintptr_t>(k) * sizeof(Out));
}

// The column loop shared by every store: value(j) is column j's 16 lanes (an __m512i of int32
// lanes in Out's range, or an __m512 of floats). kRuns false: lanes 0..rows-1 to rows row0.. of
// each column (Epilogue::run_t32); kRuns: the runs of the tile (Epilogue::run_t32_runs), each a
// masked store of the column vector (run r's lanes [runs[r][0], + runs[r][1]) to element
// runs[r][2] onwards).
template <typename Out, typename Value>
__attribute__((always_inline)) inline void store_columns(int64_t ldc, int rows, int64_t row0,
                                                         const int64_t (*runs)[3], int nruns,
                                                         int cols, int64_t col0, Out* out,
                                                         Value value) {
  if (runs != nullptr && nruns == 1 && runs[0][0] == 0) {  // one run from lane 0: as a tile
    rows = static_cast<int>(runs[0][1]);
    row0 = runs[0][2];
    runs = nullptr;
  }
  if (runs == nullptr) {
    Out* o = out + row0 + col0 * ldc;
    if (rows == 16) {
      for (int j = 0; j < cols; ++j) store16(value(j), o + j * ldc);
    } else {
      const __mmask16 m = first_lanes(rows);
      for (int j = 0; j < cols; ++j) store16(value(j), m, o + j * ldc);
    }
    return;
  }
  for (int j = 0; j < cols; ++j) {
    const auto v = value(j);
    Out* o = out + (col0 + j) * ldc;
    for (int r = 0; r < nruns; ++r) {
      const int64_t lane0 = runs[r][0];
      store16(v, static_cast<__mmask16>(first_lanes(runs[r][1]) << lane0),
              back(o + runs[r][2], lane0));
    }
  }
}

// 16 int32 sums as two 256-bit loads: the AVX2 conv kernels (and the depthwise lanes) write them
// with 256-bit stores just before, and one 512-bit load spanning two such stores still in the
// store buffer cannot take their data (a store-forwarding stall that cost more than the halved
// arithmetic saved on EfficientNet 32x32); each half forwards, and from a 512-bit store too.
inline __m512i load_sums(const int32_t* t) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 8)), 1);
}

// (S << shift) + bias of one column modulo 2^32: exact, the true value fits int32
// (AccType::kInt32).
inline __m512i accumulate16(const int32_t* t, __m128i shift, int32_t bias) {
  return _mm512_add_epi32(_mm512_sll_epi32(load_sums(t), shift), _mm512_set1_epi32(bias));
}

// ----- requantized codes (epilogue_avx2.cc requantize32_t32 / requantize32_runs) -----

// acc * 2^-s rounded with R, 1 <= s <= 30 (epilogue_avx2.cc shift_round): rem in [0, 2^s).
template <quant::Rounding R>
inline __m512i shift_round16(__m512i acc, __m128i s, __m512i mask, __m512i half) {
  const __m512i q = _mm512_sra_epi32(acc, s);
  if constexpr (R == quant::Rounding::kFloor) {
    return q;
  } else {
    const __m512i rem = _mm512_and_si512(acc, mask);
    const __m512i ones = _mm512_set1_epi32(1);
    const __mmask16 tie_up = R == quant::Rounding::kHalfToEven
                                 ? _mm512_test_epi32_mask(q, ones)
                                 : _mm512_cmpgt_epi32_mask(acc, _mm512_set1_epi32(-1));
    const __mmask16 up =
        _mm512_cmpgt_epi32_mask(rem, half) | (_mm512_cmpeq_epi32_mask(rem, half) & tie_up);
    return _mm512_mask_add_epi32(q, up, q, ones);
  }
}

template <typename Out, quant::Rounding R>
void requantize_store(const Epilogue& e, const int32_t* tile, int rows, int64_t row0,
                      const int64_t (*runs)[3], int nruns, int cols, int64_t col0, Out* out) {
  const __m128i shift = _mm_cvtsi32_si128(e.shift_), s = _mm_cvtsi32_si128(e.rshift_);
  const __m512i mask = _mm512_set1_epi32(static_cast<int32_t>((uint32_t{1} << e.rshift_) - 1));
  const __m512i half = _mm512_set1_epi32(int32_t{1} << (e.rshift_ - 1));
  const __m512i lo = _mm512_set1_epi32(static_cast<int32_t>(e.lo_));
  const __m512i hi = _mm512_set1_epi32(static_cast<int32_t>(e.hi_));
  const int64_t* bias = e.bias_ + col0;
  store_columns(e.ldc_n_, rows, row0, runs, nruns, cols, col0, out, [&](int j) {
    const __m512i a = accumulate16(tile + j * 16, shift, static_cast<int32_t>(bias[j]));
    return _mm512_min_epi32(_mm512_max_epi32(shift_round16<R>(a, s, mask, half), lo), hi);
  });
}

// ----- the int32 accumulator and the float store (epilogue_avx2.cc exact_t32 / exact_runs) -----

// kFast (the SiLU's float store): no [-inf, inf] clamp and the scale folded into the affine
// (epilogue.cc scale_folds), the same values.
template <typename Out, bool kPost, bool kSilu, bool kFast = false>
void exact_store(const Epilogue& e, const int32_t* tile, int rows, int64_t row0,
                 const int64_t (*runs)[3], int nruns, int cols, int64_t col0, Out* out) {
  const __m128i shift = _mm_cvtsi32_si128(e.shift_);
  const int64_t* bias = e.bias_ + col0;
  if constexpr (std::is_same_v<Out, float>) {
    const __m512 scale = _mm512_set1_ps(e.scale_);
    const __m512 post_lo = _mm512_set1_ps(e.post_lo_), post_hi = _mm512_set1_ps(e.post_hi_);
    const float* post_scale = e.post_scale_ + col0;
    const float* post_shift = e.post_shift_ + col0;
    store_columns(e.ldc_n_, rows, row0, runs, nruns, cols, col0, out, [&](int j) {
      // One rounding (int32 -> float32), then the exact power-of-two scale; then post8's fma,
      // `u < lo ? lo : u` and `u > hi ? hi : u` as max / min (NaN passes), and the SiLU.
      const __m512 a =
          _mm512_cvtepi32_ps(accumulate16(tile + j * 16, shift, static_cast<int32_t>(bias[j])));
      if constexpr (kFast) {
        const __m512 u = _mm512_fmadd_ps(a, _mm512_set1_ps(post_scale[j] * e.scale_),
                                         _mm512_set1_ps(post_shift[j]));
#ifdef QSEARCH_EPILOGUE512_SILU
        return _mm512_mul_ps(u, ::qsearch::kernels::detail::sigmoid16(u));
#else
        return u;  // not instantiated: exact_pair needs the SiLU
#endif
      }
      __m512 v = _mm512_mul_ps(a, scale);
      if constexpr (kPost) {
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(post_scale[j]), _mm512_set1_ps(post_shift[j]));
        v = _mm512_min_ps(post_hi, _mm512_max_ps(post_lo, v));
#ifdef QSEARCH_EPILOGUE512_SILU
        if constexpr (kSilu) v = _mm512_mul_ps(v, ::qsearch::kernels::detail::sigmoid16(v));
#endif
      }
      return v;
    });
  } else {
    store_columns(e.ldc_n_, rows, row0, runs, nruns, cols, col0, out, [&](int j) {
      return accumulate16(tile + j * 16, shift, static_cast<int32_t>(bias[j]));
    });
  }
}

// ----- the codes of the float value (epilogue_avx2.cc quantize_t32 / quantize_runs) -----

// The constants of one store call (epilogue_avx2.cc QuantizeConsts), loaded once.
struct QuantizeConsts16 {
  __m128i shift;
  __m512 scale, q_scale, lo, hi, post_lo, post_hi;
  float scale1;  // 2^-F
  const int64_t* bias;
  const float *post_scale, *post_shift;
  SiluCodes16 silu;  // kSilu

  QuantizeConsts16(const Epilogue& e, QuantizeStore mode) : silu(e.q_scale_) {
    const bool merged = mode == QuantizeStore::kMerged || mode == QuantizeStore::kMergedFinite;
    shift = _mm_cvtsi32_si128(e.shift_);
    scale = _mm512_set1_ps(e.scale_);
    q_scale = _mm512_set1_ps(e.q_scale_);
    lo = _mm512_set1_ps(merged ? e.q_clamp_lo_ : e.q_lo_);
    hi = _mm512_set1_ps(merged ? e.q_clamp_hi_ : e.q_hi_);
    post_lo = _mm512_set1_ps(e.post_lo_);
    post_hi = _mm512_set1_ps(e.post_hi_);
    scale1 = e.scale_;
    bias = e.bias_;
    post_scale = e.post_scale_;
    post_shift = e.post_shift_;
  }
};

// The codes of one column's 16 lanes t[0..16) (column col) as int32 within the code range:
// epilogue_avx2.cc quantize16's operations on one vector (QuantizeStore, epilogue.h).
template <QuantizeStore kMode, quant::Rounding R, bool kShift>
__attribute__((always_inline)) inline __m512i quantize16(const QuantizeConsts16& k,
                                                         const int32_t* t, int64_t col) {
  __m512i a = load_sums(t);
  if constexpr (kShift) a = _mm512_sll_epi32(a, k.shift);
  __m512 v =
      _mm512_cvtepi32_ps(_mm512_add_epi32(a, _mm512_set1_epi32(static_cast<int32_t>(k.bias[col]))));
  if constexpr (kMode == QuantizeStore::kMergedFinite || kMode == QuantizeStore::kSiluUnclamped) {
    v = _mm512_fmadd_ps(v, _mm512_set1_ps(k.post_scale[col] * k.scale1),
                        _mm512_set1_ps(k.post_shift[col]));
  } else {
    v = _mm512_mul_ps(v, k.scale);
    if constexpr (kMode != QuantizeStore::kPlain) {
      v = _mm512_fmadd_ps(v, _mm512_set1_ps(k.post_scale[col]), _mm512_set1_ps(k.post_shift[col]));
    }
  }
  if constexpr (kMode == QuantizeStore::kPost || kMode == QuantizeStore::kSilu) {
    v = _mm512_min_ps(k.post_hi, _mm512_max_ps(k.post_lo, v));  // NaN passes
  }
  // The codes of v * sigmoid16(v) (silu_codes16: the same codes as that product's, cheaper, and
  // 0 for NaN already).
  constexpr bool kAnySilu = kMode == QuantizeStore::kSilu || kMode == QuantizeStore::kSiluUnclamped;
#ifdef QSEARCH_EPILOGUE512_SILU
  if constexpr (kAnySilu) {
    v = silu_codes16<R>(v, k.silu);
  } else {
    v = round16<R>(_mm512_mul_ps(v, k.q_scale));
  }
#else
  v = round16<R>(_mm512_mul_ps(v, k.q_scale));
#endif
  v = _mm512_min_ps(k.hi, _mm512_max_ps(k.lo, v));
  if constexpr (kMode == QuantizeStore::kPost || kMode == QuantizeStore::kMerged) {
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);  // NaN -> +0
  }
  return _mm512_cvtps_epi32(v);
}

template <typename Out, quant::Rounding R, QuantizeStore kMode, bool kShift>
void quantize_store(const Epilogue& e, const int32_t* tile, int rows, int64_t row0,
                    const int64_t (*runs)[3], int nruns, int cols, int64_t col0, Out* out) {
  const QuantizeConsts16 k(e, kMode);
  store_columns(e.ldc_n_, rows, row0, runs, nruns, cols, col0, out,
                [&](int j) { return quantize16<kMode, R, kShift>(k, tile + j * 16, col0 + j); });
}

// ----- the EpilogueFn32 / EpilogueFnRuns entry points -----

// Store(e, tile, rows, row0, runs, nruns, cols, col0, out) as Epilogue::run_t32 and run_t32_runs.
template <typename Out, auto Store>
void t32(const Epilogue& e, const int32_t* tile, int rows, int cols, int64_t row0, int64_t col0,
         void* c) {
  Store(e, tile, rows, row0, nullptr, 0, cols, col0, static_cast<Out*>(c));
}
template <typename Out, auto Store>
void runs(const Epilogue& e, const int32_t* tile, const int64_t (*rs)[3], int nruns, int cols,
          int64_t col0, void* c) {
  Store(e, tile, 16, 0, rs, nruns, cols, col0, static_cast<Out*>(c));
}

// The quantizing store with kShift chosen per call (acc_shift != 0), as epilogue_avx2.cc.
template <typename Out, quant::Rounding R, QuantizeStore kMode>
void quantize_any(const Epilogue& e, const int32_t* tile, int rows, int64_t row0,
                  const int64_t (*rs)[3], int nruns, int cols, int64_t col0, Out* out) {
  if (e.shift_ != 0) {
    quantize_store<Out, R, kMode, true>(e, tile, rows, row0, rs, nruns, cols, col0, out);
  } else {
    quantize_store<Out, R, kMode, false>(e, tile, rows, row0, rs, nruns, cols, col0, out);
  }
}

// {run_t32, run_t32_runs} of one store.
struct Pair {
  EpilogueFn32 t32 = nullptr;
  EpilogueFnRuns runs = nullptr;
};
template <typename Out, auto Store>
Pair pair() {
  return {&t32<Out, Store>, &runs<Out, Store>};
}

// f(Code{}) for the code type of `out`; null for 64-bit codes (no such store).
template <typename F>
Pair for_codes(DType out, F f) {
  return with_code_type(out, [&](auto code) -> Pair {
    if constexpr (sizeof(code) == 8) {
      return {};
    } else {
      return f(code);
    }
  });
}

Pair quantize_pair(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m) {
  if (f.width > 24) return {};
#ifndef QSEARCH_EPILOGUE512_SILU
  if (m == QuantizeStore::kSilu || m == QuantizeStore::kSiluUnclamped) return {};
#endif
  return for_codes(quant::storage_dtype(f), [&](auto code) {
    using Out = decltype(code);
    return quant::with_rounding(r, [m](auto R) -> Pair {
      constexpr quant::Rounding kR = decltype(R)::value;
      using Q = QuantizeStore;
      switch (m) {
        case Q::kPlain:
          return pair<Out, &quantize_any<Out, kR, Q::kPlain>>();
        case Q::kPost:
          return pair<Out, &quantize_any<Out, kR, Q::kPost>>();
        case Q::kMerged:
          return pair<Out, &quantize_any<Out, kR, Q::kMerged>>();
        case Q::kMergedFinite:
          return pair<Out, &quantize_any<Out, kR, Q::kMergedFinite>>();
        case Q::kSilu:
          return pair<Out, &quantize_any<Out, kR, Q::kSilu>>();
        case Q::kSiluUnclamped:
          return pair<Out, &quantize_any<Out, kR, Q::kSiluUnclamped>>();
      }
      return {};
    });
  });
}

Pair exact_pair(DType out, bool post, bool silu, bool fast) {
  switch (out) {
    case DType::kInt32:
      return pair<int32_t, &exact_store<int32_t, false, false>>();
    case DType::kFloat32:
      if (!post) return pair<float, &exact_store<float, false, false>>();
#ifdef QSEARCH_EPILOGUE512_SILU
      if (silu && fast) return pair<float, &exact_store<float, true, true, true>>();
      if (silu) return pair<float, &exact_store<float, true, true>>();
#else
      if (silu) return {};
#endif
      return pair<float, &exact_store<float, true, false>>();
    default:
      return {};
  }
}

Pair requantize_pair(DType out, quant::Rounding rounding) {
  return for_codes(out, [&](auto code) {
    using Out = decltype(code);
    return quant::with_rounding(
        rounding, [](auto R) { return pair<Out, &requantize_store<Out, decltype(R)::value>>(); });
  });
}

// ChannelLanes::run (epilogue.cc lanes_store) on one vector: 16 channels of one pixel as the
// lanes, each with its own bias, scale and shift; the same operations in the same order.
template <typename Code, quant::Rounding R, bool kPost, bool kSilu>
void lanes_store16(const ChannelLanes& l, const int32_t* acc, void* out, int64_t stride) {
  const __m512i a = _mm512_add_epi32(_mm512_sll_epi32(load_sums(acc), _mm_cvtsi32_si128(l.shift_)),
                                     _mm512_loadu_si512(l.bias_));
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(l.scale_));
  if constexpr (kPost) {
    const __m512 u =
        _mm512_fmadd_ps(v, _mm512_loadu_ps(l.post_scale_), _mm512_loadu_ps(l.post_shift_));
    v = _mm512_min_ps(_mm512_set1_ps(l.post_hi_), _mm512_max_ps(_mm512_set1_ps(l.post_lo_), u));
  }
  Code* o = static_cast<Code*>(out);
  if constexpr (std::is_same_v<Code, float>) {
#ifdef QSEARCH_EPILOGUE512_SILU
    if constexpr (kSilu) v = _mm512_mul_ps(v, ::qsearch::kernels::detail::sigmoid16(v));
#endif
    alignas(64) float buf[16];
    _mm512_store_ps(buf, v);
    for (int c = 0; c < l.nc_; ++c) o[c * stride] = buf[c];
  } else {
    // quant/quantize_avx2.h Quantize8::codes on 16 lanes: round, clamp, NaN -> 0, convert.
    // The codes of v, or of v * sigmoid16(v) (silu_codes16: the same codes, cheaper).
    __m512 q;
#ifdef QSEARCH_EPILOGUE512_SILU
    if constexpr (kSilu) {
      q = silu_codes16<R>(v, SiluCodes16(l.q_scale_));
    } else {
      q = round16<R>(_mm512_mul_ps(v, _mm512_set1_ps(l.q_scale_)));
    }
#else
    q = round16<R>(_mm512_mul_ps(v, _mm512_set1_ps(l.q_scale_)));
#endif
    alignas(64) int32_t buf[16];
    _mm512_store_si512(static_cast<void*>(buf),
                       clamp_codes16(q, _mm512_set1_ps(l.q_lo_), _mm512_set1_ps(l.q_hi_)));
    for (int c = 0; c < l.nc_; ++c) o[c * stride] = static_cast<Code>(buf[c]);
  }
}

template <typename Code, quant::Rounding R>
LanesFn lanes_for(bool post, bool silu) {
  if (!post) return &lanes_store16<Code, R, false, false>;
#ifdef QSEARCH_EPILOGUE512_SILU
  if (silu) return &lanes_store16<Code, R, true, true>;
#else
  if (silu) return nullptr;
#endif
  return &lanes_store16<Code, R, true, false>;
}

}  // namespace

LanesFn lanes_store_avx512(DType out, quant::Rounding r, bool post, bool silu) {
  if (out == DType::kFloat32) return lanes_for<float, quant::Rounding::kHalfToEven>(post, silu);
  if (out == DType::kInt64) return nullptr;
  return with_code_type(out, [&](auto code) -> LanesFn {
    using Code = decltype(code);
    return quant::with_rounding(r, [&](auto R) { return lanes_for<Code, R.value>(post, silu); });
  });
}

EpilogueFn32 requantize32_t32_avx512(DType out, quant::Rounding rounding) {
  return requantize_pair(out, rounding).t32;
}
EpilogueFnRuns requantize32_runs_avx512(DType out, quant::Rounding rounding) {
  return requantize_pair(out, rounding).runs;
}
EpilogueFn32 exact_t32_avx512(DType out, bool post, bool silu, bool fast) {
  return exact_pair(out, post, silu, fast).t32;
}
EpilogueFnRuns exact_runs_avx512(DType out, bool post, bool silu, bool fast) {
  return exact_pair(out, post, silu, fast).runs;
}
EpilogueFn32 quantize_t32_avx512(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m) {
  return quantize_pair(f, r, m).t32;
}
EpilogueFnRuns quantize_runs_avx512(const quant::FixedFormat& f, quant::Rounding r,
                                    QuantizeStore m) {
  return quantize_pair(f, r, m).runs;
}

}  // namespace qsearch::kernels::fixed::detail

#pragma GCC pop_options

#endif  // __x86_64__
