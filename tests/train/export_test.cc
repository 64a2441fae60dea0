// What `qsearch train` writes: every zoo model, trained or not, exports to ONNX that the
// importer (which runs onnx::checker) reads back with the same nodes, config names and
// parameters, a dynamic batch dimension, and identical outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/rng.h"
#include "data/dataset.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"
#include "train/trainer.h"
#include "train/zoo.h"

namespace qsearch::train {
namespace {

namespace fs = std::filesystem;

Tensor run_float(const ir::Graph& g, const Tensor& x) {
  auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kFloat, .max_batch = x.dim(0)});
  runtime::Executor ex(plan);
  return ex.run(x).clone();
}

void expect_same_model(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    EXPECT_EQ(a.nodes()[i].name, b.nodes()[i].name);
    EXPECT_EQ(a.nodes()[i].config_name, b.nodes()[i].config_name);
    EXPECT_EQ(a.nodes()[i].kind, b.nodes()[i].kind);
  }
  EXPECT_EQ(trainable_param_count(a), trainable_param_count(b));
  EXPECT_EQ(b.value(b.inputs()[0]).shape[0], kDynamic);
  EXPECT_EQ(b.value(b.outputs()[0]).shape[0], kDynamic);
}

TEST(Export, EveryZooModelRoundTripsThroughOnnxWithIdenticalOutputs) {
  const fs::path dir = fs::temp_directory_path() / "qsearch_train_export_test";
  fs::create_directories(dir);
  for (const ModelInfo& m : zoo()) {
    SCOPED_TRACE(m.name);
    const ir::Graph g = build_model(m.name, {.seed = 5});
    const std::string path = (dir / (m.name + ".onnx")).string();
    onnx::export_model(g, path, 13);
    const ir::Graph back = onnx::import_model(path);
    expect_same_model(g, back);
    for (int64_t batch : {1, 7}) {
      Shape in = g.value(g.inputs()[0]).shape;
      in[0] = batch;
      Tensor x(in, DType::kFloat32);
      Rng rng(static_cast<uint64_t>(batch));
      for (float& v : x.span<float>()) v = static_cast<float>(rng.uniform(-1, 1));
      const Tensor y0 = run_float(g, x), y1 = run_float(back, x);
      ASSERT_EQ(y0.shape(), y1.shape());
      EXPECT_EQ(0, std::memcmp(y0.raw(), y1.raw(), y0.nbytes()));
    }
  }
  fs::remove_all(dir);
}

TEST(Export, ATrainedJscModelExportsItsBestEpoch) {
  const data::DataOptions opts{.data_dir = std::string(QSEARCH_SOURCE_DIR) +
                                           "/tests/fixtures/data/jsc_csv"};
  const data::Dataset train = data::load_dataset("jsc", data::Split::kTrain, opts);
  const data::Dataset test = data::load_dataset("jsc", data::Split::kTest, opts);
  ir::Graph g = build_model("jsc-toy", {.seed = 2});
  TrainOptions o;
  o.epochs = 5;
  o.batch_size = 64;
  o.lr = 1e-2;
  Trainer t(g, train, train, o);
  t.run();
  const std::string path =
      (fs::temp_directory_path() / "qsearch_train_export_test_jsc_toy.onnx").string();
  onnx::export_model(g, path, 13);
  const ir::Graph back = onnx::import_model(path);
  fs::remove(path);
  expect_same_model(g, back);
  // The exported model computes what the trainer's inference pass computes on it (BatchNorm
  // with the trained running statistics): same loss on the test split.
  const Tensor y0 = run_float(g, test.x), y1 = run_float(back, test.x);
  EXPECT_EQ(0, std::memcmp(y0.raw(), y1.raw(), y0.nbytes()));
  const ValidationResult mine = t.validate(test);
  double loss = 0;
  const int64_t classes = y1.dim(1);
  for (int64_t i = 0; i < test.size(); ++i) {
    const float* z = y1.data<float>() + i * classes;
    double mx = z[0], sum = 0;
    for (int64_t c = 1; c < classes; ++c) mx = std::max<double>(mx, z[c]);
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(z[c] - mx);
    loss += std::log(sum) + mx - z[test.y.data<int64_t>()[i]];
  }
  EXPECT_NEAR(loss / test.size(), mine.loss, 1e-5);
}

}  // namespace
}  // namespace qsearch::train
