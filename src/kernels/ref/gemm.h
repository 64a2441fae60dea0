// Reference (oracle) matrix products: the obvious loops, one output element at a time.
//
// Sums run over k in ascending order in double precision and are rounded to float once, so a
// reference result is the exact value up to ~1 ulp of float for well-scaled inputs; the fast
// kernels are tested against it with the bound of docs/numerics.md "Float kernels".
//
//   kernels::GemmParams p{.m = 2, .n = 3, .k = 4, .trans_b = true, .c_stride_n = 1};
//   kernels::ref::gemm_f32(p, x /*[2,4]*/, w /*[3,4]*/, bias /*[3]*/, y /*[2,3]*/);
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// ONNX Gemm (see GemmParams). `c` may be nullptr (no C term); y is [M, N] and must not alias
// a, b or c.
void gemm_f32(const GemmParams& p, const float* a, const float* b, const float* c, float* y);

// numpy matmul over a broadcast batch (see MatMulParams). y must not alias a or b.
void matmul_f32(const MatMulParams& p, const float* a, const float* b, float* y);

}  // namespace qsearch::kernels::ref
