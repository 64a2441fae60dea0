#include "search/sensitivity_sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <span>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "search/knapsack.h"
#include "search/multi_objective.h"
#include "search/space_util.h"

namespace qsearch::search {

std::string param_group_name(const std::string& param_name) {
  const size_t config = param_name.rfind("/config/");
  if (config != std::string::npos) return param_name.substr(0, config);
  const size_t slash = param_name.rfind('/');
  if (slash != std::string::npos) return param_name.substr(0, slash);
  return param_name;
}

std::vector<ParamGroup> param_groups(const SearchSpace& space) {
  std::vector<ParamGroup> groups;
  std::map<std::string, size_t> where;
  for (size_t i = 0; i < space.size(); ++i) {
    const std::string g = param_group_name(space[i].name);
    auto [it, fresh] = where.emplace(g, groups.size());
    if (fresh) groups.push_back({g, {}});
    groups[it->second].params.push_back(static_cast<int>(i));
  }
  return groups;
}

namespace {

constexpr int64_t kMaxGroupKnapsackOptions = int64_t{1} << 16;

// A group as the sampler models it.
struct GroupPlan {
  std::string name;
  std::vector<int> params;                    // space indices
  std::vector<int64_t> card;                  // cardinality per parameter
  std::vector<int64_t> top;                   // highest index per parameter
  bool exhaustive = true;                     // probed at every option
  std::vector<std::vector<int64_t>> grid;     // probed indices per parameter (increasing)
  std::vector<std::vector<int64_t>> options;  // knapsack options: one index per parameter
  // exhaustive: probe of each option (mixed radix over card, parameter 0 fastest)
  std::vector<int> probe_of_option;
  // per-parameter: the main parameter (most grid values, first on ties) and, per parameter and
  // grid position, the probe with that parameter there and the rest of the group at the top
  // (probe_of_grid; the top index maps to top_probe) or, for the other parameters, the main
  // parameter at its lowest grid index (probe_of_low; the top index maps to low_probe)
  size_t main = 0;
  std::vector<std::vector<int>> probe_of_grid;
  std::vector<std::vector<int>> probe_of_low;
  int top_probe = -1;
  int low_probe = -1;
  // Proposal order inside the group: its first probe (the top, or a seeded random option when
  // exhaustive), then stage 1 (per-parameter groups: the cheap end, the main parameter at its
  // lowest index and every other parameter's values there), then stage 2 (the rest).
  int first = -1;
  std::vector<int> stage1, stage2;
};

struct ProbeSpec {
  std::string label;
  int group = -1;  // -1: base
  std::vector<double> params;
};

struct Plan {
  std::vector<GroupPlan> groups;
  std::vector<ProbeSpec> probes;  // probes[0] is the base; the rest in creation order
  std::map<std::pair<std::string, std::vector<double>>, int> index;
};

int64_t product_saturated(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) {
    if (p > std::numeric_limits<int64_t>::max() / std::max<int64_t>(x, 1)) {
      return std::numeric_limits<int64_t>::max();
    }
    p *= x;
  }
  return p;
}

std::vector<int64_t> evenly_spaced(int64_t card, int cap) {
  std::vector<int64_t> g;
  if (card <= cap || cap < 2) {
    g.resize(static_cast<size_t>(card));
    std::iota(g.begin(), g.end(), int64_t{0});
    return g;
  }
  for (int i = 0; i < cap; ++i) {
    const int64_t k = std::llround(static_cast<double>(i) * static_cast<double>(card - 1) /
                                   static_cast<double>(cap - 1));
    if (g.empty() || g.back() != k) g.push_back(k);
  }
  return g;
}

// All index vectors of the product of `grid` (parameter 0 fastest).
std::vector<std::vector<int64_t>> grid_product(const std::vector<std::vector<int64_t>>& grid) {
  std::vector<std::vector<int64_t>> out = {{}};
  for (size_t p = 0; p < grid.size(); ++p) {
    std::vector<std::vector<int64_t>> next;
    next.reserve(out.size() * grid[p].size());
    for (int64_t k : grid[p]) {
      for (const auto& prefix : out) {
        auto v = prefix;
        v.push_back(k);
        next.push_back(std::move(v));
      }
    }
    out = std::move(next);
  }
  // Reorder so that parameter 0 is the fastest digit.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::lexicographical_compare(a.rbegin(), a.rend(), b.rbegin(), b.rend());
  });
  return out;
}

int64_t option_number(const GroupPlan& g, const std::vector<int64_t>& idx) {
  int64_t n = 0;
  for (size_t p = g.params.size(); p-- > 0;) n = n * g.card[p] + idx[p];
  return n;
}

std::vector<double> first_values(const SearchSpace& space) {
  std::vector<double> v(space.size());
  for (size_t i = 0; i < space.size(); ++i) v[i] = space[i].dist.value_at(0);
  return v;
}

Plan make_plan(const SearchSpace& space, const SamplerOptions& options) {
  Plan plan;
  const int cap = std::max(1, options.max_group_options);
  const std::vector<double> zero = first_values(space);
  const bool table = options.sensitivity_table != nullptr;  // no probes: deltas from the table
  if (!table) plan.probes.push_back({kProbeBase, -1, zero});
  Rng rng(options.seed);
  for (const ParamGroup& pg : param_groups(space)) {
    GroupPlan g;
    g.name = pg.name;
    g.params = pg.params;
    for (int i : pg.params) {
      g.card.push_back(space[i].dist.cardinality());
      g.top.push_back(g.card.back() - 1);
    }
    // One option: the same in every configuration, nothing to choose; its constant effect is
    // left to the correction's intercept instead of costing a probe.
    if (product_saturated(g.card) == 1) continue;
    g.exhaustive = table || product_saturated(g.card) <= cap;
    for (int64_t c : g.card)
      g.grid.push_back(g.exhaustive ? evenly_spaced(c, INT32_MAX) : evenly_spaced(c, cap));
    g.options = grid_product(g.grid);
    if (table) {
      plan.groups.push_back(std::move(g));
      continue;
    }
    const int gi = static_cast<int>(plan.groups.size());
    auto make_probe = [&](const std::vector<int64_t>& idx) {
      std::vector<double> params = zero;
      for (size_t p = 0; p < g.params.size(); ++p) {
        params[g.params[p]] = space[g.params[p]].dist.value_at(idx[p]);
      }
      plan.probes.push_back({g.name, gi, std::move(params)});
      return static_cast<int>(plan.probes.size()) - 1;
    };
    if (g.exhaustive) {
      std::vector<int> mine;
      g.probe_of_option.assign(static_cast<size_t>(product_saturated(g.card)), -1);
      for (const auto& idx : g.options) {
        const int k = make_probe(idx);
        g.probe_of_option[static_cast<size_t>(option_number(g, idx))] = k;
        mine.push_back(k);
      }
      rng.shuffle(std::span<int>(mine));
      g.first = mine[0];
      g.stage2.assign(mine.begin() + 1, mine.end());
    } else {
      for (size_t p = 1; p < g.params.size(); ++p) {
        if (g.grid[p].size() > g.grid[g.main].size()) g.main = p;
      }
      const size_t main = g.main;
      g.top_probe = make_probe(g.top);
      g.first = g.top_probe;
      g.probe_of_grid.resize(g.params.size());
      g.probe_of_low.resize(g.params.size());
      // The main parameter's values (its lowest first: stage 1), the rest of the group at the top.
      for (int64_t k : g.grid[main]) {
        if (k == g.top[main]) {
          g.probe_of_grid[main].push_back(g.top_probe);
          continue;
        }
        std::vector<int64_t> idx = g.top;
        idx[main] = k;
        const int id = make_probe(idx);
        g.probe_of_grid[main].push_back(id);
        (k == g.grid[main].front() ? g.stage1 : g.stage2).push_back(id);
      }
      g.low_probe = g.probe_of_grid[main].front();
      // Every other parameter's values at the main parameter's lowest index (stage 1) and at its
      // top (stage 2): the interaction of each parameter with the main one, at both ends.
      for (bool low : {true, false}) {
        for (size_t p = 0; p < g.params.size(); ++p) {
          if (p == main) continue;
          for (int64_t k : g.grid[p]) {
            auto& slot = low ? g.probe_of_low[p] : g.probe_of_grid[p];
            if (k == g.top[p]) {
              slot.push_back(low ? g.low_probe : g.top_probe);
              continue;
            }
            std::vector<int64_t> idx = g.top;
            idx[p] = k;
            if (low) idx[main] = g.grid[main].front();
            const int id = make_probe(idx);
            slot.push_back(id);
            (low ? g.stage1 : g.stage2).push_back(id);
          }
        }
      }
    }
    plan.groups.push_back(std::move(g));
  }
  for (size_t i = 0; i < plan.probes.size(); ++i) {
    plan.index.emplace(std::make_pair(plan.probes[i].label, plan.probes[i].params),
                       static_cast<int>(i));
  }
  return plan;
}

bool finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// What the history says, in loss space.
struct Observed {
  std::vector<std::optional<std::vector<double>>> probe_loss;  // per probe, when COMPLETE
  std::vector<bool> probe_taken;
  std::vector<bool> probe_running;
  int configurations = 0;            // taken trials that are not probes
  const StudyView* study = nullptr;  // its taken configurations (StudyView::is_taken)
  std::vector<std::pair<std::vector<double>, std::vector<double>>> measured;  // params, loss
  std::vector<std::vector<double>> running;                                   // params
};

Observed observe(const Plan& plan, const StudyView& study) {
  Observed o;
  o.study = &study;
  o.probe_loss.resize(plan.probes.size());
  o.probe_taken.assign(plan.probes.size(), false);
  o.probe_running.assign(plan.probes.size(), false);
  for (const FrozenTrial& t : study.history) {
    if (t.state == TrialState::kFail && t.interrupted()) continue;
    if (t.params.size() != study.space.size()) continue;
    auto probe = t.system_attrs.find(kAttrProbe);
    if (probe != t.system_attrs.end()) {
      auto it = plan.index.find({probe->second, t.params});
      if (it == plan.index.end()) continue;  // another plan's probe (other options)
      o.probe_taken[it->second] = true;
      if (t.state == TrialState::kRunning) o.probe_running[it->second] = true;
      if (t.state == TrialState::kComplete && t.values.size() == study.directions.size() &&
          finite(t.values)) {
        o.probe_loss[it->second] = to_loss(t.values, study.directions);
      }
      continue;
    }
    ++o.configurations;
    if (t.state == TrialState::kRunning) o.running.push_back(t.params);
    if (t.state == TrialState::kComplete && t.values.size() == study.directions.size() &&
        finite(t.values)) {
      o.measured.emplace_back(t.params, to_loss(t.values, study.directions));
    }
  }
  return o;
}

// The additive model over the probes completed so far.
class Model {
 public:
  Model(const Plan& plan, const SearchSpace& space, const Observed& obs,
        const SensitivityTable* table)
      : plan_(plan), space_(space), obs_(obs), table_(table) {
    base_ = table ? std::optional(table->base) : obs.probe_loss[0];
  }

  const std::optional<std::vector<double>>& base() const { return base_; }
  bool from_table() const { return table_ != nullptr; }

  std::vector<int64_t> indices(const GroupPlan& g, const std::vector<double>& params) const {
    std::vector<int64_t> idx(g.params.size());
    for (size_t p = 0; p < g.params.size(); ++p) {
      idx[p] = space_[g.params[p]].dist.index_of(params[g.params[p]]);
    }
    return idx;
  }

  // delta_g for the group's indices; nullopt when a needed probe is not complete.
  std::optional<std::vector<double>> delta(const GroupPlan& g,
                                           const std::vector<int64_t>& idx) const {
    if (table_) return table_->deltas.at(g.name)[static_cast<size_t>(option_number(g, idx))];
    const std::vector<double>& b = *base();
    if (g.exhaustive) {
      const int k = g.probe_of_option[static_cast<size_t>(option_number(g, idx))];
      if (k < 0 || !obs_.probe_loss[k]) return std::nullopt;
      return minus(*obs_.probe_loss[k], b);
    }
    if (!obs_.probe_loss[g.top_probe]) return std::nullopt;
    const std::vector<double>& top = *obs_.probe_loss[g.top_probe];
    std::vector<double> d = minus(top, b);
    const size_t m = d.size();
    // The probed value of parameter p at index c (linear between grid points), or nullopt.
    auto at = [&](const std::vector<int>& probe_of, size_t p,
                  int64_t c) -> std::optional<std::vector<double>> {
      const auto& grid = g.grid[p];
      const size_t hi =
          static_cast<size_t>(std::lower_bound(grid.begin(), grid.end(), c) - grid.begin());
      if (hi >= grid.size()) return std::nullopt;
      const auto& vhi = obs_.probe_loss[probe_of[hi]];
      if (!vhi) return std::nullopt;
      if (grid[hi] == c) return *vhi;
      if (hi == 0) return std::nullopt;
      const auto& vlo = obs_.probe_loss[probe_of[hi - 1]];
      if (!vlo) return std::nullopt;
      const double w =
          static_cast<double>(c - grid[hi - 1]) / static_cast<double>(grid[hi] - grid[hi - 1]);
      std::vector<double> v(m);
      for (size_t k = 0; k < m; ++k) v[k] = (1 - w) * (*vlo)[k] + w * (*vhi)[k];
      return v;
    };
    const size_t mp = g.main;
    if (idx[mp] != g.top[mp]) {
      auto v = at(g.probe_of_grid[mp], mp, idx[mp]);
      if (!v) return std::nullopt;
      for (size_t k = 0; k < m; ++k) d[k] += (*v)[k] - top[k];
    }
    // Each other parameter's effect, measured with the main parameter at its top (weight 1 - t)
    // and at its lowest index (weight t), t linear in the main parameter's index.
    const int64_t lowest = g.grid[mp].front();
    const double t = static_cast<double>(g.top[mp] - idx[mp]) /
                     static_cast<double>(std::max<int64_t>(g.top[mp] - lowest, 1));
    for (size_t p = 0; p < g.params.size(); ++p) {
      if (p == mp || idx[p] == g.top[p]) continue;
      if (t < 1) {
        auto v = at(g.probe_of_grid[p], p, idx[p]);
        if (!v) return std::nullopt;
        for (size_t k = 0; k < m; ++k) d[k] += (1 - t) * ((*v)[k] - top[k]);
      }
      if (t > 0) {
        const auto& low = obs_.probe_loss[g.low_probe];
        auto v = at(g.probe_of_low[p], p, idx[p]);
        if (!v || !low) return std::nullopt;
        for (size_t k = 0; k < m; ++k) d[k] += t * ((*v)[k] - (*low)[k]);
      }
    }
    return d;
  }

  // pred(params) in loss space; nullopt when some group has no complete probe for it.
  std::optional<std::vector<double>> predict(const std::vector<double>& params) const {
    std::vector<double> total = *base();
    for (const GroupPlan& g : plan_.groups) {
      auto d = delta(g, indices(g, params));
      if (!d) return std::nullopt;
      for (size_t k = 0; k < total.size(); ++k) total[k] += (*d)[k];
    }
    return total;
  }

  static std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> d(a.size());
    for (size_t k = 0; k < a.size(); ++k) d[k] = a[k] - b[k];
    return d;
  }

 private:
  const Plan& plan_;
  const SearchSpace& space_;
  const Observed& obs_;
  const SensitivityTable* table_;
  std::optional<std::vector<double>> base_;
};

// measured - base ~ a + s (pred - base), per objective.
struct Correction {
  std::vector<double> a, s;
  std::vector<double> apply(const std::vector<double>& pred,
                            const std::vector<double>& base) const {
    std::vector<double> c(pred.size());
    for (size_t k = 0; k < pred.size(); ++k) c[k] = base[k] + a[k] + s[k] * (pred[k] - base[k]);
    return c;
  }
};

Correction fit_correction(const Model& model, const Observed& obs, size_t m) {
  Correction c{std::vector<double>(m, 0.0), std::vector<double>(m, 1.0)};
  const std::vector<double>& b = *model.base();
  std::vector<std::vector<double>> xs(m), ys(m);
  for (const auto& [params, loss] : obs.measured) {
    auto p = model.predict(params);
    if (!p) continue;
    for (size_t k = 0; k < m; ++k) {
      xs[k].push_back((*p)[k] - b[k]);
      ys[k].push_back(loss[k] - b[k]);
    }
  }
  for (size_t k = 0; k < m; ++k) {
    const size_t n = xs[k].size();
    if (n == 0) continue;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; ++i) mx += xs[k][i] / n, my += ys[k][i] / n;
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; ++i) {
      sxx += (xs[k][i] - mx) * (xs[k][i] - mx);
      sxy += (xs[k][i] - mx) * (ys[k][i] - my);
    }
    double s = 1;
    // A table's deltas may be in other units (a proxy's loss for an accuracy): a wider scale.
    const double lo = model.from_table() ? 1e-3 : 0.2, hi = model.from_table() ? 1e3 : 5.0;
    if (n >= 4 && sxx > 1e-12 * (1 + mx * mx) * n) s = std::clamp(sxy / sxx, lo, hi);
    c.s[k] = s;
    c.a[k] = my - s * mx;
  }
  return c;
}

// How much a group moves the objectives: its first probe's change from the base, per objective
// relative to the larger of the base's magnitude and the sum of every group's change, summed
// over objectives. -1 while unknown.
std::vector<double> group_weights(const Plan& plan, const Observed* obs) {
  std::vector<double> w(plan.groups.size(), -1.0);
  if (!obs || !obs->probe_loss[0]) return w;
  const std::vector<double>& base = *obs->probe_loss[0];
  std::vector<double> total(base.size(), 0.0);
  for (const GroupPlan& g : plan.groups) {
    const auto& v = obs->probe_loss[g.first];
    if (!v) continue;
    for (size_t k = 0; k < base.size(); ++k) total[k] += std::abs((*v)[k] - base[k]);
  }
  for (size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const auto& v = obs->probe_loss[plan.groups[gi].first];
    if (!v) continue;
    w[gi] = 0;
    for (size_t k = 0; k < base.size(); ++k) {
      const double scale = std::max(std::abs(base[k]), total[k]);
      if (scale > 0) w[gi] += std::abs((*v)[k] - base[k]) / scale;
    }
  }
  return w;
}

// The probes in proposal order: the base, each group's first probe (group order), then the
// groups by decreasing weight (group_weights; unknown last, ties in group order): every group's
// stage 1, then the stage-2 probes round-robin over the groups. Without observations (or before
// the first probes complete) the group order.
std::vector<int> probe_order(const Plan& plan, const Observed* obs) {
  if (plan.probes.empty()) return {};  // a table instead of probes
  std::vector<int> order = {0};
  for (const GroupPlan& g : plan.groups) order.push_back(g.first);
  const std::vector<double> w = group_weights(plan, obs);
  std::vector<size_t> by(plan.groups.size());
  std::iota(by.begin(), by.end(), size_t{0});
  std::stable_sort(by.begin(), by.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
  for (size_t gi : by) {
    const auto& s1 = plan.groups[gi].stage1;
    order.insert(order.end(), s1.begin(), s1.end());
  }
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (size_t gi : by) {
      const auto& s2 = plan.groups[gi].stage2;
      if (round >= s2.size()) continue;
      any = true;
      order.push_back(s2[round]);
    }
    if (!any) break;
  }
  return order;
}

// Full configurations due while probes remain: one per per-parameter group whose first and
// stage-1 probes are all finished (its cheap end is known, so the partial model can put the
// group there), except the first such group (one cheap group among groups at their top option
// is rarely near the front: measured on the LeNet-5 space, waiting for the second saved an
// evaluation), plus one per kStage2PerConfiguration finished stage-2 probes of such groups.
// Exhaustively probed groups add none: a space of them is probed completely first.
constexpr int kStage2PerConfiguration = 2;

int configurations_due(const Plan& plan, const Observed& obs) {
  auto done = [&](int i) {
    return obs.probe_taken[static_cast<size_t>(i)] && !obs.probe_running[static_cast<size_t>(i)];
  };
  int due = 0, stage2 = 0;
  for (const GroupPlan& g : plan.groups) {
    if (g.exhaustive) continue;
    due += done(g.first) && std::all_of(g.stage1.begin(), g.stage1.end(), done);
    stage2 += static_cast<int>(std::count_if(g.stage2.begin(), g.stage2.end(), done));
  }
  return std::max(0, due - 1) + stage2 / kStage2PerConfiguration;
}

// A random configuration, redrawn while it is taken; a last taken draw is moved by the Study to
// the nearest untaken configuration (or ends the study when every one is taken).
std::vector<double> random_untaken(const SearchSpace& space, const Observed& obs, uint64_t seed,
                                   int trial_number) {
  Rng rng = Rng(seed).fork(static_cast<uint64_t>(trial_number));
  std::vector<double> p = sample_uniform(space, rng);
  for (int i = 1; i < kMaxRedraws && obs.study->is_taken(p); ++i) p = sample_uniform(space, rng);
  return p;
}

// Proposes the best-scored candidate (see the header), or nullopt when there is none.
using Solver =
    std::function<std::vector<KnapsackSolution>(const std::vector<std::vector<KnapsackOption>>&)>;

std::optional<std::vector<double>> model_proposal(const Plan& plan, const SearchSpace& space,
                                                  const Observed& obs, const Model& model, size_t m,
                                                  const Solver& solve) {
  // Phase c: the predicted front.
  std::vector<std::vector<KnapsackOption>> items;
  for (const GroupPlan& g : plan.groups) {
    std::vector<KnapsackOption> opts;
    for (size_t o = 0; o < g.options.size(); ++o) {
      auto d = model.delta(g, g.options[o]);
      if (d) opts.push_back({static_cast<int>(o), std::move(*d)});
    }
    if (opts.empty()) return std::nullopt;
    items.push_back(std::move(opts));
  }
  const std::vector<KnapsackSolution> front = solve(items);
  const std::vector<double> zero = first_values(space);
  std::vector<std::vector<double>> candidates;
  std::set<std::vector<double>> seen;
  auto add = [&](std::vector<double> p) {
    if (obs.study->is_taken(p) || !seen.insert(p).second) return;
    candidates.push_back(std::move(p));
  };
  for (const KnapsackSolution& s : front) {
    std::vector<double> p = zero;
    for (size_t g = 0; g < plan.groups.size(); ++g) {
      const GroupPlan& gp = plan.groups[g];
      const auto& idx = gp.options[static_cast<size_t>(s.choice[g])];
      for (size_t q = 0; q < gp.params.size(); ++q) {
        p[gp.params[q]] = space[gp.params[q]].dist.value_at(idx[q]);
      }
    }
    add(std::move(p));
  }
  // Phase e: neighbours of the measured front.
  std::vector<std::vector<double>> measured_loss;
  for (const auto& [params, loss] : obs.measured) measured_loss.push_back(loss);
  for (int i : pareto_filter(measured_loss)) {
    const std::vector<double>& base = obs.measured[i].first;
    for (const GroupPlan& g : plan.groups) {
      for (const auto& idx : g.options) {
        std::vector<double> p = base;
        for (size_t q = 0; q < g.params.size(); ++q) {
          p[g.params[q]] = space[g.params[q]].dist.value_at(idx[q]);
        }
        add(std::move(p));
      }
    }
    for (size_t j = 0; j < space.size(); ++j) {
      const int64_t k = space[j].dist.index_of(base[j]);
      for (int64_t step : {-1, 1}) {
        if (k + step < 0 || k + step >= space[j].dist.cardinality()) continue;
        std::vector<double> p = base;
        p[j] = space[j].dist.value_at(k + step);
        add(std::move(p));
      }
    }
  }
  const Correction corr = fit_correction(model, obs, m);
  const std::vector<double>& b = *model.base();
  // Anchors: measured configurations with their group options and raw predictions.
  struct Anchor {
    std::vector<std::vector<int64_t>> options;
    std::vector<double> pred, loss;
  };
  std::vector<Anchor> anchors;
  auto group_options = [&](const std::vector<double>& params) {
    std::vector<std::vector<int64_t>> o;
    for (const GroupPlan& g : plan.groups) o.push_back(model.indices(g, params));
    return o;
  };
  for (const auto& [params, loss] : obs.measured) {
    auto p = model.predict(params);
    if (p) anchors.push_back({group_options(params), std::move(*p), loss});
  }
  // The corrected prediction: from the nearest measured configuration when it differs in at
  // most kAnchorGroups groups (its measured value plus the model's difference: the interactions
  // it measured carry over), else the global correction.
  constexpr size_t kAnchorGroups = 2;
  auto corrected = [&](const std::vector<double>& params,
                       const std::vector<double>& pred) -> std::vector<double> {
    const auto opts = group_options(params);
    const Anchor* best = nullptr;
    size_t best_d = kAnchorGroups + 1;
    double best_gap = 0;
    for (const Anchor& a : anchors) {
      size_t d = 0;
      for (size_t g = 0; g < opts.size() && d < best_d + 1; ++g) d += opts[g] != a.options[g];
      if (d > best_d) continue;
      double gap = 0;
      for (size_t k = 0; k < m; ++k) gap += std::abs(pred[k] - a.pred[k]);
      if (d < best_d || gap < best_gap) best = &a, best_d = d, best_gap = gap;
    }
    if (!best) return corr.apply(pred, b);
    std::vector<double> c(m);
    for (size_t k = 0; k < m; ++k) {
      const double scale = model.from_table() ? corr.s[k] : 1.0;  // the table's units
      c[k] = best->loss[k] + scale * (pred[k] - best->pred[k]);
    }
    return c;
  };
  std::vector<std::vector<double>> cand_loss;
  std::vector<size_t> cand_index;
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto p = model.predict(candidates[i]);
    if (!p) continue;
    cand_loss.push_back(corrected(candidates[i], *p));
    cand_index.push_back(i);
  }
  if (cand_loss.empty()) return std::nullopt;
  // The reference set: measured values and RUNNING configurations at their corrected prediction.
  std::vector<std::vector<double>> ref_set = measured_loss;
  for (const auto& params : obs.running) {
    auto p = model.predict(params);
    if (p) ref_set.push_back(corrected(params, *p));
  }
  std::vector<double> lo(m, std::numeric_limits<double>::infinity()), hi(m, -lo[0]);
  // While probes remain, the completed probes widen the range too: the partial model's few
  // candidates would otherwise span the whole normalised box, and a candidate that is much
  // cheaper but slightly less accurate would tie with the costly one it improves on.
  std::vector<std::vector<double>> probe_set;
  if (std::find(obs.probe_taken.begin(), obs.probe_taken.end(), false) != obs.probe_taken.end()) {
    for (const auto& v : obs.probe_loss) {
      if (v) probe_set.push_back(*v);
    }
  }
  for (const auto* set : {&cand_loss, &ref_set, &probe_set}) {
    for (const auto& v : *set) {
      for (size_t k = 0; k < m; ++k) lo[k] = std::min(lo[k], v[k]), hi[k] = std::max(hi[k], v[k]);
    }
  }
  auto normal = [&](const std::vector<double>& v) {
    std::vector<double> n(m);
    for (size_t k = 0; k < m; ++k) {
      n[k] = hi[k] > lo[k] ? (v[k] - lo[k]) / (hi[k] - lo[k]) : 0.0;
    }
    return n;
  };
  Points front_pts(static_cast<int>(m));
  {
    std::vector<std::vector<double>> normed;
    for (const auto& v : ref_set) normed.push_back(normal(v));
    for (int i : pareto_filter(normed)) front_pts.push_back(normed[i]);
  }
  const std::vector<double> ref(m, 1.1);
  double best_score = -std::numeric_limits<double>::infinity();
  size_t best = 0;
  for (size_t c = 0; c < cand_loss.size(); ++c) {
    const std::vector<double> v = normal(cand_loss[c]);
    double escape = 0;
    for (int i = 0; i < front_pts.size(); ++i) {
      auto f = front_pts[i];
      bool weak = true;
      double gap = std::numeric_limits<double>::infinity();
      for (size_t k = 0; k < m; ++k) {
        weak = weak && f[k] <= v[k];
        gap = std::min(gap, v[k] - f[k]);
      }
      if (weak) escape = std::max(escape, gap);
    }
    double score = 0;
    bool dominated = false;
    for (int i = 0; i < front_pts.size() && !dominated; ++i) {
      dominated = std::equal(front_pts[i].begin(), front_pts[i].end(), v.begin(),
                             [](double f, double x) { return f <= x; });
    }
    if (!dominated) {
      score = m == 1 ? (front_pts.size() == 0 ? 1.1 - v[0] : front_pts[0][0] - v[0])
                     : hypervolume_contribution(v, front_pts, ref);
    } else {
      score = -escape;
    }
    if (score > best_score) {
      best_score = score;
      best = c;
    }
  }
  return candidates[cand_index[best]];
}

// A table covers every group with more than one option, exhaustively, in the study's objectives.
void check_table(const SensitivityTable& t, const SearchSpace& space,
                 const std::vector<Direction>& directions) {
  const std::string what = fmt::format("sensitivity sampler ({} table)", t.method);
  if (t.base.size() != directions.size()) {
    fail("{}: {} base values for {} objectives", what, t.base.size(), directions.size());
  }
  for (const ParamGroup& g : param_groups(space)) {
    std::vector<int64_t> card;
    for (int i : g.params) card.push_back(space[i].dist.cardinality());
    const int64_t n = product_saturated(card);
    if (n == 1) continue;
    if (n > kMaxGroupKnapsackOptions) {
      fail(
          "{}: group '{}' has {} options (more than {}); split its parameters into groups named "
          "'<group>/config/<field>' or use proxy = \"probe\"",
          what, g.name, n, kMaxGroupKnapsackOptions);
    }
    auto it = t.deltas.find(g.name);
    if (it == t.deltas.end() || static_cast<int64_t>(it->second.size()) != n) {
      fail("{}: no delta for each of the {} options of group '{}'", what, n, g.name);
    }
    for (const auto& d : it->second) {
      if (d.size() != directions.size()) {
        fail("{}: group '{}' has deltas for {} objectives, the study has {}", what, g.name,
             d.size(), directions.size());
      }
    }
  }
}

}  // namespace

// A memo of the last knapsack (a pure function of its input, so the sampler stays one too).
struct SensitivitySampler::Cache {
  std::mutex mu;
  bool valid = false;
  std::vector<double> key;
  std::vector<KnapsackSolution> front;
};

SensitivitySampler::SensitivitySampler(const SamplerOptions& options)
    : options_(options), cache_(std::make_shared<Cache>()) {
  if (options_.max_group_options < 1) {
    fail("sensitivity sampler: max_group_options must be at least 1, got {}",
         options_.max_group_options);
  }
}

void SensitivitySampler::check_space(const SearchSpace& space,
                                     const std::vector<Direction>& directions) const {
  try {
    space_size(space);
  } catch (Error& e) {
    e.add_context("while preparing the sensitivity sampler (it needs finite parameters)");
    throw;
  }
  if (const SensitivityTable* t = options_.sensitivity_table.get()) {
    check_table(*t, space, directions);
    return;
  }
  for (const ParamGroup& g : param_groups(space)) {
    std::vector<int64_t> n;
    for (int i : g.params) {
      const int64_t c = space[i].dist.cardinality();
      n.push_back(std::min<int64_t>(c, std::max(1, options_.max_group_options)));
    }
    if (product_saturated(n) > kMaxGroupKnapsackOptions) {
      fail(
          "sensitivity sampler: group '{}' has {} options to model (more than {}); split its "
          "parameters into groups named '<group>/config/<field>' or lower max_group_options",
          g.name, product_saturated(n), kMaxGroupKnapsackOptions);
    }
  }
}

std::vector<SensitivitySampler::Probe> SensitivitySampler::probes(const SearchSpace& space) const {
  const Plan plan = make_plan(space, options_);
  std::vector<Probe> out;
  for (int i : probe_order(plan, nullptr)) {
    out.push_back({plan.probes[i].label, plan.probes[i].params});
  }
  return out;
}

std::optional<std::vector<double>> SensitivitySampler::sample(const StudyView& study,
                                                              int trial_number) {
  std::optional<Proposal> p = propose(study, trial_number);
  if (!p) return std::nullopt;
  return std::move(p->params);
}

std::optional<Proposal> SensitivitySampler::propose(const StudyView& study, int trial_number) {
  const Plan plan = make_plan(study.space, options_);
  const Observed obs = observe(plan, study);
  const Model model(plan, study.space, obs, options_.sensitivity_table.get());
  auto from_model = [&]() -> std::optional<std::vector<double>> {
    if (!model.base()) return std::nullopt;
    // The knapsack depends only on the probes' results: solved once per distinct set of them.
    const Solver solve = [this](const std::vector<std::vector<KnapsackOption>>& items) {
      std::vector<double> key;
      for (const auto& g : items) {
        key.push_back(static_cast<double>(g.size()));
        for (const KnapsackOption& o : g) {
          key.push_back(o.id);
          key.insert(key.end(), o.cost.begin(), o.cost.end());
        }
      }
      {
        std::lock_guard<std::mutex> lock(cache_->mu);
        if (cache_->valid && cache_->key == key) return cache_->front;
      }
      std::vector<KnapsackSolution> front = pareto_knapsack(items);
      std::lock_guard<std::mutex> lock(cache_->mu);
      cache_->key = std::move(key);
      cache_->front = front;
      cache_->valid = true;
      return front;
    };
    return model_proposal(plan, study.space, obs, model, study.directions.size(), solve);
  };
  // Phase a: the first probe not taken, unless a full configuration is due (the partial model
  // proposes one: every group at an option whose effect is known).
  for (int i : probe_order(plan, &obs)) {
    if (obs.probe_taken[static_cast<size_t>(i)]) continue;
    if (!options_.probes_first && obs.configurations < configurations_due(plan, obs)) {
      if (auto params = from_model()) return Proposal{std::move(*params)};
    }
    return Proposal{plan.probes[i].params, {{kAttrProbe, plan.probes[i].label}}};
  }
  std::optional<std::vector<double>> params = from_model();
  if (!params) params = random_untaken(study.space, obs, options_.seed, trial_number);
  return Proposal{std::move(*params)};
}

}  // namespace qsearch::search
