// Racing (eval/objective.h): a trial evaluates a first slice, is pruned when a COMPLETE trial
// dominates its optimistic point, and otherwise finishes with exactly the non-racing result.
// Standard errors of the software metrics (eval/evaluate.h).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/objective.h"
#include "onnx/import.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kMlp = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/mlp_opset13.onnx";

std::shared_ptr<data::Dataset> ramp_data(int64_t n) {
  auto d = std::make_shared<data::Dataset>();
  d->name = "ramp";
  d->x = Tensor({n, 1, 28, 28}, DType::kFloat32);
  auto x = d->x.span<float>();
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 101.0f;
  d->y = Tensor({n}, DType::kInt64);
  auto y = d->y.span<int64_t>();
  for (int64_t i = 0; i < n; ++i) y[i] = (i * 7) % 10;
  d->num_classes = 10;
  return d;
}

ConfigValue num(int64_t v) { return ConfigValue::of(v); }
ConfigValue str(const std::string& s) { return ConfigValue::of(s); }

// Every linear layer (by type) with 2 x 3 = 6 formats.
std::shared_ptr<const QuantSearchSpace> linear_space(const ir::Graph& g) {
  std::vector<SeedEntry> seeds = {{"default", {"s.toml", 1, 1}, {{"name", {ConfigValue{}}}}},
                                  {"linear",
                                   {"s.toml", 2, 1},
                                   {{"name", {str("integer")}},
                                    {"data_in_width", {num(4), num(8)}},
                                    {"data_in_frac_width", {ConfigValue{}}},
                                    {"weight_width", {num(2), num(4), num(8)}},
                                    {"weight_frac_width", {num(6)}},
                                    {"bias_width", {num(16)}},
                                    {"bias_frac_width", {num(8)}}}}};
  return std::make_shared<const QuantSearchSpace>(
      QuantSearchSpace::build(g, MatchBy::kType, seeds));
}

struct Fixture {
  std::shared_ptr<const ir::Graph> graph =
      std::make_shared<const ir::Graph>(onnx::import_model(kMlp));
  std::shared_ptr<const QuantSearchSpace> space = linear_space(*graph);
  std::shared_ptr<data::Dataset> data = ramp_data(64);
  const std::vector<search::Direction> dirs = {search::Direction::kMaximize,
                                               search::Direction::kMinimize};

  QuantObjective objective(bool racing) const {
    ObjectiveOptions o;
    o.mode = runtime::Mode::kInt;
    o.num_samples = 64;
    o.batch_size = 8;
    o.compare_to = 32;
    o.metrics = {{"accuracy", 1.0}, {"average_bitwidth", 1.0}};
    o.racing = racing;
    o.racing_slice = 0.25;
    o.racing_z = 2.5;
    return QuantObjective(graph, data, space, o);
  }
  search::FrozenTrial trial(int config) const {
    search::FrozenTrial t;
    t.number = 0;
    t.params.assign(space->space().size(), 0.0);
    t.params[1] = config % 2;  // data_in_width
    t.params[3] = config / 2;  // weight_width
    return t;
  }
};

CompleteTrialValues incumbent(int number, std::vector<double> values) {
  return [=] { return std::vector<std::pair<int, std::vector<double>>>{{number, values}}; };
}

TEST(Racing, TheSliceIsWholeBatches) {
  Fixture f;
  EXPECT_EQ(f.objective(false).racing_slice_samples(), 64);
  EXPECT_EQ(f.objective(true).racing_slice_samples(), 16);  // 0.25 x 64, two batches of 8
  QuantObjective o = f.objective(true);
  ObjectiveOptions opts = o.options();
  opts.racing_slice = 0.3;  // 19.2 samples -> 3 batches
  EXPECT_EQ(QuantObjective(f.graph, f.data, f.space, opts).racing_slice_samples(), 24);
  opts.racing_slice = 1.0;
  EXPECT_THROW(QuantObjective(f.graph, f.data, f.space, opts), Error);
}

TEST(Racing, ADominatedTrialIsPrunedAfterTheSlice) {
  Fixture f;
  QuantObjective o = f.objective(true);
  // A complete trial with every sample right at half a bit dominates anything.
  o.set_racing_incumbents(f.dirs, incumbent(7, {1.0, 0.5}));
  const search::ObjectiveResult r = o(f.trial(3));
  EXPECT_TRUE(r.pruned);
  const auto racing = nlohmann::json::parse(r.user_attrs.at("racing"));
  EXPECT_EQ(racing["slice_samples"], 16);
  EXPECT_EQ(racing["num_samples"], 64);
  EXPECT_EQ(racing["dominated_by"], 7);
  const auto sw = nlohmann::json::parse(r.user_attrs.at("software_metrics"));
  EXPECT_EQ(sw["num_samples"], 16);  // the slice's metrics
  EXPECT_EQ(r.values[0], sw["accuracy"].get<double>());
  // The optimistic accuracy lies above the slice's, within what the rest of the data allows.
  const double opt = racing["optimistic_values"][0].get<double>();
  const double acc = sw["accuracy"].get<double>();
  EXPECT_GT(opt, acc);
  EXPECT_LE(opt, (acc * 16 + 48) / 64);
  EXPECT_EQ(racing["optimistic_values"][1], r.values[1]);  // hardware metrics are exact

  // Dominated only a little beyond that optimism: pruned; within it: not.
  QuantObjective close = f.objective(true);
  close.set_racing_incumbents(f.dirs, incumbent(1, {opt + 1e-9, r.values[1]}));
  EXPECT_TRUE(close(f.trial(3)).pruned);
  close.set_racing_incumbents(f.dirs, incumbent(1, {opt - 1e-9, r.values[1]}));
  EXPECT_FALSE(close(f.trial(3)).pruned);
}

TEST(Racing, ATrialNotDominatedRunsToTheEndAndEqualsTheNonRacingResult) {
  Fixture f;
  const QuantObjective plain = f.objective(false);
  QuantObjective racing = f.objective(true);
  racing.set_racing_incumbents(f.dirs, incumbent(0, {0.0, 100.0}));
  for (int config = 0; config < 6; ++config) {
    const search::ObjectiveResult a = plain(f.trial(config)), b = racing(f.trial(config));
    EXPECT_FALSE(b.pruned);
    EXPECT_EQ(a.values, b.values) << config;          // bit for bit
    EXPECT_EQ(a.user_attrs, b.user_attrs) << config;  // same metrics, same texts, no extra attr
  }
  // Without incumbents (no study wired) racing never prunes either.
  const QuantObjective unwired = f.objective(true);
  EXPECT_EQ(unwired(f.trial(2)).values, plain(f.trial(2)).values);
}

TEST(StandardErrors, FollowTheDocumentedFormulas) {
  Fixture f;
  const auto plan = runtime::make_plan(*f.graph, {.max_batch = 8});
  SampleOutcomes out;
  evaluate_rows(plan, *f.data, {.batch_size = 8}, 40, &out);
  const EvalResult r = summarize(out, *f.data);
  EXPECT_EQ(r.samples, 40);
  EXPECT_DOUBLE_EQ(r.accuracy_se, std::sqrt(r.accuracy * (1 - r.accuracy) / 40));
  double ss = 0;
  for (double l : out.loss) ss += (l - r.loss) * (l - r.loss);
  EXPECT_NEAR(r.loss_se, std::sqrt(ss / 39 / 40), 1e-15);
  EXPECT_GT(r.loss_se, 0);
  // Macro: per class c with n_c samples and recall r_c, sqrt(sum r_c (1 - r_c) / n_c) / C.
  const int64_t* y = f.data->y.data<int64_t>();
  std::vector<double> tp(10), n(10), fp(10);
  for (int i = 0; i < 40; ++i) {
    ++n[y[i]];
    if (out.predicted[i] == y[i]) {
      ++tp[y[i]];
    } else {
      ++fp[out.predicted[i]];
    }
  }
  double var = 0;
  int counted = 0;
  for (int c = 0; c < 10; ++c) {
    if (n[c] + fp[c] == 0) continue;
    ++counted;
    if (n[c] > 0) var += (tp[c] / n[c]) * (1 - tp[c] / n[c]) / n[c];
  }
  EXPECT_NEAR(r.macro_accuracy_se, std::sqrt(var) / counted, 1e-15);
  // evaluate = evaluate_rows in two steps + summarize, bit for bit.
  evaluate_rows(plan, *f.data, {.batch_size = 8}, 64, &out);
  const EvalResult whole = evaluate(plan, *f.data, {.num_samples = 64, .batch_size = 8});
  const EvalResult two = summarize(out, *f.data);
  EXPECT_EQ(whole.loss, two.loss);
  EXPECT_EQ(whole.accuracy, two.accuracy);
  EXPECT_EQ(whole.loss_se, two.loss_se);
  EXPECT_EQ(whole.macro_accuracy_se, two.macro_accuracy_se);
}

// compare's default reference point: accuracy 0 and the largest cost of the space, from every
// configuration of a small space and from coordinate searches in a large one; both must find
// the true largest cost (checked here against every configuration of a 110,592-config space).
TEST(SpaceReferencePoint, WorstAccuracyAndLargestCost) {
  Fixture f;
  ObjectiveOptions o = f.objective(false).options();
  o.metrics = {{"accuracy", 1.0}, {"average_bitwidth", 0.2}};
  o.model_size = true;
  const QuantObjective small(f.graph, f.data, f.space, o);
  auto ref = space_reference_point(small, *f.space, f.dirs);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->values, (std::vector<double>{0.0, 0.2 * 8}));  // 8-bit weights at most
  EXPECT_NE(ref->rule.find("every one of the space's 6 configurations"), std::string::npos);

  // Per layer (by name): data_in_width {4, 8} x weight_width {2, 3, 5, 8} x frac {2, 4, 6}.
  std::vector<SeedEntry> seeds = {{"default", {"s.toml", 1, 1}, {{"name", {ConfigValue{}}}}}};
  for (const char* fc : {"fc1", "fc2", "fc3"}) {
    SeedEntry e;
    e.key = fc;
    e.fields = {{"name", {str("integer")}},
                {"data_in_width", {num(4), num(8)}},
                {"data_in_frac_width", {ConfigValue{}}},
                {"weight_width", {num(5), num(2), num(8), num(3)}},  // not sorted
                {"weight_frac_width", {num(2), num(4), num(6)}},
                {"bias_width", {num(16), num(8)}},
                {"bias_frac_width", {num(4)}}};
    seeds.push_back(std::move(e));
  }
  auto big = std::make_shared<const QuantSearchSpace>(
      QuantSearchSpace::build(*f.graph, MatchBy::kName, seeds));
  ASSERT_EQ(big->size(), 48 * 48 * 48);
  ASSERT_GT(big->size(), kExhaustiveReferenceSpace);
  o.metrics = {{"accuracy", 1.0}, {"model_size_bytes", 1.0}};
  const QuantObjective large(f.graph, f.data, big, o);
  ref = space_reference_point(large, *big, f.dirs);
  ASSERT_TRUE(ref);
  EXPECT_NE(ref->rule.find("coordinate search"), std::string::npos) << ref->rule;
  double largest = 0;
  const auto& params = big->space();
  std::vector<double> p(params.size());
  for (int64_t i = 0; i < big->size(); ++i) {
    int64_t rest = i;
    for (size_t k = 0; k < params.size(); ++k) {
      p[k] = params[k].dist.value_at(rest % params[k].dist.cardinality());
      rest /= params[k].dist.cardinality();
    }
    largest =
        std::max(largest, large.cost_metrics(big->decode(p))["model_size_bytes"].get<double>());
  }
  EXPECT_EQ(ref->values, (std::vector<double>{0.0, largest}));

  // A loss objective has no bound: none, and why.
  o.metrics = {{"average_bitwidth", 1.0}, {"loss", 1.0}};
  std::string why;
  EXPECT_FALSE(space_reference_point(QuantObjective(f.graph, f.data, big, o), *big,
                                     {search::Direction::kMinimize, search::Direction::kMinimize},
                                     &why));
  EXPECT_NE(why.find("'loss'"), std::string::npos) << why;
}

}  // namespace
}  // namespace qsearch::eval
