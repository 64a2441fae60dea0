// Plan-level edge cases of the quantized modes: the accumulator at the int32 / int64 edge, a
// refused overflow, bias binary points above and below the products', requantization between
// formats, unsigned relu codes, bit-packed parameter bytes, configuration errors, and the
// executor guarantees (no allocation, thread-count independence) for int and fake plans.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "quant/quantize.h"
#include "runtime/executor.h"
#include "runtime/node_quant.h"
#include "runtime/plan.h"
#include "runtime/quant_reference.h"
#include "runtime/runtime_test_util.h"
#include "runtime/test_models.h"

namespace qsearch::runtime {
namespace {

using ir::OpKind;
using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::QuantAssignment;
using testing::exact_reference;
using testing::GraphMaker;

Tensor run(const std::shared_ptr<const Plan>& plan, const Tensor& x) {
  Executor ex(plan);
  return ex.run(x).clone();
}

::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return ::testing::AssertionFailure() << "shapes differ";
  if (std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0) {
    for (int64_t i = 0; i < a.numel(); ++i) {
      if (std::memcmp(a.data<float>() + i, b.data<float>() + i, 4) != 0) {
        return ::testing::AssertionFailure()
               << "element " << i << ": " << a.data<float>()[i] << " vs " << b.data<float>()[i];
      }
    }
  }
  return ::testing::AssertionSuccess();
}

std::string describe_steps(const Plan& p) {
  std::string s;
  for (const auto& st : p.steps()) s += st->describe() + "\n";
  return s;
}

NodeQuantConfig linear_cfg(FixedFormat in, FixedFormat w, std::optional<FixedFormat> b) {
  return {.quantized = true, .data_in = in, .weight = w, .bias = b};
}

// x [B, 513] -> Gemm (one output) -> quantized relu u32.0 -> output. Weights -32767 (512 of them)
// and -511 (sum of magnitudes 2^24 - 1), inputs at -128: the sum is 2^31 - 128, plus the bias.
ir::Graph edge_graph(float bias) {
  GraphMaker m({kDynamic, 513});
  Tensor w({1, 513}, DType::kFloat32);
  for (int i = 0; i < 512; ++i) w.data<float>()[i] = -32767.0f;
  w.data<float>()[512] = -511.0f;
  ir::ValueId y =
      m.op(OpKind::kGemm,
           {m.input(), m.constant(std::move(w)), m.constant(Tensor::from<float>({1}, {bias}))},
           ir::GemmAttrs{.trans_b = true});
  y = m.op(OpKind::kRelu, {y});
  return m.finish(y);
}

TEST(QuantEdges, AccumulatorAtTheInt32AndInt64Edge) {
  Tensor x({2, 513}, DType::kFloat32);
  for (float& v : x.span<float>()) v = -128.0f;
  x.data<float>()[513 + 7] = 5.0f;  // a second row below the edge
  // bias 127 (s8.0): worst case exactly 2^31 - 1 -> int32; bias 128 (s9.0): 2^31 -> int64.
  for (auto [bias, bias_width, acc] :
       {std::tuple{127.0f, 8, "acc int32"}, std::tuple{128.0f, 9, "acc int64"}}) {
    const ir::Graph g = edge_graph(bias);
    QuantAssignment q;
    q[g.nodes()[0].config_name] =
        linear_cfg({8, 0, true}, {16, 0, true}, FixedFormat{bias_width, 0, true});
    q[g.nodes()[1].config_name] = {.quantized = true, .data_in = FixedFormat{32, 0, false}};
    auto plan = make_plan(g, {.mode = Mode::kInt, .max_batch = 2, .quant = q});
    EXPECT_NE(describe_steps(*plan).find(acc), std::string::npos) << plan->to_string();
    const Tensor got = run(plan, x);
    EXPECT_TRUE(same_bits(got, exact_reference(g, q, x)));
    // The exact sum reaches the edge: 2^31 - 1 (or 2^31), seen through float32 as 2^31.
    EXPECT_EQ(got.data<float>()[0], 2147483648.0f);
  }
}

TEST(QuantEdges, AccumulatorBeyondInt64IsRefusedNamingNodeAndFormats) {
  GraphMaker m({kDynamic, 784});
  ir::ValueId y = m.op(OpKind::kGemm, {m.input(), m.constant({10, 784}, 3, 1e8f, 2e9f)},
                       ir::GemmAttrs{.trans_b = true});
  const ir::Graph g = m.finish(y);
  QuantAssignment q;
  q[g.nodes()[0].config_name] = linear_cfg({32, 0, true}, {32, 0, true}, std::nullopt);
  try {
    make_plan(g, {.mode = Mode::kInt, .quant = q});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& part : std::vector<std::string>{
             g.nodes()[0].name, "beyond int64", "data_in s32.0", "weight s32.0", "fan-in 784"}) {
      EXPECT_NE(msg.find(part), std::string::npos) << msg << "\n  lacks: " << part;
    }
  }
  // The same configuration runs in fake mode (float accumulation cannot overflow int64).
  EXPECT_NO_THROW(make_plan(g, {.mode = Mode::kFake, .quant = q}));
}

// Gemm -> (quantized relu, and the graph output): the exact accumulator is kept once and both
// representations are made from it.
TEST(QuantEdges, BiasBinaryPointAboveAndBelowTheProducts) {
  for (int bias_frac : {20, 2}) {
    GraphMaker m({kDynamic, 37});
    ir::ValueId y =
        m.op(OpKind::kGemm, {m.input(), m.constant({5, 37}, 7), m.constant({5}, 8, -0.7f, 0.7f)},
             ir::GemmAttrs{.trans_b = true});
    ir::ValueId r = m.op(OpKind::kRelu, {y});
    ir::ValueId s = m.op(OpKind::kAdd, {r, y});
    const ir::Graph g = m.finish(s);
    QuantAssignment q;
    q[g.nodes()[0].config_name] =
        linear_cfg({8, 4, true}, {8, 6, true}, FixedFormat{16, bias_frac, true});
    q[g.nodes()[1].config_name] = {.quantized = true, .data_in = FixedFormat{6, 3, false}};
    auto plan = make_plan(g, {.mode = Mode::kInt, .max_batch = 4, .quant = q});
    int acc_frac = -1000;
    for (const Slot& sl : plan->slots()) {
      if (sl.name.ends_with(":acc")) acc_frac = sl.frac;
    }
    EXPECT_EQ(acc_frac, std::max(4 + 6, bias_frac)) << plan->to_string();
    const Tensor x = testing::random_tensor({4, 37}, 9, -3.0f, 3.0f);
    EXPECT_TRUE(same_bits(run(plan, x), exact_reference(g, q, x))) << plan->to_string();
  }
}

// A linear without bias_* keys keeps its bias in float (docs/config.md): `fake` adds the float32
// bias, `int` rounds it once into the accumulator's grid (or the finest s32 grid that holds it)
// and adds it exactly. Biases far beyond what s32 holds at the products' binary point (32 here,
// so |b| >= 0.5 would saturate) must come through unchanged, in both modes.
TEST(QuantEdges, BiasWithoutBiasKeysStaysFloat) {
  for (const auto& [in, w, biases] :
       {std::tuple{FixedFormat{32, 16, true}, FixedFormat{32, 16, true},
                   std::vector<float>{3.25f, -0.75f, 1000.0f, 0.001f, -7.5f}},
        std::tuple{FixedFormat{32, 16, true}, FixedFormat{32, 16, true},
                   std::vector<float>{0.3f, -0.4f, 0.1f, 0.0f, 0.2f}},
        std::tuple{FixedFormat{8, 4, true}, FixedFormat{8, 4, true},
                   std::vector<float>{2.3f, -1.1f, 0.01f, 0.0f, -5.0f}}}) {
    GraphMaker m({kDynamic, 37});
    const Tensor weights = testing::random_tensor({5, 37}, 7, -0.5f, 0.5f);
    ir::ValueId y = m.op(OpKind::kGemm,
                         {m.input(), m.constant(weights.clone()),
                          m.constant(Tensor::from<float>({5}, std::vector<float>(biases)))},
                         ir::GemmAttrs{.trans_b = true});
    const ir::Graph g = m.finish(y);
    QuantAssignment q;
    q[g.nodes()[0].config_name] = linear_cfg(in, w, std::nullopt);
    const Tensor x = testing::random_tensor({4, 37}, 9, -3.0f, 3.0f);
    // Expected: q(x) . q(W) + b, the bias unquantized, in double.
    const Tensor qx = quant::fake_quantize(x, in, quant::Rounding::kHalfToEven);
    const Tensor qw = quant::fake_quantize(weights, w, quant::Rounding::kHalfToEven);
    const Tensor got_int = run(make_plan(g, {.mode = Mode::kInt, .max_batch = 4, .quant = q}), x);
    const int bias_frac =
        float_bias_format(Tensor::from<float>({5}, biases), in.frac + w.frac).frac;
    EXPECT_LE(bias_frac, in.frac + w.frac);
    EXPECT_GE(bias_frac, in.frac + w.frac == 32 ? 20 : in.frac + w.frac);
    const Tensor got_fake = run(make_plan(g, {.mode = Mode::kFake, .max_batch = 4, .quant = q}), x);
    for (int64_t r = 0; r < 4; ++r) {
      for (int64_t j = 0; j < 5; ++j) {
        double want = biases[j];
        for (int64_t k = 0; k < 37; ++k) {
          want += static_cast<double>(qx.data<float>()[r * 37 + k]) * qw.data<float>()[j * 37 + k];
        }
        // int: exact sum, the bias rounded once (half a step of its grid), one rounding to float.
        const double tol = std::ldexp(1.0, -bias_frac - 1) + 1e-6 * std::max(1.0, std::fabs(want));
        EXPECT_NEAR(got_int.data<float>()[r * 5 + j], want, tol)
            << quant::format_name(in) << " row " << r << " output " << j;
        EXPECT_NEAR(got_fake.data<float>()[r * 5 + j], want, 1e-5 * std::max(1.0, std::fabs(want)))
            << quant::format_name(in) << " row " << r << " output " << j;
      }
    }
    EXPECT_TRUE(same_bits(got_int, exact_reference(g, q, x)));
  }
}

// The grid the int engine rounds a float bias into (node_quant.h float_bias_format): the
// products' own grid while the bias fits s32 there, else the finest that holds the largest |b|.
TEST(QuantEdges, FloatBiasFormatIsTheAccumulatorGridUnlessThatSaturates) {
  auto frac_of = [](std::vector<float> b, int product_frac) {
    const Tensor t = Tensor::from<float>({static_cast<int64_t>(b.size())}, std::move(b));
    const FixedFormat f = float_bias_format(t, product_frac);
    EXPECT_EQ(f.width, 32);
    EXPECT_TRUE(f.is_signed);
    return f.frac;
  };
  EXPECT_EQ(frac_of({0.3f, -0.2f}, 8), 8);
  EXPECT_EQ(frac_of({0.0f}, 40), 40);
  EXPECT_EQ(frac_of({0.49f}, 32), 32);     // 0.49 * 2^32 < 2^31 - 1
  EXPECT_EQ(frac_of({0.5f}, 32), 31);      // 0.5 * 2^32 = 2^31 would saturate
  EXPECT_EQ(frac_of({-1000.0f}, 32), 21);  // 1000 * 2^21 < 2^31 - 1 <= 1000 * 2^22
  EXPECT_EQ(frac_of({1.0f, std::numeric_limits<float>::infinity()}, 32), 30);  // inf ignored
  EXPECT_EQ(frac_of({0.1f}, 100), 34);  // 62 first, then down to 0.1 * 2^34 < 2^31 - 1
}

TEST(QuantEdges, RequantizationBetweenFormatsAndUnsignedReluCodes) {
  const ir::Graph g = testing::make_mlp({784, 64, 32, 10});
  // linear -> relu (u4.1) -> linear_1 (data_in s6.3: finer and narrower, saturating at 3.875) ...
  QuantAssignment q;
  q["linear"] = linear_cfg({8, 5, true}, {8, 7, true}, FixedFormat{8, 7, true});
  q["relu"] = {.quantized = true, .data_in = FixedFormat{4, 1, false}};
  q["linear_1"] = linear_cfg({6, 3, true}, {8, 7, true}, FixedFormat{8, 7, true});
  q["linear_2"] = linear_cfg({8, 3, true}, {8, 7, true}, FixedFormat{8, 7, true});
  auto plan = make_plan(g, {.mode = Mode::kInt, .max_batch = 8, .quant = q});
  const std::string steps = describe_steps(*plan);
  // fc1 writes relu1's unsigned codes directly (the requantization's clamp at 0 is the relu),
  // they are requantized once for fc2, and the unquantized relu2 is fused into fc2's store of
  // fc3's signed codes (max(codes, 0): no step of its own).
  EXPECT_NE(steps.find("-> u4.1"), std::string::npos) << steps;
  EXPECT_NE(steps.find("requantize uint8.1 -> s6.3"), std::string::npos) << steps;
  EXPECT_NE(steps.find("-> s8.3 relu"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("relu_int"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("relu_f32"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("dequantize"), std::string::npos) << "no float between integer nodes\n"
                                                         << steps;
  const Tensor x = testing::random_tensor({8, 1, 28, 28}, 4, 0.0f, 1.0f);
  EXPECT_TRUE(same_bits(run(plan, x), exact_reference(g, q, x)));
}

// An unquantized ReLU is fused into the producer's requantizing store only when it is the
// producer's one reader; here the codes are also read directly, so the ReLU runs on the codes.
TEST(QuantEdges, ReluIsFusedOnlyIntoASoleReader) {
  GraphMaker m({kDynamic, 37});
  const ir::ValueId y =
      m.op(OpKind::kGemm, {m.input(), m.constant({16, 37}, 11), m.constant({16}, 12, -0.5f, 0.5f)},
           ir::GemmAttrs{.trans_b = true});
  const ir::ValueId r = m.op(OpKind::kRelu, {y});
  const ir::ValueId a =
      m.op(OpKind::kGemm, {r, m.constant({5, 16}, 13)}, ir::GemmAttrs{.trans_b = true});
  const ir::ValueId b =
      m.op(OpKind::kGemm, {y, m.constant({5, 16}, 14)}, ir::GemmAttrs{.trans_b = true});
  const ir::Graph g = m.finish(m.op(OpKind::kAdd, {a, b}));
  QuantAssignment q;
  for (int i : {0, 2, 3}) {
    q[g.nodes()[i].config_name] = linear_cfg({8, 3, true}, {8, 6, true}, FixedFormat{16, 8, true});
  }
  auto plan = make_plan(g, {.mode = Mode::kInt, .max_batch = 8, .quant = q});
  const std::string steps = describe_steps(*plan);
  EXPECT_NE(steps.find("relu_int int8"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("s8.3 relu"), std::string::npos) << steps;
  const Tensor x = testing::random_tensor({8, 37}, 15, -3.0f, 3.0f);
  EXPECT_TRUE(same_bits(run(plan, x), exact_reference(g, q, x))) << steps;
}

// An unquantized Add of float values whose sole reader is an unquantized Relu (ResNet's residual
// in the int plan, after float BatchNorms, where no conv epilogue takes the Add): one step adds
// and applies the Relu, whose float value the quantized Gemm (as codes) and the final Add (as
// float) both read; the same bits as the exact reference.
TEST(QuantEdges, UnquantizedAddAndReluRunAsOneStep) {
  GraphMaker m({kDynamic, 37});
  const ir::ValueId a = m.op(
      OpKind::kTanh,
      {m.op(OpKind::kGemm, {m.input(), m.constant({16, 37}, 21), m.constant({16}, 22, -0.5f, 0.5f)},
            ir::GemmAttrs{.trans_b = true})});
  const ir::ValueId b = m.op(
      OpKind::kTanh,
      {m.op(OpKind::kGemm, {m.input(), m.constant({16, 37}, 23)}, ir::GemmAttrs{.trans_b = true})});
  const ir::ValueId r = m.op(OpKind::kRelu, {m.op(OpKind::kAdd, {a, b})});
  const ir::ValueId c =
      m.op(OpKind::kGemm, {r, m.constant({16, 16}, 24)}, ir::GemmAttrs{.trans_b = true});
  const ir::Graph g = m.finish(m.op(OpKind::kAdd, {c, r}));
  QuantAssignment q;  // the Gemms; the Tanhs, Adds and the Relu stay in float
  for (const ir::Node& n : g.nodes()) {
    if (n.kind == OpKind::kGemm) {
      q[n.config_name] = linear_cfg({8, 3, true}, {8, 6, true}, FixedFormat{16, 8, true});
    }
  }
  const Tensor x = testing::random_tensor({8, 37}, 25, -3.0f, 3.0f);
  auto plan = make_plan(g, {.mode = Mode::kInt, .max_batch = 8, .quant = q});
  const std::string steps = describe_steps(*plan);
  EXPECT_NE(steps.find("add_f32 +relu"), std::string::npos) << steps;
  EXPECT_EQ(steps.find("relu_f32"), std::string::npos) << steps;
  EXPECT_TRUE(same_bits(run(plan, x), exact_reference(g, q, x))) << steps;
}

// EfficientNet's squeeze-excitation block and residual in the int plan: the unquantized x * s
// (x [B, E, H, W], s [B, E, 1, 1], either operand order) before the quantized projection conv,
// and the unquantized residual Add before a quantized conv (codes only) or before that conv and a
// float Add (codes and float): each one FloatOpQuantizeStep (kernels::fixed::float_op_quantize)
// instead of the float op and a quantize step, with the bits of the unfused plan
// (use_reference_kernels: BinaryStep then QuantizeStep) and of the exact reference. Maps of 1x1
// (one value per row), 2x2 and 3x3 (short rows) and 6x5 (rows of 16+ and a tail); formats of
// every code dtype, including widths past 24 (the scalar path), and every rounding.
TEST(QuantEdges, SqueezeExcitationMulAndResidualAddQuantizeInOnePass) {
  struct Case {
    int64_t h, w;
    FixedFormat data_in;
    quant::Rounding rounding;
  };
  const Case cases[] = {{1, 1, {8, 4, true}, quant::Rounding::kHalfToEven},
                        {2, 2, {8, 3, false}, quant::Rounding::kFloor},
                        {3, 3, {12, 7, true}, quant::Rounding::kHalfAwayFromZero},
                        {6, 5, {8, 4, true}, quant::Rounding::kHalfToEven},
                        {6, 5, {28, 14, true}, quant::Rounding::kHalfToEven}};
  const int saved = num_threads();
  for (const Case& c : cases) {
    for (bool s_first : {false, true}) {
      for (bool add_read_as_float : {false, true}) {
        SCOPED_TRACE(fmt::format("{}x{} {} {}{}{}", c.h, c.w, quant::format_name(c.data_in),
                                 quant::rounding_name(c.rounding), s_first ? " Mul(s, x)" : "",
                                 add_read_as_float ? " Add read as float too" : ""));
        const int64_t ch = 5, e = 12;
        GraphMaker m({kDynamic, ch, c.h, c.w});
        auto conv1x1 = [&](ir::ValueId in, int64_t cin, int64_t cout, uint64_t seed) {
          return m.op(OpKind::kConv,
                      {in, m.constant({cout, cin, 1, 1}, seed, -0.8f, 0.8f),
                       m.constant({cout}, seed + 1, -0.5f, 0.5f)},
                      ir::ConvAttrs{.kernel = {1, 1}});
        };
        const ir::ValueId h = m.op(OpKind::kTanh, {conv1x1(m.input(), ch, e, 31)});
        ir::ValueId se = m.op(OpKind::kGlobalAveragePool, {h});
        se = m.op(OpKind::kRelu, {conv1x1(se, e, 3, 33)});
        se = m.op(OpKind::kSigmoid, {conv1x1(se, 3, e, 35)});
        const ir::ValueId x = m.op(OpKind::kMul, s_first ? std::vector{se, h} : std::vector{h, se});
        const ir::ValueId a = m.op(OpKind::kAdd, {conv1x1(x, e, ch, 37), m.input()});
        const ir::ValueId y = conv1x1(a, ch, ch, 39);
        const ir::Graph g = m.finish(add_read_as_float ? m.op(OpKind::kAdd, {y, a}) : y);
        QuantAssignment q;
        for (const ir::Node& n : g.nodes()) {
          if (n.kind == OpKind::kConv) {
            NodeQuantConfig cfg = linear_cfg(c.data_in, {8, 6, true}, FixedFormat{16, 8, true});
            cfg.rounding = c.rounding;
            q[n.config_name] = cfg;
          }
        }
        const PlanOptions opts{.mode = Mode::kInt, .max_batch = 7, .quant = q};
        auto plan = make_plan(g, opts);
        PlanOptions ref_opts = opts;
        ref_opts.use_reference_kernels = true;
        auto unfused = make_plan(g, ref_opts);
        const std::string steps = describe_steps(*plan);
        const std::string codes = quant::format_name(c.data_in);
        EXPECT_NE(steps.find("mul_f32 +quantize -> " + codes), std::string::npos) << steps;
        EXPECT_NE(steps.find("add_f32 +quantize -> " + codes +
                             (add_read_as_float ? std::string(" ") : std::string())),
                  std::string::npos)
            << steps;
        EXPECT_EQ(steps.find("+float") != std::string::npos, add_read_as_float) << steps;
        EXPECT_EQ(steps.find("\nmul_f32\n"), std::string::npos) << steps;
        // The quantize steps left: the graph input's (read as float by the residual Add too)
        // and the average pool's (fc1's input).
        int quantize_steps = 0;
        for (const auto& st : plan->steps()) {
          quantize_steps += st->describe().starts_with("quantize ->");
        }
        EXPECT_EQ(quantize_steps, 2) << steps;
        const std::string unfused_steps = describe_steps(*unfused);
        EXPECT_EQ(unfused_steps.find("+quantize"), std::string::npos) << unfused_steps;
        for (int threads : {1, 2}) {
          set_num_threads(threads);
          const Tensor xin = testing::random_tensor({7, ch, c.h, c.w}, 41 + threads, -3.0f, 3.0f);
          const Tensor got = run(plan, xin);
          EXPECT_TRUE(same_bits(got, run(unfused, xin))) << threads << " threads\n" << steps;
          EXPECT_TRUE(same_bits(got, exact_reference(g, q, xin))) << threads << " threads";
        }
      }
    }
  }
  set_num_threads(saved);
}

TEST(QuantEdges, ParameterBytesAreTheBitPackedBuffers) {
  const ir::Graph g = testing::make_mlp({784, 256, 128, 16});
  const int64_t weights = 784 * 256 + 256 * 128 + 128 * 16, outputs = 256 + 128 + 16;
  const int64_t float_bytes = make_plan(g, {})->parameter_bytes();
  EXPECT_EQ(float_bytes, 4 * (weights + outputs));
  for (int width : {1, 2, 3, 4, 8, 12, 16}) {
    QuantAssignment q;
    for (const char* n : {"linear", "linear_1", "linear_2"}) {
      q[n] = linear_cfg({8, 4, true}, {width, width / 2, true}, FixedFormat{8, 4, true});
    }
    auto plan = make_plan(g, {.mode = Mode::kInt, .quant = q});
    // Every K is a multiple of 4 and every N of 16: no tile padding here. Biases are stored
    // pre-aligned to the accumulator, 8 bytes each.
    EXPECT_EQ(plan->parameter_bytes(), weights * width / 8 + 8 * outputs) << "width " << width;
    EXPECT_EQ(make_plan(g, {.mode = Mode::kFake, .quant = q})->parameter_bytes(), float_bytes);
  }
}

TEST(QuantEdges, ConfigurationErrorsNameTheNode) {
  const ir::Graph g = testing::make_mlp({784, 16, 10});
  auto expect_error = [&](const QuantAssignment& q, Mode mode, std::vector<std::string> parts) {
    try {
      make_plan(g, {.mode = mode, .quant = q});
      ADD_FAILURE() << "no error for " << parts[0];
    } catch (const Error& e) {
      for (const auto& p : parts) {
        EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " / " << p;
      }
    }
  };
  NodeQuantConfig no_weight{.quantized = true, .data_in = FixedFormat{8, 4, true}};
  expect_error({{"linear", no_weight}}, Mode::kInt, {"linear", "weight_width"});
  expect_error({{"flatten", no_weight}}, Mode::kFake, {"flatten", "cannot quantize"});
  expect_error({{"linear_9", no_weight}}, Mode::kInt, {"linear_9", "no node"});
  // A bypassed or "NA" config is no quantization at all.
  NodeQuantConfig bypass = linear_cfg({8, 4, true}, {8, 4, true}, std::nullopt);
  bypass.quantized = false;
  bypass.bypass = true;
  const Tensor x = testing::random_tensor({3, 1, 28, 28}, 1, 0.0f, 1.0f);
  EXPECT_TRUE(same_bits(run(make_plan(g, {.mode = Mode::kInt, .quant = {{"linear", bypass}}}), x),
                        run(make_plan(g, {}), x)));
}

QuantAssignment uniform8(const ir::Graph& g) {
  QuantAssignment q;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (op == "linear" || op == "conv2d") {
      q[n.config_name] = linear_cfg({8, 4, true}, {8, 6, true}, FixedFormat{8, 6, true});
    } else if (op == "relu") {
      q[n.config_name] = {.quantized = true, .data_in = FixedFormat{8, 4, false}};
    } else if (op == "add" || op == "batch_norm2d") {
      q[n.config_name] = {.quantized = true, .data_in = FixedFormat{8, 3, true}};
    }
  }
  return q;
}

TEST(QuantEdges, SameBitsForAnyThreadCountAndBatchSplit) {
  const int saved = num_threads();
  for (const ir::Graph& g :
       {testing::make_mlp({784, 256, 128, 10}), testing::make_residual_cnn()}) {
    for (Mode mode : {Mode::kInt, Mode::kFake}) {
      const QuantAssignment q = uniform8(g);
      auto plan = make_plan(g, {.mode = mode, .max_batch = 32, .quant = q});
      const Tensor x = testing::random_tensor({32, 1, 28, 28}, 5, 0.0f, 1.0f);
      set_num_threads(1);
      const Tensor one = run(plan, x);
      set_num_threads(2);
      EXPECT_TRUE(same_bits(run(plan, x), one)) << mode_name(mode);
      // A sample's result does not depend on the rest of its batch.
      const Tensor part = run(plan, x.rows(5, 12));
      EXPECT_TRUE(same_bits(part, one.rows(5, 12).clone())) << mode_name(mode);
      if (mode == Mode::kInt) {
        EXPECT_TRUE(same_bits(one, exact_reference(g, q, x)));
      }
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::runtime
