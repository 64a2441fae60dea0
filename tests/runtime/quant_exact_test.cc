// The integer engine (Mode::kInt) equals the exact reference (quant_reference.h) bit for bit:
// on the PyTorch fixtures under every fixture config, and on random small graphs with random
// formats (widths 1..32, fracs below zero and above the width, every rounding, data_out, default
// biases, quantized and float ops mixed), with the fast kernels and with the reference kernels.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/quant_reference.h"
#include "runtime/runtime_test_util.h"
#include "support/source_dir.h"

namespace qsearch::runtime {
namespace {

using ir::OpKind;
using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::Rounding;
using testing::exact_reference;
using testing::GraphMaker;
using testing::run_graph;

// Runs `g` in int mode; empty tensor when make_plan refuses an accumulator beyond int64 (the
// message must say so).
Tensor run_int(const ir::Graph& g, const quant::QuantAssignment& q, const Tensor& x,
               bool reference_kernels, std::string* refused = nullptr,
               std::shared_ptr<PackCache> pack_cache = nullptr) {
  std::shared_ptr<const Plan> plan;
  try {
    plan = make_plan(g, {.mode = Mode::kInt,
                         .max_batch = x.dim(0),
                         .use_reference_kernels = reference_kernels,
                         .quant = q,
                         .pack_cache = std::move(pack_cache)});
  } catch (const Error& e) {
    if (refused == nullptr || std::string(e.what()).find("beyond int64") == std::string::npos) {
      throw;
    }
    *refused = e.what();
    return Tensor();
  }
  Executor ex(plan);
  return ex.run(x).clone();
}

::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, got.data<float>() + i, 4);
    std::memcpy(&b, want.data<float>() + i, 4);
    if (a != b) {
      return ::testing::AssertionFailure()
             << "element " << i << ": int engine " << got.data<float>()[i] << ", exact "
             << want.data<float>()[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- fixtures -----------------------------------------------------------------------------------

quant::FixedFormat format_of(const nlohmann::json& j) {
  return {j.at("width").get<int>(), j.at("frac").get<int>(), j.at("signed").get<bool>()};
}

TEST(QuantExact, FixtureModelsEqualTheExactReference) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/";
  const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  const Tensor x = d.x.rows(0, 48);
  for (const std::string model : {"mlp", "cnn"}) {
    std::ifstream in(dir + "quant_models/" + model + "_quant_ref.json");
    const nlohmann::json ref = nlohmann::json::parse(in);
    const ir::Graph g = onnx::import_model(dir + "torch/" + ref.at("model").get<std::string>());
    for (const auto& cfg : ref.at("configs")) {
      SCOPED_TRACE(model + " " + cfg.at("name").get<std::string>());
      quant::QuantAssignment q;
      for (const auto& [name, c] : cfg.at("nodes").items()) {
        NodeQuantConfig n{.quantized = true, .data_in = format_of(c.at("data_in"))};
        if (c.contains("weight")) n.weight = format_of(c.at("weight"));
        if (c.contains("bias")) n.bias = format_of(c.at("bias"));
        if (c.contains("data_out")) n.data_out = format_of(c.at("data_out"));
        q[name] = n;
      }
      const Tensor want = exact_reference(g, q, x);
      EXPECT_TRUE(same_bits(run_int(g, q, x, false), want)) << "fast kernels";
      EXPECT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
    }
  }
}

// The reference-kernel plan, the fast plan and the exact reference agree on the fixtures with every
// node at one format (data_in, weight and, with bias keys, bias; relus unsigned), for widths 4..32
// and binary points from below zero to above the width. Wide codes are where a float op (batch
// norm) rounding its result differently in the two plans flips codes downstream: the finer the
// grid, the likelier a one-ulp difference crosses a rounding boundary (when the reference plan ran
// batch norm in double, 64 CNN formats of widths 13..32 differed here, none narrower).
TEST(QuantExact, FixtureModelsAtEveryUniformFormatEqualTheExactReference) {
  const std::string dir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/";
  const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  const Tensor x = d.x.rows(0, 8);
  int ran = 0, refused = 0;
  for (const std::string model : {"mlp", "cnn"}) {
    std::ifstream in(dir + "quant_models/" + model + "_quant_ref.json");
    const nlohmann::json ref = nlohmann::json::parse(in);
    const ir::Graph g = onnx::import_model(dir + "torch/" + ref.at("model").get<std::string>());
    const nlohmann::json& nodes = ref.at("configs").at(0).at("nodes");  // every quantizable node
    for (int w = 4; w <= 32; ++w) {
      for (int f : {-1, w / 2, w - 2, w + 3}) {
        for (bool bias_keys : {true, false}) {
          SCOPED_TRACE(
              fmt::format("{} s{}.{} {} bias keys", model, w, f, bias_keys ? "with" : "without"));
          quant::QuantAssignment q;
          for (const auto& [name, c] : nodes.items()) {
            const bool is_signed = c.at("data_in").at("signed").get<bool>();
            NodeQuantConfig n{
                .quantized = true,
                .data_in = FixedFormat{is_signed ? w : std::min(w, 31), f, is_signed}};
            if (c.contains("weight")) n.weight = FixedFormat{w, f, true};
            if (c.contains("bias") && bias_keys) n.bias = FixedFormat{w, f, true};
            q[name] = n;
          }
          std::string why;
          const Tensor fast = run_int(g, q, x, false, &why);
          if (fast.empty()) {
            ++refused;
            continue;
          }
          ++ran;
          const Tensor want = exact_reference(g, q, x);
          ASSERT_TRUE(same_bits(fast, want)) << "fast kernels";
          ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
        }
      }
    }
  }
  std::cout << fmt::format(
      "[ quant ] fixture formats: {} equal the exact reference, {} refused "
      "(accumulator beyond int64)\n",
      ran, refused);
  EXPECT_GE(ran, 400);
}

// ---- random graphs ------------------------------------------------------------------------------

class RandomCase {
 public:
  explicit RandomCase(uint64_t seed) : rng_(seed), seed_(seed) {}

  int uniform(int lo, int hi) { return lo + static_cast<int>(rng_.uniform_int(hi - lo + 1)); }
  bool chance(int percent) { return uniform(0, 99) < percent; }

  FixedFormat format(bool is_signed, bool wide_ok) {
    int w = uniform(1, 12);
    if (wide_ok && chance(15)) w = std::array{16, 20, 24, 31, 32}[uniform(0, 4)];
    if (!is_signed) w = std::min(w, 31);
    int f = uniform(-3, 14);
    if (chance(10)) f = w + uniform(1, 6);  // frac above the width
    return {w, f, is_signed};
  }

  Rounding rounding() {
    return std::array{Rounding::kHalfToEven, Rounding::kHalfToEven, Rounding::kFloor,
                      Rounding::kHalfAwayFromZero}[uniform(0, 3)];
  }

  // A quantized linear / conv config (bias format absent sometimes: the default applies).
  NodeQuantConfig weighted() {
    NodeQuantConfig c{.quantized = true,
                      .data_in = format(true, true),
                      .weight = format(true, true),
                      .rounding = rounding()};
    if (chance(70)) c.bias = format(true, true);
    if (chance(20)) c.data_out = format(true, false);
    return c;
  }
  NodeQuantConfig simple(bool is_signed) {
    return {.quantized = true, .data_in = format(is_signed, true), .rounding = rounding()};
  }

  // Input values with ties of common grids mixed in.
  Tensor input(Shape shape) {
    Tensor x(std::move(shape), DType::kFloat32);
    for (float& v : x.span<float>()) {
      v = static_cast<float>(rng_.uniform(-2.0, 2.0));
      if (chance(25)) v = std::ldexp(static_cast<float>(uniform(-40, 40)) + 0.5f, -uniform(0, 6));
    }
    return x;
  }

  ir::ValueId weight(GraphMaker& m, Shape s, float r) {
    return m.constant(std::move(s), rng_.uniform_int(1u << 30), -r, r);
  }

  // MLP-like: Gemm (+relu) (+ residual Gemm/MatMul and add) (+ mul by a constant) + Gemm.
  void mlp(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, int64_t k0) {
    const int64_t n1 = uniform(1, 24);
    const bool trans = chance(50);
    ir::ValueId h =
        m.op(OpKind::kGemm,
             {x, weight(m, trans ? Shape{n1, k0} : Shape{k0, n1}, 1.0f), weight(m, {n1}, 0.5f)},
             ir::GemmAttrs{.trans_b = trans});
    names_.push_back({"linear", q.size()});
    quantize_last(m, q, weighted());
    if (chance(70)) {
      h = m.op(OpKind::kRelu, {h});
      if (chance(60)) quantize_last(m, q, simple(false));
    }
    if (chance(50)) {
      ir::ValueId g = chance(50) ? m.op(OpKind::kGemm, {h, weight(m, {n1, n1}, 0.7f)},
                                        ir::GemmAttrs{.trans_b = true})
                                 : m.op(OpKind::kMatMul, {h, weight(m, {n1, n1}, 0.7f)});
      quantize_last(m, q, weighted());
      h = m.op(chance(70) ? OpKind::kAdd : OpKind::kSub, {h, g});
      if (chance(70)) quantize_last(m, q, simple(true));
    }
    if (chance(30)) {
      h = m.op(OpKind::kMul, {h, weight(m, {n1}, 1.5f)});
      if (chance(70)) quantize_last(m, q, simple(true));
    }
    const int64_t n2 = uniform(1, 12);
    h = m.op(OpKind::kGemm, {h, weight(m, {n2, n1}, 1.0f), weight(m, {n2}, 0.5f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    out_ = h;
  }

  // CNN-like: conv (+bn) + relu (+ max pool) + conv and residual add + flatten + gemm.
  void cnn(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, int64_t c, int64_t hw) {
    const int64_t groups = chance(30) ? c : 1;
    const int64_t mch = groups * uniform(1, 3);
    const int64_t kh = uniform(1, 3), kw = uniform(1, 3);
    ir::ConvAttrs a{
        .kernel = {kh, kw},
        .strides = {uniform(1, 2), uniform(1, 2)},
        .dilations = {uniform(1, 2), 1},
        .pads = {uniform(0, kh - 1), uniform(0, kw - 1), uniform(0, kh - 1), uniform(0, kw - 1)},
        .group = groups};
    std::vector<ir::ValueId> ins = {x, weight(m, {mch, c / groups, kh, kw}, 0.8f)};
    if (chance(70)) ins.push_back(weight(m, {mch}, 0.5f));
    ir::ValueId h = m.op(OpKind::kConv, ins, a);
    quantize_last(m, q, weighted());
    if (chance(50)) {
      h = m.op(OpKind::kBatchNorm,
               {h, weight(m, {mch}, 1.5f), weight(m, {mch}, 0.3f), weight(m, {mch}, 0.3f),
                m.constant({mch}, rng_.uniform_int(1000), 0.5f, 2.0f)},
               ir::BatchNormAttrs{});
      if (chance(50)) quantize_last(m, q, simple(true));
    }
    h = m.op(OpKind::kRelu, {h});
    if (chance(60)) quantize_last(m, q, simple(false));
    const std::vector<Shape> shapes = m.graph().infer_shapes(1);
    Shape s = shapes[h];
    if (chance(60) && s[2] >= 2 && s[3] >= 2) {
      h = m.op(OpKind::kMaxPool, {h},
               ir::PoolAttrs{.kernel = {2, 2}, .strides = {uniform(1, 2), 2}});
    }
    ir::ValueId g =
        m.op(OpKind::kConv, {h, weight(m, {mch, mch, 3, 3}, 0.5f), weight(m, {mch}, 0.3f)},
             ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
    quantize_last(m, q, weighted());
    h = m.op(OpKind::kAdd, {g, h});
    if (chance(70)) quantize_last(m, q, simple(true));
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    s = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 6), s[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    (void)hw;
    out_ = h;
  }

  // 1-D CNN (issue 11, MASE's conv1d): conv1d (groups, stride, dilation, asymmetric pads) +
  // relu + conv1d and residual add + flatten + gemm, on an NCL input.
  void cnn1d(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, int64_t c) {
    const int64_t groups = chance(30) ? c : 1;
    const int64_t mch = groups * uniform(1, 3);
    const int64_t k = uniform(1, 5);
    ir::ConvAttrs a{.kernel = {1, k},
                    .strides = {1, uniform(1, 2)},
                    .dilations = {1, uniform(1, 2)},
                    .pads = {0, uniform(0, k - 1), 0, uniform(0, k - 1)},
                    .group = groups};
    std::vector<ir::ValueId> ins = {x, weight(m, {mch, c / groups, k}, 0.8f)};
    if (chance(70)) ins.push_back(weight(m, {mch}, 0.5f));
    ir::ValueId h = m.op(OpKind::kConv, ins, a);
    quantize_last(m, q, weighted());
    h = m.op(OpKind::kRelu, {h});
    if (chance(60)) quantize_last(m, q, simple(false));
    ir::ValueId g = m.op(OpKind::kConv, {h, weight(m, {mch, mch, 3}, 0.5f), weight(m, {mch}, 0.3f)},
                         ir::ConvAttrs{.kernel = {1, 3}, .pads = {0, 1, 0, 1}});
    quantize_last(m, q, weighted());
    h = m.op(OpKind::kAdd, {g, h});
    if (chance(70)) quantize_last(m, q, simple(true));
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape s = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 6), s[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    out_ = h;
  }

  // A 3-D CNN (issue 14): the importer's form of a Conv3d (Im2Col3d -> Conv (1, kW) -> view)
  // with random kernel, strides, dilations, pads and groups, quantized as conv3d; relu; a second
  // Conv3d; flatten; gemm.
  void cnn3d(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, Shape s) {
    auto conv3d = [&](ir::ValueId v, Shape& vs, int64_t mch, int64_t groups) {
      ir::Im2Col3dAttrs ia;
      ir::ConvAttrs ca;
      ca.group = groups;
      std::array<int64_t, 3> k = {uniform(1, 3), uniform(1, 3), uniform(1, 3)};
      int64_t out[3];
      for (int d = 0; d < 3; ++d) {
        const int64_t st = uniform(1, 2), dl = uniform(1, 2);
        if (vs[2 + d] - dl * (k[d] - 1) < 1) k[d] = 1;  // the window must fit without pads
        const int64_t pb = uniform(0, k[d] - 1), pe = uniform(0, k[d] - 1);
        out[d] = (vs[2 + d] + pb + pe - dl * (k[d] - 1) - 1) / st + 1;
        if (d < 2) {
          ia.kernel[d] = k[d];
          ia.strides[d] = st;
          ia.dilations[d] = dl;
          ia.pads[d] = pb;
          ia.pads[2 + d] = pe;
        } else {
          ca.kernel = {1, k[d]};
          ca.strides = {1, st};
          ca.dilations = {1, dl};
          ca.pads = {0, pb, 0, pe};
        }
      }
      ir::ValueId cols = m.op(OpKind::kIm2Col3d, {v}, ia);
      std::vector<ir::ValueId> ins = {
          cols, weight(m, {mch, vs[1] / groups * k[0] * k[1], 1, k[2]}, 0.6f)};
      if (chance(70)) ins.push_back(weight(m, {mch}, 0.4f));
      ir::ValueId y = m.op(OpKind::kConv, ins, ca);
      quantize_last(m, q, weighted());
      vs = {kDynamic, mch, out[0], out[1], out[2]};
      return m.op(OpKind::kReshape, {y}, ir::ReshapeAttrs{{0, mch, out[0], out[1], out[2]}});
    };
    const int64_t groups = s[1] > 1 && chance(40) ? s[1] : 1;
    ir::ValueId h = conv3d(x, s, groups * uniform(1, 3), groups);
    h = m.op(OpKind::kRelu, {h});
    if (chance(60)) quantize_last(m, q, simple(false));
    h = conv3d(h, s, uniform(1, 3), 1);
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape fs = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 5), fs[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    out_ = h;
  }

  // MobileNetV3-like (issue 11): quantized 1x1 expand conv + HardSwish + Pad (random mode, any
  // value) + quantized depthwise conv + squeeze-excitation (GlobalMaxPool, quantized 1x1 convs,
  // relu, HardSigmoid with random alpha / beta, Mul, quantized or not) + flatten + gemm. The
  // new ops run in float on the dequantized values, as MASE leaves them unquantized.
  void mobile(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, int64_t c) {
    const int64_t e = uniform(1, 3) * c;
    ir::ValueId h = m.op(OpKind::kConv, {x, weight(m, {e, c, 1, 1}, 0.8f), weight(m, {e}, 0.5f)},
                         ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(m, q, weighted());
    h = m.op(OpKind::kHardSwish, {h});
    const Shape hs = m.graph().infer_shapes(1)[h];
    ir::PadAttrs pad{
        .mode = std::array{ir::PadMode::kConstant, ir::PadMode::kReflect,
                           ir::PadMode::kEdge}[uniform(0, 2)],
        .pads = {0, 0, uniform(0, 1), uniform(0, 2), 0, 0, uniform(0, 1), uniform(0, 2)},
        .value = chance(50) ? 0.0f : static_cast<float>(uniform(-8, 8)) / 4};
    if (chance(20) && (pad.mode != ir::PadMode::kReflect || e > 1)) {
      pad.pads[1] = 1;  // a channel of padding too
    }
    for (int d : {2, 3}) {
      pad.pads[d] = std::min<int64_t>(pad.pads[d], hs[d] - 1);
      pad.pads[d + 4] = std::min<int64_t>(pad.pads[d + 4], hs[d] - 1);
    }
    h = m.op(OpKind::kPad, {h}, pad);
    const int64_t ec = e + pad.pads[1];
    h = m.op(OpKind::kConv, {h, weight(m, {ec, 1, 3, 3}, 0.8f)},
             ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}, .group = ec});
    quantize_last(m, q, weighted());
    ir::ValueId se = m.op(OpKind::kGlobalMaxPool, {h});
    se = m.op(OpKind::kConv, {se, weight(m, {2, ec, 1, 1}, 0.8f), weight(m, {2}, 0.3f)},
              ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(m, q, weighted());
    se = m.op(OpKind::kRelu, {se});
    se = m.op(OpKind::kConv, {se, weight(m, {ec, 2, 1, 1}, 0.8f), weight(m, {ec}, 0.3f)},
              ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(m, q, weighted());
    se = m.op(OpKind::kHardSigmoid, {se},
              ir::HardSigmoidAttrs{.alpha = static_cast<float>(uniform(1, 8)) / 16,
                                   .beta = static_cast<float>(uniform(0, 8)) / 8});
    h = m.op(OpKind::kMul, {h, se});
    if (chance(60)) quantize_last(m, q, simple(true));
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape s = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 6), s[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    out_ = h;
  }

  // Decoder-like (issue 11): quantized conv + Resize (nearest or linear, every coordinate
  // transform and nearest mode, by a scale or to a size) + relu + quantized conv + flatten +
  // gemm. Resize runs in float on the dequantized value (MASE does not quantize interpolate).
  void decoder(GraphMaker& m, quant::QuantAssignment& q, ir::ValueId x, int64_t c) {
    const int64_t e = uniform(1, 3);
    ir::ValueId h = m.op(OpKind::kConv, {x, weight(m, {e, c, 3, 3}, 0.8f), weight(m, {e}, 0.5f)},
                         ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
    quantize_last(m, q, weighted());
    ir::ResizeAttrs r;
    r.mode = chance(50) ? ir::ResizeMode::kNearest : ir::ResizeMode::kLinear;
    r.coord = static_cast<ir::ResizeCoord>(uniform(0, 3));
    r.nearest = static_cast<ir::ResizeNearest>(uniform(0, 3));
    if (chance(50)) {
      r.sizes = {uniform(1, 12), uniform(1, 12)};
    } else {
      r.scales = {std::array{0.5f, 1.5f, 2.0f, 3.0f, 1.25f}[uniform(0, 4)],
                  std::array{0.75f, 1.0f, 2.0f, 2.5f}[uniform(0, 3)]};
    }
    h = m.op(OpKind::kResize, {h}, r);
    if (chance(60)) {  // a quantized ConvTranspose (MASE's convtranspose2d, conv2d's keys)
      const int64_t groups = chance(30) ? e : 1, k = uniform(1, 4), s = uniform(1, 3),
                    d = uniform(1, 2), out = groups * uniform(1, 2);
      const int64_t span = (k - 1) * d;
      ir::ConvTransposeAttrs t{.kernel = {k, uniform(1, 3)},
                               .strides = {s, uniform(1, 2)},
                               .dilations = {d, 1},
                               .pads = {0, 0, 0, 0},
                               .output_padding = {uniform(0, std::max(s, d) - 1), 0},
                               .group = groups};
      t.pads[0] = uniform(0, static_cast<int>(span));  // pads within the span: output >= 1
      t.pads[2] = uniform(0, static_cast<int>(span - t.pads[0]));
      std::vector<ir::ValueId> ins = {h, weight(m, {e, out / groups, k, t.kernel[1]}, 0.8f)};
      if (chance(70)) ins.push_back(weight(m, {out}, 0.5f));
      h = m.op(OpKind::kConvTranspose, ins, t);
      quantize_last(m, q, weighted());
      h = m.op(OpKind::kConv, {h, weight(m, {e, out, 1, 1}, 0.8f)},
               ir::ConvAttrs{.kernel = {1, 1}});
      quantize_last(m, q, weighted());
    }
    h = m.op(OpKind::kRelu, {h});
    if (chance(50)) quantize_last(m, q, simple(false));
    h = m.op(OpKind::kConv, {h, weight(m, {2, e, 1, 1}, 0.8f), weight(m, {2}, 0.3f)},
             ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(m, q, weighted());
    h = m.op(OpKind::kFlatten, {h}, ir::AxisAttrs{1});
    const Shape s = m.graph().infer_shapes(1)[h];
    h = m.op(OpKind::kGemm, {h, weight(m, {uniform(1, 6), s[1]}, 0.5f), weight(m, {1}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(m, q, weighted());
    out_ = h;
  }

  // Config for the node just added (its config name is assigned at finalize: keyed by node name
  // now, renamed by assign()).
  void quantize_last(GraphMaker& m, quant::QuantAssignment& q, NodeQuantConfig c) {
    pending_.emplace_back(m.graph().nodes().back().name, c);
    (void)q;
  }
  // After finalize: node names -> config names.
  quant::QuantAssignment assign(const ir::Graph& g) {
    quant::QuantAssignment q;
    for (const auto& [node, c] : pending_) q[g.find_node(node)->config_name] = c;
    return q;
  }

  ir::ValueId out() const { return out_; }
  uint64_t seed() const { return seed_; }

 private:
  Rng rng_;
  uint64_t seed_;
  ir::ValueId out_ = -1;
  std::vector<std::pair<std::string, NodeQuantConfig>> pending_;
  std::vector<std::pair<std::string, size_t>> names_;
};

// A random MLP (odd seeds) or CNN (even seeds) graph with rc's formats, and its input shape.
std::pair<ir::Graph, Shape> random_graph(RandomCase& rc, uint64_t seed) {
  const int64_t batch = rc.uniform(1, 5);
  quant::QuantAssignment unused;
  if (seed % 2 == 0) {
    const int64_t c = rc.uniform(1, 3), hw = rc.uniform(5, 9);
    GraphMaker m({kDynamic, c, hw, hw + rc.uniform(0, 1)});
    Shape in_shape = {batch, c, hw, m.graph().value(m.input()).shape[3]};
    rc.cnn(m, unused, m.input(), c, hw);
    return {m.finish(rc.out()), in_shape};
  }
  const int64_t k0 = rc.uniform(1, 40);
  GraphMaker m({kDynamic, k0});
  rc.mlp(m, unused, m.input(), k0);
  return {m.finish(rc.out()), Shape{batch, k0}};
}

TEST(QuantExact, RandomGraphsEqualTheExactReference) {
  int ran = 0, refused = 0;
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    RandomCase rc(seed);
    const bool conv = seed % 2 == 0;
    const auto [g, in_shape] = random_graph(rc, seed);
    const int64_t batch = in_shape[0];
    const quant::QuantAssignment q = rc.assign(g);
    const Tensor x = rc.input(in_shape);
    SCOPED_TRACE(fmt::format("seed {} ({})", seed, conv ? "cnn" : "mlp"));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) {
      ++refused;
      continue;
    }
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  std::cout << fmt::format(
      "[ quant ] random graphs: {} equal the exact reference, {} refused "
      "(accumulator beyond int64)\n",
      ran, refused);
  EXPECT_GE(ran, 450);
}

// Issue 14: the exact integer Winograd F(2x2, 3x3) (kernels/fixed/winograd.h) in random CNNs:
// two stride-1 3x3 convs (random pads on each side, 30..40 input channels: Winograd needs 32 or
// more, maps of 8..15, bias or none) with random formats, roundings, data_out, ReLU and BatchNorm
// between: the int engine equals the exact reference bit for bit, and most convs take the Winograd
// path (the plan says "winograd"; wide formats fall back to the direct path).
TEST(QuantExact, RandomWinogradConvGraphsEqualTheExactReference) {
  int ran = 0, winograd = 0;
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    RandomCase rc(seed * 7919);
    const int64_t batch = rc.uniform(1, 3), c = rc.uniform(30, 40);
    const int64_t h = rc.uniform(8, 15), w = rc.uniform(8, 15);
    GraphMaker m({kDynamic, c, h, w});
    quant::QuantAssignment unused;
    auto conv3x3 = [&](ir::ValueId v, int64_t in, int64_t out) {
      std::vector<ir::ValueId> ins = {v, rc.weight(m, {out, in, 3, 3}, 0.8f)};
      if (rc.chance(70)) ins.push_back(rc.weight(m, {out}, 0.5f));
      ir::ValueId y = m.op(OpKind::kConv, ins,
                           ir::ConvAttrs{.kernel = {3, 3},
                                         .pads = {rc.uniform(0, 2), rc.uniform(0, 2),
                                                  rc.uniform(0, 2), rc.uniform(0, 2)}});
      rc.quantize_last(m, unused, rc.weighted());
      return y;
    };
    const int64_t mid = rc.uniform(30, 40);
    ir::ValueId x = conv3x3(m.input(), c, mid);
    if (rc.chance(40)) {
      x = m.op(OpKind::kBatchNorm,
               {x, rc.weight(m, {mid}, 1.5f), rc.weight(m, {mid}, 0.3f), rc.weight(m, {mid}, 0.3f),
                m.constant({mid}, seed, 0.5f, 2.0f)},
               ir::BatchNormAttrs{});
    }
    x = m.op(OpKind::kRelu, {x});
    if (rc.chance(60)) rc.quantize_last(m, unused, rc.simple(false));
    x = conv3x3(x, mid, rc.uniform(1, 20));
    const ir::Graph g = m.finish(x);
    const quant::QuantAssignment q = rc.assign(g);
    const Tensor in = rc.input({batch, c, h, w});
    SCOPED_TRACE(fmt::format("seed {}", seed));
    std::string why;
    const Tensor got = run_int(g, q, in, false, &why);
    if (got.empty()) continue;
    ++ran;
    const std::string plan =
        make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    for (size_t at = plan.find(" winograd"); at != std::string::npos;
         at = plan.find(" winograd", at + 1)) {
      ++winograd;
    }
    ASSERT_TRUE(same_bits(got, exact_reference(g, q, in))) << plan;
  }
  std::cout << fmt::format(
      "[ quant ] winograd graphs: {} equal the exact reference, {} of {} "
      "convs on the Winograd path\n",
      ran, winograd, 2 * ran);
  EXPECT_GE(ran, 100);
  EXPECT_GE(winograd, ran);  // about half of the convs or more
}

// Issue 11: Conv1d (quantized as MASE's conv1d) in random 1-D CNNs at random formats and
// roundings: the int engine equals the exact reference bit for bit, fast and reference kernels.
TEST(QuantExact, RandomConv1dGraphsEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    RandomCase rc(seed * 7919);
    const int64_t batch = rc.uniform(1, 4), c = rc.uniform(1, 3), len = rc.uniform(9, 20);
    quant::QuantAssignment unused;
    GraphMaker m({kDynamic, c, len});
    rc.cnn1d(m, unused, m.input(), c);
    const ir::Graph g = m.finish(rc.out());
    const quant::QuantAssignment q = rc.assign(g);
    for (const auto& [name, cfg] : q) {
      const ir::Node* n = nullptr;
      for (const ir::Node& node : g.nodes()) {
        if (node.config_name == name) n = &node;
      }
      ASSERT_NE(n, nullptr);
      if (n->kind == OpKind::kConv) {
        ASSERT_EQ(ir::mase_op(g, *n), "conv1d");
      }
    }
    const Tensor x = rc.input({batch, c, len});
    SCOPED_TRACE(fmt::format("seed {}", seed));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 180);
}

// Issue 14: 3-D convolutions (the importer's Im2Col3d -> Conv -> view, quantized as conv3d) in
// random 3-D CNNs at random formats and roundings: the int engine equals the exact reference bit
// for bit, fast and reference kernels.
TEST(QuantExact, RandomConv3dGraphsEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    RandomCase rc(seed * 6700417);
    const int64_t batch = rc.uniform(1, 3), c = rc.uniform(1, 3);
    const Shape s = {kDynamic, c, rc.uniform(3, 6), rc.uniform(3, 6), rc.uniform(3, 6)};
    quant::QuantAssignment unused;
    GraphMaker m(s);
    rc.cnn3d(m, unused, m.input(), s);
    const ir::Graph g = m.finish(rc.out());
    const quant::QuantAssignment q = rc.assign(g);
    int conv3d = 0;
    for (const ir::Node& n : g.nodes()) conv3d += ir::mase_op(g, n) == "conv3d";
    ASSERT_EQ(conv3d, 2);
    const Tensor x = rc.input({batch, s[1], s[2], s[3], s[4]});
    SCOPED_TRACE(fmt::format("seed {}", seed));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 100);
}

// Issue 11: MobileNetV3-style blocks with HardSwish, general Pad, GlobalMaxPool, HardSigmoid
// squeeze-excitation between quantized convs, at random formats and roundings: the int engine
// equals the exact reference bit for bit, fast and reference kernels.
TEST(QuantExact, RandomMobileBlocksEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    RandomCase rc(seed * 104729);
    const int64_t batch = rc.uniform(1, 4), c = rc.uniform(1, 3), hw = rc.uniform(3, 7);
    quant::QuantAssignment unused;
    GraphMaker m({kDynamic, c, hw, hw + 1});
    rc.mobile(m, unused, m.input(), c);
    const ir::Graph g = m.finish(rc.out());
    const quant::QuantAssignment q = rc.assign(g);
    const Tensor x = rc.input({batch, c, hw, hw + 1});
    SCOPED_TRACE(fmt::format("seed {}", seed));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 130);
}

// Issue 11: decoders with Resize (nearest / linear, every coordinate transform and nearest mode,
// scales and sizes) between quantized convs: the int engine equals the exact reference.
TEST(QuantExact, RandomDecodersWithResizeEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    RandomCase rc(seed * 15485863);
    const int64_t batch = rc.uniform(1, 3), c = rc.uniform(1, 3), h = rc.uniform(2, 6),
                  w = rc.uniform(2, 6);
    quant::QuantAssignment unused;
    GraphMaker m({kDynamic, c, h, w});
    rc.decoder(m, unused, m.input(), c);
    const ir::Graph g = m.finish(rc.out());
    const quant::QuantAssignment q = rc.assign(g);
    const Tensor x = rc.input({batch, c, h, w});
    SCOPED_TRACE(fmt::format("seed {}", seed));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 130);
}

// Issue 11: quantized MatMuls of two activations (attention's scores and context, batched over
// heads), one of an activation by a 3-D constant broadcast over the batch, an unquantized relu
// and add between them and a quantized linear at the end, at random formats and roundings: the
// int engine equals the exact reference bit for bit.
TEST(QuantExact, BatchedActivationMatMulsEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    RandomCase rc(seed + 7000);
    SCOPED_TRACE(seed);
    GraphMaker m({kDynamic, 2, 3, 4});
    // [N, 2, 3, 4] @ [N, 2, 4, 3] (a reshaped copy) -> [N, 2, 3, 3]
    const ir::ValueId b =
        m.op(OpKind::kReshape, {m.input()}, ir::ReshapeAttrs{{0, 2, 4, 3}, false});
    const ir::ValueId s = m.op(OpKind::kMatMul, {m.input(), b});
    // [N, 2, 3, 4] @ const [2, 4, 3]: the constant is broadcast over N (a `matmul`, not a linear).
    const ir::ValueId k = m.op(OpKind::kMatMul, {m.input(), m.constant({2, 4, 3}, seed + 1)});
    const ir::ValueId sk = m.op(OpKind::kAdd, {s, k});
    const ir::ValueId r = m.op(OpKind::kRelu, {sk});
    const ir::ValueId c = m.op(OpKind::kMatMul, {r, r});  // [N, 2, 3, 3] @ [N, 2, 3, 3]
    const ir::ValueId f = m.op(OpKind::kReshape, {c}, ir::ReshapeAttrs{{0, -1}, false});
    const ir::ValueId y = m.op(OpKind::kMatMul, {f, m.constant({18, 5}, seed)});
    ir::Graph g = m.finish(y);
    quant::QuantAssignment q;
    for (const ir::Node& n : g.nodes()) {
      if (n.kind != OpKind::kMatMul) continue;
      NodeQuantConfig cfg{.quantized = true,
                          .data_in = rc.format(true, false),
                          .weight = rc.format(true, false),
                          .rounding = rc.rounding()};
      q[n.config_name] = cfg;
    }
    ASSERT_EQ(q.size(), 4u);
    const Tensor x = rc.input({3, 2, 3, 4});
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = 3, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 190);
}

// Activation MatMuls wide enough for the int engine's 16- and 8-column register blocks and
// their remainders (n = 8, 9, 17, 33), at random formats (8- and 16-bit codes) and roundings.
TEST(QuantExact, WideActivationMatMulsEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    RandomCase rc(seed + 9100);
    SCOPED_TRACE(seed);
    const int64_t n = std::array<int64_t, 4>{8, 9, 17, 33}[seed % 4];
    const int64_t k = 5 + static_cast<int64_t>(seed % 7);
    // [N, n, k] @ [N, k, n]: two views of one input.
    GraphMaker m({kDynamic, k * n});
    const ir::ValueId a = m.op(OpKind::kReshape, {m.input()}, ir::ReshapeAttrs{{0, n, k}, false});
    const ir::ValueId b = m.op(OpKind::kReshape, {m.input()}, ir::ReshapeAttrs{{0, k, n}, false});
    const ir::ValueId y = m.op(OpKind::kMatMul, {a, b});
    ir::Graph g = m.finish(y);
    quant::QuantAssignment q;
    for (const ir::Node& nd : g.nodes()) {
      if (nd.kind != OpKind::kMatMul) continue;
      q[nd.config_name] = NodeQuantConfig{.quantized = true,
                                          .data_in = rc.format(true, false),
                                          .weight = rc.format(true, false),
                                          .rounding = rc.rounding()};
    }
    const Tensor x = rc.input({3, k * n});
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    ASSERT_TRUE(same_bits(got, exact_reference(g, q, x)));
  }
  EXPECT_GE(ran, 55);
}

// The int engine's activation MatMul sums 8-bit codes in int32 while K * 128 * 128 fits in an
// int32 and in int64 beyond: all codes at -128 (saturated inputs) with K on both sides of that
// bound give the exact K * 2^14, never a wrapped sum.
TEST(QuantExact, ActivationMatMulSumsAtTheInt32BoundStayExact) {
  for (const int64_t k : {int64_t{131071}, int64_t{131072}, int64_t{140000}}) {
    SCOPED_TRACE(k);
    GraphMaker m({kDynamic, k});
    const ir::ValueId a = m.op(OpKind::kReshape, {m.input()}, ir::ReshapeAttrs{{0, 1, k}, false});
    const ir::ValueId b = m.op(OpKind::kReshape, {m.input()}, ir::ReshapeAttrs{{0, k, 1}, false});
    const ir::ValueId y = m.op(OpKind::kMatMul, {a, b});
    ir::Graph g = m.finish(y);
    quant::QuantAssignment q;
    for (const ir::Node& n : g.nodes()) {
      if (n.kind == OpKind::kMatMul) {
        q[n.config_name] = NodeQuantConfig{.quantized = true,
                                           .data_in = FixedFormat{8, 0, true},
                                           .weight = FixedFormat{8, 0, true},
                                           .rounding = Rounding::kHalfToEven};
      }
    }
    Tensor x({2, k}, DType::kFloat32);
    for (float& v : x.span<float>()) v = -1000.0f;  // code -128
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    ASSERT_FALSE(got.empty()) << why;
    for (const float v : got.span<float>()) EXPECT_EQ(v, static_cast<float>(k * 16384));
    ASSERT_TRUE(same_bits(got, exact_reference(g, q, x)));
  }
}

// Issue 11, sequence models: int64 token ids into an embedding Gather, a quantized linear, the
// attention-mask ops (Equal of ids with the pad id, Not, Cast of an exact value to int64, Equal,
// And, Where, Cast to float, Expand), a quantized or float Mul, a negative-step Slice, a Gather
// with negative constant indices, a view and a quantized linear at the end, at random shapes,
// formats and roundings: the mask ops run on the values in float at the boundary (never
// quantized, as in MASE) and the int engine equals the exact reference bit for bit.
TEST(QuantExact, RandomSequenceGraphsEqualTheExactReference) {
  int ran = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    RandomCase rc(seed + 9000);
    SCOPED_TRACE(seed);
    const int64_t vocab = rc.uniform(2, 9), seq = rc.uniform(2, 6), k = rc.uniform(1, 6),
                  k1 = rc.uniform(1, 7), batch = rc.uniform(1, 4);
    ir::Graph g;
    int counter = 0;
    auto value = [&] { return g.add_value(fmt::format("v{}", ++counter)); };
    auto op = [&](OpKind kind, std::vector<ir::ValueId> ins, ir::Attrs a = {}) {
      const ir::ValueId out = value();
      g.add_node({kind,
                  fmt::format("{}_{}", ir::op_name(kind), counter),
                  std::move(ins),
                  {out},
                  std::move(a),
                  ""});
      return out;
    };
    const ir::ValueId ids = g.add_input("ids", {kDynamic, seq}, DType::kInt64);
    Tensor table({vocab, k}, DType::kFloat32);
    for (float& v : table.span<float>()) v = static_cast<float>(rc.uniform(-60, 60)) / 16.0f;
    const ir::ValueId emb =
        op(OpKind::kGather, {g.add_constant("table", table), ids}, ir::GatherAttrs{.axis = 0});
    Tensor w1({k, k1}, DType::kFloat32), w2({2 * ((k1 + 1) / 2), 3}, DType::kFloat32);
    for (float& v : w1.span<float>()) v = static_cast<float>(rc.uniform(-40, 40)) / 32.0f;
    for (float& v : w2.span<float>()) v = static_cast<float>(rc.uniform(-40, 40)) / 32.0f;
    const ir::ValueId h = op(OpKind::kMatMul, {emb, g.add_constant("w1", w1)});
    const ir::ValueId pad =
        op(OpKind::kEqual, {ids, g.add_constant("pad", Tensor::from<int64_t>({}, {0}))});
    const ir::ValueId padu = op(OpKind::kReshape, {pad}, ir::ReshapeAttrs{{0, seq, 1}, false});
    const ir::ValueId keep = op(OpKind::kNot, {padu});
    const ir::ValueId hi = op(OpKind::kCast, {h}, ir::CastAttrs{DType::kInt64});
    const ir::ValueId small =
        op(OpKind::kEqual, {hi, g.add_constant("zero", Tensor::from<int64_t>({}, {0}))});
    const ir::ValueId both = op(OpKind::kAnd, {keep, small});
    const ir::ValueId filled =
        op(OpKind::kWhere, {both, h, g.add_constant("fill", Tensor::from<float>({}, {-2.5f}))});
    const ir::ValueId keepf = op(OpKind::kCast, {keep}, ir::CastAttrs{DType::kFloat32});
    const ir::ValueId ex = op(OpKind::kExpand, {keepf}, ir::ExpandAttrs{{1, seq, k1}});
    const ir::ValueId z = op(OpKind::kMul, {filled, ex});
    const ir::ValueId sl =
        op(OpKind::kSlice, {z}, ir::SliceAttrs{{-1}, {-1000}, {2}, {-2}});  // every other, reversed
    const ir::ValueId ga = op(OpKind::kGather, {sl}, ir::GatherAttrs{1, {-1, 0}, {2}});
    const ir::ValueId fl = op(OpKind::kFlatten, {ga}, ir::AxisAttrs{1});
    const ir::ValueId y = op(OpKind::kMatMul, {fl, g.add_constant("w2", w2)});
    g.mark_output(y);
    g.finalize();
    quant::QuantAssignment q;
    for (const ir::Node& n : g.nodes()) {
      if (n.kind == OpKind::kMatMul) q[n.config_name] = rc.weighted();
      if (n.kind == OpKind::kMul && rc.chance(50)) q[n.config_name] = rc.simple(true);
    }
    std::vector<int64_t> v;
    for (int64_t i = 0; i < batch * seq; ++i)
      v.push_back(rc.chance(25) ? 0 : rc.uniform(0, vocab - 1));
    const Tensor x = Tensor::from<int64_t>({batch, seq}, v);
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 190);
}

// Issue 11: torch exports nn.Linear on 3-D tokens as MatMul(x, W^T) + Add(., b). MASE's linear
// owns that bias (q(b, bias), data_out after it), so the int engine adds it in the GEMM exactly as
// a Gemm's bias (the float bias rule without bias keys), equal to the exact reference; Adds that
// are not such a bias (a per-token constant, a MatMul output read twice) stay their own `add`.
TEST(QuantExact, RandomMatMulBiasLinearsEqualTheExactReference) {
  int ran = 0, owned = 0, not_owned = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    RandomCase rc(seed + 11000);
    SCOPED_TRACE(seed);
    const int64_t t = rc.uniform(1, 5), c = rc.uniform(1, 8), n1 = rc.uniform(1, 9),
                  n2 = rc.uniform(1, 7), batch = rc.uniform(1, 3);
    GraphMaker m({kDynamic, t, c});
    quant::QuantAssignment q;
    std::vector<std::string> linears;
    // A MatMul linear, then its bias as [N], [1, N] or [1, 1, N], either operand order.
    auto linear_bias = [&](ir::ValueId x, int64_t k, int64_t n) {
      const ir::ValueId y = m.op(OpKind::kMatMul, {x, rc.weight(m, {k, n}, 1.0f)});
      linears.push_back(m.graph().nodes().back().name);
      Shape bs = {n};
      for (int r = rc.uniform(0, 2); r > 0; --r) bs.insert(bs.begin(), 1);
      const ir::ValueId b = rc.weight(m, bs, 2.0f);
      return rc.chance(50) ? m.op(OpKind::kAdd, {y, b}) : m.op(OpKind::kAdd, {b, y});
    };
    ir::ValueId h = linear_bias(m.input(), c, n1);
    if (rc.chance(50)) h = m.op(OpKind::kRelu, {h});
    const int variant = rc.uniform(0, 2);
    ir::ValueId y;
    if (variant == 0) {
      y = linear_bias(h, n1, n2);
    } else if (variant == 1) {  // a per-token constant: a plain add
      const ir::ValueId mm = m.op(OpKind::kMatMul, {h, rc.weight(m, {n1, n2}, 1.0f)});
      linears.push_back(m.graph().nodes().back().name);
      y = m.op(OpKind::kAdd, {mm, rc.weight(m, {t, n2}, 1.0f)});
    } else {  // the MatMul's output read twice: its Add is a plain add
      const ir::ValueId mm = m.op(OpKind::kMatMul, {h, rc.weight(m, {n1, n2}, 1.0f)});
      linears.push_back(m.graph().nodes().back().name);
      const ir::ValueId a = m.op(OpKind::kAdd, {mm, rc.weight(m, {n2}, 1.0f)});
      y = m.op(OpKind::kMul, {a, mm});
    }
    ir::Graph g = m.finish(y);
    for (const ir::Node& n : g.nodes()) {
      const bool is_linear = std::find(linears.begin(), linears.end(), n.name) != linears.end();
      if (is_linear) q[n.config_name] = rc.weighted();
      if (n.kind != OpKind::kAdd && n.kind != OpKind::kMul) continue;
      if (ir::bias_add_owner(g, n) >= 0) {
        ++owned;
        EXPECT_EQ(ir::mase_op(g, n), "linear_bias");
      } else {
        ++not_owned;
        if (n.kind == OpKind::kAdd) {
          EXPECT_EQ(ir::mase_op(g, n), "add");
        }
        if (rc.chance(50)) q[n.config_name] = rc.simple(true);
      }
    }
    const Tensor x = rc.input({batch, t, c});
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 190);
  EXPECT_GE(owned, 200);
  EXPECT_GE(not_owned, 100);
}

// Issue 11, transformer encoder blocks: quantized MatMul linears (with and without their bias
// Add) and quantized activation MatMuls (scores over heads, context) around the ops MASE leaves
// in float (Transpose, Div by the scale, Softmax on the last axis or axis 1, the residual Add,
// LayerNorm, exact or tanh Gelu, ReduceMean / ReduceMax / ReduceSum, Concat, Neg, Exp, Sqrt,
// Pow, Erf, Sigmoid, Tanh), with LayerNorm / Gelu / Tanh / Softmax inputs quantized where a
// random layer_norm / gelu / tanh / softmax key says so, at random shapes, formats and roundings.
// The int engine equals the exact reference bit for bit: integer ops exact, each float op the float
// engine's on the value dequantized once (quant_reference.h float_kernel_op), with both kernel
// sets.
TEST(QuantExact, RandomEncoderBlocksEqualTheExactReference) {
  int ran = 0, norm_quantized = 0, softmax_axis1 = 0, outputs_quantized = 0;
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    RandomCase rc(seed + 12000);
    SCOPED_TRACE(seed);
    const int64_t heads = rc.uniform(1, 2), dh = rc.uniform(1, 4), d = heads * dh,
                  t = rc.uniform(2, 5), hidden = rc.uniform(1, 6), batch = rc.uniform(1, 3);
    GraphMaker m({kDynamic, t, d});
    auto linear = [&](ir::ValueId x, int64_t k, int64_t n) {
      const ir::ValueId y = m.op(OpKind::kMatMul, {x, rc.weight(m, {k, n}, 1.0f)});
      return rc.chance(70) ? m.op(OpKind::kAdd, {y, rc.weight(m, {n}, 0.5f)}) : y;
    };
    auto heads_of = [&](ir::ValueId x, std::vector<int64_t> perm) {
      const ir::ValueId r = m.op(OpKind::kReshape, {x}, ir::ReshapeAttrs{{0, t, heads, dh}, false});
      return m.op(OpKind::kTranspose, {r}, ir::TransposeAttrs{std::move(perm)});
    };
    const ir::ValueId x = m.input();
    const ir::ValueId qh = heads_of(linear(x, d, d), {0, 2, 1, 3});  // [N, h, T, dh]
    const ir::ValueId kh = heads_of(linear(x, d, d), {0, 2, 3, 1});  // [N, h, dh, T]
    const ir::ValueId vh = heads_of(linear(x, d, d), {0, 2, 1, 3});
    const ir::ValueId sc = m.op(OpKind::kMatMul, {qh, kh});
    const ir::ValueId scaled =
        m.op(OpKind::kDiv, {sc, m.constant(Tensor::from<float>({}, {1.5f + rc.uniform(0, 4)}))});
    const int64_t axis = rc.chance(25) ? 1 : -1;
    softmax_axis1 += axis == 1;
    const ir::ValueId p = m.op(OpKind::kSoftmax, {scaled}, ir::AxisAttrs{axis});
    const ir::ValueId ctx = m.op(OpKind::kMatMul, {p, vh});
    const ir::ValueId ct = m.op(OpKind::kTranspose, {ctx}, ir::TransposeAttrs{{0, 2, 1, 3}});
    const ir::ValueId merged = m.op(OpKind::kReshape, {ct}, ir::ReshapeAttrs{{0, t, d}, false});
    const ir::ValueId res = m.op(OpKind::kAdd, {x, merged});
    const ir::ValueId ln =
        m.op(OpKind::kLayerNorm, {res, rc.weight(m, {d}, 1.5f), rc.weight(m, {d}, 0.5f)},
             ir::LayerNormAttrs{-1, 1e-5f});
    const ir::ValueId ge =
        m.op(OpKind::kGelu, {linear(ln, d, hidden)}, ir::GeluAttrs{rc.chance(50)});
    const ir::ValueId f2 = linear(ge, hidden, d);
    const ir::ValueId mean = m.op(OpKind::kReduceMean, {f2}, ir::ReduceAttrs{{1}, false});
    const ir::ValueId mx = m.op(OpKind::kReduceMax, {f2}, ir::ReduceAttrs{{1}, false});
    const ir::ValueId sum = m.op(OpKind::kReduceSum, {ln}, ir::ReduceAttrs{{1}, false});
    // Pointwise float ops on the pooled features: exp(-|.|)-like values, sqrt of a positive one.
    const ir::ValueId e = m.op(OpKind::kExp, {m.op(OpKind::kNeg, {mx})});
    const ir::ValueId sq = m.op(OpKind::kSqrt, {e});
    const ir::ValueId pw = m.op(OpKind::kPow, {mean, m.constant(Tensor::from<float>({}, {2.0f}))});
    const ir::ValueId er = m.op(OpKind::kErf, {sum});
    const ir::ValueId sg = m.op(rc.chance(50) ? OpKind::kSigmoid : OpKind::kTanh, {pw});
    const ir::ValueId cat = m.op(OpKind::kConcat, {sq, sg, er}, ir::AxisAttrs{-1});
    const ir::ValueId y = m.op(OpKind::kMatMul, {cat, rc.weight(m, {3 * d, 3}, 1.0f)});
    ir::Graph g = m.finish(y);
    quant::QuantAssignment q;
    for (const ir::Node& n : g.nodes()) {
      const std::string op = ir::mase_op(g, n);
      if (op == "linear" || op == "matmul") q[n.config_name] = rc.weighted();
      if (op == "matmul") q[n.config_name].bias.reset();
      if (op == "matmul") q[n.config_name].data_out.reset();
      if ((op == "layer_norm" || op == "gelu" || op == "tanh" || op == "softmax") &&
          rc.chance(40)) {
        q[n.config_name] = rc.simple(true);
        ++norm_quantized;
        // qsearch's data_out on layer_norm / gelu / softmax: the float result quantized.
        if (op != "tanh" && rc.chance(50)) {
          q[n.config_name].data_out = rc.format(true, false);
          ++outputs_quantized;
        }
      }
    }
    const Tensor xin = rc.input({batch, t, d});
    std::string why;
    const Tensor got = run_int(g, q, xin, false, &why);
    if (got.empty()) continue;
    ++ran;
    const Tensor want = exact_reference(g, q, xin);
    ASSERT_TRUE(same_bits(got, want))
        << make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_TRUE(same_bits(run_int(g, q, xin, true), exact_reference(g, q, xin, true)))
        << "reference kernels";
  }
  EXPECT_GE(ran, 110);
  EXPECT_GE(norm_quantized, 60);
  EXPECT_GE(outputs_quantized, 25);
  EXPECT_GE(softmax_axis1, 15);
}

// The `softmax` key (qsearch's, issue 11) quantizes the Softmax's input and nothing else, in
// both modes: fake and int give the float engine's softmax of q(x, data_in) bit for bit.
TEST(QuantExact, SoftmaxKeyQuantizesItsInputInFakeAndInt) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RandomCase rc(seed + 13000);
    SCOPED_TRACE(seed);
    GraphMaker m({kDynamic, 3, 7});
    const ir::ValueId y =
        m.op(OpKind::kSoftmax, {m.input()}, ir::AxisAttrs{rc.chance(50) ? -1 : 1});
    const ir::Graph g = m.finish(y);
    const NodeQuantConfig c = rc.simple(true);
    const quant::QuantAssignment q = {{g.nodes()[0].config_name, c}};
    Tensor x = rc.input({4, 3, 7});
    Tensor xq = x.clone();
    for (float& v : xq.span<float>()) v = quant::fake_quantize(v, *c.data_in, c.rounding);
    for (bool reference : {false, true}) {
      const Tensor want = run_graph(g, xq, reference);
      auto run = [&](Mode mode) {
        Executor ex(make_plan(
            g, {.mode = mode, .max_batch = 4, .use_reference_kernels = reference, .quant = q}));
        return ex.run(x).clone();
      };
      ASSERT_TRUE(same_bits(run(Mode::kFake), want)) << "fake, reference kernels " << reference;
      ASSERT_TRUE(same_bits(run(Mode::kInt), want)) << "int, reference kernels " << reference;
      ASSERT_FALSE(same_bits(run_graph(g, x, reference), want) && c.data_in->frac < 8)
          << "the input was not quantized";
    }
  }
}

// data_out on layer_norm / gelu / softmax (qsearch's option, issue 11): fake and int compute
// q(op(q(x, data_in)), data_out), the float engine's op between the two quantizers, bit for bit;
// the output is on data_out's grid; and the keys come through the MASE config reader.
TEST(QuantExact, NormGeluSoftmaxDataOutQuantizesTheOutputInFakeAndInt) {
  int coarse = 0;
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    RandomCase rc(seed + 14000);
    SCOPED_TRACE(seed);
    GraphMaker m({kDynamic, 3, 8});
    const int which = static_cast<int>(seed % 3);
    const char* op = std::array{"softmax", "layer_norm", "gelu"}[which];
    ir::ValueId y = -1;
    if (which == 0) {
      y = m.op(OpKind::kSoftmax, {m.input()}, ir::AxisAttrs{rc.chance(50) ? -1 : 1});
    } else if (which == 1) {
      y = m.op(OpKind::kLayerNorm, {m.input(), rc.weight(m, {8}, 1.5f), rc.weight(m, {8}, 0.5f)},
               ir::LayerNormAttrs{-1, 1e-5f});
    } else {
      y = m.op(OpKind::kGelu, {m.input()}, ir::GeluAttrs{rc.chance(50)});
    }
    const ir::Graph g = m.finish(y);
    const int in_w = rc.uniform(4, 12), out_w = rc.uniform(2, 10), out_f = rc.uniform(0, 8);
    const quant::MaseQuantConfig mc{.name = "integer",
                                    .entries = {{"data_in_width", in_w},
                                                {"data_in_frac_width", rc.uniform(0, in_w)},
                                                {"data_out_width", out_w},
                                                {"data_out_frac_width", out_f}}};
    const NodeQuantConfig c = quant::make_node_quant_config(op, mc);
    ASSERT_TRUE(c.data_out.has_value());
    ASSERT_EQ(*c.data_out, (FixedFormat{out_w, out_f, true}));
    const quant::QuantAssignment q = {{g.nodes()[0].config_name, c}};
    Tensor x = rc.input({4, 3, 8});
    Tensor xq = x.clone();
    for (float& v : xq.span<float>()) v = quant::fake_quantize(v, *c.data_in, c.rounding);
    for (bool reference : {false, true}) {
      const Tensor unquantized_out = run_graph(g, xq, reference);
      // fake: fake_quantize; int: the codes dequantized (numerics.md: the same values, except
      // that codes have no -0.0 and no NaN).
      Tensor want = unquantized_out.clone(), want_codes = unquantized_out.clone();
      for (float& v : want.span<float>()) v = quant::fake_quantize(v, *c.data_out, c.rounding);
      for (float& v : want_codes.span<float>()) {
        v = quant::dequantize(quant::quantize(v, *c.data_out, c.rounding), c.data_out->frac);
      }
      auto run = [&](Mode mode) {
        Executor ex(make_plan(
            g, {.mode = mode, .max_batch = 4, .use_reference_kernels = reference, .quant = q}));
        return ex.run(x).clone();
      };
      ASSERT_TRUE(same_bits(run(Mode::kFake), want)) << op << " fake, reference " << reference;
      ASSERT_TRUE(same_bits(run(Mode::kInt), want_codes)) << op << " int, reference " << reference;
      ASSERT_TRUE(same_bits(exact_reference(g, q, x, reference), want_codes)) << op;
      if (!reference && out_f <= 3) coarse += !same_bits(unquantized_out, want);
    }
  }
  EXPECT_GE(coarse, 10);  // the output quantizer changes the values
}

// q with one thing changed on every quantized node: which = 0 weight frac, 1 data_in frac, 2 bias
// frac, 3 rounding.
quant::QuantAssignment vary(quant::QuantAssignment q, int which) {
  for (auto& [name, c] : q) {
    std::optional<FixedFormat>* f = which == 0 ? &c.weight : which == 1 ? &c.data_in : &c.bias;
    if (which == 3) {
      c.rounding = Rounding::kFloor;
    } else if (f->has_value()) {
      (*f)->frac += 1;
    }
  }
  return q;
}

// Plans sharing a PackCache (as a search's trials do) reuse packings and compute the same bits as
// plans that pack their own weights, whichever assignment filled the cache first: a change of the
// weight, activation or bias format or of the rounding is a different packing.
TEST(QuantExact, PackCacheReusesPackingsWithoutChangingResults) {
  size_t hits = 0;
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    RandomCase rc(seed);
    const auto [g, in_shape] = random_graph(rc, seed);
    const quant::QuantAssignment q = rc.assign(g);
    const Tensor x = rc.input(in_shape);
    auto cache = std::make_shared<PackCache>();
    std::string why;
    for (int which : {-1, 0, 1, 2, 3, -1}) {
      SCOPED_TRACE(fmt::format("seed {}, variant {}", seed, which));
      const quant::QuantAssignment qv = which < 0 ? q : vary(q, which);
      const Tensor want = run_int(g, qv, x, false, &why);
      if (want.empty()) continue;  // refused (beyond int64) with or without the cache
      ASSERT_TRUE(same_bits(run_int(g, qv, x, false, &why, cache), want));
    }
    hits += cache->hits();
  }
  EXPECT_GT(hits, 80u);  // every graph has a GEMM or conv, and the last plan repeats the first
}

// ---- ReLU and max pool fused into the conv's store ----------------------------------------------

// conv (quantized) -> `chain` of unquantized ops -> conv (quantized, data_in `in2`) -> flatten ->
// gemm. chain: 'r' ReLU, 'p' MaxPool 2x2 stride 2, 's' MaxPool 2x2 strides (2, 1), 'c' MaxPool
// 2x2 stride 2 ceil_mode, 'q' a quantized ReLU (unsigned in2). `data_out`: the first conv's
// output format is in2 itself.
struct PoolGraph {
  ir::Graph g;
  quant::QuantAssignment q;
  Shape in_shape;
};
PoolGraph pool_graph(const std::string& chain, int64_t c, int64_t h, int64_t w, int64_t oc,
                     const FixedFormat& in2, Rounding r, bool data_out, uint64_t seed) {
  GraphMaker m({kDynamic, c, h, w});
  std::vector<std::pair<std::string, NodeQuantConfig>> pending;
  auto quantize_last = [&](NodeQuantConfig n) {
    pending.emplace_back(m.graph().nodes().back().name, n);
  };
  const NodeQuantConfig conv_q{.quantized = true,
                               .data_in = FixedFormat{8, 4, true},
                               .weight = FixedFormat{8, 6, true},
                               .bias = FixedFormat{16, 8, true},
                               .data_out = data_out ? std::optional(in2) : std::nullopt,
                               .rounding = r};
  ir::ValueId v = m.op(OpKind::kConv,
                       {m.input(), m.constant({oc, c, 3, 3}, seed, -0.8f, 0.8f),
                        m.constant({oc}, seed + 1, -0.5f, 0.5f)},
                       ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
  quantize_last(conv_q);
  for (char op : chain) {
    if (op == 'r' || op == 'q') {
      v = m.op(OpKind::kRelu, {v});
      if (op == 'q') quantize_last({.quantized = true, .data_in = in2, .rounding = r});
    } else {
      v = m.op(OpKind::kMaxPool, {v},
               ir::PoolAttrs{
                   .kernel = {2, 2}, .strides = {2, op == 's' ? 1 : 2}, .ceil_mode = op == 'c'});
    }
  }
  v = m.op(
      OpKind::kConv,
      {v, m.constant({3, oc, 3, 3}, seed + 2, -0.5f, 0.5f), m.constant({3}, seed + 3, -0.3f, 0.3f)},
      ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
  NodeQuantConfig conv2_q = conv_q;
  conv2_q.data_in = in2;
  conv2_q.data_out = std::nullopt;
  quantize_last(conv2_q);
  v = m.op(OpKind::kFlatten, {v}, ir::AxisAttrs{1});
  const int64_t k = m.graph().infer_shapes(1)[v][1];
  v = m.op(OpKind::kGemm,
           {v, m.constant({4, k}, seed + 4, -0.5f, 0.5f), m.constant({4}, seed + 5, -0.2f, 0.2f)},
           ir::GemmAttrs{.trans_b = true});
  quantize_last(conv_q);
  PoolGraph out{m.finish(v), {}, {3, c, h, w}};
  for (const auto& [node, n] : pending) out.q[out.g.find_node(node)->config_name] = n;
  return out;
}

// The conv's requantizing store makes a following unquantized ReLU and 2x2 stride-2 max pool
// (either order, or the pool alone) when nothing else reads them, for every code dtype of the
// store (int8, uint8, int16, int32 codes), every rounding, even and odd sizes (the floor pool
// drops the last row / column), 1-6 channels, with the conv's data_out as the stored format; and
// does not where the pool is another one (strides (2, 1); ceil_mode on odd sizes) or the ReLU is
// quantized (its codes are a step of their own). Fused or not, the result equals the exact
// reference, with the fast and the reference kernels.
TEST(QuantExact, ConvStoreFusesReluAndMaxPool) {
  struct Chain {
    std::string ops;
    bool fuses_pool;  // on even conv output sizes
    bool odd_fuses;   // on odd ones
  };
  const std::vector<Chain> chains = {{"rp", true, true},  {"pr", true, true},   {"p", true, true},
                                     {"r", false, false}, {"rs", false, false}, {"rc", true, false},
                                     {"qp", false, false}};
  const std::vector<FixedFormat> formats = {
      {8, 4, true}, {8, 3, false}, {16, 9, true}, {24, 10, true}};
  struct Size {
    int64_t c, h, w, oc;
  };
  const std::vector<Size> sizes = {{1, 8, 10, 6}, {3, 9, 7, 4}, {2, 6, 6, 1}, {1, 11, 12, 5}};
  int fused = 0, ran = 0;
  uint64_t seed = 100;
  for (const Chain& chain : chains) {
    for (const Size& sz : sizes) {
      for (size_t fi = 0; fi < formats.size(); ++fi) {
        for (Rounding r : {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero, Rounding::kFloor}) {
          const bool data_out = (fi + static_cast<size_t>(r)) % 3 == 0;
          FixedFormat in2 = formats[fi];
          if (chain.ops[0] == 'q') in2.is_signed = false;  // a quantized ReLU's unsigned codes
          SCOPED_TRACE(fmt::format("chain {} C={} {}x{} OC={} in2 {} {}{}", chain.ops, sz.c, sz.h,
                                   sz.w, sz.oc, quant::format_name(in2), quant::rounding_name(r),
                                   data_out ? " data_out" : ""));
          const PoolGraph pg =
              pool_graph(chain.ops, sz.c, sz.h, sz.w, sz.oc, in2, r, data_out, ++seed * 10);
          RandomCase rc(seed);
          const Tensor x = rc.input(pg.in_shape);
          const std::string plan =
              make_plan(pg.g, {.mode = Mode::kInt, .max_batch = 3, .quant = pg.q})->to_string();
          const bool odd = sz.h % 2 == 1 || sz.w % 2 == 1;
          const bool want_fused = odd ? chain.odd_fuses : chain.fuses_pool;
          ASSERT_EQ(plan.find("+maxpool2x2") != std::string::npos, want_fused) << plan;
          ASSERT_EQ(plan.find("max_pool2d_int") != std::string::npos,
                    !want_fused && chain.ops != "r")
              << plan;
          fused += want_fused;
          ++ran;
          const Tensor want = exact_reference(pg.g, pg.q, x);
          ASSERT_TRUE(same_bits(run_int(pg.g, pg.q, x, false), want)) << plan;
          ASSERT_TRUE(same_bits(run_int(pg.g, pg.q, x, true), want)) << "reference kernels";
        }
      }
    }
  }
  EXPECT_GE(fused, ran / 2);
}

// Issue 14: a quantized conv or linear whose output goes only to an unquantized Clip (ReLU6, read
// only as the next quantized node's codes) writes those codes with the Clip's bounds in its
// store (GemmParams::clamp_lo / clamp_hi) when its accumulator bound is below 2^24 (the float
// store would round nothing), and the Clip costs no step; otherwise (wider formats, min > max,
// the Clip's output read in float too) the float store, Clip and quantizer run as before. Fused
// or not, the int engine equals the exact reference (which runs the Clip in float on the value
// rounded once), with the fast and the reference kernels: random formats and roundings, bounds
// on and off the code grid, infinite and equal bounds, depthwise and dense convs and a Gemm.
// (Crossed bounds, min > max, are never fused: the fast and reference float Clip kernels
// disagree on them.)
TEST(QuantExact, ConvAndLinearStoresFuseClip) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<float, float>> bounds = {{0.0f, 6.0f}, {-1.5f, 2.25f}, {0.1f, 0.7f},
                                                       {-inf, 1.0f}, {0.5f, inf},    {1.0f, 1.0f}};
  int fused = 0, ran = 0;
  for (uint64_t seed = 1; seed <= 140; ++seed) {
    RandomCase rc(seed * 7717);
    const auto [lo, hi] = bounds[seed / 3 % bounds.size()];
    const int64_t c = rc.uniform(1, 4), hw = rc.uniform(3, 9), batch = rc.uniform(1, 3);
    const bool int8 = seed % 3 != 0;  // MobileNet's formats, else random ones
    auto conv_q = [&] {
      if (!int8) return rc.weighted();
      return NodeQuantConfig{.quantized = true,
                             .data_in = FixedFormat{8, 4, true},
                             .weight = FixedFormat{8, 6, true},
                             .bias = FixedFormat{16, 8, true},
                             .rounding = rc.rounding()};
    };
    GraphMaker m({kDynamic, c, hw, hw});
    std::vector<std::pair<std::string, NodeQuantConfig>> pending;
    auto quantize_last = [&](NodeQuantConfig n) {
      pending.emplace_back(m.graph().nodes().back().name, n);
    };
    const int64_t e = c * rc.uniform(1, 3);
    ir::ValueId v =
        m.op(OpKind::kConv, {m.input(), rc.weight(m, {e, c, 1, 1}, 0.8f), rc.weight(m, {e}, 0.5f)},
             ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(conv_q());
    v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = lo, .max = hi});
    v = m.op(OpKind::kConv, {v, rc.weight(m, {e, 1, 3, 3}, 0.8f), rc.weight(m, {e}, 0.5f)},
             ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}, .group = e});
    quantize_last(conv_q());
    v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = lo, .max = hi});
    v = m.op(OpKind::kFlatten, {v}, ir::AxisAttrs{1});
    const int64_t k = m.graph().infer_shapes(1)[v][1];
    v = m.op(OpKind::kGemm, {v, rc.weight(m, {5, k}, 0.5f), rc.weight(m, {5}, 0.2f)},
             ir::GemmAttrs{.trans_b = true});
    quantize_last(conv_q());
    v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = lo, .max = hi});
    v = m.op(OpKind::kGemm, {v, rc.weight(m, {3, 5}, 0.5f)}, ir::GemmAttrs{.trans_b = true});
    quantize_last(conv_q());
    const ir::Graph g = m.finish(v);
    quant::QuantAssignment q;
    for (const auto& [node, n] : pending) q[g.find_node(node)->config_name] = n;
    const Tensor x = rc.input({batch, c, hw, hw});
    SCOPED_TRACE(fmt::format("seed {} clip [{}, {}] {}", seed, lo, hi, int8 ? "int8" : "random"));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const std::string plan =
        make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    const bool has_fused = plan.find("clip [") != std::string::npos;
    if (int8) {
      // int8 x int8 sums of these sizes stay far below 2^24: every Clip fuses.
      ASSERT_TRUE(has_fused) << plan;
    }
    fused += has_fused;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(got, want)) << plan;
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
  }
  EXPECT_GE(ran, 120);
  EXPECT_GE(fused, ran / 2);
}

// Issue 14: a quantized conv whose float output goes only to an unquantized BatchNormalization
// (MASE keeps BN in float), optionally followed by the BN output's one reader, an unquantized
// Relu or Clip, applies the BN's channel affine and the activation in its float store
// (GemmParams::post_scale) and the BN / activation cost no step. The fused plan equals the exact
// reference (the separate float steps on the value rounded once) and the reference-kernel plan
// (which keeps the steps) bit for bit: random formats and roundings, dense, grouped and depthwise
// convs (every conv2d path: pixel-major, batch-blocked, the depthwise lanes), maps of 1x1 to
// 12x12, batch 1..5, up to 20 output channels (several 16-channel blocks; every 8th case 32-40
// input channels, 3x3 stride 1: the integer Winograd path), BN constants with negative
// scales and zero / negative-zero shifts, Clip bounds on and off zero (crossed ones too: the fast
// Clip kernel's min-then-max, which the fused store follows). Not fused where the BN (or the
// activation) output is read twice or is a graph output; correct there too.
TEST(QuantExact, ConvStoreFusesFloatBatchNormAndActivation) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<float, float>> clips = {
      {0.0f, 6.0f}, {-0.75f, 0.5f}, {-inf, 0.25f}, {0.0f, 0.0f}, {1.0f, -1.0f}};
  int fused = 0, fused_winograd = 0, ran = 0;
  for (uint64_t seed = 1; seed <= 160; ++seed) {
    RandomCase rc(seed * 9241);
    const int act = static_cast<int>(seed % 3);  // 0: none, 1: Relu, 2: Clip
    // 0: a chain into a second conv; 1: the activation's (or BN's) float output is the graph's,
    // compared bit for bit; 2: the conv's output is a graph output too; 3: the BN's output is
    // read by the activation (if any) and another conv.
    const int shape = static_cast<int>(seed / 3 % 4);
    const auto [lo, hi] = clips[seed / 12 % clips.size()];
    // Every 8th case is sized for the integer Winograd path (3x3, stride 1, >= 32 channels).
    const bool wino = seed % 8 == 0;
    const int64_t c = wino ? rc.uniform(32, 40) : rc.uniform(1, 6);
    const int64_t hw = wino ? rc.uniform(6, 12) : rc.uniform(1, 12), batch = rc.uniform(1, 5);
    const int kind = wino ? 0 : rc.uniform(0, 2);  // dense, grouped, depthwise
    const int64_t groups = kind == 0 ? 1 : kind == 1 && c % 2 == 0 ? 2 : c;
    const int64_t oc = kind == 2 ? c * rc.uniform(1, 2) : groups * rc.uniform(1, 20 / groups);
    const int64_t k = wino || (hw >= 3 && rc.chance(70)) ? 3 : 1;
    const int64_t pad = k == 3 ? rc.uniform(0, 1) : 0;
    GraphMaker m({kDynamic, c, hw, hw});
    std::vector<std::pair<std::string, NodeQuantConfig>> pending;
    auto quantize_last = [&](NodeQuantConfig n) {
      pending.emplace_back(m.graph().nodes().back().name, n);
    };
    std::vector<ir::ValueId> ins = {m.input(), rc.weight(m, {oc, c / groups, k, k}, 0.8f)};
    if (rc.chance(70)) ins.push_back(rc.weight(m, {oc}, 0.5f));
    ir::ValueId v = m.op(OpKind::kConv, ins,
                         ir::ConvAttrs{.kernel = {k, k},
                                       .strides = {wino ? 1 : rc.uniform(1, 2), 1},
                                       .pads = {pad, pad, pad, pad},
                                       .group = groups});
    const NodeQuantConfig first = rc.weighted();
    quantize_last(first);  // with data_out the BN reads its dequantized codes: not fused
    if (shape == 2) m.graph().mark_output(v);
    // gamma of both signs; a zero shift of either sign for some channels.
    Tensor gamma({oc}, DType::kFloat32), beta({oc}, DType::kFloat32), mean({oc}, DType::kFloat32),
        var({oc}, DType::kFloat32);
    for (int64_t i = 0; i < oc; ++i) {
      gamma.data<float>()[i] = (rc.chance(30) ? -1.0f : 1.0f) * (0.25f + rc.uniform(0, 8) / 4.0f);
      var.data<float>()[i] = rc.chance(50) ? 1.0f - 1e-5f : 0.1f + rc.uniform(0, 20) / 7.0f;
      const bool zero_shift = rc.chance(25);  // shift = beta - mean * a = +0 or -0
      mean.data<float>()[i] = zero_shift ? 0.0f : (rc.uniform(0, 16) - 8) / 5.0f;
      beta.data<float>()[i] =
          zero_shift ? (rc.chance(50) ? 0.0f : -0.0f) : (rc.uniform(0, 16) - 8) / 3.0f;
    }
    const ir::ValueId bn = m.op(OpKind::kBatchNorm,
                                {v, m.constant(std::move(gamma)), m.constant(std::move(beta)),
                                 m.constant(std::move(mean)), m.constant(std::move(var))},
                                ir::BatchNormAttrs{});
    v = bn;
    if (act == 1) v = m.op(OpKind::kRelu, {v});
    if (act == 2) v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = lo, .max = hi});
    const ir::ValueId pre = v;
    v = m.op(OpKind::kConv, {pre, rc.weight(m, {3, oc, 1, 1}, 0.8f)},
             ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(rc.weighted());
    if (shape == 3) {
      const ir::ValueId u = m.op(OpKind::kConv, {bn, rc.weight(m, {3, oc, 1, 1}, 0.8f)},
                                 ir::ConvAttrs{.kernel = {1, 1}});
      quantize_last(rc.weighted());
      v = m.op(OpKind::kAdd, {v, u});
    }
    const ir::Graph g = m.finish(shape == 1 ? pre : v);
    quant::QuantAssignment q;
    for (const auto& [node, n] : pending) {
      if (const ir::Node* nd = g.find_node(node)) q[nd->config_name] = n;
    }
    const Tensor x = rc.input({batch, c, hw, hw});
    SCOPED_TRACE(fmt::format("seed {} C={} OC={} groups={} {}x{} k={} batch {} act {} shape {}",
                             seed, c, oc, groups, hw, hw, k, batch, act, shape));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const std::string plan =
        make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    const bool has_fused = plan.find("+batchnorm") != std::string::npos;
    ASSERT_EQ(has_fused, shape != 2 && !first.data_out) << plan;
    ASSERT_EQ(plan.find("channel_affine_f32") == std::string::npos, has_fused) << plan;
    if (act != 0) {
      // The activation fuses with the BN unless the BN's output has another reader.
      const bool act_step = plan.find(act == 1 ? "relu_f32" : "clip_f32") != std::string::npos;
      ASSERT_EQ(act_step, !has_fused || shape == 3) << plan;
    }
    fused += has_fused;
    fused_winograd += has_fused && plan.find(" winograd") != std::string::npos;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
    ASSERT_TRUE(same_bits(got, want)) << plan;
  }
  EXPECT_GE(ran, 140);
  EXPECT_GE(fused, ran / 3);
  EXPECT_GE(fused_winograd, 3);  // the fused store behind the Winograd path
}

// Issue 14: when the fused float store's value (conv -> float BatchNorm -> Relu / Clip / none)
// is read only as the codes of one format (one quantized reader, or several with the same
// data_in format and rounding), the store writes those codes itself (GemmParams::post_quantize):
// the float tensor and the QuantizeStep go. Kept as today where a reader wants float (an
// unquantized Add, a graph output), where two readers want different formats, and for codes
// wider than 24 bits. Every plan equals the exact reference and the reference-kernel plan bit for
// bit. Half of the graphs have power-of-two BN scales with epsilon 0 and dyadic shifts, so the
// stored floats lie on dyadic grids and the quantizer meets exact ties; random formats (frac
// widths -3..14 and above the width, widths 1..32), the three roundings, dense / grouped /
// depthwise / Winograd-sized convs.
// The conv of the conv-store fusion tests: dense, grouped or depthwise (dense 3x3 stride 1, a
// Winograd candidate, when `wino`), 1x1 or 3x3 padded, with a bias 70 % of the time, reading
// the graph's input of c channels on hw x hw maps.
struct StoreConv {
  ir::ValueId v;  // its output
  int64_t oc, groups, k;
};
StoreConv random_store_conv(RandomCase& rc, GraphMaker& m, bool wino, int64_t c, int64_t hw) {
  const int kind = wino ? 0 : rc.uniform(0, 2);  // dense, grouped, depthwise
  StoreConv r;
  r.groups = kind == 0 ? 1 : kind == 1 && c % 2 == 0 ? 2 : c;
  r.oc = kind == 2 ? c * rc.uniform(1, 2) : r.groups * rc.uniform(1, 20 / r.groups);
  r.k = wino || (hw >= 3 && rc.chance(70)) ? 3 : 1;
  const int64_t k = r.k, pad = k == 3 ? 1 : 0;
  std::vector<ir::ValueId> ins = {m.input(), rc.weight(m, {r.oc, c / r.groups, k, k}, 0.8f)};
  if (rc.chance(70)) ins.push_back(rc.weight(m, {r.oc}, 0.5f));
  r.v = m.op(OpKind::kConv, ins,
             ir::ConvAttrs{.kernel = {k, k},
                           .strides = {wino ? 1 : rc.uniform(1, 2), 1},
                           .pads = {pad, pad, pad, pad},
                           .group = r.groups});
  return r;
}

TEST(QuantExact, ConvStoreQuantizesForItsReadersOneFormat) {
  int ran = 0, quantizing = 0, wide = 0, kept = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    RandomCase rc(seed * 7919 + 5);
    // 0: one quantized reader; 1: two readers with the same format; 2: two readers with
    // different formats; 3: a quantized reader and a float Add; 4: a reader and a graph output.
    const int shape = static_cast<int>(seed % 5);
    const int act = static_cast<int>(seed / 5 % 3);  // 0: none, 1: Relu, 2: Clip [-1, 6]
    const bool dyadic = seed % 2 == 0;
    const bool wino = seed % 7 == 0;
    const int64_t c = wino ? rc.uniform(32, 36) : rc.uniform(1, 6);
    const int64_t hw = wino ? rc.uniform(6, 10) : rc.uniform(1, 10), batch = rc.uniform(1, 4);
    GraphMaker m({kDynamic, c, hw, hw});
    std::vector<std::pair<std::string, NodeQuantConfig>> pending;
    auto quantize_last = [&](NodeQuantConfig n) {
      pending.emplace_back(m.graph().nodes().back().name, n);
    };
    const auto [conv, oc, groups, k] = random_store_conv(rc, m, wino, c, hw);
    ir::ValueId v = conv;
    NodeQuantConfig first = rc.weighted();
    first.data_out.reset();  // the BN reads the float store (fuse_affine)
    quantize_last(first);
    Tensor gamma({oc}, DType::kFloat32), beta({oc}, DType::kFloat32), mean({oc}, DType::kFloat32),
        var({oc}, DType::kFloat32);
    for (int64_t i = 0; i < oc; ++i) {
      const float sign = rc.chance(30) ? -1.0f : 1.0f;
      if (dyadic) {  // a = gamma exactly, shift = beta - mean: values stay dyadic
        gamma.data<float>()[i] = sign * std::ldexp(1.0f, rc.uniform(-2, 2));
        var.data<float>()[i] = 1.0f;
        mean.data<float>()[i] =
            std::ldexp(static_cast<float>(rc.uniform(-8, 8)), -rc.uniform(0, 4));
        beta.data<float>()[i] =
            rc.chance(20) ? -0.0f
                          : std::ldexp(static_cast<float>(rc.uniform(-8, 8)), -rc.uniform(0, 5));
      } else {
        gamma.data<float>()[i] = sign * (0.25f + rc.uniform(0, 8) / 4.0f);
        var.data<float>()[i] = 0.1f + rc.uniform(0, 20) / 7.0f;
        mean.data<float>()[i] = (rc.uniform(0, 16) - 8) / 5.0f;
        beta.data<float>()[i] = (rc.uniform(0, 16) - 8) / 3.0f;
      }
    }
    v = m.op(OpKind::kBatchNorm,
             {v, m.constant(std::move(gamma)), m.constant(std::move(beta)),
              m.constant(std::move(mean)), m.constant(std::move(var))},
             ir::BatchNormAttrs{.epsilon = dyadic ? 0.0f : 1e-5f});
    if (act == 1) v = m.op(OpKind::kRelu, {v});
    if (act == 2) v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = -1.0f, .max = 6.0f});
    const ir::ValueId pre = v;
    const NodeQuantConfig second = rc.weighted();
    // shape 3: the value read in float too, by an unquantized Add of it and the conv's output.
    const ir::ValueId y1 =
        m.op(OpKind::kConv, {pre, rc.weight(m, {shape == 3 ? oc : 3, oc, 1, 1}, 0.8f)},
             ir::ConvAttrs{.kernel = {1, 1}});
    quantize_last(second);
    ir::ValueId out = y1;
    if (shape == 1 || shape == 2) {
      NodeQuantConfig third = rc.weighted();
      if (shape == 1) {
        third.data_in = second.data_in;
        third.rounding = second.rounding;
      } else if (third.data_in == second.data_in && third.rounding == second.rounding) {
        third.data_in->frac += 1;
      }
      const ir::ValueId y2 = m.op(OpKind::kConv, {pre, rc.weight(m, {3, oc, 1, 1}, 0.8f)},
                                  ir::ConvAttrs{.kernel = {1, 1}});
      quantize_last(third);
      out = m.op(OpKind::kAdd, {y1, y2});
    } else if (shape == 3) {
      out = m.op(OpKind::kAdd, {pre, y1});
    } else if (shape == 4) {
      m.graph().mark_output(pre);
    }
    const ir::Graph g = m.finish(out);
    quant::QuantAssignment q;
    for (const auto& [node, n] : pending) {
      if (const ir::Node* nd = g.find_node(node)) q[nd->config_name] = n;
    }
    const Tensor x = rc.input({batch, c, hw, hw});
    SCOPED_TRACE(
        fmt::format("seed {} C={} OC={} groups={} {}x{} k={} batch {} act {} shape {} "
                    "dyadic {} data_in {}",
                    seed, c, oc, groups, hw, hw, k, batch, act, shape, dyadic,
                    quant::format_name(*second.data_in)));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const std::string plan =
        make_plan(g, {.mode = Mode::kInt, .max_batch = batch, .quant = q})->to_string();
    ASSERT_NE(plan.find("+batchnorm"), std::string::npos) << plan;  // fuse_affine applies
    const bool narrow = second.data_in->width <= 24;
    const bool want_fused = (shape == 0 || shape == 1) && narrow;
    const bool has_fused = plan.find("+quantize -> ") != std::string::npos;
    ASSERT_EQ(has_fused, want_fused) << plan;
    // The separate quantizer of the stored value is there exactly when the store does not fuse it.
    const bool quantize_step =
        plan.find(fmt::format("quantize '{}'", g.value(pre).name)) != std::string::npos;
    ASSERT_EQ(quantize_step, !has_fused) << plan;
    quantizing += has_fused;
    wide += (shape == 0 || shape == 1) && !narrow;
    kept += !has_fused;
    const Tensor want = exact_reference(g, q, x);
    ASSERT_TRUE(same_bits(run_int(g, q, x, true), want)) << "reference kernels";
    ASSERT_TRUE(same_bits(got, want)) << plan;
  }
  EXPECT_GE(ran, 130);
  EXPECT_GE(quantizing, 40);
  EXPECT_GE(wide, 1);
  EXPECT_GE(kept, 60);
}

// Issue 14: an unquantized SiLU (Sigmoid and Mul of one value, either operand order) of the
// fused conv (+ float BatchNorm) store (EfficientNet's conv + BN + SiLU) runs in the store
// (GemmParams::post_silu, "+silu" in the plan) with the Sigmoid step's own vector sigmoid, so the
// output has the bits of the same graph whose BN output is also a graph output (which keeps the
// Sigmoid and Mul steps). The SiLU's value then feeds: a quantized conv (the store writes its
// codes), the graph output, or an SE block (GlobalAveragePool, quantized 1x1 conv, Sigmoid, Mul);
// dense / grouped / depthwise / Winograd-sized convs, maps 1x1..12x12, batches 1..5, a Relu or
// Clip before the SiLU sometimes, and no BatchNorm (conv -> SiLU: the identity affine) in a
// quarter of the graphs. Not fused (and still equal) when the Sigmoid's output is read
// elsewhere (a graph output) or the conv's codes are its output (data_out).
TEST(QuantExact, ConvStoreFusesFloatSilu) {
  int ran = 0, fused = 0, fused_codes = 0, fused_bare = 0, kept = 0;
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    // 0: into a quantized conv; 1: the graph output; 2: an SE block, then a quantized conv.
    const int shape = static_cast<int>(seed % 3);
    // Every 4th graph has no BatchNorm (folded, torch.onnx.export's default): conv -> SiLU.
    const bool bn_node = seed % 4 != 3;
    const int act = !bn_node         ? 0
                    : seed % 11 == 0 ? 1
                    : seed % 13 == 0 ? 2
                                     : 0;  // Relu / Clip before the SiLU
    const bool swap = seed / 3 % 2 == 1;   // Mul(sigmoid, y)
    const bool sig_read = seed % 17 == 0;  // the Sigmoid's output is a graph output too
    auto build = [&](bool keep_steps, quant::QuantAssignment* q, Tensor* x) {
      RandomCase rc(seed * 6421 + 3);
      const bool wino = seed % 9 == 0;
      const int64_t c = wino ? rc.uniform(32, 36) : rc.uniform(1, 20);
      const int64_t hw = wino ? rc.uniform(6, 10) : rc.uniform(1, 12), batch = rc.uniform(1, 5);
      GraphMaker m({kDynamic, c, hw, hw});
      std::vector<std::pair<std::string, NodeQuantConfig>> pending;
      auto quantize_last = [&](NodeQuantConfig n) {
        pending.emplace_back(m.graph().nodes().back().name, n);
      };
      const auto [conv, oc, groups, k] = random_store_conv(rc, m, wino, c, hw);
      ir::ValueId v = conv;
      NodeQuantConfig first = rc.weighted();
      first.data_out.reset();
      if (seed % 19 == 0) first.data_out = rc.format(true, false);  // BN reads codes: not fused
      quantize_last(first);
      if (bn_node) {
        Tensor gamma({oc}, DType::kFloat32), beta({oc}, DType::kFloat32),
            mean({oc}, DType::kFloat32), var({oc}, DType::kFloat32);
        for (int64_t i = 0; i < oc; ++i) {
          gamma.data<float>()[i] =
              (rc.chance(30) ? -1.0f : 1.0f) * (0.25f + rc.uniform(0, 8) / 4.0f);
          var.data<float>()[i] = 0.1f + rc.uniform(0, 20) / 7.0f;
          mean.data<float>()[i] = (rc.uniform(0, 16) - 8) / 5.0f;
          beta.data<float>()[i] = (rc.uniform(0, 16) - 8) / 3.0f;
        }
        const ir::ValueId bn = m.op(OpKind::kBatchNorm,
                                    {v, m.constant(std::move(gamma)), m.constant(std::move(beta)),
                                     m.constant(std::move(mean)), m.constant(std::move(var))},
                                    ir::BatchNormAttrs{});
        v = bn;
      }
      if (act == 1) v = m.op(OpKind::kRelu, {v});
      if (act == 2) v = m.op(OpKind::kClip, {v}, ir::ClipAttrs{.min = -1.0f, .max = 6.0f});
      const ir::ValueId y = v;
      const ir::ValueId sig = m.op(OpKind::kSigmoid, {y});
      v = m.op(OpKind::kMul, swap ? std::vector<ir::ValueId>{sig, y} : std::vector{y, sig});
      if (shape == 2) {
        ir::ValueId se = m.op(OpKind::kGlobalAveragePool, {v});
        se = m.op(OpKind::kConv, {se, rc.weight(m, {oc, oc, 1, 1}, 0.8f)},
                  ir::ConvAttrs{.kernel = {1, 1}});
        quantize_last(rc.weighted());
        se = m.op(OpKind::kSigmoid, {se});
        v = m.op(OpKind::kMul, {v, se});
      }
      if (shape != 1) {
        v = m.op(OpKind::kConv, {v, rc.weight(m, {3, oc, 1, 1}, 0.8f)},
                 ir::ConvAttrs{.kernel = {1, 1}});
        NodeQuantConfig last = rc.weighted();
        last.data_in->width = std::min(last.data_in->width, 16);  // codes the store can write
        quantize_last(last);
      }
      m.graph().mark_output(v);
      if (sig_read) m.graph().mark_output(sig);
      if (keep_steps) m.graph().mark_output(y);  // y read as itself: no SiLU in the store
      m.graph().finalize();
      for (const auto& [node, n] : pending) {
        if (const ir::Node* nd = m.graph().find_node(node)) (*q)[nd->config_name] = n;
      }
      *x = rc.input({batch, c, hw, hw});
      SCOPED_TRACE(
          fmt::format("C={} OC={} groups={} {}x{} k={} batch {}", c, oc, groups, hw, hw, k, batch));
      return std::move(m.graph());
    };
    quant::QuantAssignment q, q2;
    Tensor x, x2;
    const ir::Graph g = build(false, &q, &x);
    const ir::Graph kept_g = build(true, &q2, &x2);
    SCOPED_TRACE(fmt::format("seed {} shape {} act {} swap {} sig_read {}", seed, shape, act, swap,
                             sig_read));
    std::string why;
    const Tensor got = run_int(g, q, x, false, &why);
    if (got.empty()) continue;
    ++ran;
    const std::string plan =
        make_plan(g, {.mode = Mode::kInt, .max_batch = x.dim(0), .quant = q})->to_string();
    const std::string kept_plan =
        make_plan(kept_g, {.mode = Mode::kInt, .max_batch = x.dim(0), .quant = q2})->to_string();
    const bool has_silu = plan.find("+silu") != std::string::npos;
    ASSERT_EQ(has_silu, !sig_read && seed % 19 != 0) << plan;
    ASSERT_EQ(kept_plan.find("+silu"), std::string::npos) << kept_plan;
    fused += has_silu;
    fused_codes += has_silu && shape == 0 && plan.find("+silu +quantize") != std::string::npos;
    fused_bare += has_silu && plan.find("+batchnorm") == std::string::npos;
    kept += !has_silu;
    ASSERT_TRUE(same_bits(got, run_int(kept_g, q2, x2, false))) << plan << "\n" << kept_plan;
  }
  EXPECT_GE(ran, 110);
  EXPECT_GE(fused_bare, 20);
  EXPECT_GE(fused, 80);
  EXPECT_GE(fused_codes, 20);
  EXPECT_GE(kept, 10);
}

}  // namespace
}  // namespace qsearch::runtime
