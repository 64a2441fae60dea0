#include "kernels/fixed/ref/eltwise_ref.h"

#include <algorithm>

#include "core/check.h"
#include "quant/quantize.h"

namespace qsearch::kernels::fixed::ref {

using quant::load_code;
using quant::store_code;

namespace {
// The exact aligned sum a * 2^(F - fa) + b * 2^(F - fb), F = max(fa, fb), in __int128.
__int128_t aligned_sum(int64_t a, int a_frac, int64_t b, int b_frac) {
  const int f = std::max(a_frac, b_frac);
  __int128_t x = a, y = b;
  for (int i = a_frac; i < f; ++i) x *= 2;
  for (int i = b_frac; i < f; ++i) y *= 2;
  return x + y;
}
}  // namespace

void requantize(const void* in, DType in_dtype, int in_frac, int64_t n, const FixedFormat& out,
                Rounding r, void* out_codes) {
  for (int64_t i = 0; i < n; ++i) {
    store_code(out_codes, quant::storage_dtype(out), i,
               quant::requantize(load_code(in, in_dtype, i), in_frac, out, r));
  }
}

void float_op_quantize(FloatOp op, const float* x, const float* s, bool s_first, int64_t rows,
                       int64_t inner, const FixedFormat& out, Rounding r, void* codes, float* y) {
  for (int64_t i = 0; i < rows * inner; ++i) {
    const float a = s_first ? s[i / inner] : x[i], b = s_first ? x[i] : s[i / inner];
    const float v = op == FloatOp::kAdd ? a + b : a * b;
    store_code(codes, quant::storage_dtype(out), i, quant::quantize(v, out, r));
    if (y != nullptr) y[i] = v;
  }
}

void add(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
         int64_t n, const FixedFormat& out, Rounding r, void* out_codes) {
  for (int64_t i = 0; i < n; ++i) {
    const __int128_t s =
        aligned_sum(load_code(a, a_dtype, i), a_frac, load_code(b, b_dtype, i), b_frac);
    QSEARCH_CHECK(s >= INT64_MIN && s <= INT64_MAX);
    store_code(out_codes, quant::storage_dtype(out), i,
               quant::requantize(static_cast<int64_t>(s), std::max(a_frac, b_frac), out, r));
  }
}

int add_exact(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
              int64_t n, int64_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const __int128_t s =
        aligned_sum(load_code(a, a_dtype, i), a_frac, load_code(b, b_dtype, i), b_frac);
    QSEARCH_CHECK(s >= INT64_MIN && s <= INT64_MAX);
    out[i] = static_cast<int64_t>(s);
  }
  return std::max(a_frac, b_frac);
}

void relu(const void* in, DType dtype, int64_t n, void* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = load_code(in, dtype, i);
    store_code(out, dtype, i, v > 0 ? v : 0);
  }
}

void max_pool2d(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t h, int64_t w,
                const MaxPool2dParams& p, void* y) {
  const int64_t oh = p.out_h(h), ow = p.out_w(w);
  for (int64_t plane = 0; plane < batch * channels; ++plane) {
    for (int64_t py = 0; py < oh; ++py) {
      for (int64_t px = 0; px < ow; ++px) {
        bool any = false;
        int64_t best = 0;
        for (int64_t u = 0; u < p.kernel_h; ++u) {
          for (int64_t v = 0; v < p.kernel_w; ++v) {
            const int64_t iy = py * p.stride_h - p.pad_top + u * p.dilation_h;
            const int64_t ix = px * p.stride_w - p.pad_left + v * p.dilation_w;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;  // padding is -inf
            const int64_t code = load_code(x, dtype, (plane * h + iy) * w + ix);
            if (!any || code > best) best = code;
            any = true;
          }
        }
        QSEARCH_CHECK(any);
        store_code(y, dtype, (plane * oh + py) * ow + px, best);
      }
    }
  }
}

}  // namespace qsearch::kernels::fixed::ref
