#include "search/knapsack.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace qsearch::search {

namespace {

bool weakly_dominates(const std::vector<double>& a, const std::vector<double>& b) {
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
  }
  return true;
}

}  // namespace

std::vector<int> pareto_filter(const std::vector<std::vector<double>>& points) {
  std::vector<int> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  // Stable: among identical points the first index comes first and is the one kept.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return points[a] < points[b]; });
  std::vector<int> kept;
  if (points.empty()) return kept;
  const size_t m = points[0].size();
  if (m == 0) return {order[0]};
  if (m == 1) return {order[0]};
  if (m == 2) {
    // Lexicographic order: a point survives iff its second coordinate beats every earlier one.
    double best = 0;
    for (int i : order) {
      if (kept.empty() || points[i][1] < best) {
        kept.push_back(i);
        best = points[i][1];
      }
    }
    return kept;
  }
  // No point dominates or equals a lexicographically earlier distinct point, so comparing each
  // point with the kept ones (all earlier) is enough.
  for (int i : order) {
    bool dominated = false;
    for (int j : kept) {
      if (weakly_dominates(points[j], points[i])) {
        dominated = true;
        break;
      }
    }
    if (!dominated) kept.push_back(i);
  }
  return kept;
}

std::vector<KnapsackSolution> pareto_knapsack(
    const std::vector<std::vector<KnapsackOption>>& groups) {
  size_t m = 0;
  bool have_m = false;
  for (const auto& g : groups) {
    for (const KnapsackOption& o : g) {
      if (!have_m) {
        m = o.cost.size();
        have_m = true;
      } else if (o.cost.size() != m) {
        fail("pareto_knapsack: options have cost vectors of {} and {} objectives", m,
             o.cost.size());
      }
    }
  }
  std::vector<KnapsackSolution> front = {KnapsackSolution{std::vector<double>(m, 0.0), {}}};
  for (const auto& g : groups) {
    std::vector<std::vector<double>> totals;
    std::vector<std::pair<int, int>> from;  // (front index, option index)
    totals.reserve(front.size() * g.size());
    for (size_t f = 0; f < front.size(); ++f) {
      for (size_t o = 0; o < g.size(); ++o) {
        std::vector<double> t = front[f].total;
        for (size_t k = 0; k < m; ++k) t[k] += g[o].cost[k];
        totals.push_back(std::move(t));
        from.emplace_back(static_cast<int>(f), static_cast<int>(o));
      }
    }
    std::vector<KnapsackSolution> next;
    for (int i : pareto_filter(totals)) {
      KnapsackSolution s;
      s.total = std::move(totals[i]);
      s.choice = front[from[i].first].choice;
      s.choice.push_back(g[from[i].second].id);
      next.push_back(std::move(s));
    }
    front = std::move(next);
    if (front.empty()) break;
  }
  return front;
}

}  // namespace qsearch::search
