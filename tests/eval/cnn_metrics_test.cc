// Issue 11: the hardware metrics count Conv1d (MASE's conv1d) the way MASE does. MASE's
// average_bitwidth runner (calculate_avg_bits_module_analysis_pass) averages the weights of
// nn.Linear and nn.Conv2d modules only, so a quantized conv1d adds nothing to it; model size
// stores each conv1d weight at its weight width; BitOPs are the conv1d's MACs
// (out_elems * C_in / group * k) x data_in width x weight width.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"
#include "eval/hardware_metrics.h"
#include "eval/quant_config.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kNet =
    std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/cnn/conv1d_net_opset17.onnx";

quant::NodeQuantConfig cfg(int data_in, int weight) {
  return {.quantized = true,
          .data_in = quant::FixedFormat{data_in, data_in / 2, true},
          .weight = quant::FixedFormat{weight, weight / 2, true}};
}

TEST(CnnMetrics, Conv1dCountsLikeMase) {
  const ir::Graph g = onnx::import_model(kNet);
  quant::QuantAssignment linear_only, with_conv1d;
  std::vector<std::string> convs;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (op == "linear") linear_only[n.config_name] = with_conv1d[n.config_name] = cfg(8, 4);
    if (op == "conv1d") {
      with_conv1d[n.config_name] = cfg(6, 3);
      convs.push_back(n.config_name);
    }
  }
  ASSERT_EQ(convs.size(), 3u);
  // Average bitwidth: MASE's module pass counts Linear and Conv2d only.
  EXPECT_EQ(average_bitwidth(g, linear_only, 32).average_bitwidth, 4.0);
  EXPECT_EQ(average_bitwidth(g, with_conv1d, 32).average_bitwidth, 4.0);
  // Model size: c1 weight [8, 3, 5] = 120, c2 [8, 1, 3] = 24, c3 [6, 8, 1] = 48 elements go from
  // 32 to 3 bits (each conv's own bytes rounded up); biases stay float.
  const std::map<std::string, int64_t> size_before = [&] {
    std::map<std::string, int64_t> m;
    for (const auto& [name, b] : model_size_bytes_by_node(g, linear_only)) m[name] = b;
    return m;
  }();
  std::map<std::string, int64_t> size_after;
  for (const auto& [name, b] : model_size_bytes_by_node(g, with_conv1d)) size_after[name] = b;
  const int64_t weights[] = {120, 24, 48}, biases[] = {8, 8, 6};
  for (size_t i = 0; i < convs.size(); ++i) {
    EXPECT_EQ(size_before.at(convs[i]), 4 * (weights[i] + biases[i])) << convs[i];
    EXPECT_EQ(size_after.at(convs[i]), (weights[i] * 3 + 7) / 8 + 4 * biases[i]) << convs[i];
  }
  // MACs and BitOPs. Input [N, 3, 24]: c1 -> [8, 12] (12 * 8 outputs x 3 * 5 taps), c2 ->
  // [8, 12] (x 1 * 3), c3 -> [6, 12] (x 8 * 1).
  std::map<std::string, OpCounts> counts;
  for (const auto& [name, c] : op_counts_by_node(g, with_conv1d)) counts[name] = c;
  const double macs[] = {96.0 * 15, 96.0 * 3, 72.0 * 8};
  for (size_t i = 0; i < convs.size(); ++i) {
    EXPECT_EQ(counts.at(convs[i]).macs, macs[i]) << convs[i];
    EXPECT_EQ(counts.at(convs[i]).bitops, macs[i] * 6 * 3) << convs[i];
  }
}

// MASE's conv1d entries (name, data_in, weight; optional bias, bypass; no data_out) resolve by
// config name, by type "conv1d" and by regex.
TEST(CnnMetrics, Conv1dResolvesByNameTypeAndRegex) {
  const ir::Graph g = onnx::import_model(kNet);
  const ConfigValue integer = ConfigValue::of("integer");
  const Fields conv1d = {{"name", integer},
                         {"data_in_width", ConfigValue::of(8)},
                         {"data_in_frac_width", ConfigValue::of(4)},
                         {"weight_width", ConfigValue::of(6)},
                         {"weight_frac_width", ConfigValue::of(5)}};
  auto entry = [](const std::string& key, Fields f) {
    return QuantEntry{key, {"cfg.toml", 3, 1}, std::move(f)};
  };
  std::vector<std::string> names;
  for (const ir::Node& n : g.nodes()) {
    if (ir::mase_op(g, n) == "conv1d") names.push_back(n.config_name);
  }
  ASSERT_EQ(names.size(), 3u);
  const auto by_type = resolve_quantize_pass(g, MatchBy::kType, {entry("conv1d", conv1d)});
  EXPECT_EQ(by_type.size(), 3u);
  for (const std::string& n : names) EXPECT_EQ(by_type.at(n).weight->frac, 5);
  const auto by_name = resolve_quantize_pass(g, MatchBy::kName, {entry(names[1], conv1d)});
  EXPECT_EQ(by_name.size(), 1u);
  EXPECT_TRUE(by_name.count(names[1]));
  const auto by_regex = resolve_quantize_pass(g, MatchBy::kRegexName, {entry(".*c[13].*", conv1d)});
  EXPECT_EQ(by_regex.size(), 2u);
  // conv2d's data_out is no conv1d entry in MASE: parse_node_config does not copy it, so the
  // output stays unquantized.
  Fields with_out = conv1d;
  with_out.push_back({"data_out_width", ConfigValue::of(8)});
  with_out.push_back({"data_out_frac_width", ConfigValue::of(4)});
  const auto ignored = resolve_quantize_pass(g, MatchBy::kType, {entry("conv1d", with_out)});
  for (const std::string& n : names) EXPECT_FALSE(ignored.at(n).data_out) << n;
}

// ConvTranspose is MASE's convtranspose2d (conv2d's keys): its MACs are every input element
// times the M / group output channels x kH x kW taps it scatters to (the inserted zeros are not
// multiplied); MASE's average_bitwidth (nn.Linear / nn.Conv2d modules) does not count it.
TEST(CnnMetrics, ConvTransposeCountsItsScatteredProducts) {
  const ir::Graph g = onnx::import_model(std::string(QSEARCH_SOURCE_DIR) +
                                         "/tests/fixtures/cnn/conv_transpose_opset17.onnx");
  quant::QuantAssignment q;
  std::string convt;
  for (const ir::Node& n : g.nodes()) {
    if (ir::mase_op(g, n) == "convtranspose2d") {
      q[n.config_name] = cfg(8, 4);
      convt = n.config_name;
    }
  }
  ASSERT_FALSE(convt.empty());
  EXPECT_EQ(average_bitwidth(g, q, 32).average_bitwidth, 32.0);  // nothing MASE counts
  std::map<std::string, OpCounts> counts;
  for (const auto& [name, c] : op_counts_by_node(g, q)) counts[name] = c;
  // Input [4, 4, 5] (conv c1's output), weight [4, 3, 3, 2]: 80 elements x 3 x 3 x 2.
  EXPECT_EQ(counts.at(convt).macs, 80.0 * 18);
  EXPECT_EQ(counts.at(convt).bitops, 80.0 * 18 * 8 * 4);
  // Model size: the weight at 4 bits, the float bias at 32.
  std::map<std::string, int64_t> size;
  for (const auto& [name, b] : model_size_bytes_by_node(g, q)) size[name] = b;
  EXPECT_EQ(size.at(convt), 72 * 4 / 8 + 6 * 4);
}

}  // namespace
}  // namespace qsearch::eval
