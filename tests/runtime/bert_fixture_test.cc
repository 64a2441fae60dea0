// Issue 11, sequence models: a BERT-style encoder on int64 token ids exported by
// torch.onnx.export at opsets 13 and 17 (tools/make_bert_fixtures.py: token + position
// nn.Embedding, the padding mask from the ids (Equal / Not), applied as BERT's extended additive
// mask (Cast / Sub / Mul / Add) in layer 0 and by masked_fill (Where) in layer 1, multi-head
// attention, GELU MLP, post-norm LayerNorms, a Tanh pooler on token 0 and a classifier) in the
// three engines:
//   * float: PyTorch's logits of the first 64 sequences within 1e-5 of their scale (the ViT
//     fixture's tolerance), fast and reference kernels, and PyTorch's predictions on all 1000;
//   * fake: MASE's semantics (linear, matmul; embeddings never quantized, as MASE leaves
//     nn.Embedding alone; layer_norm / gelu inputs where configured) give PyTorch's
//     fake-quantized predictions;
//   * int: the fake predictions.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
  static const nlohmann::json j = test::read_json(kDir + "bert_ref.json");
  return j;
}

const Tensor& ids() {
  static const Tensor t = [] {
    const auto rows = ref().at("ids").get<std::vector<std::vector<int64_t>>>();
    std::vector<int64_t> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return Tensor::from<int64_t>(
        {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, flat);
  }();
  return t;
}

using Outputs = testing::FixtureOutputs;
using testing::differences;

Outputs run(const ir::Graph& g, const PlanOptions& o) {
  return testing::run_fixture(g, o, {&ids(), 1}, ids().dim(0));
}

double accuracy(const std::vector<int>& p) {
  const auto labels = ref().at("labels").get<std::vector<int>>();
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(p.size());
}

class Bert : public ::testing::TestWithParam<int> {
 protected:
  ir::Graph graph() const {
    return onnx::import_model(kDir + fmt::format("bert_opset{}.onnx", GetParam()));
  }
};

TEST_P(Bert, ImportsTheSequenceOps) {
  const ir::Graph g = graph();
  EXPECT_EQ(g.value(g.inputs()[0]).dtype, DType::kInt64);
  std::map<std::string, int> ops;
  for (const ir::Node& n : g.nodes()) ++ops[ir::mase_op(g, n)];
  EXPECT_EQ(ops["embedding"], 1);  // the token table; positions fold to a constant
  EXPECT_EQ(ops["linear"], 2 * 6 + 2);
  EXPECT_EQ(ops["matmul"], 4);
  EXPECT_EQ(ops["layer_norm"], 5);  // fused at opset 13
  EXPECT_EQ(ops["gelu"], 2);
  EXPECT_GE(ops["eq"], 1);
  EXPECT_GE(ops["where"], 1);
  EXPECT_GE(ops["to"], 1);
}

TEST_P(Bert, FloatMatchesPyTorch) {
  const ir::Graph g = graph();
  const auto& logits = ref().at("float").at("logits");
  const std::vector<int> torch_pred = ref().at("float").at("predictions").get<std::vector<int>>();
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference);
    const Outputs r =
        run(g, {.mode = Mode::kFloat, .max_batch = 200, .use_reference_kernels = reference});
    const double worst = testing::expect_logits_close(r.first, logits, 64, 3);
    std::cout << fmt::format("[ bert ] opset {} float{}: worst |ours - torch| / scale {:.2e}\n",
                             GetParam(), reference ? " (ref kernels)" : "", worst);
    EXPECT_EQ(differences(r.predictions, torch_pred), 0);
  }
}

TEST_P(Bert, FakeMatchesPyTorchWithMaseSemanticsAndIntMatchesFake) {
  const ir::Graph g = graph();
  for (const auto& [name, cfg] : ref().at("configs").items()) {
    SCOPED_TRACE(name);
    const quant::QuantAssignment q = testing::assignment_by_type(g, cfg.at("formats"));
    const std::vector<int> torch_pred = cfg.at("predictions").get<std::vector<int>>();
    const Outputs fake = run(g, {.mode = Mode::kFake, .max_batch = 200, .quant = q});
    const Outputs integer = run(g, {.mode = Mode::kInt, .max_batch = 200, .quant = q});
    const int fake_vs_torch = differences(fake.predictions, torch_pred);
    const int int_vs_fake = differences(integer.predictions, fake.predictions);
    std::cout << fmt::format(
        "[ bert ] opset {} {:<12} accuracy torch {:.4f} fake {:.4f} int {:.4f}; predictions "
        "differing: fake/torch {}, int/fake {}\n",
        GetParam(), name, cfg.at("accuracy").get<double>(), accuracy(fake.predictions),
        accuracy(integer.predictions), fake_vs_torch, int_vs_fake);
    // As for the ViT: a wrong format, operand, mask or rounding flips many of the 1000; float
    // summation order may move a quantized activation across a rounding boundary (a few).
    EXPECT_LE(fake_vs_torch, 3);
    EXPECT_LE(int_vs_fake, 3);
    const auto& logits = cfg.at("logits");
    for (int64_t i = 0; i < 4; ++i) {
      double scale = 1;
      for (const auto& v : logits[i]) scale = std::max(scale, std::fabs(v.get<double>()));
      for (int64_t j = 0; j < 3; ++j) {
        EXPECT_NEAR(fake.first.data<float>()[i * 3 + j], logits[i][j].get<double>(), 1e-3 * scale);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Opsets, Bert, ::testing::Values(13, 17));

}  // namespace
}  // namespace qsearch::runtime
