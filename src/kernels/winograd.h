// Float Winograd convolution F(4x4, 3x3) for the float engine's stride-1 3x3 convs (NCHW).
//
//   PackedConvWeights pw = pack_conv_weights(w, M, C, 3, 3, 1);  // once, at plan time
//   if (winograd_preferred(p_of_the_plans_batch)) conv2d_winograd_f32(p, x, pw, y, ep);
//
// Math (Lavin & Gray, interpolation points 0, +-1, +-2, infinity): the output is cut into 4x4
// tiles; tile t of image b reads the 6x6 input patch d at rows 4 * ty - pad_top .. + 5 and
// columns 4 * tx - pad_left .. + 5 (zero outside the image), and
//   Y_tile[o] = epilogue(A^T [ sum_c U[o, c] (.) V[c] ] A),   U[o, c] = G W[o, c] G^T (6x6),
//   V[c] = B^T d_c B (6x6),
// so the 36 elementwise products become 36 GEMMs [M x C] x [C x tiles] (over the tiles of the
// whole batch), each run by the float GEMM microkernel (kernels/ukernel.h) on packed panels.
// U = (24 G) W (24 G)^T / 576 in float from the direct packing, a few panels at a time per work
// item (never stored); V, the GEMMs and A^T . A in float too.
// 144 multiply-adds per 4x4 output tile and channel pair become 36 (plus the transforms).
//
// Numerics: NOT the direct convolution's FMA chain. The transforms scale values by up to 8
// (A^T) and 5 (B^T), so the rounding error relative to the magnitude sum_k |w_k x_k| is larger
// than the direct conv's bound: within 1e-5 of it, 3.7e-6 measured (docs/numerics.md "Float
// Winograd", tests/kernels/winograd_test.cc). Because of that error the float engine
// (Mode::kFloat) uses it and fake quantization does not: fake-quantized values are rounded to
// grids and must match PyTorch-MASE's direct convolution bit for bit near the rounding edges.
// Results are the same for every thread count and blocking (each output is one fixed sequence of
// operations).
//
// Memory: no weights of its own (it reads the direct conv's packing); a zero-padded copy of the
// input (per call, on a per-thread buffer that grows to the largest call) and per work item
// 36 * tiles * C floats of transformed input (at most 4.7 MB, what C = 512 needs for 64 tiles),
// then per block of output channels up to 1.8 MB of transformed filters and 1.2 MB of GEMM
// output, which the output transform consumes before the next block (per-thread buffers too).
// Storing U would take 4x the 3x3 weights (ResNet-18 at 224: +225 MB); computing it costs about
// 126 vector operations per 8 (output, input) channel pairs per work item, against
// 36 * tiles / 8 vector FMAs per pair of GEMM, so items take as many tiles as that memory holds.
#pragma once

#include <cstdint>

#include "kernels/conv.h"
#include "kernels/params.h"

namespace qsearch::kernels {

// True when conv2d_winograd_f32 can run p: 3x3 kernel, stride 1, dilation 1, one group, padding
// >= 0, and the padded input's element offsets fit int32 (AVX2 gathers).
bool winograd_applies(const Conv2dParams& p);

// True when it applies and is expected to be faster than conv2d_f32_packed on p (a cost model
// fitted to the measured crossover, see winograd.cc): depends on the batch size, since the GEMMs
// run over the tiles of the whole batch (a 7x7 map has 4 tiles: slower at batch 1, 3x faster at
// batch 16). The float engine asks it once per conv, for the plan's batch, and runs that kernel
// at every batch (a sample's result must not depend on its batch, docs/numerics.md).
bool winograd_preferred(const Conv2dParams& p);

// Y = epilogue(conv(X, W)) for p (winograd_applies(p) must hold), with W the direct conv's
// packing of the 3x3 weights (pack_conv_weights(w, M, C, 3, 3, 1)): the filters' U is computed
// from it per work item, a few panels at a time, so a conv keeps one packing whichever kernel
// runs it. Y must overlap neither X nor the residual.
void conv2d_winograd_f32(const Conv2dParams& p, const float* x, const PackedConvWeights& w,
                         float* y, const Epilogue& epilogue);

}  // namespace qsearch::kernels
