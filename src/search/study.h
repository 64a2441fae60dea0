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
//   interrupted = "1" when the study is created/loaded. Every trial Study creates carries system
//   attr worker = "<hostname>:<pid>".
// - heartbeats (Optuna's heartbeat_interval / grace_period): optimize() renews the heartbeat of
//   the trials it runs every heartbeat_interval_s; any optimize() (this process or another)
//   reclaims a RUNNING trial silent for more than grace_period_s: FAIL with interrupted = "1"
//   (Storage::fail_stale_trials). That covers workers of other hosts, hung workers and reused
//   pids.
// - the configuration of an interrupted trial is re-run: the next trial created takes its params
//   (before the sampler is asked) unless a later trial already has them (Optuna re-enqueues a
//   failed stale trial's params with RetryFailedTrialCallback).
// - a result that cannot be recorded (storage error: disk full, database locked past its
//   timeout) never turns its trial into FAIL: the trial stays RUNNING, stops beating, optimize()
//   rethrows the error, and the trial is reclaimed and re-run later. A result whose trial was
//   reclaimed meanwhile (this worker was silent too long) is dropped (OptimizeSummary::lost).
// - a COMPLETE result with a NaN value, or with the wrong number of values, is stored as FAIL
//   with a fail_reason.
// - no configuration is evaluated twice (issue 9): a proposal equal to a taken configuration
//   (COMPLETE, RUNNING or FAIL-not-interrupted; search/configuration.h) is moved to the nearest
//   untaken one inside the atomic create_trial; when a finite space has none left the study is
//   exhausted. So n_trials counts distinct configurations.
//
// Reproducibility and n_jobs (docs/search.md):
// - Samplers are pure functions of (seed, space, directions, history, trial number) and are
//   called inside Storage::create_trial, which is atomic; so with n_jobs = 1 (and one process) a
//   seeded study with a deterministic objective proposes the same params sequence every time,
//   and a resumed study continues as if it had never stopped.
// - n_jobs > 1 (threads) or several processes: every trial is evaluated by exactly one thread;
//   each trial number is created once; sampler calls are serialised (by the storage and by a
//   per-Study mutex); n_trials is never exceeded (the count includes RUNNING trials, inside the
//   same atomic create_trial); brute force never proposes a configuration twice (RUNNING ones
//   count as taken); QMC never reuses a point (index = trial number). What is NOT reproducible is
//   the sequence: which trials have finished when trial t is sampled depends on timing.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "search/configuration.h"
#include "search/sampler.h"
#include "search/storage.h"

namespace qsearch::search {

struct ObjectiveResult {
  std::vector<double> values = {};                     // one per direction
  std::map<std::string, std::string> user_attrs = {};  // JSON texts
  bool pruned = false;  // stopped early (racing): stored as PRUNED, without values
  // Constraint values (> 0: violated), stored as the kAttrConstraints system attr when given.
  std::vector<double> constraints = {};
};

using Objective = std::function<ObjectiveResult(const FrozenTrial& trial)>;

inline constexpr double kDefaultHeartbeatIntervalS = 5;
inline constexpr double kDefaultGracePeriodS = 30;

struct OptimizeOptions {
  int n_trials = -1;      // target finished trials in the study; < 0: no limit
  double timeout_s = -1;  // no new trial starts after this many seconds; < 0: none
  int n_jobs = 1;         // threads evaluating trials concurrently
  // Called after each trial is stored, one call at a time, from the worker threads.
  std::function<void(const FrozenTrial&)> on_trial_finished = {};
  // When set and true, no new trial starts (e.g. set by a SIGINT handler).
  const std::atomic<bool>* stop = nullptr;
  // Heartbeats (see above): > 0, and grace_period_s > heartbeat_interval_s. A beat costs one
  // small write; the defaults suit trials of a millisecond (the start time counts as the first
  // beat) as well as of many minutes, and reclaim a dead worker's trial within ~35 s.
  double heartbeat_interval_s = kDefaultHeartbeatIntervalS;
  double grace_period_s = kDefaultGracePeriodS;
};

struct OptimizeSummary {
  int started = 0;  // trials this call started
  int completed = 0;
  int failed = 0;
  int pruned = 0;          // PRUNED (racing)
  int reclaimed = 0;       // stale RUNNING trials (of any worker) this call reclaimed
  int lost = 0;            // results dropped because their trial had been reclaimed meanwhile
  bool exhausted = false;  // the sampler had nothing left (brute force done)
  bool timed_out = false;
  double elapsed_s = 0;
};

class Study {
 public:
  // Creates or loads the study `name` (load_if_exists), reaping interrupted trials. Throws Error
  // for no directions, an empty space, duplicate parameter names, an invalid distribution, or a
  // space the sampler cannot search (Sampler::check_space).
  static Study create(std::shared_ptr<Storage> storage, const std::string& name,
                      const std::vector<Direction>& directions, const SearchSpace& space,
                      std::unique_ptr<Sampler> sampler, bool load_if_exists = true);

  // A new RUNNING trial with sampled params; nullopt when the sampler is exhausted.
  std::optional<FrozenTrial> ask();
  // Finishes a trial from ask(). COMPLETE needs one value per direction (Error otherwise); a
  // NaN value turns it into FAIL with a fail_reason.
  void tell(const FrozenTrial& trial, TrialState state, const std::vector<double>& values,
            const std::map<std::string, std::string>& user_attrs = {},
            const std::map<std::string, std::string>& system_attrs = {});
  // Runs trials until n_trials / timeout / stop / sampler exhaustion. Errors of the storage, the
  // sampler or on_trial_finished stop all workers and are rethrown here; objective exceptions
  // only FAIL their trial.
  OptimizeSummary optimize(const Objective& objective, const OptimizeOptions& options);

  const StudyInfo& info() const { return info_; }
  std::vector<FrozenTrial> trials() const;
  // COMPLETE trials not dominated by another (Optuna's best_trials; for one objective, every
  // trial with the best value), ordered by number. Probe trials (kAttrProbe) and infeasible
  // trials (a constraint value > 0, kAttrConstraints) are left out.
  std::vector<FrozenTrial> best_trials() const;
  Storage& storage() { return *storage_; }
  const Sampler& sampler() const { return *sampler_; }

  // "<hostname>:<pid>" of this process (the worker attr of the trials it creates).
  static std::string this_worker();

 private:
  enum class NoTrial { kNone, kTargetReached, kExhausted };
  Study(std::shared_ptr<Storage> storage, StudyInfo info, std::unique_ptr<Sampler> sampler);
  // Creates a RUNNING trial unless the study already holds n_trials (>= 0) non-interrupted
  // trials or the sampler is exhausted (why in *reason).
  // is_ours (optional): whether a RUNNING trial is run by the caller; *others_running is then
  // set when the study has RUNNING trials that are not (only computed when n_trials >= 0).
  std::optional<FrozenTrial> create_trial(int n_trials, NoTrial* reason,
                                          const std::function<bool(int64_t)>& is_ours = {},
                                          bool* others_running = nullptr);
  // Params of the first interrupted trial no later trial re-ran (under sampler_mu_).
  std::optional<std::vector<double>> interrupted_to_rerun(const std::vector<FrozenTrial>& history);
  // Reaps dead same-host workers' trials and reclaims stale ones; returns how many it reclaimed.
  int reclaim_stale(int64_t grace_ms);
  // True when the trial has been finished by someone else (e.g. reclaimed as stale).
  bool finished_elsewhere(const FrozenTrial& trial);
  // Stores the outcome and returns the finished trial as stored.
  FrozenTrial finish(const FrozenTrial& trial, TrialState state, std::vector<double> values,
                     const std::map<std::string, std::string>& user_attrs,
                     std::map<std::string, std::string> system_attrs);
  void reap_interrupted();

  std::shared_ptr<Storage> storage_;
  StudyInfo info_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<std::mutex> sampler_mu_ = std::make_unique<std::mutex>();
  std::set<int> rerun_known_;  // interrupted trial numbers a later trial re-ran (sampler_mu_)
  TakenConfigurations
      taken_;  // the history's taken configurations, updated per trial (sampler_mu_)
  std::string worker_;
};

}  // namespace qsearch::search
