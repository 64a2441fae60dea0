#include "eval/objective.h"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/tensor_cache.h"
#include "eval/evaluate.h"
#include "search/multi_objective.h"
#include "search/sensitivity_sampler.h"

namespace qsearch::eval {

std::vector<std::string> available_metrics(const ObjectiveOptions& o) {
  std::vector<std::string> m = {"loss", "accuracy", "macro_accuracy", "top5_accuracy", "mse"};
  if (o.compare_to) m.insert(m.end(), {"average_bitwidth", "memory_density"});
  if (o.model_size) m.push_back("model_size_bytes");
  if (o.bitops) m.insert(m.end(), {"macs", "bitops", "activation_bits"});
  if (o.latency) m.push_back("latency_ms");
  if (o.fpga) {
    m.insert(m.end(), {"fpga_dsp", "fpga_lut", "fpga_ff", "fpga_bram", "fpga_latency_cycles",
                       "fpga_latency_ns", "fpga_ii"});
  }
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
  if (metric.starts_with("fpga_")) return "[search.strategy.hw_runner.fpga] device = \"xcu250\"";
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
        "memory_density, model_size_bytes, macs, bitops, activation_bits, latency_ms, "
        "fpga_dsp, fpga_lut, fpga_ff, fpga_bram, fpga_latency_cycles, fpga_latency_ns, fpga_ii)",
        m.name, list);
  }
  for (const ConstraintSpec& c : options_.constraints) {
    if (std::find(avail.begin(), avail.end(), c.metric) == avail.end()) {
      fail("constraint {} needs the metric '{}', which the configured runners do not give", c.key,
           c.metric);
    }
  }
  if (options_.batch_size < 1) fail("batch_size must be at least 1 (got {})", options_.batch_size);
  if (options_.num_samples == 0) fail("num_samples must be at least 1 (got 0)");
  if (options_.racing && !(options_.racing_slice > 0 && options_.racing_slice < 1)) {
    fail("racing_slice must be in (0, 1) (got {})", options_.racing_slice);
  }
  if (options_.racing && !(options_.racing_z > 0)) {
    fail("racing_z must be positive (got {})", options_.racing_z);
  }
  // Exactly num_samples (the last batch partial, as `qsearch eval`), at most the split; a batch
  // larger than that is clamped (a plan for it would only waste memory, or fail every trial).
  samples_ =
      options_.num_samples < 0 ? data_->size() : std::min(options_.num_samples, data_->size());
  configured_batch_ = std::max<int64_t>(1, options_.batch_size);
  options_.batch_size = std::max<int64_t>(1, std::min(options_.batch_size, samples_));
  // Would fail every trial: refuse before the first.
  check_model_input(*graph_, *data_);
  for (const MetricSpec& m : options_.metrics) {
    const bool class_metric =
        m.name == "accuracy" || m.name == "macro_accuracy" || m.name == "top5_accuracy";
    if (data_->regression && class_metric) {
      fail(
          "metric '{}' needs class labels, but data set '{}' holds regression targets (float "
          "labels): optimise mse (or loss) instead",
          m.name, data_->name);
    }
    if (!data_->regression && m.name == "mse") {
      fail(
          "metric 'mse' needs regression targets (float labels), but data set '{}' holds class "
          "labels: optimise loss, accuracy, top5_accuracy or macro_accuracy instead",
          data_->name);
    }
  }
  if (options_.latency && options_.latency->batch_size > data_->size()) {
    fail(
        "[search.strategy.hw_runner.latency] batch_size = {} needs that many samples, but data "
        "set '{}' ({} split) has {}; use a batch_size of at most {}",
        options_.latency->batch_size, data_->name, data::split_name(data_->split), data_->size(),
        data_->size());
  }
  output_ = resolve_model_output(*graph_, options_.output, *data_);
}

nlohmann::ordered_json software_metrics_json(const EvalResult& r) {
  if (r.regression) {
    return {{"loss", r.loss},
            {"mse", r.mse},
            {"loss_se", r.loss_se},
            {"mse_se", r.mse_se},
            {"num_samples", r.samples}};
  }
  return {{"loss", r.loss},
          {"accuracy", r.accuracy},
          {"macro_accuracy", r.macro_accuracy},
          {"loss_se", r.loss_se},
          {"accuracy_se", r.accuracy_se},
          {"macro_accuracy_se", r.macro_accuracy_se},
          {"top5_accuracy", r.top5_accuracy},
          {"top5_accuracy_se", r.top5_accuracy_se},
          {"num_samples", r.samples}};
}

namespace {

// scaled_metrics and the objective values from the metrics.
void scale_metrics(const ObjectiveOptions& o, TrialMetrics& t) {
  t.constraints.clear();
  for (const ConstraintSpec& c : o.constraints) {
    t.constraints.push_back(t.hardware[c.metric].get<double>() - c.max);
  }
  t.scaled = nlohmann::ordered_json::object();
  t.values.clear();
  double sum = 0;
  for (const MetricSpec& m : o.metrics) {
    const auto& src = t.software.contains(m.name) ? t.software : t.hardware;
    double v = m.scale * src[m.name].get<double>();
    t.scaled[m.name] = v;
    t.values.push_back(v);
    sum += v;
  }
  if (o.sum_scaled_metrics) t.values = {sum};
}

// The final value (over n samples) of a software metric predicted from the first k of them, its
// standard error as a prediction, and the range the final value can take at all. The rest of the
// samples are taken as drawn from the same population as the first k; proportions use the
// Laplace estimate (c + 1) / (k + 2) in their variance so that 0 / k or k / k still leave room.
struct Prediction {
  double value = 0, se = 0, lo = -1e300, hi = 1e300;
};

Prediction predict(const std::string& metric, const SampleOutcomes& first, const EvalResult& r,
                   const data::Dataset& data, int64_t n) {
  const double k = static_cast<double>(first.size());
  const double rest = 1.0 - k / static_cast<double>(n);  // finite-population factor
  Prediction p;
  if (metric == "accuracy" || metric == "top5_accuracy") {
    const double a = metric == "accuracy" ? r.accuracy : r.top5_accuracy;
    const double c = a * k;
    const double ps = (c + 1) / (k + 2);
    p = {a, std::sqrt(ps * (1 - ps) / k * rest), c / n, (c + (n - k)) / n};
  } else if (metric == "loss" || metric == "mse") {
    // Losses are >= 0: the final mean is at least the first k's sum over n.
    p = {r.loss, r.loss_se * std::sqrt(rest), r.loss * k / n, 1e300};
  } else {  // macro_accuracy
    const int64_t* labels = data.y.data<int64_t>();
    std::vector<int64_t> tp(data.num_classes, 0), nc(data.num_classes, 0);
    for (size_t i = 0; i < first.size(); ++i) {
      ++nc[labels[i]];
      tp[labels[i]] += first.predicted[i] == labels[i];
    }
    double var = 0;
    int counted = 0;
    for (int c = 0; c < data.num_classes; ++c) {
      if (nc[c] == 0) continue;
      ++counted;
      const double rs = (tp[c] + 1.0) / (nc[c] + 2.0);
      var += rs * (1 - rs) / nc[c];
    }
    p = {r.macro_accuracy, counted ? std::sqrt(var * rest) / counted : 0.0, 0.0, 1.0};
  }
  return p;
}

}  // namespace

QuantObjective::Plans QuantObjective::make_plans(const quant::QuantAssignment& q) const {
  runtime::PlanOptions popts;
  popts.mode = options_.mode;
  popts.max_batch =
      std::max(options_.batch_size, options_.latency ? options_.latency->batch_size : int64_t{1});
  popts.quant = q;
  popts.pack_cache = pack_cache_;
  Plans p;
  p.eval = runtime::make_plan(*graph_, popts);
  // Latency is the int engine's (hardware_metrics.h), whatever mode evaluates; model size is
  // counted from the formats (what a deployment stores), so it needs no plan.
  p.latency = p.eval;
  if (options_.latency && options_.mode != runtime::Mode::kInt) {
    popts.mode = runtime::Mode::kInt;
    p.latency = runtime::make_plan(*graph_, popts);
  }
  return p;
}

EvalOptions QuantObjective::eval_options() const {
  EvalOptions eopts{.num_samples = samples_, .batch_size = options_.batch_size};
  set_output(eopts, output_);
  return eopts;
}

TrialMetrics QuantObjective::measure(const quant::QuantAssignment& q,
                                     const quant::QuantAssignment* bitwidth_q) const {
  const Plans plans = make_plans(q);
  TrialMetrics t;
  t.software = software_metrics_json(evaluate(plans.eval, *data_, eval_options()));
  t.hardware = hardware_metrics(q, plans.latency, bitwidth_q);
  scale_metrics(options_, t);
  return t;
}

nlohmann::ordered_json QuantObjective::hardware_metrics(
    const quant::QuantAssignment& q, const std::shared_ptr<const runtime::Plan>& int_plan,
    const quant::QuantAssignment* bitwidth_q) const {
  nlohmann::ordered_json h = cost_metrics(q, bitwidth_q);
  if (options_.latency) {
    h["latency_ms"] = measure_latency_ms(int_plan, data_->inputs(), *options_.latency);
  }
  return h;
}

nlohmann::ordered_json QuantObjective::cost_metrics(
    const quant::QuantAssignment& q, const quant::QuantAssignment* bitwidth_q) const {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (options_.compare_to) {
    BitwidthMetrics b =
        average_bitwidth(*graph_, bitwidth_q ? *bitwidth_q : q, *options_.compare_to);
    h["average_bitwidth"] = b.average_bitwidth;
    h["memory_density"] = b.memory_density;
  }
  if (options_.model_size) h["model_size_bytes"] = model_size_bytes(*graph_, q);
  if (options_.bitops) {
    OpCounts c = op_counts(*graph_, q);
    h["macs"] = c.macs;
    h["bitops"] = c.bitops;
    h["activation_bits"] = c.activation_bits;
  }
  if (options_.fpga) {
    h.update(fpga_metrics(estimate_fpga_cost(*graph_, q, *options_.fpga)));
  }
  return h;
}

std::optional<SpaceReferencePoint> space_reference_point(
    const QuantObjective& objective, const QuantSearchSpace& space,
    const std::vector<search::Direction>& directions, std::string* why_not) {
  const ObjectiveOptions& o = objective.options();
  const search::SearchSpace& params = space.space();
  // Each cost metric's range over the space: every configuration of a small space, else a
  // coordinate search per metric and end from every parameter's largest and smallest choice.
  std::map<std::string, std::pair<double, double>> range;  // metric -> (min, max)
  auto note = [&](const std::vector<double>& p) {
    const auto h = objective.cost_metrics(space.decode(p));
    for (auto it = h.begin(); it != h.end(); ++it) {
      const double v = it.value().get<double>();
      auto [r, fresh] = range.try_emplace(it.key(), v, v);
      if (!fresh) r->second = {std::min(r->second.first, v), std::max(r->second.second, v)};
    }
    return h;
  };
  std::string rule;
  const int64_t size = space.size();
  if (size <= kExhaustiveReferenceSpace) {
    std::vector<double> p(params.size());
    for (int64_t i = 0; i < size; ++i) {
      int64_t rest = i;
      for (size_t k = 0; k < params.size(); ++k) {
        const int64_t card = params[k].dist.cardinality();
        p[k] = params[k].dist.value_at(rest % card);
        rest /= card;
      }
      note(p);
    }
    rule = fmt::format("every one of the space's {} configurations", size);
  } else {
    std::vector<std::string> names;
    std::vector<double> first(params.size());
    for (size_t k = 0; k < params.size(); ++k) first[k] = params[k].dist.value_at(0);
    note(first);  // gives the metric names
    for (const auto& [name, r] : range) names.push_back(name);
    for (const std::string& m : names) {
      for (const bool up : {true, false}) {
        for (const bool start_high : {true, false}) {
          std::vector<double> p(params.size());
          for (size_t k = 0; k < params.size(); ++k) {
            p[k] = params[k].dist.value_at(start_high ? params[k].dist.cardinality() - 1 : 0);
          }
          double best = note(p)[m].get<double>();
          for (bool improved = true; improved;) {
            improved = false;
            for (size_t k = 0; k < params.size(); ++k) {
              for (int64_t c = 0; c < params[k].dist.cardinality(); ++c) {
                std::vector<double> q = p;
                q[k] = params[k].dist.value_at(c);
                const double v = note(q)[m].get<double>();
                if (up ? v > best : v < best) {
                  best = v;
                  p = std::move(q);
                  improved = true;
                }
              }
            }
          }
        }
      }
    }
    rule = fmt::format(
        "a coordinate search over the space's {} configurations from every parameter's first "
        "and last choice (exact for costs monotone in each parameter)",
        size == INT64_MAX ? std::string("> 9.2e18") : std::to_string(size));
  }
  std::vector<double> ref;
  double sum = 0;
  for (size_t i = 0; i < o.metrics.size(); ++i) {
    const MetricSpec& m = o.metrics[i];
    const search::Direction d = directions[o.sum_scaled_metrics ? 0 : i];
    // Whether the objective improves as the metric grows; its worst value is at the other end.
    const bool up = (d == search::Direction::kMaximize) == (m.scale >= 0);
    double worst = 0;
    if (m.name == "accuracy" || m.name == "macro_accuracy" || m.name == "top5_accuracy") {
      worst = up ? 0.0 : 1.0;
    } else if (auto r = range.find(m.name); r != range.end()) {
      worst = up ? r->second.first : r->second.second;
    } else {
      if (why_not) {
        *why_not = fmt::format("metric '{}' has no bound that follows from the space", m.name);
      }
      return std::nullopt;
    }
    sum += m.scale * worst;
    ref.push_back(m.scale * worst);
  }
  if (o.sum_scaled_metrics) ref = {sum};
  return SpaceReferencePoint{
      ref, "accuracy 0 (maximized) and each cost's worst value over the space, from " + rule};
}

nlohmann::ordered_json QuantObjective::evaluate_software(const quant::QuantAssignment& q,
                                                         int64_t num_samples) const {
  const int64_t n = num_samples < 0 ? data_->size() : std::min(num_samples, data_->size());
  runtime::PlanOptions popts;
  popts.mode = options_.mode;
  popts.max_batch = std::max<int64_t>(1, std::min(configured_batch_, n));
  popts.quant = q;
  popts.pack_cache = pack_cache_;
  EvalOptions eopts{.num_samples = n, .batch_size = popts.max_batch};
  set_output(eopts, output_);
  return software_metrics_json(evaluate(runtime::make_plan(*graph_, popts), *data_, eopts));
}

void QuantObjective::set_racing_incumbents(std::vector<search::Direction> directions,
                                           CompleteTrialValues complete) {
  directions_ = std::move(directions);
  incumbents_ = std::move(complete);
}

int64_t QuantObjective::racing_slice_samples() const {
  if (!options_.racing) return samples_;
  const int64_t b = options_.batch_size;
  const auto want = static_cast<int64_t>(std::ceil(options_.racing_slice * samples_));
  const int64_t k = std::max<int64_t>(1, (want + b - 1) / b) * b;
  return std::min(k, samples_);
}

quant::QuantAssignment probe_assignment(const QuantSearchSpace& space,
                                        const std::vector<double>& params, const std::string& group,
                                        quant::QuantAssignment* bitwidth_q) {
  quant::QuantAssignment q = space.decode(params);
  std::set<std::string> keys, kept;
  for (const auto& [node, key] : space.node_keys()) {
    keys.insert(key);
    if (key == group) kept.insert(node);
  }
  if (group != search::kProbeBase && !keys.count(group)) {
    fail("probe '{}' is no key of the search space", group);
  }
  for (auto it = q.begin(); it != q.end();)
    it = kept.count(it->first) ? std::next(it) : q.erase(it);
  if (bitwidth_q) {
    *bitwidth_q = q;
    for (const auto& [node, key] : space.node_keys()) {
      if (q.count(node)) continue;
      quant::NodeQuantConfig float32;
      float32.bypass = true;
      float32.weight = quant::FixedFormat{32, 16, true};
      (*bitwidth_q)[node] = float32;
    }
  }
  return q;
}

search::ObjectiveResult QuantObjective::operator()(const search::FrozenTrial& trial) const {
  // The buffers earlier trials freed (activations, weight codes) stay in the tensor block cache
  // for tensors of their size; another trial's formats need other sizes, so without this the
  // cache grew with every trial (ResNet-18 224: 299 MB after one trial, 373 MB after three).
  // malloc_trim returns what the allocator keeps of them (glibc serves large blocks from its
  // heap once a freed mmapped block has raised its mmap threshold, and keeps them once freed).
  release_cached_tensor_blocks();
  malloc_trim(0);
  quant::QuantAssignment q = space_->decode(trial.params);
  nlohmann::ordered_json sampled = space_->sampled_config(trial.params);
  auto probe = trial.system_attrs.find(search::kAttrProbe);
  std::optional<quant::QuantAssignment> bitwidth_q;
  if (probe != trial.system_attrs.end()) {
    const std::string& group = probe->second;
    bitwidth_q.emplace();
    try {
      q = probe_assignment(*space_, trial.params, group, &*bitwidth_q);
    } catch (Error& e) {
      e.add_context(fmt::format("in probe trial {}", trial.number));
      throw;
    }
    for (const auto& [node, key] : space_->node_keys()) {
      if (key != group && key != "default") sampled.erase(key);
    }
  }
  const int64_t slice = racing_slice_samples();
  TrialMetrics t;
  search::ObjectiveResult r;
  // Probes are never raced: the sensitivity model needs every one of them measured in full.
  if (slice >= samples_ || !incumbents_ || bitwidth_q) {
    t = measure(q, bitwidth_q ? &*bitwidth_q : nullptr);
  } else {
    const Plans plans = make_plans(q);
    const EvalOptions eopts = eval_options();
    SampleOutcomes outcomes;
    evaluate_rows(plans.eval, *data_, eopts, slice, &outcomes);
    const EvalResult first = summarize(outcomes, *data_);
    t.software = software_metrics_json(first);
    t.hardware = hardware_metrics(q, plans.latency);
    // The optimistic point: each software metric at the end of its interval that helps the
    // objective it enters (by direction and the sign of its scale).
    TrialMetrics optimistic{.software = t.software, .hardware = t.hardware};
    for (size_t i = 0; i < options_.metrics.size(); ++i) {
      const MetricSpec& m = options_.metrics[i];
      if (!t.software.contains(m.name)) continue;  // a hardware metric: exact
      const search::Direction d =
          directions_[options_.sum_scaled_metrics ? 0 : std::min(i, directions_.size() - 1)];
      const bool up = (d == search::Direction::kMaximize) == (m.scale >= 0);
      const Prediction p = predict(m.name, outcomes, first, *data_, samples_);
      const double v = p.value + (up ? 1 : -1) * options_.racing_z * p.se;
      optimistic.software[m.name] = std::clamp(v, p.lo, p.hi);
    }
    scale_metrics(options_, optimistic);
    const std::vector<double> opt_loss = search::to_loss(optimistic.values, directions_);
    std::optional<int> dominated_by;
    for (const auto& [number, values] : incumbents_()) {
      if (values.size() != directions_.size()) continue;
      if (search::dominates(search::to_loss(values, directions_), opt_loss)) {
        dominated_by = number;
        break;
      }
    }
    if (dominated_by) {
      scale_metrics(options_, t);
      r.pruned = true;
      const nlohmann::ordered_json racing = {{"slice_samples", slice},
                                             {"num_samples", samples_},
                                             {"z", options_.racing_z},
                                             {"values", t.values},
                                             {"optimistic_values", optimistic.values},
                                             {"dominated_by", *dominated_by}};
      r.user_attrs["racing"] = racing.dump();
    } else {
      evaluate_rows(plans.eval, *data_, eopts, samples_, &outcomes);
      t.software = software_metrics_json(summarize(outcomes, *data_));
      scale_metrics(options_, t);
    }
  }
  r.values = t.values;
  r.constraints = t.constraints;
  r.user_attrs["software_metrics"] = t.software.dump();
  r.user_attrs["hardware_metrics"] = t.hardware.dump();
  r.user_attrs["scaled_metrics"] = t.scaled.dump();
  r.user_attrs["sampled_config"] = sampled.dump();
  return r;
}

}  // namespace qsearch::eval
