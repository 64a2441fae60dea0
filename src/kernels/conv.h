// Fast 2-D convolution (NCHW) as an implicit GEMM over pre-packed weights.
//
//   PackedConvWeights pw = pack_conv_weights(w, M, C / G, kH, kW, G);   // once, at plan time
//   Epilogue ep{.bias = bias, .clamp_min = 0.0f};                       // conv + bias + relu
//   conv2d_f32_packed(params, x, pw, y, ep);                             // per batch
//
// Math: per image b and group g, Y_g[o, p] = epilogue(sum_k W_g[o, k] * col[k, p]) where
// k = (c, i, j) runs over C/G * kH * kW in that order, p over the output pixels, and col[k, p]
// is the input tap of Conv2dParams (0 in the padding). The weights are the A operand (MR-row
// panels, packed once). Four loop nests (ConvAlgo), chosen per call by conv2d_algo:
// * batch-blocked (the default): the GEMM's columns are the output pixels of the whole batch
//   (column n = pixel n % (out_h * out_w) of image n / (out_h * out_w)), so that small images
//   (ResNet-18's 4x4..1x1 maps at 32x32 inputs) fill the microkernel's NR columns and every
//   packed weight block serves up to 128 columns of many images instead of one image's few
//   pixels. Work items are (group, 128 columns, up to 128 output channels); per block of 256
//   taps the columns are packed with AVX2 gathers (im2col; plain copies of pixel runs for
//   1x1 / stride 1 / no padding) into panels that stay in L1 while
//   the item's weight tiles stream from L2 (GotoBLAS order), accumulating in a tile buffer that
//   is scattered to Y (residual, clamp and SiLU applied there, per buffer row), or, for a block
//   inside one image of at most 64x64 pixels, straight into Y. A panel of at most 4 columns (a
//   7x7 map's last pixel, 1x1 / 2x2 maps at batch 1) runs with the output channels in the
//   lanes instead of the microkernel (which computes all NR columns whatever the panel holds).
// * direct (stride 1, not 1x1, at least 4 * NR output pixels, the group's zero-padded image fits a
//   128 KB stack copy): output pixels are laid on a grid as wide as the padded image, so that
//   each tap of NR consecutive grid pixels is a contiguous run of the padded copy; the
//   microkernel reads those runs in place, and the grid columns past out_w are dropped when the
//   tile is copied out.
// * depthwise (one input channel per group, fewer output channels per group than MR): per
//   output plane from a zero-padded copy of the input plane, 8 pixels of a row per vector
//   (stride phases split so that every load is contiguous); on maps narrower than 8, 8
//   channels per vector from a channel-interleaved copy.
// * image panels: per image, col is packed panel by panel (NR pixels x 256 taps) right before
//   the microkernel consumes it (the fallback where a gather's int32 indices would overflow).
// Bias is per output channel; the residual has Y's NCHW layout. Work items are spread over
// parallel_for; each output element is computed by one microkernel chain in ascending k on
// every path (the depthwise path's FMAs in the same order), so results do not depend on the
// path, the blocking or the thread count (all within the bound of docs/numerics.md).
// Epilogue::silu (EfficientNet's conv + BN + SiLU) is applied to each stored value on every
// path, last, in the same bits as separate Sigmoid (vmath) and Mul steps.
// Stack: the batch-blocked path keeps its panels and tile buffer on the calling thread's stack
// (about 200 KB), the direct path its padded copy, tap offsets and a tile (about 165 KB), the
// depthwise path its padded copy (up to 130 KB), the image-panel path about 35 KB; no heap
// allocation.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/params.h"

namespace qsearch::kernels {

// Weights [M, C/G, kH, kW] as, per group, ceil((M/G) / MR) panels of MR output channels stored
// k-major ([K][MR], K = C/G * kH * kW) and zero-padded past the group's last channel.
struct PackedConvWeights {
  Isa isa = Isa::kAvx2;
  int mr = 0, nr = 0;
  int64_t out_channels = 0, in_channels_per_group = 0, kernel_h = 0, kernel_w = 0, groups = 1;
  int64_t k = 0;  // taps per output: in_channels_per_group * kernel_h * kernel_w
  int64_t tiles_per_group = 0;
  Tensor data;  // float32 [groups * tiles_per_group * k * mr]
  const float* panel(int64_t group, int64_t tile) const {
    return data.data<float>() + (group * tiles_per_group + tile) * k * mr;
  }
};

PackedConvWeights pack_conv_weights(const float* w, int64_t out_channels,
                                    int64_t in_channels_per_group, int64_t kernel_h,
                                    int64_t kernel_w, int64_t groups, Isa isa = best_isa());

// True when the direct path can run p (stride 1 and the zero-padded image of one group fits the
// 128 KB stack copy).
bool conv2d_direct_applies(const Conv2dParams& p, Isa isa = best_isa());

// The loop nests of conv2d_f32_packed (all give the same bits): kAuto picks one per call
// (conv2d_algo); the others are for tests and bench/float_conv_bench.cc. kDirect and
// kDepthwise fall back to kBatchBlocked where they do not apply.
enum class ConvAlgo : uint8_t { kAuto, kDirect, kImagePanels, kBatchBlocked, kDepthwise };

// What kAuto runs for p.
ConvAlgo conv2d_algo(const Conv2dParams& p, Isa isa = best_isa());
// The vectors of the fused SiLU pass over a conv's output (Epilogue::silu on the GEMM paths):
// 16 lanes (kAvx512, sigmoid16) where the CPU has AVX-512F, else 8 (sigmoid8); the same bits.
Isa silu_store_isa();

// y[i] = y[i] * sigmoid(y[i]) in place (Epilogue::silu's function, for a kernel without it).
void silu_f32(float* y, int64_t n);

// Y = epilogue(conv(X, W)) with p's geometry (p.kernel_*, p.groups and channel counts must
// match the packed weights). Y must overlap neither X nor the residual.
void conv2d_f32_packed(const Conv2dParams& p, const float* x, const PackedConvWeights& w, float* y,
                       const Epilogue& epilogue, ConvAlgo algo = ConvAlgo::kAuto);

}  // namespace qsearch::kernels
