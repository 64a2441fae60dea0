// Reference twins of kernels/fixed/eltwise.h: one obvious loop per op over int64 values, using the
// quant/ scalar spec. The fast kernels must equal these exactly.
#pragma once

#include <cstdint>

#include "kernels/fixed/eltwise.h"

namespace qsearch::kernels::fixed::ref {

void requantize(const void* in, DType in_dtype, int in_frac, int64_t n, const FixedFormat& out,
                Rounding r, void* out_codes);
void add(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
         int64_t n, const FixedFormat& out, Rounding r, void* out_codes);
int add_exact(const void* a, DType a_dtype, int a_frac, const void* b, DType b_dtype, int b_frac,
              int64_t n, int64_t* out);
void relu(const void* in, DType dtype, int64_t n, void* out);
void float_op_quantize(FloatOp op, const float* x, const float* s, bool s_first, int64_t rows,
                       int64_t inner, const FixedFormat& out, Rounding r, void* codes, float* y);
void max_pool2d(const void* x, DType dtype, int64_t batch, int64_t channels, int64_t h, int64_t w,
                const MaxPool2dParams& p, void* y);

}  // namespace qsearch::kernels::fixed::ref
