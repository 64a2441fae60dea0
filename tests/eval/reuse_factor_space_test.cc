// `reuse_factor = [..]` in [search.strategy.hw_runner.fpga]: hls4ml's ReuseFactor as a search
// dimension per dense / conv key (QuantSearchSpace::build's `reuse_factors`), decoded into
// NodeQuantConfig::reuse_factor and costed per layer by the FPGA model (eval/fpga_cost.h);
// hls4ml's validity rule; invalid choices are errors at their file:line.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/fpga_cost.h"
#include "eval/quant_config.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kMlp = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/mlp_opset13.onnx";

ConfigValue num(int64_t v, int line = 12) {
  return {.kind = ConfigValue::Kind::kInt, .i = v, .loc = {"fpga.toml", line, 16}};
}
ConfigValue str(const std::string& s) { return {.kind = ConfigValue::Kind::kString, .s = s}; }

std::vector<SeedEntry> linear_seeds() {
  return {{"default", {"space.toml", 3, 1}, {{"name", {ConfigValue{}}}}},
          {"linear",
           {"space.toml", 5, 1},
           {{"name", {str("integer")}},
            {"data_in_width", {num(8)}},
            {"data_in_frac_width", {num(4)}},
            {"weight_width", {num(4), num(8)}},
            {"weight_frac_width", {num(3)}}}}};
}

TEST(ReuseFactorSpace, Hls4mlsValidityRule) {
  // hls4ml: R divides n_in * n_out; R < n_in or R % n_in == 0; R >= n_in or
  // ceil(n_in * n_out / min(n_in, R)) % n_out == 0.
  for (int r : {1, 2, 4, 8, 16, 32, 64, 1024}) EXPECT_TRUE(valid_reuse_factor(16, 64, r)) << r;
  EXPECT_FALSE(valid_reuse_factor(16, 64, 3));    // does not divide 1024
  EXPECT_FALSE(valid_reuse_factor(16, 64, 24));   // >= n_in but not a multiple of it
  EXPECT_TRUE(valid_reuse_factor(10, 3, 5));      // 30 / 5 = 6 multipliers, 2 per output
  EXPECT_FALSE(valid_reuse_factor(10, 3, 6));     // divides 30, but 5 multipliers for 3 outputs
  EXPECT_FALSE(valid_reuse_factor(10, 3, 2048));  // more than n_in * n_out
  EXPECT_FALSE(valid_reuse_factor(10, 3, 0));
}

TEST(ReuseFactorSpace, AListIsOneParameterPerDenseKeyDecodedPerLayer) {
  const ir::Graph g = onnx::import_model(kMlp);
  const std::vector<ConfigValue> rf = {num(1), num(2), num(4)};
  const auto plain = QuantSearchSpace::build(g, MatchBy::kType, linear_seeds());
  const auto space = QuantSearchSpace::build(g, MatchBy::kType, linear_seeds(), rf);
  EXPECT_EQ(space.size(), plain.size() * 3);
  ASSERT_EQ(space.space().size(), plain.space().size() + 1);  // by type: one "linear" key
  std::vector<double> p(space.space().size(), 0.0);
  size_t at = 0;
  for (size_t i = 0; i < space.space().size(); ++i) {
    if (space.space()[i].name == "linear/config/reuse_factor") at = i;
  }
  ASSERT_EQ(space.space()[at].name, "linear/config/reuse_factor");
  p[at] = 2;  // reuse_factor 4
  const quant::QuantAssignment q = space.decode(p);
  ASSERT_FALSE(q.empty());
  for (const auto& [name, c] : q) EXPECT_EQ(c.reuse_factor, 4) << name;
  EXPECT_EQ(space.sampled_config(p)["linear"]["config"]["reuse_factor"], 4);
  EXPECT_EQ(space.param_choices()["linear/config/reuse_factor"], nlohmann::ordered_json({1, 2, 4}));
  // Without the list, nothing is set: the fpga options' reuse_factor applies.
  for (const auto& [name, c] : plain.decode(std::vector<double>(plain.space().size(), 0.0))) {
    EXPECT_EQ(c.reuse_factor, 0) << name;
  }
}

TEST(ReuseFactorSpace, TheCostModelUsesEachLayersOwnReuseFactor) {
  const ir::Graph g = onnx::import_model(kMlp);
  const auto space = QuantSearchSpace::build(g, MatchBy::kName,
                                             {{"default",
                                               {"space.toml", 3, 1},
                                               {{"name", {str("integer")}},
                                                {"data_in_width", {num(16)}},
                                                {"data_in_frac_width", {num(8)}},
                                                {"weight_width", {num(16)}},
                                                {"weight_frac_width", {num(14)}}}}},
                                             {num(1), num(4)});
  std::vector<double> p(space.space().size(), 0.0);
  quant::QuantAssignment q1 = space.decode(p);
  // Only the first dense layer's ReuseFactor parameter to 4.
  std::string first;
  for (size_t i = 0; i < space.space().size(); ++i) {
    if (space.space()[i].name.ends_with("/config/reuse_factor")) {
      p[i] = 1;
      first = space.space()[i].name.substr(0, space.space()[i].name.find('/'));
      break;
    }
  }
  ASSERT_FALSE(first.empty());
  const quant::QuantAssignment q4 = space.decode(p);
  EXPECT_EQ(q4.at(first).reuse_factor, 4);
  const FpgaOptions o{.reuse_factor = 1};
  const FpgaCost c1 = estimate_fpga_cost(g, q1, o), c4 = estimate_fpga_cost(g, q4, o);
  ASSERT_EQ(c1.layers.size(), c4.layers.size());
  bool seen = false;
  for (size_t i = 0; i < c1.layers.size(); ++i) {
    const FpgaLayerCost &a = c1.layers[i], &b = c4.layers[i];
    if (a.name == first) {
      seen = true;
      // docs/hardware.md: DSPs shared R ways, II = R, R - 1 more cycles.
      EXPECT_GT(a.dsp, 0);
      EXPECT_EQ(b.dsp, (a.dsp + 3) / 4);
      EXPECT_EQ(b.ii, 4 * a.ii);
      EXPECT_EQ(b.latency_cycles, a.latency_cycles + 3 * a.ii);
      EXPECT_LT(b.lut, a.lut);
      EXPECT_EQ(b.reuse_factor, 4);
    } else {
      EXPECT_EQ(a.dsp, b.dsp) << a.name;
      EXPECT_EQ(a.lut, b.lut) << a.name;
      EXPECT_EQ(a.latency_cycles, b.latency_cycles) << a.name;
    }
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(c4.ii, 4 * c1.ii);
  // Every dense layer has its own ReuseFactor in q4 (1 or 4): the options' one no longer matters.
  const FpgaCost opt8 = estimate_fpga_cost(g, q4, {.reuse_factor = 8});
  EXPECT_EQ(opt8.dsp, c4.dsp);
  EXPECT_EQ(opt8.latency_cycles, c4.latency_cycles);
}

TEST(ReuseFactorSpace, AnInvalidChoiceIsAnErrorAtItsFileAndLine) {
  const ir::Graph g = onnx::import_model(kMlp);
  try {
    QuantSearchSpace::build(g, MatchBy::kType, linear_seeds(), {num(1), num(7, 14)});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fpga.toml:14"), std::string::npos) << m;
    EXPECT_NE(m.find("reuse_factor 7"), std::string::npos) << m;
    EXPECT_NE(m.find("valid: 1, 2"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace qsearch::eval
