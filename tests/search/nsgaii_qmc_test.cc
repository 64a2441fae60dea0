#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>

#include "search/memory_storage.h"
#include "search/multi_objective.h"
#include "search/samplers.h"
#include "search/sobol.h"
#include "search/space_util.h"
#include "search/study.h"
#include "search/test_util.h"

namespace qsearch::search {
namespace {

SearchSpace index_space(int n, int choices) {
  SearchSpace space;
  for (int i = 0; i < n; ++i) {
    space.push_back({testing::param_name("p", i), Distribution::int_range(0, choices - 1)});
  }
  return space;
}

FrozenTrial complete(int number, std::vector<double> values, std::vector<double> params) {
  FrozenTrial t;
  t.id = t.number = number;
  t.state = TrialState::kComplete;
  t.values = std::move(values);
  t.params = std::move(params);
  return t;
}

TEST(NsgaII, EliteSelectionByRankThenCrowding) {
  Rng rng(8);
  const std::vector<Direction> dirs{Direction::kMinimize, Direction::kMaximize};
  const SearchSpace space = index_space(2, 3);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<FrozenTrial> h;
    for (int i = 0; i < 40; ++i) {
      h.push_back(complete(i, {double(rng.uniform_int(8)), double(rng.uniform_int(8))}, {0, 0}));
    }
    std::vector<int> candidates(40);
    for (int i = 0; i < 40; ++i) candidates[i] = i;
    const StudyView view{space, dirs, h};
    const auto elite = NsgaIISampler::select_elite(view, candidates, 15);
    ASSERT_EQ(elite.size(), 15u);
    Points loss(2);
    for (const auto& t : h) loss.push_back(to_loss(t.values, dirs));
    const auto rank = non_domination_ranks(loss);
    std::set<int> chosen(elite.begin(), elite.end());
    int worst_in = 0;
    for (int i : elite) worst_in = std::max(worst_in, rank[i]);
    for (int i = 0; i < 40; ++i) {
      if (!chosen.count(i)) {
        EXPECT_GE(rank[i], worst_in);  // no better-ranked trial left out
      }
    }
    // In the boundary rank, the chosen ones are the most spread (largest crowding distance).
    std::vector<int> boundary;
    for (int i = 0; i < 40; ++i) {
      if (rank[i] == worst_in) boundary.push_back(i);
    }
    Points raw(2);
    for (int i : boundary) raw.push_back(h[i].values);
    const auto dist = crowding_distance(raw);
    double min_in = std::numeric_limits<double>::infinity();
    double max_out = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < boundary.size(); ++k) {
      if (chosen.count(boundary[k])) {
        min_in = std::min(min_in, dist[k]);
      } else {
        max_out = std::max(max_out, dist[k]);
      }
    }
    EXPECT_GE(min_in, max_out);
  }
}

TEST(NsgaII, GenerationZeroIsRandomThenChildrenComeFromTheElite) {
  const SearchSpace space = index_space(6, 4);
  const std::vector<Direction> dirs{Direction::kMinimize, Direction::kMinimize};
  SamplerOptions o{.seed = 3, .population_size = 10, .crossover_prob = 1.0, .mutation_prob = 0.0};
  NsgaIISampler nsga(o);
  RandomSampler random(3);
  std::vector<FrozenTrial> h;
  for (int t = 0; t < 10; ++t) {
    const StudyView view{space, dirs, h};
    const auto p = *nsga.sample(view, t);
    EXPECT_EQ(p, *random.sample(view, t));
    double s = 0;
    for (double x : p) s += x;
    h.push_back(complete(t, {s, 18 - s + (t % 3)}, p));
  }
  const StudyView view{space, dirs, h};
  std::vector<int> all(10);
  for (int i = 0; i < 10; ++i) all[i] = i;
  const auto elite = NsgaIISampler::select_elite(view, all, 10);
  for (int t = 10; t < 20; ++t) {
    const auto child = *nsga.sample(view, t);
    for (size_t g = 0; g < space.size(); ++g) {
      bool from_parent = false;
      for (int e : elite) from_parent = from_parent || h[e].params[g] == child[g];
      EXPECT_TRUE(from_parent) << "gene " << g;  // no mutation: every gene is inherited
    }
  }
}

TEST(NsgaII, RejectsBadOptions) {
  EXPECT_ANY_THROW(NsgaIISampler({.population_size = 1}));
  EXPECT_ANY_THROW(NsgaIISampler({.crossover_prob = 1.5}));
}

TEST(Qmc, TrialTTakesSobolPointT) {
  const SearchSpace space = {{"a", Distribution::int_range(0, 3)},
                             {"one", Distribution::int_range(2, 2)},
                             {"x", Distribution::float_range(0, 1)},
                             {"c", Distribution::categorical({"u", "v"})}};
  QmcSampler qmc({.seed = 6, .scramble = true});
  const SobolSequence sobol(3, true, 6);
  const std::vector<Direction> dirs{Direction::kMinimize};
  const std::vector<FrozenTrial> h;
  std::vector<double> u(3);
  for (int t = 0; t < 20; ++t) {
    sobol.point(t, u);
    const auto p = *qmc.sample(StudyView{space, dirs, h}, t);
    EXPECT_EQ(p[0], from_unit(space[0].dist, u[0]));
    EXPECT_EQ(p[1], 2);
    EXPECT_EQ(p[2], from_unit(space[2].dist, u[1]));
    EXPECT_EQ(p[3], from_unit(space[3].dist, u[2]));
  }
}

TEST(Qmc, IndexParametersAreStratified) {
  // 4 choices and 2^k trials: equal-width cells and the net property give each value 2^k / 4.
  const SearchSpace space = index_space(5, 4);
  for (bool scramble : {false, true}) {
    QmcSampler qmc({.seed = 2, .scramble = scramble});
    const std::vector<Direction> dirs{Direction::kMinimize};
    const std::vector<FrozenTrial> h;
    std::vector<std::map<double, int>> counts(5);
    for (int t = 0; t < 32; ++t) {
      const auto p = *qmc.sample(StudyView{space, dirs, h}, t);
      for (int d = 0; d < 5; ++d) ++counts[d][p[d]];
    }
    for (const auto& c : counts) {
      ASSERT_EQ(c.size(), 4u);
      for (const auto& [value, n] : c) EXPECT_EQ(n, 8) << value;
    }
  }
}

}  // namespace
}  // namespace qsearch::search
