#include "report/compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <utility>

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

namespace {

std::string values_text(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ", ") + fmt::format("{:g}", x);
  return "[" + s + "]";
}

// The reference point the search recorded (study attr reference_point), if any.
std::optional<std::pair<std::vector<double>, std::string>> recorded_ref(const StudyRun& r) {
  auto it = r.info.user_attrs.find(setting::kReferencePoint);
  if (it == r.info.user_attrs.end()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_object() || !j.contains("values") || !j["values"].is_array()) return std::nullopt;
  std::vector<double> v;
  for (const auto& x : j["values"]) {
    if (!x.is_number()) return std::nullopt;
    v.push_back(x.get<double>());
  }
  return std::make_pair(v, j.value("rule", std::string()));
}

}  // namespace

Comparison compare_studies(const std::vector<StudyRun>& runs, const CompareOptions& options) {
  std::vector<std::string> notes = check_comparable(runs);
  const auto& dirs = runs[0].info.directions;
  const int dim = static_cast<int>(dirs.size());
  Comparison c;
  if (options.ref_point) {
    if (static_cast<int>(options.ref_point->size()) != dim) {
      fail(
          "--ref-point has {} values but the studies have {} objectives; give one per objective "
          "in their order",
          options.ref_point->size(), dim);
    }
    c.ref_point = *options.ref_point;
    c.ref_point_source = "--ref-point";
  } else {
    for (const StudyRun& r : runs) {
      auto rec = recorded_ref(r);
      if (!rec) {
        fail(
            "study '{}' records no reference point (made by an older qsearch, or an objective "
            "without a bound such as loss or latency): pass --ref-point V1,V2,... (one value "
            "per objective, as the studies' values are)",
            r.label);
      }
      if (c.ref_point.empty()) {
        c.ref_point = rec->first;
        c.ref_point_source = "recorded by the searches: " + rec->second;
      } else if (rec->first != c.ref_point) {
        fail(
            "studies '{}' and '{}' record different reference points ({} and {}: their spaces "
            "differ); pass one for both with --ref-point, e.g. --ref-point {}",
            runs[0].label, r.label, values_text(c.ref_point), values_text(rec->first),
            fmt::format("{}", fmt::join(c.ref_point, ",")));
      }
      if (static_cast<int>(rec->first.size()) != dim) {
        fail("study '{}' records a reference point of {} values for {} objectives", r.label,
             rec->first.size(), dim);
      }
    }
  }
  const std::vector<double> ref = search::to_loss(c.ref_point, dirs);
  // Only points better than the reference point in every objective enclose volume.
  auto inside = [&](const std::vector<double>& p) {
    for (int j = 0; j < dim; ++j) {
      if (!(p[j] < ref[j])) return false;
    }
    return true;
  };

  search::Points all(dim);
  for (const StudyRun& r : runs) {
    for (const auto& t : r.trials) {
      // Infeasible trials (a constraint violated) are no points of a front either.
      if (t.state == search::TrialState::kComplete && !search::is_probe(t) &&
          search::is_feasible(t)) {
        all.push_back(search::to_loss(t.values, dirs));
      }
    }
  }
  if (all.size() == 0) fail("none of the studies has a COMPLETE trial");
  std::set<std::vector<double>> front_points;
  search::Points front(dim), front_inside(dim);
  for (int i : search::pareto_front(all)) {
    std::vector<double> p(all[i].begin(), all[i].end());
    if (front_points.insert(p).second) {
      front.push_back(p);
      if (inside(p)) front_inside.push_back(p);
    }
  }
  c.notes = std::move(notes);
  c.reference_front_size = front.size();
  c.reference_hv = search::hypervolume(front_inside, ref);
  const double denom = c.reference_hv > 0 ? c.reference_hv : 1.0;

  for (const StudyRun& r : runs) {
    StudyEfficiency e;
    e.label = r.label;
    e.trials = static_cast<int>(r.trials.size());
    search::Points seen(dim);
    std::set<std::vector<double>> found;
    double hv = 0;
    for (size_t k = 0; k < r.trials.size(); ++k) {
      const auto& t = r.trials[k];
      // A probe counts as an evaluation, but it is no point of the front.
      if (t.state == search::TrialState::kComplete && !search::is_probe(t)) {
        ++e.complete;
        std::vector<double> p = search::to_loss(t.values, dirs);
        if (front_points.count(p) && search::is_feasible(t)) found.insert(p);
        if (inside(p) && search::is_feasible(t)) {  // an infeasible trial adds no volume
          seen.push_back(p);
          hv = search::hypervolume(seen, ref);
        }
      }
      double ratio = hv / denom;
      e.hv_curve.push_back(ratio);
      const int trials_so_far = static_cast<int>(k) + 1;
      // A tiny tolerance: hypervolumes of equal fronts computed from different point sets may
      // differ in the last bits.
      if (!e.trials_to_90 && ratio >= 0.90 - 1e-12) e.trials_to_90 = trials_so_far;
      if (!e.trials_to_99 && ratio >= 0.99 - 1e-12) e.trials_to_99 = trials_so_far;
      if (!e.trials_to_100 && ratio >= 1.0 - 1e-9) e.trials_to_100 = trials_so_far;
    }
    e.hv = hv;
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
  std::string contributions;
  for (const auto& s : c.studies) {
    contributions +=
        fmt::format("{}{}: {}", contributions.empty() ? "" : ", ", s.label, s.front_found);
  }
  std::string out = fmt::format(
      "Reference point: {} ({})\n"
      "Best known Pareto front: {} points, HV {:.6g}: the Pareto front of the union of the "
      "compared studies' complete trials; points each study found: {} (a point found by "
      "several studies counts for each)\n\n",
      values_text(c.ref_point), c.ref_point_source, c.reference_front_size, c.reference_hv,
      contributions);
  out += fmt::format("{:<{}}  {:>6}  {:>8}  {:>11}  {:>10}  {:>7}  {:>12}  {:>12}  {:>13}\n",
                     "study", w, "trials", "complete", "front found", "HV", "HV/best",
                     "trials->90%", "trials->99%", "trials->100%");
  for (const auto& s : c.studies) {
    out += fmt::format(
        "{:<{}}  {:>6}  {:>8}  {:>11}  {:>10.6g}  {:>7.4f}  {:>12}  {:>12}  {:>13}\n", s.label, w,
        s.trials, s.complete, fmt::format("{}/{}", s.front_found, c.reference_front_size), s.hv,
        s.hv_ratio, opt(s.trials_to_90), opt(s.trials_to_99), opt(s.trials_to_100));
  }
  return out;
}

}  // namespace qsearch::report
