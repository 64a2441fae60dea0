// Issue 11: the operators no other fixture exports from PyTorch (tools/make_ops_fixtures.py, opsets
// 11, 13 and 17: Split, Slice with steps, Neg, Exp, Concat, ReduceSum, ReduceMax, Unsqueeze,
// Squeeze, an embedding Gather of int64 ids, Equal, Expand, Where with torch's zeros_like, Not,
// Cast, Softmax over axis 1, SiLU, squeeze-excitation, Hardswish / Hardsigmoid, a dilated
// depthwise conv after an asymmetric pad, GlobalMaxPool) in the three engines:
//   * float: PyTorch's outputs within 1e-5 of each row's scale, fast and reference kernels;
//   * fake: PyTorch with MASE's integer quantizer on every Linear / Conv2d and activation matmul
//     (data_in 8.4, weight 8.6, bias 16.8), within 1e-4 of the row's scale;
//   * int: the fake outputs, within 1e-4 of the row's scale.
// Float summation order may move a quantized value across a rounding boundary (one code step,
// 2^-4, somewhere in the row): one row of the 16 may differ by more, never two.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/fixture_util.h"
#include "runtime/plan.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/ops/";

const nlohmann::json& ref() {
  static const nlohmann::json j = test::read_json(kDir + "ops_ref.json");
  return j;
}

Tensor input_of(const nlohmann::json& c) {
  const Shape shape = c.at("shape").get<Shape>();
  if (c.at("dtype") == "int64")
    return Tensor::from<int64_t>(shape, c.at("x").get<std::vector<int64_t>>());
  return Tensor::from<float>(shape, c.at("x").get<std::vector<float>>());
}

// Rows of `got` farther than rtol x the row's scale (max(1, max |want|)) from `want`; the worst
// relative difference of the other rows goes to *worst.
int rows_off(const Tensor& got, const nlohmann::json& want, double rtol, double* worst) {
  int off = 0;
  *worst = 0;
  const int64_t cols = got.dim(1);
  EXPECT_EQ(static_cast<int64_t>(want.size()), got.dim(0));
  for (int64_t i = 0; i < got.dim(0); ++i) {
    double scale = 1, d = 0;
    for (const auto& v : want[i]) scale = std::max(scale, std::fabs(v.get<double>()));
    for (int64_t j = 0; j < cols; ++j) {
      d = std::max(d, std::fabs(got.data<float>()[i * cols + j] - want[i][j].get<double>()));
    }
    if (d > rtol * scale) {
      ++off;
    } else {
      *worst = std::max(*worst, d / scale);
    }
  }
  return off;
}

class OpsFixture : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(OpsFixture, FloatFakeAndIntMatchPyTorch) {
  const auto& [name, opset] = GetParam();
  const nlohmann::json& c = ref().at("cases").at(name);
  const ir::Graph g = onnx::import_model(kDir + fmt::format("{}_opset{}.onnx", name, opset));
  const Tensor x = input_of(c);
  const quant::QuantAssignment q = testing::assignment_by_type(g, ref().at("formats"));
  ASSERT_FALSE(q.empty());
  auto run = [&](Mode mode, bool reference) {
    Executor ex(make_plan(g, {.mode = mode,
                              .max_batch = x.dim(0),
                              .use_reference_kernels = reference,
                              .quant = mode == Mode::kFloat ? quant::QuantAssignment{} : q}));
    return ex.run(x).clone();
  };
  double worst = 0;
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference ? "reference kernels" : "fast kernels");
    EXPECT_EQ(rows_off(run(Mode::kFloat, reference), c.at("float"), 1e-5, &worst), 0);
    std::cout << fmt::format("[ ops ] {} opset {} float{}: worst |ours - torch| / scale {:.1e}\n",
                             name, opset, reference ? " (ref kernels)" : "", worst);
  }
  const Tensor fake = run(Mode::kFake, false);
  EXPECT_LE(rows_off(fake, c.at("fake"), 1e-4, &worst), 1);
  std::cout << fmt::format("[ ops ] {} opset {} fake vs torch fake-quant: {:.1e}\n", name, opset,
                           worst);
  // The quantizers change the result: the fixture's fake outputs are not its float ones.
  EXPECT_GE(rows_off(fake, c.at("float"), 1e-4, &worst), 8);
  nlohmann::json fake_rows = nlohmann::json::array();
  for (int64_t i = 0; i < fake.dim(0); ++i) {
    std::vector<double> row(fake.data<float>() + i * fake.dim(1),
                            fake.data<float>() + (i + 1) * fake.dim(1));
    fake_rows.push_back(row);
  }
  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference ? "reference kernels" : "fast kernels");
    EXPECT_LE(rows_off(run(Mode::kInt, reference), fake_rows, 1e-4, &worst), 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Issue11, OpsFixture,
                         ::testing::Combine(::testing::Values("seq_ops", "mask_ops", "attn_axis1",
                                                              "se_block"),
                                            ::testing::Values(11, 13, 17)),
                         [](const auto& info) {
                           return fmt::format("{}_opset{}", std::get<0>(info.param),
                                              std::get<1>(info.param));
                         });

}  // namespace
}  // namespace qsearch::runtime
