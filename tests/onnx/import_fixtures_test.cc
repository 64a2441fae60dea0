// The PyTorch-exported fixtures (tools/make_torch_fixtures.py) import with the expected ops,
// config names, shapes, parameter counts and MACs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

std::string fixture(const std::string& name) {
  return std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/" + name;
}

struct Expected {
  std::string config_name;
  std::string mase_op;
  std::string out_shape;
  int64_t params;
};

void expect_graph(const ir::Graph& g, const std::vector<Expected>& want) {
  ASSERT_EQ(g.nodes().size(), want.size()) << ir::to_string(g);
  for (size_t i = 0; i < want.size(); ++i) {
    const ir::Node& n = g.nodes()[i];
    SCOPED_TRACE(n.name);
    EXPECT_EQ(n.config_name, want[i].config_name);
    EXPECT_EQ(ir::mase_op(g, n), want[i].mase_op);
    EXPECT_EQ(shape_str(g.value(n.outputs[0]).shape), want[i].out_shape);
    EXPECT_EQ(ir::param_count(g, n), want[i].params);
  }
  ASSERT_EQ(g.inputs().size(), 1u);
  EXPECT_EQ(g.value(g.inputs()[0]).name, "input");
  EXPECT_EQ(shape_str(g.value(g.inputs()[0]).shape), "[?, 1, 28, 28]");
  ASSERT_EQ(g.outputs().size(), 1u);
  EXPECT_EQ(g.value(g.outputs()[0]).name, "logits");
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 10]");
}

TEST(ImportFixtures, MlpOpset11FoldsTheViewShapeComputation) {
  ir::Graph g = import_model(fixture("mlp_opset11.onnx"));
  expect_graph(g, {{"reshape", "reshape", "[?, 784]", 0},
                   {"fc1", "linear", "[?, 32]", 784 * 32 + 32},
                   {"relu1", "relu", "[?, 32]", 0},
                   {"fc2", "linear", "[?, 16]", 32 * 16 + 16},
                   {"relu2", "relu", "[?, 16]", 0},
                   {"fc3", "linear", "[?, 10]", 16 * 10 + 10}});
  // x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat folded to [copy dim 0, -1].
  const auto& r = std::get<ir::ReshapeAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(r.shape, (std::vector<int64_t>{0, -1}));
  EXPECT_FALSE(r.allowzero);
  EXPECT_EQ(g.nodes()[0].name, "/Reshape");
  const auto& gemm = std::get<ir::GemmAttrs>(g.nodes()[1].attrs);
  EXPECT_TRUE(gemm.trans_b);
  EXPECT_FALSE(gemm.trans_a);
  EXPECT_EQ(gemm.alpha, 1.0f);
  EXPECT_EQ(ir::macs_per_sample(g, g.nodes()[1]), 784 * 32);
  // Only the constants that nodes read are in the graph: 3 weights + 3 biases.
  int constants = 0;
  for (const ir::Value& v : g.values()) constants += v.is_constant();
  EXPECT_EQ(constants, 6);
  EXPECT_EQ(g.value(g.nodes()[1].inputs[1]).name, "fc1.weight");
}

TEST(ImportFixtures, MlpOpset13UsesFlatten) {
  ir::Graph g = import_model(fixture("mlp_opset13.onnx"));
  expect_graph(g, {{"flatten", "flatten", "[?, 784]", 0},
                   {"fc1", "linear", "[?, 32]", 784 * 32 + 32},
                   {"relu1", "relu", "[?, 32]", 0},
                   {"fc2", "linear", "[?, 16]", 32 * 16 + 16},
                   {"relu2", "relu", "[?, 16]", 0},
                   {"fc3", "linear", "[?, 10]", 16 * 10 + 10}});
  EXPECT_EQ(std::get<ir::AxisAttrs>(g.nodes()[0].attrs).axis, 1);
}

void expect_cnn(const ir::Graph& g) {
  expect_graph(g, {{"conv1", "conv2d", "[?, 8, 28, 28]", 8 * 9 + 8},
                   {"bn1", "batch_norm2d", "[?, 8, 28, 28]", 4 * 8},
                   {"relu1", "relu", "[?, 8, 28, 28]", 0},
                   {"pool1", "max_pool2d", "[?, 8, 14, 14]", 0},
                   {"block_conv", "conv2d", "[?, 8, 14, 14]", 8 * 8 * 9 + 8},
                   {"block_bn", "batch_norm2d", "[?, 8, 14, 14]", 4 * 8},
                   {"block_relu", "relu", "[?, 8, 14, 14]", 0},
                   {"block_add", "add", "[?, 8, 14, 14]", 0},
                   {"pool2", "max_pool2d", "[?, 8, 7, 7]", 0},
                   {"reshape", "reshape", "[?, 392]", 0},
                   {"fc", "linear", "[?, 10]", 392 * 10 + 10}});
  const auto& conv = std::get<ir::ConvAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(conv.kernel, (std::array<int64_t, 2>{3, 3}));
  EXPECT_EQ(conv.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_EQ(conv.group, 1);
  EXPECT_EQ(ir::macs_per_sample(g, g.nodes()[0]), 8 * 28 * 28 * 9);
  const auto& pool = std::get<ir::PoolAttrs>(g.nodes()[3].attrs);
  EXPECT_EQ(pool.kernel, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(pool.strides, (std::array<int64_t, 2>{2, 2}));
  EXPECT_FALSE(pool.ceil_mode);
  const auto& bn = std::get<ir::BatchNormAttrs>(g.nodes()[1].attrs);
  EXPECT_FLOAT_EQ(bn.epsilon, 1e-5f);
  EXPECT_FLOAT_EQ(bn.momentum, 0.9f);
  // The residual add reads the block's input (pool1's output).
  EXPECT_EQ(g.nodes()[7].inputs[1], g.nodes()[3].outputs[0]);
  EXPECT_EQ(std::get<ir::ReshapeAttrs>(g.nodes()[9].attrs).shape, (std::vector<int64_t>{0, -1}));
}

TEST(ImportFixtures, CnnOpset11) { expect_cnn(import_model(fixture("cnn_opset11.onnx"))); }
TEST(ImportFixtures, CnnOpset13) { expect_cnn(import_model(fixture("cnn_opset13.onnx"))); }

TEST(ImportFixtures, ConstantsAreBitExactCopiesOfTheInitializers) {
  ir::Graph a = import_model(fixture("cnn_opset11.onnx"));
  ir::Graph b = import_model(fixture("cnn_opset13.onnx"));
  // Same trained weights exported at two opsets.
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    for (size_t k = 0; k < a.nodes()[i].inputs.size(); ++k) {
      const ir::Value& va = a.value(a.nodes()[i].inputs[k]);
      const ir::Value& vb = b.value(b.nodes()[i].inputs[k]);
      ASSERT_EQ(va.is_constant(), vb.is_constant());
      if (!va.is_constant()) continue;
      ASSERT_EQ(va.data.shape(), vb.data.shape());
      EXPECT_EQ(std::memcmp(va.data.raw(), vb.data.raw(), va.data.nbytes()), 0) << va.name;
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
