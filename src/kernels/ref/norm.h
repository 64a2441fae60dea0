// Reference (oracle) reductions and layer normalisation (ReduceParams, LayerNormParams in
// kernels/params.h): sums, means and variances in double, each output rounded to float32 once;
// max is exact. The fast twins are in kernels/norm.h.
//
//   kernels::ReduceParams p{.op = kernels::ReduceOp::kMean, .outer = 4, .axis = 16, .inner = 1};
//   kernels::ref::reduce_f32(p, x, y);   // y[4]: the mean of each row of 16
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// Y[o, i] = mean / sum / max over a of X[o, a, i]; y must not alias x.
void reduce_f32(const ReduceParams& p, const float* x, float* y);

// Layer normalisation of each row; scale / bias have p.n elements (bias may be null = 0).
// y must not alias x.
void layer_norm_f32(const LayerNormParams& p, const float* x, const float* scale, const float* bias,
                    float* y);

}  // namespace qsearch::kernels::ref
