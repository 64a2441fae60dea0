// Zero insertion for ConvTranspose (issue 11): a transposed convolution is the convolution of
// the input with s - 1 zeros inserted between its elements along H and W and `begin` / `end`
// zeros around, by the flipped, channel-transposed weight at stride 1. The zeros are the code 0
// in every fixed-point format (q(0) = 0) and +0.0f in float, so one kernel over raw elements of
// `elem_size` bytes serves the integer codes (int8..int64) and float32 alike.
//
//   ZeroInsertParams p{.planes = N * C, .in_h = 2, .in_w = 2, .stride_h = 2, .stride_w = 2,
//                      .begin_h = 1, .begin_w = 1, .end_h = 2, .end_w = 2};
//   zero_insert(p, 1, x /*int8 [N*C, 2, 2]*/, y /*[N*C, 6, 6]*/);
//   // y[1][1] = x[0][0], y[1][3] = x[0][1], y[3][1] = x[1][0], ...; all else 0.
#pragma once

#include <cstdint>

namespace qsearch::kernels::fixed {

struct ZeroInsertParams {
  int64_t planes = 0, in_h = 0, in_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t begin_h = 0, begin_w = 0, end_h = 0, end_w = 0;
  int64_t out_h() const { return (in_h - 1) * stride_h + 1 + begin_h + end_h; }
  int64_t out_w() const { return (in_w - 1) * stride_w + 1 + begin_w + end_w; }
};

// y[p, begin_h + i * stride_h, begin_w + j * stride_w] = x[p, i, j], every other element of y
// zero (equal to its twin ref::zero_insert in kernels/fixed/ref/zero_insert_ref.h). Elements are
// `elem_size` bytes (1, 2, 4 or 8). Rows in parallel. y must not alias x.
void zero_insert(const ZeroInsertParams& p, int elem_size, const void* x, void* y);

}  // namespace qsearch::kernels::fixed
