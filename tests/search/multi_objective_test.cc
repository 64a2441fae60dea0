#include "search/multi_objective.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/rng.h"

namespace qsearch::search {
namespace {

// Points on a small integer grid, so ties and duplicates are common.
Points random_points(Rng& rng, int n, int dim, int grid) {
  Points p(dim);
  std::vector<double> x(dim);
  for (int i = 0; i < n; ++i) {
    for (double& v : x) v = static_cast<double>(rng.uniform_int(grid));
    p.push_back(x);
  }
  return p;
}

// Rank by definition: longest chain of dominators, O(n^3).
std::vector<int> brute_ranks(const Points& p) {
  const int n = p.size();
  std::vector<int> rank(n, -1);
  int assigned = 0;
  for (int r = 0; assigned < n; ++r) {
    std::vector<int> front;
    for (int i = 0; i < n; ++i) {
      if (rank[i] >= 0) continue;
      bool dominated = false;
      for (int j = 0; j < n && !dominated; ++j) {
        dominated = rank[j] < 0 && dominates(p[j], p[i]);
      }
      if (!dominated) front.push_back(i);
    }
    for (int i : front) rank[i] = r;
    assigned += static_cast<int>(front.size());
  }
  return rank;
}

// Inclusion-exclusion over all subsets: the union of boxes [p, ref], exactly.
double brute_hypervolume(const Points& p, const std::vector<double>& ref) {
  const int n = p.size(), m = p.dim();
  double total = 0;
  for (uint32_t mask = 1; mask < (1u << n); ++mask) {
    std::vector<double> corner(m, -std::numeric_limits<double>::infinity());
    for (int i = 0; i < n; ++i) {
      if (!(mask >> i & 1)) continue;
      for (int j = 0; j < m; ++j) corner[j] = std::max(corner[j], p[i][j]);
    }
    double vol = 1;
    for (int j = 0; j < m; ++j) vol *= std::max(0.0, ref[j] - corner[j]);
    total += (std::popcount(mask) % 2 ? 1 : -1) * vol;
  }
  return total;
}

TEST(MultiObjective, Dominates) {
  EXPECT_TRUE(dominates(std::vector<double>{1, 2}, std::vector<double>{1, 3}));
  EXPECT_FALSE(dominates(std::vector<double>{1, 2}, std::vector<double>{1, 2}));
  EXPECT_FALSE(dominates(std::vector<double>{1, 3}, std::vector<double>{2, 2}));
}

TEST(MultiObjective, RanksMatchBruteForce) {
  Rng rng(3);
  for (int dim : {1, 2, 3, 4}) {
    for (int trial = 0; trial < 30; ++trial) {
      const Points p = random_points(rng, 1 + static_cast<int>(rng.uniform_int(60)), dim, 6);
      EXPECT_EQ(non_domination_ranks(p), brute_ranks(p)) << "dim " << dim;
      std::vector<int> front;
      const auto r = brute_ranks(p);
      for (int i = 0; i < p.size(); ++i) {
        if (r[i] == 0) front.push_back(i);
      }
      EXPECT_EQ(pareto_front(p), front);
    }
  }
}

TEST(MultiObjective, ParetoFrontKeepsDuplicatesInOrder) {
  Points p(2);
  p.push_back({1, 3});
  p.push_back({2, 2});
  p.push_back({3, 3});
  p.push_back({1, 3});
  EXPECT_EQ(pareto_front(p), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(non_domination_ranks(p), (std::vector<int>{0, 0, 1, 0}));
}

TEST(MultiObjective, HypervolumeMatchesInclusionExclusion) {
  Points example(2);
  example.push_back({1, 3});
  example.push_back({2, 2});
  example.push_back({3, 3});
  EXPECT_DOUBLE_EQ(hypervolume(example, std::vector<double>{4, 4}), 5.0);
  Rng rng(5);
  for (int dim : {1, 2, 3, 4, 5}) {
    for (int trial = 0; trial < 20; ++trial) {
      Points p(dim);
      std::vector<double> x(dim);
      const int n = 1 + static_cast<int>(rng.uniform_int(10));
      for (int i = 0; i < n; ++i) {
        for (double& v : x)
          v = rng.uniform() < 0.3 ? std::floor(rng.uniform(0, 4)) : rng.uniform(0, 4);
        p.push_back(x);
      }
      const std::vector<double> ref(dim, 3.5);  // some points lie outside: they add nothing
      EXPECT_NEAR(hypervolume(p, ref), brute_hypervolume(p, ref), 1e-9) << "dim " << dim;
    }
  }
}

TEST(MultiObjective, CrowdingDistanceByDefinition) {
  Points p(2);
  p.push_back({0, 4});
  p.push_back({1, 2});
  p.push_back({3, 1});
  p.push_back({4, 0});
  const auto d = crowding_distance(p);
  EXPECT_EQ(d[0], INFINITY);
  EXPECT_EQ(d[3], INFINITY);
  EXPECT_DOUBLE_EQ(d[1], (3.0 - 0.0) / 4 + (4.0 - 1.0) / 4);
  EXPECT_DOUBLE_EQ(d[2], (4.0 - 1.0) / 4 + (2.0 - 0.0) / 4);
  // A constant objective adds nothing; ties: the first in order takes the -inf neighbour.
  Points q(2);
  q.push_back({1, 5});
  q.push_back({1, 5});
  q.push_back({2, 5});
  const auto e = crowding_distance(q);
  EXPECT_EQ(e[0], INFINITY);
  EXPECT_DOUBLE_EQ(e[1], 1.0);
  EXPECT_EQ(e[2], INFINITY);
}

double subset_hv(const Points& p, const std::vector<int>& idx, const std::vector<double>& ref) {
  Points s(p.dim());
  for (int i : idx) s.push_back(p[i]);
  return hypervolume(s, ref);
}

TEST(MultiObjective, HsspEqualsPlainGreedyAndIsNearOptimal) {
  Rng rng(11);
  for (int dim : {2, 3}) {
    for (int trial = 0; trial < 25; ++trial) {
      // A non-dominated set (the case TPE uses): points on a noisy simplex.
      Points p(dim);
      const int n = 6 + static_cast<int>(rng.uniform_int(6));
      std::vector<double> x(dim);
      for (int i = 0; i < n; ++i) {
        double sum = 0;
        for (double& v : x) sum += (v = rng.uniform(0.1, 1));
        for (double& v : x) v /= sum;
        p.push_back(x);
      }
      const std::vector<double> ref(dim, 1.1);
      const int k = 1 + static_cast<int>(rng.uniform_int(n - 1));
      // Plain greedy, recomputing HV of every candidate set.
      std::vector<int> greedy;
      std::vector<bool> used(n, false);
      for (int step = 0; step < k; ++step) {
        int best = -1;
        double best_hv = -1;
        for (int i = 0; i < n; ++i) {
          if (used[i]) continue;
          auto cand = greedy;
          cand.push_back(i);
          const double hv = subset_hv(p, cand, ref);
          if (hv > best_hv + 1e-15) best_hv = hv, best = i;
        }
        used[best] = true;
        greedy.push_back(best);
      }
      std::sort(greedy.begin(), greedy.end());
      const auto lazy = hssp_select(p, k, ref);
      EXPECT_NEAR(subset_hv(p, lazy, ref), subset_hv(p, greedy, ref), 1e-12);
      // Exhaustive optimum: greedy is within 1 - 1/e of it.
      double opt = 0;
      for (uint32_t mask = 0; mask < (1u << n); ++mask) {
        if (std::popcount(mask) != k) continue;
        std::vector<int> idx;
        for (int i = 0; i < n; ++i) {
          if (mask >> i & 1) idx.push_back(i);
        }
        opt = std::max(opt, subset_hv(p, idx, ref));
      }
      EXPECT_GE(subset_hv(p, lazy, ref), (1 - 1 / M_E) * opt - 1e-12);
    }
  }
}

TEST(MultiObjective, HsspDuplicatesAndDegenerateCases) {
  Points p(2);
  p.push_back({1, 2});
  p.push_back({1, 2});
  p.push_back({2, 1});
  p.push_back({2, 1});
  const std::vector<double> ref{3, 3};
  EXPECT_EQ(hssp_select(p, 2, ref), (std::vector<int>{0, 2}));     // distinct first
  EXPECT_EQ(hssp_select(p, 3, ref), (std::vector<int>{0, 1, 2}));  // then first duplicates
  EXPECT_EQ(hssp_select(p, 4, ref).size(), 4u);
  const std::vector<double> inf_ref{INFINITY, 3};
  EXPECT_EQ(hssp_select(p, 2, inf_ref), (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace qsearch::search
