// Test helpers for kernels/fixed: seeded random codes in a format, and exact comparison of a fast
// kernel's output with its ref/ twin that prints everything needed to reproduce a mismatch.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/fixed/gemm.h"
#include "quant/fixed_point.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed::testing {

enum class Fill { kRandom, kZero, kMin, kMax, kExtremes };

// A tensor of `n` codes of dtype t, all inside format f.
inline Tensor make_codes(DType t, int64_t n, const FixedFormat& f, Rng& rng,
                         Fill fill = Fill::kRandom) {
  Tensor out({n}, t);
  const int64_t lo = f.min_code(), hi = f.max_code();
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = 0;
    switch (fill) {
      case Fill::kRandom:
        v = lo + static_cast<int64_t>(rng.uniform_int(span));
        break;
      case Fill::kZero:
        v = 0;
        break;
      case Fill::kMin:
        v = lo;
        break;
      case Fill::kMax:
        v = hi;
        break;
      case Fill::kExtremes:
        v = rng.uniform_int(2) ? lo : hi;
        break;
    }
    quant::store_code(out.raw(), t, i, v);
  }
  return out;
}

// The narrowest signed/unsigned format of a random width that `t` holds (weights: signed only).
inline FixedFormat random_format(DType t, Rng& rng, bool allow_unsigned, int frac_lo = -4,
                                 int frac_hi = 12) {
  int lo_w = 1, hi_w = 8;
  bool is_signed = true;
  switch (t) {
    case DType::kInt8:
      lo_w = 2, hi_w = 8;
      break;
    case DType::kUInt8:
      lo_w = 1, hi_w = 8, is_signed = false;
      break;
    case DType::kInt16:
      lo_w = 9, hi_w = 16;
      break;
    default:  // int32 codes: widths up to 24 keep random GEMM cases inside int64; the edge tests
              // cover full 32-bit codes
      lo_w = 17, hi_w = 24;
      break;
  }
  if (allow_unsigned && t != DType::kUInt8 && rng.uniform_int(4) == 0) {
    is_signed = false;
    hi_w -= 1;  // unsigned w fits a signed dtype of w + 1 bits
    lo_w = std::min(lo_w, hi_w);
  }
  const int w = lo_w + static_cast<int>(rng.uniform_int(hi_w - lo_w + 1));
  const int f = frac_lo + static_cast<int>(rng.uniform_int(frac_hi - frac_lo + 1));
  return {w, f, is_signed};
}

inline int64_t element_bits(const void* p, DType t, int64_t i) {
  if (t == DType::kFloat32) {
    uint32_t b;
    std::memcpy(&b, static_cast<const float*>(p) + i, 4);
    return b;
  }
  return quant::load_code(p, t, i);
}

inline std::string describe(const GemmWeights& w, const GemmParams& p, Isa isa, int64_t m) {
  return fmt::format(
      "isa={} M x K x N = {} x {} x {} A={}:{} B={}:{} bias={} acc={} output={} out_format={} "
      "rounding={}{} ldc=({}, {})",
      isa_name(isa), m, w.k, w.n, dtype_name(w.a_dtype), quant::format_name(w.a_format),
      dtype_name(w.b_dtype), quant::format_name(w.b_format),
      w.bias ? quant::format_name(w.bias_format) : "none",
      p.acc == AccType::kInt32 ? "int32" : "int64", static_cast<int>(p.output),
      quant::format_name(p.out_format), quant::rounding_name(p.rounding), p.relu ? " relu" : "",
      p.ldc_m, p.ldc_n);
}

// Compares n elements of dtype t exactly (floats by bit pattern). Prints the first mismatches.
inline ::testing::AssertionResult equal_exactly(const void* ref, const void* fast, DType t,
                                                int64_t n, const std::string& what) {
  int64_t bad = 0;
  std::string first;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = element_bits(ref, t, i), f = element_bits(fast, t, i);
    if (r != f) {
      if (++bad <= 3) first += fmt::format("\n  at {}: reference = {}, fast = {}", i, r, f);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << n << " elements differ (" << what << ")" << first;
}

}  // namespace qsearch::kernels::fixed::testing
