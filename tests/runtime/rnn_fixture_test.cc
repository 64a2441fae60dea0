// Issue 11, recurrent ops: GRU / LSTM exported by torch.onnx.export at opsets 11, 13 and 17
// (tools/make_rnn_fixtures.py: a GRU classifier of MNIST rows, a 2-layer bidirectional LSTM,
// one-op models with and without initial states) in the three engines:
//   * float: PyTorch's outputs within 1e-5 of their scale, with the fast and the reference
//     kernels; the batch axis of the RNN (axis 1 of X, 2 of Y) is never sliced as rows;
//   * fake with the opt-in "gru" / "lstm" key: PyTorch with MASE's quantizer applied to each
//     layer's input, W, R and biases (the states and gates float);
//   * int with the same key: the same math (float accumulation at the boundary), so it equals
//     fake; without the key both quantized modes leave the RNN in float (= the float engine).
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

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/rnn/";

const nlohmann::json& ref() {
  static const nlohmann::json j = test::read_json(kDir + "rnn_ref.json");
  return j;
}

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

quant::FixedFormat fmt_of(const nlohmann::json& j) {
  return quant::FixedFormat{j.at("width").get<int>(), j.at("frac").get<int>(), true};
}

// The config's formats on every GRU / LSTM node (by type, as a MASE "gru" / "lstm" key does).
quant::QuantAssignment rnn_assignment(const ir::Graph& g, const nlohmann::json& formats) {
  quant::QuantAssignment q;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (op != "gru" && op != "lstm") continue;
    q[n.config_name] = {.quantized = true,
                        .data_in = fmt_of(formats.at("data_in")),
                        .weight = fmt_of(formats.at("weight")),
                        .bias = fmt_of(formats.at("bias"))};
  }
  return q;
}

// Every graph output of the one-op models on the 8 stored samples, flattened.
std::vector<std::vector<float>> run_op(const ir::Graph& g, const PlanOptions& o,
                                       const nlohmann::json& r) {
  const Shape shape = r.at("input_shape").get<Shape>();
  Tensor x(shape, DType::kFloat32);
  int64_t k = 0;
  for (const auto& s : r.at("input")) {
    for (const auto& t : s) {
      for (const auto& v : t) x.data<float>()[k++] = v.get<float>();
    }
  }
  Executor ex(make_plan(g, o));
  ex.run(x);
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < ex.num_outputs(); ++i) {
    const auto s = ex.output(i).span<float>();
    out.emplace_back(s.begin(), s.end());
  }
  return out;
}

void expect_close(const std::vector<std::vector<float>>& got, const nlohmann::json& want,
                  double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t o = 0; o < got.size(); ++o) {
    ASSERT_EQ(got[o].size(), want[o].size()) << what << " output " << o;
    double scale = 1;
    for (const auto& v : want[o]) scale = std::max(scale, std::fabs(v.get<double>()));
    for (size_t i = 0; i < got[o].size(); ++i) {
      ASSERT_NEAR(got[o][i], want[o][i].get<double>(), tol * scale)
          << what << " output " << o << " element " << i;
    }
  }
}

class RnnOp : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  const std::string& name() const { return std::get<0>(GetParam()); }
  ir::Graph graph() const {
    return onnx::import_model(kDir +
                              fmt::format("{}_opset{}.onnx", name(), std::get<1>(GetParam())));
  }
  const nlohmann::json& r() const { return ref().at("ops").at(name()); }
};

TEST_P(RnnOp, FloatMatchesPyTorchWithFastAndReferenceKernels) {
  const ir::Graph g = graph();
  for (bool reference : {false, true}) {
    const auto out =
        run_op(g, {.mode = Mode::kFloat, .max_batch = 8, .use_reference_kernels = reference}, r());
    expect_close(out, r().at("outputs"), 1e-5, reference ? "ref" : "fast");
  }
}

TEST_P(RnnOp, PlanIsNotSlicedAlongTheSequenceAxis) {
  // X is [T, B, I]: the plan must not be row-independent (micro-batches slice dim 0), and a
  // sample's outputs must not depend on the other samples of its batch.
  const ir::Graph g = graph();
  auto plan = make_plan(g, {.mode = Mode::kFloat, .max_batch = 8});
  EXPECT_EQ(plan->micro_batch(), 0);
  const auto all = run_op(g, {.mode = Mode::kFloat, .max_batch = 8}, r());
  nlohmann::json one = r();
  one["input"] = nlohmann::json::array({r().at("input")[3]});
  one["input_shape"][0] = 1;
  const auto single = run_op(g, {.mode = Mode::kFloat, .max_batch = 8}, one);
  for (size_t o = 0; o < all.size(); ++o) {
    const size_t per = single[o].size();
    ASSERT_EQ(all[o].size(), 8 * per);
    for (size_t i = 0; i < per; ++i) EXPECT_EQ(single[o][i], all[o][3 * per + i]) << o << " " << i;
  }
}

TEST_P(RnnOp, FakeWithRnnKeyMatchesPyTorchAndIntMatchesFake) {
  const ir::Graph g = graph();
  const quant::QuantAssignment q = rnn_assignment(g, ref().at("configs").at("rnn8"));
  ASSERT_FALSE(q.empty());
  const auto fake = run_op(g, {.mode = Mode::kFake, .max_batch = 8, .quant = q}, r());
  expect_close(fake, r().at("fake"), 1e-5, "fake");
  const auto integer = run_op(g, {.mode = Mode::kInt, .max_batch = 8, .quant = q}, r());
  nlohmann::json fake_json = fake;
  expect_close(integer, fake_json, 1e-6, "int");
  const auto fake_ref = run_op(
      g, {.mode = Mode::kFake, .max_batch = 8, .use_reference_kernels = true, .quant = q}, r());
  expect_close(fake_ref, r().at("fake"), 1e-5, "fake ref");
}

// Without a gru / lstm key (MASE's configs: `default` never matches them, tests/eval/
// rnn_metrics_test.cc) the quantized modes run the RNN in float: the same bits as `float`.
TEST_P(RnnOp, WithoutTheKeyFakeAndIntEqualFloat) {
  const ir::Graph g = graph();
  const auto fl = run_op(g, {.mode = Mode::kFloat, .max_batch = 8}, r());
  for (Mode m : {Mode::kFake, Mode::kInt}) {
    const auto out = run_op(g, {.mode = m, .max_batch = 8}, r());
    EXPECT_EQ(out, fl) << mode_name(m);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RnnOp,
                         ::testing::Combine(::testing::Values("gru_op", "gru_op_h0", "lstm_op",
                                                              "lstm_op_h0"),
                                            ::testing::Values(11, 13, 17)),
                         [](const auto& info) {
                           return fmt::format("{}_opset{}", std::get<0>(info.param),
                                              std::get<1>(info.param));
                         });

using Outputs = testing::FixtureOutputs;
using testing::differences;

Outputs run(const ir::Graph& g, const PlanOptions& o) {
  const Tensor& x = mnist_test().x;
  return testing::run_fixture(g, o, {&x, 1}, ref().at("eval_n").get<int64_t>());
}

class RnnClassifier : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  ir::Graph graph() const {
    return onnx::import_model(
        kDir + fmt::format("{}_opset{}.onnx", std::get<0>(GetParam()), std::get<1>(GetParam())));
  }
  const nlohmann::json& r() const { return ref().at("classifiers").at(std::get<0>(GetParam())); }
};

void expect_logits(const Tensor& got, const nlohmann::json& logits, int64_t rows, double tol) {
  for (int64_t i = 0; i < rows; ++i) {
    double scale = 1;
    for (const auto& v : logits[i]) scale = std::max(scale, std::fabs(v.get<double>()));
    for (int64_t j = 0; j < 10; ++j) {
      EXPECT_NEAR(got.data<float>()[i * 10 + j], logits[i][j].get<double>(), tol * scale)
          << "row " << i << " class " << j;
    }
  }
}

TEST_P(RnnClassifier, FloatMatchesPyTorch) {
  const ir::Graph g = graph();
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference);
    const Outputs o =
        run(g, {.mode = Mode::kFloat, .max_batch = 250, .use_reference_kernels = reference});
    expect_logits(o.first, r().at("float").at("logits"), 64, 1e-5);
    EXPECT_EQ(differences(o.predictions, r().at("float").at("predictions").get<std::vector<int>>()),
              0);
  }
}

TEST_P(RnnClassifier, FakeAndIntWithRnnKeyMatchPyTorch) {
  const ir::Graph g = graph();
  for (const char* cfg : {"rnn8", "rnn4"}) {
    SCOPED_TRACE(cfg);
    const quant::QuantAssignment q = rnn_assignment(g, ref().at("configs").at(cfg));
    const Outputs fake = run(g, {.mode = Mode::kFake, .max_batch = 250, .quant = q});
    const Outputs integer = run(g, {.mode = Mode::kInt, .max_batch = 250, .quant = q});
    const std::vector<int> torch_pred = r().at(cfg).at("predictions").get<std::vector<int>>();
    std::cout << fmt::format(
        "[ rnn ] {} opset {} {}: predictions differing fake/torch {}, int/fake {}\n",
        std::get<0>(GetParam()), std::get<1>(GetParam()), cfg,
        differences(fake.predictions, torch_pred),
        differences(integer.predictions, fake.predictions));
    // A quantized activation may cross a rounding boundary where float sums differ: a few flips.
    EXPECT_LE(differences(fake.predictions, torch_pred), 4);
    EXPECT_LE(differences(integer.predictions, fake.predictions), 2);
    expect_logits(fake.first, r().at(cfg).at("logits"), 64, 1e-3);
    // The unquantized float run differs: the key does quantize.
    const Outputs fl = run(g, {.mode = Mode::kFloat, .max_batch = 250});
    EXPECT_NE(fl.first.span<float>()[0], fake.first.span<float>()[0]);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RnnClassifier,
                         ::testing::Combine(::testing::Values("gru_classifier", "lstm_bi2"),
                                            ::testing::Values(11, 13, 17)),
                         [](const auto& info) {
                           return fmt::format("{}_opset{}", std::get<0>(info.param),
                                              std::get<1>(info.param));
                         });

}  // namespace
}  // namespace qsearch::runtime
