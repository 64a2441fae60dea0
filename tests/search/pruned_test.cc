// PRUNED trials (racing, eval/objective.h): an objective result marked pruned is stored as
// PRUNED without values, counts toward n_trials, is never a best trial, and samplers treat it
// as Optuna's do (TPE: "above"; NSGA-II and brute force: never a parent / still taken).
#include <gtest/gtest.h>

#include <set>

#include "search/memory_storage.h"
#include "search/study.h"
#include "search/tpe_sampler.h"

namespace qsearch::search {
namespace {

SearchSpace space() { return {{"a", Distribution::int_range(0, 9)}}; }

// Two objectives (maximize a, minimize a: every trial is a trade-off), odd trials pruned.
ObjectiveResult objective(const FrozenTrial& t) {
  ObjectiveResult r{{t.params[0], t.params[0]}, {{"racing", "{}"}}};
  r.pruned = t.number % 2 == 1;
  return r;
}

TEST(Pruned, StoredWithoutValuesCountedAndNeverBest) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "s", {Direction::kMaximize, Direction::kMinimize}, space(),
                              make_sampler("bruteforce", {.seed = 1}));
  const OptimizeSummary sum = study.optimize(objective, {.n_trials = 8});
  EXPECT_EQ(sum.started, 8);
  EXPECT_EQ(sum.completed, 4);
  EXPECT_EQ(sum.pruned, 4);
  EXPECT_EQ(sum.failed, 0);
  const auto trials = study.trials();
  ASSERT_EQ(trials.size(), 8u);  // n_trials counts PRUNED trials: they were evaluations
  std::set<double> configs;
  for (const auto& t : trials) {
    configs.insert(t.params[0]);
    if (t.number % 2 == 1) {
      EXPECT_EQ(t.state, TrialState::kPruned);
      EXPECT_EQ(to_string(t.state), "PRUNED");
      EXPECT_TRUE(t.values.empty());
      EXPECT_EQ(t.user_attrs.at("racing"), "{}");
    } else {
      EXPECT_EQ(t.state, TrialState::kComplete);
    }
  }
  EXPECT_EQ(configs.size(), 8u);  // brute force counts PRUNED configurations as taken
  // Every COMPLETE trial is on this front (a trade-off); no PRUNED one is, though theirs would be.
  const auto best = study.best_trials();
  EXPECT_EQ(best.size(), 4u);
  for (const auto& t : best) EXPECT_EQ(t.state, TrialState::kComplete);
}

TEST(Pruned, TpePutsPrunedTrialsAbove) {
  std::vector<FrozenTrial> h;
  for (int i = 0; i < 12; ++i) {
    FrozenTrial t;
    t.number = i;
    t.params = {static_cast<double>(i % 10)};
    t.state = i < 10 ? TrialState::kComplete : TrialState::kPruned;
    if (i < 10) t.values = {static_cast<double>(i)};
    h.push_back(t);
  }
  const tpe::Split s = tpe::split(h, {Direction::kMinimize}, false);
  EXPECT_EQ(s.below, (std::vector<int>{0}));  // gamma(10) = 1 of the COMPLETE trials
  EXPECT_EQ(s.above, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
}

}  // namespace
}  // namespace qsearch::search
