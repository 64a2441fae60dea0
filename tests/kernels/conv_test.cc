// Fast convolution (kernels/conv.h) against the reference (kernels/ref/conv.h) for every ISA
// this CPU runs, with the bound of docs/numerics.md "Float kernels".
#include "kernels/conv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/float_test_util.h"
#include "kernels/ref/conv.h"
#include "kernels/vec_math.h"

namespace qsearch::kernels {
namespace {

using testing::dot_bound;
using testing::random_floats;

int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  return (in + pb + pe - d * (k - 1) - 1) / s + 1;
}

struct ConvCase {
  int64_t batch, c, h, w, m, kh, kw, stride, dilation, pad, groups;
  bool bias, residual, relu;
  bool residual_after_clamp = false;
  bool same_pad = false;  // bottom / right padding = pad (else pad + 1)
};

// c's conv, with its output size. Asymmetric padding unless c.same_pad: one more at the
// bottom / right than at the top / left.
Conv2dParams params_of(const ConvCase& c) {
  Conv2dParams p{.batch = c.batch,
                 .in_channels = c.c,
                 .in_h = c.h,
                 .in_w = c.w,
                 .out_channels = c.m,
                 .kernel_h = c.kh,
                 .kernel_w = c.kw,
                 .stride_h = c.stride,
                 .stride_w = c.stride,
                 .dilation_h = c.dilation,
                 .dilation_w = c.dilation,
                 .pad_top = c.pad,
                 .pad_left = c.pad,
                 .groups = c.groups};
  const int64_t pe = c.same_pad ? c.pad : c.pad + 1;
  p.out_h = out_dim(c.h, c.kh, c.stride, c.dilation, c.pad, pe);
  p.out_w = out_dim(c.w, c.kw, c.stride, c.dilation, c.pad, pe);
  return p;
}

// Checks every loop nest of conv2d_f32_packed against the reference (the bound of
// docs/numerics.md) and against each other (the same bits: one FMA chain per output).
void check_conv(Isa isa, const ConvCase& c, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << isa_name(isa) << " b=" << c.batch << " c=" << c.c << " " << c.h << "x" << c.w
               << " m=" << c.m << " k=" << c.kh << "x" << c.kw << " s=" << c.stride
               << " d=" << c.dilation << " pad=" << c.pad << " g=" << c.groups);
  const Conv2dParams p = params_of(c);
  const int64_t cg = c.c / c.groups;
  const int64_t taps = cg * c.kh * c.kw;
  auto x = random_floats(c.batch * c.c * c.h * c.w, seed);
  auto w = random_floats(c.m * taps, seed + 1);
  auto bias = random_floats(c.m, seed + 2);
  const int64_t ny = c.batch * c.m * p.out_h * p.out_w;
  auto res = random_floats(ny, seed + 3);
  std::vector<float> ref(ny), ones(c.m * taps, 1.0f), mag(ny);
  ref::conv2d_f32(p, x.data(), w.data(), nullptr, ref.data());
  // sum |x * w| per output: the reference conv of |x| with |w|.
  std::vector<float> ax(x.size()), aw(w.size());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
  for (size_t i = 0; i < w.size(); ++i) aw[i] = std::fabs(w[i]);
  ref::conv2d_f32(p, ax.data(), aw.data(), nullptr, mag.data());

  PackedConvWeights pw = pack_conv_weights(w.data(), c.m, cg, c.kh, c.kw, c.groups, isa);
  std::vector<float> y(ny, -7.0f);
  Epilogue ep;
  if (c.bias) ep.bias = bias.data();
  if (c.residual) ep.residual = res.data();
  ep.residual_after_clamp = c.residual_after_clamp;
  if (c.relu) ep.clamp_min = 0.0f;
  conv2d_f32_packed(p, x.data(), pw, y.data(), ep);
  for (ConvAlgo algo :
       {ConvAlgo::kDirect, ConvAlgo::kImagePanels, ConvAlgo::kBatchBlocked, ConvAlgo::kDepthwise}) {
    std::vector<float> ya(ny, 7.0f);
    conv2d_f32_packed(p, x.data(), pw, ya.data(), ep, algo);
    EXPECT_EQ(std::memcmp(ya.data(), y.data(), ny * sizeof(float)), 0)
        << "algo " << static_cast<int>(algo) << " differs from kAuto ("
        << static_cast<int>(conv2d_algo(p, isa)) << ")";
  }

  const int64_t ohw = p.out_h * p.out_w;
  int failures = 0;
  for (int64_t i = 0; i < ny; ++i) {
    const int64_t o = (i / ohw) % c.m;
    double want = ref[i], m = mag[i] * (1.0 + 1e-6);
    if (c.bias) {
      want += bias[o];
      m += std::fabs(bias[o]);
    }
    const double r = c.residual ? res[i] : 0.0;
    m += std::fabs(r);
    if (!c.residual_after_clamp) want += r;
    if (c.relu) want = std::max(want, 0.0);
    if (c.residual_after_clamp) want += r;
    const double bound = dot_bound(taps, m) + FLT_EPSILON * std::fabs(want);
    if (!(std::fabs(y[i] - want) <= bound) && ++failures <= 5) {
      ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", want " << want << " +- " << bound;
    }
  }
  EXPECT_EQ(failures, 0);
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out = {Isa::kAvx2};
  if (isa_supported(Isa::kAvx512)) out.push_back(Isa::kAvx512);
  return out;
}

TEST(FastConv, Shapes) {
  for (Isa isa : runnable_isas()) {
    const TileShape t = tile_shape(isa);
    uint64_t seed = 1;
    // The MNIST CNN's layers.
    check_conv(isa, {3, 1, 28, 28, 16, 3, 3, 1, 1, 1, 1, true, false, true}, seed++);
    check_conv(isa, {2, 16, 14, 14, 16, 3, 3, 1, 1, 1, 1, true, true, true}, seed++);
    check_conv(isa, {2, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, true, true, true, true}, seed++);
    check_conv(isa, {1, 4, 11, 13, 7, 3, 2, 2, 1, 2, 1, false, true, true, true}, seed++);
    // Too large for the direct path's stack copy: stride 1 through the packed-panel path.
    ASSERT_FALSE(conv2d_direct_applies({.batch = 1,
                                        .in_channels = 40,
                                        .in_h = 30,
                                        .in_w = 30,
                                        .out_channels = 3,
                                        .out_h = 30,
                                        .out_w = 30,
                                        .kernel_h = 3,
                                        .kernel_w = 3,
                                        .pad_top = 1,
                                        .pad_left = 1},
                                       isa));
    check_conv(isa, {1, 40, 30, 30, 3, 3, 3, 1, 1, 1, 1, true, true, true}, seed++);
    // Channel counts around the tile, odd images, strides, dilations, groups, 1x1, big K.
    for (int64_t m : {int64_t{1}, int64_t{t.mr - 1}, int64_t{t.mr}, int64_t{t.mr + 1}}) {
      check_conv(isa, {2, 3, 7, 5, m, 3, 3, 1, 1, 1, 1, true, false, false}, seed++);
    }
    check_conv(isa, {1, 4, 11, 13, 7, 3, 2, 2, 1, 2, 1, false, true, true}, seed++);
    check_conv(isa, {2, 6, 9, 9, 9, 3, 3, 1, 2, 2, 3, true, false, false}, seed++);
    check_conv(isa, {1, 8, 5, 6, 8, 3, 3, 1, 1, 1, 8, true, true, false}, seed++);  // depthwise
    check_conv(isa, {2, 5, 6, 7, 11, 1, 1, 1, 1, 0, 1, true, false, false}, seed++);
    check_conv(isa, {1, 64, 6, 6, 5, 3, 3, 1, 1, 1, 1, false, false, false}, seed++);  // K=576
    check_conv(isa, {1, 2, 3, 40, 3, 1, 5, 3, 1, 0, 1, true, false, true}, seed++);
    check_conv(isa, {1, 3, 2, 2, 4, 5, 5, 1, 1, 2, 1, true, false, false}, seed++);  // all pad
  }
}

// Small feature maps over a batch (ResNet-18's 4x4..1x1 maps at 32x32 inputs), where the
// batch-blocked path packs columns of several images into one panel; random geometry: groups,
// strides, dilations, padding (also padding wider than the image), kernels larger than the map.
TEST(FastConv, RandomShapesTinyMapsAndBatches) {
  Rng rng(7);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
  };
  for (Isa isa : runnable_isas()) {
    for (int trial = 0; trial < 60; ++trial) {
      ConvCase c{};
      c.batch = pick(1, 9);
      c.groups = pick(1, 3);
      c.c = c.groups * pick(1, 6);
      c.m = c.groups * pick(1, 9);
      c.h = pick(1, 5);
      c.w = pick(1, 5);
      c.kh = pick(1, 3);
      c.kw = pick(1, 3);
      c.stride = pick(1, 2);
      c.dilation = pick(1, 2);
      c.pad = pick(0, 2);
      // The output must be non-empty: (in + 2 pad + 1 - d (k - 1) - 1) / s + 1 >= 1.
      if (c.h + 2 * c.pad + 1 < c.dilation * (c.kh - 1) + 1 ||
          c.w + 2 * c.pad + 1 < c.dilation * (c.kw - 1) + 1) {
        continue;
      }
      c.bias = rng.uniform() < 0.5;
      c.residual = rng.uniform() < 0.5;
      c.relu = rng.uniform() < 0.5;
      c.residual_after_clamp = c.residual && rng.uniform() < 0.5;
      check_conv(isa, c, 100 + trial);
    }
  }
}

// Blocks of the batch-blocked path: more than one block of columns (128), of output channels
// (128) and of taps (256), with 1x1 and 2x2 maps; and a map large enough for the direct path.
TEST(FastConv, BlockBoundaries) {
  for (Isa isa : runnable_isas()) {
    check_conv(isa, {150, 40, 1, 1, 140, 3, 3, 1, 1, 1, 1, true, true, true}, 1);  // K=360
    check_conv(isa, {37, 64, 2, 2, 131, 3, 3, 1, 1, 1, 1, true, false, true}, 2);  // K=576
    check_conv(isa, {9, 30, 4, 4, 129, 3, 3, 2, 1, 1, 1, false, true, false, true}, 3);
    check_conv(isa, {3, 300, 1, 1, 7, 1, 1, 1, 1, 0, 1, true, false, false}, 4);  // K=300, 1x1
    check_conv(isa, {2, 8, 12, 12, 10, 3, 3, 1, 1, 1, 2, true, true, true}, 5);   // direct
  }
  // Blocks of one image store straight into Y, and one thread's consecutive blocks of output
  // channels share their packed columns: more than 128 channels at batch 1 (7x7 like ResNet's
  // layer4, two tap blocks), 1-3 threads; and a pointwise block straddling two images.
  const int saved = num_threads();
  for (int threads = 1; threads <= 3; ++threads) {
    set_num_threads(threads);
    check_conv(Isa::kAvx2, {1, 40, 7, 7, 300, 3, 3, 1, 1, 1, 1, true, true, true}, 6);
    check_conv(Isa::kAvx2, {1, 30, 9, 9, 260, 3, 3, 2, 1, 1, 1, true, false, true, true}, 7);
    check_conv(Isa::kAvx2, {2, 20, 5, 5, 270, 1, 1, 1, 1, 0, 1, true, true, false, false, true}, 8);
  }
  set_num_threads(saved);
}

// Thin panels of the batch-blocked path (at most 4 columns: the output channels in the lanes
// instead of the microkernel): a 7x7 map's 49th pixel, 14x14's last 4 (ResNet-18 layer4 / layer3
// at 224), whole 1x1 / 2x2 maps at batch 1, 3 and 4 columns; several tap blocks (the
// accumulation across them), partial tiles (M not a multiple of MR), more than 24 tiles per
// call and 128 channels per block, residual before / after the clamp, 1-3 threads. check_conv
// compares them with the image-panel path, which runs the microkernel on every panel.
TEST(FastConv, ThinPanels) {
  const int saved = num_threads();
  uint64_t seed = 7000;
  for (int threads = 1; threads <= 3; threads += 2) {
    set_num_threads(threads);
    for (int64_t hw : {7, 14, 1, 2}) {
      check_conv(Isa::kAvx2, {1, 70, hw, hw, 301, 3, 3, 1, 1, 1, 1, true, true, true}, seed++);
      check_conv(Isa::kAvx2, {1, 600, hw, hw, 157, 1, 1, 1, 1, 0, 1, false, true, false, true},
                 seed++);
    }
    check_conv(Isa::kAvx2, {3, 300, 1, 1, 200, 1, 1, 1, 1, 0, 1, true, false, true}, seed++);
    check_conv(Isa::kAvx2, {2, 280, 2, 2, 50, 3, 3, 2, 1, 1, 1, true, true, true, true}, seed++);
  }
  set_num_threads(saved);
}

// Pointwise convolutions (1x1, stride 1, no padding: MobileNet's expand / project), whose
// panels are packed as copies of pixel runs: maps of 1x1 (one pixel per run), 2x2, 3x3 (runs
// across panel boundaries), 8x8, 20x20; groups; more than 256 channels (two tap blocks).
TEST(FastConv, Pointwise) {
  for (Isa isa : runnable_isas()) {
    uint64_t seed = 1;
    for (int64_t hw : {1, 2, 3, 8, 20}) {
      ConvCase c{5, 40, hw, hw, 20, 1, 1, 1, 1, 0, 1, true, true, true};
      c.same_pad = true;
      check_conv(isa, c, seed++);
      c = {3, 300, hw, hw, 9, 1, 1, 1, 1, 0, 3, true, false, false};
      c.same_pad = true;
      check_conv(isa, c, seed++);
    }
  }
}

TEST(FastConv, BlockedPathSameBitsForOneAndTwoThreads) {
  // Two threads split the 160 columns into 4 blocks of 48 (one block of output channels), one
  // thread takes 128 at a time.
  const int saved = num_threads();
  Conv2dParams p{.batch = 40,
                 .in_channels = 48,
                 .in_h = 2,
                 .in_w = 2,
                 .out_channels = 100,
                 .out_h = 2,
                 .out_w = 2,
                 .kernel_h = 3,
                 .kernel_w = 3,
                 .pad_top = 1,
                 .pad_left = 1};
  auto x = random_floats(40 * 48 * 4, 1), w = random_floats(100 * 48 * 9, 2);
  auto res = random_floats(40 * 100 * 4, 3);
  PackedConvWeights pw = pack_conv_weights(w.data(), 100, 48, 3, 3, 1);
  ASSERT_EQ(conv2d_algo(p), ConvAlgo::kBatchBlocked);
  const Epilogue ep{.residual = res.data(), .clamp_min = 0.0f};
  std::vector<float> y1(40 * 100 * 4), y2(y1.size());
  set_num_threads(1);
  conv2d_f32_packed(p, x.data(), pw, y1.data(), ep);
  set_num_threads(2);
  conv2d_f32_packed(p, x.data(), pw, y2.data(), ep);
  set_num_threads(saved);
  EXPECT_EQ(y1, y2);
}

// Depthwise convolutions (one input channel per group, multiplier 1 or 2) of MobileNetV2 /
// EfficientNet geometry and random ones: 3x3 and 5x5, strides 1-3, dilation, maps from 1x1 to
// wider than a vector, with every epilogue.
TEST(FastConv, Depthwise) {
  Rng rng(11);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
  };
  for (Isa isa : runnable_isas()) {
    const Conv2dParams mb{.batch = 2,
                          .in_channels = 32,
                          .in_h = 16,
                          .in_w = 16,
                          .out_channels = 32,
                          .out_h = 16,
                          .out_w = 16,
                          .kernel_h = 3,
                          .kernel_w = 3,
                          .pad_top = 1,
                          .pad_left = 1,
                          .groups = 32};
    EXPECT_EQ(conv2d_algo(mb, isa), ConvAlgo::kDepthwise);
    check_conv(isa, {2, 32, 16, 16, 32, 3, 3, 1, 1, 1, 32, true, false, true}, 1);
    check_conv(isa, {3, 24, 17, 17, 24, 5, 5, 2, 1, 2, 24, true, true, true}, 2);
    check_conv(isa, {2, 16, 1, 1, 16, 3, 3, 1, 1, 1, 16, true, true, false, true}, 3);
    for (int trial = 0; trial < 40; ++trial) {
      ConvCase c{};
      c.batch = pick(1, 3);
      c.groups = pick(1, 12);
      c.c = c.groups;
      c.m = c.groups * pick(1, 2);
      c.h = pick(1, 20);
      c.w = pick(1, 20);
      c.kh = pick(1, 5);
      c.kw = pick(1, 5);
      c.stride = pick(1, 3);
      c.dilation = pick(1, 2);
      c.pad = pick(0, 2);
      if (c.h + 2 * c.pad + 1 < c.dilation * (c.kh - 1) + 1 ||
          c.w + 2 * c.pad + 1 < c.dilation * (c.kw - 1) + 1) {
        continue;
      }
      c.bias = rng.uniform() < 0.5;
      c.residual = rng.uniform() < 0.5;
      c.relu = rng.uniform() < 0.5;
      c.residual_after_clamp = c.residual && rng.uniform() < 0.5;
      check_conv(isa, c, 200 + trial);
    }
  }
}

TEST(FastConv, SameBitsOnEveryIsaAndPath) {
  // The ISAs differ in tile shape only, on the direct path (stride 1) and on the packed-panel
  // path (stride 2) alike: each output is the same FMA chain.
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t stride : {1, 2}) {
    Conv2dParams p{.batch = 3,
                   .in_channels = 5,
                   .in_h = 13,
                   .in_w = 11,
                   .out_channels = 11,
                   .kernel_h = 3,
                   .kernel_w = 3,
                   .stride_h = stride,
                   .stride_w = stride,
                   .pad_top = 1,
                   .pad_left = 1};
    p.out_h = (13 + 2 - 3) / stride + 1;
    p.out_w = (11 + 2 - 3) / stride + 1;
    auto x = random_floats(3 * 5 * 13 * 11, 1), w = random_floats(11 * 5 * 9, 2);
    auto bias = random_floats(11, 3);
    std::vector<float> y2(3 * 11 * p.out_h * p.out_w), y5(y2.size());
    const Epilogue ep{.bias = bias.data(), .clamp_min = 0.0f};
    conv2d_f32_packed(p, x.data(), pack_conv_weights(w.data(), 11, 5, 3, 3, 1, Isa::kAvx2),
                      y2.data(), ep);
    conv2d_f32_packed(p, x.data(), pack_conv_weights(w.data(), 11, 5, 3, 3, 1, Isa::kAvx512),
                      y5.data(), ep);
    EXPECT_EQ(y2, y5) << "stride " << stride;
  }
}

TEST(FastConv, SameBitsForOneAndTwoThreads) {
  const int saved = num_threads();
  Conv2dParams p{.batch = 5,
                 .in_channels = 16,
                 .in_h = 14,
                 .in_w = 14,
                 .out_channels = 16,
                 .out_h = 14,
                 .out_w = 14,
                 .kernel_h = 3,
                 .kernel_w = 3,
                 .pad_top = 1,
                 .pad_left = 1};
  auto x = random_floats(5 * 16 * 14 * 14, 1), w = random_floats(16 * 16 * 9, 2);
  PackedConvWeights pw = pack_conv_weights(w.data(), 16, 16, 3, 3, 1);
  std::vector<float> y1(5 * 16 * 196), y2(y1.size());
  set_num_threads(1);
  conv2d_f32_packed(p, x.data(), pw, y1.data(), {});
  set_num_threads(2);
  conv2d_f32_packed(p, x.data(), pw, y2.data(), {});
  set_num_threads(saved);
  EXPECT_EQ(y1, y2);
}

// The conv with Epilogue::silu against the conv without it followed by a separate Sigmoid
// (vmath::map_f32, what the Sigmoid step runs) and Mul: the same bits, on every loop nest and
// 1-3 threads. Inputs in [-3, 3): SiLU's curved part and both tails.
void check_silu_bits(const ConvCase& c, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "b=" << c.batch << " c=" << c.c << " " << c.h << "x" << c.w << " m=" << c.m
               << " k=" << c.kh << " s=" << c.stride << " pad=" << c.pad << " g=" << c.groups
               << " residual=" << c.residual << " relu=" << c.relu);
  const Conv2dParams p = params_of(c);
  const int64_t cg = c.c / c.groups, ny = c.batch * c.m * p.out_h * p.out_w;
  auto x = random_floats(c.batch * c.c * c.h * c.w, seed, -3.0f, 3.0f);
  auto w = random_floats(c.m * cg * c.kh * c.kw, seed + 1);
  auto bias = random_floats(c.m, seed + 2);
  auto res = random_floats(ny, seed + 3);
  const PackedConvWeights pw = pack_conv_weights(w.data(), c.m, cg, c.kh, c.kw, c.groups);
  Epilogue ep;
  if (c.bias) ep.bias = bias.data();
  if (c.residual) ep.residual = res.data();
  ep.residual_after_clamp = c.residual_after_clamp;
  if (c.relu) ep.clamp_min = 0.0f;
  const int saved = num_threads();
  for (ConvAlgo algo : {ConvAlgo::kAuto, ConvAlgo::kDirect, ConvAlgo::kImagePanels,
                        ConvAlgo::kBatchBlocked, ConvAlgo::kDepthwise}) {
    for (int threads = 1; threads <= 3; ++threads) {
      set_num_threads(threads);
      std::vector<float> plain(ny, 5.0f), sig(ny), fused(ny, -5.0f);
      Epilogue without = ep;
      without.silu = false;
      conv2d_f32_packed(p, x.data(), pw, plain.data(), without, algo);
      vmath::map_f32(vmath::Fn::kSigmoid, plain.data(), sig.data(), ny);
      for (int64_t i = 0; i < ny; ++i) plain[i] *= sig[i];
      Epilogue with = ep;
      with.silu = true;
      conv2d_f32_packed(p, x.data(), pw, fused.data(), with, algo);
      EXPECT_EQ(std::memcmp(plain.data(), fused.data(), ny * sizeof(float)), 0)
          << "algo " << static_cast<int>(algo) << " (auto runs " << static_cast<int>(conv2d_algo(p))
          << "), " << threads << " threads";
    }
  }
  set_num_threads(saved);
}

// Epilogue::silu (EfficientNet's conv + BN + SiLU fused into the store) on every loop nest,
// random geometries that reach each of them (dense 3x3 stride 1 on the direct path, pointwise,
// strided gathers, grouped, depthwise on wide and on narrow maps), with and without a residual
// and a clamp.
TEST(FastConv, SiluStoreHasTheBitsOfSigmoidThenMul) {
  // On an AVX-512 CPU the store's 16-lane pass (sigmoid16) is what these compare with sigmoid8.
  EXPECT_EQ(silu_store_isa(), isa_supported(Isa::kAvx512) ? Isa::kAvx512 : Isa::kAvx2);
  Rng rng(23);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
  };
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int kind = trial % 5;  // dense 3x3 s1, pointwise, strided, grouped, depthwise
    ConvCase c{};
    c.batch = pick(1, 3);
    c.h = pick(1, 18);
    c.w = kind == 4 && trial % 2 == 0 ? pick(1, 7) : pick(1, 18);  // narrow maps: dw8
    c.groups = kind == 3 ? pick(2, 3) : 1;
    c.c = c.groups * pick(1, 9);
    c.m = c.groups * pick(1, 14);
    c.kh = c.kw = kind == 0 ? 3 : (kind == 1 ? 1 : pick(1, 5));
    c.stride = kind == 2 ? pick(2, 3) : (kind == 4 ? pick(1, 2) : 1);
    c.dilation = 1;
    c.pad = kind == 1 ? 0 : pick(0, 2);
    c.same_pad = kind == 1;
    if (kind == 4) {
      c.groups = pick(1, 24);
      c.c = c.m = c.groups;
    }
    if (c.h + 2 * c.pad + 1 < c.kh || c.w + 2 * c.pad + 1 < c.kw) continue;
    c.bias = rng.uniform() < 0.7;
    c.residual = rng.uniform() < 0.3;
    c.relu = rng.uniform() < 0.3;
    c.residual_after_clamp = c.residual && rng.uniform() < 0.5;
    SCOPED_TRACE(::testing::Message() << "trial " << trial);
    check_silu_bits(c, 300 + 100 * trial);
    ++checked;
  }
  EXPECT_GE(checked, 45);
}

// SiLU where the batch-blocked path applies it apart from the tile stores: maps of a few pixels
// (EfficientNet's 4x4..1x1 at 32x32 inputs), where a block at batch 1 is a whole image narrower
// than a panel (one pass over its contiguous rows after the last tap block, every block of
// output channels a thread merges) and at batch > 1 the buffer's rows get SiLU before the
// scatter (after the residual and the clamp); more than 128 output channels and 256 taps, 1x1
// and 3x3 kernels, residual before / after the clamp. And the depthwise paths' plane passes.
TEST(FastConv, SiluOnTinyMapsAcrossBlocks) {
  uint64_t seed = 9000;
  for (int64_t batch : {1, 2, 5, 17}) {
    for (int64_t hw : {1, 2, 3, 4}) {
      for (int64_t kernel : {1, 3}) {
        ConvCase c{batch, 300, hw,         hw, 270,  kernel, kernel,
                   1,     1,   kernel / 2, 1,  true, false,  false};
        c.same_pad = true;
        check_silu_bits(c, seed += 10);
        c.residual = c.relu = true;
        c.residual_after_clamp = hw % 2 == 0;
        check_silu_bits(c, seed += 10);
      }
    }
  }
  // Depthwise: SiLU in one pass over a plane whose rows end in a partial vector (14, 9 and 15
  // wide; 16 wide stays per vector) and over the 8 planes of a narrow map's channel block (7x7,
  // 4x4, 1x1, 20 channels: a partial block), stride 1 and 2.
  for (int64_t hw : {1, 4, 7, 9, 14, 15, 16, 28}) {
    for (int64_t stride : {1, 2}) {
      ConvCase c{2, 20, hw, hw, 20, 3, 3, stride, 1, 1, 20, true, false, false};
      check_silu_bits(c, seed += 10);
      c.residual = c.relu = true;
      check_silu_bits(c, seed += 10);
    }
  }
}

// kernels::silu_f32 (the Winograd conv's SiLU, in place) is the same function.
TEST(FastConv, SiluInPlaceHasTheBitsOfSigmoidThenMul) {
  for (int64_t n : {1, 7, 8, 9, 100, 40000}) {
    auto y = random_floats(n, 7 + n, -20.0f, 20.0f);
    std::vector<float> sig(n), want = y;
    vmath::map_f32(vmath::Fn::kSigmoid, y.data(), sig.data(), n);
    for (int64_t i = 0; i < n; ++i) want[i] *= sig[i];
    silu_f32(y.data(), n);
    EXPECT_EQ(y, want) << n;
  }
}

}  // namespace
}  // namespace qsearch::kernels
