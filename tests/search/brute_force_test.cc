#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "core/error.h"
#include "search/memory_storage.h"
#include "search/space_util.h"
#include "search/study.h"
#include "search/test_util.h"

namespace qsearch::search {
namespace {

SearchSpace space_of_size(int size) {
  switch (size) {
    case 1:
      return {{"only", Distribution::int_range(5, 5)}};
    case 18:  // 3 x 2 x 3, mixed kinds
      return {{"idx", Distribution::int_range(0, 2)},
              {"cat", Distribution::categorical({"integer", "NA"})},
              {"frac", Distribution::float_range(0, 1, false, 0.5)}};
    default:  // 10 x 10 x 10
      return {{"a", Distribution::int_range(0, 9)},
              {"b", Distribution::int_range(0, 18, 2)},
              {"c", Distribution::float_range(0, 0.9, false, 0.1)}};
  }
}

ObjectiveResult sum_objective(const FrozenTrial& t) {
  double s = 0;
  for (double p : t.params) s += p;
  return {{s}, {}};
}

std::set<std::vector<double>> configs(const std::vector<FrozenTrial>& trials) {
  std::set<std::vector<double>> out;
  for (const FrozenTrial& t : trials) out.insert(t.params);
  return out;
}

TEST(BruteForce, VisitsTheWholeSpaceOnceAndStopsByItself) {
  for (int size : {1, 18, 1000}) {
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = Study::create(storage, "bf", {Direction::kMinimize}, space_of_size(size),
                                make_sampler("bruteforce", {.seed = 3}));
    const OptimizeSummary sum = study.optimize(sum_objective, {.n_trials = 5000});
    EXPECT_TRUE(sum.exhausted);
    EXPECT_EQ(sum.started, size);
    const auto trials = study.trials();
    ASSERT_EQ(trials.size(), static_cast<size_t>(size));
    EXPECT_EQ(configs(trials).size(), static_cast<size_t>(size));
    for (const FrozenTrial& t : trials) {
      for (size_t i = 0; i < t.params.size(); ++i) {
        EXPECT_TRUE(study.info().space[i].dist.contains(t.params[i]));
      }
    }
    EXPECT_FALSE(study.ask().has_value());  // nothing after exhaustion
    EXPECT_EQ(study.trials().size(), static_cast<size_t>(size));
  }
}

TEST(BruteForce, OrderIsSeededAndNotLexicographic) {
  auto order = [](uint64_t seed) {
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = Study::create(storage, "bf", {Direction::kMinimize}, space_of_size(18),
                                make_sampler("grid", {.seed = seed}));
    study.optimize(sum_objective, {});
    std::vector<uint64_t> idx;
    for (const FrozenTrial& t : study.trials()) {
      idx.push_back(encode_config(study.info().space, t.params));
    }
    return idx;
  };
  const auto a = order(1), b = order(2);
  EXPECT_EQ(a, order(1));
  EXPECT_NE(a, b);
  std::vector<uint64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(a, sorted);
}

TEST(BruteForce, ResumesAndReRunsInterruptedButNotFailedConfigurations) {
  auto storage = std::make_shared<InMemoryStorage>();
  const SearchSpace space = space_of_size(18);
  {
    Study study = Study::create(storage, "bf", {Direction::kMinimize}, space,
                                make_sampler("bruteforce", {.seed = 9}));
    // 7 trials, of which those with idx 2 fail (a configuration that cannot run).
    study.optimize(
        [](const FrozenTrial& t) {
          if (t.params[0] == 2) throw std::runtime_error("accumulator overflow");
          return sum_objective(t);
        },
        {.n_trials = 7});
  }
  // Two trials left RUNNING by a process that died, as after a kill.
  const int64_t id = *storage->find_study("bf");
  const std::string dead = Study::this_worker().substr(0, Study::this_worker().rfind(':')) + ":" +
                           std::to_string(testing::dead_pid());
  std::vector<std::vector<double>> orphaned;
  for (int k = 0; k < 2; ++k) {
    auto t = storage->create_trial(
        id,
        [&](const std::vector<FrozenTrial>& h) {
          StudyView view{space, std::vector<Direction>{Direction::kMinimize}, h};
          return make_sampler("bruteforce", {.seed = 9})->sample(view, static_cast<int>(h.size()));
        },
        {{kAttrWorker, dead}});
    orphaned.push_back(t->params);
  }
  Study resumed = Study::create(storage, "bf", {Direction::kMinimize}, space,
                                make_sampler("bruteforce", {.seed = 9}));
  const auto before = resumed.trials();
  EXPECT_TRUE(before[7].interrupted());
  EXPECT_TRUE(before[8].interrupted());
  EXPECT_EQ(before[7].state, TrialState::kFail);
  const OptimizeSummary sum = resumed.optimize(sum_objective, {});
  EXPECT_TRUE(sum.exhausted);
  const auto trials = resumed.trials();
  std::multiset<std::vector<double>> done;
  int failed = 0;
  for (const FrozenTrial& t : trials) {
    if (t.interrupted()) continue;
    done.insert(t.params);
    failed += t.state == TrialState::kFail;
  }
  EXPECT_EQ(done.size(), 18u);  // every configuration once (FAIL ones not retried) ...
  EXPECT_EQ(std::set<std::vector<double>>(done.begin(), done.end()).size(), 18u);
  EXPECT_GT(failed, 0);
  // ... and the interrupted configurations were the first ones re-proposed.
  EXPECT_EQ(trials[9].params, orphaned[0]);
  EXPECT_EQ(trials[10].params, orphaned[1]);
  EXPECT_EQ(trials.size(), 20u);
}

TEST(BruteForce, NoDuplicatesWithFourJobs) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "bf", {Direction::kMinimize}, space_of_size(1000),
                              make_sampler("bruteforce", {.seed = 4}));
  std::atomic<int> calls{0};
  const OptimizeSummary sum = study.optimize(
      [&](const FrozenTrial& t) {
        ++calls;
        if (t.number % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return sum_objective(t);
      },
      {.n_trials = 5000, .n_jobs = 4});
  EXPECT_TRUE(sum.exhausted);
  EXPECT_EQ(calls.load(), 1000);
  const auto trials = study.trials();
  EXPECT_EQ(trials.size(), 1000u);
  EXPECT_EQ(configs(trials).size(), 1000u);
}

TEST(BruteForce, RejectsContinuousFloatsBeforeAnyTrial) {
  auto storage = std::make_shared<InMemoryStorage>();
  const SearchSpace space = {{"x", Distribution::float_range(0, 1)}};
  try {
    Study::create(storage, "bf", {Direction::kMinimize}, space, make_sampler("bruteforce", {}));
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(storage->find_study("bf").has_value());
}

TEST(BruteForce, SpaceSizeHelpers) {
  const SearchSpace space = space_of_size(1000);
  EXPECT_EQ(space_size(space), 1000u);
  for (uint64_t i : {0ull, 1ull, 537ull, 999ull})
    EXPECT_EQ(encode_config(space, decode_config(space, i)), i);
  SearchSpace huge;
  for (int i = 0; i < 70; ++i)
    huge.push_back({testing::param_name("p", i), Distribution::int_range(0, 1)});
  EXPECT_THROW(space_size(huge), Error);
}

}  // namespace
}  // namespace qsearch::search
