// TpeSampler: Optuna 4.x's TPESampler as MASE runs it (anchors.md §1.2-1.3), single- and
// multi-objective (MOTPE).
//
// Per trial (n = number of COMPLETE trials with finite-or-infinite, non-NaN values):
// 1. n < n_startup_trials (10): every parameter uniform, exactly as RandomSampler with the same
//    seed would draw it.
// 2. Split (split()): n_below = gamma(n) = min(ceil(0.1 n), 25).
//    - one objective: COMPLETE trials stably sorted by value (best first), the first n_below;
//    - several: loss = values with maximised objectives negated; whole non-domination ranks while
//      they fit in n_below, the overflowing rank tie-broken by greedy HSSP with reference point
//      max(1.1 w, 0.9 w) (0 -> 1e-12), w = worst loss of that rank (multi_objective.h).
//    below = those, above = the other COMPLETE trials (+ PRUNED ones, + RUNNING ones with
//    constant_liar); both in trial-number order. FAIL trials are ignored.
// 3. Weights: above = default_weights(|above|); below = default_weights(|below|) for one
//    objective, MOTPE's hypervolume weights (below_weights()) for several.
// 4. Univariate (default): per parameter with more than one value, Parzen estimators l (below)
//    and g (above) (parzen_estimator.h); n_ei_candidates (24) samples from l; the one with the
//    largest log l(x) - log g(x) wins (first on ties). Each distinct candidate value is scored
//    once. multivariate: one joint estimator pair over all such parameters, joint candidates.
//
// Randomness: Rng(seed).fork(trial_number), forked again per parameter in univariate mode.
// Cost per trial: O(n log n) for the split (O(n) bucket work per parameter), O(C) per
// candidate evaluation for a parameter with C values.
//
//   auto tpe = std::make_unique<TpeSampler>(SamplerOptions{.seed = 1});
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "search/sampler.h"

namespace qsearch::search {

class TpeSampler final : public Sampler {
 public:
  explicit TpeSampler(const SamplerOptions& options);
  std::string name() const override { return "tpe"; }
  uint64_t seed() const override { return options_.seed; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;

 private:
  SamplerOptions options_;
};

namespace tpe {

// min(ceil(fraction n), max), with Optuna's floating-point ceil (gamma(30) == 4); the defaults
// are Optuna's default_gamma.
int gamma(int n, double fraction = 0.1, int max = 25);
// n == 0: {}; n < 25: all 1; else linspace(1/n, 1, n - 25) followed by 25 ones.
std::vector<double> default_weights(int n);

// A COMPLETE trial with one non-NaN value per objective: what TPE learns from.
bool usable_complete(const FrozenTrial& t, size_t n_objectives);

// Optuna 3.1's _split_trials with constraints: n_below = gamma(feasible + infeasible COMPLETE
// trials); below takes the best feasible trials (by value, or MOTPE's ranks + HSSP), then fills
// what is left of its quota with the infeasible trials (kAttrConstraints, a value > 0) of least
// total violation; the rest, PRUNED trials and (constant_liar) RUNNING ones go above.
struct Split {
  std::vector<int> below;  // indices into history, increasing
  std::vector<int> above;
};
Split split(const std::vector<FrozenTrial>& history, const std::vector<Direction>& directions,
            bool constant_liar, double gamma_fraction = 0.1, int gamma_max = 25);

// How many usable COMPLETE trials came after the newest trial of the below set: the number of
// trials the model has learnt nothing better from (0 when below is empty).
int stall_age(const std::vector<FrozenTrial>& history, const Split& s, size_t n_objectives);

// MOTPE below weights (Optuna v4.x): with loss vectors of the below trials, reference point r
// from their worst loss as above, and F = their Pareto front:
//   w_i = max(HV(F) - HV(F \ {i}), 0) / max_j(...)  floored at 1e-12 for i in F; 1e-12 otherwise;
// all 1 when |below| <= 1 or HV(F) is infinite. Infeasible below trials weigh 1e-12 and F is
// the front of the feasible ones.
std::vector<double> below_weights(const std::vector<FrozenTrial>& history,
                                  const std::vector<int>& below,
                                  const std::vector<Direction>& directions);

}  // namespace tpe
}  // namespace qsearch::search
