// Element-wise integer kernels on fixed-point codes, where the result is exact:
//
//   requantize:  out[i] = clamp(round(in[i] * 2^(fo - fi)), lo, hi)        (quant::requantize)
//   add:         out[i] = requantize(a[i] * 2^(F - fa) + b[i] * 2^(F - fb), F, out_format),
//                F = max(fa, fb): the operands are aligned exactly, then rounded once
//   add_exact:   the aligned sum itself, int64 at binary point F
//   relu:        out[i] = max(in[i], 0)    (same binary point; exact on codes)
//   max_pool2d:  NCHW max over each window; padded positions never win (ONNX MaxPool pads with
//                -inf), so the result is always one of the input codes
//
// Codes are int8 | uint8 | int16 | int32 | int64 buffers (DType tags); outputs of requantize/add
// have quant::storage_dtype(out_format). Each fast kernel has a twin in
// kernels/fixed/ref/eltwise_ref.h and equals it exactly; the AVX2 paths run when the CPU has AVX2
// and max_isa() allows it. Kernels never throw; in == out is allowed where the dtypes match.
//
//   requantize(acc, DType::kInt32, 12, n, FixedFormat{8, 4, false}, Rounding::kHalfToEven, y);
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "quant/fixed_point.h"

namespace qsearch::kernels::fixed {

using quant::FixedFormat;
using quant::Rounding;

void requantize(const void* in, DType in_dtype, int in_frac, int64_t n, const FixedFormat& out,
                Rounding r, void* out_codes);

// True when |a| * 2^(F - fa) + |b| * 2^(F - fb) < 2^63 for every pair of codes: add()/add_exact()
// are only defined (and plan() must check) for such formats.
bool add_fits_int64(const FixedFormat& a, const FixedFormat& b);

void add(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
         int64_t n, const FixedFormat& out, Rounding r, void* out_codes);

// Writes the exact sums (binary point max(a_frac, b_frac)) and returns that binary point.
int add_exact(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
              int64_t n, int64_t* out);

void relu(const void* in, DType dtype, int64_t n, void* out);

// A float op and the quantizer after it in one pass (the int plans' unquantized Mul / Add before
// a quantized consumer, e.g. EfficientNet's squeeze-excitation x * s before the projection
// conv): v = fl32(x[i] op s[i / inner]) (IEEE float32, the float engine's BinaryStep bits; with
// `s_first` s op x, the graph's operand order), codes[i] = quant::quantize(v, out, r) stored as
// quant::storage_dtype(out), and y[i] = v when y is not null. x and y hold rows * inner floats,
// s one per row (inner = 1: the same shape as x). Equals quant::quantize() of the float op's
// output bit for bit (ref: kernels/fixed/ref/eltwise_ref.h).
enum class FloatOp { kAdd, kMul };
void float_op_quantize(FloatOp op, const float* x, const float* s, bool s_first, int64_t rows,
                       int64_t inner, const FixedFormat& out, Rounding r, void* codes, float* y);

struct MaxPool2dParams {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;

  int64_t out_h(int64_t in_h) const {
    return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w(int64_t in_w) const {
    return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

// x: [batch, channels, h, w] codes; y: [batch, channels, out_h, out_w] of the same dtype. Every
// window must contain at least one input position (plan() checks: pads < kernel extent).
void max_pool2d(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t h, int64_t w,
                const MaxPool2dParams& p, void* y);

}  // namespace qsearch::kernels::fixed
