#include "search/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <set>

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

int gamma(int n, double fraction, int max) {
  return std::min(static_cast<int>(std::ceil(fraction * n)), max);
}

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
            bool constant_liar, double gamma_fraction, int gamma_max) {
  const size_t n_obj = directions.size();
  std::vector<int> complete, running, infeasible;
  for (int i = 0; i < static_cast<int>(history.size()); ++i) {
    const FrozenTrial& t = history[i];
    if (usable_complete(t, n_obj) && !is_feasible(t)) {
      infeasible.push_back(i);  // Optuna 3.1's _split_trials: ranked after the feasible ones
    } else if (usable_complete(t, n_obj)) {
      complete.push_back(i);
    } else if ((constant_liar && t.state == TrialState::kRunning) ||
               t.state == TrialState::kPruned) {
      running.push_back(i);  // "above" (PRUNED: dominated by a COMPLETE trial, docs/search.md)
    }
  }
  const int n = static_cast<int>(complete.size());
  const int n_all = n + static_cast<int>(infeasible.size());
  const int n_below_all = std::min(gamma(n_all, gamma_fraction, gamma_max), n_all);
  const int n_below = std::min(n_below_all, n);
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
  // The rest of the quota from the infeasible trials, least violation first (stable by number).
  std::stable_sort(infeasible.begin(), infeasible.end(), [&](int a, int b) {
    return constraint_violation(history[a]) < constraint_violation(history[b]);
  });
  for (int k = 0; k < n_below_all - n_below && k < static_cast<int>(infeasible.size()); ++k) {
    is_below[infeasible[k]] = true;
  }
  Split s;
  for (int i : complete) (is_below[i] ? s.below : s.above).push_back(i);
  for (int i : infeasible) (is_below[i] ? s.below : s.above).push_back(i);
  s.above.insert(s.above.end(), running.begin(), running.end());
  std::sort(s.below.begin(), s.below.end());
  std::sort(s.above.begin(), s.above.end());
  return s;
}

int stall_age(const std::vector<FrozenTrial>& history, const Split& s, size_t n_objectives) {
  if (s.below.empty()) return 0;
  int age = 0;
  for (size_t i = static_cast<size_t>(s.below.back()) + 1; i < history.size(); ++i) {
    age += usable_complete(history[i], n_objectives) ? 1 : 0;
  }
  return age;
}

std::vector<double> below_weights(const std::vector<FrozenTrial>& history,
                                  const std::vector<int>& below,
                                  const std::vector<Direction>& directions) {
  const int nb = static_cast<int>(below.size());
  std::vector<double> w(nb, 1.0);
  if (nb <= 1) return w;
  // Infeasible below trials (Optuna 4.x: not on the front of the feasible ones) weigh kEps.
  std::vector<int> feasible;  // positions in `below`
  for (int k = 0; k < nb; ++k) {
    if (is_feasible(history[below[k]])) feasible.push_back(k);
  }
  if (static_cast<int>(feasible.size()) < nb) {
    if (feasible.empty()) return w;
    std::vector<int> sub;
    for (int k : feasible) sub.push_back(below[k]);
    const std::vector<double> wf = below_weights(history, sub, directions);
    std::fill(w.begin(), w.end(), kEps);
    for (size_t j = 0; j < feasible.size(); ++j) w[feasible[j]] = wf[j];
    return w;
  }
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

namespace {

// Redraw rounds of n_ei_candidates candidates while every candidate is taken, and combinations
// of per-parameter candidates tried per round (univariate).
constexpr int kCandidateRounds = 8;
constexpr int kMaxCombinations = 512;

// Distinct candidate values of one parameter with their scores, best first (ties: first drawn).
struct Ranked {
  std::vector<std::pair<double, double>> values;  // (value, score), first-drawn order
  std::vector<int> order;                         // indices into values, best first
  void rank() {
    order.resize(values.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return values[a].second > values[b].second; });
  }
  double value(int r) const { return values[order[r]].first; }
  double score(int r) const { return values[order[r]].second; }
};

// The untaken combination of per-parameter candidates (one rank per parameter) with the largest
// total score among the first kMaxCombinations in best-first order; ties: smaller rank vector.
std::optional<std::vector<double>> best_untaken_combination(const StudyView& study,
                                                            const std::vector<int>& dims,
                                                            const std::vector<Ranked>& ranked,
                                                            std::vector<double> out) {
  using Node = std::pair<double, std::vector<int>>;
  auto worse = [](const Node& a, const Node& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  };
  std::priority_queue<Node, std::vector<Node>, decltype(worse)> queue(worse);
  std::set<std::vector<int>> seen;
  auto total = [&](const std::vector<int>& r) {
    double t = 0;
    for (size_t k = 0; k < dims.size(); ++k) t += ranked[k].score(r[k]);
    return t;
  };
  std::vector<int> start(dims.size(), 0);
  queue.emplace(total(start), start);
  seen.insert(start);
  for (int popped = 0; popped < kMaxCombinations && !queue.empty(); ++popped) {
    const std::vector<int> r = queue.top().second;
    queue.pop();
    for (size_t k = 0; k < dims.size(); ++k) out[dims[k]] = ranked[k].value(r[k]);
    if (!study.is_taken(out)) return out;
    for (size_t k = 0; k < dims.size(); ++k) {
      if (r[k] + 1 >= static_cast<int>(ranked[k].values.size())) continue;
      std::vector<int> next = r;
      ++next[k];
      if (seen.insert(next).second) queue.emplace(total(next), std::move(next));
    }
  }
  return std::nullopt;
}

}  // namespace

TpeSampler::TpeSampler(const SamplerOptions& options) : options_(options) {
  if (options.n_startup_trials < 0) {
    fail("tpe: n_startup_trials must be >= 0, got {}", options.n_startup_trials);
  }
  if (options.n_ei_candidates < 1) {
    fail("tpe: n_ei_candidates must be >= 1, got {}", options.n_ei_candidates);
  }
  if (!(options.gamma_fraction > 0 && options.gamma_fraction <= 1)) {
    fail("tpe: gamma's fraction must be in (0, 1], got {}", options.gamma_fraction);
  }
  if (options.gamma_max < 1) fail("tpe: gamma's max must be >= 1, got {}", options.gamma_max);
  if (options.stall_window < 0) {
    fail("tpe: stall_window must be >= 0 (0: off), got {}", options.stall_window);
  }
  if (options.group && !options.multivariate) {
    fail("tpe: group = true needs multivariate = true (as in Optuna)");
  }
}

std::optional<std::vector<double>> TpeSampler::sample(const StudyView& study, int trial_number) {
  const SearchSpace& space = study.space;
  const std::vector<FrozenTrial>& history = study.history;
  Rng rng = Rng(options_.seed).fork(static_cast<uint64_t>(trial_number));

  int n_complete = 0;
  for (const FrozenTrial& t : history)
    n_complete += tpe::usable_complete(t, study.directions.size());
  if (n_complete < options_.n_startup_trials || n_complete == 0) {
    std::vector<double> params = sample_uniform(space, rng);
    for (int r = 0; r < kMaxRedraws && study.is_taken(params); ++r) {
      params = sample_uniform(space, rng);
    }
    return params;
  }

  const tpe::Split s = tpe::split(history, study.directions, options_.constant_liar,
                                  options_.gamma_fraction, options_.gamma_max);
  const std::vector<double> w_below = study.directions.size() > 1
                                          ? tpe::below_weights(history, s.below, study.directions)
                                          : tpe::default_weights(static_cast<int>(s.below.size()));
  const std::vector<double> w_above = tpe::default_weights(static_cast<int>(s.above.size()));
  // Frozen model: no trial has entered "below" for stall_window trials. When its best-EI
  // proposal is also taken, the model has nothing new to say: draw from l with the prior
  // weighted like all below trials together (half the mass uniform) instead.
  const bool stalled = options_.stall_window > 0 &&
                       tpe::stall_age(history, s, study.directions.size()) >= options_.stall_window;
  const tpe::ParzenOptions wide{.prior_weight = std::max(1.0, static_cast<double>(s.below.size()))};

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
    const std::vector<double> obs_below = rows(s.below);
    const tpe::MultivariateParzenEstimator l(dists, obs_below, w_below);
    const tpe::MultivariateParzenEstimator g(dists, rows(s.above), w_above);
    auto full = [&](const std::vector<double>& cand) {
      std::vector<double> p = out;
      for (int k = 0; k < nd; ++k) p[dims[k]] = cand[k];
      return p;
    };
    std::vector<double> cand(nd);
    std::vector<std::pair<double, std::vector<double>>> batch;  // (score, params)
    std::vector<double> first_best;
    for (int round = 0; round < kCandidateRounds; ++round) {
      batch.clear();
      for (int c = 0; c < n_cand; ++c) {
        l.sample(rng, cand);
        batch.emplace_back(l.log_pdf(cand) - g.log_pdf(cand), full(cand));
      }
      std::stable_sort(batch.begin(), batch.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      if (round == 0) {
        first_best = batch[0].second;
        if (!study.is_taken(first_best)) return first_best;
        if (stalled) {
          const tpe::MultivariateParzenEstimator lw(dists, obs_below, w_below, wide);
          Rng erng = rng.fork(0x57a11);
          for (int a = 0; a < kMaxRedraws; ++a) {
            lw.sample(erng, cand);
            std::vector<double> p = full(cand);
            if (!study.is_taken(p)) return p;
          }
          return first_best;
        }
      }
      for (const auto& [score, p] : batch) {
        if (!study.is_taken(p)) return p;
      }
    }
    return first_best;  // every candidate taken: Study moves it to the nearest untaken one
  }

  const int nd = static_cast<int>(dims.size());
  std::vector<double> obs_below(s.below.size()), obs_above(s.above.size());
  std::vector<tpe::ParzenEstimator1D> ls, gs;
  ls.reserve(nd);
  gs.reserve(nd);
  std::vector<Rng> prngs;
  std::vector<Ranked> ranked(nd);
  auto draw = [&](int k) {
    for (int c = 0; c < n_cand; ++c) {
      const double x = ls[k].sample(prngs[k]);
      auto& vals = ranked[k].values;
      if (std::find_if(vals.begin(), vals.end(), [&](const auto& p) { return p.first == x; }) ==
          vals.end()) {
        vals.emplace_back(x, ls[k].log_pdf(x) - gs[k].log_pdf(x));
      }
    }
    ranked[k].rank();
  };
  for (int k = 0; k < nd; ++k) {
    const int i = dims[k];
    const Distribution& dist = space[i].dist;
    for (size_t j = 0; j < s.below.size(); ++j) obs_below[j] = history[s.below[j]].params[i];
    for (size_t j = 0; j < s.above.size(); ++j) obs_above[j] = history[s.above[j]].params[i];
    ls.emplace_back(dist, obs_below, w_below);
    gs.emplace_back(dist, obs_above, w_above);
    prngs.push_back(rng.fork(static_cast<uint64_t>(i)));
    draw(k);
    out[i] = ranked[k].value(0);
  }
  if (!study.is_taken(out)) return out;
  const std::vector<double> best = out;
  if (stalled) {
    std::vector<tpe::ParzenEstimator1D> lw;
    lw.reserve(nd);
    for (int k = 0; k < nd; ++k) {
      const int i = dims[k];
      for (size_t j = 0; j < s.below.size(); ++j) obs_below[j] = history[s.below[j]].params[i];
      lw.emplace_back(space[i].dist, obs_below, w_below, wide);
    }
    Rng erng = rng.fork(0x57a11);
    std::vector<double> p = out;
    for (int a = 0; a < kMaxRedraws; ++a) {
      for (int k = 0; k < nd; ++k) p[dims[k]] = lw[k].sample(erng);
      if (!study.is_taken(p)) return p;
    }
    return best;
  }
  for (int round = 0; round < kCandidateRounds; ++round) {
    if (round > 0) {
      for (int k = 0; k < nd; ++k) draw(k);
    }
    if (auto p = best_untaken_combination(study, dims, ranked, out)) return p;
  }
  return best;  // Study moves it to the nearest untaken configuration
}

}  // namespace qsearch::search
