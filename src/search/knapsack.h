// Exact multi-objective multiple-choice knapsack: choose one option per group so that the sum of
// the chosen options' cost vectors is Pareto-optimal; return every Pareto-optimal sum.
//
// Every coordinate is minimised (negate maximised ones first). Groups are merged one at a time:
//   F_0 = {0},   F_g = ParetoFilter(F_{g-1} (+) options_g)
// where (+) adds every option of group g to every point of F_{g-1}. This is exact for separable
// (additive) objectives: a sum that uses a dominated partial sum of the first g groups is
// dominated by the same sum with the dominating partial sum, so discarding dominated partial
// sums never loses a Pareto-optimal total. Identical totals are kept once (the one reached by
// the lexicographically smallest choice vector, i.e. the first in merge order). Cost is
// O(sum_g |F_{g-1}| |options_g| (log + m |F_g|)) in the worst case; 2 objectives use a sort.
//
//   std::vector<std::vector<KnapsackOption>> groups = {
//       {{0, {1, 5}}, {1, {3, 1}}},       // group 0: option ids 0 and 1, costs (1,5), (3,1)
//       {{0, {0, 4}}, {7, {2, 0}}}};      // group 1: option ids 0 and 7
//   auto front = pareto_knapsack(groups);  // totals (1,9) (3,5) (5,1): choices {0,0} {0,7}
//                                          // {1,7}; (3,5) from {1,0} is a tie kept once
#pragma once

#include <vector>

namespace qsearch::search {

struct KnapsackOption {
  int id = 0;                // returned in KnapsackSolution::choice
  std::vector<double> cost;  // one per objective, minimised
};

struct KnapsackSolution {
  std::vector<double> total;  // sum of the chosen options' costs
  std::vector<int> choice;    // option id per group
};

// The Pareto front of the totals, sorted lexicographically by total. An empty group makes the
// problem infeasible (empty result); no groups gives one solution with an all-zero total of
// dimension 0. Throws Error when cost vectors have different sizes.
std::vector<KnapsackSolution> pareto_knapsack(
    const std::vector<std::vector<KnapsackOption>>& groups);

// Indices of the Pareto-optimal points (ties kept once: the first), sorted lexicographically by
// point. Shared by the merge above.
std::vector<int> pareto_filter(const std::vector<std::vector<double>>& points);

}  // namespace qsearch::search
