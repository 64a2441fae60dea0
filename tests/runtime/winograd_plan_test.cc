// Float lowering of stride-1 3x3 convs onto kernels/winograd.h: Mode::kFloat runs it where the
// cost model prefers it at the plan's max_batch (chosen once per conv: every batch then runs the
// same kernel, so a sample's bits do not depend on its batch), or as PlanOptions::conv_algorithm
// forces, within docs/numerics.md "Float Winograd" of the reference; Mode::kFake keeps the direct
// conv's bits (its outputs are rounded to quantization grids and must match PyTorch-MASE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
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
      {{32, 16, 24}, 4, " winograd F(4x4,3x3) "},  // faster at every batch
      {{64, 7, 40}, 16, " winograd F(4x4,3x3) "},  // faster at 16 only: batch 1 runs it too
      {{64, 2, 64}, 16, ""},                       // 2x2 maps: never
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
      // Winograd ran at every batch where the plan chose it (else the direct bits).
      const bool wino = *k.want != '\0';
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

// Issue 14: the kernel is chosen once per plan, so a sample's float logits are the same bits
// whatever batch it is evaluated in: the whole batch, one by one, an uneven split, micro-batches
// (one thread) or the batch at once (two threads). Before, a conv whose Winograd gain needed a
// large batch ran direct at batch 1 and Winograd at 16 (the {64, 7, 40} layer).
TEST(WinogradPlan, SampleBitsDoNotDependOnTheBatch) {
  const Layer layers[] = {{64, 7, 40}, {32, 16, 24}, {24, 20, 32}};
  const int saved = num_threads();
  for (const Layer& l : layers) {
    SCOPED_TRACE(::testing::Message() << "c " << l.c << " h " << l.h << " m " << l.m);
    const Tensor w = random_tensor({l.m, l.c, 3, 3}, 13);
    const Tensor b = random_tensor({l.m}, 14);
    const ir::Graph g = conv_graph(l, w, b);
    const int64_t n = 16;
    auto plan = make_plan(g, {.mode = Mode::kFloat, .max_batch = n});
    ASSERT_NE(plan->to_string().find(" winograd F(4x4,3x3)"), std::string::npos)
        << plan->to_string();
    Executor ex(plan);
    const Tensor x = random_tensor({n, l.c, l.h, l.h}, 15);
    const int64_t per = l.m * l.h * l.h;
    set_num_threads(2);
    const std::vector<float> whole = values(ex.run(x));
    // Batches of 1, then an uneven split (5, 11), each on 1 and 2 threads.
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const std::vector<int64_t>& split :
           {std::vector<int64_t>(n, 1), std::vector<int64_t>{5, 11}}) {
        int64_t r0 = 0;
        for (int64_t len : split) {
          const std::vector<float> got = values(ex.run(x.rows(r0, r0 + len)));
          const std::vector<float> want(whole.begin() + r0 * per, whole.begin() + (r0 + len) * per);
          EXPECT_TRUE(got == want) << "threads " << threads << " rows " << r0 << ".." << r0 + len;
          r0 += len;
        }
      }
    }
  }
  set_num_threads(saved);
}

// PlanOptions::conv_algorithm (the CLI's --conv-algorithm): kDirect keeps the direct conv's bits
// where auto takes Winograd; kWinograd takes Winograd where auto would not (2x2 maps), within its
// bound; fake mode keeps the direct conv whatever the option says.
TEST(WinogradPlan, ConvAlgorithmOptionForcesTheKernel) {
  struct Case {
    Layer l;
    ConvAlgorithm algorithm;
    bool wino;
  };
  const Case cases[] = {
      {{32, 16, 24}, ConvAlgorithm::kAuto, true},
      {{32, 16, 24}, ConvAlgorithm::kDirect, false},
      {{64, 2, 64}, ConvAlgorithm::kAuto, false},
      {{64, 2, 64}, ConvAlgorithm::kWinograd, true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message() << "h " << k.l.h << " " << conv_algorithm_name(k.algorithm));
    const Tensor w = random_tensor({k.l.m, k.l.c, 3, 3}, 16);
    const Tensor b = random_tensor({k.l.m}, 17);
    const ir::Graph g = conv_graph(k.l, w, b);
    auto plan = make_plan(g, {.mode = Mode::kFloat, .max_batch = 4, .conv_algorithm = k.algorithm});
    EXPECT_EQ(plan->to_string().find("winograd") != std::string::npos, k.wino) << plan->to_string();
    auto fake = make_plan(g, {.mode = Mode::kFake, .max_batch = 4, .conv_algorithm = k.algorithm});
    EXPECT_EQ(fake->to_string().find("winograd"), std::string::npos) << fake->to_string();
    const Tensor x = random_tensor({3, k.l.c, k.l.h, k.l.h}, 18);
    const std::vector<float> want = direct(k.l, x, w, b);
    Executor ex(plan), fex(fake);
    const std::vector<float> got = values(ex.run(x));
    EXPECT_EQ(got != want, k.wino);
    expect_within_wino_bound(got, want, k.l);
    EXPECT_EQ(values(fex.run(x)), want);
  }
}

TEST(WinogradPlan, ConvAlgorithmNamesParseAndBadOnesAreOneLineErrors) {
  for (auto a : {ConvAlgorithm::kAuto, ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd}) {
    EXPECT_EQ(parse_conv_algorithm(conv_algorithm_name(a), "--conv-algorithm"), a);
  }
  try {
    parse_conv_algorithm("fast", "--conv-algorithm");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--conv-algorithm 'fast': use auto, direct or winograd");
  }
}

}  // namespace
}  // namespace qsearch::runtime
