// Issue 8 item 6 on PyTorch's own export (tools/make_logsoftmax_fixtures.py): an MLP ending in
// F.log_softmax, at opset 13 and 11, gives PyTorch's log-probabilities in both kernel modes,
// including a sample whose probabilities underflow in float32 (only a stable log-softmax, not
// log(softmax(x)), stays finite there).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/";

TEST(LogSoftmaxFixture, TorchLogSoftmaxMlpGivesTorchsLogProbabilities) {
  std::ifstream in(kDir + "log_softmax_ref.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json ref = nlohmann::json::parse(in);
  const auto& shape = ref.at("input_shape");
  const int64_t n = shape[0].get<int64_t>();
  Tensor x({n, shape[1].get<int64_t>()}, DType::kFloat32);
  const auto& values = ref.at("input");
  ASSERT_EQ(static_cast<int64_t>(values.size()), x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = values[i].get<float>();
  const auto& want = ref.at("log_probs");
  // The fixture really has a row whose smallest probability is 0 in float32.
  bool underflows = false;
  for (const auto& row : want) {
    for (const auto& v : row) underflows = underflows || std::exp(v.get<float>()) == 0.0f;
  }
  ASSERT_TRUE(underflows);

  for (const auto& model : ref.at("models")) {
    const ir::Graph g = onnx::import_model(kDir + model.get<std::string>());
    for (bool reference : {false, true}) {
      SCOPED_TRACE(model.get<std::string>() + (reference ? " (reference kernels)" : ""));
      Executor ex(make_plan(g, {.max_batch = n, .use_reference_kernels = reference}));
      const Tensor& y = ex.run(x);
      ASSERT_EQ(y.dim(0), n);
      ASSERT_EQ(y.dim(1), 4);
      for (int64_t i = 0; i < n; ++i) {
        double scale = 1;
        for (const auto& v : want[i]) scale = std::max(scale, std::fabs(v.get<double>()));
        for (int64_t j = 0; j < 4; ++j) {
          EXPECT_NEAR(y.data<float>()[i * 4 + j], want[i][j].get<double>(), 1e-5 * scale)
              << "row " << i << " class " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::runtime
