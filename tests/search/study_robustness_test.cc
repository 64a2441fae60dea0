// Study::optimize when the infrastructure fails (issue 8): results that cannot be recorded,
// workers that stop beating, threads the system refuses.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "search/memory_storage.h"
#include "search/study.h"

namespace qsearch::search {
namespace {

// 3 x 2 = 6 configurations.
SearchSpace space6() {
  return {{"a", Distribution::int_range(0, 2)}, {"b", Distribution::int_range(0, 1)}};
}

ObjectiveResult sum(const FrozenTrial& t) { return {{t.params[0] + t.params[1]}, {}}; }

// InMemoryStorage, except that chosen finish_trial calls throw the way a full disk or a database
// locked past its timeout does, and heartbeats can be lost.
class FlakyStorage : public Storage {
 public:
  std::shared_ptr<InMemoryStorage> inner = std::make_shared<InMemoryStorage>();
  std::atomic<int> finish_calls{0};
  int fail_finish_call = -1;  // this 0-based finish_trial call throws
  std::atomic<bool> lose_heartbeats{false};

  int64_t create_study(const std::string& name, const std::vector<Direction>& directions,
                       const SearchSpace& space, bool load_if_exists,
                       const std::map<std::string, std::string>& user_attrs = {}) override {
    return inner->create_study(name, directions, space, load_if_exists, user_attrs);
  }
  StudyInfo get_study(int64_t id) override { return inner->get_study(id); }
  std::optional<int64_t> find_study(const std::string& name) override {
    return inner->find_study(name);
  }
  std::vector<std::string> study_names() override { return inner->study_names(); }
  void set_study_user_attr(int64_t id, const std::string& k, const std::string& v) override {
    inner->set_study_user_attr(id, k, v);
  }
  std::optional<FrozenTrial> create_trial(
      int64_t id, const Decide& decide,
      const std::map<std::string, std::string>& system_attrs) override {
    return inner->create_trial(id, decide, system_attrs);
  }
  void finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values,
                    const std::map<std::string, std::string>& user_attrs,
                    const std::map<std::string, std::string>& system_attrs) override {
    if (finish_calls++ == fail_finish_call) {
      fail("cannot record trial {}: database or disk is full (injected)", trial_id);
    }
    inner->finish_trial(trial_id, state, values, user_attrs, system_attrs);
  }
  std::vector<FrozenTrial> get_trials(int64_t id) override { return inner->get_trials(id); }
  void record_heartbeat(const std::vector<int64_t>& ids) override {
    if (!lose_heartbeats) inner->record_heartbeat(ids);
  }
  std::vector<FrozenTrial> fail_stale_trials(int64_t id, int64_t grace_ms) override {
    return inner->fail_stale_trials(id, grace_ms);
  }
};

Study brute_force_study(std::shared_ptr<Storage> storage) {
  return Study::create(std::move(storage), "s", {Direction::kMinimize}, space6(),
                       make_sampler("bruteforce", {.seed = 1}));
}

OptimizeOptions fast_heartbeats(int n_trials, int n_jobs = 1) {
  return {
      .n_trials = n_trials, .n_jobs = n_jobs, .heartbeat_interval_s = 0.01, .grace_period_s = 0.05};
}

void sleep_past_grace() { std::this_thread::sleep_for(std::chrono::milliseconds(120)); }

// Every configuration has exactly one COMPLETE trial; every FAIL is an interrupted one.
void expect_each_configuration_complete_once(const std::vector<FrozenTrial>& trials) {
  std::map<std::vector<double>, int> complete;
  for (const FrozenTrial& t : trials) {
    EXPECT_NE(t.state, TrialState::kRunning) << "trial " << t.number;
    if (t.state == TrialState::kComplete) ++complete[t.params];
    if (t.state == TrialState::kFail) {
      EXPECT_TRUE(t.interrupted()) << "trial " << t.number;
    }
  }
  EXPECT_EQ(complete.size(), 6u);
  for (const auto& [params, n] : complete) EXPECT_EQ(n, 1);
}

TEST(StudyRobustness, AResultThatCannotBeRecordedLeavesItsTrialRerunnable) {
  auto storage = std::make_shared<FlakyStorage>();
  storage->fail_finish_call = 2;
  {
    Study study = brute_force_study(storage);
    EXPECT_THROW(study.optimize(sum, fast_heartbeats(6)), Error);
  }
  std::vector<FrozenTrial> before = storage->inner->get_trials(0);
  ASSERT_EQ(before.size(), 3u);
  // Not turned into FAIL: the result was lost, not the configuration's fault.
  EXPECT_EQ(before[2].state, TrialState::kRunning);
  EXPECT_EQ(before[2].system_attrs.count(kAttrFailReason), 0u);

  // A later run (same or another process) reclaims it once silent and re-runs its configuration
  // first; brute force loses no configuration.
  sleep_past_grace();
  Study resumed = brute_force_study(storage);
  OptimizeSummary sum6 = resumed.optimize(sum, fast_heartbeats(6));
  EXPECT_EQ(sum6.reclaimed, 1);
  std::vector<FrozenTrial> after = storage->inner->get_trials(0);
  EXPECT_EQ(after[2].state, TrialState::kFail);
  EXPECT_TRUE(after[2].interrupted());
  ASSERT_GT(after.size(), 3u);
  EXPECT_EQ(after[3].params, before[2].params);
  EXPECT_EQ(after[3].state, TrialState::kComplete);
  expect_each_configuration_complete_once(after);
}

TEST(StudyRobustness, AnOrphanedTrialIsReclaimedAndRerunBeforeNTrialsIsReached) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = brute_force_study(storage);
  // A worker on another host took configuration (2, 1) and died: no process check can see it.
  const auto orphan = storage->create_trial(0,
                                            [](const std::vector<FrozenTrial>&) {
                                              return std::vector<double>{2, 1};
                                            },
                                            {{kAttrWorker, "elsewhere:1"}});
  ASSERT_TRUE(orphan);
  // The orphan counts towards n_trials while RUNNING; optimize must not stop at "n_trials
  // reached" while it can still be reclaimed.
  OptimizeSummary s = study.optimize(sum, fast_heartbeats(6, 2));
  EXPECT_EQ(s.reclaimed, 1);
  std::vector<FrozenTrial> trials = storage->get_trials(0);
  EXPECT_EQ(trials[0].state, TrialState::kFail);
  EXPECT_TRUE(trials[0].interrupted());
  EXPECT_NE(trials[0].system_attrs.at(kAttrFailReason).find("no heartbeat"), std::string::npos);
  expect_each_configuration_complete_once(trials);
}

TEST(StudyRobustness, AWorkerReclaimedWhileRunningDropsItsResultAndGoesOn) {
  auto storage = std::make_shared<FlakyStorage>();
  storage->lose_heartbeats = true;  // as if this worker hung: its beats never arrive
  Study study = brute_force_study(storage);
  std::atomic<int> calls{0};
  auto slow_first = [&](const FrozenTrial& t) {
    if (calls++ == 0) sleep_past_grace();  // reclaimed meanwhile by the heartbeat thread
    return sum(t);
  };
  OptimizeSummary s = study.optimize(slow_first, fast_heartbeats(6));
  EXPECT_GE(s.lost, 1);
  EXPECT_GE(s.reclaimed, 1);
  expect_each_configuration_complete_once(storage->inner->get_trials(0));
}

TEST(StudyRobustness, HeartbeatSettingsAreChecked) {
  Study study = brute_force_study(std::make_shared<InMemoryStorage>());
  EXPECT_THROW(study.optimize(sum, {.n_trials = 1, .heartbeat_interval_s = 0}), Error);
  EXPECT_THROW(study.optimize(sum, {.n_trials = 1, .heartbeat_interval_s = 5, .grace_period_s = 5}),
               Error);
}

int64_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  statm >> pages;
  return pages * sysconf(_SC_PAGESIZE);
}

TEST(StudyRobustness, MoreJobsThanTheSystemStartsIsAnErrorNotAnAbort) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Room for a few dozen thread stacks, not 100000.
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = address_space_bytes() + (256 << 20);
    if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(10);
    try {
      Study study = brute_force_study(std::make_shared<InMemoryStorage>());
      study.optimize(sum, {.n_jobs = 100000});
      _exit(1);  // no error
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("could start only") != std::string::npos ? 0 : 2);
    } catch (...) {
      _exit(3);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace qsearch::search
