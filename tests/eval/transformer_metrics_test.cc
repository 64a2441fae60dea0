// Issue 11: the hardware metrics count a transformer's matmuls the way MASE does. A matmul of two
// activations has no weight: it adds nothing to the average bitwidth (MASE averages the weights
// of linear / conv modules) nor to the model size; its BitOPs are MACs x the widths of its two
// operands (data_in for operand 0, weight for operand 1, MASE's matmul_integer), and its
// activation bits count both operands at their widths. A Linear on 3-D tokens (MatMul + bias
// Add in torch's export) is one MASE linear: its bias belongs to it in the config and the metrics.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"
#include "eval/hardware_metrics.h"
#include "eval/quant_config.h"
#include "onnx/import.h"
#include "runtime/node_quant.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kVit =
    std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/transformer/vit_opset17.onnx";

quant::NodeQuantConfig cfg(int data_in, int weight) {
  return {.quantized = true,
          .data_in = quant::FixedFormat{data_in, data_in / 2, true},
          .weight = quant::FixedFormat{weight, weight / 2, true}};
}

TEST(TransformerMetrics, MatmulCountsBothActivationWidthsAndNoWeightBits) {
  const ir::Graph g = onnx::import_model(kVit);
  quant::QuantAssignment linears, with_matmul;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (op == "linear") linears[n.config_name] = with_matmul[n.config_name] = cfg(8, 4);
    if (op == "matmul") with_matmul[n.config_name] = cfg(6, 3);
  }
  ASSERT_EQ(with_matmul.size() - linears.size(), 4u);
  // Average bitwidth and model size: the matmuls change nothing.
  EXPECT_EQ(average_bitwidth(g, linears, 32).average_bitwidth, 4.0);
  EXPECT_EQ(average_bitwidth(g, with_matmul, 32).average_bitwidth, 4.0);
  EXPECT_EQ(model_size_bytes(g, linears), model_size_bytes(g, with_matmul));
  // BitOPs: [4 heads, 16, 8] x [4, 8, 16] is 4 * 16 * 16 * 8 = 8192 MACs per sample.
  std::map<std::string, OpCounts> before, after;
  for (const auto& [name, c] : op_counts_by_node(g, linears)) before[name] = c;
  for (const auto& [name, c] : op_counts_by_node(g, with_matmul)) after[name] = c;
  const OpCounts& mm = after.at("blocks_0_matmul");
  EXPECT_EQ(mm.macs, 8192.0);
  EXPECT_EQ(mm.bitops, 8192.0 * 6 * 3);
  EXPECT_EQ(before.at("blocks_0_matmul").bitops, 8192.0 * 32 * 32);  // float: 32 x 32
  // Activation bits: operand 0 (q, [4, 16, 8]) at 6 bits, operand 1 (k^T, [4, 8, 16]) at 3.
  EXPECT_EQ(mm.activation_bits, 512.0 * 6 + 512.0 * 3);
  EXPECT_EQ(after.at("blocks_0_q_proj_linear").bitops, before.at("blocks_0_q_proj_linear").bitops);
}

// The q/k/v/out projections, MLP and patch linears of the fixture are MatMul + Add: the Add is
// the linear's bias (MASE op "linear_bias"), no `add` of its own. Its constant is stored at the
// linear's bias width and counted under the linear's name (model size); BitOPs and the average
// bitwidth count the linear as MASE's LinearInteger (weights only, no bias term), so the bias
// format changes neither.
TEST(TransformerMetrics, MatMulLinearOwnsItsBiasAdd) {
  const ir::Graph g = onnx::import_model(kVit);
  const ir::Node* add = g.find_node("blocks_0_q_proj_add");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(ir::mase_op(g, *add), "linear_bias");
  EXPECT_EQ(g.node(ir::bias_add_owner(g, *add)).config_name, "blocks_0_q_proj_linear");
  int residual_adds = 0;
  for (const ir::Node& n : g.nodes()) residual_adds += ir::mase_op(g, n) == "add";
  EXPECT_EQ(residual_adds, 5);  // the position embedding and two residual adds per block

  quant::QuantAssignment with_bias, without_bias;
  for (const ir::Node& n : g.nodes()) {
    if (ir::mase_op(g, n) != "linear") continue;
    without_bias[n.config_name] = cfg(8, 4);
    with_bias[n.config_name] = cfg(8, 4);
    with_bias[n.config_name].bias = quant::FixedFormat{2, 0, true};
  }
  std::map<std::string, int64_t> bytes, float_bytes;
  for (const auto& [name, b] : model_size_bytes_by_node(g, with_bias)) bytes[name] = b;
  for (const auto& [name, b] : model_size_bytes_by_node(g, without_bias)) float_bytes[name] = b;
  // W [32, 32] at 4 bits, b [32] at 2 bits (float32 without bias keys), all under the linear.
  EXPECT_EQ(bytes.at("blocks_0_q_proj_linear"), 32 * 32 * 4 / 8 + 32 * 2 / 8);
  EXPECT_EQ(float_bytes.at("blocks_0_q_proj_linear"), 32 * 32 * 4 / 8 + 32 * 4);
  EXPECT_EQ(bytes.at("blocks_0_q_proj_add"), 0);
  EXPECT_EQ(float_bytes.at("blocks_0_q_proj_add"), 0);
  EXPECT_EQ(op_counts(g, with_bias).bitops, op_counts(g, without_bias).bitops);
  EXPECT_EQ(average_bitwidth(g, with_bias, 32).average_bitwidth, 4.0);
}

QuantEntry entry(const std::string& key, const Fields& fields) {
  return {key, {"cfg.toml", 3, 1}, fields};
}

// A config naming the bias Add fails with the linear's name to configure instead, in the
// [passes.quantize] resolution and in the runtime's.
TEST(TransformerMetrics, ConfigNamingALinearsBiasAddFailsNamingTheLinear) {
  const ir::Graph g = onnx::import_model(kVit);
  const ConfigValue w = ConfigValue::of(8);
  const ConfigValue integer = ConfigValue::of("integer");
  const Fields f = {{"name", integer}, {"data_in_width", w}, {"data_in_frac_width", w}};
  try {
    resolve_quantize_pass(g, MatchBy::kName, {entry("blocks_0_q_proj_add", f)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("configure 'blocks_0_q_proj_linear' instead"),
              std::string::npos)
        << e.what();
  }
  // By type, `add` means the residual adds only.
  const quant::QuantAssignment adds = resolve_quantize_pass(g, MatchBy::kType, {entry("add", f)});
  EXPECT_EQ(adds.size(), 5u);
  EXPECT_EQ(adds.count("blocks_0_q_proj_add"), 0u);
  quant::QuantAssignment q;
  q["blocks_0_q_proj_add"] = {.quantized = true, .data_in = quant::FixedFormat{8, 4, true}};
  try {
    runtime::resolve_node_quant(g, q);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the bias of linear 'blocks_0_q_proj_linear'"),
              std::string::npos)
        << e.what();
  }
}

// Issue 11's option to quantize softmax: qsearch's `softmax` key (MASE has none) quantizes a
// Softmax's input when a key names it (op type, config name or regex), never by `default`, so a
// MASE config leaves every softmax in float; quantized, it counts its input's bits, no weights.
TEST(TransformerMetrics, SoftmaxIsQuantizedOnlyByAKeyNamingIt) {
  const ir::Graph g = onnx::import_model(kVit);
  std::string softmax;
  for (const ir::Node& n : g.nodes()) {
    if (ir::mase_op(g, n) == "softmax" && softmax.empty()) softmax = n.config_name;
  }
  ASSERT_FALSE(softmax.empty());
  const ConfigValue w = ConfigValue::of(6);
  const ConfigValue integer = ConfigValue::of("integer");
  const Fields f = {{"name", integer},
                    {"data_in_width", w},
                    {"data_in_frac_width", w},
                    {"weight_width", w},
                    {"weight_frac_width", w}};
  for (MatchBy by : {MatchBy::kName, MatchBy::kType, MatchBy::kRegexName}) {
    const quant::QuantAssignment q = resolve_quantize_pass(g, by, {entry("default", f)});
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.count(softmax), 0u);
  }
  const quant::QuantAssignment by_type =
      resolve_quantize_pass(g, MatchBy::kType, {entry("softmax", f)});
  EXPECT_EQ(by_type.size(), 2u);  // one per encoder block
  ASSERT_EQ(by_type.count(softmax), 1u);
  EXPECT_EQ(by_type.at(softmax).data_in, (quant::FixedFormat{6, 6, true}));
  EXPECT_EQ(resolve_quantize_pass(g, MatchBy::kName, {entry(softmax, f)}).size(), 1u);
  EXPECT_EQ(resolve_quantize_pass(g, MatchBy::kRegexName, {entry(".*softmax.*", f)}).size(), 2u);
  // The runtime quantizes its input only; the metrics count those bits and nothing else.
  const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(g, by_type);
  const ir::Node* sm = g.find_node(softmax);
  ASSERT_NE(sm, nullptr);
  const runtime::NodeQuant& s = nq[sm - g.nodes().data()];
  EXPECT_EQ(s.kind, runtime::NodeQuant::Kind::kInputOnly);
  EXPECT_EQ(s.inputs[0], (quant::FixedFormat{6, 6, true}));
  EXPECT_EQ(average_bitwidth(g, by_type, 32).average_bitwidth, 32.0);
  EXPECT_EQ(model_size_bytes(g, by_type), model_size_bytes(g, {}));
  std::map<std::string, OpCounts> counts;
  for (const auto& [name, c] : op_counts_by_node(g, by_type)) counts[name] = c;
  // [4 heads, 16, 16] scores per sample at 6 bits.
  EXPECT_EQ(counts.at(softmax).activation_bits, 4.0 * 16 * 16 * 6);
}

// data_out on layer_norm / gelu / softmax (qsearch's option; MASE's entries for them have
// data_in only) comes from a key naming them, never from `default`: a MASE config whose default
// carries data_out_* for its linears leaves LayerNorm / GELU outputs float, in a [passes.quantize]
// table and in a search space alike; the linears keep their data_out.
TEST(TransformerMetrics, NormGeluDataOutOnlyFromAKeyNamingThem) {
  const ir::Graph g = onnx::import_model(kVit);
  const ConfigValue integer = ConfigValue::of("integer");
  const Fields f = {{"name", integer},
                    {"data_in_width", ConfigValue::of(8)},
                    {"data_in_frac_width", ConfigValue::of(4)},
                    {"weight_width", ConfigValue::of(8)},
                    {"weight_frac_width", ConfigValue::of(4)},
                    {"data_out_width", ConfigValue::of(6)},
                    {"data_out_frac_width", ConfigValue::of(2)}};
  const quant::FixedFormat out{6, 2, true};
  std::map<std::string, int> named, with_out;
  for (const auto& [name, c] : resolve_quantize_pass(g, MatchBy::kType, {entry("default", f)})) {
    const ir::Node* n = g.find_node(name);
    ASSERT_NE(n, nullptr);
    const std::string op = ir::mase_op(g, *n);
    ++named[op];
    if (c.data_out) {
      EXPECT_EQ(*c.data_out, out) << name;
      ++with_out[op];
    }
  }
  EXPECT_GT(named["layer_norm"], 0);
  EXPECT_GT(named["gelu"], 0);
  EXPECT_EQ(with_out["layer_norm"], 0);
  EXPECT_EQ(with_out["gelu"], 0);
  EXPECT_EQ(with_out["linear"], named["linear"]);
  for (const char* op : {"layer_norm", "gelu", "softmax"}) {
    const quant::QuantAssignment q = resolve_quantize_pass(g, MatchBy::kType, {entry(op, f)});
    ASSERT_FALSE(q.empty()) << op;
    for (const auto& [name, c] : q) EXPECT_EQ(c.data_out, out) << op << " " << name;
    // ... and the runtime takes it: the op's output is quantized.
    const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(g, q);
    const ir::Node* n = g.find_node(q.begin()->first);
    EXPECT_EQ(nq[n - g.nodes().data()].data_out, out) << op;
  }
  // A search space: the default seed's data_out choices reach the linears, not layer_norm.
  auto choices = [&](int a, int b) {
    return std::vector<ConfigValue>{ConfigValue::of(a), ConfigValue::of(b)};
  };
  SeedEntry seed;
  seed.key = "default";
  seed.fields = {{"name", {integer}},
                 {"data_in_width", choices(8, 6)},
                 {"data_in_frac_width", choices(4, 3)},
                 {"weight_width", choices(8, 4)},
                 {"weight_frac_width", choices(4, 2)},
                 {"data_out_width", choices(6, 5)},
                 {"data_out_frac_width", choices(2, 1)}};
  SeedEntry ln_seed = seed;
  ln_seed.key = "layer_norm";
  for (bool name_layer_norm : {false, true}) {
    std::vector<SeedEntry> seeds{seed};
    if (name_layer_norm) seeds.push_back(ln_seed);
    const QuantSearchSpace space = QuantSearchSpace::build(g, MatchBy::kType, seeds);
    const quant::QuantAssignment q = space.decode(std::vector<double>(space.space().size(), 0.0));
    int ln = 0, ln_out = 0, lin_out = 0;
    for (const auto& [name, c] : q) {
      const std::string op = ir::mase_op(g, *g.find_node(name));
      ln += op == "layer_norm";
      ln_out += op == "layer_norm" && c.data_out == out;
      lin_out += op == "linear" && c.data_out == out;
    }
    EXPECT_GT(ln, 0);
    EXPECT_EQ(ln_out, name_layer_norm ? ln : 0);
    EXPECT_GT(lin_out, 0);
  }
}

}  // namespace
}  // namespace qsearch::eval
