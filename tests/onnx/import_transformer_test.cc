// Issue 11, transformer operators at import: each new op's conversion (Erf, Sqrt, Exp, Neg, Pow,
// ReduceMean/Sum/Max, LayerNormalization, Gather/Slice/Split/Unsqueeze/Squeeze/Cast/Expand of
// activations, Equal/Where of shape tensors), and the LayerNorm / GELU fusions: PyTorch's
// patterns become one node, a near miss keeps its nodes and still runs with the same math.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/importer.h"
#include "onnx/model_builder.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;
using testing::set_float;
using testing::set_int;
using testing::set_ints;

std::vector<ir::OpKind> kinds(const ir::Graph& g) {
  std::vector<ir::OpKind> k;
  for (const ir::Node& n : g.nodes()) k.push_back(n.kind);
  return k;
}

// Runs g in float mode on a [batch, ...] input of the graph's shape with values from `seed`.
Tensor run(const ir::Graph& g, int64_t batch, uint64_t seed, bool reference = false) {
  runtime::PlanOptions o;
  o.mode = runtime::Mode::kFloat;
  o.max_batch = batch;
  o.use_reference_kernels = reference;
  auto plan = runtime::make_plan(g, o);
  Shape s = g.value(g.inputs()[0]).shape;
  s[0] = batch;
  Tensor x(s, DType::kFloat32);
  uint64_t state = seed;
  for (float& v : x.span<float>()) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 11) / 9007199254740992.0 * 6.0 - 3.0);
  }
  runtime::Executor e(plan);
  return e.run(x).clone();
}

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i],
                tol * std::max(1.0, std::fabs(static_cast<double>(b.data<float>()[i]))))
        << i;
  }
}

TEST(ImportTransformer, UnaryOpsAndPowBecomeIrOps) {
  ModelBuilder b(13, {-1, 6});
  b.init("two", {}, std::vector<float>{2.0f});
  b.node("Erf", {"x"}, {"e"}, "/Erf");
  b.node("Exp", {"e"}, {"x1"}, "/Exp");
  b.node("Sqrt", {"x1"}, {"s"}, "/Sqrt");
  b.node("Neg", {"s"}, {"n"}, "/Neg");
  b.node("Pow", {"n", "two"}, {"y"}, "/Pow");
  b.output("y");
  const ir::Graph g = import_model_bytes(b.bytes(), "unary.onnx");
  EXPECT_EQ(kinds(g),
            (std::vector<ir::OpKind>{ir::OpKind::kErf, ir::OpKind::kExp, ir::OpKind::kSqrt,
                                     ir::OpKind::kNeg, ir::OpKind::kPow}));
  const Tensor fast = run(g, 3, 1), ref = run(g, 3, 1, true);
  expect_close(fast, ref, 1e-6);
  Tensor x = run(g, 3, 1);  // y = (-sqrt(exp(erf(x))))^2 = exp(erf(x)) > 0
  for (float v : x.span<float>()) EXPECT_GT(v, 0.0f);
}

TEST(ImportTransformer, ConstantUnaryOpsFold) {
  ModelBuilder b(13, {-1, 2});
  b.init("c", {2}, std::vector<float>{4.0f, 9.0f});
  b.node("Sqrt", {"c"}, {"s"}, "/Sqrt");
  b.node("Neg", {"s"}, {"n"}, "/Neg");
  b.node("Add", {"x", "n"}, {"y"}, "/Add");
  b.output("y");
  const ir::Graph g = import_model_bytes(b.bytes(), "fold.onnx");
  ASSERT_EQ(g.nodes().size(), 1u);
  const Tensor& c = g.value(g.nodes()[0].inputs[1]).data;
  EXPECT_EQ(c.data<float>()[0], -2.0f);
  EXPECT_EQ(c.data<float>()[1], -3.0f);
}

TEST(ImportTransformer, ReductionsKeepAxesAndKeepdims) {
  for (int opset : {13, 17}) {
    ModelBuilder b(opset, {-1, 3, 4});
    set_ints(b.node("ReduceMean", {"x"}, {"m"}, "/ReduceMean"), "axes", {-1});
    auto& mx = b.node("ReduceMax", {"x"}, {"mx"}, "/ReduceMax");
    set_ints(mx, "axes", {1});
    set_int(mx, "keepdims", 0);
    b.constant("ax", {1}, {1});
    b.node("ReduceSum", {"x", "ax"}, {"s"}, "/ReduceSum");
    b.node("Add", {"m", "s"}, {"y"}, "/Add");  // [N,3,1] + [N,1,4]
    b.output("y", 3);
    b.output("mx", 2);
    const ir::Graph g = import_model_bytes(b.bytes(), "reduce.onnx");
    ASSERT_EQ(g.nodes().size(), 4u);
    const auto& a = std::get<ir::ReduceAttrs>(g.nodes()[1].attrs);
    EXPECT_EQ(a.axes, std::vector<int64_t>{1});
    EXPECT_FALSE(a.keepdims);
    EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 3, 4}));
    EXPECT_EQ(g.value(g.outputs()[1]).shape, (Shape{kDynamic, 4}));
    expect_close(run(g, 2, 5), run(g, 2, 5, true), 1e-6);
  }
}

TEST(ImportTransformer, ReductionOverSplitAxesRunsAndOverTheBatchIsRefused) {
  // Axes that are not one run (1 and 3 of [N, 3, 4, 5]), keepdims 0 and 1: the fast and the
  // reference plans agree and equal the sums computed here.
  for (int keepdims : {0, 1}) {
    SCOPED_TRACE(keepdims);
    ModelBuilder b(11, {-1, 3, 4, 5});  // axes as an attribute
    auto& n = b.node("ReduceSum", {"x"}, {"y"}, "/ReduceSum");
    set_ints(n, "axes", {3, -3});
    set_int(n, "keepdims", keepdims);
    b.output("y", keepdims ? 4 : 2);
    const ir::Graph g = import_model_bytes(b.bytes(), "split.onnx");
    EXPECT_EQ(g.value(g.outputs()[0]).shape,
              keepdims ? (Shape{kDynamic, 1, 4, 1}) : (Shape{kDynamic, 4}));
    const Tensor y = run(g, 2, 9), yr = run(g, 2, 9, true);
    expect_close(y, yr, 1e-6);
    // The input run() made, recomputed: the sum over dims 1 and 3 of each (n, h).
    Tensor x({2, 3, 4, 5}, DType::kFloat32);
    uint64_t state = 9;
    for (float& v : x.span<float>()) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>(static_cast<double>(state >> 11) / 9007199254740992.0 * 6.0 - 3.0);
    }
    for (int64_t s = 0; s < 2; ++s) {
      for (int64_t h = 0; h < 4; ++h) {
        double sum = 0;
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t w = 0; w < 5; ++w) sum += x.data<float>()[((s * 3 + c) * 4 + h) * 5 + w];
        }
        EXPECT_NEAR(y.data<float>()[s * 4 + h], sum, 1e-4);
      }
    }
  }
  ModelBuilder b(13, {-1, 3, 4});
  set_ints(b.node("ReduceMean", {"x"}, {"y"}, "/ReduceMean"), "axes", {0, 2});
  b.output("y", 3);
  try {
    import_model_bytes(b.bytes(), "bad.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not grow with the batch"), std::string::npos)
        << e.what();
  }
}

TEST(ImportTransformer, LayerNormalizationOpset17) {
  ModelBuilder b(17, {-1, 5, 8});
  b.init("g", {8}, std::vector<float>(8, 1.5f));
  b.init("b", {8}, std::vector<float>(8, 0.25f));
  auto& n = b.node("LayerNormalization", {"x", "g", "b"}, {"y"}, "/ln/LayerNormalization");
  set_int(n, "axis", -1);
  set_float(n, "epsilon", 1e-5f);
  b.output("y", 3);
  const ir::Graph g = import_model_bytes(b.bytes(), "ln.onnx");
  ASSERT_EQ(kinds(g), std::vector<ir::OpKind>{ir::OpKind::kLayerNorm});
  EXPECT_EQ(g.nodes()[0].config_name, "ln");
  EXPECT_EQ(ir::mase_op(g, g.nodes()[0]), "layer_norm");
  const Tensor y = run(g, 2, 3);
  // Each row has mean 0.25 and (population) variance 1.5^2 up to epsilon.
  for (int64_t r = 0; r < 10; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 8; ++j) mean += y.data<float>()[r * 8 + j] / 8.0;
    for (int j = 0; j < 8; ++j) var += std::pow(y.data<float>()[r * 8 + j] - mean, 2) / 8.0;
    EXPECT_NEAR(mean, 0.25, 1e-5);
    EXPECT_NEAR(var, 2.25, 1e-3);
  }
  expect_close(y, run(g, 2, 3, true), 1e-5);
}

TEST(ImportTransformer, GatherSliceSplitSqueezeCastOfActivations) {
  ModelBuilder b(13, {-1, 6, 4});
  b.constant("i0", {}, {0});
  set_int(b.node("Gather", {"x", "i0"}, {"first"}, "/Gather"), "axis", 1);  // [N, 4]
  b.constant("st", {1}, {1});
  b.constant("en", {1}, {INT64_MAX});
  b.constant("ax", {1}, {1});
  b.constant("sp", {1}, {2});
  b.node("Slice", {"x", "st", "en", "ax", "sp"}, {"odd"}, "/Slice");  // rows 1, 3, 5: [N, 3, 4]
  b.constant("sizes", {2}, {1, 2});
  set_int(b.node("Split", {"odd", "sizes"}, {"s0", "s1"}, "/Split"), "axis", 1);
  b.constant("one", {1}, {1});
  b.node("Squeeze", {"s0", "one"}, {"sq"}, "/Squeeze");  // [N, 4]
  set_int(b.node("Cast", {"sq"}, {"c"}, "/Cast"), "to", 1);
  b.node("Add", {"first", "c"}, {"y"}, "/Add");
  b.node("Unsqueeze", {"y", "one"}, {"u"}, "/Unsqueeze");  // [N, 1, 4]
  set_int(b.node("Concat", {"u", "s1"}, {"cat"}, "/Concat"), "axis", 1);
  b.output("cat", 3);
  const ir::Graph g = import_model_bytes(b.bytes(), "views.onnx");
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 3, 4}));
  Shape in_shape{2, 6, 4};
  const Tensor y = run(g, 2, 9);
  // Recompute from the same input.
  Tensor x(in_shape, DType::kFloat32);
  uint64_t state = 9;
  for (float& v : x.span<float>()) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 11) / 9007199254740992.0 * 6.0 - 3.0);
  }
  auto X = [&](int n, int r, int c) { return x.data<float>()[(n * 6 + r) * 4 + c]; };
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(y.data<float>()[(n * 3 + 0) * 4 + c], X(n, 0, c) + X(n, 1, c));
      EXPECT_EQ(y.data<float>()[(n * 3 + 1) * 4 + c], X(n, 3, c));
      EXPECT_EQ(y.data<float>()[(n * 3 + 2) * 4 + c], X(n, 5, c));
    }
  }
}

TEST(ImportTransformer, ExpandEqualWhereOfShapeTensorsFold) {
  // PyTorch's t.expand(x.size(0), -1): Where(Equal(shape, -1), ones, shape) feeds an Expand; on
  // an activation whose shape already is the target, Expand is the identity.
  ModelBuilder b(13, {-1, 4});
  b.node("Shape", {"x"}, {"shp"}, "/Shape");
  b.constant("neg", {2}, {-1, -1});
  b.node("Equal", {"shp", "neg"}, {"eq"}, "/Equal");
  b.constant("ones", {2}, {1, 1});
  b.node("Where", {"eq", "ones", "shp"}, {"target"}, "/Where");
  b.node("Expand", {"x", "target"}, {"e"}, "/Expand");
  b.node("Relu", {"e"}, {"y"}, "/Relu");
  b.output("y");
  const ir::Graph g = import_model_bytes(b.bytes(), "expand.onnx");
  EXPECT_EQ(kinds(g), std::vector<ir::OpKind>{ir::OpKind::kRelu});
}

// ---- fusion ------------------------------------------------------------------------------------

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/transformer/";

TEST(ImportTransformer, TorchExportsFuseToLayerNormAndGelu) {
  for (int opset : {13, 17}) {
    SCOPED_TRACE(opset);
    const ir::Graph g = import_model(kDir + "vit_opset" + std::to_string(opset) + ".onnx");
    int ln = 0, gelu = 0, gelu_tanh = 0;
    for (const ir::Node& n : g.nodes()) {
      EXPECT_NE(n.kind, ir::OpKind::kErf) << n.name;
      EXPECT_NE(n.kind, ir::OpKind::kSqrt) << n.name;
      EXPECT_NE(n.kind, ir::OpKind::kTanh) << n.name;
      ln += n.kind == ir::OpKind::kLayerNorm;
      if (n.kind == ir::OpKind::kGelu) {
        (std::get<ir::GeluAttrs>(n.attrs).tanh ? gelu_tanh : gelu) += 1;
      }
    }
    EXPECT_EQ(ln, 5);
    EXPECT_EQ(gelu, 1);
    EXPECT_EQ(gelu_tanh, 1);
    ASSERT_NE(g.find_node("blocks_0_ln1"), nullptr);
    EXPECT_EQ(g.find_node("blocks_0_ln1")->kind, ir::OpKind::kLayerNorm);
    ASSERT_NE(g.find_node("blocks_0_gelu"), nullptr);
    EXPECT_EQ(g.find_node("norm")->kind, ir::OpKind::kLayerNorm);
  }
}

// x -> LayerNorm decomposition over the last axis (as torch exports it at opset 13), with
// `exponent` in the Pow and an optional extra reader of the centred value.
std::string layer_norm_model(float exponent, bool leak) {
  ModelBuilder b(13, {-1, 3, 8});
  b.init("two", {}, std::vector<float>{exponent});
  b.init("eps", {}, std::vector<float>{1e-5f});
  std::vector<float> gamma(8), beta(8);
  for (int j = 0; j < 8; ++j) gamma[j] = 0.5f + 0.1f * j, beta[j] = 0.05f * j - 0.2f;
  b.init("gamma", {8}, gamma);
  b.init("beta", {8}, beta);
  set_ints(b.node("ReduceMean", {"x"}, {"m"}, "/ln/ReduceMean"), "axes", {-1});
  b.node("Sub", {"x", "m"}, {"d"}, "/ln/Sub");
  b.node("Pow", {"d", "two"}, {"p"}, "/ln/Pow");
  set_ints(b.node("ReduceMean", {"p"}, {"v"}, "/ln/ReduceMean_1"), "axes", {-1});
  b.node("Add", {"v", "eps"}, {"ve"}, "/ln/Add");
  b.node("Sqrt", {"ve"}, {"s"}, "/ln/Sqrt");
  b.node("Div", {"d", "s"}, {"n"}, "/ln/Div");
  b.node("Mul", {"n", "gamma"}, {"ng"}, "/ln/Mul");
  b.node("Add", {"ng", "beta"}, {"y"}, "/ln/Add_1");
  b.output("y", 3);
  if (leak) {
    b.node("Relu", {"d"}, {"r"}, "/Relu");
    b.output("r", 3);
  }
  return b.bytes();
}

TEST(ImportTransformer, LayerNormPatternIsFusedAndComputesTheSame) {
  const ir::Graph g = import_model_bytes(layer_norm_model(2.0f, false), "ln13.onnx");
  ASSERT_EQ(kinds(g), std::vector<ir::OpKind>{ir::OpKind::kLayerNorm});
  EXPECT_EQ(g.nodes()[0].config_name, "ln");
  EXPECT_EQ(std::get<ir::LayerNormAttrs>(g.nodes()[0].attrs).axis, -1);
  EXPECT_FLOAT_EQ(std::get<ir::LayerNormAttrs>(g.nodes()[0].attrs).epsilon, 1e-5f);
  // The same decomposition with the centred value also read elsewhere is a near miss: every node
  // stays, and the LayerNorm part computes the fused op's values.
  const ir::Graph leak = import_model_bytes(layer_norm_model(2.0f, true), "leak.onnx");
  EXPECT_EQ(leak.nodes().size(), 10u);
  const Tensor fused = run(g, 2, 4);
  runtime::PlanOptions o;
  o.mode = runtime::Mode::kFloat;
  o.max_batch = 2;
  auto plan = runtime::make_plan(leak, o);
  Tensor x({2, 3, 8}, DType::kFloat32);
  uint64_t state = 4;
  for (float& v : x.span<float>()) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 11) / 9007199254740992.0 * 6.0 - 3.0);
  }
  runtime::Executor e(plan);
  const Tensor unfused = e.run(x).clone();
  expect_close(fused, unfused, 1e-5);
}

TEST(ImportTransformer, LayerNormNearMissWithAnotherExponentIsNotFused) {
  // x^4: a variance-like positive statistic, but not LayerNorm.
  const ir::Graph g = import_model_bytes(layer_norm_model(4.0f, false), "ln4.onnx");
  EXPECT_EQ(g.nodes().size(), 9u);
  for (const ir::Node& n : g.nodes()) EXPECT_NE(n.kind, ir::OpKind::kLayerNorm);
  expect_close(run(g, 2, 6), run(g, 2, 6, true), 1e-5);
}

std::string gelu_model(float half, bool tanh) {
  ModelBuilder b(13, {-1, 40});
  b.init("one", {}, std::vector<float>{1.0f});
  b.init("half", {}, std::vector<float>{half});
  if (!tanh) {
    b.init("sqrt2", {}, std::vector<float>{1.4142135381698608f});
    b.node("Div", {"x", "sqrt2"}, {"a"}, "/act/Div");
    b.node("Erf", {"a"}, {"e"}, "/act/Erf");
  } else {
    b.init("c", {}, std::vector<float>{0.044715f});
    b.init("k", {}, std::vector<float>{0.7978845834732056f});
    b.node("Mul", {"x", "x"}, {"x2"}, "/act/Mul");
    b.node("Mul", {"x", "x2"}, {"x3"}, "/act/Mul_1");
    b.node("Mul", {"c", "x3"}, {"cx3"}, "/act/Mul_2");
    b.node("Add", {"x", "cx3"}, {"u"}, "/act/Add");
    b.node("Mul", {"k", "u"}, {"w"}, "/act/Mul_3");
    b.node("Tanh", {"w"}, {"e"}, "/act/Tanh");
  }
  b.node("Add", {"e", "one"}, {"t"}, "/act/Add_1");
  b.node("Mul", {"x", "t"}, {"xt"}, "/act/Mul_4");
  b.node("Mul", {"xt", "half"}, {"y"}, "/act/Mul_5");
  b.output("y");
  return b.bytes();
}

TEST(ImportTransformer, GeluPatternsAreFusedAndComputeGelu) {
  for (bool tanh : {false, true}) {
    SCOPED_TRACE(tanh);
    const ir::Graph g = import_model_bytes(gelu_model(0.5f, tanh), "gelu.onnx");
    ASSERT_EQ(kinds(g), std::vector<ir::OpKind>{ir::OpKind::kGelu});
    EXPECT_EQ(std::get<ir::GeluAttrs>(g.nodes()[0].attrs).tanh, tanh);
    EXPECT_EQ(g.nodes()[0].config_name, "act");
    EXPECT_EQ(ir::mase_op(g, g.nodes()[0]), "gelu");
    // A near miss (0.6 instead of 0.5) keeps its nodes; with 0.5 / 0.6 rescaling it equals GELU.
    const ir::Graph miss = import_model_bytes(gelu_model(0.6f, tanh), "miss.onnx");
    EXPECT_EQ(miss.nodes().size(), tanh ? 9u : 5u);
    for (const ir::Node& n : miss.nodes()) EXPECT_NE(n.kind, ir::OpKind::kGelu);
    const Tensor fused = run(g, 3, 8), unfused = run(miss, 3, 8);
    for (int64_t i = 0; i < fused.numel(); ++i) {
      EXPECT_NEAR(unfused.data<float>()[i] * (0.5f / 0.6f), fused.data<float>()[i], 1e-5);
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx

namespace qsearch::onnx {
namespace {

// docs/onnx.md prints the operator list: every ir op and every op the importer accepts has a row
// whose first cell names it ("| Add, Sub, Mul, Div | ...").
TEST(ImportTransformer, DocsListEveryOperator) {
  std::ifstream in(std::string(QSEARCH_SOURCE_DIR) + "/docs/onnx.md");
  ASSERT_TRUE(in.good());
  std::set<std::string> documented;
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] != '|') continue;
    const std::string cell = line.substr(1, line.find('|', 1) - 1);
    std::stringstream tokens(cell);
    std::string tok;
    while (std::getline(tokens, tok, ',')) {
      std::stringstream words(tok);
      std::string word;
      words >> word;
      documented.insert(word);
    }
  }
  for (ir::OpKind k : ir::all_ops()) {
    EXPECT_TRUE(documented.count(std::string(ir::op_name(k)))) << ir::op_name(k);
  }
  for (const std::string& op : detail::supported_ops()) {
    const std::string name = op.substr(0, op.find(' '));
    EXPECT_TRUE(documented.count(name)) << name;
  }
}

}  // namespace
}  // namespace qsearch::onnx
