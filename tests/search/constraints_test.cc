// Optuna's constraints semantics (search/trial.h kAttrConstraints): an objective's constraint
// values are stored as the trial's "constraints" system attr, an
// infeasible trial (a value > 0) is never a best trial, NSGA-II ranks by Deb's constrained
// domination and TPE fills its good set with feasible trials before the least-violating
// infeasible ones (Optuna 3.1's constraints_func).
#include <gtest/gtest.h>

#include <set>

#include "search/memory_storage.h"
#include "search/samplers.h"
#include "search/study.h"
#include "search/tpe_sampler.h"

namespace qsearch::search {
namespace {

FrozenTrial done(int number, std::vector<double> values, std::optional<std::vector<double>> c) {
  FrozenTrial t;
  t.id = t.number = number;
  t.state = TrialState::kComplete;
  t.values = std::move(values);
  t.params = {static_cast<double>(number % 4)};
  if (c) t.system_attrs[kAttrConstraints] = constraints_json(*c);
  return t;
}

TEST(Constraints, ViolationIsTheSumOfPositiveValues) {
  EXPECT_TRUE(is_feasible(done(0, {1}, std::nullopt)));
  EXPECT_TRUE(is_feasible(done(0, {1}, std::vector<double>{0, -3})));
  EXPECT_FALSE(is_feasible(done(0, {1}, std::vector<double>{0.5, -3})));
  EXPECT_DOUBLE_EQ(constraint_violation(done(0, {1}, std::vector<double>{2, -3, 1.5})), 3.5);
  FrozenTrial garbled = done(0, {1}, std::nullopt);
  garbled.system_attrs[kAttrConstraints] = "not json";
  EXPECT_FALSE(is_feasible(garbled));
}

ObjectiveResult with_constraint(const FrozenTrial& t) {
  // Value: the parameter; constraint: p - 1 (p >= 2 infeasible).
  return {.values = {t.params[0]}, .constraints = {t.params[0] - 1}};
}

TEST(Constraints, StoredWithTheTrialAndInfeasibleTrialsAreNeverBest) {
  const SearchSpace space = {{"p", Distribution::int_range(0, 3)}};
  auto storage = std::make_shared<InMemoryStorage>();
  // Maximize p: the best value overall (3) is infeasible; the best feasible is 1.
  Study study = Study::create(storage, "s", {Direction::kMaximize}, space,
                              make_sampler("bruteforce", {.seed = 0}));
  study.optimize(with_constraint, {.n_trials = 4});
  int infeasible = 0;
  for (const FrozenTrial& t : study.trials()) {
    ASSERT_TRUE(constraint_values(t).has_value());
    EXPECT_EQ(constraint_values(t)->at(0), t.params[0] - 1);
    infeasible += is_feasible(t) ? 0 : 1;
  }
  EXPECT_EQ(infeasible, 2);
  const auto best = study.best_trials();
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].params[0], 1);
}

TEST(Constraints, NsgaIIElitePutsFeasibleFirstThenLeastViolation) {
  const SearchSpace space = {{"p", Distribution::int_range(0, 3)}};
  const std::vector<Direction> dirs = {Direction::kMinimize, Direction::kMinimize};
  // Infeasible trials with the best values, feasible ones with worse values.
  std::vector<FrozenTrial> h = {
      done(0, {0, 0}, std::vector<double>{5}), done(1, {0.1, 0.1}, std::vector<double>{1}),
      done(2, {5, 6}, std::vector<double>{-1}), done(3, {6, 5}, std::vector<double>{0}),
      done(4, {7, 7}, std::vector<double>{-2})};
  const StudyView view{space, dirs, h};
  auto elite = NsgaIISampler::select_elite(view, {0, 1, 2, 3, 4}, 2);
  EXPECT_EQ(std::set<int>(elite.begin(), elite.end()), (std::set<int>{2, 3}));
  elite = NsgaIISampler::select_elite(view, {0, 1, 2, 3, 4}, 4);
  // Then feasible 4 (dominated), then infeasible 1 (least violation) before 0.
  EXPECT_EQ(std::set<int>(elite.begin(), elite.end()), (std::set<int>{1, 2, 3, 4}));
  // Without constraints the same values rank the infeasible ones first.
  for (FrozenTrial& t : h) t.system_attrs.clear();
  elite = NsgaIISampler::select_elite(StudyView{space, dirs, h}, {0, 1, 2, 3, 4}, 2);
  EXPECT_EQ(std::set<int>(elite.begin(), elite.end()), (std::set<int>{0, 1}));
}

TEST(Constraints, TpeBelowTakesFeasibleTrialsThenTheLeastViolating) {
  std::vector<FrozenTrial> h;
  // 20 trials minimizing the value; the 10 best values (0..9) are infeasible with violation
  // 10 - v, the other 10 (10..19) feasible. gamma(20) = 2: the two best feasible (10, 11).
  for (int i = 0; i < 20; ++i) {
    h.push_back(done(i, {static_cast<double>(i)}, std::vector<double>{i < 10 ? 10.0 - i : -1.0}));
  }
  tpe::Split s = tpe::split(h, {Direction::kMinimize}, false);
  EXPECT_EQ(s.below, (std::vector<int>{10, 11}));
  // With only one feasible trial, the rest of the quota is the least-violating infeasible one
  // (trial 9, violation 1), whatever its value.
  for (int i = 11; i < 20; ++i) h[i].system_attrs[kAttrConstraints] = constraints_json({50.0});
  s = tpe::split(h, {Direction::kMinimize}, false);
  EXPECT_EQ(s.below, (std::vector<int>{9, 10}));
  EXPECT_EQ(s.below.size() + s.above.size(), h.size());
  // Multi-objective: below weights of infeasible trials are ~0.
  std::vector<FrozenTrial> m = {done(0, {0, 0}, std::vector<double>{1}),
                                done(1, {1, 2}, std::vector<double>{-1}),
                                done(2, {2, 1}, std::vector<double>{-1})};
  const auto w = tpe::below_weights(m, {0, 1, 2}, {Direction::kMinimize, Direction::kMinimize});
  EXPECT_LT(w[0], 1e-9);
  EXPECT_GT(w[1], 0.1);
  EXPECT_GT(w[2], 0.1);
}

}  // namespace
}  // namespace qsearch::search
