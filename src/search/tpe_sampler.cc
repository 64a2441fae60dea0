#include "search/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "search/multi_objective.h"
#include "search/parzen_estimator.h"
#include "search/space_util.h"

namespace qsearch::search {

namespace tpe {

bool usable_complete(const FrozenTrial& t, size_t n_objectives) {
  if (t.state != TrialState::kComplete || t.values.size() != n_objectives) return false;
  for (double v : t.values) {
    if (std::isnan(v)) return false;
  }
  return true;
}

namespace {

constexpr double kEps = 1e-12;

std::vector<double> reference_point(const Points& loss) {
  std::vector<double> ref(loss.dim(), -std::numeric_limits<double>::infinity());
  for (int i = 0; i < loss.size(); ++i) {
    for (int j = 0; j < loss.dim(); ++j) ref[j] = std::max(ref[j], loss[i][j]);
  }
  for (double& r : ref) {
    r = std::max(1.1 * r, 0.9 * r);
    if (r == 0) r = kEps;
  }
  return ref;
}

}  // namespace

int gamma(int n) { return std::min(static_cast<int>(std::ceil(0.1 * n)), 25); }

std::vector<double> default_weights(int n) {
  if (n <= 0) return {};
  if (n < 25) return std::vector<double>(n, 1.0);
  const int ramp = n - 25;
  std::vector<double> w;
  w.reserve(n);
  const double start = 1.0 / n;
  for (int i = 0; i < ramp; ++i) {
    w.push_back(ramp == 1 ? start : start + (1.0 - start) * i / (ramp - 1));
  }
  w.insert(w.end(), 25, 1.0);
  return w;
}

Split split(const std::vector<FrozenTrial>& history, const std::vector<Direction>& directions,
            bool constant_liar) {
  const size_t n_obj = directions.size();
  std::vector<int> complete, running;
  for (int i = 0; i < static_cast<int>(history.size()); ++i) {
    const FrozenTrial& t = history[i];
    if (usable_complete(t, n_obj)) {
      complete.push_back(i);
    } else if ((constant_liar && t.state == TrialState::kRunning) ||
               t.state == TrialState::kPruned) {
      running.push_back(i);  // "above" (PRUNED: dominated by a COMPLETE trial, docs/search.md)
    }
  }
  const int n = static_cast<int>(complete.size());
  const int n_below = std::min(gamma(n), n);
  std::vector<bool> is_below(history.size(), false);

  if (n_obj == 1) {
    std::vector<int> sorted = complete;
    const bool maximize = directions[0] == Direction::kMaximize;
    std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) {
      return maximize ? history[a].values[0] > history[b].values[0]
                      : history[a].values[0] < history[b].values[0];
    });
    for (int k = 0; k < n_below; ++k) is_below[sorted[k]] = true;
  } else if (n_below == n) {
    for (int i : complete) is_below[i] = true;
  } else if (n_below > 0) {
    Points loss(static_cast<int>(n_obj));
    loss.reserve(n);
    for (int i : complete) loss.push_back(to_loss(history[i].values, directions));
    const std::vector<int> rank = non_domination_ranks(loss);
    const int max_rank = *std::max_element(rank.begin(), rank.end());
    std::vector<int> rank_count(max_rank + 1, 0);
    for (int r : rank) ++rank_count[r];
    int last_rank = -1, taken = 0;
    while (last_rank + 1 <= max_rank && taken + rank_count[last_rank + 1] <= n_below) {
      taken += rank_count[++last_rank];
    }
    for (int k = 0; k < n; ++k) {
      if (rank[k] <= last_rank) is_below[complete[k]] = true;
    }
    if (taken < n_below) {
      Points tie(static_cast<int>(n_obj));
      std::vector<int> tie_index;
      for (int k = 0; k < n; ++k) {
        if (rank[k] != last_rank + 1) continue;
        tie.push_back(loss[k]);
        tie_index.push_back(complete[k]);
      }
      for (int pos : hssp_select(tie, n_below - taken, reference_point(tie))) {
        is_below[tie_index[pos]] = true;
      }
    }
  }
  Split s;
  for (int i : complete) (is_below[i] ? s.below : s.above).push_back(i);
  s.above.insert(s.above.end(), running.begin(), running.end());
  std::sort(s.above.begin(), s.above.end());
  return s;
}

std::vector<double> below_weights(const std::vector<FrozenTrial>& history,
                                  const std::vector<int>& below,
                                  const std::vector<Direction>& directions) {
  const int nb = static_cast<int>(below.size());
  std::vector<double> w(nb, 1.0);
  if (nb <= 1) return w;
  Points loss(static_cast<int>(directions.size()));
  for (int i : below) loss.push_back(to_loss(history[i].values, directions));
  const std::vector<double> ref = reference_point(loss);
  const std::vector<int> front = pareto_front(loss);
  Points front_points(loss.dim());
  for (int i : front) front_points.push_back(loss[i]);
  const double hv = hypervolume(front_points, ref);
  if (std::isinf(hv)) return w;
  std::vector<double> contrib(nb, 0.0);
  for (size_t f = 0; f < front.size(); ++f) {
    Points rest(loss.dim());
    for (size_t g = 0; g < front.size(); ++g) {
      if (g != f) rest.push_back(front_points[static_cast<int>(g)]);
    }
    contrib[front[f]] = hv - hypervolume(rest, ref);
  }
  const double max_contrib = std::max(*std::max_element(contrib.begin(), contrib.end()), kEps);
  for (int k = 0; k < nb; ++k) w[k] = std::max(contrib[k] / max_contrib, kEps);
  return w;
}

}  // namespace tpe

TpeSampler::TpeSampler(const SamplerOptions& options) : options_(options) {
  if (options.n_startup_trials < 0) {
    fail("tpe: n_startup_trials must be >= 0, got {}", options.n_startup_trials);
  }
  if (options.n_ei_candidates < 1) {
    fail("tpe: n_ei_candidates must be >= 1, got {}", options.n_ei_candidates);
  }
}

std::optional<std::vector<double>> TpeSampler::sample(const StudyView& study, int trial_number) {
  const SearchSpace& space = study.space;
  const std::vector<FrozenTrial>& history = study.history;
  Rng rng = Rng(options_.seed).fork(static_cast<uint64_t>(trial_number));

  int n_complete = 0;
  for (const FrozenTrial& t : history)
    n_complete += tpe::usable_complete(t, study.directions.size());
  if (n_complete < options_.n_startup_trials || n_complete == 0) return sample_uniform(space, rng);

  const tpe::Split s = tpe::split(history, study.directions, options_.constant_liar);
  const std::vector<double> w_below = study.directions.size() > 1
                                          ? tpe::below_weights(history, s.below, study.directions)
                                          : tpe::default_weights(static_cast<int>(s.below.size()));
  const std::vector<double> w_above = tpe::default_weights(static_cast<int>(s.above.size()));

  std::vector<double> out(space.size());
  std::vector<int> dims;
  for (size_t i = 0; i < space.size(); ++i) {
    if (space[i].dist.single()) {
      out[i] = space[i].dist.value_at(0);
    } else {
      dims.push_back(static_cast<int>(i));
    }
  }
  const int n_cand = options_.n_ei_candidates;

  if (options_.multivariate) {
    const int nd = static_cast<int>(dims.size());
    std::vector<const Distribution*> dists;
    for (int i : dims) dists.push_back(&space[i].dist);
    auto rows = [&](const std::vector<int>& trials) {
      std::vector<double> obs;
      obs.reserve(trials.size() * nd);
      for (int t : trials) {
        for (int i : dims) obs.push_back(history[t].params[i]);
      }
      return obs;
    };
    const tpe::MultivariateParzenEstimator l(dists, rows(s.below), w_below);
    const tpe::MultivariateParzenEstimator g(dists, rows(s.above), w_above);
    std::vector<double> cand(nd), best(nd);
    double best_score = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < n_cand; ++c) {
      l.sample(rng, cand);
      const double score = l.log_pdf(cand) - g.log_pdf(cand);
      if (c == 0 || score > best_score) {
        best_score = score;
        best = cand;
      }
    }
    for (int k = 0; k < nd; ++k) out[dims[k]] = best[k];
    return out;
  }

  std::vector<double> obs_below(s.below.size()), obs_above(s.above.size());
  std::vector<std::pair<double, double>> scored;  // (value, score) of distinct candidates
  for (int i : dims) {
    const Distribution& dist = space[i].dist;
    for (size_t k = 0; k < s.below.size(); ++k) obs_below[k] = history[s.below[k]].params[i];
    for (size_t k = 0; k < s.above.size(); ++k) obs_above[k] = history[s.above[k]].params[i];
    const tpe::ParzenEstimator1D l(dist, obs_below, w_below);
    const tpe::ParzenEstimator1D g(dist, obs_above, w_above);
    Rng prng = rng.fork(static_cast<uint64_t>(i));
    scored.clear();
    double best = 0, best_score = 0;
    for (int c = 0; c < n_cand; ++c) {
      const double x = l.sample(prng);
      double score;
      auto it =
          std::find_if(scored.begin(), scored.end(), [&](const auto& p) { return p.first == x; });
      if (it != scored.end()) {
        score = it->second;
      } else {
        score = l.log_pdf(x) - g.log_pdf(x);
        scored.emplace_back(x, score);
      }
      if (c == 0 || score > best_score) {
        best = x;
        best_score = score;
      }
    }
    out[i] = best;
  }
  return out;
}

}  // namespace qsearch::search
