// Integer Conv2d (NCHW, groups, pads, strides, dilations) on fixed-point codes. Exact ways:
//  - pixel-major (int8/uint8/int16 activations, int8/int16 weights, an int32 accumulator, AVX2 or
//    better): the output pixels are the vector dimension. Per image the input is copied once into
//    a zero-padded int16 plane; for each block of 16 output pixels their im2col columns are
//    gathered straight into a k-pair panel, multiplied by the weights as int16 rows with the pair
//    kernels of the GEMM (vpmaddwd), and the epilogue writes 16 contiguous NCHW outputs per
//    channel. No im2col matrix, and small channel counts (LeNet's 6) waste no tile columns.
//  - quads (int8 weights, int8/uint8 activations, AVX-512 VNNI, strides other than 1x1: ResNet's
//    stem, stride-2 3x3 convs and 1x1 downsamples): per image the input goes once into
//    stride-phase planes of byte quads (4 channels, or 4 kernel-row neighbours), so that 16
//    consecutive output positions read 16 consecutive quads for every tap; vpdpbusd multiplies
//    them by the weights (signed codes as code + 128, less a per-channel correction). No gather.
//  - depthwise (one input channel per group, groups > 1: MobileNet's and EfficientNet's 3x3 and
//    5x5): per image and channel the input is copied once into int16 phase planes (one per
//    stride phase, zero padded), so that every tap of 16 consecutive output positions reads 16
//    consecutive codes; tap pairs multiply with vpmaddwd into int32 sums, and the epilogue
//    writes the channel's plane. No GEMM packing, no im2col.
//  - 1x1 maps whose (cut) kernel is 1x1 (EfficientNet's squeeze-excitation convs, the last
//    stages of the 32x32 CNNs): a pointwise conv is gemm() of the images ([B, C] x [C, OC]) where
//    that is faster (batch < 16, or K past the GEMM store's costs), a depthwise one (channel
//    multiplier 1) is one product per channel and image, stored 16 channels at a time.
//  - Winograd (3x3, stride 1, dilation 1, one group, AVX2, when exact; kernels/fixed/winograd.h):
//    16 int16 GEMMs over channel pairs on transformed 4x4 input tiles, 2x2 outputs each.
//  - otherwise im2col rows made on demand in the GEMM's prepared layout (detail::gemm_rows),
//    multiplied with the weights as packed B.
// Zero padding is code 0 (the value 0 in every format, signed or unsigned: the formats have no
// zero point). So the kernel taps that only ever read padding, for every output (a 3x3 pad-1 conv
// on a 1x1 map reads the image with its centre tap alone; a stride-2 one on a 2x2 map with its
// 2x2 bottom-right taps), add nothing: pack_conv2d() cuts them off (PackedConv2d::geometry()),
// and every path runs the smaller kernel with the pads less the cut rows and columns.
//
// Math, for image i, output channel o in group g = o / (OC / G), pixel (y, x):
//   acc[i, o, y, x] = (sum_{c, u, v} X[i, g * C/G + c, y * sh - pt + u * dh, x * sw - pl + v * dw]
//                                    * W[o, c, u, v]) * 2^(F - fa - fw) + bias[o] * 2^(F - fc)
// with F = max(fa + fw, fc) and out-of-range input positions reading 0; then the GemmOutput of
// the params (accumulator, requantized codes, float), exactly as gemm(). Output shape
// [batch, OC, OH, OW], OH = (H + pt + pb - dh * (KH - 1) - 1) / sh + 1 (floor), likewise OW.
// Equals ref::conv2d (kernels/fixed/ref/conv2d_ref.h) exactly.
//
//   Conv2dGeometry g{.in_channels = 1, .in_h = 28, .in_w = 28, .out_channels = 8,
//                    .kernel_h = 3, .kernel_w = 3, .pad_top = 1, .pad_left = 1,
//                    .pad_bottom = 1, .pad_right = 1};
//   Conv2dWeights wt{...};                        // [8, 1, 3, 3] codes and formats
//   PackedConv2d pc = pack_conv2d(g, wt);         // once per trial
//   conv2d(x_codes, batch, pc, params, y);        // y: [batch, 8, 28, 28]
//
// Lifetime and threading as gemm(): pack once, run many batches without allocating (after the
// first call per thread), never throws, parallel over images x groups (when there are fewer of
// those than threads, also over blocks of output pixels).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/fixed/gemm.h"

namespace qsearch::kernels::fixed {

struct WinogradFilters;  // kernels/fixed/winograd.h

struct Conv2dGeometry {
  int64_t in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t groups = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;

  int64_t out_h() const {
    return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w() const {
    return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
};

struct Conv2dWeights {
  const void* w = nullptr;       // [out_channels, in_channels / groups, kernel_h, kernel_w] codes
  DType w_dtype = DType::kInt8;  // int8 | int16 | int32
  FixedFormat w_format;
  const void* bias = nullptr;  // optional [out_channels] codes
  DType bias_dtype = DType::kInt32;
  FixedFormat bias_format;
  FixedFormat a_format;  // the input codes conv2d() will read
  DType a_dtype = DType::kInt8;
  bool bit_pack = false;  // GemmWeights::bit_pack for every group
  // The exact integer Winograd path (kernels/fixed/winograd.h): kAuto takes it where it is exact
  // and expected to pay (enough channels, maps not tiny), kAlways wherever it is exact (tests),
  // kOff never (benches compare the paths).
  enum class Winograd : uint8_t { kAuto, kAlways, kOff };
  Winograd winograd = Winograd::kAuto;
  // Its tile (winograd.h): 0 F(4x4, 3x3) where exact, the map favours it at winograd_batch
  // images and its filters take at most 16 MB (winograd.cc kMaxF4FilterBytes), else F(2x2, 3x3); 4
  // F(4x4) wherever exact (tests), else F(2x2); 2 F(2x2) only.
  int winograd_tile = 0;
  int64_t winograd_batch = 1;  // the largest batch conv2d() will get (the int lowering's plan)
  // false: conv2d() is never called with a pool (the int lowering knows the conv's readers). The
  // pooled path's lane copy of the weights (weight_lanes()) is then not made, and when Winograd
  // takes every batch (min_batch 1) neither the direct path's rows (weight_rows()) nor the GEMM
  // panels are kept (PackedWeights::release_panels): copies no path would read (2 + 2 + 1 bytes
  // per 8-bit weight; ResNet-18 224 int: 50 MB).
  bool may_pool = true;
};

class PackedConv2d {
 public:
  // The geometry the kernels run: pack_conv2d()'s with the taps that only ever read the zero
  // padding cut off (kernel rows and columns at either end; the pads shrink by as many rows and
  // columns times the dilation, never below 0). Same input and output sizes.
  const Conv2dGeometry& geometry() const { return geometry_; }
  // One packed GEMM per group (K = C/G * KH * KW, N = OC / G).
  const std::vector<PackedWeights>& groups() const { return groups_; }
  int acc_frac() const { return groups_.front().acc_frac(); }
  DType a_dtype() const { return groups_.front().a_dtype(); }
  size_t packed_bytes() const;

  // ---- internal to conv2d.cc ----
  // The pixel-major path (conv2d.cc): per group the weights as int16 rows [OC/G rounded up to 8]
  // x [K' = (C/G) * KH * KW in channel-pair order for even C/G; KH * KW rounded up to even for
  // C/G = 1 and odd KW (tap pairs across kernel rows); otherwise each kernel row rounded up to
  // even] (zero padded), the A operand of the pair kernels. Empty when the path
  // does not apply (32-bit codes, or no AVX2). A runtime copy, not part of packed_bytes().
  const std::vector<Tensor>& weight_rows() const { return weight_rows_; }
  // The same weights with 16 output channels as lanes (the pooled path's channel-lane tiles): per
  // group [ceil(OC/G / 16)][K' / 2][16][2] int16, zero for missing channels. Empty as above.
  const std::vector<Tensor>& weight_lanes() const { return weight_lanes_; }
  // The pixel-major quads path (conv2d.cc, QuadJob: int8 weights, 8-bit codes, packed for
  // Isa::kAvx512Vnni, strides other than 1x1 on maps where the phase planes waste few lanes):
  // per group the weights as int8 rows [OC/G rounded up to 12] x [K'' = (C/G) * KH * KW in
  // channel-quad order when 4 divides C/G, else (C/G) * KH * (KW rounded up to a multiple of 4),
  // quads of neighbours in a kernel row] (zero padded), and per output channel the correction
  // 128 * sum_k W[o][k] modulo 2^32 that the +128 of signed codes adds (0 for uint8 codes).
  // When set, weight_rows() and weight_lanes() are empty. A runtime copy, not in packed_bytes().
  const std::vector<Tensor>& weight_quads() const { return weight_quads_; }
  const std::vector<Tensor>& quad_corrections() const { return quad_corrections_; }
  // The depthwise path (one input channel per group, groups > 1, conv2d.cc DepthwiseJob): per
  // output channel o, the taps t = u * KW + v in pairs, int32 (w[o][2q] & 0xffff) |
  // (w[o][2q + 1] << 16), [OC][ceil(KH * KW / 2)], the odd last tap paired with 0. Empty when
  // the path does not apply (as weight_rows(), or more than kMaxDepthwiseTaps taps).
  static constexpr int64_t kMaxDepthwiseTaps = 128;
  const Tensor& depthwise_pairs() const { return depthwise_pairs_; }
  // With depthwise_pairs, int8 weights and 8-bit codes packed for Isa::kAvx512Vnni: the taps in
  // quads, int32 with byte i = w[o][4q + i] (0 past the last tap), [OC][ceil(KH * KW / 4)], and
  // per output channel the accumulator's start, -128 * sum_t w[o][t] modulo 2^32 for int8 codes
  // (the path reads them as code + 128, vpdpbusd's unsigned operand), 0 for uint8 ones. Else
  // empty.
  const Tensor& depthwise_quads() const { return depthwise_quads_; }
  const Tensor& depthwise_quad_init() const { return depthwise_quad_init_; }
  // With depthwise_pairs, one output channel per group and every group's acc_shift and acc_frac
  // those of group 0: every group's aligned bias (groups()[o].bias_aligned()[0]) in one array,
  // [OC], so that the depthwise path stores all channels with one Epilogue
  // (Epilogue::channel_tile) and reads the biases in order instead of one PackedWeights (a
  // cache miss or two) per channel; else empty.
  const std::vector<int64_t>& channel_biases() const { return channel_biases_; }
  // The exact integer Winograd F(2x2, 3x3) path (kernels/fixed/winograd.h): the transformed
  // filters when it applies to this conv (3x3, stride 1, one group, the exactness conditions
  // hold), else null. conv2d() then takes it (without a fused pool). A runtime copy as above.
  const std::shared_ptr<const WinogradFilters>& winograd() const { return winograd_; }

 private:
  friend PackedConv2d pack_conv2d(const Conv2dGeometry& g, const Conv2dWeights& w, Isa isa);
  Conv2dGeometry geometry_;
  std::vector<PackedWeights> groups_;
  std::vector<Tensor> weight_rows_, weight_lanes_, weight_quads_, quad_corrections_;
  Tensor depthwise_pairs_, depthwise_quads_, depthwise_quad_init_;
  std::vector<int64_t> channel_biases_;
  std::shared_ptr<const WinogradFilters> winograd_;
};

// Validates the geometry (Error: channels not divisible by groups, empty output, ...) and the
// weights as pack_weights() does, and packs each group for `isa`.
PackedConv2d pack_conv2d(const Conv2dGeometry& g, const Conv2dWeights& w, Isa isa = max_isa());

// The worst case over every group (see accumulator_bound(const PackedWeights&)).
AccumulatorBound accumulator_bound(const PackedConv2d& w);

// A max pool fused into conv2d's store.
//   kMax2x2: a 2x2 window, stride 2, no padding, floor (ONNX MaxPool kernel_shape [2, 2],
//            strides [2, 2], ceil_mode 0): y is [batch, OC, OH / 2, OW / 2] with
//            y[i, o, a, b] = max of the unfused outputs at (2a + s, 2b + t), s, t in {0, 1}.
// Exact for every output of GemmParams: each is a non-decreasing function of the tile's sum S
// (the left shift and bias, a rounding shift with any Rounding, the clamp, the fused ReLU,
// int -> float rounding and a positive scale), so f(max S) = max f(S). The pixel-major path
// takes the max of the four int32 sums and runs the epilogue once per pooled output (the full
// resolution output is never written); the other paths write one image's group to a per-thread
// buffer and pool it.
enum class ConvPool : uint8_t { kNone, kMax2x2 };

// Output [H, W] of `pool` on a conv output of h x w (kMax2x2: floor halves).
inline int64_t conv_pool_out(ConvPool pool, int64_t n) {
  return pool == ConvPool::kNone ? n : n / 2;
}

// y = conv2d(x) for `batch` images, then `pool`. x: [batch, C, H, W] codes of w.a_dtype(); y:
// [batch, OC, OH, OW] (pooled: conv_pool_out of each) of gemm_output_dtype(p). p.ldc_m / p.ldc_n
// are ignored (the layout is NCHW).
void conv2d(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p, void* y,
            ConvPool pool = ConvPool::kNone);

}  // namespace qsearch::kernels::fixed
