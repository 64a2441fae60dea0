// Float lowering of stride-1 3x3 convs onto kernels/winograd.h: Mode::kFloat runs it where the
// cost model prefers it (batch-dependent: both packings kept when only large batches gain),
// within docs/numerics.md "Float Winograd" of the reference; Mode::kFake keeps the direct conv's
// bits (its outputs are rounded to quantization grids and must match PyTorch-MASE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/winograd.h"
#include "onnx/import.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

using testing::GraphMaker;
using testing::random_tensor;

struct Layer {
  int64_t c, h, m;
};

// relu(conv3x3(x, W) + bias) on [batch, c, h, h], padding 1.
ir::Graph conv_graph(const Layer& l, const Tensor& w, const Tensor& b) {
  GraphMaker m({kDynamic, l.c, l.h, l.h});
  const ir::ValueId y =
      m.op(ir::OpKind::kConv, {m.input(), m.constant(w.clone()), m.constant(b.clone())},
           ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
  return m.finish(m.op(ir::OpKind::kRelu, {y}));
}

// The direct packed conv of the same layer (the bits fake mode must keep).
std::vector<float> direct(const Layer& l, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t batch = x.dim(0);
  kernels::Conv2dParams p{.batch = batch,
                          .in_channels = l.c,
                          .in_h = l.h,
                          .in_w = l.h,
                          .out_channels = l.m,
                          .out_h = l.h,
                          .out_w = l.h,
                          .kernel_h = 3,
                          .kernel_w = 3,
                          .pad_top = 1,
                          .pad_left = 1};
  const auto pw = kernels::pack_conv_weights(w.data<float>(), l.m, l.c, 3, 3, 1);
  std::vector<float> y(static_cast<size_t>(batch * l.m * l.h * l.h));
  kernels::conv2d_f32_packed(p, x.data<float>(), pw, y.data(),
                             {.bias = b.data<float>(), .clamp_min = 0.0f});
  return y;
}

std::vector<float> values(const Tensor& t) {
  return {t.data<float>(), t.data<float>() + t.numel()};
}

// |got - want| <= 1e-5 * sum |w x| + bound slack, with sum |w x| <= 9 * C * max|w| * max|x|
// (all inputs in [-1, 1]).
void expect_within_wino_bound(const std::vector<float>& got, const std::vector<float>& want,
                              const Layer& l) {
  const double mag = 9.0 * static_cast<double>(l.c) + 1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5 * mag) << "output " << i;
  }
}

TEST(WinogradPlan, FloatModeRunsWinogradWhereFasterFakeModeKeepsDirectBits) {
  struct Case {
    Layer l;
    int64_t max_batch;
    const char* want;  // in the float plan's conv line ("" = no Winograd)
  };
  const Case cases[] = {
      {{32, 16, 24}, 4, " winograd F(4x4,3x3) "},                   // every batch: packed dropped
      {{64, 7, 40}, 16, " + winograd F(4x4,3x3) (large batches)"},  // batch 1 direct, 16 Winograd
      {{64, 2, 64}, 16, ""},                                        // 2x2 maps: never
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message() << "c " << k.l.c << " h " << k.l.h << " m " << k.l.m);
    const Tensor w = random_tensor({k.l.m, k.l.c, 3, 3}, 3);
    const Tensor b = random_tensor({k.l.m}, 4);
    const ir::Graph g = conv_graph(k.l, w, b);
    auto fplan = make_plan(g, {.mode = Mode::kFloat, .max_batch = k.max_batch});
    const std::string fs = fplan->to_string();
    if (*k.want != '\0') {
      EXPECT_NE(fs.find(k.want), std::string::npos) << fs;
    } else {
      EXPECT_EQ(fs.find("winograd"), std::string::npos) << fs;
    }
    auto qplan = make_plan(g, {.mode = Mode::kFake, .max_batch = k.max_batch});
    EXPECT_EQ(qplan->to_string().find("winograd"), std::string::npos) << qplan->to_string();
    Executor fex(fplan), qex(qplan);
    // Two threads: each run is one kernel call over the whole batch (no micro-batches), so
    // that the batch below is the one the cost model sees.
    const int saved = num_threads();
    set_num_threads(2);
    for (int64_t batch : {int64_t{1}, k.max_batch}) {
      SCOPED_TRACE(::testing::Message() << "batch " << batch);
      const Tensor x = random_tensor({batch, k.l.c, k.l.h, k.l.h}, 5 + batch);
      const std::vector<float> want = direct(k.l, x, w, b);
      EXPECT_EQ(values(qex.run(x)), want);  // fake mode: the direct conv's bits
      const std::vector<float> got = values(fex.run(x));
      expect_within_wino_bound(got, want, k.l);
      // Winograd ran exactly where the cost model prefers it (else the direct bits).
      kernels::Conv2dParams p{.batch = batch,
                              .in_channels = k.l.c,
                              .in_h = k.l.h,
                              .in_w = k.l.h,
                              .out_channels = k.l.m,
                              .out_h = k.l.h,
                              .out_w = k.l.h,
                              .kernel_h = 3,
                              .kernel_w = 3,
                              .pad_top = 1,
                              .pad_left = 1};
      const bool wino = *k.want != '\0' && kernels::winograd_preferred(p);
      EXPECT_EQ(got != want, wino);
    }
    set_num_threads(saved);
  }
}

// tools/make_winograd_fixture.py: a ResNet BasicBlock (BN folded into the convs, residual and
// ReLU fused) plus a conv on an odd-height map, PyTorch's float32 logits. The float plan runs
// its 32- and 48-channel 3x3 convs on Winograd and stays within the interop tolerance of
// docs/numerics.md (|ours - torch| <= 1e-5 * max(1, max_j |torch_j|) per row).
TEST(WinogradPlan, ResNetFixtureMatchesPyTorchFloat) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/cnn/";
  std::ifstream in(dir + "resnet_wino_ref.json");
  ASSERT_TRUE(in.good()) << "missing " << dir << "resnet_wino_ref.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  const ir::Graph g = onnx::import_model(dir + "resnet_wino_opset13.onnx");
  auto plan = make_plan(g, {.mode = Mode::kFloat, .max_batch = 4});
  const std::string s = plan->to_string();
  size_t convs = 0;
  for (size_t pos = 0; (pos = s.find(" winograd F(4x4,3x3)", pos)) != std::string::npos; ++pos) {
    ++convs;
  }
  EXPECT_EQ(convs, 3u) << s;  // the block's two convs and the head conv (not the 3-channel stem)
  const std::vector<float> xin = ref["input"].get<std::vector<float>>();
  Tensor x(ref["input_shape"].get<Shape>(), DType::kFloat32);
  std::copy(xin.begin(), xin.end(), x.data<float>());
  const std::vector<float> want = ref["float"].get<std::vector<float>>();
  for (int threads : {1, 2}) {
    const int saved = num_threads();
    set_num_threads(threads);
    Executor ex(plan);
    const std::vector<float> got = values(ex.run(x));
    set_num_threads(saved);
    ASSERT_EQ(got.size(), want.size());
    const int64_t classes = ref["output_shape"][1].get<int64_t>();
    double worst = 0;
    for (size_t r = 0; r * classes < want.size(); ++r) {
      double scale = 1.0;
      for (int64_t j = 0; j < classes; ++j)
        scale = std::max(scale, std::fabs(static_cast<double>(want[r * classes + j])));
      for (int64_t j = 0; j < classes; ++j) {
        const double e =
            std::fabs(static_cast<double>(got[r * classes + j]) - want[r * classes + j]) / scale;
        worst = std::max(worst, e);
        EXPECT_LE(e, 1e-5) << "row " << r << " class " << j;
      }
    }
    std::printf("[ winograd ] resnet_wino threads %d: worst |ours - torch| / row scale = %.3g\n",
                threads, worst);
  }
}

}  // namespace
}  // namespace qsearch::runtime
