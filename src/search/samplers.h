// The concrete samplers behind make_sampler() (search/sampler.h); TPE lives in
// search/tpe_sampler.h. Each is a pure function of (options.seed, space, directions, history,
// trial number) and draws its randomness from Rng(seed).fork(trial_number). docs/search.md
// says where each differs from Optuna.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "search/sampler.h"

namespace qsearch::search {

// Optuna's RandomSampler: every parameter independently uniform (space_util.h's from_unit).
// A draw that is taken (StudyView::is_taken) is redrawn, up to kMaxRedraws times.
class RandomSampler final : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "random"; }
  uint64_t seed() const override { return seed_; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;

 private:
  uint64_t seed_;
};

// Every configuration of a finite space exactly once, in the order of a seeded Feistel
// permutation of the mixed-radix configuration indices (permutation.h). A call proposes the
// configuration at the smallest permutation position not yet taken, where taken = some trial
// with those params is COMPLETE, RUNNING, or FAIL without interrupted=1. So interrupted trials
// are re-proposed first, a resumed study continues where it stopped, and, since create_trial is
// atomic and RUNNING counts as taken, no two threads or processes get the same configuration.
// Returns nullopt once every configuration is taken. O(history) per call, O(1) extra memory
// besides one bit per past trial.
class BruteForceSampler final : public Sampler {
 public:
  explicit BruteForceSampler(uint64_t seed) : seed_(seed) {}
  std::string name() const override { return "bruteforce"; }
  uint64_t seed() const override { return seed_; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;
  // Error for continuous floats (no step) and spaces above 2^62 configurations.
  void check_space(const SearchSpace& space,
                   const std::vector<Direction>& directions) const override;

 private:
  uint64_t seed_;
};

// Optuna's NSGAIISampler with its defaults (population 50, uniform crossover with probability
// 0.9 and swapping probability 0.5, mutation probability 1/n_params where a mutated gene is
// re-drawn uniformly, binary tournament on domination for parents, elite selection by
// non-dominated sort + crowding distance). Parameters with one value are not genes. Trials with
// constraints (kAttrConstraints) compare by Deb's constrained domination as Optuna's
// constraints_func makes them: feasible before infeasible, infeasible by total violation.
//
// Generations come from trial numbers: trial t belongs to generation t / population_size.
// Generation 0 is random. The parent population of generation g is
//   P_0 = elite(COMPLETE trials of generation 0),  P_h = elite(P_{h-1} + COMPLETE of gen h),
// for h < g, recomputed from the history on every call (so the sampler stays a pure function
// of it). Optuna instead keeps a generation open until it has population_size COMPLETE trials,
// so with FAIL trials its generations are longer; with no failures the two agree.
class NsgaIISampler final : public Sampler {
 public:
  explicit NsgaIISampler(const SamplerOptions& options);
  std::string name() const override { return "nsgaii"; }
  uint64_t seed() const override { return options_.seed; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;

  // Optuna's elite selection: indices into `history` (candidates given as indices), ranks in
  // order, the overflowing rank sorted by crowding distance (descending, Optuna's tie order).
  static std::vector<int> select_elite(const StudyView& study, const std::vector<int>& candidates,
                                       int population_size);

 private:
  SamplerOptions options_;
};

// Scrambled Sobol points (sobol.h): trial t takes point t of a sequence with one dimension per
// parameter with more than one value; u in [0, 1) is mapped with from_unit (equal-width cells
// for ints and categoricals). Optuna's QMCSampler samples trial 0 with its independent sampler
// and counts points in a study attribute; here point index = trial number, so processes
// sharing a study never reuse a point.
class SobolSequence;

class QmcSampler final : public Sampler {
 public:
  explicit QmcSampler(const SamplerOptions& options) : options_(options) {}
  std::string name() const override { return "qmc"; }
  uint64_t seed() const override { return options_.seed; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;

 private:
  SamplerOptions options_;
  std::mutex mu_;  // guards the cached engine (a function of dims, seed and scramble only)
  std::shared_ptr<const SobolSequence> engine_;
};

}  // namespace qsearch::search
