// Fast numpy matmul of two activations over a broadcast batch (attention's q @ k^T and
// softmax @ v), the twin of kernels::ref::matmul_f32 (same MatMulParams).
//
// Each output element is one chain acc = 0; for k ascending: acc = fma(a_ik, b_kj, acc), so the
// GEMM error bound of docs/numerics.md holds with n = K and no epilogue:
// |fast - ref| <= (K + 4) * FLT_EPSILON * sum_k |a_ik * b_kj|. Rows of all batches are split over
// parallel_for (an output is computed by one thread: results do not depend on the thread count).
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels {

// y must not alias a or b.
void matmul_f32(const MatMulParams& p, const float* a, const float* b, float* y);

}  // namespace qsearch::kernels
