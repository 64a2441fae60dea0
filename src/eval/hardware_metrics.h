// Hardware metrics of a quantized model: measured or counted, never guessed.
//
// MASE's two (mase.md §5.3), computed exactly as its average_bitwidth runner does so the numbers
// compare with MASE's:
//   average_bitwidth = sum_l n_l * weight_width_l / sum_l n_l over the *quantized* linear and
//                      conv2d nodes (bypassed ones included, as MASE counts every module it
//                      replaced), n_l = in * out (linear) or in_ch * out_ch * kH * kW (conv2d;
//                      MASE ignores groups here, and so do we); 32 when no such node is quantized.
//   memory_density   = compare_to / average_bitwidth.
// qsearch's own, per sample unless said otherwise:
//   model_size_bytes = what a deployment stores: every float32 parameter (constant read by a
//                      node) at its own width, ceil(elements * bits / 8) bytes per tensor: a
//                      quantized weight at weight_width, a bias with bias_* keys at bias_width,
//                      a quantized constant operand (add/sub/mul/matmul) at its format's width,
//                      everything else (unquantized layers, a bias kept float, batch norm
//                      parameters) at 32 bits. No engine padding or alignment. A constant read
//                      at two widths is stored at each; read twice at one width, once.
//                      (The int engine's in-memory figure, with its panel padding and int64
//                      biases, is Plan::parameter_bytes(); `qsearch quantize` prints both.)
//   macs             = multiply-accumulates of linear/conv2d/matmul nodes.
//   bitops           = sum over those nodes of macs_l * weight_bits_l * data_in_bits_l, with 32
//                      bits for an unquantized operand (the FP32 convention of HAWQ and AIMET).
//   activation_bits  = sum over quantized nodes of (elements of their quantized inputs) * width.
//   latency_ms       = wall time of Executor::run on the int plan / batch, median of repeats
//                      after a warm-up, at a stated batch size (measured on this machine).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "quant/assignment.h"
#include "runtime/plan.h"

namespace qsearch::eval {

struct BitwidthMetrics {
  double average_bitwidth = 32;
  double memory_density = 1;
};
BitwidthMetrics average_bitwidth(const ir::Graph& graph, const quant::QuantAssignment& q,
                                 double compare_to);

// model_size_bytes per node (graph order, config names; nodes storing nothing have 0) and total.
std::vector<std::pair<std::string, int64_t>> model_size_bytes_by_node(
    const ir::Graph& graph, const quant::QuantAssignment& q);
int64_t model_size_bytes(const ir::Graph& graph, const quant::QuantAssignment& q);

struct OpCounts {
  double macs = 0;
  double bitops = 0;
  double activation_bits = 0;
};
OpCounts op_counts(const ir::Graph& graph, const quant::QuantAssignment& q);
// The same per node (graph order, config names); op_counts() is their sum.
std::vector<std::pair<std::string, OpCounts>> op_counts_by_node(const ir::Graph& graph,
                                                                const quant::QuantAssignment& q);

struct LatencyOptions {
  int64_t batch_size = 1;
  int repeats = 20;  // timed runs after one warm-up run; the median is reported
};
// Milliseconds per sample: median over `repeats` of (time of one run of `batch_size` samples) /
// batch_size. `input` provides the samples (its first rows are used). Throws Error when
// batch_size exceeds the plan's max_batch or the rows of `input` (the batch is the stated one or
// nothing).
double measure_latency_ms(const std::shared_ptr<const runtime::Plan>& plan, const Tensor& input,
                          const LatencyOptions& options);
// The same for a plan of several graph inputs: inputs[i] feeds input i (Dataset::inputs()).
double measure_latency_ms(const std::shared_ptr<const runtime::Plan>& plan,
                          const std::vector<Tensor>& inputs, const LatencyOptions& options);

}  // namespace qsearch::eval
