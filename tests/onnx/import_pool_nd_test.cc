// 1-D and 3-D MaxPool / AveragePool (issue 14; src/onnx/import_pool_nd.cc): imported as the ir's
// 2-D pools between views; their attributes checked per spatial dim. PyTorch's outputs are
// checked in every engine by tests/runtime/cnn_fixture_test.cc (tests/fixtures/nd/).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"

namespace qsearch::onnx {
namespace {

namespace pb = ::onnx;
using ::testing::HasSubstr;
using testing::ModelBuilder;
using testing::set_int;
using testing::set_ints;
using testing::set_string;

ModelBuilder pool(const std::string& op, std::vector<int64_t> dims, pb::NodeProto** n) {
  ModelBuilder b(13, std::move(dims));
  *n = &b.node(op, {"x"}, {"y"}, "/pool/" + op);
  b.output("y", 5);
  return b;
}

std::vector<ir::OpKind> kinds(const ir::Graph& g) {
  std::vector<ir::OpKind> k;
  for (const ir::Node& n : g.nodes()) k.push_back(n.kind);
  return k;
}

TEST(ImportPoolNd, OneDimensionalPoolIsTheTwoDimensionalPoolOfHeightOne) {
  pb::NodeProto* n = nullptr;
  ModelBuilder b = pool("MaxPool", {-1, 3, 10}, &n);
  set_ints(*n, "kernel_shape", {3});
  set_ints(*n, "strides", {2});
  set_ints(*n, "pads", {1, 0});
  set_ints(*n, "dilations", {2});
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  using K = ir::OpKind;
  ASSERT_EQ(kinds(g), (std::vector<K>{K::kReshape, K::kMaxPool, K::kReshape}));
  const auto& a = std::get<ir::PoolAttrs>(g.nodes()[1].attrs);
  EXPECT_EQ(a.kernel, (std::array<int64_t, 2>{1, 3}));
  EXPECT_EQ(a.strides, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(a.dilations, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(a.pads, (std::array<int64_t, 4>{0, 1, 0, 0}));
  // (10 + 1 - 2 * 2 - 1) / 2 + 1 = 4
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 3, 4}));
}

TEST(ImportPoolNd, ThreeDimensionalPoolIsThePlanePoolThenTheDepthPool) {
  pb::NodeProto* n = nullptr;
  ModelBuilder b = pool("AveragePool", {-1, 2, 5, 6, 7}, &n);
  set_ints(*n, "kernel_shape", {3, 2, 2});
  set_ints(*n, "strides", {1, 2, 2});
  set_ints(*n, "pads", {1, 1, 0, 1, 0, 1});
  set_int(*n, "ceil_mode", 1);
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  using K = ir::OpKind;
  ASSERT_EQ(kinds(g), (std::vector<K>{K::kReshape, K::kAveragePool, K::kReshape, K::kAveragePool,
                                      K::kReshape}));
  const auto& hw = std::get<ir::PoolAttrs>(g.nodes()[1].attrs);
  const auto& d = std::get<ir::PoolAttrs>(g.nodes()[3].attrs);
  EXPECT_EQ(hw.kernel, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(hw.pads, (std::array<int64_t, 4>{1, 0, 0, 1}));
  EXPECT_EQ(d.kernel, (std::array<int64_t, 2>{3, 1}));
  EXPECT_EQ(d.pads, (std::array<int64_t, 4>{1, 0, 1, 0}));
  EXPECT_TRUE(hw.ceil_mode && d.ceil_mode);
  EXPECT_FALSE(hw.count_include_pad || d.count_include_pad);
  // D: (5 + 2 - 3) / 1 + 1 = 5; H: ceil((6 + 1 - 2) / 2) + 1 = 4; W: ceil((7 + 1 - 2) / 2) + 1 = 4
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 2, 5, 4, 4}));
}

std::string error_of(const ModelBuilder& b) {
  try {
    import_model_bytes(b.bytes(), "m.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  return "(imported)";
}

TEST(ImportPoolNd, AttributesOfTheWrongLengthOrSamePaddingAreRefused) {
  pb::NodeProto* n = nullptr;
  {
    ModelBuilder b = pool("MaxPool", {-1, 2, 4, 4, 4}, &n);
    set_ints(*n, "kernel_shape", {2, 2, 2});
    set_ints(*n, "strides", {2, 2});
    EXPECT_THAT(error_of(b), HasSubstr("attribute 'strides' has 2 values; a 3-D pool needs 3"));
  }
  {
    ModelBuilder b = pool("AveragePool", {-1, 2, 8}, &n);
    set_ints(*n, "kernel_shape", {2});
    set_string(*n, "auto_pad", "SAME_UPPER");
    EXPECT_THAT(error_of(b), HasSubstr("auto_pad 'SAME_UPPER' is not supported for a 1-D pool"));
  }
  {
    ModelBuilder b = pool("MaxPool", {-1, 2, 4, 4}, &n);
    set_ints(*n, "kernel_shape", {2, 2, 2});
    EXPECT_THAT(error_of(b), HasSubstr("a 3-D pool needs a rank-5 input"));
  }
}

}  // namespace
}  // namespace qsearch::onnx

namespace qsearch::onnx {
namespace {

// 3-D Conv (src/onnx/import_conv3d.cc): Im2Col3d -> Conv (1, kW) -> Reshape; the Conv is MASE op
// `conv3d` and keeps the module's config name; it is exported back as one 3-D ONNX Conv. PyTorch's
// outputs in every engine: tests/runtime/cnn_fixture_test.cc (tests/fixtures/nd/conv3d_net_*).
TEST(ImportConv3d, IsAnIm2ColThenAConvOfKernelWidthThenAView) {
  ModelBuilder b(13, {-1, 4, 5, 6, 7});
  b.init<float>("w", {6, 2, 3, 2, 3}, std::vector<float>(6 * 2 * 3 * 2 * 3, 0.5f));
  b.init<float>("b", {6}, std::vector<float>(6, 1.0f));
  auto& n = b.node("Conv", {"x", "w", "b"}, {"y"}, "/conv/Conv");
  set_ints(n, "strides", {2, 1, 2});
  set_ints(n, "dilations", {1, 2, 1});
  set_ints(n, "pads", {1, 0, 1, 1, 0, 0});
  set_int(n, "group", 2);
  b.output("y", 5);
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  using K = ir::OpKind;
  ASSERT_EQ(kinds(g), (std::vector<K>{K::kIm2Col3d, K::kConv, K::kReshape}));
  const auto& ia = std::get<ir::Im2Col3dAttrs>(g.nodes()[0].attrs);
  EXPECT_EQ(ia.kernel, (std::array<int64_t, 2>{3, 2}));
  EXPECT_EQ(ia.strides, (std::array<int64_t, 2>{2, 1}));
  EXPECT_EQ(ia.dilations, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(ia.pads, (std::array<int64_t, 4>{1, 0, 1, 0}));
  const ir::Node& conv = g.nodes()[1];
  const auto& ca = std::get<ir::ConvAttrs>(conv.attrs);
  EXPECT_EQ(ca.kernel, (std::array<int64_t, 2>{1, 3}));
  EXPECT_EQ(ca.strides, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(ca.pads, (std::array<int64_t, 4>{0, 1, 0, 0}));
  EXPECT_EQ(ca.group, 2);
  EXPECT_EQ(g.value(conv.inputs[1]).shape, (Shape{6, 2 * 3 * 2, 1, 3}));
  EXPECT_EQ(ir::mase_op(g, conv), "conv3d");
  EXPECT_EQ(conv.config_name, "conv");
  // D: (5 + 2 - 3) / 2 + 1 = 3; H: (6 - 2 - 1) + 1 = 4; W: (7 + 1 - 3) / 2 + 1 = 3
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 6, 3, 4, 3}));
  EXPECT_EQ(g.value(conv.outputs[0]).shape, (Shape{kDynamic, 6, 12, 3}));
  // Exported as one 3-D ONNX Conv, it imports back to the same nodes, attributes and weights.
  const ir::Graph back = import_model_bytes(export_model_bytes(g, 13), "back.onnx");
  ASSERT_EQ(kinds(back), kinds(g));
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    EXPECT_EQ(back.nodes()[k].attrs, g.nodes()[k].attrs) << k;
    EXPECT_EQ(back.nodes()[k].config_name, g.nodes()[k].config_name) << k;
  }
  EXPECT_EQ(back.value(back.nodes()[1].inputs[1]).shape, (Shape{6, 2 * 3 * 2, 1, 3}));
  EXPECT_EQ(back.value(back.outputs()[0]).shape, (Shape{kDynamic, 6, 3, 4, 3}));
  // An Im2Col3d that is not an imported 3-D Conv's start (its Conv also a graph output) is
  // refused naming the pattern.
  ir::Graph g2 = g;
  g2.mark_output(g2.nodes()[1].outputs[0]);
  g2.finalize();
  try {
    export_model_bytes(g2, 13);
    ADD_FAILURE() << "exported";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is not the start of an imported 3-D Conv"));
  }
}

}  // namespace
}  // namespace qsearch::onnx

namespace qsearch::onnx {
namespace {

// 1-D ConvTranspose (src/onnx/import_conv_transpose_nd.cc): Reshape -> ConvTranspose (1, k) ->
// Reshape; the ConvTranspose keeps the module's config name. A 3-D one stays refused. PyTorch's
// outputs in every engine: tests/runtime/cnn_fixture_test.cc (tests/fixtures/nd/convt1d_net_*).
ModelBuilder conv_transpose(std::vector<int64_t> x, std::vector<int64_t> w, pb::NodeProto** n) {
  ModelBuilder b(13, x);
  int64_t numel = 1;
  for (int64_t d : w) numel *= d;
  b.init<float>("w", w, std::vector<float>(numel, 0.5f));
  b.init<float>("b", {w[1] * 2}, std::vector<float>(w[1] * 2, 1.0f));
  *n = &b.node("ConvTranspose", {"x", "w", "b"}, {"y"}, "/up/ConvTranspose");
  b.output("y", static_cast<int>(x.size()));
  return b;
}

TEST(ImportConvTranspose1d, IsTheTwoDimensionalOneOfHeightOneBetweenViews) {
  pb::NodeProto* n = nullptr;
  ModelBuilder b = conv_transpose({-1, 4, 10}, {4, 3, 3}, &n);
  set_ints(*n, "kernel_shape", {3});
  set_ints(*n, "strides", {2});
  set_ints(*n, "pads", {1, 0});
  set_ints(*n, "output_padding", {1});
  set_int(*n, "group", 2);
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  using K = ir::OpKind;
  ASSERT_EQ(kinds(g), (std::vector<K>{K::kReshape, K::kConvTranspose, K::kReshape}));
  const ir::Node& ct = g.nodes()[1];
  const auto& a = std::get<ir::ConvTransposeAttrs>(ct.attrs);
  EXPECT_EQ(a.kernel, (std::array<int64_t, 2>{1, 3}));
  EXPECT_EQ(a.strides, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(a.pads, (std::array<int64_t, 4>{0, 1, 0, 0}));
  EXPECT_EQ(a.output_padding, (std::array<int64_t, 2>{0, 1}));
  EXPECT_EQ(a.group, 2);
  EXPECT_EQ(g.value(ct.inputs[1]).shape, (Shape{4, 3, 1, 3}));
  EXPECT_EQ(ct.config_name, "up");
  EXPECT_EQ(g.nodes()[0].config_name.find("up/"), std::string::npos);
  // 2 * (10 - 1) + 1 + (3 - 1) + 1 - 1 - 0 = 21 over 3 * group channels
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 6, 21}));
  // Exported as the 2-D op between Reshapes, it imports back to the same graph.
  const ir::Graph back = import_model_bytes(export_model_bytes(g, 13), "back.onnx");
  EXPECT_EQ(kinds(back), kinds(g));
  EXPECT_EQ(back.value(back.outputs()[0]).shape, (Shape{kDynamic, 6, 21}));
}

TEST(ImportConvTranspose1d, BadAttributesAndThreeDimensionsAreRefused) {
  pb::NodeProto* n = nullptr;
  {
    ModelBuilder b = conv_transpose({-1, 4, 10}, {4, 3, 3}, &n);
    set_ints(*n, "strides", {2, 2});
    EXPECT_THAT(error_of(b),
                HasSubstr("attribute 'strides' has 2 values; a 1-D ConvTranspose needs 1"));
  }
  {
    ModelBuilder b = conv_transpose({-1, 4, 10}, {4, 3, 3}, &n);
    set_string(*n, "auto_pad", "SAME_UPPER");
    EXPECT_THAT(error_of(b), HasSubstr("auto_pad 'SAME_UPPER' is not supported"));
  }
  {
    ModelBuilder b = conv_transpose({-1, 4, 5, 10}, {4, 3, 3}, &n);
    EXPECT_THAT(error_of(b), HasSubstr("a 1-D ConvTranspose (weight [4, 3, 3]) needs an NCL"));
  }
  {
    ModelBuilder b = conv_transpose({-1, 5, 10}, {4, 3, 3}, &n);
    EXPECT_THAT(error_of(b), HasSubstr("input has 5 channels, weight [4, 3, 3] expects 4"));
  }
  {
    ModelBuilder b = conv_transpose({-1, 4, 3, 5, 6}, {4, 3, 2, 2, 2}, &n);
    EXPECT_THAT(error_of(b), HasSubstr("qsearch supports 1-D and 2-D transposed convolution only"));
  }
}

}  // namespace
}  // namespace qsearch::onnx
