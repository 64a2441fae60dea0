// The hls4ml export (export/hls4ml_export.h): MASE's (width, frac) as ap_fixed<W, W - frac> with
// the node's rounding and saturation, per-layer result types as the next layer reads them, and
// accumulators wide enough for the exact worst case over the actual weights.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "core/rng.h"
#include "export/hls4ml_export.h"
#include "onnx/import.h"
#include "quant/quantize.h"
#include "support/source_dir.h"

namespace qsearch::exporter {
namespace {

using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::Rounding;
using I128 = __int128_t;

std::string model_path(const std::string& m) {
  return (std::filesystem::path(QSEARCH_SOURCE_DIR) / "models" / m).string();
}

TEST(Hls4mlExport, ApFixedMapping) {
  EXPECT_EQ(ap_fixed_type({8, 4, true}, Rounding::kHalfToEven), "ap_fixed<8,4,AP_RND_CONV,AP_SAT>");
  EXPECT_EQ(ap_fixed_type({5, 2, false}, Rounding::kFloor), "ap_ufixed<5,3,AP_TRN,AP_SAT>");
  EXPECT_EQ(ap_fixed_type({4, 6, true}, Rounding::kHalfAwayFromZero),
            "ap_fixed<4,-2,AP_RND_INF,AP_SAT>");
  EXPECT_EQ(ap_fixed_type({4, -1, true}, Rounding::kHalfToEven),
            "ap_fixed<4,5,AP_RND_CONV,AP_SAT>");
  EXPECT_EQ(signed_bits_for(0), 1);
  EXPECT_EQ(signed_bits_for(1), 2);
  EXPECT_EQ(signed_bits_for(127), 8);
  EXPECT_EQ(signed_bits_for(128), 9);
  EXPECT_EQ(signed_bits_for(2147483647.0L), 32);
  EXPECT_EQ(signed_bits_for(2147483648.0L), 33);
}

NodeQuantConfig lin(FixedFormat in, FixedFormat w, std::optional<FixedFormat> b) {
  return {.quantized = true, .data_in = in, .weight = w, .bias = b};
}

// The layer block of `node` in the YAML.
std::string block(const std::string& yaml, const std::string& node) {
  const size_t at = yaml.find("\n  " + node + ":\n");
  EXPECT_NE(at, std::string::npos) << node << "\n" << yaml;
  if (at == std::string::npos) return "";
  const size_t end = yaml.find("\n  ", yaml.find("Trace:", at));
  return yaml.substr(at, end - at);
}

TEST(Hls4mlExport, MlpConfigHasPerLayerPrecisionsReuseFactorAndStrategy) {
  const ir::Graph g = onnx::import_model(model_path("mlp_mnist.onnx"));
  const quant::QuantAssignment q = {
      {"fc1", lin({8, 4, true}, {8, 7, true}, FixedFormat{16, 8, true})},
      {"relu1", {.quantized = true, .data_in = FixedFormat{6, 3, false}}},
      {"fc2", lin({6, 3, true}, {4, 3, true}, FixedFormat{12, 8, true})},
      {"fc3", lin({10, 5, true}, {3, 2, true}, std::nullopt)}};
  const std::string y = hls4ml_config_yaml(g, q, {.reuse_factor = 4, .strategy = "Resource"});
  EXPECT_NE(y.find("Model:\n  Precision:\n    default: ap_fixed<16,6>\n  ReuseFactor: 4\n"
                   "  Strategy: Resource\n"),
            std::string::npos)
      << y;
  EXPECT_NE(y.find("LayerName:\n"), std::string::npos);
  std::string fc1_name, fc3_name;
  for (const ir::Node& n : g.nodes()) {
    if (n.config_name == "fc1") fc1_name = n.name;
    if (n.config_name == "fc3") fc3_name = n.name;
  }
  const auto quoted = [](const std::string& s) {
    return s.find_first_of(":/ ") == std::string::npos ? s : "'" + s + "'";
  };
  const std::string fc1 = block(y, quoted(fc1_name));
  EXPECT_NE(fc1.find("weight: ap_fixed<8,1,AP_RND_CONV,AP_SAT>"), std::string::npos) << fc1;
  EXPECT_NE(fc1.find("bias: ap_fixed<16,8,AP_RND_CONV,AP_SAT>"), std::string::npos) << fc1;
  // fc1's output is read by the quantized relu1 (unsigned 6.3): its result type.
  EXPECT_NE(fc1.find("result: ap_ufixed<6,3,AP_RND_CONV,AP_SAT>"), std::string::npos) << fc1;
  EXPECT_NE(fc1.find("ReuseFactor: 4"), std::string::npos) << fc1;
  // fc3 is the output: its result is the exact accumulator (float bias at frac 7: F = 7).
  const std::string fc3 = block(y, quoted(fc3_name));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(fc3, m, std::regex("accum: ap_fixed<(\\d+),(-?\\d+)>"))) << fc3;
  EXPECT_EQ(std::stoi(m[1]) - std::stoi(m[2]), 7) << fc3;
  EXPECT_NE(fc3.find(fmt::format("result: ap_fixed<{},{}>", m[1].str(), m[2].str())),
            std::string::npos)
      << fc3;
}

// For random formats, every linear's accumulator holds the exact worst case of
// max|A| * sum_k |W[k, n]| * 2^(F - fa - fb) + |b_n| * 2^(F - fc) (computed here in __int128),
// with at most two bits to spare.
// torch's nn.Linear on 3-D inputs exports as MatMul(x, W^T) + Add(b) (ir::linear_bias_add): the
// MatMul's layer gets the Add's bias, its data_out and the accumulator the bias needs, exactly as
// the equivalent Gemm.
TEST(Hls4mlExport, MatMulPlusBiasAddIsOneDenseLayerLikeTheGemm) {
  const int64_t in = 12, out = 5;
  Rng rng(11);
  Tensor w({out, in}, DType::kFloat32), wt({in, out}, DType::kFloat32), b({out}, DType::kFloat32);
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      w.data<float>()[o * in + i] = wt.data<float>()[i * out + o] =
          static_cast<float>(rng.uniform() * 2 - 1);
    }
    b.data<float>()[o] = static_cast<float>(rng.uniform() * 40 - 20);  // a bias that widens acc
  }
  NodeQuantConfig c = lin({8, 4, true}, {6, 4, true}, FixedFormat{12, 4, true});
  c.data_out = FixedFormat{10, 3, true};
  ir::Graph gemm;
  {
    const ir::ValueId x = gemm.add_input("x", {kDynamic, in});
    const ir::ValueId y = gemm.add_value("y");
    gemm.add_node(ir::Node{ir::OpKind::kGemm,
                           "fc_gemm",
                           {x, gemm.add_constant("w", w), gemm.add_constant("b", b)},
                           {y},
                           ir::GemmAttrs{.trans_b = true},
                           ""});
    gemm.mark_output(y);
    gemm.finalize();
  }
  ir::Graph mm;
  {
    const ir::ValueId x = mm.add_input("x", {kDynamic, in});
    const ir::ValueId h = mm.add_value("h"), y = mm.add_value("y");
    mm.add_node(
        ir::Node{ir::OpKind::kMatMul, "fc_matmul", {x, mm.add_constant("wt", wt)}, {h}, {}, ""});
    mm.add_node(ir::Node{ir::OpKind::kAdd, "fc_add", {h, mm.add_constant("b", b)}, {y}, {}, ""});
    mm.mark_output(y);
    mm.finalize();
  }
  auto precision = [](const std::string& blk) {
    return blk.substr(blk.find("Precision:"), blk.find("ReuseFactor:") - blk.find("Precision:"));
  };
  const std::string a =
      precision(block(hls4ml_config_yaml(gemm, {{gemm.nodes()[0].config_name, c}}), "fc_gemm"));
  const std::string y = hls4ml_config_yaml(mm, {{mm.nodes()[0].config_name, c}});
  EXPECT_EQ(precision(block(y, "fc_matmul")), a);
  EXPECT_NE(a.find("bias: ap_fixed<12,8"), std::string::npos) << a;
  EXPECT_NE(a.find("result: ap_fixed<10,7"), std::string::npos) << a;
  EXPECT_EQ(y.find("fc_add"), std::string::npos) << y;  // no layer of its own
}

TEST(Hls4mlExport, AccumulatorsHoldTheExactWorstCase) {
  const ir::Graph g = onnx::import_model(model_path("mlp_mnist.onnx"));
  Rng rng(7);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rng.uniform_int(hi - lo + 1)); };
  for (int iter = 0; iter < 30; ++iter) {
    quant::QuantAssignment q;
    for (const char* n : {"fc1", "fc2", "fc3"}) {
      q[n] = lin({pick(2, 16), pick(-2, 12), true}, {pick(2, 16), pick(-2, 14), true},
                 FixedFormat{pick(4, 20), pick(0, 12), true});
    }
    const std::string y = hls4ml_config_yaml(g, q);
    for (const ir::Node& n : g.nodes()) {
      if (!q.count(n.config_name)) continue;
      const NodeQuantConfig& c = q[n.config_name];
      const Tensor w = quant::quantize(g.value(n.inputs[1]).data, *c.weight, c.rounding);
      const Tensor b = quant::quantize(g.value(n.inputs[2]).data, *c.bias, c.rounding);
      const int64_t outs = w.dim(0), k = w.dim(1);  // Gemm transB = 1
      const int fp = c.data_in->frac + c.weight->frac, F = std::max(fp, c.bias->frac);
      const I128 max_a = -c.data_in->min_code();
      I128 worst = 0;
      for (int64_t o = 0; o < outs; ++o) {
        I128 s = 0;
        for (int64_t t = 0; t < k; ++t) {
          const int64_t v = quant::load_code(w.raw(), w.dtype(), o * k + t);
          s += v < 0 ? -v : v;
        }
        const int64_t bv = quant::load_code(b.raw(), b.dtype(), o);
        const I128 total =
            (max_a * s << (F - fp)) + ((I128)(bv < 0 ? -bv : bv) << (F - c.bias->frac));
        worst = std::max(worst, total);
      }
      const std::string blk =
          block(y, n.name.find_first_of(":/ ") == std::string::npos ? n.name : "'" + n.name + "'");
      std::smatch m;
      ASSERT_TRUE(std::regex_search(blk, m, std::regex("accum: ap_fixed<(\\d+),(-?\\d+)>")));
      const int W = std::stoi(m[1]), I = std::stoi(m[2]);
      EXPECT_EQ(W - I, F) << blk;
      ASSERT_LT(W, 120);
      EXPECT_TRUE(worst <= (I128{1} << (W - 1)) - 1) << blk;  // cannot overflow
      if (worst > 0) {                                        // not wasteful
        EXPECT_TRUE(worst >= (I128{1} << std::max(0, W - 3))) << blk;
      }
    }
  }
}

// A ConvTranspose's accumulator (weight [C, M/g, kH, kW]): output channel j sums column j of
// every input row. Channel 0's four weights are 115/128 (code 115 at s8.7), channel 1's 1/128
// (code 1): at stride 1 an interior output of channel 0 sums all four taps, so the worst case is
// 128 * 4 * 115 = 58880 at frac 4 + 7 = 11: 17 bits with the sign, ap_fixed<17,6>. (Indexing
// the weight as a [K, M] matrix mixed the channels: 128 * 2 * (115 + 1) = 29696, 16 bits, an
// accumulator that overflows.)
TEST(Hls4mlExport, ConvTransposeAccumulatorSumsEachOutputChannelsOwnWeights) {
  ir::Graph g;
  const ir::ValueId x = g.add_input("x", {kDynamic, 1, 4, 4});
  Tensor w({1, 2, 2, 2}, DType::kFloat32);
  for (int64_t i = 0; i < 8; ++i) w.data<float>()[i] = i < 4 ? 115.0f / 128 : 1.0f / 128;
  const ir::ValueId y = g.add_value("y");
  g.add_node(ir::Node{ir::OpKind::kConvTranspose,
                      "/t/ConvTranspose",
                      {x, g.add_constant("w", std::move(w))},
                      {y},
                      ir::ConvTransposeAttrs{.kernel = {2, 2}},
                      ""});
  g.mark_output(y);
  g.finalize();
  const std::string name = g.nodes()[0].config_name;
  const std::string yaml =
      hls4ml_config_yaml(g, {{name, lin({8, 4, true}, {8, 7, true}, std::nullopt)}});
  EXPECT_NE(block(yaml, "'/t/ConvTranspose'").find("accum: ap_fixed<17,6>"), std::string::npos)
      << yaml;
}

}  // namespace
}  // namespace qsearch::exporter
