#include "search/study.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <set>
#include <system_error>
#include <thread>

#include "core/check.h"
#include "core/error.h"
#include "core/stopwatch.h"
#include "search/configuration.h"
#include "search/multi_objective.h"

namespace qsearch::search {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

// kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists).
bool process_alive(long pid) {
  if (pid <= 0) return true;  // unparsable: do not reap
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

}  // namespace

std::string Study::this_worker() { return host_name() + ":" + std::to_string(getpid()); }

Study::Study(std::shared_ptr<Storage> storage, StudyInfo info, std::unique_ptr<Sampler> sampler)
    : storage_(std::move(storage)),
      info_(std::move(info)),
      sampler_(std::move(sampler)),
      worker_(this_worker()) {}

Study Study::create(std::shared_ptr<Storage> storage, const std::string& name,
                    const std::vector<Direction>& directions, const SearchSpace& space,
                    std::unique_ptr<Sampler> sampler, bool load_if_exists) {
  if (!storage) fail("study '{}': no storage given", name);
  if (!sampler) fail("study '{}': no sampler given", name);
  if (directions.empty()) fail("study '{}' needs at least one objective direction", name);
  if (space.empty())
    fail("study '{}': the search space is empty; add at least one parameter", name);
  std::set<std::string> names;
  for (const Param& p : space) {
    if (!names.insert(p.name).second) {
      fail("study '{}': parameter '{}' appears twice in the search space", name, p.name);
    }
    try {
      p.dist.validate();
    } catch (Error& e) {
      e.add_context(fmt::format("in parameter '{}' of study '{}'", p.name, name));
      throw;
    }
  }
  try {
    sampler->check_space(space, directions);
  } catch (Error& e) {
    e.add_context(fmt::format("while creating study '{}'", name));
    throw;
  }
  const int64_t id = storage->create_study(name, directions, space, load_if_exists);
  StudyInfo info = storage->get_study(id);
  Study study(std::move(storage), std::move(info), std::move(sampler));
  study.reap_interrupted();
  return study;
}

void Study::reap_interrupted() {
  const std::string host = host_name();
  for (const FrozenTrial& t : storage_->get_trials(info_.id)) {
    if (t.state != TrialState::kRunning) continue;
    auto it = t.system_attrs.find(kAttrWorker);
    if (it == t.system_attrs.end()) continue;
    const std::string& worker = it->second;
    const size_t colon = worker.rfind(':');
    if (colon == std::string::npos || worker.substr(0, colon) != host) continue;
    char* end = nullptr;
    const long pid = std::strtol(worker.c_str() + colon + 1, &end, 10);
    if (end == worker.c_str() + colon + 1 || *end != '\0' || process_alive(pid)) continue;
    try {
      storage_->finish_trial(
          t.id, TrialState::kFail, {}, {},
          {{kAttrInterrupted, "1"},
           {kAttrFailReason,
            fmt::format("interrupted: worker process {} no longer exists", worker)}});
    } catch (const Error&) {
      // Another process reaped it first; the trial is finished either way.
    }
  }
}

int Study::reclaim_stale(int64_t grace_ms) {
  reap_interrupted();
  return static_cast<int>(storage_->fail_stale_trials(info_.id, grace_ms).size());
}

bool Study::finished_elsewhere(const FrozenTrial& trial) {
  try {
    const std::vector<FrozenTrial> all = storage_->get_trials(info_.id);
    return trial.number >= 0 && trial.number < static_cast<int>(all.size()) &&
           all[trial.number].id == trial.id && all[trial.number].finished();
  } catch (const std::exception&) {
    return false;  // the storage fails: nothing says the trial was reclaimed
  }
}

std::optional<std::vector<double>> Study::interrupted_to_rerun(
    const std::vector<FrozenTrial>& history) {
  for (const FrozenTrial& t : history) {
    if (t.state != TrialState::kFail || !t.interrupted() || rerun_known_.count(t.number)) continue;
    // An interrupted probe is re-proposed by its sampler (it carries the probe attr).
    if (is_probe(t)) continue;
    bool rerun = false;
    for (size_t j = static_cast<size_t>(t.number) + 1; j < history.size() && !rerun; ++j) {
      rerun = history[j].params == t.params && !is_probe(history[j]);
    }
    if (!rerun) return t.params;
    rerun_known_.insert(t.number);  // history only grows: it stays re-run
  }
  return std::nullopt;
}

std::optional<FrozenTrial> Study::create_trial(int n_trials, NoTrial* reason,
                                               const std::function<bool(int64_t)>& is_ours,
                                               bool* others_running) {
  *reason = NoTrial::kNone;
  if (others_running) *others_running = false;
  std::map<std::string, std::string> attrs = {{kAttrWorker, worker_}};
  const Storage::Decide decide =
      [&](const std::vector<FrozenTrial>& history) -> std::optional<std::vector<double>> {
    attrs = {{kAttrWorker, worker_}};  // a storage that retries decide gets this call's attrs
    if (n_trials >= 0) {
      int counted = 0;
      for (const FrozenTrial& t : history) {
        counted += t.state == TrialState::kFail && t.interrupted() ? 0 : 1;
        if (others_running && t.state == TrialState::kRunning && !(is_ours && is_ours(t.id))) {
          *others_running = true;
        }
      }
      if (counted >= n_trials) {
        *reason = NoTrial::kTargetReached;
        return std::nullopt;
      }
    }
    std::optional<std::vector<double>> params;
    {
      std::lock_guard<std::mutex> lock(*sampler_mu_);
      params = interrupted_to_rerun(history);
      if (!params) {
        // Probe trials are not configurations of the space: only samplers that use them see
        // them (a copy only when the study has some).
        const bool hide = !sampler_->uses_probes() &&
                          std::any_of(history.begin(), history.end(),
                                      [](const FrozenTrial& t) { return is_probe(t); });
        std::vector<FrozenTrial> visible;
        if (hide) {
          for (const FrozenTrial& t : history) {
            if (!is_probe(t)) visible.push_back(t);
          }
        }
        // No configuration is evaluated twice: a proposal that repeats a taken one (samplers
        // avoid it through StudyView::is_taken) moves to the nearest untaken configuration.
        taken_.update(history);
        const TakenConfigurations& taken = taken_;
        const StudyView view{info_.space, info_.directions, hide ? visible : history, &taken};
        const int number = static_cast<int>(history.size());
        std::optional<Proposal> proposal = sampler_->propose(view, number);
        if (proposal) {
          params = std::move(proposal->params);
          auto probe = proposal->system_attrs.find(kAttrProbe);
          if (probe != proposal->system_attrs.end() &&
              taken.contains_key(configuration_key(*params, &probe->second))) {
            // A sampler repeating a probe: evaluate a configuration of the space instead.
            proposal->system_attrs.erase(probe);
            probe = proposal->system_attrs.end();
          }
          if (probe == proposal->system_attrs.end() && params->size() == info_.space.size() &&
              taken.contains(*params)) {
            Rng rng = Rng(sampler_->seed()).fork(static_cast<uint64_t>(number));
            params = nearest_untaken(info_.space, *params, taken, rng);
          }
          // The storage reads the attrs after decide returns (Storage::create_trial).
          for (auto& [k, v] : proposal->system_attrs) attrs[k] = std::move(v);
        }
      }
    }
    if (!params) {
      *reason = NoTrial::kExhausted;
      return std::nullopt;
    }
    QSEARCH_CHECK(params->size() == info_.space.size());
    for (size_t i = 0; i < params->size(); ++i) {
      QSEARCH_CHECK(info_.space[i].dist.contains((*params)[i]));
    }
    return params;
  };
  return storage_->create_trial(info_.id, decide, attrs);
}

std::optional<FrozenTrial> Study::ask() {
  NoTrial reason;
  return create_trial(-1, &reason);
}

FrozenTrial Study::finish(const FrozenTrial& trial, TrialState state, std::vector<double> values,
                          const std::map<std::string, std::string>& user_attrs,
                          std::map<std::string, std::string> system_attrs) {
  if (state == TrialState::kComplete) {
    if (values.size() != info_.directions.size()) {
      state = TrialState::kFail;
      system_attrs[kAttrFailReason] = fmt::format("objective returned {} values for {} objectives",
                                                  values.size(), info_.directions.size());
    } else {
      for (double v : values) {
        if (std::isnan(v)) {
          state = TrialState::kFail;
          system_attrs[kAttrFailReason] = "objective returned NaN";
        }
      }
    }
  }
  if (state != TrialState::kComplete) values.clear();
  storage_->finish_trial(trial.id, state, values, user_attrs, system_attrs);
  FrozenTrial done = trial;
  done.state = state;
  done.values = std::move(values);
  for (const auto& [k, v] : user_attrs) done.user_attrs[k] = v;
  for (const auto& [k, v] : system_attrs) done.system_attrs[k] = v;
  done.datetime_complete_ms = now_ms();
  return done;
}

void Study::tell(const FrozenTrial& trial, TrialState state, const std::vector<double>& values,
                 const std::map<std::string, std::string>& user_attrs,
                 const std::map<std::string, std::string>& system_attrs) {
  if (state == TrialState::kRunning) {
    fail("tell(trial {}): the state must be COMPLETE or FAIL", trial.number);
  }
  if (state == TrialState::kComplete && values.size() != info_.directions.size()) {
    fail("tell(trial {}): {} values given but study '{}' has {} objectives", trial.number,
         values.size(), info_.name, info_.directions.size());
  }
  finish(trial, state, values, user_attrs, system_attrs);
}

OptimizeSummary Study::optimize(const Objective& objective, const OptimizeOptions& options) {
  if (options.n_jobs < 1) fail("optimize: n_jobs must be >= 1, got {}", options.n_jobs);
  if (!(options.heartbeat_interval_s > 0) ||
      !(options.grace_period_s > options.heartbeat_interval_s)) {
    fail(
        "optimize: heartbeat_interval ({}s) must be > 0 and grace_period ({}s) larger than it, or "
        "live trials would be reclaimed",
        options.heartbeat_interval_s, options.grace_period_s);
  }
  const auto interval = std::chrono::milliseconds(
      std::max<int64_t>(1, std::llround(options.heartbeat_interval_s * 1000)));
  const int64_t grace_ms = std::llround(options.grace_period_s * 1000);
  const Stopwatch clock;
  std::mutex mu;  // guards summary, first_error and the callback
  OptimizeSummary summary;
  std::exception_ptr first_error;
  std::atomic<bool> halt{false};

  // The trials this call evaluates; a heartbeat thread renews them and reclaims stale trials.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool hb_done = false;
  std::set<int64_t> running;
  auto is_ours = [&](int64_t id) {
    std::lock_guard<std::mutex> lock(hb_mu);
    return running.count(id) > 0;
  };
  auto untrack = [&](int64_t id) {
    std::lock_guard<std::mutex> lock(hb_mu);
    running.erase(id);
  };
  auto count_reclaimed = [&](int n) {
    std::lock_guard<std::mutex> lock(mu);
    summary.reclaimed += n;
  };
  count_reclaimed(reclaim_stale(grace_ms));

  auto worker = [&] {
    try {
      while (!halt.load()) {
        if (options.stop && options.stop->load()) break;
        if (options.timeout_s >= 0 && clock.seconds() >= options.timeout_s) {
          std::lock_guard<std::mutex> lock(mu);
          summary.timed_out = true;
          break;
        }
        NoTrial reason;
        bool others_running = false;
        std::optional<FrozenTrial> trial =
            create_trial(options.n_trials, &reason, is_ours, &others_running);
        if (!trial && reason == NoTrial::kTargetReached && others_running) {
          // Not done while another worker's trial runs: it may die and be reclaimed, and its
          // configuration must then be re-run. Poll; the heartbeat thread reclaims.
          std::this_thread::sleep_for(
              std::min<std::chrono::milliseconds>(interval, std::chrono::milliseconds(100)));
          continue;
        }
        if (!trial) {
          std::lock_guard<std::mutex> lock(mu);
          if (reason == NoTrial::kExhausted) summary.exhausted = true;
          halt = true;
          break;
        }
        {
          std::lock_guard<std::mutex> lock(hb_mu);
          running.insert(trial->id);
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          ++summary.started;
        }
        // The objective's failures make FAIL trials; the storage's are not the trial's fault.
        std::optional<ObjectiveResult> result;
        std::string error;
        try {
          result = objective(*trial);
        } catch (const std::exception& e) {
          error = e.what();
        } catch (...) {
          error = "objective threw a non-standard exception";
        }
        FrozenTrial done;
        try {
          done = result
                     ? finish(*trial, result->pruned ? TrialState::kPruned : TrialState::kComplete,
                              std::move(result->values), result->user_attrs,
                              result->constraints.empty()
                                  ? std::map<std::string, std::string>{}
                                  : std::map<std::string, std::string>{{kAttrConstraints,
                                                                        constraints_json(
                                                                            result->constraints)}})
                     : finish(*trial, TrialState::kFail, {}, {}, {{kAttrFailReason, error}});
        } catch (...) {
          // Not recorded: the trial stays RUNNING and stops beating, so it is reclaimed and
          // re-run. If it was reclaimed already (this worker was silent past the grace period),
          // the configuration is re-run elsewhere: drop this result and go on.
          untrack(trial->id);
          if (!finished_elsewhere(*trial)) throw;
          std::lock_guard<std::mutex> lock(mu);
          ++summary.lost;
          continue;
        }
        untrack(trial->id);
        std::lock_guard<std::mutex> lock(mu);
        ++(done.state == TrialState::kComplete ? summary.completed
           : done.state == TrialState::kPruned ? summary.pruned
                                               : summary.failed);
        if (options.on_trial_finished) {
          try {
            options.on_trial_finished(done);
          } catch (...) {
            halt = true;  // under `mu`: no worker records another trial before it sees the halt
            throw;
          }
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!first_error) first_error = std::current_exception();
      halt = true;
    }
  };

  std::thread heartbeat;
  try {
    heartbeat = std::thread([&] {
      std::unique_lock<std::mutex> lock(hb_mu);
      while (!hb_cv.wait_for(lock, interval, [&] { return hb_done; })) {
        std::vector<int64_t> ids(running.begin(), running.end());
        lock.unlock();
        try {
          storage_->record_heartbeat(ids);
          count_reclaimed(reclaim_stale(grace_ms));
        } catch (const std::exception&) {
          // Retried at the next beat. If beats keep failing, other workers reclaim these trials
          // and the workers here notice when they record the results.
        }
        lock.lock();
      }
    });
  } catch (const std::system_error& e) {
    fail("optimize: cannot start the heartbeat thread: {}", e.what());
  }

  std::string spawn_error;
  if (options.n_jobs == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (int j = 0; j < options.n_jobs; ++j) {
      try {
        threads.emplace_back(worker);
      } catch (const std::exception& e) {  // std::system_error, or bad_alloc for its state
        // The system refused another thread: stop the ones started (they finish their trial)
        // instead of destroying joinable threads (std::terminate).
        spawn_error =
            fmt::format("n_jobs = {}: the system could start only {} threads ({}); use fewer jobs",
                        options.n_jobs, threads.size(), e.what());
        halt = true;
        break;
      }
    }
    for (std::thread& t : threads) t.join();
  }
  {
    std::lock_guard<std::mutex> lock(hb_mu);
    hb_done = true;
  }
  hb_cv.notify_all();
  heartbeat.join();
  summary.elapsed_s = clock.seconds();
  if (first_error) std::rethrow_exception(first_error);
  if (!spawn_error.empty()) fail("{}", spawn_error);
  return summary;
}

std::vector<FrozenTrial> Study::trials() const { return storage_->get_trials(info_.id); }

std::vector<FrozenTrial> Study::best_trials() const {
  std::vector<FrozenTrial> all = storage_->get_trials(info_.id);
  std::vector<const FrozenTrial*> complete;
  Points loss(static_cast<int>(info_.directions.size()));
  for (const FrozenTrial& t : all) {
    if (t.state != TrialState::kComplete || t.values.size() != info_.directions.size()) continue;
    if (is_probe(t)) continue;      // not a configuration of the space
    if (!is_feasible(t)) continue;  // Optuna: best_trials are feasible
    bool nan = false;
    for (double v : t.values) nan = nan || std::isnan(v);
    if (nan) continue;
    complete.push_back(&t);
    loss.push_back(to_loss(t.values, info_.directions));
  }
  std::vector<FrozenTrial> best;
  for (int i : pareto_front(loss)) best.push_back(*complete[i]);
  return best;
}

}  // namespace qsearch::search
