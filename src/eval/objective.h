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
//   hw_runner.fpga              -> fpga_dsp, fpga_lut, fpga_ff, fpga_bram, fpga_latency_cycles,
//                                  fpga_latency_ns, fpga_ii (device, clock_mhz, reuse_factor,
//                                  accum_width; max_* constraints: docs/hardware.md)
// The model must give one score per class of the data set (checked by the constructor, before any
// trial). Objectives are scale * metric for the configured metrics in sorted name order; with
// sum_scaled_metrics they are summed into one value (MASE ignores per-metric directions then).
//
// The trial's user attributes are MASE's: software_metrics, hardware_metrics, scaled_metrics,
// sampled_config (JSON texts). software_metrics also carries each accuracy's and the loss's
// standard error (loss_se, accuracy_se, macro_accuracy_se; eval/evaluate.h) and num_samples. An
// assignment the engine cannot run (e.g. an accumulator that would overflow int64) throws; the
// study records the trial as FAIL with that reason.
//
// Racing (options.racing; docs/search.md "Racing"): a trial first evaluates the first
// racing_slice of its samples (rounded up to whole batches). From those it predicts each software
// metric's final value (on all num_samples) with a standard error, and takes the optimistic end
// of value +- racing_z * se per objective (hardware metrics are exact). When a COMPLETE trial of
// the study (set_racing_incumbents) dominates that optimistic point, the trial stops there and
// is returned as pruned (PRUNED in the study) with the slice's metrics in its user attrs and a
// `racing` attr; otherwise it evaluates the remaining samples and its result equals the one
// without racing exactly (same batches, same per-sample values, same sums).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/fpga_cost.h"
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

// A constraint on a hardware metric: value(metric) - max is the trial's constraint value
// (> 0: violated, Optuna's constraints semantics; search/trial.h kAttrConstraints).
struct ConstraintSpec {
  std::string metric;  // "fpga_dsp"
  double max = 0;
  std::string key;  // as written, for messages ("max_dsp")
};

struct ObjectiveOptions {
  runtime::Mode mode = runtime::Mode::kInt;
  int64_t num_samples = -1;  // exactly (at most the split; batch_size clamped); < 0 = all
  int64_t batch_size = 128;
  std::optional<double> compare_to;         // average_bitwidth runner present
  bool model_size = false;                  // model_size runner present
  bool bitops = false;                      // bitops runner present
  std::optional<LatencyOptions> latency;    // latency runner present
  std::optional<FpgaOptions> fpga;          // fpga runner present (eval/fpga_cost.h)
  std::vector<ConstraintSpec> constraints;  // each trial's constraint values (Optuna's)
  std::vector<MetricSpec> metrics;          // sorted by name (objective order)
  bool sum_scaled_metrics = false;
  std::string output;  // graph output scored ("" = the first; resolve_model_output)
  // Racing (above). racing_slice in (0, 1): the share of num_samples evaluated first.
  bool racing = false;
  double racing_slice = 0.25;
  double racing_z = 2.5;
};

// What racing compares a trial's optimistic point with: (trial number, objective values) of the
// study's COMPLETE trials. Called from the trial threads (must be thread-safe).
using CompleteTrialValues = std::function<std::vector<std::pair<int, std::vector<double>>>()>;

// Metric names the configured runners produce, in runner order.
std::vector<std::string> available_metrics(const ObjectiveOptions& options);

struct TrialMetrics {
  nlohmann::ordered_json software, hardware, scaled;
  std::vector<double> values;
  std::vector<double> constraints;  // one per options.constraints: value - max (> 0: violated)
};

// software_metrics as the trials carry them: loss, accuracy, macro_accuracy, their standard
// errors (loss_se, accuracy_se, macro_accuracy_se) and num_samples.
nlohmann::ordered_json software_metrics_json(const EvalResult& r);

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
  // software_metrics_json of the assignment on the first num_samples samples of the split (< 0:
  // all of them), in batches of the batch_size given (before clamping to samples_per_trial):
  // the final evaluation (`--final-eval full`).
  nlohmann::ordered_json evaluate_software(const quant::QuantAssignment& q,
                                           int64_t num_samples) const;
  // The hardware metrics that need neither data nor timing (all but latency_ms).
  nlohmann::ordered_json cost_metrics(const quant::QuantAssignment& q,
                                      const quant::QuantAssignment* bitwidth_q = nullptr) const;
  // The search objective (with racing when enabled and incumbents are set). A probe trial
  // (system attr search::kAttrProbe, the sensitivity sampler's) quantizes only the nodes whose
  // search key is the probed group ("base": none), every other node left unquantized, so each
  // layer's effect is measured alone; its average_bitwidth counts the unquantized linear/conv
  // weights as 32 bits (float), which makes it additive over layers like model_size_bytes and
  // bitops (which count float as 32 bits already), and its sampled_config lists only the
  // probed group. Probes are never raced.
  search::ObjectiveResult operator()(const search::FrozenTrial& trial) const;
  // Gives racing the study's directions and its COMPLETE trials; without it racing never prunes.
  void set_racing_incumbents(std::vector<search::Direction> directions,
                             CompleteTrialValues complete);
  // Samples racing evaluates first: racing_slice of samples_per_trial rounded up to whole
  // batches; samples_per_trial when that leaves nothing to skip (or racing is off).
  int64_t racing_slice_samples() const;

  const ObjectiveOptions& options() const { return options_; }
  // Samples each trial evaluates: num_samples, at most the split's size.
  int64_t samples_per_trial() const { return samples_; }
  // The graph output the trials score (its note, if any, is for the user).
  const ModelOutput& model_output() const { return output_; }

 private:
  // The plans of one assignment: the evaluated one, and the int one latency is measured on.
  struct Plans {
    std::shared_ptr<const runtime::Plan> eval, latency;
  };
  Plans make_plans(const quant::QuantAssignment& q) const;
  EvalOptions eval_options() const;  // samples_per_trial in batches of batch_size, the output
  nlohmann::ordered_json hardware_metrics(const quant::QuantAssignment& q,
                                          const std::shared_ptr<const runtime::Plan>& int_plan,
                                          const quant::QuantAssignment* bitwidth_q = nullptr) const;

  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<const data::Dataset> data_;
  std::shared_ptr<const QuantSearchSpace> space_;
  ObjectiveOptions options_;
  int64_t samples_ = 0;
  int64_t configured_batch_ = 1;  // batch_size as given (options_ holds it clamped to samples_)
  ModelOutput output_;
  std::vector<search::Direction> directions_;
  CompleteTrialValues incumbents_;
  // Packed weights shared by every trial's int plan (copies of this objective share it too).
  std::shared_ptr<runtime::PackCache> pack_cache_ = std::make_shared<runtime::PackCache>();
};

// The assignment a probe trial of `group` evaluates (search::kProbeBase: nothing quantized) for
// `params`: only the nodes whose search key is `group` keep their formats. *bitwidth_q (when
// given) gets the same plus every other quantizable node as a float32 bypass (32 bits), which
// average_bitwidth counts. Throws Error when `group` is no key of the space. Used by
// QuantObjective's probes and by the sensitivity proxies (eval/sensitivity_proxy.h).
quant::QuantAssignment probe_assignment(const QuantSearchSpace& space,
                                        const std::vector<double>& params, const std::string& group,
                                        quant::QuantAssignment* bitwidth_q = nullptr);

// The worst objective values the space allows, in objective order and the objectives' scale:
// a reference point for hypervolumes that depends on the problem only (`qsearch compare`,
// docs/outputs.md). Per metric, the end of its range where the objective is worst: accuracy and
// macro_accuracy 0 when maximized (1 when minimized); a cost metric (cost_metrics) its largest
// value over the space when minimized (smallest when maximized), found over every configuration
// when the space has at most kExhaustiveReferenceSpace, else by coordinate searches (exact for
// costs monotone in each parameter, as average_bitwidth, model_size_bytes and bitops are when
// every layer stays quantized). With sum_scaled_metrics, the sum of the worst scaled values.
// nullopt (and *why_not) when a metric has no such bound (loss, latency_ms).
struct SpaceReferencePoint {
  std::vector<double> values;
  std::string rule;  // how it was derived, for the record
};
inline constexpr int64_t kExhaustiveReferenceSpace = 4096;
std::optional<SpaceReferencePoint> space_reference_point(
    const QuantObjective& objective, const QuantSearchSpace& space,
    const std::vector<search::Direction>& directions, std::string* why_not = nullptr);

}  // namespace qsearch::eval
