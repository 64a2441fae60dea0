// The trainer's ConvTranspose backward against PyTorch: one training step of the imported
// nn.ConvTranspose3d model tests/fixtures/nd/convt3d_net (a plain and a grouped, dilated 3-D
// ConvTranspose with output_padding, ReLU, global pool, Linear; imported as transposed Im2Col3d ->
// ConvTranspose (1, kW) -> view) gives PyTorch's loss and the gradients of every parameter and of
// the input (tests/fixtures/nd/convt3d_grad.json, tools/make_convt3d_grad_fixture.py: float64).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "onnx/import.h"
#include "support/source_dir.h"
#include "train/grad_kernels.h"
#include "train/network.h"

namespace qsearch::train {
namespace {

TEST(TorchGrad, ConvTranspose3dModelMatchesPyTorch) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/nd/";
  std::ifstream in(dir + "convt3d_grad.json"), rin(dir + "nd_ref.json");
  ASSERT_TRUE(in && rin);
  std::stringstream ss, rs;
  ss << in.rdbuf();
  rs << rin.rdbuf();
  const auto ref = nlohmann::json::parse(ss.str());
  const auto x =
      nlohmann::json::parse(rs.str())["models"]["convt3d_net"]["input"].get<std::vector<float>>();
  const std::vector<int64_t> labels = ref["labels"].get<std::vector<int64_t>>();
  const int64_t batch = static_cast<int64_t>(labels.size());
  ir::Graph g = onnx::import_model(dir + "convt3d_net_opset13.onnx");
  Network net(g, {.max_batch = batch, .input_grad = true});
  ASSERT_EQ(net.sample_size() * batch, static_cast<int64_t>(x.size()));
  const Tensor& logits = net.forward(x.data(), batch, {.training = true});
  std::vector<float> dlogits(logits.numel());
  const LossSums sums = softmax_cross_entropy(logits.data<float>(), labels.data(), batch,
                                              net.classes(), batch, dlogits.data());
  EXPECT_NEAR(sums.loss_sum / batch, ref["loss"].get<double>(), 1e-6);
  net.backward(dlogits.data());
  auto compare = [&](const std::string& what, const float* got, const nlohmann::json& want) {
    for (size_t i = 0; i < want.size(); ++i) {
      const double w = want[i].get<double>();
      EXPECT_NEAR(got[i], w, 1e-6 + 1e-4 * std::abs(w)) << what << "[" << i << "]";
    }
  };
  // Every PyTorch parameter, and nothing else, is trained, under the importer's names.
  ASSERT_EQ(net.params().size(), ref["grads"].size());
  for (const Network::Param& p : net.params()) {
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(ref["grads"].contains(p.name));
    ASSERT_EQ(static_cast<size_t>(p.size), ref["grads"][p.name].size());
    compare(p.name, p.grad, ref["grads"][p.name]);
  }
  ASSERT_EQ(static_cast<size_t>(batch * net.sample_size()), ref["input_grad"].size());
  compare("input", net.input_grad(), ref["input_grad"]);
}

}  // namespace
}  // namespace qsearch::train
