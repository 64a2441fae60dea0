// pareto_knapsack against brute-force enumeration on random small instances.
#include "search/knapsack.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace qsearch::search {
namespace {

using Groups = std::vector<std::vector<KnapsackOption>>;

// Every combination's total; the set of distinct non-dominated totals.
std::set<std::vector<double>> brute_force_front(const Groups& groups, size_t m) {
  std::vector<std::vector<double>> totals = {std::vector<double>(m, 0.0)};
  for (const auto& g : groups) {
    std::vector<std::vector<double>> next;
    for (const auto& t : totals) {
      for (const auto& o : g) {
        auto v = t;
        for (size_t k = 0; k < m; ++k) v[k] += o.cost[k];
        next.push_back(v);
      }
    }
    totals = next;
  }
  std::set<std::vector<double>> front;
  for (const auto& a : totals) {
    bool dominated = false;
    for (const auto& b : totals) {
      bool le = true, lt = false;
      for (size_t k = 0; k < m; ++k) le = le && b[k] <= a[k], lt = lt || b[k] < a[k];
      dominated = dominated || (le && lt);
    }
    if (!dominated) front.insert(a);
  }
  return front;
}

TEST(Knapsack, MatchesBruteForceOnRandomInstancesWithTies) {
  Rng rng(11);
  for (int instance = 0; instance < 300; ++instance) {
    const size_t m = 2 + instance % 2;  // 2 and 3 objectives
    const int n_groups = 1 + static_cast<int>(rng.uniform_int(4));
    Groups groups(n_groups);
    for (auto& g : groups) {
      const int n_opts = 1 + static_cast<int>(rng.uniform_int(5));
      for (int o = 0; o < n_opts; ++o) {
        std::vector<double> c(m);
        // Small integers: many ties and exact sums.
        for (double& x : c) x = static_cast<double>(rng.uniform_int(5)) - 1;
        g.push_back({10 * o + 3, c});
      }
    }
    const std::vector<KnapsackSolution> got = pareto_knapsack(groups);
    std::set<std::vector<double>> got_totals;
    for (const KnapsackSolution& s : got) {
      ASSERT_EQ(s.choice.size(), groups.size());
      std::vector<double> sum(m, 0.0);
      for (size_t g = 0; g < groups.size(); ++g) {
        const KnapsackOption* chosen = nullptr;
        for (const auto& o : groups[g]) chosen = o.id == s.choice[g] ? &o : chosen;
        ASSERT_NE(chosen, nullptr);
        for (size_t k = 0; k < m; ++k) sum[k] += chosen->cost[k];
      }
      EXPECT_EQ(sum, s.total) << "instance " << instance;
      EXPECT_TRUE(got_totals.insert(s.total).second) << "a tie kept twice, instance " << instance;
    }
    EXPECT_EQ(got_totals, brute_force_front(groups, m)) << "instance " << instance;
  }
}

TEST(Knapsack, DocumentedExampleEmptyGroupAndMismatchedSizes) {
  const Groups groups = {{{0, {1, 5}}, {1, {3, 1}}}, {{0, {0, 4}}, {7, {2, 0}}}};
  const auto front = pareto_knapsack(groups);
  ASSERT_EQ(front.size(), 3u);
  EXPECT_EQ(front[0].total, (std::vector<double>{1, 9}));
  EXPECT_EQ(front[0].choice, (std::vector<int>{0, 0}));
  EXPECT_EQ(front[1].total, (std::vector<double>{3, 5}));
  EXPECT_EQ(front[1].choice, (std::vector<int>{0, 7}));
  EXPECT_EQ(front[2].total, (std::vector<double>{5, 1}));
  EXPECT_TRUE(pareto_knapsack({{{0, {1, 1}}}, {}}).empty());
  EXPECT_THROW(pareto_knapsack({{{0, {1, 1}}}, {{0, {1}}}}), Error);
}

}  // namespace
}  // namespace qsearch::search
