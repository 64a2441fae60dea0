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
#include <map>
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

// System attr of a probe trial (the sensitivity sampler's; search/sensitivity_sampler.h): "base"
// (every group unquantized) or the name of the one group the trial evaluates, all others left
// out. A probe is not a configuration of the space: Study hides probes from samplers that do
// not use them (Sampler::uses_probes), from best_trials, and report leaves them out of
// best.json / log.json / trials.csv. They count as evaluations (n_trials).
inline constexpr const char* kAttrProbe = "probe";
inline bool is_probe(const FrozenTrial& t) { return t.system_attrs.count(kAttrProbe) > 0; }

// What a sampler proposes: the params, and system attrs for the new trial (e.g. kAttrProbe).
struct Proposal {
  std::vector<double> params;
  std::map<std::string, std::string> system_attrs = {};
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  // Internal values, one per space entry, for trial `trial_number`; nullopt when the sampler
  // has nothing left to propose (brute force after the last configuration).
  virtual std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) = 0;
  // What Study calls: sample() with no attrs, unless the sampler tags its trials.
  virtual std::optional<Proposal> propose(const StudyView& study, int trial_number) {
    std::optional<std::vector<double>> p = sample(study, trial_number);
    if (!p) return std::nullopt;
    return Proposal{std::move(*p)};
  }
  // Whether the sampler's StudyView includes probe trials (only the sensitivity sampler's do).
  virtual bool uses_probes() const { return false; }
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
  // Sensitivity: a group with more options than this is probed one parameter at a time.
  int max_group_options = 16;
};

// "bruteforce" (alias "grid", "brute_force"), "random", "tpe", "nsgaii", "qmc", "sensitivity";
// case-insensitive like MASE. Throws Error listing the valid names otherwise.
std::unique_ptr<Sampler> make_sampler(const std::string& name, const SamplerOptions& options);
std::vector<std::string> sampler_names();

}  // namespace qsearch::search
