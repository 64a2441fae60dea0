#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/evaluate.h"
#include "eval/hardware_metrics.h"
#include "eval/quant_config.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

// logits = x (a 2x2 identity Gemm), so predictions and losses are known in closed form.
ir::Graph identity_classifier() {
  ir::Graph g;
  ir::ValueId x = g.add_input("x", {kDynamic, 2});
  ir::ValueId w = g.add_constant("w", Tensor::from<float>({2, 2}, {1, 0, 0, 1}));
  ir::ValueId y = g.add_value("y");
  g.add_node({ir::OpKind::kGemm, "/fc/Gemm", {x, w}, {y}, ir::GemmAttrs{.trans_b = true}});
  g.mark_output(y);
  g.finalize();
  return g;
}

data::Dataset toy_data() {
  data::Dataset d;
  d.name = "toy";
  d.x = Tensor::from<float>({4, 2}, {2, 0, 0, 1, 1, 3, 5, 4});
  d.y = Tensor::from<int64_t>({4}, {0, 1, 0, 1});
  d.num_classes = 2;
  return d;
}

double ce(double z0, double z1, int label) {
  double m = std::max(z0, z1);
  double lse = m + std::log(std::exp(z0 - m) + std::exp(z1 - m));
  return lse - (label == 0 ? z0 : z1);
}

TEST(Evaluate, LossAccuracyAndMacroAccuracyInClosedForm) {
  auto plan = runtime::make_plan(identity_classifier(), {.max_batch = 4});
  data::Dataset d = toy_data();
  const double want_loss = (ce(2, 0, 0) + ce(0, 1, 1) + ce(1, 3, 0) + ce(5, 4, 1)) / 4;
  for (int64_t batch : {1, 3, 4}) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      EvalResult r = evaluate(plan, d, {.num_samples = -1, .batch_size = batch});
      EXPECT_EQ(r.samples, 4);
      // Predictions 0, 1, 1, 0 against labels 0, 1, 0, 1.
      EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
      EXPECT_DOUBLE_EQ(r.macro_accuracy, 0.5);
      EXPECT_NEAR(r.loss, want_loss, 1e-12);
    }
  }
  // The first three samples only: class 0 recall 1/2, class 1 recall 1/1.
  EvalResult r = evaluate(plan, d, {.num_samples = 3, .batch_size = 2});
  EXPECT_EQ(r.samples, 3);
  EXPECT_DOUBLE_EQ(r.accuracy, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.macro_accuracy, 0.75);
}

TEST(Evaluate, MacroAccuracySkipsClassesNeverSeenNorPredicted) {
  // A third logit that never wins: class 2 has no sample and no prediction, so torchmetrics'
  // macro average leaves it out.
  ir::Graph g;
  ir::ValueId x = g.add_input("x", {kDynamic, 2});
  ir::ValueId w = g.add_constant("w", Tensor::from<float>({3, 2}, {1, 0, 0, 1, -100, -100}));
  ir::ValueId y = g.add_value("y");
  g.add_node({ir::OpKind::kGemm, "/fc/Gemm", {x, w}, {y}, ir::GemmAttrs{.trans_b = true}});
  g.mark_output(y);
  g.finalize();
  auto plan = runtime::make_plan(g, {.max_batch = 4});
  data::Dataset d = toy_data();
  d.num_classes = 3;
  d.y = Tensor::from<int64_t>({4}, {0, 1, 1, 0});  // predictions 0, 1, 1, 0: all right
  EvalResult r = evaluate(plan, d, {});
  EXPECT_DOUBLE_EQ(r.macro_accuracy, 1.0);
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
}

TEST(Evaluate, MismatchedModelAndDataAreErrors) {
  auto plan = runtime::make_plan(identity_classifier(), {.max_batch = 4});
  data::Dataset d = toy_data();
  d.x = Tensor({4, 3}, DType::kFloat32);
  EXPECT_THROW(evaluate(plan, d, {}), Error);
  d = toy_data();
  d.num_classes = 5;  // 2 logits cannot score 5 classes
  EXPECT_THROW(evaluate(plan, d, {}), Error);
  d.num_classes = 1;  // nor 1 class: not one score per class
  d.y = Tensor::from<int64_t>({4}, {0, 0, 0, 0});
  EXPECT_THROW(evaluate(plan, d, {}), Error);
}

// Issue 8 item 6: a model ending in Softmax is scored by -log p[label]; its outputs must be one
// score per class (more is refused too), and the output is chosen by name.
TEST(Evaluate, SoftmaxOutputIsScoredByTheLikelihoodOfItsProbabilities) {
  ir::Graph g;
  ir::ValueId x = g.add_input("x", {kDynamic, 2});
  ir::ValueId w = g.add_constant("w", Tensor::from<float>({2, 2}, {1, 0, 0, 1}));
  ir::ValueId z = g.add_value("z");
  g.add_node({ir::OpKind::kGemm, "/fc/Gemm", {x, w}, {z}, ir::GemmAttrs{.trans_b = true}});
  ir::ValueId p = g.add_value("p");
  g.add_node({ir::OpKind::kSoftmax, "/sm/Softmax", {z}, {p}, ir::AxisAttrs{-1}});
  g.mark_output(p);
  g.mark_output(z);
  g.finalize();
  const data::Dataset d = toy_data();
  const ModelOutput probs = resolve_model_output(g, "", 2, "toy");
  EXPECT_EQ(probs.index, 0u);
  EXPECT_EQ(probs.kind, OutputKind::kProbabilities);
  EXPECT_NE(probs.note.find("Softmax"), std::string::npos) << probs.note;
  EXPECT_NE(probs.note.find("2 outputs"), std::string::npos) << probs.note;
  const ModelOutput logits = resolve_model_output(g, "z", 2, "toy");
  EXPECT_EQ(logits.index, 1u);
  EXPECT_EQ(logits.kind, OutputKind::kLogits);
  EXPECT_TRUE(logits.note.empty()) << logits.note;

  auto plan = runtime::make_plan(g, {.max_batch = 4});
  const double want_loss = (ce(2, 0, 0) + ce(0, 1, 1) + ce(1, 3, 0) + ce(5, 4, 1)) / 4;
  for (const ModelOutput& m : {probs, logits}) {
    EvalOptions o{.batch_size = 3};
    set_output(o, m);
    const EvalResult r = evaluate(plan, d, o);
    EXPECT_NEAR(r.loss, want_loss, 1e-6) << m.name;
    EXPECT_DOUBLE_EQ(r.accuracy, 0.5) << m.name;
  }
  // The probabilities read as logits (what evaluating output 0 as logits would do) differ.
  const EvalResult as_logits = evaluate(plan, d, {});
  EXPECT_GT(std::fabs(as_logits.loss - want_loss), 0.1);

  EXPECT_THROW(resolve_model_output(g, "nope", 2, "toy"), Error);
  EXPECT_THROW(resolve_model_output(g, "", 3, "toy"), Error);  // 2 scores, 3 classes
  EXPECT_THROW(resolve_model_output(g, "", 1, "toy"), Error);  // 2 scores, 1 class
}

// Issue 8 item 6: a model ending in LogSoftmax is scored by -logp[label] (no second softmax):
// its loss is the cross-entropy of the same model without the LogSoftmax, with a note.
TEST(Evaluate, LogSoftmaxOutputIsScoredByItsLogLikelihood) {
  ir::Graph g;
  ir::ValueId x = g.add_input("x", {kDynamic, 2});
  ir::ValueId w = g.add_constant("w", Tensor::from<float>({2, 2}, {1, 0, 0, 1}));
  ir::ValueId z = g.add_value("z");
  g.add_node({ir::OpKind::kGemm, "/fc/Gemm", {x, w}, {z}, ir::GemmAttrs{.trans_b = true}});
  ir::ValueId lp = g.add_value("lp");
  g.add_node({ir::OpKind::kLogSoftmax, "/ls/LogSoftmax", {z}, {lp}, ir::AxisAttrs{1}});
  g.mark_output(lp);
  g.finalize();
  EXPECT_EQ(ir::mase_op(g, g.nodes()[1]), "log_softmax");
  const ModelOutput m = resolve_model_output(g, "", 2, "toy");
  EXPECT_EQ(m.kind, OutputKind::kLogProbabilities);
  EXPECT_NE(m.note.find("ends in LogSoftmax"), std::string::npos) << m.note;

  const data::Dataset d = toy_data();
  const EvalResult without =
      evaluate(runtime::make_plan(identity_classifier(), {.max_batch = 4}), d, {.batch_size = 3});
  EvalOptions o{.batch_size = 3};
  set_output(o, m);
  const EvalResult with = evaluate(runtime::make_plan(g, {.max_batch = 4}), d, o);
  EXPECT_NEAR(with.loss, without.loss, 1e-6);
  EXPECT_DOUBLE_EQ(with.accuracy, without.accuracy);
  EXPECT_DOUBLE_EQ(with.macro_accuracy, without.macro_accuracy);
  // (Read as logits the loss would be the same up to rounding, log_softmax being idempotent;
  // the kind makes the loss exactly -logp[label] and the note says what it is.)

  // A LogSoftmax over another axis (here the batch) is not a distribution over the classes:
  // plain logits.
  ir::Graph h;
  ir::ValueId hx = h.add_input("x", {kDynamic, 2});
  ir::ValueId hy = h.add_value("y");
  h.add_node({ir::OpKind::kLogSoftmax, "/LogSoftmax", {hx}, {hy}, ir::AxisAttrs{0}});
  h.mark_output(hy);
  h.finalize();
  EXPECT_EQ(resolve_model_output(h, "", 2, "toy").kind, OutputKind::kLogits);
}

// PyTorch's export of an MLP ending in F.log_softmax (tools/make_logsoftmax_fixtures.py), at
// opset 13 and 11: the loss is torch's F.nll_loss of its log-probabilities, including a sample
// whose probabilities underflow in float32.
TEST(Evaluate, TorchLogSoftmaxModelGivesTorchsNllLoss) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/";
  std::ifstream in(dir + "log_softmax_ref.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json ref = nlohmann::json::parse(in);
  data::Dataset d;
  d.name = "log_softmax_ref";
  const auto& xs = ref.at("input");
  d.x = Tensor({8, 6}, DType::kFloat32);
  ASSERT_EQ(static_cast<int64_t>(xs.size()), d.x.numel());
  for (int64_t i = 0; i < d.x.numel(); ++i) d.x.data<float>()[i] = xs[i].get<float>();
  d.y = Tensor({8}, DType::kInt64);
  for (int64_t i = 0; i < 8; ++i) d.y.data<int64_t>()[i] = ref.at("labels")[i].get<int64_t>();
  d.num_classes = 4;
  const double want = ref.at("loss").get<double>();
  for (const char* model : {"log_softmax_mlp_opset13.onnx", "log_softmax_mlp_opset11.onnx"}) {
    SCOPED_TRACE(model);
    const ir::Graph g = onnx::import_model(dir + model);
    const ModelOutput m = resolve_model_output(g, "", 4, d.name);
    EXPECT_EQ(m.kind, OutputKind::kLogProbabilities);
    EvalOptions o{.batch_size = 3};
    set_output(o, m);
    const EvalResult r = evaluate(runtime::make_plan(g, {.max_batch = 8}), d, o);
    EXPECT_NEAR(r.loss, want, 1e-5 * want);
  }
}

// --- quantization configs --------------------------------------------------------------------

const std::string kMlp = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/mlp_opset13.onnx";

ConfigValue num(int64_t v) { return ConfigValue::of(v); }
ConfigValue str(const std::string& s) { return ConfigValue::of(s); }
ConfigValue na() { return ConfigValue{}; }

QuantEntry entry(const std::string& key, Fields fields) {
  return {key, {"cfg.toml", 3, 1}, fields};
}

Fields linear8() {
  return {{"name", str("integer")},
          {"data_in_width", num(8)},
          {"data_in_frac_width", num(4)},
          {"weight_width", num(4)},
          {"weight_frac_width", na()}};
}

TEST(QuantConfig, ResolveByNameTypeAndRegex) {
  ir::Graph g = onnx::import_model(kMlp);
  auto by_name = resolve_quantize_pass(g, MatchBy::kName, {entry("fc2", linear8())});
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name.at("fc2").weight->width, 4);
  EXPECT_EQ(by_name.at("fc2").weight->frac, 2);  // "NA" = width / 2
  EXPECT_FALSE(by_name.at("fc2").bias);          // no bias_* given: bias stays float

  // By type really applies the type's config to every node of the type (unlike MASE).
  auto by_type = resolve_quantize_pass(g, MatchBy::kType, {entry("linear", linear8())});
  EXPECT_EQ(by_type.size(), 3u);
  EXPECT_TRUE(by_type.count("fc1") && by_type.count("fc3"));

  Fields relu = {
      {"name", str("integer")}, {"data_in_width", num(6)}, {"data_in_frac_width", num(3)}};
  auto by_regex = resolve_quantize_pass(g, MatchBy::kRegexName,
                                        {entry("fc[12]", linear8()), entry("relu.*", relu)});
  EXPECT_EQ(by_regex.size(), 4u);                         // fc1, fc2, relu1, relu2
  EXPECT_FALSE(by_regex.at("relu1").data_in->is_signed);  // ReLUInteger quantizes unsigned
}

TEST(QuantConfig, ErrorsNameFileLineAndSuggest) {
  ir::Graph g = onnx::import_model(kMlp);
  try {
    resolve_quantize_pass(g, MatchBy::kName, {entry("fc4", linear8())});
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cfg.toml:3:1"), std::string::npos) << m;
    EXPECT_NE(m.find("key 'fc4' matches no node"), std::string::npos) << m;
  }
  Fields bad = linear8();
  bad[3].second = num(33);
  try {
    resolve_quantize_pass(g, MatchBy::kName, {entry("fc1", bad)});
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("weight"), std::string::npos) << m;
    EXPECT_NE(m.find("node 'fc1'"), std::string::npos) << m;
  }
  Fields missing = {{"name", str("integer")}, {"data_in_width", num(8)}};
  EXPECT_THROW(resolve_quantize_pass(g, MatchBy::kName, {entry("fc1", missing)}), Error);
  EXPECT_THROW(resolve_quantize_pass(g, MatchBy::kRegexName, {entry("fc[", linear8())}), Error);
}

SeedEntry seed(const std::string& key,
               std::vector<std::pair<std::string, std::vector<ConfigValue>>> f) {
  return {key, {"space.toml", 7, 1}, std::move(f)};
}

std::vector<SeedEntry> mase_example_seeds() {
  // jsc_toy_by_type.toml's linear seed: 2 x 3 x 3 = 18 configurations per linear key.
  return {seed("default", {{"name", {na()}}}),
          seed("linear", {{"name", {str("integer")}},
                          {"data_in_width", {num(4), num(8)}},
                          {"data_in_frac_width", {na()}},
                          {"weight_width", {num(2), num(4), num(8)}},
                          {"weight_frac_width", {na()}},
                          {"bias_width", {num(2), num(4), num(8)}},
                          {"bias_frac_width", {na()}}})};
}

TEST(QuantSearchSpace, ByTypeTiesOneChoicePerOpType) {
  ir::Graph g = onnx::import_model(kMlp);
  auto space = QuantSearchSpace::build(g, MatchBy::kType, mase_example_seeds());
  EXPECT_EQ(space.size(), 18);
  // linear/config/* then relu/config/name (relu takes the default seed).
  EXPECT_EQ(space.space().front().name, "linear/config/name");
  EXPECT_EQ(space.space().back().name, "relu/config/name");
  std::vector<double> p(space.space().size(), 0.0);
  p[3] = 2;  // weight_width = 8
  auto q = space.decode(p);
  ASSERT_EQ(q.size(), 3u);  // every linear node, no relu
  for (const auto& [name, cfg] : q) {
    EXPECT_EQ(cfg.weight->width, 8);
    EXPECT_EQ(cfg.data_in->width, 4);
    EXPECT_EQ(cfg.bias->width, 2);
  }
  auto j = space.sampled_config(p);
  EXPECT_EQ(j["linear"]["config"]["weight_width"], 8);
  EXPECT_TRUE(j["linear"]["config"]["data_in_frac_width"].is_null());
  EXPECT_EQ(j["default"]["config"]["bypass"], true);
}

TEST(QuantSearchSpace, ByNameGivesEveryNodeItsOwnParameters) {
  ir::Graph g = onnx::import_model(kMlp);
  auto seeds = mase_example_seeds();
  seeds[1].key = "fc1";
  seeds.push_back(seed("linear", {{"name", {str("integer")}}}));  // an op-type key: tolerated
  auto space = QuantSearchSpace::build(g, MatchBy::kName, seeds);
  EXPECT_EQ(space.size(), 18);  // only fc1 has choices; the others take the default (NA)
  EXPECT_EQ(space.space().front().name, "fc1/config/name");
  EXPECT_EQ(space.node_keys().size(), 5u);  // fc1, relu1, fc2, relu2, fc3
  auto q = space.decode(std::vector<double>(space.space().size(), 0.0));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.count("fc1"));
}

TEST(QuantSearchSpace, BadSpacesAreRejectedBeforeAnyTrial) {
  ir::Graph g = onnx::import_model(kMlp);
  auto msg = [&](std::vector<SeedEntry> seeds, MatchBy by = MatchBy::kName) {
    try {
      QuantSearchSpace::build(g, by, seeds);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto seeds = mase_example_seeds();
  seeds[1].fields[3].second.push_back(num(40));
  EXPECT_NE(msg(seeds, MatchBy::kType).find("outside 1..32"), std::string::npos);
  seeds = mase_example_seeds();
  seeds[1].key = "fc9";
  EXPECT_NE(msg(seeds).find("key 'fc9' matches no node"), std::string::npos);
  EXPECT_NE(msg({seed("default", {{"name", {na()}}})}).find("quantizes no node"),
            std::string::npos);
  seeds = mase_example_seeds();
  seeds[1].fields.push_back({"wieght_width", {num(4)}});
  EXPECT_NE(msg(seeds, MatchBy::kType).find("did you mean 'weight_width'"), std::string::npos);
  seeds = mase_example_seeds();
  seeds[1].fields[0].second = {str("minifloat_ieee")};
  EXPECT_NE(msg(seeds, MatchBy::kType).find("not supported"), std::string::npos);
}

TEST(HardwareMetrics, AverageBitwidthAsMase) {
  ir::Graph g = onnx::import_model(kMlp);
  quant::QuantAssignment q;
  EXPECT_DOUBLE_EQ(average_bitwidth(g, q, 32).average_bitwidth, 32.0);  // nothing quantized
  q = resolve_quantize_pass(g, MatchBy::kName, {entry("fc1", linear8())});
  BitwidthMetrics m = average_bitwidth(g, q, 32);
  EXPECT_DOUBLE_EQ(m.average_bitwidth, 4.0);  // only quantized layers count (MASE)
  EXPECT_DOUBLE_EQ(m.memory_density, 8.0);
  Fields w2 = linear8();
  w2[3].second = num(2);
  q = resolve_quantize_pass(g, MatchBy::kName, {entry("fc1", linear8()), entry("fc2", w2)});
  // (784*32*4 + 32*16*2) / (784*32 + 32*16)
  EXPECT_NEAR(average_bitwidth(g, q, 32).average_bitwidth,
              (784.0 * 32 * 4 + 32.0 * 16 * 2) / (784.0 * 32 + 32.0 * 16), 1e-12);

  OpCounts c = op_counts(g, q);
  EXPECT_DOUBLE_EQ(c.macs, 25088 + 512 + 160);
  // fc1: 4 x 8 bits, fc2: 2 x 8 bits, fc3 unquantized: 32 x 32.
  EXPECT_DOUBLE_EQ(c.bitops, 25088.0 * 32 + 512.0 * 16 + 160.0 * 1024);
  EXPECT_DOUBLE_EQ(c.activation_bits, 784.0 * 8 + 32.0 * 8);
}

}  // namespace
}  // namespace qsearch::eval
