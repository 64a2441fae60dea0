// Multi-objective building blocks shared by Study (Pareto front), TPE (MOTPE split and weights)
// and NSGA-II (elite selection). Everything here MINIMISES every coordinate: flip maximised
// objectives first with to_loss().
//
// Definitions (n points p_0..p_{n-1} in R^m):
// - a dominates b  <=>  a_j <= b_j for all j and a_j < b_j for some j.
// - non-domination rank: 0 for points no point dominates; r for points whose dominators all have
//   rank < r and at least one has rank r - 1 (rank = length of the longest dominating chain).
//   Identical points never dominate each other, so duplicates share a rank.
// - hypervolume HV(P, r) = Lebesgue measure of the union over p in P of the boxes [p, r]
//   (points with some p_j >= r_j add nothing).
// - crowding distance (Optuna v4 NSGA-II): for each objective j with min != max, sort the points
//   by p_j and add (next - previous) / (max - min) to each point, where the point below the
//   minimum is -inf and the one above the maximum is +inf (so the extremes get +inf). Ties are
//   ordered as Optuna's in-place sorts leave them: stable sort by objective 0, then the result
//   stably by objective 1, and so on.
// - greedy HSSP: choose k points maximising HV one at a time (each pick adds the largest
//   exclusive contribution HV(S + p) - HV(S)); a (1 - 1/e)-approximation of the best subset.
//
//   Points p(2);                       // 2 objectives
//   p.push_back({1.0, 3.0});  p.push_back({2.0, 2.0});  p.push_back({3.0, 3.0});
//   non_domination_ranks(p) == {0, 0, 1};   pareto_front(p) == {0, 1};
//   hypervolume(p, std::vector<double>{4, 4}) == 5.0;   // [1,4]x[3,4] united with [2,4]x[2,4]
#pragma once

#include <initializer_list>
#include <span>
#include <vector>

#include "search/trial.h"

namespace qsearch::search {

// n points of dimension `dim`, row-major.
class Points {
 public:
  explicit Points(int dim = 0) : dim_(dim) {}
  int dim() const { return dim_; }
  int size() const { return dim_ == 0 ? 0 : static_cast<int>(data_.size() / dim_); }
  std::span<const double> operator[](int i) const {
    return {data_.data() + static_cast<size_t>(i) * dim_, static_cast<size_t>(dim_)};
  }
  std::span<double> mutable_row(int i) {
    return {data_.data() + static_cast<size_t>(i) * dim_, static_cast<size_t>(dim_)};
  }
  void push_back(std::span<const double> p);
  void push_back(std::initializer_list<double> p) { push_back(std::span<const double>(p)); }
  void reserve(int n) { data_.reserve(static_cast<size_t>(n) * dim_); }

 private:
  int dim_;
  std::vector<double> data_;
};

// values with every MAXIMISE coordinate negated.
std::vector<double> to_loss(std::span<const double> values, const std::vector<Direction>& dirs);

bool dominates(std::span<const double> a, std::span<const double> b);

// Rank per point (0 = non-dominated). O(n log n) for 2 objectives, O(m n^2) otherwise.
std::vector<int> non_domination_ranks(const Points& points);

// Indices of rank-0 points, increasing (duplicates of a non-dominated point all included).
std::vector<int> pareto_front(const Points& points);

// Crowding distance per point, in input order (see the definition above).
std::vector<double> crowding_distance(const Points& points);

// Exact hypervolume w.r.t. reference point `ref` (size dim): an O(n log n) sweep in 2-D, WFG
// (exclusive contributions over limited sets) in higher dimensions, a min in 1-D.
double hypervolume(const Points& points, std::span<const double> ref);

// Exclusive contribution of point p to HV(selected + p): HV([p, r]) - HV(limit(selected, p)).
double hypervolume_contribution(std::span<const double> p, const Points& selected,
                                std::span<const double> ref);

// Optuna's _solve_hssp: indices (increasing) of k of the points chosen by greedy hypervolume
// subset selection with lazy (CELF) contribution updates. Ties go to the lexicographically
// smallest point. Duplicated points are never picked twice while distinct ones remain; when
// fewer than k distinct points exist, all first occurrences plus the first duplicates (by
// index) are returned. A non-finite `ref` returns the first k indices.
std::vector<int> hssp_select(const Points& points, int k, std::span<const double> ref);

}  // namespace qsearch::search
