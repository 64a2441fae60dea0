// QONNX import (src/onnx/import_qonnx.cc) on the fixtures of tools/make_qonnx_fixtures.py: a
// Brevitas-style MLP imports as the float graph plus its Quant formats and computes what the
// independent QONNX interpreter (tools/onnx_torch_exec.py) computed for it; every refused model
// gives one error naming its QONNX node.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/qonnx.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

using quant::FixedFormat;

std::string fixture(const std::string& name) {
  return (std::filesystem::path(QSEARCH_SOURCE_DIR) / "tests/fixtures/qonnx" / name).string();
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  EXPECT_TRUE(f) << path;
  std::vector<float> v(static_cast<size_t>(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

TEST(QonnxImport, BrevitasStyleMlpImportsItsFormatsAndMatchesTheQonnxInterpreter) {
  const QonnxModel m = import_qonnx(fixture("brevitas_mlp.onnx"));
  EXPECT_EQ(m.quant_nodes, 5);
  ASSERT_EQ(m.graph.nodes().size(), 3u);  // Gemm, Relu, Gemm: the Quant nodes are gone
  const std::string fc1 = m.graph.nodes()[0].config_name, fc2 = m.graph.nodes()[2].config_name;
  ASSERT_EQ(m.formats.size(), 2u);
  const quant::NodeQuantConfig& a = m.formats.at(fc1);
  EXPECT_EQ(a.data_in, (FixedFormat{8, 5, true}));
  EXPECT_EQ(a.weight, (FixedFormat{4, 3, true}));  // scale from a Constant node
  EXPECT_EQ(a.bias, (FixedFormat{16, 8, true}));
  EXPECT_FALSE(a.data_out);
  // QuantReLU's Quant sits behind the Relu: it is the next linear's (unsigned) data_in.
  const quant::NodeQuantConfig& b = m.formats.at(fc2);
  EXPECT_EQ(b.data_in, (FixedFormat{4, 2, false}));
  EXPECT_EQ(b.weight, (FixedFormat{6, 5, true}));
  EXPECT_FALSE(b.bias);  // bias_quant=None: float
  EXPECT_EQ(a.rounding, quant::Rounding::kHalfToEven);

  const std::vector<float> x = read_f32(fixture("brevitas_mlp_x.f32"));
  const std::vector<float> want = read_f32(fixture("brevitas_mlp_y.f32"));
  ASSERT_EQ(x.size(), 64u * 16u);
  ASSERT_EQ(want.size(), 64u * 5u);
  Tensor in({64, 16}, DType::kFloat32);
  std::copy(x.begin(), x.end(), in.data<float>());
  for (runtime::Mode mode : {runtime::Mode::kFake, runtime::Mode::kInt}) {
    SCOPED_TRACE(runtime::mode_name(mode));
    auto plan = runtime::make_plan(m.graph, {.mode = mode, .max_batch = 64, .quant = m.formats});
    runtime::Executor ex(plan);
    const Tensor y = ex.run(in);
    ASSERT_EQ(y.numel(), 64 * 5);
    // fake: the float accumulation order is the only difference. int: fc2's float bias is added
    // rounded to the accumulator's grid 2^-(2+5) (docs/numerics.md), at most half a step off.
    const double tol = mode == runtime::Mode::kFake ? 1e-5 : std::ldexp(1.0, -8) + 1e-5;
    for (int64_t i = 0; i < y.numel(); ++i) {
      EXPECT_NEAR(y.data<float>()[i], want[static_cast<size_t>(i)], tol) << "value " << i;
    }
  }
  // The plain importer reads the same file as the float graph.
  EXPECT_EQ(import_model(fixture("brevitas_mlp.onnx")).nodes().size(), 3u);
}

// QuantReLU's Quant in front of the MaxPool: MASE's quantizer commutes with max pooling and
// views, so it is the linear's data_in behind the pool and the flatten.
TEST(QonnxImport, QuantBeforeMaxPoolAndFlattenIsTheNextLinearsDataIn) {
  const QonnxModel m = import_qonnx(fixture("brevitas_cnn.onnx"));
  EXPECT_EQ(m.quant_nodes, 5);
  const ir::Node* conv = m.graph.find_node("conv");
  const ir::Node* fc = m.graph.find_node("fc");
  ASSERT_TRUE(conv && fc);
  ASSERT_EQ(m.formats.size(), 2u);
  const quant::NodeQuantConfig& c = m.formats.at(conv->config_name);
  EXPECT_EQ(c.data_in, (FixedFormat{8, 5, true}));
  EXPECT_EQ(c.weight, (FixedFormat{5, 4, true}));
  EXPECT_EQ(c.bias, (FixedFormat{12, 8, true}));
  const quant::NodeQuantConfig& f = m.formats.at(fc->config_name);
  EXPECT_EQ(f.data_in, (FixedFormat{4, 2, false}));
  EXPECT_EQ(f.weight, (FixedFormat{6, 5, true}));
  const std::vector<float> x = read_f32(fixture("brevitas_cnn_x.f32"));
  const std::vector<float> want = read_f32(fixture("brevitas_cnn_y.f32"));
  ASSERT_EQ(x.size(), 32u * 64u);
  ASSERT_EQ(want.size(), 32u * 3u);
  Tensor in({32, 1, 8, 8}, DType::kFloat32);
  std::copy(x.begin(), x.end(), in.data<float>());
  auto plan = runtime::make_plan(
      m.graph, {.mode = runtime::Mode::kFake, .max_batch = 32, .quant = m.formats});
  runtime::Executor ex(plan);
  const Tensor y = ex.run(in);
  ASSERT_EQ(y.numel(), 32 * 3);
  for (int64_t i = 0; i < y.numel(); ++i) {
    EXPECT_NEAR(y.data<float>()[i], want[static_cast<size_t>(i)], 1e-5) << "value " << i;
  }
}

TEST(QonnxImport, PlainOnnxModelHasNoFormats) {
  const QonnxModel m =
      import_qonnx((std::filesystem::path(QSEARCH_SOURCE_DIR) / "models/mlp_mnist.onnx").string());
  EXPECT_EQ(m.quant_nodes, 0);
  EXPECT_TRUE(m.formats.empty());
}

TEST(QonnxImport, RefusedModelsGiveOneLineNamingTheNode) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"scale_not_pow2", {"'Quant_w'", "not a power of two"}},
      {"zeropt", {"'Quant_in'", "zero point 1 is not 0"}},
      {"narrow", {"'Quant_w'", "narrow"}},
      {"rounding", {"'Quant_in'", "CEIL"}},
      {"per_channel", {"'Quant_w'", "per tensor"}},
      {"placement", {"'Quant_softmax_out'", "softmax"}},
      {"partial", {"'Quant_w'", "not its data_in"}},
      {"bipolar", {"'Bipolar_w'", "BipolarQuant"}},
      {"trunc", {"'Trunc_w'", "Trunc"}},
  };
  for (const auto& [kind, parts] : cases) {
    SCOPED_TRACE(kind);
    const std::string path = fixture("err_" + kind + ".onnx");
    try {
      import_qonnx(path);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string msg = e.message();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    // The plain importer (inspect, train, ...) refuses what no format can hold; where a format
    // only has no place (placement, partial) it reads the float graph.
    if (kind != "placement" && kind != "partial") {
      EXPECT_THROW(import_model(path), Error);
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
