// Study: ask/tell/optimize over a Storage with a Sampler (Optuna's Study, fixed space).
//
//   auto storage = std::make_shared<InMemoryStorage>();
//   Study study = Study::create(storage, "demo", {Direction::kMaximize}, space,
//                               make_sampler("tpe", {.seed = 0}));
//   study.optimize([](const FrozenTrial& t) {
//     return ObjectiveResult{{-t.params[0] * t.params[0]}, {}};
//   }, {.n_trials = 100});
//   for (const FrozenTrial& t : study.best_trials()) ...
//
// Semantics that differ from Optuna/MASE on purpose (docs/search.md):
// - n_trials is the target number of *finished* trials in the study (COMPLETE + FAIL, not
//   counting interrupted ones), so re-running a killed search finishes the same amount of
//   work instead of adding n_trials more.
// - an objective that throws makes a FAIL trial with system attr fail_reason = what(); the
//   study goes on (Optuna's default re-raises).
// - a RUNNING trial whose worker process (same host) no longer exists is marked FAIL with
//   interrupted = "1" when the study is created/loaded; brute force re-runs its configuration.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "search/sampler.h"
#include "search/storage.h"

namespace qsearch::search {

struct ObjectiveResult {
  std::vector<double> values;                     // one per direction
  std::map<std::string, std::string> user_attrs;  // JSON texts
};

using Objective = std::function<ObjectiveResult(const FrozenTrial& trial)>;

struct OptimizeOptions {
  int n_trials = -1;      // target finished trials in the study; < 0: no limit
  double timeout_s = -1;  // no new trial starts after this many seconds; < 0: none
  int n_jobs = 1;         // threads evaluating trials concurrently
  // Called after each trial is stored, one call at a time, from the worker threads.
  std::function<void(const FrozenTrial&)> on_trial_finished;
  // When set and true, no new trial starts (e.g. set by a SIGINT handler).
  const std::atomic<bool>* stop = nullptr;
};

struct OptimizeSummary {
  int started = 0;  // trials this call started
  int completed = 0;
  int failed = 0;
  bool exhausted = false;  // the sampler had nothing left (brute force done)
  bool timed_out = false;
  double elapsed_s = 0;
};

class Study {
 public:
  // Creates or loads the study `name` (load_if_exists), reaping interrupted trials.
  static Study create(std::shared_ptr<Storage> storage, const std::string& name,
                      const std::vector<Direction>& directions, const SearchSpace& space,
                      std::unique_ptr<Sampler> sampler, bool load_if_exists = true);

  // A new RUNNING trial with sampled params; nullopt when the sampler is exhausted.
  std::optional<FrozenTrial> ask();
  void tell(const FrozenTrial& trial, TrialState state, const std::vector<double>& values,
            const std::map<std::string, std::string>& user_attrs = {},
            const std::map<std::string, std::string>& system_attrs = {});
  OptimizeSummary optimize(const Objective& objective, const OptimizeOptions& options);

  const StudyInfo& info() const { return info_; }
  std::vector<FrozenTrial> trials() const;
  // COMPLETE trials not dominated by another (Optuna's best_trials; for one objective, every
  // trial with the best value), ordered by number.
  std::vector<FrozenTrial> best_trials() const;
  Storage& storage() { return *storage_; }
  const Sampler& sampler() const { return *sampler_; }

 private:
  Study(std::shared_ptr<Storage> storage, StudyInfo info, std::unique_ptr<Sampler> sampler);
  std::shared_ptr<Storage> storage_;
  StudyInfo info_;
  std::unique_ptr<Sampler> sampler_;
};

}  // namespace qsearch::search
