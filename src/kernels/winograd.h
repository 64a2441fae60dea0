// Float Winograd convolution F(4x4, 3x3) for the float engine's stride-1 3x3 convs (NCHW).
//
//   WinogradWeights ww = pack_winograd_weights(w, M, C);       // once, at plan time
//   if (winograd_preferred(p)) conv2d_winograd_f32(p, x, ww, y, ep);
//
// Math (Lavin & Gray, interpolation points 0, +-1, +-2, infinity): the output is cut into 4x4
// tiles; tile t of image b reads the 6x6 input patch d at rows 4 * ty - pad_top .. + 5 and
// columns 4 * tx - pad_left .. + 5 (zero outside the image), and
//   Y_tile[o] = epilogue(A^T [ sum_c U[o, c] (.) V[c] ] A),   U[o, c] = G W[o, c] G^T (6x6),
//   V[c] = B^T d_c B (6x6),
// so the 36 elementwise products become 36 GEMMs [M x C] x [C x tiles] (over the tiles of the
// whole batch), each run by the float GEMM microkernel (kernels/ukernel.h) on packed panels.
// U is computed in double and rounded once at pack time; V, the GEMMs and A^T . A in float.
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
// Memory: a zero-padded copy of the input (per call, on a per-thread buffer that grows to the
// largest call) and per work item 36 * tiles * (C + M) floats of transformed input and GEMM
// output (per-thread buffers too); the packed weights are 4x the size of the 3x3 weights.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/params.h"

namespace qsearch::kernels {

// U = G W G^T per (output channel, input channel), for each of the 36 positions xi = 6 * i + j
// of the 6x6 transformed tile: ceil(M / MR) panels of MR output channels stored C-major
// ([C][MR]), zero-padded past the last output channel.
struct WinogradWeights {
  Isa isa = Isa::kAvx2;
  int mr = 0, nr = 0;
  int64_t out_channels = 0, in_channels = 0;
  int64_t panels = 0;  // ceil(out_channels / mr)
  Tensor data;         // float32 [36][panels][in_channels][mr]
  const float* panel(int xi, int64_t t) const {
    return data.data<float>() + (xi * panels + t) * in_channels * mr;
  }
};

// Weights [M, C, 3, 3] (groups = 1).
WinogradWeights pack_winograd_weights(const float* w, int64_t out_channels, int64_t in_channels,
                                      Isa isa = best_isa());

// True when conv2d_winograd_f32 can run p: 3x3 kernel, stride 1, dilation 1, one group, padding
// >= 0, and the padded input's element offsets fit int32 (AVX2 gathers).
bool winograd_applies(const Conv2dParams& p);

// True when it applies and is expected to be faster than conv2d_f32_packed on p (a cost model
// fitted to the measured crossover, see winograd.cc): depends on the batch size, since the GEMMs
// run over the tiles of the whole batch (a 7x7 map has 4 tiles: slower at batch 1, 3x faster at
// batch 16).
bool winograd_preferred(const Conv2dParams& p);

// Y = epilogue(conv(X, W)) for p (winograd_applies(p) must hold; channel counts must match w).
// Y must overlap neither X nor the residual.
void conv2d_winograd_f32(const Conv2dParams& p, const float* x, const WinogradWeights& w, float* y,
                         const Epilogue& epilogue);

}  // namespace qsearch::kernels
