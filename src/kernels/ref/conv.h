// Reference (oracle) convolution and inference batch normalization: the obvious loops.
//
// Conv sums run over (c, i, j) in ascending order in double precision, bias added last, and
// are rounded to float once. Batch normalization is computed in double and rounded once.
//
//   kernels::Conv2dParams p{.batch = 1, .in_channels = 1, .in_h = 5, .in_w = 5,
//                           .out_channels = 2, .out_h = 5, .out_w = 5,
//                           .kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_left = 1};
//   kernels::ref::conv2d_f32(p, x, w /*[2,1,3,3]*/, bias /*[2] or nullptr*/, y);
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// ONNX Conv, 2-D, NCHW (see Conv2dParams). bias may be nullptr. y must not alias x.
void conv2d_f32(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);

// ONNX BatchNormalization, inference (see BatchNormParams). scale, bias, mean, var are
// [channels]. y may equal x (in place).
void batch_norm_f32(const BatchNormParams& p, const float* x, const float* scale, const float* bias,
                    const float* mean, const float* var, float* y);

}  // namespace qsearch::kernels::ref
