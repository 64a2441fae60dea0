#include "report/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "report/search_report.h"
#include "report/study_settings.h"
#include "search/multi_objective.h"
#include "search/sampler.h"

namespace qsearch::report {

namespace {

std::string directions_text(const std::vector<search::Direction>& dirs) {
  std::string s;
  for (search::Direction d : dirs) s += (s.empty() ? "" : ", ") + search::to_string(d);
  return "[" + s + "]";
}

// The metric names a study's trials report as scaled metrics (its objectives), from its first
// COMPLETE trial that has them; empty when none does.
std::vector<std::string> reported_metrics(const StudyRun& r) {
  for (const auto& t : r.trials) {
    if (t.state != search::TrialState::kComplete) continue;
    auto it = t.user_attrs.find(kScaledMetrics);
    if (it == t.user_attrs.end()) continue;
    nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
    if (!j.is_object()) continue;
    std::vector<std::string> names;
    for (auto m = j.begin(); m != j.end(); ++m) names.push_back(m.key());
    std::sort(names.begin(), names.end());
    return names;
  }
  return {};
}

std::string names_text(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return "[" + s + "]";
}

}  // namespace

std::vector<std::string> check_comparable(const std::vector<StudyRun>& runs) {
  if (runs.empty()) fail("nothing to compare");
  std::vector<std::string> notes;
  const StudyRun& first = runs[0];
  const std::string fix = "compare searches of the same model, data and objectives";
  for (size_t i = 1; i < runs.size(); ++i) {
    const StudyRun& r = runs[i];
    std::vector<SettingDifference> diffs;
    if (r.info.directions != first.info.directions) {
      diffs.push_back({"directions", directions_text(first.info.directions),
                       directions_text(r.info.directions)});
    }
    std::vector<std::string> unchecked;
    for (auto& d :
         diff_settings(first.info.user_attrs, r.info.user_attrs, compare_settings(), &unchecked)) {
      diffs.push_back(std::move(d));
    }
    if (std::find(unchecked.begin(), unchecked.end(), setting::kObjectives) != unchecked.end()) {
      // No recorded objectives on one side: the metric names the trials report still tell.
      std::vector<std::string> a = reported_metrics(first), b = reported_metrics(r);
      if (!a.empty() && !b.empty() && a != b) {
        diffs.push_back({"objective metrics", names_text(a), names_text(b)});
      }
    }
    if (!diffs.empty()) {
      fail("studies '{}' and '{}' cannot be compared: {}; {}", first.label, r.label,
           describe(diffs, "'" + first.label + "'", "'" + r.label + "'"), fix);
    }
    if (!unchecked.empty()) {
      std::string list;
      for (const auto& u : unchecked) {
        list += (list.empty() ? "" : ", ") +
                (u == setting::kObjectives ? std::string("objective scales") : u);
      }
      notes.push_back(fmt::format(
          "'{}' and '{}': {} not checked (a study made by an older qsearch records no settings)",
          first.label, r.label, list));
    }
    auto space = diff_settings(first.info.user_attrs, r.info.user_attrs, {setting::kParamChoices});
    if (!space.empty() || (first.info.space.size() != r.info.space.size())) {
      notes.push_back(fmt::format(
          "'{}' and '{}' search different spaces ({}); the best known front is the union's",
          first.label, r.label,
          space.empty()
              ? fmt::format("{} and {} parameters", first.info.space.size(), r.info.space.size())
              : describe(space, "'" + first.label + "'", "'" + r.label + "'")));
    }
  }
  return notes;
}

Comparison compare_studies(const std::vector<StudyRun>& runs) {
  std::vector<std::string> notes = check_comparable(runs);
  const auto& dirs = runs[0].info.directions;
  const int dim = static_cast<int>(dirs.size());
  search::Points all(dim);
  for (const StudyRun& r : runs) {
    for (const auto& t : r.trials) {
      if (t.state == search::TrialState::kComplete && !search::is_probe(t)) {
        all.push_back(search::to_loss(t.values, dirs));
      }
    }
  }
  if (all.size() == 0) fail("none of the studies has a COMPLETE trial");
  std::set<std::vector<double>> front_points;
  search::Points front(dim);
  for (int i : search::pareto_front(all)) {
    std::vector<double> p(all[i].begin(), all[i].end());
    if (front_points.insert(p).second) front.push_back(p);
  }
  // Reference point: the front's nadir plus 10% of the front's extent per objective, so the
  // hypervolume measures how close a study came to the best known front rather than how far it
  // got from the worst configuration.
  std::vector<double> ref(dim);
  for (int j = 0; j < dim; ++j) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int i = 0; i < front.size(); ++i) {
      lo = std::min(lo, front[i][j]);
      hi = std::max(hi, front[i][j]);
    }
    double margin = 0.1 * (hi - lo);
    if (margin <= 0) margin = std::max(1e-12, 0.1 * std::abs(hi));
    ref[j] = hi + margin;
  }
  Comparison c;
  c.notes = std::move(notes);
  c.reference_front_size = front.size();
  c.reference_hv = search::hypervolume(front, ref);
  const double denom = c.reference_hv > 0 ? c.reference_hv : 1.0;

  for (const StudyRun& r : runs) {
    StudyEfficiency e;
    e.label = r.label;
    e.trials = static_cast<int>(r.trials.size());
    search::Points seen(dim);
    std::set<std::vector<double>> found;
    for (size_t k = 0; k < r.trials.size(); ++k) {
      const auto& t = r.trials[k];
      // A probe counts as an evaluation, but it is no point of the front.
      if (t.state == search::TrialState::kComplete && !search::is_probe(t)) {
        ++e.complete;
        std::vector<double> p = search::to_loss(t.values, dirs);
        seen.push_back(p);
        if (front_points.count(p)) found.insert(p);
      }
      double ratio = seen.size() ? search::hypervolume(seen, ref) / denom : 0.0;
      e.hv_curve.push_back(ratio);
      const int trials_so_far = static_cast<int>(k) + 1;
      // A tiny tolerance: hypervolumes of equal fronts computed from different point sets may
      // differ in the last bits.
      if (!e.trials_to_90 && ratio >= 0.90 - 1e-12) e.trials_to_90 = trials_so_far;
      if (!e.trials_to_99 && ratio >= 0.99 - 1e-12) e.trials_to_99 = trials_so_far;
      if (!e.trials_to_100 && ratio >= 1.0 - 1e-9) e.trials_to_100 = trials_so_far;
    }
    e.hv_ratio = e.hv_curve.empty() ? 0 : e.hv_curve.back();
    e.front_found = static_cast<int>(found.size());
    c.studies.push_back(std::move(e));
  }
  return c;
}

std::string format_comparison(const Comparison& c) {
  auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string("-"); };
  size_t w = 5;
  for (const auto& s : c.studies) w = std::max(w, s.label.size());
  std::string out =
      fmt::format("Best known Pareto front: {} points (union of all studies' complete trials)\n\n",
                  c.reference_front_size);
  out += fmt::format("{:<{}}  {:>6}  {:>8}  {:>11}  {:>7}  {:>12}  {:>12}  {:>13}\n", "study", w,
                     "trials", "complete", "front found", "HV/best", "trials->90%", "trials->99%",
                     "trials->100%");
  for (const auto& s : c.studies) {
    out += fmt::format("{:<{}}  {:>6}  {:>8}  {:>11}  {:>7.4f}  {:>12}  {:>12}  {:>13}\n", s.label,
                       w, s.trials, s.complete,
                       fmt::format("{}/{}", s.front_found, c.reference_front_size), s.hv_ratio,
                       opt(s.trials_to_90), opt(s.trials_to_99), opt(s.trials_to_100));
  }
  return out;
}

}  // namespace qsearch::report
