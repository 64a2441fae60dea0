// Metrics beyond top-1 (eval/evaluate.h): top-5 accuracy, mean squared error of regression data
// sets, inputs of another dtype than the model's, and the input check before anything runs.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/objective.h"

namespace qsearch::eval {
namespace {

// logits = x through a k x k identity Gemm.
ir::Graph identity(int64_t k) {
  ir::Graph g;
  ir::ValueId x = g.add_input("x", {kDynamic, k});
  std::vector<float> eye(static_cast<size_t>(k * k), 0.0f);
  for (int64_t i = 0; i < k; ++i) eye[static_cast<size_t>(i * k + i)] = 1.0f;
  ir::ValueId w = g.add_constant("w", Tensor::from<float>({k, k}, eye));
  ir::ValueId y = g.add_value("y");
  g.add_node({ir::OpKind::kGemm, "/fc/Gemm", {x, w}, {y}, ir::GemmAttrs{.trans_b = true}});
  g.mark_output(y);
  g.finalize();
  return g;
}

TEST(Metrics, Top5AccuracyCountsLabelsAmongTheFiveHighestScoresTiesToTheLowerIndex) {
  // 7 classes; each row's label has a known rank.
  data::Dataset d;
  d.name = "seven";
  d.num_classes = 7;
  d.x = Tensor::from<float>({5, 7}, {
                                        7, 6, 5, 4, 3, 2, 1,  // label 4: rank 4 -> in
                                        7, 6, 5, 4, 3, 2, 1,  // label 5: rank 5 -> out
                                        1, 1, 1, 1, 1, 1, 1,  // label 4: ties, rank 4 -> in
                                        1, 1, 1, 1, 1, 1, 1,  // label 6: ties, rank 6 -> out
                                        0, 0, 0, 0, 0, 0, 9,  // label 6: rank 0 -> in, top-1
                                    });
  d.y = Tensor::from<int64_t>({5}, {4, 5, 4, 6, 6});
  auto plan = runtime::make_plan(identity(7), {.max_batch = 5});
  for (int64_t batch : {1, 2, 5}) {
    const EvalResult r = evaluate(plan, d, {.batch_size = batch});
    EXPECT_DOUBLE_EQ(r.top5_accuracy, 3.0 / 5);
    EXPECT_DOUBLE_EQ(r.top5_accuracy_se, std::sqrt(0.6 * 0.4 / 5));
    EXPECT_DOUBLE_EQ(r.accuracy, 1.0 / 5);
    EXPECT_FALSE(r.regression);
  }
  const auto j = software_metrics_json(evaluate(plan, d, {}));
  EXPECT_DOUBLE_EQ(j["top5_accuracy"].get<double>(), 0.6);
  EXPECT_FALSE(j.contains("mse"));
}

TEST(Metrics, RegressionDataGivesMeanSquaredErrorAndNoAccuracy) {
  data::Dataset d;
  d.name = "targets";
  d.regression = true;
  d.x = Tensor::from<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  d.y = Tensor::from<float>({3, 2}, {1, 0, 3, 6, 2, 2});
  // Per-sample MSE: (0 + 4) / 2 = 2, (0 + 4) / 2 = 2, (9 + 16) / 2 = 12.5.
  auto plan = runtime::make_plan(identity(2), {.max_batch = 3});
  const EvalResult r = evaluate(plan, d, {.batch_size = 2});
  EXPECT_TRUE(r.regression);
  EXPECT_DOUBLE_EQ(r.mse, 16.5 / 3);
  EXPECT_DOUBLE_EQ(r.loss, r.mse);
  const double m = 16.5 / 3;
  const double var = ((2 - m) * (2 - m) * 2 + (12.5 - m) * (12.5 - m)) / 2;
  EXPECT_NEAR(r.mse_se, std::sqrt(var / 3), 1e-12);
  EXPECT_TRUE(std::isnan(r.accuracy));
  EXPECT_TRUE(std::isnan(r.top5_accuracy));
  const auto j = software_metrics_json(r);
  EXPECT_DOUBLE_EQ(j["mse"].get<double>(), 16.5 / 3);
  EXPECT_FALSE(j.contains("accuracy"));
  EXPECT_FALSE(j.contains("top5_accuracy"));
  // The output must hold one value per target value.
  data::Dataset wide = d;
  wide.y = Tensor::from<float>({3, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0});
  wide.source = "t.npz";
  try {
    resolve_model_output(identity(2), "", wide);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("2 values per sample"), std::string::npos) << w;
    EXPECT_NE(w.find("[3]"), std::string::npos) << w;
    EXPECT_NE(w.find("t.npz"), std::string::npos) << w;
  }
}

TEST(Metrics, IntegerInputsAreConvertedToTheModelsFloatInput) {
  data::Dataset f;
  f.name = "float";
  f.num_classes = 2;
  f.x = Tensor::from<float>({4, 2}, {2, 0, 0, 1, 1, 3, 5, 4});
  f.y = Tensor::from<int64_t>({4}, {0, 1, 0, 1});
  data::Dataset u = f;
  u.x = f.x.to(DType::kUInt8);
  data::Dataset i = f;
  i.x = f.x.to(DType::kInt32);
  auto plan = runtime::make_plan(identity(2), {.max_batch = 4});
  const EvalResult want = evaluate(plan, f, {.batch_size = 3});
  for (const data::Dataset* d : {&u, &i}) {
    const EvalResult r = evaluate(plan, *d, {.batch_size = 3});
    EXPECT_EQ(r.loss, want.loss);
    EXPECT_EQ(r.accuracy, want.accuracy);
  }
}

TEST(Metrics, TheInputCheckNamesBothShapesAndTheFile) {
  data::Dataset d;
  d.name = "npz:bad.npz";
  d.source = "bad.npz (arrays x, y)";
  d.num_classes = 2;
  d.x = Tensor({4, 3, 5}, DType::kFloat32);
  d.y = Tensor::from<int64_t>({4}, {0, 1, 0, 1});
  try {
    resolve_model_output(identity(2), "", d);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string w = e.what();
    for (const char* piece : {"[?, 2]", "[3, 5]", "bad.npz (arrays x, y)", "npz:bad.npz"}) {
      EXPECT_NE(w.find(piece), std::string::npos) << piece << " in " << w;
    }
  }
}

TEST(Metrics, AModelTakingTokenIdsRefusesFloatDataAndTakesIntegers) {
  ir::Graph g;  // only the input matters to the check
  g.add_input("ids", {kDynamic, 4}, DType::kInt64);
  data::Dataset d;
  d.name = "npz:tokens.npz";
  d.source = "tokens.npz (arrays x, y)";
  d.num_classes = 2;
  d.y = Tensor::from<int64_t>({3}, {0, 1, 0});
  d.x = Tensor({3, 4}, DType::kFloat32);
  try {
    check_model_input(g, d);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string w = e.what();
    for (const char* piece : {"'ids'", "int64", "float32", "tokens.npz", "astype(np.int64)"}) {
      EXPECT_NE(w.find(piece), std::string::npos) << piece << " in " << w;
    }
  }
  d.x = Tensor({3, 4}, DType::kInt64);
  EXPECT_NO_THROW(check_model_input(g, d));
  d.x = Tensor({3, 4}, DType::kInt32);  // converted to int64 batch by batch
  EXPECT_NO_THROW(check_model_input(g, d));
}

}  // namespace
}  // namespace qsearch::eval
