// Hardware metrics against the quantized runtime: MASE counts bypassed layers in the average
// bitwidth, per-node op counts sum to the totals, latency refuses a batch it cannot run as
// stated, model_size_bytes counts each parameter at its own width (whatever mode evaluates), and
// the objective reports a FAILED-able error for an accumulator beyond int64.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "eval/hardware_metrics.h"
#include "eval/objective.h"
#include "onnx/import.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kMlp = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/torch/mlp_opset13.onnx";

quant::NodeQuantConfig linear(int data_in, int weight) {
  return {.quantized = true,
          .data_in = quant::FixedFormat{data_in, data_in / 2, true},
          .weight = quant::FixedFormat{weight, weight / 2, true},
          .bias = quant::FixedFormat{8, 4, true}};
}

TEST(HardwareMetricsQuant, BypassedLayersCountLikeMase) {
  const ir::Graph g = onnx::import_model(kMlp);
  quant::QuantAssignment q = {{"fc1", linear(8, 4)}, {"fc2", linear(8, 2)}};
  q["fc2"].quantized = false;  // MASE's bypass = true: replaced module, float maths
  q["fc2"].bypass = true;
  EXPECT_NEAR(average_bitwidth(g, q, 32).average_bitwidth,
              (784.0 * 32 * 4 + 32.0 * 16 * 2) / (784.0 * 32 + 32.0 * 16), 1e-12);
  // ... but a bypassed layer computes in float: 32-bit operands in BitOPs, and no activation
  // bits of its own.
  const OpCounts c = op_counts(g, q);
  EXPECT_DOUBLE_EQ(c.bitops, 25088.0 * 32 + 512.0 * 1024 + 160.0 * 1024);
  EXPECT_DOUBLE_EQ(c.activation_bits, 784.0 * 8);
}

TEST(HardwareMetricsQuant, PerNodeCountsSumToTheTotals) {
  const ir::Graph g = onnx::import_model(kMlp);
  const quant::QuantAssignment q = {{"fc1", linear(8, 4)}, {"fc3", linear(16, 6)}};
  const auto nodes = op_counts_by_node(g, q);
  ASSERT_EQ(nodes.size(), g.nodes().size());
  OpCounts sum;
  for (const auto& [name, c] : nodes) {
    sum.macs += c.macs;
    sum.bitops += c.bitops;
    sum.activation_bits += c.activation_bits;
    if (name == "fc3") {
      EXPECT_DOUBLE_EQ(c.bitops, 160.0 * 6 * 16);
    }
  }
  const OpCounts total = op_counts(g, q);
  EXPECT_DOUBLE_EQ(sum.macs, total.macs);
  EXPECT_DOUBLE_EQ(sum.bitops, total.bitops);
  EXPECT_DOUBLE_EQ(sum.activation_bits, total.activation_bits);
}

TEST(HardwareMetricsQuant, LatencyRunsTheStatedBatchOrFails) {
  const ir::Graph g = onnx::import_model(kMlp);
  auto plan = runtime::make_plan(
      g, {.mode = runtime::Mode::kInt, .max_batch = 8, .quant = {{"fc1", linear(8, 4)}}});
  const Tensor x({8, 1, 28, 28}, DType::kFloat32);
  EXPECT_GT(measure_latency_ms(plan, x, {.batch_size = 8, .repeats = 2}), 0.0);
  EXPECT_THROW(measure_latency_ms(plan, x, {.batch_size = 9, .repeats = 2}), Error);
  EXPECT_THROW(measure_latency_ms(plan, x.rows(0, 4), {.batch_size = 5, .repeats = 2}), Error);
}

// model_size_bytes is what a deployment stores: per tensor ceil(elements * width / 8), weights at
// weight_width, biases at bias_width (32 without bias keys: kept float), float layers at 32; the
// same in every mode (it needs no plan).
TEST(HardwareMetricsQuant, ModelSizeIsEachParameterAtItsOwnWidthInEveryMode) {
  auto g = std::make_shared<const ir::Graph>(onnx::import_model(kMlp));
  auto data = std::make_shared<data::Dataset>();
  data->name = "zeros";
  data->x = Tensor({4, 1, 28, 28}, DType::kFloat32);
  data->y = Tensor({4}, DType::kInt64);
  data->num_classes = 10;
  quant::QuantAssignment q = {{"fc1", linear(8, 4)}, {"fc2", linear(8, 3)}, {"fc3", linear(8, 5)}};
  q["fc2"].bias = quant::FixedFormat{3, 1, true};
  q["fc3"].bias.reset();  // no bias keys: the bias stays float32
  auto bytes = [](int64_t elems, int bits) { return (elems * bits + 7) / 8; };
  const int64_t want = bytes(784 * 32, 4) + bytes(32, 8) + bytes(32 * 16, 3) + bytes(16, 3) +
                       bytes(16 * 10, 5) + bytes(10, 32);
  EXPECT_EQ(model_size_bytes(*g, q), want);
  const auto per_node = model_size_bytes_by_node(*g, q);
  int64_t sum = 0;
  for (const auto& [name, b] : per_node) {
    sum += b;
    if (name == "fc2") {
      EXPECT_EQ(b, bytes(32 * 16, 3) + bytes(16, 3));
    }
  }
  EXPECT_EQ(sum, want);
  // Nothing quantized: float32 everywhere, the float plan's bytes.
  EXPECT_EQ(model_size_bytes(*g, {}), runtime::make_plan(*g, {})->parameter_bytes());
  for (runtime::Mode mode : {runtime::Mode::kInt, runtime::Mode::kFake, runtime::Mode::kFloat}) {
    ObjectiveOptions o{.mode = mode,
                       .batch_size = 4,
                       .model_size = true,
                       .latency = LatencyOptions{.batch_size = 2, .repeats = 2},
                       .metrics = {{"model_size_bytes", 1.0}}};
    QuantObjective obj(g, data, nullptr, o);
    const TrialMetrics t = obj.measure(q);
    EXPECT_EQ(t.hardware.at("model_size_bytes").get<int64_t>(), want) << runtime::mode_name(mode);
    EXPECT_GT(t.hardware.at("latency_ms").get<double>(), 0.0);
  }
}

// Issue 8 item 5: a search over bias_width sees the model size change with it (the int engine's
// int64 biases made every bias cost 8 bytes whatever its width).
TEST(HardwareMetricsQuant, SearchingBiasWidthChangesModelSize) {
  const ir::Graph g = onnx::import_model(kMlp);
  int64_t previous = -1;
  for (int bw : {2, 4, 8, 16, 32}) {
    quant::QuantAssignment q = {
        {"fc1", linear(8, 4)}, {"fc2", linear(8, 4)}, {"fc3", linear(8, 4)}};
    for (auto& [name, c] : q) c.bias = quant::FixedFormat{bw, bw / 2, true};
    const int64_t size = model_size_bytes(g, q);
    EXPECT_EQ(size, (784 * 32 * 4 + 7) / 8 + (32 * 16 * 4 + 7) / 8 + (16 * 10 * 4 + 7) / 8 +
                        (32 * bw + 7) / 8 + (16 * bw + 7) / 8 + (10 * bw + 7) / 8)
        << "bias_width " << bw;
    EXPECT_GT(size, previous) << "bias_width " << bw;
    previous = size;
  }
}

TEST(HardwareMetricsQuant, AccumulatorBeyondInt64FailsTheTrial) {
  auto g = std::make_shared<const ir::Graph>(onnx::import_model(kMlp));
  auto data = std::make_shared<data::Dataset>();
  data->name = "zeros";
  data->x = Tensor({4, 1, 28, 28}, DType::kFloat32);
  data->y = Tensor({4}, DType::kInt64);
  data->num_classes = 10;
  // An accumulator beyond int64 is an Error (the study records the trial as FAILED with it).
  quant::QuantAssignment wide = {{"fc1",
                                  {.quantized = true,
                                   .data_in = quant::FixedFormat{32, 0, true},
                                   .weight = quant::FixedFormat{32, 30, true}}}};
  ObjectiveOptions o{.mode = runtime::Mode::kInt, .batch_size = 4, .metrics = {{"accuracy", 1}}};
  QuantObjective obj(g, data, nullptr, o);
  try {
    obj.measure(wide);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("beyond int64"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qsearch::eval
