#include "search/study.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "core/error.h"
#include "search/configuration.h"
#include "search/memory_storage.h"
#include "search/test_util.h"

namespace qsearch::search {
namespace {

SearchSpace space3() {
  return {{"a", Distribution::int_range(0, 3)},
          {"b", Distribution::int_range(0, 2)},
          {"c", Distribution::categorical({"x", "y", "z"})}};
}

Study make_study(std::shared_ptr<Storage> storage, const std::string& sampler, uint64_t seed = 0,
                 std::vector<Direction> dirs = {Direction::kMinimize}) {
  return Study::create(std::move(storage), "s", dirs, space3(),
                       make_sampler(sampler, {.seed = seed}));
}

ObjectiveResult quadratic(const FrozenTrial& t) {
  return {{(t.params[0] - 2) * (t.params[0] - 2) + t.params[1] + 0.1 * t.params[2]}, {}};
}

TEST(Study, NTrialsIsTheTargetNumberOfFinishedTrials) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  OptimizeSummary s = study.optimize(quadratic, {.n_trials = 10});
  EXPECT_EQ(s.started, 10);
  EXPECT_EQ(s.completed, 10);
  EXPECT_FALSE(s.exhausted);
  s = study.optimize(quadratic, {.n_trials = 15});  // 5 more, not 15 more
  EXPECT_EQ(s.started, 5);
  EXPECT_EQ(study.trials().size(), 15u);
  s = study.optimize(quadratic, {.n_trials = 15});
  EXPECT_EQ(s.started, 0);
}

TEST(Study, TimeoutStopsStartingTrials) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  const OptimizeSummary s = study.optimize(
      [](const FrozenTrial& t) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return quadratic(t);
      },
      {.n_trials = 1000, .timeout_s = 0.15});
  EXPECT_TRUE(s.timed_out);
  EXPECT_GE(s.started, 1);  // (a loaded machine may stretch the 20 ms sleeps)
  EXPECT_LE(s.started, 9);  // 0.15 s / 20 ms, +1 for the trial that started before the limit
  EXPECT_GE(s.elapsed_s, 0.15);
  EXPECT_EQ(s.started, s.completed);
}

TEST(Study, StopFlagEndsTheRun) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  std::atomic<bool> stop{false};
  int seen = 0;
  const OptimizeSummary s = study.optimize(quadratic, {.on_trial_finished =
                                                           [&](const FrozenTrial&) {
                                                             if (++seen == 5) stop = true;
                                                           },
                                                       .stop = &stop});
  EXPECT_EQ(s.started, 5);
  EXPECT_EQ(study.trials().size(), 5u);
}

TEST(Study, ThrowingObjectiveMakesAFailedTrialAndTheStudyGoesOn) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  std::vector<FrozenTrial> finished;
  const OptimizeSummary s = study.optimize(
      [](const FrozenTrial& t) -> ObjectiveResult {
        if (t.number == 1) throw Error("accumulator overflow in node fc1");
        if (t.number == 2) return {{NAN}, {}};
        if (t.number == 3) return {{1.0, 2.0}, {}};
        return {{1.0 * t.number}, {{"software_metrics", "{\"loss\": 0.5}"}}};
      },
      {.n_trials = 6, .on_trial_finished = [&](const FrozenTrial& t) { finished.push_back(t); }});
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.failed, 3);
  const auto trials = study.trials();
  EXPECT_EQ(trials[1].state, TrialState::kFail);
  EXPECT_EQ(trials[1].system_attrs.at(kAttrFailReason), "accumulator overflow in node fc1");
  EXPECT_EQ(trials[2].system_attrs.at(kAttrFailReason), "objective returned NaN");
  EXPECT_NE(trials[3].system_attrs.at(kAttrFailReason).find("2 values for 1 objectives"),
            std::string::npos);
  EXPECT_EQ(trials[4].state, TrialState::kComplete);
  EXPECT_EQ(trials[4].user_attrs.at("software_metrics"), "{\"loss\": 0.5}");
  EXPECT_EQ(trials[0].system_attrs.at(kAttrWorker), Study::this_worker());
  ASSERT_EQ(finished.size(), 6u);
  EXPECT_EQ(finished[4].values, std::vector<double>{4.0});
  EXPECT_EQ(finished[1].state, TrialState::kFail);
}

TEST(Study, AskAndTell) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  auto t = study.ask();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->state, TrialState::kRunning);
  EXPECT_THROW(study.tell(*t, TrialState::kComplete, {1, 2}), Error);
  EXPECT_THROW(study.tell(*t, TrialState::kRunning, {}), Error);
  study.tell(*t, TrialState::kComplete, {0.25});
  EXPECT_THROW(study.tell(*t, TrialState::kComplete, {0.5}),
               Error);  // finished trials never change
  auto u = study.ask();
  study.tell(*u, TrialState::kComplete, {NAN});
  EXPECT_EQ(study.trials()[1].state, TrialState::kFail);
}

// Best trials: by definition, against every pair.
TEST(Study, BestTrialsIsTheParetoFrontInTrialOrder) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random", 0, {Direction::kMaximize, Direction::kMinimize});
  const std::vector<std::vector<double>> values = {{0.9, 8},   {0.8, 4}, {0.9, 8}, {0.7, 4},
                                                   {0.95, 16}, {0.5, 2}, {0.8, 5}, {0.95, 16}};
  for (const auto& v : values) study.tell(*study.ask(), TrialState::kComplete, v);
  study.tell(*study.ask(), TrialState::kFail, {});
  study.ask();  // RUNNING: never best
  std::vector<int> numbers;
  for (const FrozenTrial& t : study.best_trials()) numbers.push_back(t.number);
  // (0.9, 8) twice, (0.8, 4), (0.95, 16) twice, (0.5, 2); (0.7, 4) and (0.8, 5) are dominated.
  EXPECT_EQ(numbers, (std::vector<int>{0, 1, 2, 4, 5, 7}));

  auto single = std::make_shared<InMemoryStorage>();
  Study one = make_study(single, "random");
  for (double v : {3.0, 1.0, 2.0, 1.0}) one.tell(*one.ask(), TrialState::kComplete, {v});
  numbers.clear();
  for (const FrozenTrial& t : one.best_trials()) numbers.push_back(t.number);
  EXPECT_EQ(numbers, (std::vector<int>{1, 3}));  // every trial with the best value
}

std::vector<std::vector<double>> run_params(const std::string& sampler, uint64_t seed) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, sampler, seed);
  study.optimize(quadratic, {.n_trials = 40});
  std::vector<std::vector<double>> out;
  for (const FrozenTrial& t : study.trials()) out.push_back(t.params);
  return out;
}

TEST(Study, SameSeedSameSequence) {
  for (const char* sampler : {"tpe", "random", "nsgaii", "qmc", "bruteforce"}) {
    EXPECT_EQ(run_params(sampler, 11), run_params(sampler, 11)) << sampler;
  }
}

TEST(Study, ResumedStudyContinuesAsIfNeverStopped) {
  const auto straight = run_params("tpe", 5);
  auto storage = std::make_shared<InMemoryStorage>();
  make_study(storage, "tpe", 5).optimize(quadratic, {.n_trials = 17});
  Study again = make_study(storage, "tpe", 5);  // a new sampler object, as a new process would
  again.optimize(quadratic, {.n_trials = 40});
  std::vector<std::vector<double>> resumed;
  for (const FrozenTrial& t : again.trials()) resumed.push_back(t.params);
  EXPECT_EQ(resumed, straight);
}

TEST(Study, ReapsRunningTrialsOfDeadWorkersOnly) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study first = make_study(storage, "random");
  const std::string me = Study::this_worker();
  const std::string host = me.substr(0, me.rfind(':'));
  const int64_t id = first.info().id;
  auto propose = [](const std::vector<FrozenTrial>&) {
    return std::optional<std::vector<double>>({0, 0, 0});
  };
  storage->create_trial(id, propose,
                        {{kAttrWorker, host + ":" + std::to_string(testing::dead_pid())}});
  storage->create_trial(id, propose, {{kAttrWorker, me}});             // alive: this process
  storage->create_trial(id, propose, {{kAttrWorker, "elsewhere:1"}});  // another host
  storage->create_trial(id, propose, {});                              // no worker attr
  Study second = make_study(storage, "random");
  const auto trials = second.trials();
  EXPECT_EQ(trials[0].state, TrialState::kFail);
  EXPECT_TRUE(trials[0].interrupted());
  EXPECT_NE(trials[0].system_attrs.at(kAttrFailReason).find("interrupted"), std::string::npos);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(trials[i].state, TrialState::kRunning) << i;
  // Interrupted trials do not count towards n_trials; RUNNING ones do, but optimize does not
  // stop at "n_trials reached" while they may still be reclaimed: these three never beat, so
  // they are reclaimed after the grace period and their configurations re-run (issue 8).
  const OptimizeSummary s = second.optimize(
      quadratic, {.n_trials = 5, .heartbeat_interval_s = 0.01, .grace_period_s = 0.05});
  EXPECT_EQ(s.reclaimed, 3);
  EXPECT_EQ(s.started, 5);
  int finished = 0;
  for (const FrozenTrial& t : second.trials()) {
    EXPECT_TRUE(t.finished()) << t.number;
    finished += t.finished() && !t.interrupted();
  }
  EXPECT_EQ(finished, 5);
}

TEST(Study, ParallelJobsEvaluateEachTrialOnceAndSerialiseCallbacks) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "tpe", 2);
  std::mutex mu;
  std::multiset<int> evaluated;
  std::atomic<int> in_callback{0};
  bool overlapped = false;
  int callbacks = 0;
  const OptimizeSummary s = study.optimize(
      [&](const FrozenTrial& t) {
        {
          std::lock_guard<std::mutex> lock(mu);
          evaluated.insert(t.number);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200 * (t.number % 5)));
        return quadratic(t);
      },
      {.n_trials = 30, .n_jobs = 4, .on_trial_finished = [&](const FrozenTrial&) {
         if (++in_callback > 1) overlapped = true;
         std::this_thread::sleep_for(std::chrono::microseconds(100));
         ++callbacks;
         --in_callback;
       }});
  EXPECT_EQ(s.started, 30);
  EXPECT_EQ(study.trials().size(), 30u);  // never more than n_trials
  EXPECT_EQ(evaluated.size(), 30u);
  EXPECT_EQ(std::set<int>(evaluated.begin(), evaluated.end()).size(), 30u);
  EXPECT_EQ(callbacks, 30);
  EXPECT_FALSE(overlapped);
  // Issue 9 item 1: 30 trials are 30 distinct configurations of the 36, and asking for more
  // than the space holds stops the study when every configuration is taken.
  std::set<std::vector<double>> configs;
  for (const FrozenTrial& t : study.trials()) configs.insert(t.params);
  EXPECT_EQ(configs.size(), 30u);
  const OptimizeSummary more = study.optimize(quadratic, {.n_trials = 60, .n_jobs = 4});
  EXPECT_TRUE(more.exhausted);
  EXPECT_EQ(study.trials().size(), 36u);
  for (const FrozenTrial& t : study.trials()) configs.insert(t.params);
  EXPECT_EQ(configs.size(), 36u);
}

// Always proposes the same configuration (a sampler that ignores what is taken).
class RepeatingSampler final : public Sampler {
 public:
  explicit RepeatingSampler(std::vector<double> params) : params_(std::move(params)) {}
  std::string name() const override { return "repeating"; }
  std::optional<std::vector<double>> sample(const StudyView&, int) override { return params_; }

 private:
  std::vector<double> params_;
};

// Index distance (sum of |index steps|) between two configurations of `space`.
int64_t index_distance(const SearchSpace& space, const std::vector<double>& a,
                       const std::vector<double>& b) {
  int64_t d = 0;
  for (size_t i = 0; i < space.size(); ++i) {
    d += std::abs(space[i].dist.index_of(a[i]) - space[i].dist.index_of(b[i]));
  }
  return d;
}

TEST(Study, ARepeatedProposalMovesToTheNearestUntakenConfiguration) {
  auto storage = std::make_shared<InMemoryStorage>();
  const std::vector<double> center{1, 1, 1};
  Study study = Study::create(storage, "s", {Direction::kMinimize}, space3(),
                              std::make_unique<RepeatingSampler>(center));
  const OptimizeSummary s = study.optimize(quadratic, {.n_trials = 100, .n_jobs = 1});
  EXPECT_TRUE(s.exhausted);
  const std::vector<FrozenTrial> trials = study.trials();
  ASSERT_EQ(trials.size(), 36u);  // 4 x 3 x 3: every configuration once, then exhausted
  EXPECT_EQ(trials[0].params, center);
  std::set<std::vector<double>> configs;
  int64_t last = 0;
  for (const FrozenTrial& t : trials) {
    configs.insert(t.params);
    // Breadth-first: each trial is an untaken configuration nearest to the proposal.
    const int64_t d = index_distance(space3(), t.params, center);
    EXPECT_GE(d, last) << "trial " << t.number;
    last = d;
  }
  EXPECT_EQ(configs.size(), 36u);
  EXPECT_EQ(index_distance(space3(), trials[1].params, center), 1);
  // The tie-break among equally near configurations is seeded by the trial number, not fixed:
  // the 6 neighbours at distance 1 do not come in parameter order.
  std::vector<std::vector<double>> ring;
  for (int k = 1; k <= 6; ++k) ring.push_back(trials[k].params);
  std::vector<std::vector<double>> sorted = ring;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(ring, sorted);
}

TEST(Study, ARepeatedProposalWithAContinuousParameterRedrawsIt) {
  auto storage = std::make_shared<InMemoryStorage>();
  const SearchSpace space = {{"i", Distribution::int_range(0, 1)},
                             {"x", Distribution::float_range(-1, 1)}};
  Study study = Study::create(storage, "s", {Direction::kMinimize}, space,
                              std::make_unique<RepeatingSampler>(std::vector<double>{0, 0.5}));
  const OptimizeSummary s = study.optimize(
      [](const FrozenTrial& t) {
        return ObjectiveResult{{t.params[1]}, {}};
      },
      {.n_trials = 10});
  EXPECT_FALSE(s.exhausted);  // a continuous float never runs out
  std::set<std::vector<double>> configs;
  for (const FrozenTrial& t : study.trials()) configs.insert(t.params);
  EXPECT_EQ(configs.size(), 10u);
  EXPECT_EQ(study.trials()[1].params, (std::vector<double>{1, 0.5}));  // the int neighbour first
}

TEST(Study, InterruptedConfigurationsAreNotTakenButFailedOnesAre) {
  std::vector<FrozenTrial> h(3);
  for (int k = 0; k < 3; ++k) h[k].params = {static_cast<double>(k), 0, 0};
  h[0].state = TrialState::kFail;
  h[0].system_attrs[kAttrInterrupted] = "1";
  h[1].state = TrialState::kFail;
  h[2].state = TrialState::kRunning;
  const TakenConfigurations taken(h);
  EXPECT_FALSE(taken.contains({0, 0, 0}));
  EXPECT_TRUE(taken.contains({1, 0, 0}));
  EXPECT_TRUE(taken.contains({2, 0, 0}));
  const SearchSpace space = space3();
  const std::vector<Direction> dirs{Direction::kMinimize};
  const StudyView by_hand{space, dirs, h};  // no set: is_taken scans the history
  EXPECT_FALSE(by_hand.is_taken({0, 0, 0}));
  EXPECT_TRUE(by_hand.is_taken({2, 0, 0}));
  EXPECT_TRUE(by_hand.is_taken({-0.0 + 2, -0.0, 0}));

  // Updated incrementally: a RUNNING trial that is reclaimed (interrupted) releases its
  // configuration unless another trial still takes it; new trials are added.
  TakenConfigurations inc(h);
  h.push_back(h[2]);  // a second (older-study) trial with {2, 0, 0}, COMPLETE
  h.back().state = TrialState::kComplete;
  h.push_back(h[1]);
  h.back().params = {3, 0, 0};
  h.back().state = TrialState::kRunning;
  inc.update(h);
  EXPECT_TRUE(inc.contains({3, 0, 0}));
  h[2].state = h[4].state = TrialState::kFail;
  h[2].system_attrs[kAttrInterrupted] = h[4].system_attrs[kAttrInterrupted] = "1";
  inc.update(h);
  EXPECT_TRUE(inc.contains({2, 0, 0}));  // trial 3 still takes it
  EXPECT_FALSE(inc.contains({3, 0, 0}));
  EXPECT_TRUE(inc.contains({1, 0, 0}));
  EXPECT_EQ(inc.size(), TakenConfigurations(h).size());
}

TEST(Study, AProbeNeverCollidesWithAFullConfiguration) {
  FrozenTrial full, probe, other_probe;
  full.params = probe.params = other_probe.params = {1, 2, 0};
  probe.system_attrs[kAttrProbe] = "conv1:4";
  other_probe.system_attrs[kAttrProbe] = "conv1:8";
  EXPECT_EQ(configuration_key(full), configuration_key(full.params));
  EXPECT_NE(configuration_key(full), configuration_key(probe));
  EXPECT_NE(configuration_key(probe), configuration_key(other_probe));
  EXPECT_EQ(configuration_key(std::vector<double>{0.0}),
            configuration_key(std::vector<double>{-0.0}));
  const TakenConfigurations taken(std::vector<FrozenTrial>{probe});
  EXPECT_FALSE(taken.contains(full.params));  // a probe does not take the full configuration
}

TEST(Study, CallbackErrorsStopTheRunAndPropagate) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, "random");
  // Trials from number 8 on wait until the callback has thrown (at most 5 s). The run halts
  // while the throwing callback still holds the study's lock, so no worker records another
  // trial first: each of the 3 workers has at most one more trial in flight. (Before the halt
  // was set under the lock, instant trials could reach all 50 while the exception unwound.)
  std::atomic<bool> thrown{false};
  auto objective = [&](const FrozenTrial& t) {
    if (t.number >= 8) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!thrown.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return quadratic(t);
  };
  EXPECT_THROW(study.optimize(objective, {.n_trials = 50,
                                          .n_jobs = 3,
                                          .on_trial_finished =
                                              [&](const FrozenTrial& t) {
                                                if (t.number == 4) {
                                                  thrown = true;
                                                  throw Error("disk full");
                                                }
                                              }}),
               Error);
  EXPECT_LE(study.trials().size(), 12u);
}

TEST(Study, RejectsBadSetups) {
  auto storage = std::make_shared<InMemoryStorage>();
  EXPECT_THROW(Study::create(storage, "s", {Direction::kMinimize}, {}, make_sampler("tpe", {})),
               Error);
  EXPECT_THROW(Study::create(storage, "s", {}, space3(), make_sampler("tpe", {})), Error);
  SearchSpace dup = space3();
  dup[1].name = "a";
  EXPECT_THROW(Study::create(storage, "s", {Direction::kMinimize}, dup, make_sampler("tpe", {})),
               Error);
  SearchSpace bad = space3();
  bad[0].dist.low = 9;  // low > high
  EXPECT_THROW(Study::create(storage, "s", {Direction::kMinimize}, bad, make_sampler("tpe", {})),
               Error);
  try {
    make_sampler("Hyperband", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bruteforce"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("Hyperband"), std::string::npos);
  }
  EXPECT_EQ(make_sampler("TPE", {})->name(), "tpe");  // case-insensitive like MASE
  EXPECT_EQ(make_sampler("Brute_Force", {})->name(), "bruteforce");
  EXPECT_EQ(sampler_names().size(), 6u);
  EXPECT_EQ(parse_direction("MAXIMIZE"), Direction::kMaximize);
  EXPECT_THROW(parse_direction("up"), Error);
}

}  // namespace
}  // namespace qsearch::search
