// Reference integer Conv2d: direct convolution loops over NCHW codes with exact __int128 sums,
// no im2col, no packing. The oracle for kernels/fixed/conv2d.h (which must equal it exactly).
#pragma once

#include <cstdint>

#include "kernels/fixed/conv2d.h"

namespace qsearch::kernels::fixed::ref {

// Same contract as fixed::conv2d() but reads the unpacked weights from `w`.
void conv2d(const void* x, int64_t batch, const Conv2dGeometry& g, const Conv2dWeights& w,
            const GemmParams& p, void* y);

}  // namespace qsearch::kernels::fixed::ref
