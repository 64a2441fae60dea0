// Fast pooling over NCHW: same contracts as kernels/ref/pool.h (see Pool2dParams).
//
//   kernels::max_pool2d_f32(p, x, y);
//
// Each output row is pooled in two passes: the window's rows are reduced into a row buffer
// (contiguous, vectorised), then the buffer is reduced across the window's columns. Max pooling
// is exact (bit-identical to the reference, NaN propagating). Average pooling sums in float, so
// |fast - ref| <= (taps + 1) * FLT_EPSILON * mean of |x| over the window's taps.
// Parallel over (image, channel) planes. Stack: about 115 KB per call (tap tables and a row);
// images wider than 4096 columns fall back to the reference kernels.
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels {

void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y);

}  // namespace qsearch::kernels
