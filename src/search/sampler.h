// Sampler: proposes the parameters of the next trial from the study's history.
//
// Samplers know nothing of neural networks. They are called inside Storage::create_trial, so
// `history` is exactly the study's trials at that moment (all states; RUNNING trials are
// those being evaluated by other threads/processes). A sampler must be a pure function of
// (its seed, space, directions, history, trial_number): the same inputs give the same params,
// which is what makes a seeded sequential search reproducible and a resumed search continue
// as if never stopped. Keep per-call randomness in Rng(seed).fork(trial_number).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::search {

struct StudyView {
  const SearchSpace& space;
  const std::vector<Direction>& directions;
  const std::vector<FrozenTrial>& history;  // ordered by number
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  // Internal values, one per space entry, for trial `trial_number`; nullopt when the sampler
  // has nothing left to propose (brute force after the last configuration).
  virtual std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) = 0;
  // Throws Error when the sampler cannot search this space (e.g. brute force over a continuous
  // float). Study::create calls it, so the error comes before any trial runs.
  virtual void check_space(const SearchSpace& space,
                           const std::vector<Direction>& directions) const {
    (void)space;
    (void)directions;
  }
};

struct SamplerOptions {
  uint64_t seed = 0;
  // TPE
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  bool multivariate = false;
  bool constant_liar = false;
  // NSGA-II
  int population_size = 50;
  double crossover_prob = 0.9;
  double swapping_prob = 0.5;
  double mutation_prob = -1;  // < 0: 1 / number of params (Optuna's default)
  // QMC
  bool scramble = true;
};

// "bruteforce" (alias "grid", "brute_force"), "random", "tpe", "nsgaii", "qmc";
// case-insensitive like MASE. Throws Error listing the valid names otherwise.
std::unique_ptr<Sampler> make_sampler(const std::string& name, const SamplerOptions& options);
std::vector<std::string> sampler_names();

}  // namespace qsearch::search
