// Issue 11, GRU / LSTM: quantized only by an opt-in key (op types "gru" / "lstm", a node name or
// a regex), never by MASE's `default`; counted in the hardware metrics like linear layers (W and
// R in the average bitwidth, W / R / B in the model size, T * D * G*H * (I + H) MACs per sample).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "eval/hardware_metrics.h"
#include "eval/quant_config.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kGru =
    std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/rnn/gru_classifier_opset17.onnx";

ConfigValue num(int64_t v) { return ConfigValue::of(v); }
ConfigValue str(const std::string& s) { return ConfigValue::of(s); }
QuantEntry entry(const std::string& key, Fields fields) {
  return {key, {"cfg.toml", 3, 1}, fields};
}

SeedEntry seed(const std::string& key,
               std::vector<std::pair<std::string, std::vector<ConfigValue>>> f) {
  return {key, {"space.toml", 7, 1}, std::move(f)};
}

Fields integer(int data_in, int weight) {
  return {{"name", str("integer")},
          {"data_in_width", num(data_in)},
          {"data_in_frac_width", num(4)},
          {"weight_width", num(weight)},
          {"weight_frac_width", num(3)}};
}

std::string gru_node(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes()) {
    if (ir::mase_op(g, n) == "gru") return n.config_name;
  }
  ADD_FAILURE() << "no gru node";
  return "";
}

TEST(RnnMetrics, DefaultNeverQuantizesAnRnnButItsKeysDo) {
  const ir::Graph g = onnx::import_model(kGru);
  const std::string gru = gru_node(g);
  for (MatchBy by : {MatchBy::kName, MatchBy::kType, MatchBy::kRegexName}) {
    const auto q = resolve_quantize_pass(g, by, {entry("default", integer(8, 8))});
    EXPECT_EQ(q.count(gru), 0u);
    EXPECT_EQ(q.size(), 1u);  // the head
  }
  EXPECT_EQ(resolve_quantize_pass(g, MatchBy::kType, {entry("gru", integer(8, 6))}).count(gru), 1u);
  EXPECT_EQ(resolve_quantize_pass(g, MatchBy::kName, {entry(gru, integer(8, 6))}).count(gru), 1u);
  EXPECT_EQ(
      resolve_quantize_pass(g, MatchBy::kRegexName, {entry("gr.*", integer(8, 6))}).count(gru), 1u);
  // A search space: only a seed naming it adds the gru's parameters.
  const std::vector<std::pair<std::string, std::vector<ConfigValue>>> fields = {
      {"name", {str("integer")}},
      {"data_in_width", {num(8)}},
      {"data_in_frac_width", {num(4)}},
      {"weight_width", {num(4), num(8)}},
      {"weight_frac_width", {num(3)}}};
  const SeedEntry dflt = seed("default", fields), gru_seed = seed("gru", fields);
  const auto only_default = QuantSearchSpace::build(g, MatchBy::kType, {dflt});
  EXPECT_EQ(only_default.node_keys().size(), 1u);
  const auto with_gru = QuantSearchSpace::build(g, MatchBy::kType, {dflt, gru_seed});
  EXPECT_EQ(with_gru.node_keys().size(), 2u);
}

TEST(RnnMetrics, CountedLikeALinearLayer) {
  const ir::Graph g = onnx::import_model(kGru);
  const std::string gru = gru_node(g);
  quant::QuantAssignment q;
  q[gru] = {.quantized = true,
            .data_in = quant::FixedFormat{8, 4, true},
            .weight = quant::FixedFormat{4, 3, true},
            .bias = quant::FixedFormat{6, 3, true}};
  // GRU(28 -> 32): W [1, 96, 28], R [1, 96, 32], B [1, 192]; 28 steps.
  const double w = 96 * 28 + 96 * 32;
  EXPECT_EQ(average_bitwidth(g, q, 32).average_bitwidth, 4.0);
  const int64_t float_size = model_size_bytes(g, {});
  EXPECT_EQ(float_size - model_size_bytes(g, q),
            static_cast<int64_t>(w * 4 + 192 * 4) - static_cast<int64_t>(w * 4 / 8 + 192 * 6 / 8));
  std::map<std::string, OpCounts> c;
  for (const auto& [name, oc] : op_counts_by_node(g, q)) c[name] = oc;
  EXPECT_EQ(c.at(gru).macs, 28.0 * w);
  EXPECT_EQ(c.at(gru).bitops, 28.0 * w * 4 * 8);
  std::map<std::string, OpCounts> f;
  for (const auto& [name, oc] : op_counts_by_node(g, {})) f[name] = oc;
  EXPECT_EQ(f.at(gru).bitops, 28.0 * w * 32 * 32);
}

}  // namespace
}  // namespace qsearch::eval
