// Fast pooling over NCHW: same contracts as kernels/ref/pool.h (see Pool2dParams).
//
//   kernels::max_pool2d_f32(p, x, y);
//
// Each output row is pooled in two passes: the window's rows are reduced into a row buffer
// (contiguous, vectorised), then the buffer is reduced across the window's columns. Max pooling
// is exact (bit-identical to the reference, NaN propagating). Average pooling sums in float, so
// |fast - ref| <= (taps + 1) * FLT_EPSILON * mean of |x| over the window's taps.
// Max pooling runs both passes in 8-lane vectors (pass 2 from stride phases of the row, for
// stride_w <= 4). Parallel over (image, channel) planes. Stack: about 180 KB per call (tap
// tables, a row and its phases);
// images wider than 4096 columns fall back to the reference kernels.
#pragma once

#include "kernels/params.h"

namespace qsearch::kernels {

void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y);
void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y);

// y[r] = mean of x[r * spatial + s] over s (GlobalAveragePool of [rows = N * C, spatial]): the
// reference's double sum in index order per row, so the same bits; 8 rows' sums run side by
// side (independent add chains) and rows are split over parallel_for.
void global_avg_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y);

}  // namespace qsearch::kernels
