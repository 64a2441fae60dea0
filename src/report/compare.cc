#include "report/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "search/multi_objective.h"

namespace qsearch::report {

Comparison compare_studies(const std::vector<StudyRun>& runs) {
  if (runs.empty()) fail("nothing to compare");
  const auto& dirs = runs[0].info.directions;
  for (const StudyRun& r : runs) {
    if (r.info.directions != dirs) {
      fail(
          "studies '{}' and '{}' optimise different objectives; only runs of the same search "
          "problem compare",
          runs[0].label, r.label);
    }
  }
  const int dim = static_cast<int>(dirs.size());
  search::Points all(dim);
  for (const StudyRun& r : runs) {
    for (const auto& t : r.trials) {
      if (t.state == search::TrialState::kComplete) all.push_back(search::to_loss(t.values, dirs));
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
      if (t.state == search::TrialState::kComplete) {
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
