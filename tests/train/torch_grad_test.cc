// The zoo's vit-tiny and mobilenet-s against PyTorch: one training step's loss and gradients of
// the same weights on the same batch (tests/train/data/torch_grad_<model>.{onnx,json}, written by
// `bench/torch_train.py --grad-reference tests/train/data/torch_grad` from the PyTorch twins).
// The ONNX file is torch.onnx.export's (opset 13: LayerNorm and GELU decomposed, fused back by
// the importer; Linear on tokens as MatMul by the transposed weight + Add), so this also checks
// that qsearch fine-tunes what PyTorch exports. TorchTrain: a Conv1d classifier trained a few
// steps by both sides.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "onnx/import.h"
#include "train/grad_kernels.h"
#include "train/network.h"
#include "train/optimizer.h"

namespace qsearch::train {
namespace {

void check_against_torch(const std::string& model) {
  const std::string base =
      std::string(QSEARCH_SOURCE_DIR) + "/tests/train/data/torch_grad_" + model;
  std::ifstream in(base + ".json");
  ASSERT_TRUE(in) << base << ".json";
  std::stringstream ss;
  ss << in.rdbuf();
  const auto ref = nlohmann::json::parse(ss.str());
  ir::Graph g = onnx::import_model(base + ".onnx");
  const std::vector<float> x = ref["input"].get<std::vector<float>>();
  const std::vector<int64_t> labels = ref["labels"].get<std::vector<int64_t>>();
  const int64_t batch = static_cast<int64_t>(labels.size());
  Network net(g, {.max_batch = batch, .input_grad = true});
  ASSERT_EQ(net.sample_size() * batch, static_cast<int64_t>(x.size()));
  const Tensor& logits = net.forward(x.data(), batch, {.training = true});
  std::vector<float> dlogits(logits.numel());
  const LossSums sums = softmax_cross_entropy(logits.data<float>(), labels.data(), batch,
                                              net.classes(), batch, dlogits.data());
  EXPECT_NEAR(sums.loss_sum / batch, ref["loss"].get<double>(), 1e-5);
  net.backward(dlogits.data());

  // Tolerance: relative to the element and to the largest gradient of the model (a gradient
  // that is exactly zero in theory, as a key projection's bias under softmax, is float noise on
  // both sides).
  double max_ref = 0;
  for (const auto& [name, samples] : ref["grads"].items()) {
    for (const auto& s : samples) max_ref = std::max(max_ref, std::abs(s[1].get<double>()));
  }
  auto compare = [&](const std::string& what, const float* got, int64_t size,
                     const nlohmann::json& samples) {
    for (const auto& s : samples) {
      const int64_t i = s[0].get<int64_t>();
      ASSERT_LT(i, size) << what;
      const double want = s[1].get<double>();
      EXPECT_NEAR(got[i], want, 1e-4 * max_ref + 1e-3 * std::abs(want)) << what << "[" << i << "]";
    }
  };
  int matched = 0;
  for (const Network::Param& p : net.params()) {
    if (!ref["grads"].contains(p.name)) continue;
    compare(p.name, p.grad, p.size, ref["grads"][p.name]);
    ++matched;
  }
  // Every PyTorch parameter is trained here (and nothing else is).
  EXPECT_EQ(matched, static_cast<int>(ref["grads"].size()));
  EXPECT_EQ(net.params().size(), ref["grads"].size());
  compare("input", net.input_grad(), batch * net.sample_size(), ref["input_grad"]);
}

TEST(TorchGrad, VitTinyMatchesPyTorch) { check_against_torch("vit-tiny"); }
TEST(TorchGrad, MobilenetSMatchesPyTorch) { check_against_torch("mobilenet-s"); }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// A Conv1d classifier (Conv1d with padding / stride / dilation / groups, BatchNorm1d, MaxPool1d,
// AdaptiveAvgPool1d, Linear) exported by torch.onnx and trained a few Adam steps on one batch by
// both sides (tools/make_conv1d_train_fixtures.py): every step's loss and the weights after the
// last step agree with PyTorch's.
TEST(TorchTrain, Conv1dClassifierStepsMatchPyTorch) {
  const std::string base = std::string(QSEARCH_SOURCE_DIR) + "/tests/train/data/torch_conv1d";
  const auto ref = read_json(base + ".json");
  ir::Graph g = onnx::import_model(base + ".onnx");
  const std::vector<float> x = ref["input"].get<std::vector<float>>();
  const std::vector<int64_t> labels = ref["labels"].get<std::vector<int64_t>>();
  const int64_t batch = static_cast<int64_t>(labels.size());
  Network net(g, {.max_batch = batch});
  ASSERT_EQ(net.sample_size() * batch, static_cast<int64_t>(x.size()));
  std::vector<int64_t> sizes;
  std::vector<ParamSlot> slots;
  for (const Network::Param& p : net.params()) {
    sizes.push_back(p.size);
    slots.push_back({p.data, p.grad});
  }
  Optimizer opt({.kind = OptimizerKind::kAdam}, sizes);
  const double lr = ref["lr"].get<double>();
  const std::vector<double> losses = ref["losses"].get<std::vector<double>>();
  for (size_t step = 0; step < losses.size(); ++step) {
    const Tensor& logits = net.forward(x.data(), batch, {.training = true});
    std::vector<float> dlogits(logits.numel());
    const LossSums sums = softmax_cross_entropy(logits.data<float>(), labels.data(), batch,
                                                net.classes(), batch, dlogits.data());
    EXPECT_NEAR(sums.loss_sum / batch, losses[step], 1e-5) << "step " << step;
    net.backward(dlogits.data());
    opt.step(lr, slots);
  }
  int matched = 0;
  for (const Network::Param& p : net.params()) {
    ASSERT_TRUE(ref["weights"].contains(p.name)) << p.name;
    for (const auto& s : ref["weights"][p.name]) {
      const int64_t i = s[0].get<int64_t>();
      ASSERT_LT(i, p.size) << p.name;
      EXPECT_NEAR(p.data[i], s[1].get<double>(), 1e-5) << p.name << "[" << i << "]";
    }
    ++matched;
  }
  EXPECT_EQ(matched, static_cast<int>(ref["weights"].size()));
}

}  // namespace
}  // namespace qsearch::train
