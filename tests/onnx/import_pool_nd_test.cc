// 1-D and 3-D MaxPool / AveragePool (issue 14; src/onnx/import_pool_nd.cc): imported as the ir's
// 2-D pools between views; their attributes checked per spatial dim. PyTorch's outputs are
// checked in every engine by tests/runtime/cnn_fixture_test.cc (tests/fixtures/nd/).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "ir/fold_batch_norm.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

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
// Reshape; the ConvTranspose keeps the module's config name. PyTorch's
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

TEST(ImportConvTranspose1d, BadAttributesAndFourDimensionsAreRefused) {
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
    ModelBuilder b = conv_transpose({-1, 4, 3, 5, 6, 2}, {4, 3, 2, 2, 2, 2}, &n);
    EXPECT_THAT(error_of(b),
                HasSubstr("qsearch supports 1-D, 2-D and 3-D transposed convolution only"));
  }
}

// 3-D ConvTranspose (import_conv_transpose_nd.cc): a transposed Im2Col3d -> ConvTranspose (1, kW)
// by the weight rearranged as [C * kD * kH, M/group, 1, kW] -> a view; MASE op convtranspose3d,
// the module's config name; ONNX export refused naming it. PyTorch's outputs in every engine:
// tests/runtime/cnn_fixture_test.cc (tests/fixtures/nd/convt3d_net_*).
TEST(ImportConvTranspose3d, IsATransposedIm2ColThenAConvTransposeOfKernelWidthThenAView) {
  pb::NodeProto* n = nullptr;
  ModelBuilder b(13, {-1, 4, 3, 5, 6});
  std::vector<float> wv(4 * 3 * 2 * 3 * 2);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = static_cast<float>(i);
  b.init<float>("w", {4, 3, 2, 3, 2}, wv);
  b.init<float>("b", {6}, std::vector<float>(6, 1.0f));
  n = &b.node("ConvTranspose", {"x", "w", "b"}, {"y"}, "/up/ConvTranspose");
  set_ints(*n, "strides", {2, 1, 2});
  set_ints(*n, "dilations", {1, 2, 1});
  set_ints(*n, "pads", {1, 0, 1, 0, 2, 0});
  set_ints(*n, "output_padding", {1, 0, 1});
  set_int(*n, "group", 2);
  b.output("y", 5);
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  using K = ir::OpKind;
  ASSERT_EQ(kinds(g), (std::vector<K>{K::kIm2Col3d, K::kConvTranspose, K::kReshape}));
  const auto& ia = std::get<ir::Im2Col3dAttrs>(g.nodes()[0].attrs);
  EXPECT_TRUE(ia.transposed);
  EXPECT_EQ(ia.kernel, (std::array<int64_t, 2>{2, 3}));
  EXPECT_EQ(ia.strides, (std::array<int64_t, 2>{2, 1}));
  EXPECT_EQ(ia.dilations, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(ia.pads, (std::array<int64_t, 4>{1, 0, 0, 2}));
  EXPECT_EQ(ia.output_padding, (std::array<int64_t, 2>{1, 0}));
  const ir::Node& ct = g.nodes()[1];
  const auto& a = std::get<ir::ConvTransposeAttrs>(ct.attrs);
  EXPECT_EQ(a.kernel, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(a.strides, (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(a.pads, (std::array<int64_t, 4>{0, 1, 0, 0}));
  EXPECT_EQ(a.output_padding, (std::array<int64_t, 2>{0, 1}));
  EXPECT_EQ(a.group, 2);
  // Row (c * kD + i) * kH + r, column j, tap t holds w[c, j, i, r, t].
  const Tensor& w2 = g.value(ct.inputs[1]).data;
  ASSERT_EQ(w2.shape(), (Shape{4 * 2 * 3, 3, 1, 2}));
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t i = 0; i < 2; ++i) {
        for (int64_t r = 0; r < 3; ++r) {
          for (int64_t t = 0; t < 2; ++t) {
            EXPECT_EQ(w2.data<float>()[(((c * 2 + i) * 3 + r) * 3 + j) * 2 + t],
                      wv[(((c * 3 + j) * 2 + i) * 3 + r) * 2 + t]);
          }
        }
      }
    }
  }
  EXPECT_EQ(ir::mase_op(g, ct), "convtranspose3d");
  EXPECT_EQ(ct.config_name, "up");
  // D: 2 * 2 + 1 + 1 + 1 - 1 - 0 = 6; H: 4 + 0 + 4 + 1 - 0 - 2 = 7; W: 2 * 5 + 1 + 1 + 1 - 1 = 12
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 6, 6, 7, 12}));
  // MACs: the 3-D input's elements x kD x kH x (M / group) x kW, not the gathered zeros.
  EXPECT_EQ(ir::macs_per_sample(g, ct), 4 * 3 * 5 * 6 * 2 * 3 * 3 * 2);
  // Exported as one 3-D ConvTranspose (export.cc), imported back as the same three nodes
  // (QonnxExport.ConvTranspose3dIsWrittenBackAsThreeDimensionalConvTransposes: the fixtures).
  const ir::Graph back = import_model_bytes(export_model_bytes(g, 13), "convt3d.onnx");
  ASSERT_EQ(back.nodes().size(), g.nodes().size());
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    EXPECT_EQ(back.nodes()[k].kind, g.nodes()[k].kind) << k;
    EXPECT_EQ(back.nodes()[k].attrs, g.nodes()[k].attrs) << k;
  }
  {
    ModelBuilder e = conv_transpose({-1, 4, 3, 5, 6}, {4, 3, 2, 2, 2}, &n);
    set_ints(*n, "strides", {2, 2});
    EXPECT_THAT(error_of(e),
                HasSubstr("attribute 'strides' has 2 values; a 3-D ConvTranspose needs 3"));
  }
  {
    ModelBuilder e = conv_transpose({-1, 4, 3, 5, 6}, {4, 3, 2, 2, 2}, &n);
    set_ints(*n, "pads", {2, 0, 0, 0, 0, 0});
    EXPECT_THAT(error_of(e), HasSubstr("pads 2 exceed dilation * (kernel - 1) = 1"));
  }
  {
    ModelBuilder e = conv_transpose({-1, 4, 3, 5, 6}, {4, 3, 2, 2, 2}, &n);
    set_ints(*n, "output_padding", {0, 1, 0});
    EXPECT_THAT(error_of(e), HasSubstr("output_padding must be below max(stride, dilation)"));
  }
}

// BatchNormalization after a (grouped) 3-D ConvTranspose folds into its rearranged weight
// [C * kD * kH, M/g, 1, kW] through the view (ir::fold_batch_norm), giving the kept graph's
// float outputs; each output channel has its own scale, so a wrong channel mapping shows.
TEST(ImportConvTranspose3d, BatchNormAfterItFolds) {
  ModelBuilder b(13, {-1, 4, 3, 4, 3});
  Rng rng(5);
  auto values = [&](size_t n, double lo, double hi) {
    std::vector<float> v(n);
    for (float& e : v) e = static_cast<float>(rng.uniform(lo, hi));
    return v;
  };
  b.init<float>("w", {4, 3, 2, 3, 2}, values(4 * 3 * 2 * 3 * 2, -1, 1));
  b.init<float>("b", {6}, values(6, -0.5, 0.5));
  for (const char* t : {"scale", "bias", "mean", "var"}) {
    b.init<float>(t, {6},
                  values(6, std::string(t) == "bias" || std::string(t) == "mean" ? -1 : 0.3, 2));
  }
  auto& n = b.node("ConvTranspose", {"x", "w", "b"}, {"c"}, "/up/ConvTranspose");
  set_ints(n, "strides", {2, 1, 2});
  set_ints(n, "pads", {1, 1, 0, 0, 1, 1});
  set_int(n, "group", 2);
  b.node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"y"}, "/bn/BatchNorm");
  b.output("y", 5);
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  const ir::BatchNormFold f = ir::fold_batch_norm(g);
  ASSERT_EQ(f.folded.size(), 1u);
  Tensor x({3, 4, 3, 4, 3}, DType::kFloat32);
  for (float& v : x.span<float>()) v = static_cast<float>(rng.uniform(-1, 1));
  auto run = [&](const ir::Graph& graph) {
    runtime::Executor ex(runtime::make_plan(graph, {.max_batch = 3}));
    return ex.run(x).clone();
  };
  const Tensor want = run(g), got = run(f.graph);
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.numel(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i],
                1e-5 * std::max(1.0f, std::fabs(want.data<float>()[i])))
        << i;
  }
}

// Random geometries (strides, dilations, pads, output_padding, groups, with and without bias)
// against the 3-D transposed convolution's definition: float (fast and reference kernels) within
// float rounding; int, with inputs, weights and bias on their formats' grids, equal to the exact
// sum rounded once to float.
TEST(ImportConvTranspose3d, RandomGeometriesEqualTheDefinitionInFloatAndExactlyInInt) {
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    SCOPED_TRACE(seed);
    Rng rng(seed);
    auto pick = [&](int64_t lo, int64_t hi) {
      return lo + static_cast<int64_t>(rng.uniform_int(static_cast<uint64_t>(hi - lo + 1)));
    };
    const int64_t group = pick(1, 2), c = group * pick(1, 2), mg = pick(1, 3);
    std::array<int64_t, 3> in{}, k{}, s{}, d{}, pb{}, pe{}, op{}, out{};
    for (int a = 0; a < 3; ++a) {
      in[a] = pick(1, 4);
      k[a] = pick(1, 3);
      s[a] = pick(1, 2);
      d[a] = pick(1, 2);
      const int64_t span = d[a] * (k[a] - 1);
      pb[a] = pick(0, span);
      pe[a] = pick(0, span);
      op[a] = pick(0, std::max(s[a], d[a]) - 1);
      out[a] = s[a] * (in[a] - 1) + op[a] + span + 1 - pb[a] - pe[a];
      if (out[a] < 1) {  // an empty output is refused; crop at the begin only
        pe[a] = 0;
        out[a] = s[a] * (in[a] - 1) + op[a] + span + 1 - pb[a];
      }
    }
    const bool bias = seed % 3 != 0;
    std::vector<float> w(c * mg * k[0] * k[1] * k[2]), bv(mg * group);
    for (float& v : w) v = static_cast<float>(pick(-40, 40)) / 32;      // s8.5 grid
    for (float& v : bv) v = static_cast<float>(pick(-300, 300)) / 512;  // frac 9 = 4 + 5
    ModelBuilder b(13, {-1, c, in[0], in[1], in[2]});
    b.init<float>("w", {c, mg, k[0], k[1], k[2]}, w);
    std::vector<std::string> ins = {"x", "w"};
    if (bias) {
      b.init<float>("b", {mg * group}, bv);
      ins.push_back("b");
    }
    auto& n = b.node("ConvTranspose", ins, {"y"}, "/up/ConvTranspose");
    set_ints(n, "kernel_shape", {k[0], k[1], k[2]});
    set_ints(n, "strides", {s[0], s[1], s[2]});
    set_ints(n, "dilations", {d[0], d[1], d[2]});
    set_ints(n, "pads", {pb[0], pb[1], pb[2], pe[0], pe[1], pe[2]});
    set_ints(n, "output_padding", {op[0], op[1], op[2]});
    set_int(n, "group", group);
    b.output("y", 5);
    const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
    const int64_t batch = 2, m = mg * group;
    Tensor x({batch, c, in[0], in[1], in[2]}, DType::kFloat32);
    for (float& v : x.span<float>()) v = static_cast<float>(pick(-100, 100)) / 16;  // s8.4 grid
    // y[n, o, z, y, x] += x[n, ci, iz, iy, ix] * w[ci, j, u, v, t], o = ci / (c / group) * mg + j
    std::vector<double> want(batch * m * out[0] * out[1] * out[2]);
    for (int64_t nb = 0; nb < batch; ++nb) {
      for (int64_t o = 0; o < m; ++o) {
        for (int64_t e = 0; e < out[0] * out[1] * out[2]; ++e) {
          want[(nb * m + o) * out[0] * out[1] * out[2] + e] = bias ? bv[o] : 0.0;
        }
      }
      for (int64_t ci = 0; ci < c; ++ci) {
        for (int64_t j = 0; j < mg; ++j) {
          const int64_t o = ci / (c / group) * mg + j;
          for (int64_t iz = 0; iz < in[0]; ++iz) {
            for (int64_t iy = 0; iy < in[1]; ++iy) {
              for (int64_t ix = 0; ix < in[2]; ++ix) {
                const double xv =
                    x.data<float>()[(((nb * c + ci) * in[0] + iz) * in[1] + iy) * in[2] + ix];
                for (int64_t u = 0; u < k[0]; ++u) {
                  const int64_t z = iz * s[0] - pb[0] + u * d[0];
                  if (z < 0 || z >= out[0]) continue;
                  for (int64_t v = 0; v < k[1]; ++v) {
                    const int64_t yy = iy * s[1] - pb[1] + v * d[1];
                    if (yy < 0 || yy >= out[1]) continue;
                    for (int64_t t = 0; t < k[2]; ++t) {
                      const int64_t xx = ix * s[2] - pb[2] + t * d[2];
                      if (xx < 0 || xx >= out[2]) continue;
                      want[(((nb * m + o) * out[0] + z) * out[1] + yy) * out[2] + xx] +=
                          xv * w[(((ci * mg + j) * k[0] + u) * k[1] + v) * k[2] + t];
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    const std::string name = g.nodes()[1].config_name;
    const quant::NodeQuantConfig cfg{.quantized = true,
                                     .data_in = quant::FixedFormat{8, 4, true},
                                     .weight = quant::FixedFormat{8, 5, true},
                                     .bias = quant::FixedFormat{16, 9, true}};
    for (runtime::Mode mode : {runtime::Mode::kFloat, runtime::Mode::kInt}) {
      for (bool reference : {false, true}) {
        runtime::PlanOptions o{
            .mode = mode, .max_batch = batch, .use_reference_kernels = reference};
        if (mode == runtime::Mode::kInt) o.quant = {{name, cfg}};
        runtime::Executor ex(runtime::make_plan(g, o));
        const Tensor& y = ex.run(x);
        ASSERT_EQ(y.shape(), (Shape{batch, m, out[0], out[1], out[2]}));
        for (int64_t i = 0; i < y.numel(); ++i) {
          if (mode == runtime::Mode::kInt) {
            ASSERT_EQ(y.data<float>()[i], static_cast<float>(want[i]))
                << "int ref=" << reference << " i=" << i;
          } else {
            ASSERT_NEAR(y.data<float>()[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i])))
                << "float ref=" << reference << " i=" << i;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
