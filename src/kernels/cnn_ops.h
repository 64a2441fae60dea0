// Fast kernels of the modern-CNN operators (issue 11): HardSigmoid / HardSwish, GlobalMaxPool,
// general Pad, Resize. Same contracts as their reference twins in kernels/ref/cnn_ops.h and
// bit-identical to them (the same one rounding per element; pad and max only move values).
// Large tensors are split over parallel_for by rows; each element is computed by one thread.
#pragma once

#include <cstdint>

#include "kernels/ref/cnn_ops.h"

namespace qsearch::kernels {

void hard_sigmoid_f32(float alpha, float beta, bool swish, const float* x, float* y, int64_t n);
void global_max_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y);
// Row by row: the rows of the output's last dim are copied whole (memcpy of the inside part).
void pad_f32(const PadParams& p, const float* x, float* y);
// The taps of each output row and column computed once (the same resize_tap / resize_value as
// the reference, so bit-identical), then rows of planes in parallel.
void resize_f32(const ResizeParams& p, const float* x, float* y);

}  // namespace qsearch::kernels
