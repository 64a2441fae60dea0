// Fast reductions, layer normalisation and softmax in float32, twins of kernels/ref/norm.h and
// ref::softmax_f32. Rows are split over parallel_for; each output is computed by one thread in a
// fixed order, so results do not depend on the thread count.
//
// Error bounds against the double-precision reference (docs/numerics.md, "Float kernels";
// tested in tests/kernels/norm_test.cc), n = the reduced length, ε = FLT_EPSILON:
//   sum / mean:  |fast - ref| <= (n + 2)·ε·Σ|x| (/ n for the mean); max is exact;
//   layer norm:  |fast - ref| <= (n + 8)·ε·(|scale_j|·|x_j - mean| / σ + |bias_j|) + ε·|ref|
//                with σ = sqrt(var + eps), for rows whose variance is not below ε·mean²;
//   softmax:     |fast - ref| <= (n + 8)·ε·|ref| + ε·2^-126.
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels {

// Like ref::reduce_f32, summing in float in index order.
void reduce_f32(const ReduceParams& p, const float* x, float* y);

// Like ref::layer_norm_f32 in float: the mean as fl(sum / n) plus its correction
// c = sum(x - fl(mean)) / n, var = sum(x - fl(mean))^2 / n - c^2, then
// y = ((x - fl(mean)) - c) * (1 / sqrt(var + eps)) * scale + bias (sums in 8 lanes with AVX2).
void layer_norm_f32(const LayerNormParams& p, const float* x, const float* scale, const float* bias,
                    float* y);

// Like ref::softmax_f32: max, then exp(x - max) (kernels/vec_math.h) summed in float (8 lanes
// with AVX2), then each multiplied by 1 / sum.
void softmax_f32(const SoftmaxParams& p, const float* x, float* y);

}  // namespace qsearch::kernels
