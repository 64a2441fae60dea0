// Issue 11: a ViT-style transformer encoder exported by torch.onnx.export at opsets 13 and 17
// (tools/make_transformer_fixtures.py: patch Linear, multi-head self-attention with batched
// MatMuls of two activations, Div / Mul scaling, Softmax, residual Adds, LayerNorm, exact and tanh
// GELU, Gather / Slice / ReduceMean pooling, classification head) in the three engines:
//   * float: PyTorch's logits of the first 64 MNIST test images within 1e-5 of their scale, with
//     the fast and the reference kernels, and PyTorch's predictions on the first 2000;
//   * fake: MASE's semantics (linear: data_in / weight, the bias float or, in the configs bias2 /
//     bias4, at bias_* with data_out after it, also where torch wrote the Linear as MatMul + Add;
//     matmul: operand 0 at data_in, operand 1 at weight; layer_norm / gelu inputs only where
//     configured; softmax never) give PyTorch's fake-quantized predictions;
//   * int: the fake predictions (integer linear / matmul, the float ops on dequantized values).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/fixture_util.h"
#include "runtime/plan.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/transformer/";

const nlohmann::json& ref() {
  static const nlohmann::json j = test::read_json(kDir + "vit_ref.json");
  return j;
}

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

using Outputs = testing::FixtureOutputs;
using testing::differences;

Outputs run(const ir::Graph& g, const PlanOptions& o) {
  const Tensor& x = mnist_test().x;
  return testing::run_fixture(g, o, {&x, 1}, ref().at("eval_n").get<int64_t>());
}

double accuracy(const std::vector<int>& p) {
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == mnist_test().y.data<int64_t>()[i];
  return static_cast<double>(right) / static_cast<double>(p.size());
}

class Vit : public ::testing::TestWithParam<int> {
 protected:
  ir::Graph graph() const {
    return onnx::import_model(kDir + fmt::format("vit_opset{}.onnx", GetParam()));
  }
};

TEST_P(Vit, FloatMatchesPyTorch) {
  const ir::Graph g = graph();
  const auto& logits = ref().at("float").at("logits");
  const std::vector<int> torch_pred = ref().at("float").at("predictions").get<std::vector<int>>();
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference);
    const Outputs r =
        run(g, {.mode = Mode::kFloat, .max_batch = 200, .use_reference_kernels = reference});
    const double worst = testing::expect_logits_close(r.first, logits, 64, 10);
    std::cout << fmt::format("[ vit ] opset {} float{}: worst |ours - torch| / scale {:.2e}\n",
                             GetParam(), reference ? " (ref kernels)" : "", worst);
    EXPECT_EQ(differences(r.predictions, torch_pred), 0);
  }
}

TEST_P(Vit, FakeMatchesPyTorchWithMaseSemanticsAndIntMatchesFake) {
  const ir::Graph g = graph();
  for (const auto& [name, cfg] : ref().at("configs").items()) {
    SCOPED_TRACE(name);
    const quant::QuantAssignment q = testing::assignment_by_type(g, cfg.at("formats"));
    int matmuls = 0;
    for (const auto& [node, c] : q) matmuls += node.find("matmul") != std::string::npos;
    EXPECT_EQ(matmuls, cfg.at("formats").contains("matmul") ? 4 : 0);
    const std::vector<int> torch_pred = cfg.at("predictions").get<std::vector<int>>();
    const Outputs fake = run(g, {.mode = Mode::kFake, .max_batch = 200, .quant = q});
    const Outputs integer = run(g, {.mode = Mode::kInt, .max_batch = 200, .quant = q});
    const int fake_vs_torch = differences(fake.predictions, torch_pred);
    const int int_vs_fake = differences(integer.predictions, fake.predictions);
    std::cout << fmt::format(
        "[ vit ] opset {} {:<12} accuracy torch {:.4f} fake {:.4f} int {:.4f}; predictions "
        "differing: fake/torch {}, int/fake {}\n",
        GetParam(), name, cfg.at("accuracy").get<double>(), accuracy(fake.predictions),
        accuracy(integer.predictions), fake_vs_torch, int_vs_fake);
    // A wrong format, operand or rounding flips hundreds of the 2000; float summation order may
    // move a quantized activation across a rounding boundary, which flips a few at most.
    EXPECT_LE(fake_vs_torch, 4);
    EXPECT_LE(int_vs_fake, 4);
    const auto& logits = cfg.at("logits");
    // The head's float bias: `int` adds it rounded to the accumulator's grid 2^-(fa + fb), half
    // a step at most (docs/numerics.md "An unquantized bias"); `fake` adds the float32 value.
    const auto& lin = cfg.at("formats").at("linear");
    const double bias_step = std::ldexp(
        1.0, -(lin.at("data_in").at("frac").get<int>() + lin.at("weight").at("frac").get<int>()));
    for (int64_t i = 0; i < 4; ++i) {
      double scale = 1;
      for (const auto& v : logits[i]) scale = std::max(scale, std::fabs(v.get<double>()));
      for (int64_t j = 0; j < 10; ++j) {
        EXPECT_NEAR(fake.first.data<float>()[i * 10 + j], logits[i][j].get<double>(), 1e-3 * scale);
        EXPECT_NEAR(integer.first.data<float>()[i * 10 + j], fake.first.data<float>()[i * 10 + j],
                    1e-3 * scale + bias_step / 2);
      }
    }
  }
}

// Without quantization the fake and int plans are the float plan; quantizing only the two
// attention matmuls of block 0 (by config name) changes the result in both modes alike.
TEST_P(Vit, MatmulNodesQuantizeByName) {
  const ir::Graph g = graph();
  ASSERT_NE(g.find_node("blocks_0_matmul"), nullptr);
  EXPECT_EQ(ir::mase_op(g, *g.find_node("blocks_0_matmul")), "matmul");
  quant::QuantAssignment q;
  for (const char* name : {"blocks_0_matmul", "blocks_0_matmul_1"}) {
    q[name] = {.quantized = true,
               .data_in = quant::FixedFormat{4, 1, true},
               .weight = quant::FixedFormat{4, 2, true}};
  }
  const Outputs fl = run(g, {.mode = Mode::kFloat, .max_batch = 200});
  const Outputs fake = run(g, {.mode = Mode::kFake, .max_batch = 200, .quant = q});
  const Outputs integer = run(g, {.mode = Mode::kInt, .max_batch = 200, .quant = q});
  EXPECT_NE(fl.first.span<float>()[0], fake.first.span<float>()[0]);
  EXPECT_LE(differences(fake.predictions, integer.predictions), 4);
}

INSTANTIATE_TEST_SUITE_P(Opsets, Vit, ::testing::Values(13, 17));

}  // namespace
}  // namespace qsearch::runtime
