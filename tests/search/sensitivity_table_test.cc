// The sensitivity sampler with a precomputed table (SamplerOptions::sensitivity_table, what the
// Fisher / Hessian proxies give it) instead of probe trials: no probe is proposed, the knapsack /
// correction / local search run unchanged, and the table is checked against the space.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/error.h"
#include "search/memory_storage.h"
#include "search/multi_objective.h"
#include "search/sensitivity_sampler.h"
#include "search/space_util.h"
#include "search/study.h"

namespace qsearch::search {
namespace {

constexpr int kGroups = 3;
const std::string kNames[kGroups] = {"L0", "L1", "L2"};

// Three layers "L<g>/config/a" (3 values) and "L<g>/config/b" (2 values).
SearchSpace layer_space() {
  SearchSpace s;
  for (int g = 0; g < kGroups; ++g) {
    s.push_back({kNames[g] + "/config/a", Distribution::int_range(0, 2)});
    s.push_back({kNames[g] + "/config/b", Distribution::int_range(0, 1)});
  }
  return s;
}

// Additive: minimise cost, maximise quality; the "float" base costs 40 per layer and loses
// nothing (as a probe would measure it).
double layer_cost(int g, int a, int b) { return (a + 1) * (b + 2) + g; }
double layer_loss(int g, int a, int b) {
  return ((2 - a) * (3 + g) + (1 - b) * (2 + 2 * g)) % 7 + (2 - a);
}

std::vector<double> additive(const std::vector<double>& params) {
  double cost = 0, quality = 100;
  for (int g = 0; g < kGroups; ++g) {
    const int a = static_cast<int>(params[2 * g]), b = static_cast<int>(params[2 * g + 1]);
    cost += layer_cost(g, a, b);
    quality -= layer_loss(g, a, b);
  }
  return {cost, quality};
}

const std::vector<Direction> kDirs = {Direction::kMinimize, Direction::kMaximize};

// The table a perfect proxy would give: base = every layer float, deltas in loss space, options
// in mixed radix (a fastest). `quality_scale` distorts the quality deltas (a proxy in other units).
std::shared_ptr<const SensitivityTable> exact_table(double quality_scale = 1.0) {
  auto t = std::make_shared<SensitivityTable>();
  t->method = "test";
  t->base = to_loss(std::vector<double>{40.0 * kGroups, 100}, kDirs);
  for (int g = 0; g < kGroups; ++g) {
    auto& d = t->deltas[kNames[g]];
    for (int b = 0; b < 2; ++b) {
      for (int a = 0; a < 3; ++a) {
        d.push_back({layer_cost(g, a, b) - 40, quality_scale * layer_loss(g, a, b)});
      }
    }
  }
  return t;
}

std::set<std::vector<double>> true_front() {
  const SearchSpace space = layer_space();
  std::vector<std::vector<double>> values;
  Points loss(2);
  for (uint64_t i = 0; i < space_size(space); ++i) {
    values.push_back(additive(decode_config(space, i)));
    loss.push_back(to_loss(values.back(), kDirs));
  }
  std::set<std::vector<double>> front;
  for (int i : pareto_front(loss)) front.insert(values[i]);
  return front;
}

Objective objective() {
  return [](const FrozenTrial& t) {
    EXPECT_FALSE(is_probe(t)) << "trial " << t.number;
    return ObjectiveResult{additive(t.params), {}};
  };
}

Study make_study(std::shared_ptr<InMemoryStorage> storage, uint64_t seed,
                 std::shared_ptr<const SensitivityTable> table) {
  SamplerOptions o;
  o.seed = seed;
  o.sensitivity_table = std::move(table);
  return Study::create(storage, "s", kDirs, layer_space(), make_sampler("sensitivity", o));
}

TEST(SensitivityTable, NoProbeAndTheExactFrontFirst) {
  const std::set<std::vector<double>> front = true_front();
  for (uint64_t seed : {0, 1}) {
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = make_study(storage, seed, exact_table());
    // Fewer options per group than max_group_options would allow: still no probe.
    EXPECT_TRUE(SensitivitySampler({.seed = seed, .sensitivity_table = exact_table()})
                    .probes(layer_space())
                    .empty());
    study.optimize(objective(), {.n_trials = static_cast<int>(front.size())});
    std::set<std::vector<double>> measured, configs;
    for (const FrozenTrial& t : study.trials()) {
      EXPECT_FALSE(is_probe(t));
      EXPECT_TRUE(configs.insert(t.params).second);
      measured.insert(t.values);
    }
    EXPECT_EQ(measured, front) << "seed " << seed;
  }
}

TEST(SensitivityTable, OtherUnitsStillReachTheFront) {
  // A proxy in other units (quality deltas x 0.01): the knapsack's front is the same, and the
  // search still finds every front point within the space's size, never repeating.
  const std::set<std::vector<double>> front = true_front();
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, 0, exact_table(0.01));
  study.optimize(objective(), {.n_trials = static_cast<int>(front.size()) + 10});
  std::set<std::vector<double>> measured;
  for (const FrozenTrial& t : study.trials()) measured.insert(t.values);
  for (const auto& f : front) EXPECT_TRUE(measured.count(f)) << f[0] << ", " << f[1];
}

TEST(SensitivityTable, ThreeJobsAndResumeNeverRepeat) {
  auto storage = std::make_shared<InMemoryStorage>();
  {
    Study study = make_study(storage, 3, exact_table());
    study.optimize(objective(), {.n_trials = 20, .n_jobs = 3});
  }
  Study resumed = make_study(storage, 3, exact_table());
  resumed.optimize(objective(), {.n_trials = 40, .n_jobs = 2});
  std::set<std::vector<double>> seen;
  for (const FrozenTrial& t : resumed.trials()) {
    EXPECT_FALSE(is_probe(t));
    EXPECT_TRUE(seen.insert(t.params).second) << "trial " << t.number;
  }
  EXPECT_EQ(seen.size(), 40u);
}

TEST(SensitivityTable, ATableThatDoesNotFitTheSpaceIsRefused) {
  auto missing = std::make_shared<SensitivityTable>(*exact_table());
  missing->deltas.erase("L1");
  auto storage = std::make_shared<InMemoryStorage>();
  try {
    make_study(storage, 0, missing);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group 'L1'"), std::string::npos) << e.what();
  }
  auto short_rows = std::make_shared<SensitivityTable>(*exact_table());
  short_rows->deltas["L2"].pop_back();
  EXPECT_THROW(make_study(storage, 0, short_rows), Error);
  auto one_objective = std::make_shared<SensitivityTable>(*exact_table());
  one_objective->base = {1.0};
  EXPECT_THROW(make_study(storage, 0, one_objective), Error);
}

}  // namespace
}  // namespace qsearch::search
