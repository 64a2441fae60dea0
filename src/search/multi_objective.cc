#include "search/multi_objective.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>

#include "core/check.h"

namespace qsearch::search {

void Points::push_back(std::span<const double> p) {
  QSEARCH_CHECK(static_cast<int>(p.size()) == dim_);
  data_.insert(data_.end(), p.begin(), p.end());
}

std::vector<double> to_loss(std::span<const double> values, const std::vector<Direction>& dirs) {
  QSEARCH_CHECK(values.size() == dirs.size());
  std::vector<double> loss(values.begin(), values.end());
  for (size_t j = 0; j < loss.size(); ++j) {
    if (dirs[j] == Direction::kMaximize) loss[j] = -loss[j];
  }
  return loss;
}

bool dominates(std::span<const double> a, std::span<const double> b) {
  bool strictly = false;
  for (size_t j = 0; j < a.size(); ++j) {
    if (a[j] > b[j]) return false;
    if (a[j] < b[j]) strictly = true;
  }
  return strictly;
}

namespace {

bool lex_less(std::span<const double> a, std::span<const double> b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}
bool same(std::span<const double> a, std::span<const double> b) {
  return std::equal(a.begin(), a.end(), b.begin());
}

// Sorted by (x, y), a point joins the first front whose smallest y so far exceeds its own y:
// every earlier point has x <= its x, so exactly the fronts with min y <= y hold a dominator,
// and those fronts' min y values are non-decreasing (binary search).
std::vector<int> ranks_2d(const Points& p) {
  const int n = p.size();
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    if (p[a][0] != p[b][0]) return p[a][0] < p[b][0];
    if (p[a][1] != p[b][1]) return p[a][1] < p[b][1];
    return a < b;
  });
  std::vector<int> rank(n);
  std::vector<double> front_min_y;
  for (int k = 0; k < n; ++k) {
    const int i = order[k];
    if (k > 0 && same(p[i], p[order[k - 1]])) {
      rank[i] = rank[order[k - 1]];
      continue;
    }
    const double y = p[i][1];
    auto it = std::upper_bound(front_min_y.begin(), front_min_y.end(), y);
    const int r = static_cast<int>(it - front_min_y.begin());
    if (it == front_min_y.end()) {
      front_min_y.push_back(y);
    } else {
      *it = y;
    }
    rank[i] = r;
  }
  return rank;
}

// Deb et al.'s fast non-dominated sort.
std::vector<int> ranks_nd(const Points& p) {
  const int n = p.size();
  std::vector<std::vector<int>> dominated(n);
  std::vector<int> count(n, 0), rank(n, 0), current;
  for (int i = 0; i < n; ++i) {
    for (int j = i + 1; j < n; ++j) {
      if (dominates(p[i], p[j])) {
        dominated[i].push_back(j);
        ++count[j];
      } else if (dominates(p[j], p[i])) {
        dominated[j].push_back(i);
        ++count[i];
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if (count[i] == 0) current.push_back(i);
  }
  int r = 0;
  while (!current.empty()) {
    std::vector<int> next;
    for (int i : current) {
      rank[i] = r;
      for (int j : dominated[i]) {
        if (--count[j] == 0) next.push_back(j);
      }
    }
    current = std::move(next);
    ++r;
  }
  return rank;
}

double box_volume(std::span<const double> p, std::span<const double> ref) {
  double v = 1;
  for (size_t j = 0; j < p.size(); ++j) v *= std::max(0.0, ref[j] - p[j]);
  return v;
}

double hv_2d(std::vector<std::pair<double, double>> pts, double r0, double r1) {
  std::sort(pts.begin(), pts.end());
  double area = 0, y_min = r1;
  for (const auto& [x, y] : pts) {
    if (x >= r0 || y >= y_min) continue;
    area += (r0 - x) * (y_min - y);
    y_min = y;
  }
  return area;
}

// Keeps the points that dominate ref strictly in every coordinate and are not dominated.
Points nondominated_inside(const Points& p, std::span<const double> ref) {
  Points inside(p.dim());
  for (int i = 0; i < p.size(); ++i) {
    bool ok = true;
    for (int j = 0; j < p.dim(); ++j) ok = ok && p[i][j] < ref[j];
    if (ok) inside.push_back(p[i]);
  }
  if (inside.size() <= 1) return inside;
  Points out(p.dim());
  for (int i : pareto_front(inside)) {
    // Duplicates add no volume; keep one.
    bool dup = false;
    for (int k = 0; k < out.size() && !dup; ++k) dup = same(out[k], inside[i]);
    if (!dup) out.push_back(inside[i]);
  }
  return out;
}

double wfg(const Points& p, std::span<const double> ref) {
  const int n = p.size(), m = p.dim();
  if (n == 0) return 0;
  if (n == 1) return box_volume(p[0], ref);
  if (m == 2) {
    std::vector<std::pair<double, double>> pts;
    for (int i = 0; i < n; ++i) pts.emplace_back(p[i][0], p[i][1]);
    return hv_2d(std::move(pts), ref[0], ref[1]);
  }
  // Processing points in decreasing order of the last objective keeps the limited sets small.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return p[a][m - 1] > p[b][m - 1] || (p[a][m - 1] == p[b][m - 1] && a < b);
  });
  double total = 0;
  std::vector<double> limited(m);
  for (int k = 0; k < n; ++k) {
    const auto pk = p[order[k]];
    Points rest(m);
    for (int l = k + 1; l < n; ++l) {
      const auto pl = p[order[l]];
      for (int j = 0; j < m; ++j) limited[j] = std::max(pk[j], pl[j]);
      rest.push_back(limited);
    }
    total += box_volume(pk, ref) - wfg(nondominated_inside(rest, ref), ref);
  }
  return total;
}

}  // namespace

std::vector<int> non_domination_ranks(const Points& points) {
  if (points.size() == 0) return {};
  if (points.dim() == 1) {
    std::vector<double> v;
    for (int i = 0; i < points.size(); ++i) v.push_back(points[i][0]);
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<int> rank(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      rank[i] =
          static_cast<int>(std::lower_bound(sorted.begin(), sorted.end(), v[i]) - sorted.begin());
    }
    return rank;
  }
  return points.dim() == 2 ? ranks_2d(points) : ranks_nd(points);
}

std::vector<int> pareto_front(const Points& points) {
  std::vector<int> front;
  const std::vector<int> rank = non_domination_ranks(points);
  for (int i = 0; i < static_cast<int>(rank.size()); ++i) {
    if (rank[i] == 0) front.push_back(i);
  }
  return front;
}

std::vector<double> crowding_distance(const Points& points) {
  const int n = points.size();
  std::vector<double> dist(n, 0.0);
  const double inf = std::numeric_limits<double>::infinity();
  // One order re-sorted objective after objective, as Optuna sorts its list in place: which of
  // several tied values sits at the edge (and gets the larger gap) depends on that history.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int j = 0; j < points.dim(); ++j) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return points[a][j] < points[b][j]; });
    if (n == 0 || points[order[0]][j] == points[order[n - 1]][j]) continue;
    auto v = [&](int k) { return k < 0 ? -inf : k >= n ? inf : points[order[k]][j]; };
    double v_min = inf, v_max = -inf;
    for (int k = 0; k < n; ++k) {
      const double x = v(k);
      if (x != -inf) v_min = std::min(v_min, x);
      if (x != inf) v_max = std::max(v_max, x);
    }
    double width = v_max - v_min;
    if (!(width > 0)) width = 1.0;
    for (int k = 0; k < n; ++k) {
      const double hi = v(k + 1), lo = v(k - 1);
      const double gap = hi == lo ? 0.0 : hi - lo;
      dist[order[k]] += gap / width;
    }
  }
  return dist;
}

double hypervolume(const Points& points, std::span<const double> ref) {
  QSEARCH_CHECK(static_cast<int>(ref.size()) == points.dim());
  if (points.size() == 0) return 0;
  if (points.dim() == 1) {
    double best = ref[0];
    for (int i = 0; i < points.size(); ++i) best = std::min(best, points[i][0]);
    return ref[0] - best;
  }
  if (points.dim() == 2) {
    std::vector<std::pair<double, double>> pts;
    for (int i = 0; i < points.size(); ++i) pts.emplace_back(points[i][0], points[i][1]);
    return hv_2d(std::move(pts), ref[0], ref[1]);
  }
  return wfg(nondominated_inside(points, ref), ref);
}

double hypervolume_contribution(std::span<const double> p, const Points& selected,
                                std::span<const double> ref) {
  const int m = static_cast<int>(p.size());
  Points limited(m);
  std::vector<double> q(m);
  for (int i = 0; i < selected.size(); ++i) {
    for (int j = 0; j < m; ++j) q[j] = std::max(p[j], selected[i][j]);
    limited.push_back(q);
  }
  return box_volume(p, ref) - hypervolume(limited, ref);
}

std::vector<int> hssp_select(const Points& points, int k, std::span<const double> ref) {
  const int n = points.size();
  k = std::clamp(k, 0, n);
  std::vector<int> all(n);
  std::iota(all.begin(), all.end(), 0);
  if (k == n) return all;
  for (double r : ref) {
    if (!std::isfinite(r)) return std::vector<int>(all.begin(), all.begin() + k);
  }
  // Distinct points in lexicographic order, each represented by its first occurrence.
  std::vector<int> lex = all;
  std::stable_sort(lex.begin(), lex.end(),
                   [&](int a, int b) { return lex_less(points[a], points[b]); });
  std::vector<int> unique;
  std::vector<bool> is_first(n, false);
  for (int i : lex) {
    if (!unique.empty() && same(points[unique.back()], points[i])) continue;
    unique.push_back(i);
    is_first[i] = true;
  }
  std::vector<int> chosen;
  if (static_cast<int>(unique.size()) <= k) {
    int extra = k - static_cast<int>(unique.size());
    for (int i = 0; i < n; ++i) {
      if (is_first[i]) {
        chosen.push_back(i);
      } else if (extra > 0) {
        chosen.push_back(i);
        --extra;
      }
    }
    return chosen;
  }
  // Lazy greedy: exclusive contributions only shrink as the selection grows (submodularity), so
  // a stale value is an upper bound; a fresh value that still tops the heap is the true argmax.
  struct Entry {
    double value;
    int pos;    // position in `unique` (lexicographic rank): the tie-break
    int round;  // selection size when `value` was computed
  };
  auto cmp = [](const Entry& a, const Entry& b) {
    return a.value < b.value || (a.value == b.value && a.pos > b.pos);
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> heap(cmp);
  for (int u = 0; u < static_cast<int>(unique.size()); ++u) {
    heap.push({box_volume(points[unique[u]], ref), u, 0});
  }
  Points selected(points.dim());
  while (static_cast<int>(chosen.size()) < k) {
    Entry top = heap.top();
    heap.pop();
    const int round = static_cast<int>(chosen.size());
    if (top.round == round) {
      chosen.push_back(unique[top.pos]);
      selected.push_back(points[unique[top.pos]]);
      continue;
    }
    top.value = hypervolume_contribution(points[unique[top.pos]], selected, ref);
    top.round = round;
    heap.push(top);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace qsearch::search
