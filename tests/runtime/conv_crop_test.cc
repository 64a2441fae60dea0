// Float lowering of Conv on small feature maps: kernel taps that only ever read the zero
// padding (a 3x3 conv with padding 1 on a 1x1 map, a strided 3x3 on a 2x2 map) are cut off,
// with the same bits as the uncropped packed kernel and within the reference's bound.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"

namespace qsearch::runtime {
namespace {

using testing::expect_close;
using testing::GraphMaker;
using testing::max_abs;
using testing::random_tensor;
using testing::run_graph;

struct CropCase {
  int64_t c, h, w, m, k, stride, pad, dilation;
  const char* want;  // the plan's note, "" when nothing is cropped
};

// Conv(x, W) + bias on [batch, c, h, w]; W given (or random when empty).
ir::Graph conv_graph(const CropCase& k, Tensor w) {
  GraphMaker m({kDynamic, k.c, k.h, k.w});
  const ir::ValueId wv =
      w.numel() > 0 ? m.constant(std::move(w)) : m.constant({k.m, k.c, k.k, k.k}, 3);
  const ir::ValueId b = m.constant({k.m}, 4);
  return m.finish(m.op(ir::OpKind::kConv, {m.input(), wv, b},
                       ir::ConvAttrs{.kernel = {k.k, k.k},
                                     .strides = {k.stride, k.stride},
                                     .dilations = {k.dilation, k.dilation},
                                     .pads = {k.pad, k.pad, k.pad, k.pad}}));
}

TEST(ConvCrop, DeadTapsCutOffSameBits) {
  const CropCase cases[] = {
      {20, 1, 1, 13, 3, 1, 1, 1, "kernel 1x1 of 3x3"},  // ResNet-18 layer4 at 32x32
      {12, 2, 2, 9, 3, 2, 1, 1, "kernel 2x2 of 3x3"},   // its strided first conv
      {6, 1, 3, 5, 3, 1, 1, 1, "kernel 1x3 of 3x3"},    // one row
      {5, 2, 2, 4, 5, 1, 2, 1, "kernel 3x3 of 5x5"},
      {7, 4, 4, 6, 3, 1, 1, 1, ""},                   // every tap reads the image somewhere
      {4, 1, 1, 3, 3, 1, 2, 2, "kernel 1x1 of 3x3"},  // dilated
      {4, 2, 2, 3, 2, 2, 1, 2, ""},                   // cropping would need padding < 0
  };
  for (const CropCase& k : cases) {
    SCOPED_TRACE(::testing::Message() << k.c << "x" << k.h << "x" << k.w << " k" << k.k << " s"
                                      << k.stride << " p" << k.pad << " d" << k.dilation);
    const Tensor w = random_tensor({k.m, k.c, k.k, k.k}, 3);
    const Tensor bias = random_tensor({k.m}, 4);
    ir::Graph g = conv_graph(k, w.clone());
    auto plan = make_plan(g, {.max_batch = 6});
    const std::string s = plan->to_string();
    if (*k.want != '\0') {
      EXPECT_NE(s.find(k.want), std::string::npos) << s;
    } else {
      EXPECT_EQ(s.find("cut off"), std::string::npos) << s;
    }
    const Tensor x = random_tensor({6, k.c, k.h, k.w}, 5);
    Executor ex(plan);
    const Tensor fast = ex.run(x).clone();
    // The uncropped packed kernel on the same input: the same bits.
    kernels::Conv2dParams p{.batch = 6,
                            .in_channels = k.c,
                            .in_h = k.h,
                            .in_w = k.w,
                            .out_channels = k.m,
                            .out_h = fast.dim(2),
                            .out_w = fast.dim(3),
                            .kernel_h = k.k,
                            .kernel_w = k.k,
                            .stride_h = k.stride,
                            .stride_w = k.stride,
                            .dilation_h = k.dilation,
                            .dilation_w = k.dilation,
                            .pad_top = k.pad,
                            .pad_left = k.pad};
    const auto pw = kernels::pack_conv_weights(w.data<float>(), k.m, k.c, k.k, k.k, 1);
    std::vector<float> full(static_cast<size_t>(fast.numel()));
    kernels::conv2d_f32_packed(p, x.data<float>(), pw, full.data(), {.bias = bias.data<float>()});
    EXPECT_EQ(std::vector<float>(fast.data<float>(), fast.data<float>() + fast.numel()), full);
    const Tensor ref = run_graph(g, x, /*reference=*/true, 6);
    expect_close(fast, ref, 1e-5 * (1.0 + max_abs(ref)), 0, "conv");
  }
}

TEST(ConvCrop, NonFiniteWeightOnADeadTapIsKept) {
  // inf * 0 on the padding is NaN in the packed kernel (and in PyTorch's zero-padded conv):
  // such a conv is not cropped, so that its bits do not change. (The reference kernel skips
  // padding taps instead of multiplying them.)
  const CropCase k{3, 1, 1, 2, 3, 1, 1, 1, ""};
  Tensor w = random_tensor({2, 3, 3, 3}, 3);
  w.data<float>()[0] = std::numeric_limits<float>::infinity();  // output 0, tap (0, 0): dead
  ir::Graph g = conv_graph(k, w.clone());
  auto plan = make_plan(g, {.max_batch = 2});
  EXPECT_EQ(plan->to_string().find("cut off"), std::string::npos) << plan->to_string();
  const Tensor x = random_tensor({2, 3, 1, 1}, 5);
  const Tensor fast = run_graph(g, x, false, 2);
  for (int64_t b = 0; b < 2; ++b) {
    EXPECT_TRUE(std::isnan(fast.data<float>()[b * 2])) << b;
    EXPECT_FALSE(std::isnan(fast.data<float>()[b * 2 + 1])) << b;
  }
}

}  // namespace
}  // namespace qsearch::runtime
