// Reference (oracle) pooling: the obvious loops over each window (see Pool2dParams).
//
// Averages sum in double and divide once. Max pooling propagates NaN like PyTorch.
//
//   kernels::Pool2dParams p{.batch = 1, .channels = 1, .in_h = 4, .in_w = 4, .out_h = 2,
//                           .out_w = 2, .kernel_h = 2, .kernel_w = 2, .stride_h = 2,
//                           .stride_w = 2};
//   kernels::ref::max_pool2d_f32(p, x, y);
#pragma once

#include <cstdint>

#include "kernels/params.h"

namespace qsearch::kernels::ref {

// ONNX MaxPool over NCHW. A window with no tap inside the image gives -inf.
void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y);

// ONNX AveragePool over NCHW (count_include_pad as in Pool2dParams). A window whose divisor is
// 0 gives NaN (0/0); plan() never lets such a window exist.
void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y);

// ONNX GlobalAveragePool: Y[r] = mean over s of X[r, s] for r < rows (= batch * channels),
// s < spatial.
void global_avg_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y);

}  // namespace qsearch::kernels::ref
