// B-operand packing for the training GEMMs, into a PackedB that is reused from step to step.
//
// kernels::pack_b allocates (and zero-fills) a new panel buffer per call, which is right for
// weights packed once per plan but dominates a training step that packs activations and
// gradients on every pass. These fill the same layout (kernels/gemm.h: ceil(N / NR) panels of
// NR columns, each k-major [K][NR], zero-padded past N) into storage kept by the caller, and
// pack_conv_columns goes straight from the image to the panels of the im2col matrix, without
// the im2col buffer:
//
//   kernels::PackedB pb;                                 // kept across steps
//   pack_b_into(x, m, k, /*trans=*/false, pb);           // B = x [m, k]
//   kernels::gemm_f32_packed(n, dyt, m, pb, dw, k, {});  // dW = dY^T x
#pragma once

#include <cstdint>

#include "kernels/gemm.h"
#include "kernels/params.h"

namespace qsearch::train {

// out = kernels::pack_b(b, k, n, trans) (same layout and values), reusing out's storage.
void pack_b_into(const float* b, int64_t k, int64_t n, bool trans, kernels::PackedB& out);

// B[q, t] = col_img[t, p] for q = img * pixels + p: the transposed im2col matrix of `images`
// consecutive images of one group (kernels::Conv2dParams p with p.in_channels = channels of the
// group, p.groups = 1), rows = pixels of all images in order, columns = taps (c, i, j). x points
// to the group's first channel of the first image; consecutive images are image_stride floats
// apart.
void pack_conv_columns(const kernels::Conv2dParams& p, const float* x, int64_t image_stride,
                       int64_t images, kernels::PackedB& out);

}  // namespace qsearch::train
