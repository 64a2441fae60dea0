// Operator conversion: attributes, auto_pad, constant folding and shape computations.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;
using testing::set_int;
using testing::set_ints;

ir::Graph seed(const std::string& name) {
  return import_model(std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/onnx_fuzz_seeds/" + name);
}

TEST(ImportOps, AutoPadSameIsTurnedIntoExplicitPads) {
  ir::Graph g = seed("conv_same_softmax_opset11.onnx");
  ASSERT_EQ(g.nodes().size(), 7u);
  // in 7, stride 2, kernel 3: out 4, total pad (4-1)*2+3-7 = 2, split 1/1.
  const auto& conv = std::get<ir::ConvAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(conv.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_EQ(conv.strides, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(conv.group, 2);
  // in 4, stride 1, kernel 2: total 1; SAME_LOWER puts it at the beginning.
  const auto& pool = std::get<ir::PoolAttrs>(g.nodes()[2].attrs);
  EXPECT_EQ(pool.pads, (std::array<int64_t, 4>{1, 1, 0, 0}));
  EXPECT_TRUE(pool.count_include_pad);
  EXPECT_EQ(g.nodes()[2].kind, ir::OpKind::kAveragePool);
  EXPECT_FLOAT_EQ(std::get<ir::LeakyReluAttrs>(g.nodes()[1].attrs).alpha, 0.2f);
  const auto& clip = std::get<ir::ClipAttrs>(g.nodes()[3].attrs);
  EXPECT_FLOAT_EQ(clip.min, -1.0f);
  EXPECT_FLOAT_EQ(clip.max, 6.0f);
  EXPECT_EQ(g.nodes()[3].inputs.size(), 1u);  // min/max became attributes
  EXPECT_EQ(g.nodes()[4].kind, ir::OpKind::kGlobalAveragePool);
  EXPECT_EQ(g.nodes()[6].kind, ir::OpKind::kSoftmax);
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 4]");
}

// Issue 8 item 6: PyTorch's export of an MLP ending in F.log_softmax
// (tools/make_logsoftmax_fixtures.py) imports at opset 13 and 11 as a LogSoftmax over the
// classes (tests/runtime/log_softmax_fixture_test.cc checks its values against PyTorch's).
TEST(ImportOps, TorchLogSoftmaxImportsAsALogSoftmaxOverTheClasses) {
  for (const char* name : {"log_softmax_mlp_opset13.onnx", "log_softmax_mlp_opset11.onnx"}) {
    SCOPED_TRACE(name);
    ir::Graph g = import_model(std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/" + name);
    ASSERT_EQ(g.nodes().size(), 4u) << ir::to_string(g);
    const ir::Node& ls = g.nodes()[3];
    EXPECT_EQ(ls.kind, ir::OpKind::kLogSoftmax);
    const int64_t axis = std::get<ir::AxisAttrs>(ls.attrs).axis;
    EXPECT_TRUE(axis == 1 || axis == -1) << axis;
    EXPECT_EQ(ir::mase_op(g, ls), "log_softmax");
    EXPECT_EQ(ls.outputs[0], g.outputs()[0]);
    EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 4]");
  }
}

TEST(ImportOps, ShapeComputationsFoldToAReshapeAndAConstant) {
  ir::Graph g = seed("shape_ops_opset15.onnx");
  ASSERT_EQ(g.nodes().size(), 2u) << ir::to_string(g);
  // [N, x.shape[1:2], (4 * 2) / 2, 2] with N copied from the input.
  EXPECT_EQ(std::get<ir::ReshapeAttrs>(g.nodes()[0].attrs).shape,
            (std::vector<int64_t>{0, 3, 4, 2}));
  const ir::Value& ones = g.value(g.nodes()[1].inputs[1]);
  ASSERT_TRUE(ones.is_constant());
  EXPECT_EQ(ones.data.shape(), (Shape{1, 2}));
  EXPECT_EQ(ones.data.data<float>()[0], 1.0f);
  EXPECT_EQ(ones.data.data<float>()[1], 1.0f);
}

TEST(ImportOps, DenseOpsAndAttributes) {
  ir::Graph g = seed("dense_ops_opset13.onnx");
  const ir::Node* fc = g.find_node("fc");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->inputs.size(), 2u);  // no bias
  EXPECT_FLOAT_EQ(std::get<ir::GemmAttrs>(fc->attrs).alpha, 0.5f);
  EXPECT_EQ(ir::mase_op(g, *g.find_node("proj")), "linear");    // MatMul by a constant
  EXPECT_EQ(ir::mase_op(g, *g.find_node("matmul")), "matmul");  // two activations
  EXPECT_FLOAT_EQ(std::get<ir::DropoutAttrs>(g.find_node("drop")->attrs).ratio, 0.3f);
  EXPECT_EQ(g.find_node("drop")->inputs.size(), 1u);
  EXPECT_EQ(std::get<ir::TransposeAttrs>(g.find_node("permute")->attrs).perm,
            (std::vector<int64_t>{1, 0}));
  EXPECT_TRUE(std::get<ir::TransposeAttrs>(g.find_node("permute_1")->attrs).perm.empty());
  EXPECT_EQ(std::get<ir::AxisAttrs>(g.find_node("cat")->attrs).axis, 1);
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, ?]");
}

TEST(ImportOps, ConstantSubgraphsAreFolded) {
  ir::Graph g = seed("bn_pool_opset17.onnx");
  ASSERT_EQ(g.nodes().size(), 4u);
  const ir::Value& w = g.value(g.nodes()[0].inputs[1]);
  ASSERT_TRUE(w.is_constant());
  ASSERT_EQ(w.data.shape(), (Shape{3, 1, 3, 3}));
  // w = 2 * transpose(wt, [1, 0, 2, 3]); wt is [1, 3, 3, 3], so w[c, 0] = 2 * wt[0, c]: the same
  // element order, each doubled exactly.
  ::onnx::ModelProto m;
  std::ifstream f(
      std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/onnx_fuzz_seeds/bn_pool_opset17.onnx",
      std::ios::binary);
  ASSERT_TRUE(m.ParseFromIstream(&f));
  std::vector<float> wt(27);
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == "wt") std::memcpy(wt.data(), t.raw_data().data(), 27 * sizeof(float));
  }
  for (int i = 0; i < 27; ++i) EXPECT_EQ(w.data.data<float>()[i], 2.0f * wt[i]) << i;
  EXPECT_NE(wt[5], 0.0f);
  const auto& pool = std::get<ir::PoolAttrs>(g.nodes()[3].attrs);
  EXPECT_TRUE(pool.ceil_mode);
  EXPECT_EQ(pool.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(std::get<ir::BatchNormAttrs>(g.nodes()[1].attrs).epsilon, 1e-3f);
  EXPECT_EQ(std::get<ir::ConvAttrs>(g.nodes()[0].attrs).dilations, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 3, 4, 4]");
}

TEST(ImportOps, BatchElsewhereThanDimZeroBecomesMinusOne) {
  // x [N, 4] -> Transpose -> [4, N]; Reshape to [2, 2, N] where N comes from Shape(x)[0].
  ModelBuilder b;
  b.node("Transpose", {"x"}, {"t"}, "/Transpose");
  b.node("Shape", {"x"}, {"s"}, "/Shape");
  b.constant("i0", {1}, {0});
  b.node("Gather", {"s", "i0"}, {"n"}, "/Gather");
  b.constant("two", {2}, {2, 2});
  auto& c = b.node("Concat", {"two", "n"}, {"target"}, "/Concat");
  set_int(c, "axis", 0);
  b.node("Reshape", {"t", "target"}, {"r"}, "/Reshape");
  b.constant("perm_back", {1}, {0});  // unused constant: allowed
  auto& t = b.node("Transpose", {"r"}, {"y"}, "/Transpose_1");
  set_ints(t, "perm", {2, 0, 1});
  b.output("y");
  ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  ASSERT_EQ(g.nodes().size(), 3u);
  EXPECT_EQ(std::get<ir::ReshapeAttrs>(g.nodes()[1].attrs).shape, (std::vector<int64_t>{2, 2, -1}));
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 2, 2]");
}

TEST(ImportOps, IdentityOfAConstantIsADistinctCopy) {
  // torch.onnx deduplicates equal initializers and re-creates them with Identity nodes; each
  // must stay its own tensor, since training updates constants in place.
  ModelBuilder b(13, {-1, 2, 1, 1});
  b.init<float>("ones", {2}, {1, 1});
  b.init<float>("zeros", {2}, {0, 0});
  b.node("Identity", {"ones"}, {"var"}, "Identity_0");
  b.node("Identity", {"zeros"}, {"mean"}, "Identity_1");
  b.node("BatchNormalization", {"x", "ones", "zeros", "mean", "var"}, {"y"}, "/bn/BN");
  b.output("y");
  ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  ASSERT_EQ(g.nodes().size(), 1u);
  const auto& ins = g.nodes()[0].inputs;
  EXPECT_NE(ins[1], ins[4]);
  EXPECT_NE(g.value(ins[1]).data.raw(), g.value(ins[4]).data.raw());
  EXPECT_EQ(g.value(ins[4]).name, "var");
  EXPECT_EQ(g.value(ins[4]).data.data<float>()[0], 1.0f);
}

TEST(ImportOps, DropoutAtOpset11KeepsTheRatioAttribute) {
  ModelBuilder b(11);
  auto& n = b.node("Dropout", {"x"}, {"y"}, "/drop/Dropout");
  testing::set_float(n, "ratio", 0.2f);
  b.output("y");
  ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  EXPECT_FLOAT_EQ(std::get<ir::DropoutAttrs>(g.nodes()[0].attrs).ratio, 0.2f);
  EXPECT_EQ(ir::mase_op(g, g.nodes()[0]), "dropout");
}

TEST(ImportOps, DuplicateAndEmptyNodeNamesBecomeUnique) {
  ModelBuilder b;
  b.node("Relu", {"x"}, {"a"}, "/r/Relu");
  b.node("Relu", {"a"}, {"c"}, "/r/Relu");
  b.node("Relu", {"c"}, {"y"});
  b.output("y");
  ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  EXPECT_EQ(g.nodes()[0].name, "/r/Relu");
  EXPECT_EQ(g.nodes()[1].name, "/r/Relu_1");
  EXPECT_EQ(g.nodes()[2].name, "Relu_2");
  EXPECT_EQ(g.nodes()[0].config_name, "r_relu");
  EXPECT_EQ(g.nodes()[1].config_name, "r_relu_1");
  EXPECT_EQ(g.nodes()[2].config_name, "relu");
}

TEST(ImportOps, ConstantNodeForms) {
  ModelBuilder b;
  auto& f = b.node("Constant", {}, {"c"}, "/c");
  testing::add_attr(f, "value_floats", ::onnx::AttributeProto::FLOATS).add_floats(2.5f);
  auto& s = b.node("Constant", {}, {"shape"}, "/s");
  auto& a = testing::add_attr(s, "value_ints", ::onnx::AttributeProto::INTS);
  a.add_ints(-1);
  a.add_ints(2);
  a.add_ints(2);
  b.node("Mul", {"x", "c"}, {"m"}, "/Mul");
  b.node("Reshape", {"m", "shape"}, {"y"}, "/Reshape");
  b.output("y");
  ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  EXPECT_EQ(g.value(g.nodes()[0].inputs[1]).data.data<float>()[0], 2.5f);
  EXPECT_EQ(std::get<ir::ReshapeAttrs>(g.nodes()[1].attrs).shape, (std::vector<int64_t>{-1, 2, 2}));
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 2, 2]");
}

// ---- Pad (issue 8 item 16) ---------------------------------------------------------------------

// x [N, 2, 6, 6] -> Pad(pads) -> `reader` (a 3x3 Conv, a 2x2 AveragePool or MaxPool) -> y.
ModelBuilder pad_model(const std::vector<int64_t>& pads, const std::string& reader,
                       float value = 0.0f, const std::string& mode = "") {
  ModelBuilder b(13, {-1, 2, 6, 6});
  b.constant("pads", {8}, pads);
  b.init("value", {}, std::vector<float>{value});
  auto& pad = b.node("Pad", {"x", "pads", "value"}, {"p"}, "/Pad");
  if (!mode.empty()) testing::set_string(pad, "mode", mode);
  if (reader == "Conv") {
    b.init("w", {3, 2, 3, 3}, std::vector<float>(54, 0.1f));
    b.node("Conv", {"p", "w"}, {"y"}, "/conv/Conv");
  } else if (reader == "Relu") {
    b.node("Relu", {"p"}, {"y"}, "/Relu");
  } else {
    auto& n = b.node(reader, {"p"}, {"y"}, "/pool/" + reader);
    set_ints(n, "kernel_shape", {2, 2});
    set_ints(n, "strides", {2, 2});
  }
  b.output("y", 4);
  return b;
}

std::string import_error(const ModelBuilder& b) {
  try {
    import_model_bytes(b.bytes(), "pad.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImportOps, AllZeroPadBeforeAveragePoolIsTheInput) {
  // PyTorch's F.avg_pool2d(x, 2) export: Pad with all-zero pads, then AveragePool.
  ir::Graph g = import_model_bytes(pad_model({0, 0, 0, 0, 0, 0, 0, 0}, "AveragePool").bytes(), "p");
  ASSERT_EQ(g.nodes().size(), 1u) << ir::to_string(g);
  EXPECT_EQ(g.nodes()[0].kind, ir::OpKind::kAveragePool);
  EXPECT_EQ(g.nodes()[0].inputs[0], g.inputs()[0]);
  const auto& a = std::get<ir::PoolAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(a.pads, (std::array<int64_t, 4>{0, 0, 0, 0}));
  EXPECT_FALSE(a.count_include_pad);
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 2, 3, 3]");
  // Any mode: padding nothing is the identity.
  EXPECT_EQ(import_error(pad_model({0, 0, 0, 0, 0, 0, 0, 0}, "MaxPool", 0.0f, "reflect")), "");
}

TEST(ImportOps, ZeroPadFoldsIntoTheNextConvOrAveragePool) {
  ir::Graph g = import_model_bytes(pad_model({0, 0, 1, 2, 0, 0, 3, 0}, "Conv").bytes(), "p");
  ASSERT_EQ(g.nodes().size(), 1u) << ir::to_string(g);
  EXPECT_EQ(std::get<ir::ConvAttrs>(g.nodes()[0].attrs).pads, (std::array<int64_t, 4>{1, 2, 3, 0}));
  // (6 + 1 + 3 - 3) + 1 = 8 rows, (6 + 2 - 3) + 1 = 6 columns.
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 3, 8, 6]");

  g = import_model_bytes(pad_model({0, 0, 1, 1, 0, 0, 1, 1}, "AveragePool").bytes(), "p");
  ASSERT_EQ(g.nodes().size(), 1u) << ir::to_string(g);
  const auto& a = std::get<ir::PoolAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(a.pads, (std::array<int64_t, 4>{1, 1, 1, 1}));
  EXPECT_TRUE(a.count_include_pad);  // the padded zeros are averaged
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 2, 4, 4]");
}

// Issue 11: a Pad that cannot fold (another reader, another value or mode, a non-spatial axis,
// a graph output) is an ir Pad node with its mode, value and pads of every dim.
TEST(ImportOps, PadsThatCannotFoldBecomePadNodes) {
  const std::vector<int64_t> hw = {0, 0, 1, 1, 0, 0, 1, 1};
  struct Case {
    ModelBuilder b;
    ir::PadMode mode;
    float value;
    std::vector<int64_t> pads;
  };
  for (const auto& [b, mode, value, pads] : std::vector<Case>{
           {pad_model(hw, "MaxPool"), ir::PadMode::kConstant, 0.0f, hw},
           {pad_model(hw, "Relu"), ir::PadMode::kConstant, 0.0f, hw},
           {pad_model(hw, "Conv", 1.5f), ir::PadMode::kConstant, 1.5f, hw},
           {pad_model(hw, "Conv", 0.0f, "reflect"), ir::PadMode::kReflect, 0.0f, hw},
           {pad_model(hw, "Relu", 0.0f, "edge"), ir::PadMode::kEdge, 0.0f, hw},
           {pad_model({0, 1, 0, 0, 0, 0, 0, 0}, "Relu"),
            ir::PadMode::kConstant,
            0.0f,
            {0, 1, 0, 0, 0, 0, 0, 0}},
       }) {
    const ir::Graph g = import_model_bytes(b.bytes(), "pad.onnx");
    ASSERT_EQ(g.nodes().size(), 2u) << ir::to_string(g);
    ASSERT_EQ(g.nodes()[0].kind, ir::OpKind::kPad) << ir::to_string(g);
    const auto& a = std::get<ir::PadAttrs>(g.nodes()[0].attrs);
    EXPECT_EQ(a.mode, mode);
    EXPECT_EQ(a.value, value);
    EXPECT_EQ(a.pads, pads);
    EXPECT_EQ(ir::mase_op(g, g.nodes()[0]), "pad");
  }
  // A padded output straight out of the graph.
  ModelBuilder b(13, {-1, 2, 6, 6});
  b.constant("pads", {8}, hw);
  b.node("Pad", {"x", "pads"}, {"y"}, "/Pad");
  b.output("y", 4);
  const ir::Graph g = import_model_bytes(b.bytes(), "pad.onnx");
  EXPECT_EQ(shape_str(g.value(g.outputs()[0]).shape), "[?, 2, 8, 8]");
}

TEST(ImportOps, PadsThatCannotRunAreRefusedSayingWhy) {
  const std::vector<int64_t> hw = {0, 0, 1, 1, 0, 0, 1, 1};
  for (const auto& [b, part] : std::vector<std::pair<ModelBuilder, std::string>>{
           {pad_model({0, 0, -1, 0, 0, 0, 0, 0}, "Conv"), "cropping"},
           {pad_model(hw, "Conv", 0.0f, "wrap"), "mode 'wrap' is not supported"},
           {pad_model({0, 0, 6, 0, 0, 0, 0, 0}, "Relu", 0.0f, "reflect"), "reflect pads 6, 0"},
       }) {
    const std::string msg = import_error(b);
    EXPECT_NE(msg.find(part), std::string::npos) << msg << "\n  lacks: " << part;
    EXPECT_NE(msg.find("Pad"), std::string::npos) << msg;
  }
}

// ---- large graphs (issue 8 item 17) ------------------------------------------------------------

// 20,000 nodes, unnamed and with one repeated name: every node imported, in order, with MASE's
// names relu, relu_1, ... and unique ir names (the searches for a free suffix were quadratic;
// bench/onnx_import_bench.cc times them).
TEST(ImportOps, LargeChainsImportEveryNodeWithUniqueNames) {
  for (bool named : {false, true}) {
    ModelBuilder b;
    std::string prev = "x";
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const std::string out = fmt::format("v{}", i);
      if (i % 2 == 0) {
        b.node("Relu", {prev}, {out}, named ? "/block/Relu" : "");
      } else {
        b.node("Add", {prev, "x"}, {out}, named ? "/block/Relu" : "");
      }
      prev = out;
    }
    b.output(prev);
    const ir::Graph g = import_model_bytes(b.bytes(), "chain.onnx");
    ASSERT_EQ(g.nodes().size(), static_cast<size_t>(n));
    std::set<std::string> names, config_names;
    for (const ir::Node& node : g.nodes()) {
      names.insert(node.name);
      config_names.insert(node.config_name);
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(n));
    EXPECT_EQ(config_names.size(), static_cast<size_t>(n));
    if (named) {
      EXPECT_EQ(g.nodes()[0].name, "/block/Relu");
      EXPECT_EQ(g.nodes()[1].name, "/block/Relu_1");
      EXPECT_EQ(g.nodes()[n - 1].name, fmt::format("/block/Relu_{}", n - 1));
    } else {
      EXPECT_EQ(g.nodes()[0].config_name, "relu");
      EXPECT_EQ(g.nodes()[2].config_name, "relu_1");
      EXPECT_EQ(g.nodes()[1].config_name, "add");
      EXPECT_EQ(g.nodes()[n - 2].config_name, fmt::format("relu_{}", n / 2 - 1));
      EXPECT_EQ(g.nodes()[n - 1].config_name, fmt::format("add_{}", n / 2 - 1));
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
