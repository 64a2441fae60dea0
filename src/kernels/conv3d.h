// The data movement of a 3-D convolution computed as a 2-D one (issue 14; ir::Im2Col3dAttrs):
// the depth and height taps of every output position gathered into channels, so that a Conv of
// kernel (1, kW) over the result is the 3-D convolution, whose output [N, M, D' * H', W'] is the
// NCDHW output [N, M, D', H', W'] in memory. Pure copies and zeros: the same bits on every path.
#pragma once

#include <cstdint>

namespace qsearch::kernels {

struct Im2Col3dParams {
  int64_t batch = 0, channels = 0;
  int64_t in_d = 0, in_h = 0, width = 0;
  int64_t out_d = 0, out_h = 0;
  int64_t kernel_d = 1, kernel_h = 1;
  int64_t stride_d = 1, stride_h = 1;
  int64_t dilation_d = 1, dilation_h = 1;
  int64_t pad_d = 0, pad_h = 0;  // begin pads (the end pads only bound out_d / out_h)
  // A 3-D transposed convolution's taps (ir::Im2Col3dAttrs::transposed): output row od reads
  // input row (od + pad_d - i * dilation_d) / stride_d when that divides exactly, else 0.
  bool transposed = false;
};

// x [N, C, D, H, W] -> y [N, C * kD * kH, out_d * out_h, W]; elem_size bytes per element.
void im2col3d(const Im2Col3dParams& p, int elem_size, const void* x, void* y);

// Its adjoint (training's backward): dx [N, C, D, H, W] = the sum of the gathered positions'
// gradients dy [N, C * kD * kH, out_d * out_h, W]; dx is overwritten. Each dx element sums in a
// fixed order (channel taps, then output rows), so the result does not depend on threads.
void im2col3d_backward(const Im2Col3dParams& p, const float* dy, float* dx);

}  // namespace qsearch::kernels
