// The objective evaluates exactly num_samples (the last batch partial, as `qsearch eval`),
// clamps a batch larger than that, and refuses before any trial what would fail every trial.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/objective.h"
#include "onnx/import.h"
#include "runtime/plan.h"
#include "search/sampler.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kMlp = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/mlp_opset13.onnx";

// `n` samples of the MLP's input shape with distinct values and labels 0..9 in turn.
std::shared_ptr<data::Dataset> ramp_data(int64_t n) {
  auto d = std::make_shared<data::Dataset>();
  d->name = "ramp";
  d->x = Tensor({n, 1, 28, 28}, DType::kFloat32);
  auto x = d->x.span<float>();
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 101.0f;
  d->y = Tensor({n}, DType::kInt64);
  auto y = d->y.span<int64_t>();
  for (int64_t i = 0; i < n; ++i) y[i] = i % 10;
  d->num_classes = 10;
  return d;
}

QuantObjective float_objective(int64_t data_size, ObjectiveOptions o) {
  o.mode = runtime::Mode::kFloat;
  o.metrics = {{"loss", 1.0}};
  return QuantObjective(std::make_shared<const ir::Graph>(onnx::import_model(kMlp)),
                        ramp_data(data_size), nullptr, o);
}

TEST(Objective, EvaluatesExactlyNumSamplesAsEvaluateDoes) {
  const ir::Graph g = onnx::import_model(kMlp);
  for (int64_t n : {1, 7, 8, 9, 20}) {
    QuantObjective obj = float_objective(20, {.num_samples = n, .batch_size = 8});
    EXPECT_EQ(obj.samples_per_trial(), n);  // not rounded up to whole batches of 8
    const TrialMetrics t = obj.measure({});
    const EvalResult want =
        evaluate(runtime::make_plan(g, {.max_batch = 8}), *ramp_data(20), {.num_samples = n});
    EXPECT_EQ(t.software.at("loss").get<double>(), want.loss) << n;
    EXPECT_EQ(t.software.at("accuracy").get<double>(), want.accuracy) << n;
  }
  // Beyond the split, or unset: the whole split.
  EXPECT_EQ(float_objective(20, {.num_samples = 50}).samples_per_trial(), 20);
  EXPECT_EQ(float_objective(20, {.num_samples = -1}).samples_per_trial(), 20);
  EXPECT_THROW(float_objective(20, {.num_samples = 0}), Error);
}

TEST(Objective, BatchLargerThanTheSamplesIsClamped) {
  QuantObjective obj = float_objective(20, {.num_samples = 5, .batch_size = int64_t{1} << 40});
  EXPECT_EQ(obj.options().batch_size, 5);
  EXPECT_EQ(obj.measure({}).software.at("num_samples"), 5);  // runs: no plan for 2^40 samples
  EXPECT_EQ(float_objective(20, {.batch_size = 1000}).options().batch_size, 20);
  EXPECT_EQ(float_objective(20, {.batch_size = 4}).options().batch_size, 4);
}

TEST(Objective, LatencyBatchBeyondTheDataIsRefusedBeforeAnyTrial) {
  try {
    float_objective(20, {.latency = LatencyOptions{.batch_size = 21}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size = 21 needs that many samples"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(float_objective(20, {.latency = LatencyOptions{.batch_size = 20}}));
}

TEST(Objective, DataThatDoesNotFitTheModelIsRefusedBeforeAnyTrial) {
  auto d = ramp_data(20);
  d->x = Tensor({20, 3}, DType::kFloat32);  // e.g. a CSV with the wrong feature columns
  try {
    QuantObjective(std::make_shared<const ir::Graph>(onnx::import_model(kMlp)), d, nullptr,
                   {.mode = runtime::Mode::kFloat, .metrics = {{"loss", 1.0}}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    // Both shapes and both counts (check_model_input's wording).
    for (const char* piece : {"[?, 1, 28, 28]", "takes 784 values per sample", "shape [3] (3 "}) {
      EXPECT_NE(std::string(e.what()).find(piece), std::string::npos) << piece << e.what();
    }
  }
}

// Probe trials (the sensitivity sampler's): only the probed layer is quantized.
ConfigValue int_value(int64_t v) { return ConfigValue::of(v); }

std::vector<SeedEntry> per_layer_seeds() {
  const ConfigValue integer = ConfigValue::of("integer");
  std::vector<SeedEntry> seeds(4);
  seeds[0].key = "default";
  seeds[0].fields = {{"name", {ConfigValue{}}}};
  const char* keys[] = {"fc1", "fc2", "fc3"};
  for (int i = 0; i < 3; ++i) {
    SeedEntry& e = seeds[i + 1];
    e.key = keys[i];
    e.fields = {{"name", {integer}},
                {"data_in_width", {int_value(4), int_value(8)}},
                {"weight_width", {int_value(2), int_value(3), int_value(8)}},
                {"weight_frac_width", {int_value(4), int_value(6)}},
                {"bias_width", {int_value(16)}},
                {"bias_frac_width", {int_value(8)}}};
  }
  return seeds;
}

TEST(Objective, ProbeQuantizesOnlyItsGroupAndItsCostsAddUp) {
  auto graph = std::make_shared<const ir::Graph>(onnx::import_model(kMlp));
  auto space = std::make_shared<const QuantSearchSpace>(
      QuantSearchSpace::build(*graph, MatchBy::kName, per_layer_seeds()));
  auto data = ramp_data(40);
  ObjectiveOptions o{.mode = runtime::Mode::kInt, .batch_size = 16};
  o.compare_to = 32;
  o.model_size = true;
  o.bitops = true;
  o.metrics = {{"accuracy", 1.0},
               {"average_bitwidth", 1.0},
               {"bitops", 1.0},
               {"loss", 1.0},
               {"model_size_bytes", 1.0}};
  const QuantObjective obj(graph, data, space, o);
  const auto& names = space->space();
  // fc1: data_in 8, weight 3 bits frac 6; fc2: data_in 4, weight 2 bits frac 4; fc3: 8 / 8 / 6.
  std::vector<double> full(names.size(), 0.0);
  auto set = [&](const std::string& name, double v) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i].name == name) full[i] = v;
    }
  };
  set("fc1/config/data_in_width", 1), set("fc1/config/weight_width", 1);
  set("fc1/config/weight_frac_width", 1), set("fc3/config/data_in_width", 1);
  set("fc3/config/weight_width", 2), set("fc3/config/weight_frac_width", 1);
  auto trial = [&](const char* probe) {
    search::FrozenTrial t;
    t.params = full;
    if (probe) t.system_attrs[search::kAttrProbe] = probe;
    return t;
  };
  // A probe equals a manual evaluation of the partial assignment (others unquantized).
  const quant::QuantAssignment q_full = space->decode(full);
  for (const char* layer : {"fc1", "fc2", "fc3"}) {
    const search::ObjectiveResult r = obj(trial(layer));
    const quant::QuantAssignment partial = {{layer, q_full.at(layer)}};
    const EvalResult want =
        evaluate(runtime::make_plan(
                     *graph, {.mode = runtime::Mode::kInt, .max_batch = 16, .quant = partial}),
                 *data, {.num_samples = 40, .batch_size = 16});
    EXPECT_EQ(r.values[0], want.accuracy) << layer;
    EXPECT_EQ(r.values[3], want.loss) << layer;
    const auto sampled = nlohmann::json::parse(r.user_attrs.at("sampled_config"));
    EXPECT_TRUE(sampled.contains(layer));
    EXPECT_EQ(sampled.size(), 2u) << sampled.dump();  // the layer and MASE's default
  }
  // The base probe is the float model.
  const search::ObjectiveResult base = obj(trial("base"));
  const EvalResult fl =
      evaluate(runtime::make_plan(*graph, {.mode = runtime::Mode::kInt, .max_batch = 16}), *data,
               {.num_samples = 40, .batch_size = 16});
  EXPECT_EQ(base.values[0], fl.accuracy);
  EXPECT_EQ(base.values[1], 32.0);
  // Costs are additive: base + sum of the probes' changes = the full configuration's.
  const search::ObjectiveResult whole = obj(trial(nullptr));
  for (int k : {1, 2, 4}) {
    double pred = base.values[k];
    for (const char* layer : {"fc1", "fc2", "fc3"})
      pred += obj(trial(layer)).values[k] - base.values[k];
    EXPECT_NEAR(pred, whole.values[k], 1e-9 * std::abs(whole.values[k])) << k;
  }
  // A full trial is exactly measure(decode(params)).
  EXPECT_EQ(whole.values, obj.measure(q_full).values);
  search::FrozenTrial bad = trial("fc9");
  EXPECT_THROW(obj(bad), Error);
}

}  // namespace
}  // namespace qsearch::eval
