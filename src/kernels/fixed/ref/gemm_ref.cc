#include "kernels/fixed/ref/gemm_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed::ref {

int acc_frac_of(int a_frac, int b_frac, bool has_bias, int bias_frac) {
  return has_bias ? std::max(a_frac + b_frac, bias_frac) : a_frac + b_frac;
}

__int128_t shift_left(__int128_t v, int s) {
  if (v == 0) return 0;
  QSEARCH_CHECK(s >= 0 && s < 64);
  for (int i = 0; i < s; ++i) v *= 2;
  return v;
}

namespace {
int weights_acc_frac(const GemmWeights& w) {
  return acc_frac_of(w.a_format.frac, w.b_format.frac, w.bias != nullptr, w.bias_format.frac);
}
}  // namespace

__int128_t exact_accumulator(const void* a, int64_t lda, const GemmWeights& w, int64_t m,
                             int64_t n) {
  const int f = weights_acc_frac(w);
  __int128_t sum = 0;
  for (int64_t k = 0; k < w.k; ++k) {
    const __int128_t x = quant::load_code(a, w.a_dtype, m * lda + k);
    const __int128_t y = quant::load_code(w.b, w.b_dtype, k * w.stride_k + n * w.stride_n);
    sum += x * y;
  }
  const int prod_shift = f - (w.a_format.frac + w.b_format.frac);
  __int128_t acc = shift_left(sum, prod_shift);
  if (w.bias != nullptr) {
    acc += shift_left(quant::load_code(w.bias, w.bias_dtype, n), f - w.bias_format.frac);
  }
  return acc;
}

void store_exact(__int128_t acc, int acc_frac, const GemmParams& p, void* c, int64_t at) {
  QSEARCH_CHECK(acc >= std::numeric_limits<int64_t>::min() &&
                acc <= std::numeric_limits<int64_t>::max());
  const int64_t acc64 = static_cast<int64_t>(acc);
  switch (p.output) {
    case GemmOutput::kAccumulator:
      if (p.acc == AccType::kInt32) {
        QSEARCH_CHECK(acc64 >= std::numeric_limits<int32_t>::min() &&
                      acc64 <= std::numeric_limits<int32_t>::max());
        static_cast<int32_t*>(c)[at] = static_cast<int32_t>(acc64);
      } else {
        static_cast<int64_t*>(c)[at] = acc64;
      }
      break;
    case GemmOutput::kRequantize: {
      int64_t code = quant::requantize(acc64, acc_frac, p.out_format, p.rounding);
      code = std::min(std::max(code, p.clamp_lo), p.clamp_hi);  // a fused Clip
      quant::store_code(c, quant::storage_dtype(p.out_format), at,
                        p.relu ? std::max<int64_t>(code, 0) : code);
    } break;
    case GemmOutput::kFloat:
      // long double holds any int64 exactly and any power-of-two scaling of it, so the only
      // rounding is the final conversion to float.
      static_cast<float*>(c)[at] =
          static_cast<float>(std::ldexp(static_cast<long double>(acc64), -acc_frac));
      break;
  }
}

void gemm(const void* a, int64_t m, int64_t lda, const GemmWeights& w, const GemmParams& p,
          void* c) {
  const int f = weights_acc_frac(w);
  const int64_t ldc_m = p.ldc_m == 0 ? w.n : p.ldc_m;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < w.n; ++j) {
      store_exact(exact_accumulator(a, lda, w, i, j), f, p, c, i * ldc_m + j * p.ldc_n);
    }
  }
}

}  // namespace qsearch::kernels::fixed::ref
