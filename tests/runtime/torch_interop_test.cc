// Interop with a real exporter (issue 2 "Done when"): the MLP and residual CNN trained and
// exported by PyTorch (tools/make_torch_fixtures.py, opsets 11 and 13) run through
// onnx::import_model + make_plan + Executor on the MNIST test split give
//   * PyTorch's logits (the first 64 rows stored in <model>_ref.json) within
//       |ours - torch| <= kLogitRelBound * max(1, max_j |torch_j|)   per row, and
//   * PyTorch's top-1 prediction on every one of the 10000 test images,
// both with the fast kernels and (logits) with the reference kernels. docs/numerics.md
// "Float kernels" explains the bound.
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
#include "runtime/plan.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

// Float32 evaluation in a different order than PyTorch's (blocked FMA sums, BN folded into the
// conv weights): the measured deviation on these fixtures is below 7e-7 of the row scale.
constexpr double kLogitRelBound = 1e-5;

using test::read_json;

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

// Logits of the first n test images, batch by batch.
Tensor run_all(const std::shared_ptr<const Plan>& plan, int64_t n) {
  const data::Dataset& d = mnist_test();
  Executor ex(plan);
  Tensor out;
  for (int64_t b = 0; b < n; b += plan->max_batch()) {
    const int64_t e = std::min(n, b + plan->max_batch());
    const Tensor& y = ex.run(d.x.rows(b, e));
    if (out.empty()) out = Tensor({n, y.dim(1)}, DType::kFloat32);
    std::copy(y.data<float>(), y.data<float>() + y.numel(), out.data<float>() + b * y.dim(1));
  }
  return out;
}

void check_model(const std::string& model) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/";
  const nlohmann::json ref = read_json(dir + model + "_ref.json");
  const auto& logits = ref.at("logits");
  const auto& predictions = ref.at("test_predictions");
  const int64_t first_n = ref.at("first_n").get<int64_t>();
  const int64_t n = mnist_test().size();
  ASSERT_EQ(static_cast<int64_t>(predictions.size()), n);
  for (const auto& file : ref.at("opset_files")) {
    SCOPED_TRACE(file.get<std::string>());
    const ir::Graph g = onnx::import_model(dir + file.get<std::string>());
    for (bool reference : {false, true}) {
      SCOPED_TRACE(reference ? "reference kernels" : "fast kernels");
      auto plan = make_plan(g, {.max_batch = 256, .use_reference_kernels = reference});
      // The reference kernels are slow: their logits only.
      const Tensor out = run_all(plan, reference ? first_n : n);
      const int64_t classes = out.dim(1);
      ASSERT_EQ(classes, 10);
      double worst = 0;
      for (int64_t i = 0; i < first_n; ++i) {
        double scale = 1;
        for (int64_t j = 0; j < classes; ++j) {
          scale = std::max(scale, std::fabs(logits[i][j].get<double>()));
        }
        for (int64_t j = 0; j < classes; ++j) {
          const double rel =
              std::fabs(out.data<float>()[i * classes + j] - logits[i][j].get<double>()) / scale;
          worst = std::max(worst, rel);
          EXPECT_LE(rel, kLogitRelBound) << "row " << i << " class " << j;
        }
      }
      ::testing::Test::RecordProperty(model + (reference ? "_ref" : "_fast") + "_worst_rel",
                                      std::to_string(worst));
      std::cout << "[ interop ] " << model << " " << file.get<std::string>()
                << (reference ? " reference" : " fast")
                << ": worst |ours - torch| / row scale = " << worst << "\n";
      if (reference) continue;
      int64_t mismatches = 0, correct = 0;
      const int64_t* labels = mnist_test().y.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        const float* row = out.data<float>() + i * classes;
        int64_t arg = 0;
        for (int64_t j = 1; j < classes; ++j) {
          if (row[j] > row[arg]) arg = j;  // ties to the lowest index, like torch.argmax
        }
        mismatches += arg != predictions[i].get<int64_t>();
        correct += arg == labels[i];
      }
      EXPECT_EQ(mismatches, 0);
      // test_accuracy was stored as a float32.
      EXPECT_NEAR(static_cast<double>(correct) / n, ref.at("test_accuracy").get<double>(), 1e-6);
    }
  }
}

TEST(TorchInterop, Mlp) { check_model("mlp"); }
TEST(TorchInterop, Cnn) { check_model("cnn"); }

}  // namespace
}  // namespace qsearch::runtime
