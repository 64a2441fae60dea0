// Finite-difference checks of every op's backward pass (train/network.h, train/grad_kernels.h).
//
// Each test builds a small graph, takes L = sum_i r_i * y_i for fixed random r (so dL/dy = r),
// and compares Network::backward's gradients of the parameters and of the input with central
// differences (L(v + h) - L(v - h)) / 2h, L accumulated in double. Inputs near a kink (ReLU at
// 0, ties in a max-pool window) are kept at least 5h away, so the differences are exact up to
// float rounding of the forward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"
#include "train/grad_kernels.h"
#include "train/network.h"
#include "train/zoo.h"

namespace qsearch::train {
namespace {

using ir::OpKind;
using ir::ValueId;

Tensor random_tensor(Shape shape, Rng& rng, double lo = -1, double hi = 1) {
  Tensor t(std::move(shape), DType::kFloat32);
  for (float& v : t.span<float>()) v = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

// Values in (-1, 1) at least `margin` away from 0.
Tensor away_from_zero(Shape shape, Rng& rng, double margin) {
  Tensor t(std::move(shape), DType::kFloat32);
  for (float& v : t.span<float>()) {
    const double u = rng.uniform(margin, 1.0);
    v = static_cast<float>(rng.uniform() < 0.5 ? -u : u);
  }
  return t;
}

struct GradCheck {
  double h = 1e-2;
  // false: the per-element tolerance below; true: only the aggregate test (whole models, whose
  // thousands of ReLU / max-pool kinks make a few differences one-sided): relative L2 error of
  // all checked elements <= rtol and cosine similarity >= 1 - rtol^2.
  bool aggregate = false;
  double atol = 2e-3;
  double rtol = 1e-2;
  int max_checks_per_tensor = 40;  // elements per tensor checked (evenly spread)
  bool training = true;
};

// Checks every parameter and the input of `g` on input x [batch, ...].
void check_gradients(ir::Graph& g, Tensor x, const GradCheck& opt = {}) {
  const int64_t batch = x.dim(0);
  Network net(g, {.max_batch = batch, .input_grad = true});
  Rng rng(99);
  const Tensor& y0 = net.forward(x.data<float>(), batch, {.training = opt.training});
  const Tensor r = random_tensor(y0.shape(), rng);
  auto loss = [&] {
    const Tensor& y =
        net.forward(x.data<float>(), batch, {.training = opt.training, .dropout_seed = 5});
    double l = 0;
    for (int64_t i = 0; i < y.numel(); ++i)
      l += static_cast<double>(y.data<float>()[i]) * r.data<float>()[i];
    return l;
  };
  (void)loss();
  net.forward(x.data<float>(), batch, {.training = true, .dropout_seed = 5});
  net.backward(r.data<float>());
  struct Target {
    std::string name;
    float* data;
    std::vector<float> grad;
  };
  std::vector<Target> targets;
  for (const Network::Param& p : net.params()) {
    targets.push_back({p.name, p.data, std::vector<float>(p.grad, p.grad + p.size)});
  }
  targets.push_back({"input", x.data<float>(),
                     std::vector<float>(net.input_grad(), net.input_grad() + x.numel())});
  int checked = 0;
  double dot = 0, an2 = 0, fd2 = 0, err2 = 0;
  for (Target& t : targets) {
    const int64_t n = static_cast<int64_t>(t.grad.size());
    const int64_t stride = std::max<int64_t>(1, n / opt.max_checks_per_tensor);
    for (int64_t i = 0; i < n; i += stride) {
      const float v = t.data[i];
      auto central = [&](double h) {
        t.data[i] = static_cast<float>(v + h);
        const double lp = loss();
        t.data[i] = static_cast<float>(v - h);
        const double lm = loss();
        t.data[i] = v;
        return (lp - lm) / (2 * h);
      };
      const double an = t.grad[i];
      const double fd = central(opt.h);
      if (!opt.aggregate) {
        EXPECT_NEAR(an, fd, opt.atol + opt.rtol * std::max(std::abs(fd), std::abs(an)))
            << t.name << "[" << i << "]";
      }
      dot += an * fd;
      an2 += an * an;
      fd2 += fd * fd;
      err2 += (an - fd) * (an - fd);
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  if (opt.aggregate) {
    EXPECT_LE(std::sqrt(err2 / fd2), opt.rtol) << checked << " elements";
    EXPECT_GE(dot / std::sqrt(an2 * fd2), 1 - opt.rtol * opt.rtol) << checked << " elements";
  }
}

// A graph builder for the tests: one input, nodes in order, the last output is the output.
struct G {
  ir::Graph g;
  ValueId cur;
  Rng rng{7};
  explicit G(Shape in) { cur = g.add_input("x", std::move(in)); }
  ValueId constant(const std::string& name, Tensor t) { return g.add_constant(name, std::move(t)); }
  ValueId node(OpKind kind, std::vector<ValueId> ins, ir::Attrs attrs = ir::NoAttrs{}) {
    const std::string name = "/n" + std::to_string(g.nodes().size());
    ValueId y = g.add_value(name + "_out");
    g.add_node(ir::Node{kind, name, std::move(ins), {y}, std::move(attrs), ""});
    cur = y;
    return y;
  }
  ValueId flatten() { return node(OpKind::kFlatten, {cur}, ir::AxisAttrs{.axis = 1}); }
  ir::Graph& done() {
    g.mark_output(cur);
    g.finalize();
    return g;
  }
};

TEST(GradCheck, GemmTransposedWeightWithAlphaBetaAndBias) {
  G b({kDynamic, 5});
  ValueId w = b.constant("w", random_tensor({4, 5}, b.rng));
  ValueId c = b.constant("c", random_tensor({4}, b.rng));
  b.node(OpKind::kGemm, {b.cur, w, c}, ir::GemmAttrs{.alpha = 0.7f, .beta = 1.3f, .trans_b = true});
  Rng rng(1);
  check_gradients(b.done(), random_tensor({3, 5}, rng));
}

TEST(GradCheck, GemmPlainWeightScalarBiasAndMatMul) {
  G b({kDynamic, 6});
  ValueId w = b.constant("w", random_tensor({6, 3}, b.rng));
  ValueId c = b.constant("c", random_tensor({1}, b.rng));
  b.node(OpKind::kGemm, {b.cur, w, c}, ir::GemmAttrs{.beta = 0.5f});
  ValueId w2 = b.constant("w2", random_tensor({3, 4}, b.rng));
  b.node(OpKind::kMatMul, {b.cur, w2});
  Rng rng(2);
  check_gradients(b.done(), random_tensor({5, 6}, rng));
}

TEST(GradCheck, ConvGroupsStridesDilationsAsymmetricPads) {
  G b({kDynamic, 4, 7, 6});
  ir::ConvAttrs a;
  a.kernel = {3, 2};
  a.strides = {2, 1};
  a.dilations = {1, 2};
  a.pads = {1, 0, 2, 1};
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({6, 2, 3, 2}, b.rng));
  ValueId bias = b.constant("b", random_tensor({6}, b.rng));
  b.node(OpKind::kConv, {b.cur, w, bias}, a);
  b.flatten();
  Rng rng(3);
  check_gradients(b.done(), random_tensor({2, 4, 7, 6}, rng));
}

TEST(GradCheck, Conv1dStridesDilationsPadsGroupsAndBatchNorm) {
  // A 1-D Conv (NCL) as the importer writes nn.Conv1d: height-1 ConvAttrs, weight [Co, Ci/g, k];
  // then BatchNorm (training mode) over [N, C, L] and a second, stride-1 Conv1d without bias.
  G b({kDynamic, 4, 11});
  ir::ConvAttrs a;
  a.kernel = {1, 3};
  a.strides = {1, 2};
  a.dilations = {1, 2};
  a.pads = {0, 1, 0, 2};
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({6, 2, 3}, b.rng));
  ValueId bias = b.constant("b", random_tensor({6}, b.rng));
  b.node(OpKind::kConv, {b.cur, w, bias}, a);
  ValueId s = b.constant("bn_s", random_tensor({6}, b.rng, 0.5, 1.5));
  ValueId c = b.constant("bn_b", random_tensor({6}, b.rng));
  ValueId m = b.constant("bn_m", random_tensor({6}, b.rng));
  ValueId v = b.constant("bn_v", random_tensor({6}, b.rng, 0.5, 1.5));
  b.node(OpKind::kBatchNorm, {b.cur, s, c, m, v}, ir::BatchNormAttrs{});
  ir::ConvAttrs one;
  one.kernel = {1, 2};
  one.pads = {0, 1, 0, 0};
  ValueId w2 = b.constant("w2", random_tensor({3, 6, 2}, b.rng));
  b.node(OpKind::kConv, {b.cur, w2}, one);
  b.flatten();
  Rng rng(41);
  check_gradients(b.done(), random_tensor({3, 4, 11}, rng));
}

TEST(GradCheck, Conv3dStridesDilationsPadsGroupsAndBatchNorm) {
  // A 3-D Conv as the importer writes nn.Conv3d (import_conv3d.cc): Im2Col3d (depth and height
  // taps into channels) -> Conv (1, kW) by the weight [Co, Ci/g * kD * kH, 1, kW] -> a 5-D view;
  // BatchNorm (training mode) over [N, C, D, H, W]; a second 3-D Conv without bias. The input's
  // gradient goes back through both Im2Col3d's adjoints (kernels::im2col3d_backward).
  G b({kDynamic, 4, 4, 5, 6});
  ir::Im2Col3dAttrs ia;
  ia.kernel = {2, 3};
  ia.strides = {2, 1};
  ia.dilations = {1, 2};
  ia.pads = {1, 0, 0, 2};  // D' = (4 + 1 - 2) / 2 + 1 = 2, H' = (5 + 2 - 5) + 1 = 3
  b.node(OpKind::kIm2Col3d, {b.cur}, ia);
  ir::ConvAttrs a;
  a.kernel = {1, 2};
  a.strides = {1, 2};
  a.pads = {0, 1, 0, 0};  // W' = (6 + 1 - 2) / 2 + 1 = 3
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({6, 2 * 2 * 3, 1, 2}, b.rng));
  ValueId bias = b.constant("b", random_tensor({6}, b.rng));
  b.node(OpKind::kConv, {b.cur, w, bias}, a);
  b.node(OpKind::kReshape, {b.cur}, ir::ReshapeAttrs{.shape = {0, 6, 2, 3, 3}});
  ValueId s = b.constant("bn_s", random_tensor({6}, b.rng, 0.5, 1.5));
  ValueId c = b.constant("bn_b", random_tensor({6}, b.rng));
  ValueId m = b.constant("bn_m", random_tensor({6}, b.rng));
  ValueId v = b.constant("bn_v", random_tensor({6}, b.rng, 0.5, 1.5));
  b.node(OpKind::kBatchNorm, {b.cur, s, c, m, v}, ir::BatchNormAttrs{});
  ir::Im2Col3dAttrs ib;
  ib.kernel = {1, 2};
  ib.pads = {0, 1, 0, 0};  // D' = 2, H' = 3 + 1 - 2 + 1 = 3
  b.node(OpKind::kIm2Col3d, {b.cur}, ib);
  ir::ConvAttrs one;
  one.kernel = {1, 3};
  one.pads = {0, 1, 0, 1};
  ValueId w2 = b.constant("w2", random_tensor({3, 6 * 2, 1, 3}, b.rng));
  b.node(OpKind::kConv, {b.cur, w2}, one);
  b.node(OpKind::kReshape, {b.cur}, ir::ReshapeAttrs{.shape = {0, 3, 2, 3, 3}});
  b.flatten();
  Rng rng(43);
  check_gradients(b.done(), random_tensor({3, 4, 4, 5, 6}, rng));
}

// The training forward pass of g on x equals the float engine's (the backward checks below only
// check the gradients of the network's own forward).
void expect_forward_is_float_engines(ir::Graph& g, const Tensor& x) {
  const int64_t batch = x.dim(0);
  std::vector<float> want;
  {
    auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kFloat, .max_batch = batch});
    runtime::Executor ex(plan);
    const Tensor y = ex.run(x);
    want.assign(y.data<float>(), y.data<float>() + y.numel());
  }
  Network net(g, {.max_batch = batch});
  const Tensor& y = net.forward(x.data<float>(), batch, {.training = false});
  ASSERT_EQ(static_cast<size_t>(y.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(y.data<float>()[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << i;
  }
}

TEST(GradCheck, ConvTransposeStridesDilationsPadsOutputPaddingGroups) {
  // ConvTranspose: [3, 4, 4, 5] -> H' = 2 * 3 + 1 + 2 * 1 + 1 - 1 - 2 = 7,
  // W' = 1 * 4 + 1 + 1 * 2 + 1 - 0 - 1 = 7, 2 groups of 3 outputs, bias; then a 2x2 stride-2
  // upsampling without bias.
  G b({kDynamic, 4, 4, 5});
  ir::ConvTransposeAttrs a;
  a.kernel = {3, 2};
  a.strides = {2, 1};
  a.dilations = {1, 2};
  a.pads = {1, 0, 2, 1};
  a.output_padding = {1, 1};
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({4, 3, 3, 2}, b.rng));
  ValueId bias = b.constant("b", random_tensor({6}, b.rng));
  b.node(OpKind::kConvTranspose, {b.cur, w, bias}, a);
  ir::ConvTransposeAttrs up;
  up.kernel = {2, 2};
  up.strides = {2, 2};
  ValueId w2 = b.constant("w2", random_tensor({6, 2, 2, 2}, b.rng));
  b.node(OpKind::kConvTranspose, {b.cur, w2}, up);
  b.flatten();
  ir::Graph& g = b.done();
  ASSERT_EQ(g.infer_shapes(3)[g.nodes()[1].outputs[0]], (Shape{3, 2, 14, 14}));
  Rng rng(51);
  const Tensor x = random_tensor({3, 4, 4, 5}, rng);
  expect_forward_is_float_engines(g, x);
  check_gradients(g, x.clone());
}

TEST(GradCheck, ConvTranspose3dStridesDilationsPadsOutputPaddingGroupsAndBatchNorm) {
  // A 3-D ConvTranspose as the importer writes nn.ConvTranspose3d (import_conv_transpose_nd.cc):
  // a transposed Im2Col3d (the taps of depth and height into channels) -> ConvTranspose (1, kW)
  // by [C * kD * kH, M/g, 1, kW] -> a 5-D view; BatchNorm (training mode); a second 3-D
  // ConvTranspose without bias. The input's gradient goes back through both ConvTransposes and
  // both transposed Im2Col3d's adjoints.
  G b({kDynamic, 2, 2, 3, 3});
  ir::Im2Col3dAttrs ia;
  ia.kernel = {2, 2};
  ia.strides = {2, 1};
  ia.dilations = {1, 2};
  ia.pads = {1, 0, 0, 2};
  ia.transposed = true;
  ia.output_padding = {1, 1};  // D' = 2 * 1 + 1 + 1 + 1 - 1 = 4, H' = 2 + 1 + 2 + 1 - 2 = 4
  b.node(OpKind::kIm2Col3d, {b.cur}, ia);
  ir::ConvTransposeAttrs a;
  a.kernel = {1, 2};
  a.strides = {1, 2};
  a.pads = {0, 1, 0, 0};
  a.output_padding = {0, 1};  // W' = 2 * 2 + 1 + 1 + 1 - 1 = 6
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({2 * 2 * 2, 2, 1, 2}, b.rng));
  ValueId bias = b.constant("b", random_tensor({4}, b.rng));
  b.node(OpKind::kConvTranspose, {b.cur, w, bias}, a);
  b.node(OpKind::kReshape, {b.cur}, ir::ReshapeAttrs{.shape = {0, 4, 4, 4, 6}});
  ValueId s = b.constant("bn_s", random_tensor({4}, b.rng, 0.5, 1.5));
  ValueId c = b.constant("bn_b", random_tensor({4}, b.rng));
  ValueId m = b.constant("bn_m", random_tensor({4}, b.rng));
  ValueId v = b.constant("bn_v", random_tensor({4}, b.rng, 0.5, 1.5));
  b.node(OpKind::kBatchNorm, {b.cur, s, c, m, v}, ir::BatchNormAttrs{});
  ir::Im2Col3dAttrs ib;
  ib.kernel = {1, 2};
  ib.transposed = true;  // D' = 4, H' = 4 + 1 = 5
  b.node(OpKind::kIm2Col3d, {b.cur}, ib);
  ir::ConvTransposeAttrs one;
  one.kernel = {1, 3};
  one.pads = {0, 1, 0, 1};  // W' = 6 + 2 - 2 = 6
  ValueId w2 = b.constant("w2", random_tensor({4 * 2, 3, 1, 3}, b.rng));
  b.node(OpKind::kConvTranspose, {b.cur, w2}, one);
  b.node(OpKind::kReshape, {b.cur}, ir::ReshapeAttrs{.shape = {0, 3, 4, 5, 6}});
  b.flatten();
  Rng rng(53);
  const Tensor x = random_tensor({3, 2, 2, 3, 3}, rng);
  check_gradients(b.done(), x.clone());
  expect_forward_is_float_engines(b.g, x);
}

// The imported nn.ConvTranspose3d model (tests/fixtures/nd/convt3d_net: a plain and a grouped,
// dilated 3-D ConvTranspose with output_padding, ReLU, global pool, Linear): the training forward
// pass is PyTorch's, and its gradients check.
TEST(GradCheck, ImportedConvTranspose3dModelIsPyTorchsForwardAndItsGradientsCheck) {
  ir::Graph g = onnx::import_model(
      (std::filesystem::path(QSEARCH_SOURCE_DIR) / "tests/fixtures/nd/convt3d_net_opset13.onnx")
          .string());
  std::ifstream in(std::filesystem::path(QSEARCH_SOURCE_DIR) / "tests/fixtures/nd/nd_ref.json");
  const nlohmann::json ref = nlohmann::json::parse(in).at("models").at("convt3d_net");
  Tensor x(ref.at("input_shape").get<Shape>(), DType::kFloat32);
  const auto xv = ref.at("input").get<std::vector<float>>();
  std::copy(xv.begin(), xv.end(), x.data<float>());
  const auto want = ref.at("float").get<std::vector<float>>();
  {
    Network net(g, {.max_batch = x.dim(0)});
    const Tensor& y = net.forward(x.data<float>(), x.dim(0), {.training = false});
    ASSERT_EQ(static_cast<size_t>(y.numel()), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y.data<float>()[i], want[i], 1e-5) << i;
  }
  check_gradients(g, x.clone());
}

TEST(GradCheck, StrideOneConvInputGradientByTransposedConvolution) {
  // Stride 1: dX is the convolution of dY with the flipped, transposed weights.
  G b({kDynamic, 4, 6, 7});
  ir::ConvAttrs a;
  a.kernel = {3, 2};
  a.dilations = {2, 1};
  a.pads = {2, 0, 1, 1};
  a.group = 2;
  ValueId w = b.constant("w", random_tensor({4, 2, 3, 2}, b.rng));
  b.node(OpKind::kConv, {b.cur, w}, a);
  // And a 1x1 convolution with more padding than the kernel reaches (the col2im fallback).
  ir::ConvAttrs one;
  one.kernel = {1, 1};
  one.pads = {1, 1, 1, 1};
  ValueId w1 = b.constant("w1", random_tensor({3, 4, 1, 1}, b.rng));
  b.node(OpKind::kConv, {b.cur, w1}, one);
  b.flatten();
  Rng rng(31);
  check_gradients(b.done(), random_tensor({3, 4, 6, 7}, rng));
}

TEST(GradCheck, ConvWeightGradientAcrossSeveralImageChunks) {
  // 32x32 outputs: 4 images per chunk, so 9 images make 3 chunks summed in order.
  G b({kDynamic, 1, 32, 32});
  ir::ConvAttrs a;
  a.kernel = {3, 3};
  a.pads = {1, 1, 1, 1};
  ValueId w = b.constant("w", random_tensor({2, 1, 3, 3}, b.rng));
  ValueId bias = b.constant("b", random_tensor({2}, b.rng));
  b.node(OpKind::kConv, {b.cur, w, bias}, a);
  b.flatten();
  Rng rng(4);
  check_gradients(b.done(), random_tensor({9, 1, 32, 32}, rng), {.atol = 5e-3});
}

TEST(GradCheck, BatchNormTrainingMode1d) {
  G b({kDynamic, 3});
  auto filled = [&](const std::string& n, std::vector<float> v) {
    return b.constant(n, Tensor::from<float>({3}, v));
  };
  ValueId s = filled("scale", {1.5f, -0.7f, 0.9f}), bi = filled("bias", {0.1f, 0.2f, -0.3f});
  ValueId m = filled("mean", {0, 0, 0}), v = filled("var", {1, 1, 1});
  b.node(OpKind::kBatchNorm, {b.cur, s, bi, m, v}, ir::BatchNormAttrs{});
  Rng rng(5);
  check_gradients(b.done(), random_tensor({6, 3}, rng));
}

TEST(GradCheck, BatchNormTrainingMode2d) {
  G b({kDynamic, 2, 3, 3});
  ValueId s = b.constant("scale", random_tensor({2}, b.rng, 0.5, 1.5));
  ValueId bi = b.constant("bias", random_tensor({2}, b.rng));
  ValueId m = b.constant("mean", Tensor({2}, DType::kFloat32));
  ValueId v = b.constant("var", Tensor::from<float>({2}, {1, 1}));
  b.node(OpKind::kBatchNorm, {b.cur, s, bi, m, v}, ir::BatchNormAttrs{});
  b.flatten();
  Rng rng(6);
  check_gradients(b.done(), random_tensor({3, 2, 3, 3}, rng));
}

TEST(GradCheck, ReluAndResidualAddAccumulateGradients) {
  // y = relu(x) + x: x has two consumers, so its gradient is the sum of both paths.
  G b({kDynamic, 8});
  const ValueId x = b.cur;
  ValueId r = b.node(OpKind::kRelu, {x});
  b.node(OpKind::kAdd, {r, x});
  Rng rng(7);
  check_gradients(b.done(), away_from_zero({4, 8}, rng, 0.1));
}

TEST(GradCheck, AddBroadcastsATrainableConstant) {
  G b({kDynamic, 3, 2, 2});
  ValueId c = b.constant("c", random_tensor({3, 1, 1}, b.rng));
  b.node(OpKind::kAdd, {b.cur, c});
  // The constant may come first (torch.onnx writes a Linear's bias as Add(bias, x)).
  b.node(OpKind::kAdd, {b.constant("c0", random_tensor({2, 2}, b.rng)), b.cur});
  b.flatten();
  Rng rng(8);
  check_gradients(b.done(), random_tensor({2, 3, 2, 2}, rng));
}

TEST(GradCheck, MatMulOfTwoActivationsBatchedAndBroadcast) {
  // y = x x^T per [3, 4] matrix (both operands from x: gradients accumulate), plus x times the
  // transposed mean over dim 1 ([B, 1, 4, 3], broadcast over the 2 heads).
  G b({kDynamic, 2, 3, 4});
  const ValueId x = b.cur;
  ValueId xt = b.node(OpKind::kTranspose, {x}, ir::TransposeAttrs{.perm = {0, 1, 3, 2}});
  ValueId p = b.node(OpKind::kMatMul, {x, xt});
  ValueId m = b.node(OpKind::kReduceMean, {x}, ir::ReduceAttrs{.axes = {1}, .keepdims = true});
  ValueId mt = b.node(OpKind::kTranspose, {m}, ir::TransposeAttrs{.perm = {0, 1, 3, 2}});
  ValueId q = b.node(OpKind::kMatMul, {x, mt});
  b.node(OpKind::kAdd, {p, q});
  b.flatten();
  Rng rng(21);
  check_gradients(b.done(), random_tensor({3, 2, 3, 4}, rng));
}

TEST(GradCheck, TokenLinearSoftmaxAndScalarMulDiv) {
  // Attention-style scores: x [B, 3, 5] -> MatMul with a constant [5, 4] -> Mul 0.7 ->
  // Softmax (last axis) -> Div 1.3 -> mean over tokens.
  G b({kDynamic, 3, 5});
  ValueId w = b.constant("w", random_tensor({5, 4}, b.rng));
  b.node(OpKind::kMatMul, {b.cur, w});
  b.node(OpKind::kMul, {b.cur, b.constant("k", Tensor::from<float>({}, {0.7f}))});
  b.node(OpKind::kSoftmax, {b.cur}, ir::AxisAttrs{.axis = -1});
  b.node(OpKind::kDiv, {b.cur, b.constant("d", Tensor::from<float>({}, {1.3f}))});
  b.node(OpKind::kReduceMean, {b.cur}, ir::ReduceAttrs{.axes = {1}, .keepdims = false});
  Rng rng(22);
  check_gradients(b.done(), random_tensor({4, 3, 5}, rng, -2, 2));
}

TEST(GradCheck, LayerNormGeluPositionEmbeddingAndTranspose) {
  // x [B, 4, 6] + pos [1, 4, 6] -> LayerNorm(last) -> Gelu -> Transpose -> LayerNorm over the
  // last two dims (no bias) -> flatten.
  G b({kDynamic, 4, 6});
  b.node(OpKind::kAdd, {b.cur, b.constant("pos", random_tensor({1, 4, 6}, b.rng))});
  ValueId s1 = b.constant("s1", random_tensor({6}, b.rng, 0.5, 1.5));
  ValueId b1 = b.constant("b1", random_tensor({6}, b.rng));
  b.node(OpKind::kLayerNorm, {b.cur, s1, b1}, ir::LayerNormAttrs{.axis = -1, .epsilon = 1e-5f});
  b.node(OpKind::kGelu, {b.cur}, ir::GeluAttrs{});
  b.node(OpKind::kTranspose, {b.cur}, ir::TransposeAttrs{.perm = {0, 2, 1}});
  ValueId s2 = b.constant("s2", random_tensor({6, 4}, b.rng, 0.5, 1.5));
  b.node(OpKind::kLayerNorm, {b.cur, s2}, ir::LayerNormAttrs{.axis = 1, .epsilon = 1e-5f});
  b.flatten();
  ir::Graph& g = b.done();
  Network probe(g, {});
  // pos, s1, b1, s2 are trainable (PyTorch's LayerNorm weight and bias are parameters).
  EXPECT_EQ(probe.params().size(), 4u);
  Rng rng(23);
  check_gradients(g, random_tensor({3, 4, 6}, rng, -2, 2));
}

// Values k * 0.05 for distinct k: no two taps of a window within 5h of each other.
Tensor distinct_values(Shape shape, Rng& rng) {
  Tensor t(std::move(shape), DType::kFloat32);
  std::vector<int> k(t.numel());
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<int>(i);
  rng.shuffle(std::span<int>(k));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.05f * (k[i] - t.numel() / 2);
  return t;
}

TEST(GradCheck, MaxPoolWithPaddingAndOverlappingWindows) {
  G b({kDynamic, 2, 5, 6});
  ir::PoolAttrs a;
  a.kernel = {3, 3};
  a.strides = {2, 2};
  a.pads = {1, 1, 1, 1};
  b.node(OpKind::kMaxPool, {b.cur}, a);
  b.flatten();
  Rng rng(9);
  check_gradients(b.done(), distinct_values({2, 2, 5, 6}, rng));
}

TEST(GradCheck, MaxPoolTiledWindowsWithUncoveredEdges) {
  // 2x2 / stride 2 on 5x7: the last row and column belong to no window (gradient 0).
  G b({kDynamic, 3, 5, 7});
  ir::PoolAttrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  b.node(OpKind::kMaxPool, {b.cur}, a);
  b.flatten();
  Rng rng(32);
  check_gradients(b.done(), distinct_values({2, 3, 5, 7}, rng), {.max_checks_per_tensor = 300});
}

TEST(GradCheck, AveragePoolBothPadCountModes) {
  for (bool include : {false, true}) {
    G b({kDynamic, 2, 5, 5});
    ir::PoolAttrs a;
    a.kernel = {3, 2};
    a.strides = {2, 1};
    a.pads = {1, 0, 1, 1};
    a.count_include_pad = include;
    b.node(OpKind::kAveragePool, {b.cur}, a);
    b.flatten();
    Rng rng(10);
    check_gradients(b.done(), random_tensor({2, 2, 5, 5}, rng));
  }
}

TEST(GradCheck, GlobalAveragePoolAndReshape) {
  G b({kDynamic, 3, 4, 5});
  b.node(OpKind::kGlobalAveragePool, {b.cur});
  b.node(OpKind::kReshape, {b.cur}, ir::ReshapeAttrs{.shape = {0, -1}});
  Rng rng(11);
  check_gradients(b.done(), random_tensor({2, 3, 4, 5}, rng));
}

TEST(GradCheck, DropoutWithAFixedMask) {
  G b({kDynamic, 50});
  b.node(OpKind::kDropout, {b.cur}, ir::DropoutAttrs{.ratio = 0.3f});
  Rng rng(12);
  check_gradients(b.done(), random_tensor({4, 50}, rng));
}

TEST(Dropout, InvertedScalingSeededMasksAndIdentityInInference) {
  G b({kDynamic, 1000});
  b.node(OpKind::kDropout, {b.cur}, ir::DropoutAttrs{.ratio = 0.25f});
  ir::Graph& g = b.done();
  Network net(g, {.max_batch = 4});
  Tensor x(Shape{4, 1000}, DType::kFloat32);
  for (float& v : x.span<float>()) v = 2.0f;
  const Tensor y1 = net.forward(x.data<float>(), 4, {.training = true, .dropout_seed = 1}).clone();
  const Tensor y2 = net.forward(x.data<float>(), 4, {.training = true, .dropout_seed = 1}).clone();
  const Tensor y3 = net.forward(x.data<float>(), 4, {.training = true, .dropout_seed = 2}).clone();
  int64_t kept = 0, same = 0, differs = 0;
  for (int64_t i = 0; i < 4000; ++i) {
    const float v = y1.data<float>()[i];
    EXPECT_TRUE(v == 0.0f || v == 2.0f / 0.75f) << v;
    kept += v != 0.0f;
    same += v == y2.data<float>()[i];
    differs += v != y3.data<float>()[i];
  }
  EXPECT_EQ(same, 4000);
  EXPECT_GT(differs, 500);
  EXPECT_NEAR(kept / 4000.0, 0.75, 0.03);
  const Tensor& y4 = net.forward(x.data<float>(), 4, {.training = false});
  for (float v : y4.span<float>()) EXPECT_EQ(v, 2.0f);
}

TEST(BatchNorm, RunningStatisticsFollowPyTorch) {
  // PyTorch: running = (1 - 0.1) running + 0.1 batch, the variance unbiased (n - 1).
  G b({kDynamic, 2});
  ValueId s = b.constant("s", Tensor::from<float>({2}, {1, 1}));
  ValueId bi = b.constant("b", Tensor::from<float>({2}, {0, 0}));
  ValueId m = b.constant("m", Tensor::from<float>({2}, {0.5f, -1.0f}));
  ValueId v = b.constant("v", Tensor::from<float>({2}, {2.0f, 1.0f}));
  b.node(OpKind::kBatchNorm, {b.cur, s, bi, m, v}, ir::BatchNormAttrs{.momentum = 0.9f});
  ir::Graph& g = b.done();
  Network net(g, {.max_batch = 4});
  const Tensor x = Tensor::from<float>({4, 2}, {1, 2, 2, 4, 3, 6, 6, 0});
  const Tensor& y = net.forward(x.data<float>(), 4, {.training = true});
  // Channel 0: 1 2 3 6, mean 3, biased var 3.5, unbiased 14/3.
  const double m_pt = 1.0 - 0.9f;  // PyTorch's momentum as the ONNX attribute stores it
  const float* rm = g.value(m).data.data<float>();
  const float* rv = g.value(v).data.data<float>();
  EXPECT_NEAR(rm[0], (1 - m_pt) * 0.5 + m_pt * 3.0, 1e-6);
  EXPECT_NEAR(rv[0], (1 - m_pt) * 2.0 + m_pt * 14.0 / 3.0, 1e-6);
  // Channel 1: 2 4 6 0, mean 3, biased var 5, unbiased 20/3.
  EXPECT_NEAR(rm[1], (1 - m_pt) * -1.0 + m_pt * 3.0, 1e-6);
  EXPECT_NEAR(rv[1], (1 - m_pt) * 1.0 + m_pt * 20.0 / 3.0, 1e-6);
  EXPECT_NEAR(y.data<float>()[0], (1 - 3) / std::sqrt(3.5 + 1e-5), 1e-5);
  EXPECT_NEAR(y.data<float>()[7], (0 - 3) / std::sqrt(5 + 1e-5), 1e-5);
  // Inference uses the running statistics.
  const Tensor& yi = net.forward(x.data<float>(), 4, {.training = false});
  EXPECT_NEAR(yi.data<float>()[0], (1 - rm[0]) / std::sqrt(rv[0] + 1e-5), 1e-5);
}

TEST(GradCheck, SoftmaxCrossEntropyMatchesFiniteDifferences) {
  Rng rng(13);
  const int64_t batch = 3, classes = 4;
  Tensor z = random_tensor({batch, classes}, rng, -3, 3);
  const std::vector<int64_t> labels = {2, 0, 3};
  std::vector<float> dz(batch * classes);
  const LossSums s =
      softmax_cross_entropy(z.data<float>(), labels.data(), batch, classes, batch, dz.data());
  double expect = 0;
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(z.data<float>()[b * classes + c]);
    expect += std::log(sum) - z.data<float>()[b * classes + labels[b]];
  }
  EXPECT_NEAR(s.loss_sum, expect, 1e-5);
  const double h = 1e-3;
  for (int64_t i = 0; i < batch * classes; ++i) {
    const float v = z.data<float>()[i];
    z.data<float>()[i] = static_cast<float>(v + h);
    const double lp =
        softmax_cross_entropy(z.data<float>(), labels.data(), batch, classes, batch, nullptr)
            .loss_sum /
        batch;
    z.data<float>()[i] = static_cast<float>(v - h);
    const double lm =
        softmax_cross_entropy(z.data<float>(), labels.data(), batch, classes, batch, nullptr)
            .loss_sum /
        batch;
    z.data<float>()[i] = v;
    EXPECT_NEAR(dz[i], (lp - lm) / (2 * h), 1e-4) << i;
  }
}

TEST(GradCheck, WholeZooModels) {
  // Every wire of the real models: the gradient of a few elements of every parameter.
  for (const char* name :
       {"lenet5", "resnet-s", "jsc-toy", "jsc-s", "mlp", "vit-tiny", "mobilenet-s"}) {
    SCOPED_TRACE(name);
    const std::string n = name;
    const Shape in_shape = n == "lenet5"                                         ? Shape{1, 28, 28}
                           : n == "vit-tiny"                                     ? Shape{1, 14, 14}
                           : n == "resnet-s" || n == "mlp" || n == "mobilenet-s" ? Shape{1, 12, 12}
                                                                                 : Shape{16};
    ir::Graph g = build_model(n, {.input_shape = in_shape, .num_classes = 5, .seed = 1});
    Rng rng(14);
    Shape in = g.value(g.inputs()[0]).shape;
    in[0] = 16;
    check_gradients(g, random_tensor(in, rng),
                    {.h = 1e-3, .aggregate = true, .rtol = 0.1, .max_checks_per_tensor = 8});
  }
}

TEST(Network, GradientsAreBitIdenticalForAnyThreadCount) {
  for (const char* model : {"resnet-s", "vit-tiny", "mobilenet-s"}) {
    SCOPED_TRACE(model);
    ir::Graph g = build_model(model, {.seed = 2});
    Rng rng(15);
    Tensor x = random_tensor({8, 1, 28, 28}, rng, 0, 1);
    Tensor r = random_tensor({8, 10}, rng);
    auto grads = [&](int threads) {
      set_num_threads(threads);
      ir::Graph copy = g.clone();
      Network net(copy, {.max_batch = 8, .input_grad = true});
      net.forward(x.data<float>(), 8, {.training = true});
      net.backward(r.data<float>());
      std::vector<float> out;
      for (const auto& p : net.params()) out.insert(out.end(), p.grad, p.grad + p.size);
      out.insert(out.end(), net.input_grad(), net.input_grad() + x.numel());
      return out;
    };
    const std::vector<float> one = grads(1), two = grads(2), three = grads(3);
    set_num_threads(2);
    ASSERT_EQ(one.size(), two.size());
    EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(one.data(), three.data(), one.size() * sizeof(float)));
  }
}

TEST(Network, FusedBatchNormReluIsBitIdenticalToSeparatePasses) {
  // The Network runs a BatchNorm whose only reader is a ReLU as one pass each way
  // (batch_norm_relu_*). An Identity between them (the BatchNorm output then has another reader
  // kind) keeps the passes separate: outputs, running statistics, every gradient, the input
  // gradient and both intermediate values must be the same bits, in training and inference.
  for (const char* model : {"mobilenet-s", "resnet-s"}) {
    SCOPED_TRACE(model);
    ir::Graph g = build_model(model, {.seed = 3});
    ir::Graph split = g.clone();
    int cut = 0;
    const size_t nodes = split.nodes().size();
    for (size_t i = 0; i < nodes; ++i) {
      if (split.nodes()[i].kind != OpKind::kRelu) continue;
      const ValueId in = split.nodes()[i].inputs[0];
      const ir::NodeId producer = split.value(in).producer;
      if (producer < 0 || split.node(producer).kind != OpKind::kBatchNorm) continue;
      const ValueId mid = split.add_value(split.nodes()[i].name + "_id");
      split.nodes()[i].inputs[0] = mid;
      split.add_node(ir::Node{
          OpKind::kIdentity, split.nodes()[i].name + "/Identity", {in}, {mid}, ir::NoAttrs{}, ""});
      ++cut;
    }
    split.finalize();
    ASSERT_GT(cut, 2);
    Rng rng(16);
    const Tensor x = random_tensor({6, 1, 28, 28}, rng, 0, 1);
    const Tensor r = random_tensor({6, 10}, rng);
    auto run = [&](ir::Graph& graph) {
      Network net(graph, {.max_batch = 6, .input_grad = true});
      std::vector<float> out;
      for (int pass = 0; pass < 2; ++pass) {  // the second pass sees updated running stats
        const Tensor& y = net.forward(x.data<float>(), 6, {.training = true});
        out.insert(out.end(), y.data<float>(), y.data<float>() + y.numel());
        net.backward(r.data<float>());
        for (const auto& p : net.params()) out.insert(out.end(), p.grad, p.grad + p.size);
        out.insert(out.end(), net.input_grad(), net.input_grad() + x.numel());
      }
      // Every BatchNorm's output and output gradient, and every running statistic.
      for (const ir::Node& n : graph.nodes()) {
        if (n.kind != OpKind::kBatchNorm) continue;
        const int64_t numel = shape_numel(graph.infer_shapes(6)[n.outputs[0]]);
        const float* a = net.activation(n.outputs[0]);
        const float* ga = net.value_grad(n.outputs[0]);
        EXPECT_NE(ga, nullptr);
        if (ga == nullptr) return out;
        out.insert(out.end(), a, a + numel);
        out.insert(out.end(), ga, ga + numel);
        for (int k = 3; k < 5; ++k) {
          const Tensor& t = graph.value(n.inputs[k]).data;
          out.insert(out.end(), t.data<float>(), t.data<float>() + t.numel());
        }
      }
      const Tensor& yi = net.forward(x.data<float>(), 6, {.training = false});
      out.insert(out.end(), yi.data<float>(), yi.data<float>() + yi.numel());
      return out;
    };
    const std::vector<float> fused = run(g), separate = run(split);
    ASSERT_EQ(fused.size(), separate.size());
    EXPECT_EQ(0, std::memcmp(fused.data(), separate.data(), fused.size() * sizeof(float)));
  }
}

TEST(Network, RejectsWhatItCannotTrainNamingTheNode) {
  G b({kDynamic, 4});
  b.node(OpKind::kSigmoid, {b.cur});
  ir::Graph& g = b.done();
  try {
    Network net(g, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/n0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Sigmoid"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qsearch::train
