#include "eval/objective.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core/error.h"
#include "eval/evaluate.h"
#include "search/sensitivity_sampler.h"

namespace qsearch::eval {

std::vector<std::string> available_metrics(const ObjectiveOptions& o) {
  std::vector<std::string> m = {"loss", "accuracy", "macro_accuracy"};
  if (o.compare_to) m.insert(m.end(), {"average_bitwidth", "memory_density"});
  if (o.model_size) m.push_back("model_size_bytes");
  if (o.bitops) m.insert(m.end(), {"macs", "bitops", "activation_bits"});
  if (o.latency) m.push_back("latency_ms");
  return m;
}

namespace {
// The runner to add for a metric it would produce.
std::string runner_of(const std::string& metric) {
  if (metric == "average_bitwidth" || metric == "memory_density") {
    return "[search.strategy.hw_runner.average_bitwidth] compare_to = 32";
  }
  if (metric == "model_size_bytes") return "[search.strategy.hw_runner.model_size]";
  if (metric == "macs" || metric == "bitops" || metric == "activation_bits") {
    return "[search.strategy.hw_runner.bitops]";
  }
  if (metric == "latency_ms") return "[search.strategy.hw_runner.latency]";
  return "";
}
}  // namespace

QuantObjective::QuantObjective(std::shared_ptr<const ir::Graph> graph,
                               std::shared_ptr<const data::Dataset> data,
                               std::shared_ptr<const QuantSearchSpace> space,
                               ObjectiveOptions options)
    : graph_(std::move(graph)),
      data_(std::move(data)),
      space_(std::move(space)),
      options_(std::move(options)) {
  if (options_.metrics.empty()) {
    fail(
        "no metrics to optimise: add e.g. [search.strategy.metrics] accuracy.scale = 1.0 and "
        "accuracy.direction = \"maximize\"");
  }
  const auto avail = available_metrics(options_);
  for (const MetricSpec& m : options_.metrics) {
    if (std::find(avail.begin(), avail.end(), m.name) != avail.end()) continue;
    std::string runner = runner_of(m.name);
    if (!runner.empty()) fail("metric '{}' needs the runner {}", m.name, runner);
    std::string list;
    for (const auto& a : avail) list += (list.empty() ? "" : ", ") + a;
    fail(
        "unknown metric '{}'; the configured runners give: {} (others: average_bitwidth, "
        "memory_density, model_size_bytes, macs, bitops, activation_bits, latency_ms)",
        m.name, list);
  }
  if (options_.batch_size < 1) fail("batch_size must be at least 1 (got {})", options_.batch_size);
  if (options_.num_samples == 0) fail("num_samples must be at least 1 (got 0)");
  // Exactly num_samples (the last batch partial, as `qsearch eval`), at most the split; a batch
  // larger than that is clamped (a plan for it would only waste memory, or fail every trial).
  samples_ =
      options_.num_samples < 0 ? data_->size() : std::min(options_.num_samples, data_->size());
  options_.batch_size = std::max<int64_t>(1, std::min(options_.batch_size, samples_));
  // Would fail every trial: refuse before the first.
  if (!graph_->inputs().empty() && data_->size() > 0) {
    const Shape& in = graph_->value(graph_->inputs()[0]).shape;
    int64_t per_sample = 1;
    for (size_t d = 1; d < in.size(); ++d) per_sample *= in[d];
    const int64_t data_per_sample = data_->x.numel() / data_->size();
    if (per_sample > 0 && per_sample != data_per_sample) {
      fail(
          "model input {} does not fit data set '{}' samples {} ({} vs {} values per sample); "
          "for a csv: data set, give the feature columns the model was trained with",
          shape_str(in), data_->name, shape_str(data_->x.shape()), per_sample, data_per_sample);
    }
  }
  if (options_.latency && options_.latency->batch_size > data_->size()) {
    fail(
        "[search.strategy.hw_runner.latency] batch_size = {} needs that many samples, but data "
        "set '{}' ({} split) has {}; use a batch_size of at most {}",
        options_.latency->batch_size, data_->name, data::split_name(data_->split), data_->size(),
        data_->size());
  }
  output_ = resolve_model_output(*graph_, options_.output, data_->num_classes, data_->name);
}

TrialMetrics QuantObjective::measure(const quant::QuantAssignment& q,
                                     const quant::QuantAssignment* bitwidth_q) const {
  runtime::PlanOptions popts;
  popts.mode = options_.mode;
  popts.max_batch =
      std::max(options_.batch_size, options_.latency ? options_.latency->batch_size : int64_t{1});
  popts.quant = q;
  popts.pack_cache = pack_cache_;
  auto plan = runtime::make_plan(*graph_, popts);
  // Latency is the int engine's (hardware_metrics.h), whatever mode evaluates; model size is
  // counted from the formats (what a deployment stores), so it needs no plan.
  auto int_plan = plan;
  if (options_.latency && options_.mode != runtime::Mode::kInt) {
    popts.mode = runtime::Mode::kInt;
    int_plan = runtime::make_plan(*graph_, popts);
  }
  EvalOptions eopts{.num_samples = samples_, .batch_size = options_.batch_size};
  set_output(eopts, output_);
  EvalResult r = evaluate(plan, *data_, eopts);

  TrialMetrics t;
  t.software = {{"loss", r.loss}, {"accuracy", r.accuracy}, {"macro_accuracy", r.macro_accuracy}};
  t.hardware = nlohmann::ordered_json::object();
  if (options_.compare_to) {
    BitwidthMetrics b =
        average_bitwidth(*graph_, bitwidth_q ? *bitwidth_q : q, *options_.compare_to);
    t.hardware["average_bitwidth"] = b.average_bitwidth;
    t.hardware["memory_density"] = b.memory_density;
  }
  if (options_.model_size) t.hardware["model_size_bytes"] = model_size_bytes(*graph_, q);
  if (options_.bitops) {
    OpCounts c = op_counts(*graph_, q);
    t.hardware["macs"] = c.macs;
    t.hardware["bitops"] = c.bitops;
    t.hardware["activation_bits"] = c.activation_bits;
  }
  if (options_.latency) {
    t.hardware["latency_ms"] = measure_latency_ms(int_plan, data_->x, *options_.latency);
  }
  t.scaled = nlohmann::ordered_json::object();
  double sum = 0;
  for (const MetricSpec& m : options_.metrics) {
    const auto& src = t.software.contains(m.name) ? t.software : t.hardware;
    double v = m.scale * src[m.name].get<double>();
    t.scaled[m.name] = v;
    t.values.push_back(v);
    sum += v;
  }
  if (options_.sum_scaled_metrics) t.values = {sum};
  return t;
}

search::ObjectiveResult QuantObjective::operator()(const search::FrozenTrial& trial) const {
  quant::QuantAssignment q = space_->decode(trial.params);
  nlohmann::ordered_json sampled = space_->sampled_config(trial.params);
  auto probe = trial.system_attrs.find(search::kAttrProbe);
  std::optional<quant::QuantAssignment> bitwidth_q;
  if (probe != trial.system_attrs.end()) {
    const std::string& group = probe->second;
    std::set<std::string> keys, kept;
    for (const auto& [node, key] : space_->node_keys()) {
      keys.insert(key);
      if (key == group) kept.insert(node);
    }
    if (group != search::kProbeBase && !keys.count(group)) {
      fail("probe trial {}: '{}' is no key of the search space", trial.number, group);
    }
    for (auto it = q.begin(); it != q.end();)
      it = kept.count(it->first) ? std::next(it) : q.erase(it);
    bitwidth_q = q;
    for (const auto& [node, key] : space_->node_keys()) {
      if (q.count(node)) continue;
      quant::NodeQuantConfig float32;
      float32.bypass = true;
      float32.weight = quant::FixedFormat{32, 16, true};
      (*bitwidth_q)[node] = float32;
    }
    for (const std::string& key : keys) {
      if (key != group && key != "default") sampled.erase(key);
    }
  }
  TrialMetrics t = measure(q, bitwidth_q ? &*bitwidth_q : nullptr);
  search::ObjectiveResult r;
  r.values = t.values;
  r.user_attrs["software_metrics"] = t.software.dump();
  r.user_attrs["hardware_metrics"] = t.hardware.dump();
  r.user_attrs["scaled_metrics"] = t.scaled.dump();
  r.user_attrs["sampled_config"] = sampled.dump();
  return r;
}

}  // namespace qsearch::eval
