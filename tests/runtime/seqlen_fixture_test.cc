// Issue 11, a symbolic sequence length: models exported with dynamic_axes {0: 'batch', 1: 'seq'}
// (tools/make_seqlen_fixtures.py) imported with 'seq' bound to the data's length, at two lengths
// each: the position table sliced to `seq`, the heads' views built from Shape -> Gather -> Concat
// chains, a GRU over `seq` steps.
//   * BERT (input_ids, attention_mask, token_type_ids [batch, seq]) at 12 and 8 positions:
//     float logits of the first 64 within 1e-5 of PyTorch's scale (the fixtures' tolerance, fast
//     and reference kernels), its predictions; fake = PyTorch's MASE fake-quant predictions and
//     int = fake, as for the fixed-length BERT (tests/runtime/bert_mask_fixture_test.cc);
//   * GRU classifier on x [batch, seq, 28] at 28 and 14 steps: float logits and predictions.
// Before symbolic dims were bound, importing these models failed ("only the batch dimension").
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/import.h"
#include "runtime/fixture_util.h"
#include "runtime/plan.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/seqlen/";
const std::vector<std::string> kInputs = {"input_ids", "attention_mask", "token_type_ids"};

const nlohmann::json& ref() {
  static const nlohmann::json j = test::read_json(kDir + "seqlen_ref.json");
  return j;
}

using testing::differences;
using testing::FixtureOutputs;

// The model with 'seq' bound to the data's length (the CLI finds it with eval::bind_input_dims,
// tests/eval/bind_input_dims_test.cc).
ir::Graph import_for(const std::string& model, const data::Dataset& data) {
  return onnx::import_model(model, {.dims = {{"seq", data.x.dim(1)}}});
}

FixtureOutputs run(const ir::Graph& g, const data::Dataset& d, const PlanOptions& o) {
  const std::vector<Tensor> xs = d.inputs();
  return testing::run_fixture(g, o, xs, d.size());
}

struct BertCase {
  int opset;
  int seq;
};

class BertSeq : public ::testing::TestWithParam<BertCase> {
 protected:
  data::Dataset data() const {
    return data::load_dataset(fmt::format("npz:{}bert_seq_eval{}.npz", kDir, GetParam().seq),
                              data::Split::kTest, {.input_names = kInputs});
  }
  std::string model() const {
    return kDir + fmt::format("bert_seq_opset{}.onnx", GetParam().opset);
  }
  const nlohmann::json& r() const { return ref().at("bert").at(std::to_string(GetParam().seq)); }
};

TEST_P(BertSeq, ImportsAtTheDataLengthAndFloatMatchesPyTorch) {
  const data::Dataset d = data();
  const ir::Graph g = import_for(model(), d);
  for (ir::ValueId v : g.inputs()) {
    EXPECT_EQ(g.value(v).shape, (Shape{kDynamic, GetParam().seq})) << g.value(v).name;
  }
  const std::vector<int> torch_pred = r().at("predictions").get<std::vector<int>>();
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference);
    const FixtureOutputs o =
        run(g, d, {.mode = Mode::kFloat, .max_batch = 100, .use_reference_kernels = reference});
    const double worst = testing::expect_logits_close(o.first, r().at("logits"), 64, 3);
    std::cout << fmt::format(
        "[ bert_seq ] opset {} seq {} float{}: worst |ours - torch| / scale "
        "{:.2e}\n",
        GetParam().opset, GetParam().seq, reference ? " (ref kernels)" : "", worst);
    EXPECT_EQ(differences(o.predictions, torch_pred), 0);
  }
}

TEST_P(BertSeq, FakeMatchesPyTorchWithMaseSemanticsAndIntMatchesFake) {
  const data::Dataset d = data();
  const ir::Graph g = import_for(model(), d);
  for (const auto& [name, cfg] : r().at("configs").items()) {
    SCOPED_TRACE(name);
    const quant::QuantAssignment q = testing::assignment_by_type(g, cfg.at("formats"));
    ASSERT_FALSE(q.empty());
    const std::vector<int> torch_pred = cfg.at("predictions").get<std::vector<int>>();
    const FixtureOutputs fake = run(g, d, {.mode = Mode::kFake, .max_batch = 100, .quant = q});
    const FixtureOutputs integer = run(g, d, {.mode = Mode::kInt, .max_batch = 100, .quant = q});
    const int fake_vs_torch = differences(fake.predictions, torch_pred);
    const int int_vs_fake = differences(integer.predictions, fake.predictions);
    std::cout << fmt::format(
        "[ bert_seq ] opset {} seq {} {:<12} predictions differing: fake/torch {}, int/fake {}\n",
        GetParam().opset, GetParam().seq, name, fake_vs_torch, int_vs_fake);
    // The fixed-length BERT's bound: float summation order may move a quantized activation
    // across a rounding boundary (a few of the 400).
    EXPECT_LE(fake_vs_torch, 3);
    EXPECT_LE(int_vs_fake, 3);
  }
}

INSTANTIATE_TEST_SUITE_P(OpsetsAndLengths, BertSeq,
                         ::testing::Values(BertCase{13, 12}, BertCase{13, 8}, BertCase{17, 12},
                                           BertCase{17, 8}),
                         [](const auto& info) {
                           return fmt::format("opset{}_seq{}", info.param.opset, info.param.seq);
                         });

TEST(GruSeq, FloatMatchesPyTorchAtTwoLengths) {
  for (int seq : {28, 14}) {
    SCOPED_TRACE(seq);
    const data::Dataset d = data::load_dataset(fmt::format("npz:{}gru_seq_eval{}.npz", kDir, seq),
                                               data::Split::kTest, {});
    const ir::Graph g = import_for(kDir + "gru_seq_opset17.onnx", d);
    EXPECT_EQ(g.value(g.inputs()[0]).shape, (Shape{kDynamic, seq, 28}));
    const nlohmann::json& r = ref().at("gru").at(std::to_string(seq));
    const FixtureOutputs o = run(g, d, {.mode = Mode::kFloat, .max_batch = 100});
    const double worst = testing::expect_logits_close(o.first, r.at("logits"), 64, 10);
    std::cout << fmt::format("[ gru_seq ] seq {} float: worst |ours - torch| / scale {:.2e}\n", seq,
                             worst);
    EXPECT_EQ(differences(o.predictions, r.at("predictions").get<std::vector<int>>()), 0);
  }
}

}  // namespace
}  // namespace qsearch::runtime
