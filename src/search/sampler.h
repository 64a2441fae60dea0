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

#include "search/configuration.h"
#include "search/trial.h"

namespace qsearch::search {

struct StudyView {
  const SearchSpace& space;
  const std::vector<Direction>& directions;
  const std::vector<FrozenTrial>& history;  // ordered by number
  // The configurations of `history` that are taken (search/configuration.h); Study builds it
  // once per create_trial. Null (a view built by hand): is_taken scans the history.
  const TakenConfigurations* taken = nullptr;

  // Whether proposing `params` (a full configuration) would repeat a COMPLETE, RUNNING or
  // FAIL-not-interrupted trial. Study::create_trial replaces such a proposal, so samplers should
  // prefer untaken ones (docs/search.md "No repeated configurations").
  bool is_taken(const std::vector<double>& params) const {
    if (taken) return taken->contains(params);
    const std::string key = configuration_key(params);
    for (const FrozenTrial& t : history) {
      if (takes_configuration(t) && configuration_key(t) == key) return true;
    }
    return false;
  }
};

// What a sampler proposes: the params, and system attrs for the new trial (e.g. kAttrProbe).
struct Proposal {
  std::vector<double> params;
  std::map<std::string, std::string> system_attrs = {};
};

// How often random draws (random, NSGA-II generation 0 and children, TPE start-up and escape)
// are repeated while they land on a taken configuration; after that Study moves the proposal to
// the nearest untaken configuration.
inline constexpr int kMaxRedraws = 64;

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  // Internal values, one per space entry, for trial `trial_number`; nullopt when the sampler
  // has nothing left to propose (brute force after the last configuration).
  // A proposal that study.is_taken() is replaced by Study (nearest untaken configuration).
  virtual std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) = 0;
  // What Study calls: sample() with no attrs, unless the sampler tags its trials.
  virtual std::optional<Proposal> propose(const StudyView& study, int trial_number) {
    std::optional<std::vector<double>> p = sample(study, trial_number);
    if (!p) return std::nullopt;
    return Proposal{std::move(*p)};
  }
  // Whether the sampler's StudyView includes probe trials (only the sensitivity sampler's do).
  virtual bool uses_probes() const { return false; }
  // The seed of Study's tie-break when it moves a taken proposal: Rng(seed()).fork(trial number).
  virtual uint64_t seed() const { return 0; }
  // Throws Error when the sampler cannot search this space (e.g. brute force over a continuous
  // float). Study::create calls it, so the error comes before any trial runs.
  virtual void check_space(const SearchSpace& space,
                           const std::vector<Direction>& directions) const {
    (void)space;
    (void)directions;
  }
};

struct SensitivityTable;  // search/sensitivity_sampler.h

struct SamplerOptions {
  uint64_t seed = 0;
  // TPE (Optuna's names; docs/search.md). gamma(n) = min(ceil(gamma_fraction n), gamma_max).
  // multivariate, constant_liar and stall_window differ from Optuna's defaults (false, false, no
  // escape): measured on issue 9's LeNet-5 space (BENCHMARKS.md "TPE defaults (issue 9)").
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  bool multivariate = true;
  bool group = false;         // needs multivariate; a fixed space is one group (no effect)
  bool constant_liar = true;  // no effect with one job
  double gamma_fraction = 0.1;
  int gamma_max = 25;
  // Frozen-model escape: once this many COMPLETE trials have finished since the newest trial of
  // the "below" set and the best-EI proposal is taken, draw from a prior-heavy mixture
  // instead. 0: off.
  int stall_window = 25;
  // NSGA-II
  int population_size = 50;
  double crossover_prob = 0.9;
  double swapping_prob = 0.5;
  double mutation_prob = -1;  // < 0: 1 / number of params (Optuna's default)
  // QMC
  bool scramble = true;
  // Sensitivity: a group with more options than this is probed one parameter at a time.
  int max_group_options = 16;
  // Sensitivity: every probe before the first configuration (`qsearch sensitivity`, which runs
  // the probes only); by default configurations are interleaved with the probes.
  bool probes_first = false;
  // Sensitivity: a precomputed table (a gradient proxy, search/sensitivity_sampler.h) used
  // instead of probes; null: probes.
  std::shared_ptr<const SensitivityTable> sensitivity_table;
};

// "bruteforce" (alias "grid", "brute_force"), "random", "tpe", "nsgaii", "qmc", "sensitivity";
// case-insensitive like MASE. Throws Error listing the valid names otherwise.
std::unique_ptr<Sampler> make_sampler(const std::string& name, const SamplerOptions& options);
std::vector<std::string> sampler_names();

}  // namespace qsearch::search
