#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "search/multi_objective.h"
#include "search/samplers.h"
#include "search/space_util.h"

namespace qsearch::search {

namespace {

bool usable(const FrozenTrial& t, size_t n_objectives) {
  if (t.state != TrialState::kComplete || t.values.size() != n_objectives) return false;
  for (double v : t.values) {
    if (std::isnan(v)) return false;
  }
  return true;
}

// Optuna's _constrained_dominates (Deb's constrained domination): with constraints on neither
// trial, plain domination; a trial with constraints beats one without; two feasible trials by
// domination; a feasible one beats an infeasible one; two infeasible ones by total violation.
bool constrained_dominates(const FrozenTrial& a, const FrozenTrial& b,
                           const std::vector<Direction>& directions) {
  const bool ca = a.system_attrs.count(kAttrConstraints) > 0;
  const bool cb = b.system_attrs.count(kAttrConstraints) > 0;
  if (!ca && !cb) return dominates(to_loss(a.values, directions), to_loss(b.values, directions));
  if (ca != cb) return ca;
  const double va = constraint_violation(a), vb = constraint_violation(b);
  if (va <= 0 && vb <= 0) {
    return dominates(to_loss(a.values, directions), to_loss(b.values, directions));
  }
  if (va <= 0) return true;
  if (vb <= 0) return false;
  return va < vb;
}

// Non-domination ranks under constrained domination (O(n^2) peeling; the candidates are one or
// two populations).
std::vector<int> constrained_ranks(const std::vector<FrozenTrial>& history,
                                   const std::vector<int>& candidates,
                                   const std::vector<Direction>& directions) {
  const int n = static_cast<int>(candidates.size());
  std::vector<int> rank(n, -1);
  int assigned = 0;
  for (int r = 0; assigned < n; ++r) {
    std::vector<int> front;
    for (int i = 0; i < n; ++i) {
      if (rank[i] >= 0) continue;
      bool dominated = false;
      for (int j = 0; j < n && !dominated; ++j) {
        dominated =
            j != i && rank[j] < 0 &&
            constrained_dominates(history[candidates[j]], history[candidates[i]], directions);
      }
      if (!dominated) front.push_back(i);
    }
    for (int i : front) rank[i] = r;
    assigned += static_cast<int>(front.size());
  }
  return rank;
}

}  // namespace

NsgaIISampler::NsgaIISampler(const SamplerOptions& options) : options_(options) {
  if (options.population_size < 2) {
    fail("nsgaii: population_size must be >= 2, got {}", options.population_size);
  }
  if (!(options.crossover_prob >= 0 && options.crossover_prob <= 1)) {
    fail("nsgaii: crossover_prob must be in [0, 1], got {}", options.crossover_prob);
  }
  if (!(options.swapping_prob >= 0 && options.swapping_prob <= 1)) {
    fail("nsgaii: swapping_prob must be in [0, 1], got {}", options.swapping_prob);
  }
  if (!(options.mutation_prob <= 1)) {
    fail("nsgaii: mutation_prob must be <= 1 (< 0 for 1/n_params), got {}", options.mutation_prob);
  }
}

std::vector<int> NsgaIISampler::select_elite(const StudyView& study,
                                             const std::vector<int>& candidates,
                                             int population_size) {
  const int m = static_cast<int>(study.directions.size());
  Points loss(m);
  for (int i : candidates) loss.push_back(to_loss(study.history[i].values, study.directions));
  bool constrained = false;
  for (int i : candidates)
    constrained = constrained || study.history[i].system_attrs.count(kAttrConstraints);
  const std::vector<int> rank = constrained
                                    ? constrained_ranks(study.history, candidates, study.directions)
                                    : non_domination_ranks(loss);
  const int n_ranks = rank.empty() ? 0 : *std::max_element(rank.begin(), rank.end()) + 1;
  std::vector<std::vector<int>> by_rank(n_ranks);  // positions in `candidates`
  for (int k = 0; k < static_cast<int>(candidates.size()); ++k) by_rank[rank[k]].push_back(k);

  std::vector<int> elite;
  for (std::vector<int>& group : by_rank) {
    if (static_cast<int>(elite.size() + group.size()) < population_size) {
      for (int k : group) elite.push_back(candidates[k]);
      continue;
    }
    // Optuna's _crowding_distance_sort: its distance computation sorts the list in place by
    // each objective in turn; the list is then stably sorted by distance and reversed.
    Points raw(m);
    for (int k : group) raw.push_back(study.history[candidates[k]].values);
    const std::vector<double> dist = crowding_distance(raw);
    std::vector<int> order(group.size());
    std::iota(order.begin(), order.end(), 0);
    for (int j = 0; j < m; ++j) {
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return raw[a][j] < raw[b][j]; });
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return dist[a] < dist[b]; });
    std::reverse(order.begin(), order.end());
    const int need = population_size - static_cast<int>(elite.size());
    for (int k = 0; k < need; ++k) elite.push_back(candidates[group[order[k]]]);
    break;
  }
  return elite;
}

std::optional<std::vector<double>> NsgaIISampler::sample(const StudyView& study, int trial_number) {
  const SearchSpace& space = study.space;
  Rng rng = Rng(options_.seed).fork(static_cast<uint64_t>(trial_number));
  const int pop = options_.population_size;
  const int generation = trial_number / pop;
  auto uniform = [&] {
    std::vector<double> params = sample_uniform(space, rng);
    for (int r = 0; r < kMaxRedraws && study.is_taken(params); ++r) {
      params = sample_uniform(space, rng);
    }
    return params;
  };
  if (generation == 0) return uniform();

  const size_t n_obj = study.directions.size();
  const int n_hist = static_cast<int>(study.history.size());
  std::vector<int> parents;
  for (int h = 0; h < generation; ++h) {
    std::vector<int> candidates = parents;
    for (int i = h * pop; i < std::min((h + 1) * pop, n_hist); ++i) {
      if (usable(study.history[i], n_obj) && study.history[i].params.size() == space.size()) {
        candidates.push_back(i);
      }
    }
    parents = select_elite(study, candidates, pop);
  }
  if (parents.empty()) return uniform();

  std::vector<int> genes;
  for (size_t i = 0; i < space.size(); ++i) {
    if (!space[i].dist.single()) genes.push_back(static_cast<int>(i));
  }
  // Binary tournament on (constrained) domination (Optuna's _select_parent: crowding distance is
  // not used).
  auto tournament = [&](const std::vector<int>& pool) {
    const int c0 = pool[rng.uniform_int(pool.size())];
    const int c1 = pool[rng.uniform_int(pool.size())];
    return constrained_dominates(study.history[c0], study.history[c1], study.directions) ? c0 : c1;
  };

  const double mutation_prob = options_.mutation_prob >= 0
                                   ? options_.mutation_prob
                                   : 1.0 / std::max<double>(1.0, static_cast<double>(genes.size()));
  // Crossover and mutation, drawn again (the same stream, continued) while the child is a taken
  // configuration, at most kMaxRedraws times.
  auto make_child = [&] {
    std::vector<double> child;
    if (rng.uniform() < options_.crossover_prob && parents.size() >= 2) {
      const int p0 = tournament(parents);
      std::vector<int> rest;
      for (int p : parents) {
        if (p != p0) rest.push_back(p);
      }
      const int p1 = tournament(rest);
      child = study.history[p0].params;
      for (int g : genes) {
        if (rng.uniform() >= options_.swapping_prob) child[g] = study.history[p1].params[g];
      }
    } else {
      child = study.history[parents[rng.uniform_int(parents.size())]].params;
    }
    for (int g : genes) {
      if (rng.uniform() < mutation_prob) child[g] = from_unit(space[g].dist, rng.uniform());
    }
    for (size_t i = 0; i < space.size(); ++i) {
      if (space[i].dist.single()) child[i] = space[i].dist.value_at(0);
    }
    return child;
  };
  std::vector<double> child = make_child();
  for (int r = 0; r < kMaxRedraws && study.is_taken(child); ++r) child = make_child();
  return child;
}

}  // namespace qsearch::search
