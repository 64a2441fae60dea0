// Issue 11: the hardware metrics count a transformer's matmuls the way MASE does. A matmul of two
// activations has no weight: it adds nothing to the average bitwidth (MASE averages the weights
// of linear / conv modules) nor to the model size; its BitOPs are MACs x the widths of its two
// operands (data_in for operand 0, weight for operand 1, MASE's matmul_integer), and its
// activation bits count both operands at their widths.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "eval/hardware_metrics.h"
#include "onnx/import.h"
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

}  // namespace
}  // namespace qsearch::eval
