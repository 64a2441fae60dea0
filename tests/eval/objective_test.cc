// The objective evaluates exactly num_samples (the last batch partial, as `qsearch eval`),
// clamps a batch larger than that, and refuses before any trial what would fail every trial.
#include <gtest/gtest.h>

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
    EXPECT_NE(std::string(e.what()).find("(784 vs 3 values per sample)"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace qsearch::eval
