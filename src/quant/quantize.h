// Vectorised fixed-point conversions over whole buffers and tensors. Each element is converted
// exactly as the scalar spec in quant/fixed_point.h does (tests check equality bit for bit);
// the loops use AVX2 where the build baseline has it.
//
//   Tensor x = ...;                                          // float32, any shape
//   FixedFormat fmt{8, 4, true};
//   Tensor codes = quantize(x, fmt, Rounding::kHalfToEven);  // int8 (storage_dtype(fmt))
//   Tensor back = dequantize(codes, fmt.frac);               // float32, code * 2^-4
//   Tensor fq = fake_quantize(x, fmt, Rounding::kHalfToEven);  // == MASE's _integer_quantize
//   Tensor c2 = requantize(codes, 4, FixedFormat{4, 1, true}, Rounding::kFloor);  // int8 codes
//
// Buffer versions write into caller-owned memory (no allocation) and accept in == out where the
// element types match. Codes are integer tensors of a dtype that holds the format
// (dtype_holds()); these functions QSEARCH_CHECK that, since a mismatch is a caller bug.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/tensor.h"
#include "quant/fixed_point.h"

namespace qsearch::quant {

// codes[i] = quantize(x[i], f, r), stored as `code_dtype` (an integer dtype holding f).
void quantize(std::span<const float> x, const FixedFormat& f, Rounding r, void* codes,
              DType code_dtype);
// A tensor of storage_dtype(f) with x's shape (x float32).
Tensor quantize(const Tensor& x, const FixedFormat& f, Rounding r);

// out[i] = dequantize(codes[i], frac) for n codes of `code_dtype`.
void dequantize(const void* codes, DType code_dtype, int64_t n, int frac, float* out);
Tensor dequantize(const Tensor& codes, int frac);

// out[i] = fake_quantize(x[i], f, r); out may alias x.
void fake_quantize(std::span<const float> x, const FixedFormat& f, Rounding r,
                   std::span<float> out);
Tensor fake_quantize(const Tensor& x, const FixedFormat& f, Rounding r);

// out[i] = requantize(in[i], from_frac, to, r) for n codes; out has `out_dtype` (holding `to`).
// The fast version for the integer engine is kernels/fixed/eltwise.h; this is the plain loop.
void requantize(const void* in, DType in_dtype, int64_t n, int from_frac, const FixedFormat& to,
                Rounding r, void* out, DType out_dtype);
Tensor requantize(const Tensor& codes, int from_frac, const FixedFormat& to, Rounding r);

// Reads element i of an integer buffer of dtype t as int64 / writes v (which must fit).
int64_t load_code(const void* p, DType t, int64_t i);
void store_code(void* p, DType t, int64_t i, int64_t v);

}  // namespace qsearch::quant
