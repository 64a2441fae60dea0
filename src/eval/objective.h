// The search objective: a trial's parameters -> its number formats -> a quantized plan ->
// measured metrics -> the values the sampler optimises (MASE's SearchStrategyOptuna.objective,
// mase.md §4.2, with metrics reset per trial).
//
// Metrics come from runners, named as in MASE's config:
//   sw_runner.basic_evaluation  -> loss, accuracy (top-1), macro_accuracy
//   hw_runner.average_bitwidth  -> average_bitwidth, memory_density   (compare_to)
//   hw_runner.model_size        -> model_size_bytes
//   hw_runner.bitops            -> macs, bitops, activation_bits
//   hw_runner.latency           -> latency_ms                          (batch_size, repeats)
// The model must give one score per class of the data set (checked by the constructor, before any
// trial). Objectives are scale * metric for the configured metrics in sorted name order; with
// sum_scaled_metrics they are summed into one value (MASE ignores per-metric directions then).
//
// The trial's user attributes are MASE's: software_metrics, hardware_metrics, scaled_metrics,
// sampled_config (JSON texts). An assignment the engine cannot run (e.g. an accumulator that
// would overflow int64) throws; the study records the trial as FAIL with that reason.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/hardware_metrics.h"
#include "eval/quant_config.h"
#include "ir/graph.h"
#include "runtime/plan.h"
#include "search/study.h"

namespace qsearch::eval {

struct MetricSpec {
  std::string name;
  double scale = 1.0;
};

struct ObjectiveOptions {
  runtime::Mode mode = runtime::Mode::kInt;
  int64_t num_samples = -1;  // exactly (at most the split; batch_size clamped); < 0 = all
  int64_t batch_size = 128;
  std::optional<double> compare_to;       // average_bitwidth runner present
  bool model_size = false;                // model_size runner present
  bool bitops = false;                    // bitops runner present
  std::optional<LatencyOptions> latency;  // latency runner present
  std::vector<MetricSpec> metrics;        // sorted by name (objective order)
  bool sum_scaled_metrics = false;
  std::string output;  // graph output scored ("" = the first; resolve_model_output)
};

// Metric names the configured runners produce, in runner order.
std::vector<std::string> available_metrics(const ObjectiveOptions& options);

struct TrialMetrics {
  nlohmann::ordered_json software, hardware, scaled;
  std::vector<double> values;
};

class QuantObjective {
 public:
  // Throws Error when a configured metric is produced by no runner (naming the runner to add),
  // or when every trial would fail (a latency batch larger than the data set).
  QuantObjective(std::shared_ptr<const ir::Graph> graph, std::shared_ptr<const data::Dataset> data,
                 std::shared_ptr<const QuantSearchSpace> space, ObjectiveOptions options);

  // Evaluates one assignment (used by the search and by `qsearch quantize`). average_bitwidth
  // is computed from `bitwidth_q` when given (probes: unquantized layers count as 32-bit).
  TrialMetrics measure(const quant::QuantAssignment& q,
                       const quant::QuantAssignment* bitwidth_q = nullptr) const;
  // The search objective. A probe trial (system attr search::kAttrProbe, the sensitivity
  // sampler's) quantizes only the nodes whose search key is the probed group ("base": none),
  // every other node left unquantized, so each layer's effect is measured alone; its
  // average_bitwidth counts the unquantized linear/conv weights as 32 bits (float), which makes
  // it additive over layers like model_size_bytes and bitops (which count float as 32 bits
  // already), and its sampled_config lists only the probed group.
  search::ObjectiveResult operator()(const search::FrozenTrial& trial) const;

  const ObjectiveOptions& options() const { return options_; }
  // Samples each trial evaluates: num_samples, at most the split's size.
  int64_t samples_per_trial() const { return samples_; }
  // The graph output the trials score (its note, if any, is for the user).
  const ModelOutput& model_output() const { return output_; }

 private:
  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<const data::Dataset> data_;
  std::shared_ptr<const QuantSearchSpace> space_;
  ObjectiveOptions options_;
  int64_t samples_ = 0;
  ModelOutput output_;
  // Packed weights shared by every trial's int plan (copies of this objective share it too).
  std::shared_ptr<runtime::PackCache> pack_cache_ = std::make_shared<runtime::PackCache>();
};

}  // namespace qsearch::eval
