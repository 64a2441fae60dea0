// Issue 14, "BatchNorm as MASE sees it": ir::fold_batch_norm (the `fold_batch_norm` option).
//   * random Conv (2-D, 1-D, grouped, with and without bias) / Gemm (trans_b both ways, C absent,
//     present, beta != 1) graphs followed by BatchNormalization: the folded graph has no
//     BatchNorm, its weights are W * gamma / sqrt(var + eps) exactly as documented, the input
//     graph is untouched, and the float outputs agree;
//   * random ConvTranspose (grouped, with and without bias) and MatMul-by-a-constant (with and
//     without its bias Add) graphs followed by BatchNormalization fold the same way (a MatMul
//     without a bias becomes a Gemm with one);
//   * every BatchNorm that cannot be folded is kept (after an Add, a conv output read twice or
//     a graph output, a rank-4 MatMul normalized over dim 1, a Gemm with a broadcast C);
//   * tests/fixtures/bn (tools/make_bn_fixtures.py): a ResNet-style model exported with BatchNorm
//     kept. Without folding, fake mode equals PyTorch with MASE's semantics (conv quantized,
//     BatchNorm float); folded, it equals PyTorch with the folded weights then quantized; int
//     equals fake in both; the two semantics differ; folding the PRESERVE export gives the
//     float outputs of PyTorch's own (folded) eval export. The same for linconvt_bn (BatchNorm
//     after ConvTranspose2d, grouped ConvTranspose2d, MatMul + Add, MatMul, Linear), and for
//     tests/fixtures/nd's nd_bn (tools/make_nd_fixtures.py: BatchNorm after Conv3d, grouped
//     Conv3d, Conv1d, ConvTranspose1d and grouped ConvTranspose1d, which the importer writes as
//     2-D convs followed by a view);
//   * a Reshape between the conv and the BatchNorm is looked through when it keeps dims 0 and 1
//     (each sample's channel blocks), and only then.
#include "ir/fold_batch_norm.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "onnx/import.h"
#include "runtime/runtime_test_util.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

using ir::OpKind;
using testing::GraphMaker;
using testing::random_tensor;

int count_kind(const ir::Graph& g, OpKind k) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += node.kind == k;
  return n;
}

// A BatchNormalization after `x` with `c` channels and seeded random parameters.
ir::ValueId batch_norm(GraphMaker& m, ir::ValueId x, int64_t c, uint64_t seed, float eps) {
  const ir::ValueId scale = m.constant({c}, seed, 0.5f, 1.5f);
  const ir::ValueId bias = m.constant({c}, seed + 1, -0.3f, 0.3f);
  const ir::ValueId mean = m.constant({c}, seed + 2, -0.4f, 0.4f);
  const ir::ValueId var = m.constant({c}, seed + 3, 0.2f, 2.0f);
  return m.op(OpKind::kBatchNorm, {x, scale, bias, mean, var}, ir::BatchNormAttrs{.epsilon = eps});
}

TEST(FoldBatchNorm, ConvAndGemmFoldIntoTheirWeightsAndKeepTheFloatOutputs) {
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    SCOPED_TRACE(seed);
    Rng rng(seed);
    const bool conv1d = seed % 3 == 0, conv_bias = seed % 2 == 0, trans_b = seed % 4 < 2;
    const int64_t group = seed % 5 == 0 ? 2 : 1, cin = 4, c = 6, k = 3;
    const int gemm_c = static_cast<int>(seed % 3);  // 0: no C, 1: C with beta 1, 2: beta 0.5
    const float eps = seed % 2 ? 1e-5f : 1e-3f;
    GraphMaker m(conv1d ? Shape{kDynamic, cin, 9} : Shape{kDynamic, cin, 7, 7});
    ir::ConvAttrs ca{.kernel = {conv1d ? 1 : k, k},
                     .pads = {conv1d ? 0 : 1, 1, conv1d ? 0 : 1, 1},
                     .group = group};
    const Shape ws = conv1d ? Shape{c, cin / group, k} : Shape{c, cin / group, k, k};
    std::vector<ir::ValueId> conv_in = {m.input(), m.constant(ws, seed * 10)};
    if (conv_bias) conv_in.push_back(m.constant({c}, seed * 10 + 1));
    ir::ValueId y = m.op(OpKind::kConv, conv_in, ca);
    y = batch_norm(m, y, c, seed * 100, eps);
    y = m.op(OpKind::kRelu, {y});
    if (conv1d) {
      y = m.op(OpKind::kReduceMean, {y}, ir::ReduceAttrs{.axes = {2}, .keepdims = false});
    } else {
      y = m.op(OpKind::kGlobalAveragePool, {y});
      y = m.op(OpKind::kFlatten, {y}, ir::AxisAttrs{.axis = 1});
    }
    const int64_t n_out = 5;
    std::vector<ir::ValueId> gemm_in = {
        y, m.constant(trans_b ? Shape{n_out, c} : Shape{c, n_out}, seed * 10 + 2)};
    if (gemm_c) gemm_in.push_back(m.constant({n_out}, seed * 10 + 3));
    y = m.op(OpKind::kGemm, gemm_in,
             ir::GemmAttrs{.alpha = 1.25f, .beta = gemm_c == 2 ? 0.5f : 1.0f, .trans_b = trans_b});
    y = batch_norm(m, y, n_out, seed * 200, eps);
    const ir::Graph g = m.finish(y);
    ASSERT_EQ(count_kind(g, OpKind::kBatchNorm), 2);
    const Tensor w_before = g.value(g.nodes()[0].inputs[1]).data.clone();

    const ir::BatchNormFold f = ir::fold_batch_norm(g);
    EXPECT_EQ(f.folded.size(), 2u);
    EXPECT_TRUE(f.kept.empty());
    EXPECT_EQ(count_kind(f.graph, OpKind::kBatchNorm), 0);
    EXPECT_EQ(f.graph.nodes().size(), g.nodes().size() - 2);
    // The input graph is untouched (its constants are shared, never written).
    EXPECT_TRUE(testing::same_bits(g.value(g.nodes()[0].inputs[1]).data, w_before));
    EXPECT_EQ(count_kind(g, OpKind::kBatchNorm), 2);

    // The folded conv weight is W * gamma / sqrt(var + eps), in double, rounded once.
    const ir::Node& bn = g.nodes()[1];
    const ir::Node* conv = nullptr;
    for (const ir::Node& n : f.graph.nodes()) {
      if (n.kind == OpKind::kConv) conv = &n;
    }
    ASSERT_NE(conv, nullptr);
    ASSERT_EQ(conv->inputs.size(), 3u);  // a bias even when the conv had none
    const float* w0 = w_before.data<float>();
    const float* w1 = f.graph.value(conv->inputs[1]).data.data<float>();
    const float* b1 = f.graph.value(conv->inputs[2]).data.data<float>();
    const int64_t per = w_before.numel() / c;
    for (int64_t o = 0; o < c; ++o) {
      const double a =
          g.value(bn.inputs[1]).data.data<float>()[o] /
          std::sqrt(static_cast<double>(g.value(bn.inputs[4]).data.data<float>()[o]) + eps);
      for (int64_t t = 0; t < per; ++t) {
        EXPECT_EQ(w1[o * per + t], static_cast<float>(w0[o * per + t] * a));
      }
      const double b0 = conv_bias ? g.value(g.nodes()[0].inputs[2]).data.data<float>()[o] : 0.0;
      EXPECT_EQ(b1[o], static_cast<float>((b0 - g.value(bn.inputs[3]).data.data<float>()[o]) * a +
                                          g.value(bn.inputs[2]).data.data<float>()[o]));
    }
    const Tensor x = random_tensor(conv1d ? Shape{3, cin, 9} : Shape{3, cin, 7, 7}, seed + 7);
    for (bool reference : {true, false}) {
      const Tensor want = testing::run_graph(g, x, reference);
      testing::expect_close(testing::run_graph(f.graph, x, reference), want, 1e-5,
                            1e-5 * std::max(1.0, testing::max_abs(want)), "folded vs kept");
    }
  }
}

// Weight element [ci, j, ...] of a ConvTranspose feeds output channel (ci / (C/group)) *
// (M/group) + j; a MatMul's column o is channel o. The float outputs tell any other layout apart
// (every channel has its own scale), and the folded weights are checked element by element.
TEST(FoldBatchNorm, ConvTransposeAndMatMulFoldPerOutputChannel) {
  for (uint64_t seed = 1; seed <= 16; ++seed) {
    SCOPED_TRACE(seed);
    const bool ct_bias = seed % 2 == 0, mm_bias = seed % 4 < 2, bias_2d = seed % 3 == 0;
    const int64_t group = seed % 3 == 1 ? 2 : 1, cin = 4, c = 6, k = 3, n_out = 5;
    GraphMaker m({kDynamic, cin, 4, 4});
    ir::ConvTransposeAttrs ca{
        .kernel = {k, k}, .strides = {seed % 2 ? 2 : 1, 1}, .pads = {1, 1, 1, 1}, .group = group};
    std::vector<ir::ValueId> ct_in = {m.input(), m.constant({cin, c / group, k, k}, seed * 10)};
    if (ct_bias) ct_in.push_back(m.constant({c}, seed * 10 + 1));
    ir::ValueId y = m.op(OpKind::kConvTranspose, ct_in, ca);
    y = batch_norm(m, y, c, seed * 100, 1e-5f);
    y = m.op(OpKind::kRelu, {y});
    y = m.op(OpKind::kGlobalAveragePool, {y});
    y = m.op(OpKind::kFlatten, {y}, ir::AxisAttrs{.axis = 1});
    y = m.op(OpKind::kMatMul, {y, m.constant({c, n_out}, seed * 10 + 2)});
    if (mm_bias) {
      y = m.op(OpKind::kAdd,
               {y, m.constant(bias_2d ? Shape{1, n_out} : Shape{n_out}, seed * 10 + 3)});
    }
    y = batch_norm(m, y, n_out, seed * 200, 1e-3f);
    const ir::Graph g = m.finish(y);
    const ir::BatchNormFold f = ir::fold_batch_norm(g);
    EXPECT_EQ(f.folded.size(), 2u);
    EXPECT_EQ(count_kind(f.graph, OpKind::kBatchNorm), 0);
    // The MatMul without a bias is now a Gemm with one; with its bias Add it stays a MatMul + Add.
    EXPECT_EQ(count_kind(f.graph, OpKind::kMatMul), mm_bias ? 1 : 0);
    EXPECT_EQ(count_kind(f.graph, OpKind::kGemm), mm_bias ? 0 : 1);
    EXPECT_EQ(count_kind(f.graph, OpKind::kAdd), mm_bias ? 1 : 0);
    for (const ir::Node& n : f.graph.nodes()) {
      if (n.kind == OpKind::kGemm || n.kind == OpKind::kMatMul) {
        EXPECT_EQ(ir::mase_op(f.graph, n), "linear");
      }
      if (n.kind == OpKind::kAdd) {
        EXPECT_EQ(ir::mase_op(f.graph, n), "linear_bias");
        EXPECT_EQ(f.graph.value(n.inputs[1]).shape, (bias_2d ? Shape{1, n_out} : Shape{n_out}));
      }
    }
    // ConvTranspose's folded weight, element by element.
    const ir::Node& bn = g.nodes()[1];
    const ir::Node& ct = f.graph.nodes()[0];
    ASSERT_EQ(ct.kind, OpKind::kConvTranspose);
    ASSERT_EQ(ct.inputs.size(), 3u);
    const float* w0 = g.value(g.nodes()[0].inputs[1]).data.data<float>();
    const float* w1 = f.graph.value(ct.inputs[1]).data.data<float>();
    const int64_t per_out = c / group, per_in = cin / group;
    for (int64_t ci = 0; ci < cin; ++ci) {
      for (int64_t j = 0; j < per_out; ++j) {
        const int64_t o = ci / per_in * per_out + j;
        const double a =
            g.value(bn.inputs[1]).data.data<float>()[o] /
            std::sqrt(static_cast<double>(g.value(bn.inputs[4]).data.data<float>()[o]) + 1e-5f);
        for (int64_t t = 0; t < k * k; ++t) {
          const int64_t e = (ci * per_out + j) * k * k + t;
          EXPECT_EQ(w1[e], static_cast<float>(w0[e] * a));
        }
      }
    }
    const Tensor x = random_tensor({3, cin, 4, 4}, seed + 7);
    for (bool reference : {true, false}) {
      const Tensor want = testing::run_graph(g, x, reference);
      testing::expect_close(testing::run_graph(f.graph, x, reference), want, 1e-5,
                            1e-5 * std::max(1.0, testing::max_abs(want)), "folded vs kept");
    }
  }
}

// A conv, then a Reshape keeping the batch and channel dims (what the importer writes after a 3-D
// Conv or a 1-D ConvTranspose), then BatchNorm: the weights are scaled, the view then writes the
// BatchNorm's output. A view that regroups channels, or a conv output also read elsewhere, keeps
// it.
TEST(FoldBatchNorm, LooksThroughAViewThatKeepsTheBatchAndChannelDims) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(seed);
    const bool transpose = seed % 2 == 0, bias = seed % 3 != 0;
    const int64_t group = seed % 4 < 2 ? 2 : 1, cin = 4, c = 6;
    GraphMaker m({kDynamic, cin, transpose ? 1 : 3, 5});
    ir::ValueId y;
    const ir::ValueId w = m.constant(
        transpose ? Shape{cin, c / group, 1, 3} : Shape{c, cin / group, 2, 3}, seed * 10);
    std::vector<ir::ValueId> ins = {m.input(), w};
    if (bias) ins.push_back(m.constant({c}, seed * 10 + 1));
    if (transpose) {
      y = m.op(OpKind::kConvTranspose, ins,
               ir::ConvTransposeAttrs{.kernel = {1, 3}, .strides = {1, 2}, .group = group});
    } else {
      y = m.op(OpKind::kConv, ins, ir::ConvAttrs{.kernel = {2, 3}, .group = group});
    }
    // ConvTranspose: [N, 6, 1, 11] -> [N, 6, 11]; Conv: [N, 6, 2, 3] -> [N, 6, 1, 2, 3].
    const std::vector<int64_t> view =
        transpose ? std::vector<int64_t>{0, c, -1} : std::vector<int64_t>{0, c, 1, 2, 3};
    y = m.op(OpKind::kReshape, {y}, ir::ReshapeAttrs{view});
    y = batch_norm(m, y, c, seed * 100, 1e-5f);
    y = m.op(OpKind::kRelu, {y});
    const ir::Graph g = m.finish(y);
    const ir::BatchNormFold f = ir::fold_batch_norm(g);
    EXPECT_EQ(f.folded.size(), 1u);
    EXPECT_EQ(count_kind(f.graph, OpKind::kBatchNorm), 0);
    EXPECT_EQ(count_kind(f.graph, OpKind::kReshape), 1);
    const Tensor x = random_tensor({3, cin, transpose ? 1 : 3, 5}, seed + 7);
    for (bool reference : {true, false}) {
      const Tensor want = testing::run_graph(g, x, reference);
      testing::expect_close(testing::run_graph(f.graph, x, reference), want, 1e-5,
                            1e-5 * std::max(1.0, testing::max_abs(want)), "folded vs kept");
    }
  }
  // Kept: [N, 6, 2, 5] viewed as [N, 3, 20] (channels 2k and 2k + 1 share a BatchNorm channel);
  // as [N, 6, 10] but the conv's output also read by a Relu; as [N, 6, 10] read twice.
  for (int kase = 0; kase < 3; ++kase) {
    SCOPED_TRACE(kase);
    GraphMaker m({kDynamic, 4, 2, 5});
    const ir::ValueId conv = m.op(OpKind::kConv, {m.input(), m.constant({6, 4, 1, 1}, 5)},
                                  ir::ConvAttrs{.kernel = {1, 1}});
    const int64_t c = kase == 0 ? 3 : 6;
    const ir::ValueId v =
        m.op(OpKind::kReshape, {conv}, ir::ReshapeAttrs{std::vector<int64_t>{0, c, -1}});
    ir::ValueId y = batch_norm(m, v, c, 70, 1e-5f);
    if (kase == 1) {
      const ir::ValueId r = m.op(OpKind::kRelu, {conv});
      y = m.op(OpKind::kAdd,
               {y, m.op(OpKind::kReshape, {r}, ir::ReshapeAttrs{std::vector<int64_t>{0, c, -1}})});
    } else if (kase == 2) {
      y = m.op(OpKind::kAdd, {y, v});
    }
    const ir::Graph g = m.finish(y);
    const ir::BatchNormFold f = ir::fold_batch_norm(g);
    EXPECT_TRUE(f.folded.empty());
    EXPECT_EQ(f.kept.size(), 1u);
    const Tensor x = random_tensor({2, 4, 2, 5}, 9);
    EXPECT_TRUE(
        testing::same_bits(testing::run_graph(f.graph, x, true), testing::run_graph(g, x, true)));
  }
}

TEST(FoldBatchNorm, KeepsEveryBatchNormItCannotFold) {
  GraphMaker m({kDynamic, 4, 5, 5});
  ir::ConvAttrs ca{.kernel = {1, 1}};
  // 1. After an Add (not a conv).
  ir::ValueId a = m.op(OpKind::kConv, {m.input(), m.constant({4, 4, 1, 1}, 1)}, ca);
  ir::ValueId s = m.op(OpKind::kAdd, {a, m.input()});
  ir::ValueId y1 = batch_norm(m, s, 4, 10, 1e-5f);
  // 2. A conv output read by the BatchNorm and by a Relu.
  ir::ValueId b = m.op(OpKind::kConv, {y1, m.constant({4, 4, 1, 1}, 2)}, ca);
  ir::ValueId y2 = batch_norm(m, b, 4, 20, 1e-5f);
  ir::ValueId r = m.op(OpKind::kRelu, {b});
  ir::ValueId y3 = m.op(OpKind::kAdd, {y2, r});
  // 3. A MatMul by a constant [5, 4] on [N, 4, 5, 5]: BatchNorm normalizes dim 1, not the
  // weight's columns (4 channels either way), and a Gemm with a broadcast C.
  ir::ValueId mm = m.op(OpKind::kMatMul, {y3, m.constant({5, 4}, 3)});
  ir::ValueId y4 = batch_norm(m, mm, 4, 30, 1e-5f);
  ir::ValueId p = m.op(OpKind::kGlobalAveragePool, {y4});
  p = m.op(OpKind::kFlatten, {p}, ir::AxisAttrs{.axis = 1});
  ir::ValueId gm = m.op(OpKind::kGemm, {p, m.constant({3, 4}, 4), m.constant({1, 3}, 5)},
                        ir::GemmAttrs{.trans_b = true});
  ir::ValueId y5 = batch_norm(m, gm, 3, 40, 1e-5f);
  const ir::Graph g = m.finish(y5);
  // 4. A conv output that is also a graph output.
  GraphMaker m2({kDynamic, 4, 5, 5});
  ir::ValueId c2 = m2.op(OpKind::kConv, {m2.input(), m2.constant({4, 4, 1, 1}, 6)}, ca);
  ir::ValueId y6 = batch_norm(m2, c2, 4, 50, 1e-5f);
  m2.graph().mark_output(c2);
  const ir::Graph g2 = m2.finish(y6);

  for (const ir::Graph* graph : {&g, &g2}) {
    const ir::BatchNormFold f = ir::fold_batch_norm(*graph);
    EXPECT_TRUE(f.folded.empty());
    EXPECT_EQ(static_cast<int>(f.kept.size()), count_kind(*graph, OpKind::kBatchNorm));
    EXPECT_EQ(f.graph.nodes().size(), graph->nodes().size());
    const Tensor x = random_tensor({2, 4, 5, 5}, 9);
    EXPECT_TRUE(testing::same_bits(testing::run_graph(f.graph, x, true),
                                   testing::run_graph(*graph, x, true)));
  }
}

// ---- the PyTorch fixture -----------------------------------------------------------------

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/bn/";
const std::string kNdDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/nd/";

// bn_ref.json (the ResNet-style model) or linconvt_bn_ref.json; nd_bn_ref.json from kNdDir.
nlohmann::json read_ref(const std::string& file, const std::string& dir = kDir) {
  return test::read_json(dir + file);
}
const nlohmann::json* g_ref = nullptr;  // the fixture the helpers below read

const nlohmann::json& ref() {
  static const nlohmann::json resnet = read_ref("bn_ref.json");
  return g_ref ? *g_ref : resnet;
}

Tensor input() {
  Tensor t(ref().at("input_shape").get<Shape>(), DType::kFloat32);
  const auto v = ref().at("input").get<std::vector<float>>();
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor run(const ir::Graph& g, const Tensor& x, PlanOptions o) {
  o.max_batch = x.dim(0);
  Executor ex(make_plan(g, o));
  return ex.run(x).clone();
}

// The fixture's formats by MASE op type: data_in, weight and bias of every conv2d / linear.
quant::QuantAssignment assignment(const ir::Graph& g) {
  quant::QuantAssignment q;
  const auto& formats = ref().at("formats");
  auto fmt_of = [](const nlohmann::json& j) {
    return quant::FixedFormat{j.at("width").get<int>(), j.at("frac").get<int>(), true};
  };
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (!formats.contains(op)) continue;
    quant::NodeQuantConfig c;
    c.quantized = true;
    c.data_in = fmt_of(formats[op].at("data_in"));
    c.weight = fmt_of(formats[op].at("weight"));
    c.bias = fmt_of(formats[op].at("bias"));
    q[n.config_name] = c;
  }
  return q;
}

// Largest |got - want| / scale (scale = max(1, max |want|)); *beyond counts elements farther
// than 1e-3 * scale.
double worst_rel(const Tensor& got, const std::vector<double>& want, int* beyond) {
  EXPECT_EQ(static_cast<int64_t>(want.size()), got.numel());
  double scale = 1, worst = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  *beyond = 0;
  for (size_t i = 0; i < want.size() && static_cast<int64_t>(i) < got.numel(); ++i) {
    const double d = std::fabs(got.data<float>()[i] - want[i]) / scale;
    worst = std::max(worst, d);
    *beyond += d > 1e-3;
  }
  return worst;
}

std::vector<double> values(const Tensor& t) {
  return {t.span<float>().begin(), t.span<float>().end()};
}

// Mean cross-entropy of logits [N, classes] against the fixture's labels.
double loss(const Tensor& logits) {
  const auto labels = ref().at("labels").get<std::vector<int>>();
  const int64_t n = logits.dim(0), k = logits.dim(1);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data<float>() + i * k;
    double mx = row[0], z = 0;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, static_cast<double>(row[j]));
    for (int64_t j = 0; j < k; ++j) z += std::exp(row[j] - mx);
    sum += mx + std::log(z) - row[labels[i]];
  }
  return sum / n;
}

TEST(BatchNormFixture, FoldingThePreserveExportGivesPyTorchsFloatAndItsEvalExport) {
  const ir::Graph kept = onnx::import_model(kDir + "resnet_bn_preserve.onnx");
  const ir::Graph torch_folded = onnx::import_model(kDir + "resnet_bn_eval.onnx");
  EXPECT_EQ(count_kind(kept, OpKind::kBatchNorm), 6);
  EXPECT_EQ(count_kind(torch_folded, OpKind::kBatchNorm), 2);  // after the add, after the Gemm
  const ir::BatchNormFold f = ir::fold_batch_norm(kept);
  EXPECT_EQ(f.folded.size(), 5u);  // 4 convs and the Gemm
  ASSERT_EQ(f.kept.size(), 1u);    // the BatchNorm after the add
  EXPECT_EQ(count_kind(f.graph, OpKind::kBatchNorm), 1);
  const Tensor x = input();
  const std::vector<double> want = ref().at("float").get<std::vector<double>>();
  int beyond = 0;
  for (const ir::Graph* g : {&kept, &f.graph, &torch_folded}) {
    EXPECT_LE(worst_rel(run(*g, x, {.mode = Mode::kFloat}), want, &beyond), 1e-5);
  }
}

// Fake mode equals PyTorch with MASE's semantics on `kept` and with the folded weights on its
// fold; int equals fake; the two semantics differ. `quantized`: the conv / linear count.
void expect_mase_and_folded_semantics(const ir::Graph& kept, size_t quantized) {
  const ir::Graph folded = ir::fold_batch_norm(kept).graph;
  const Tensor x = input();
  const std::vector<double> mase = ref().at("fake_mase").get<std::vector<double>>();
  const std::vector<double> deploy = ref().at("fake_folded").get<std::vector<double>>();
  // The two semantics give clearly different outputs, so the checks below tell them apart.
  Tensor mase_t({static_cast<int64_t>(mase.size())}, DType::kFloat32);
  for (size_t i = 0; i < mase.size(); ++i) mase_t.data<float>()[i] = static_cast<float>(mase[i]);
  int differ = 0;
  const double apart = worst_rel(mase_t, deploy, &differ);
  std::cout << fmt::format("[ bn ] MASE vs folded (PyTorch): worst {:.2e}, {} of {} beyond 1e-3\n",
                           apart, differ, mase.size());
  ASSERT_GT(differ, static_cast<int>(mase.size() / 4));

  struct Case {
    const char* name;
    const ir::Graph* graph;
    const std::vector<double>* want;
    const char* loss_key;
  };
  for (const Case& c : {Case{"default (MASE)", &kept, &mase, "loss_mase"},
                        Case{"fold_batch_norm", &folded, &deploy, "loss_folded"}}) {
    SCOPED_TRACE(c.name);
    const quant::QuantAssignment q = assignment(*c.graph);
    EXPECT_EQ(q.size(), quantized);
    const Tensor fake = run(*c.graph, x, {.mode = Mode::kFake, .quant = q});
    const Tensor integer = run(*c.graph, x, {.mode = Mode::kInt, .quant = q});
    int fake_beyond = 0, int_beyond = 0;
    const double fake_vs_torch = worst_rel(fake, *c.want, &fake_beyond);
    const double int_vs_fake = worst_rel(integer, values(fake), &int_beyond);
    std::cout << fmt::format(
        "[ bn ] {:<16} |fake - torch| / scale {:.2e} ({} beyond 1e-3), |int - fake| / scale "
        "{:.2e} ({} beyond); loss fake {:.5f}, int {:.5f}, PyTorch {:.5f}\n",
        c.name, fake_vs_torch, fake_beyond, int_vs_fake, int_beyond, loss(fake), loss(integer),
        ref().at(c.loss_key).get<double>());
    // A few outputs may differ by a code step where float summation order moved a quantized
    // activation across a rounding boundary; the other semantics moves a quarter or more.
    EXPECT_LE(fake_beyond, std::max<int64_t>(1, fake.numel() / 50));
    EXPECT_LE(int_beyond, std::max<int64_t>(1, fake.numel() / 50));
    EXPECT_NEAR(loss(fake), ref().at(c.loss_key).get<double>(), 2e-3);
  }
}

TEST(BatchNormFixture, DefaultIsMaseSemanticsAndFoldingIsADeployments) {
  g_ref = nullptr;
  expect_mase_and_folded_semantics(onnx::import_model(kDir + "resnet_bn_preserve.onnx"),
                                   6);  // 4 convs, 2 linears
}

// BatchNorm after ConvTranspose2d (plain and grouped), after a MatMul + Add linear, after a
// MatMul without a bias and after a Linear (Gemm): all five fold, PyTorch-checked.
TEST(BatchNormFixture, FoldsAfterConvTransposeMatMulAndGemmLikePyTorch) {
  static const nlohmann::json r = read_ref("linconvt_bn_ref.json");
  g_ref = &r;
  const ir::Graph kept = onnx::import_model(kDir + "linconvt_bn_preserve.onnx");
  EXPECT_EQ(count_kind(kept, OpKind::kBatchNorm), 5);
  const ir::BatchNormFold f = ir::fold_batch_norm(kept);
  EXPECT_EQ(f.folded.size(), 5u);
  EXPECT_TRUE(f.kept.empty());
  int beyond = 0;
  const std::vector<double> want = ref().at("float").get<std::vector<double>>();
  for (const ir::Graph* g : {&kept, &f.graph}) {
    EXPECT_LE(worst_rel(run(*g, input(), {.mode = Mode::kFloat}), want, &beyond), 1e-5);
  }
  expect_mase_and_folded_semantics(kept, 6);  // 2 ConvTranspose, 2 MatMul, 2 Gemm
  g_ref = nullptr;
}

// BatchNorm after Conv3d (plain and grouped), Conv1d, ConvTranspose1d (plain and grouped): the
// importer writes the 3-D Conv and the 1-D ConvTranspose as 2-D ones followed by a view, which
// the fold looks through. All five fold, and the folded graph gives PyTorch's float outputs, its
// own eval export's (which folded the three Convs itself) and its fake quantization of the
// folded weights; without folding, MASE's.
TEST(BatchNormFixture, FoldsAfterConv3dConv1dAndConvTranspose1dLikePyTorch) {
  static const nlohmann::json r = read_ref("nd_bn_ref.json", kNdDir);
  g_ref = &r;
  const ir::Graph kept = onnx::import_model(kNdDir + "nd_bn_preserve.onnx");
  const ir::Graph torch_folded = onnx::import_model(kNdDir + "nd_bn_eval.onnx");
  EXPECT_EQ(count_kind(kept, OpKind::kBatchNorm), 5);
  EXPECT_EQ(count_kind(torch_folded, OpKind::kBatchNorm), 2);  // after the ConvTranspose1ds
  const ir::BatchNormFold f = ir::fold_batch_norm(kept);
  EXPECT_EQ(f.folded.size(), 5u);
  EXPECT_TRUE(f.kept.empty());
  EXPECT_EQ(count_kind(f.graph, OpKind::kBatchNorm), 0);
  for (const ir::Node& n : f.graph.nodes()) {  // the 3-D convs are still MASE's conv3d
    if (n.kind == OpKind::kConv && n.inputs[1] >= 0 &&
        f.graph.value(n.inputs[1]).name.ends_with("~bn_folded~2d")) {
      EXPECT_EQ(ir::mase_op(f.graph, n), "conv3d");
    }
  }
  int beyond = 0;
  const std::vector<double> want = ref().at("float").get<std::vector<double>>();
  for (const ir::Graph* g : {&kept, &f.graph, &torch_folded}) {
    for (bool reference : {true, false}) {
      EXPECT_LE(
          worst_rel(run(*g, input(), {.mode = Mode::kFloat, .use_reference_kernels = reference}),
                    want, &beyond),
          1e-5);
    }
  }
  expect_mase_and_folded_semantics(kept, 6);  // 2 conv3d, conv1d, 2 convtranspose2d, linear
  g_ref = nullptr;
}

}  // namespace
}  // namespace qsearch::runtime
