// Sampler conformance suite: what every Sampler must do, whatever its algorithm.
//
// Instantiate it with one SamplerCase per sampler configuration:
//
//   INSTANTIATE_TEST_SUITE_P(Tpe, SamplerConformance,
//       ::testing::Values(SamplerCase{"tpe", {.seed = 0, .n_startup_trials = 5}}),
//       [](const auto& info) { return info.param.label(); });
//
// Checks: samples lie in every kind of distribution (int with step and log, float continuous,
// log and stepped, categorical, single-valued) during a full study; the same seed and history
// give the same params (twice on one object, and on a fresh object); another seed gives another
// sequence; histories with FAIL and RUNNING trials (and NaN/inf values) are tolerated; 2 and 3
// objectives with mixed directions work; on a tiny finite space n_trials = its size gives every
// configuration exactly once (n_jobs 1 and 3) and more trials stop the study exhausted.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "search/configuration.h"
#include "search/memory_storage.h"
#include "search/sampler.h"
#include "search/study.h"

namespace qsearch::search::conformance {

struct SamplerCase {
  std::string name;
  SamplerOptions options;
  bool finite_only = false;  // brute force: no continuous floats
  std::string label() const {
    std::string l = name + "_seed" + std::to_string(options.seed);
    if (options.multivariate) l += "_multivariate";
    if (options.constant_liar) l += "_liar";
    if (options.stall_window == 0) l += "_noescape";
    return l;
  }
};

inline SearchSpace conformance_space(bool finite_only) {
  SearchSpace s = {
      {"idx", Distribution::int_range(0, 2)},
      {"int_step", Distribution::int_range(-3, 7, 2)},
      {"int_log", Distribution::int_range(1, 1000, 1, true)},
      {"float_step", Distribution::float_range(0, 1, false, 0.25)},
      {"cat", Distribution::categorical({"integer", "NA", "fixed", "minifloat"})},
      {"single", Distribution::int_range(4, 4)},
  };
  if (!finite_only) {
    s.push_back({"float", Distribution::float_range(-1, 1)});
    s.push_back({"float_log", Distribution::float_range(1e-4, 1, true)});
  }
  return s;
}

// A deterministic objective with structure in every parameter.
inline std::vector<double> conformance_objective(const std::vector<double>& p, int n_objectives) {
  double a = 0, b = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double x = std::isfinite(p[i]) ? p[i] : 0;
    a += std::fabs(std::sin(1.3 * (i + 1) * x));
    b += std::fabs(std::cos(0.7 * (i + 2) * x)) * (i % 2 ? 1 : 2);
  }
  std::vector<double> v{a, b, a - b};
  v.resize(n_objectives);
  return v;
}

class SamplerConformance : public ::testing::TestWithParam<SamplerCase> {
 protected:
  std::unique_ptr<Sampler> make(uint64_t seed) const {
    SamplerOptions o = GetParam().options;
    o.seed = seed;
    return make_sampler(GetParam().name, o);
  }
  SearchSpace space() const { return conformance_space(GetParam().finite_only); }

  // Runs a study and returns the params of every trial.
  std::vector<std::vector<double>> run(uint64_t seed, std::vector<Direction> dirs, int n) const {
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = Study::create(storage, "c", dirs, space(), make(seed));
    const int n_obj = static_cast<int>(dirs.size());
    study.optimize(
        [n_obj](const FrozenTrial& t) {
          if (t.number % 7 == 3) throw std::runtime_error("a failing configuration");
          return ObjectiveResult{conformance_objective(t.params, n_obj), {}};
        },
        {.n_trials = n});
    std::vector<std::vector<double>> params;
    for (const FrozenTrial& t : study.trials()) params.push_back(t.params);
    return params;
  }

  void expect_in_space(const std::vector<double>& params) const {
    expect_in_space_of(space(), params);
  }
  static void expect_in_space_of(const SearchSpace& s, const std::vector<double>& params) {
    ASSERT_EQ(params.size(), s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      EXPECT_TRUE(s[i].dist.contains(params[i])) << s[i].name << " = " << params[i];
    }
  }
};

TEST_P(SamplerConformance, SamplesLieInEveryKindOfDistribution) {
  const auto params = run(1, {Direction::kMinimize}, 70);
  ASSERT_EQ(params.size(), 70u);
  for (const auto& p : params) expect_in_space(p);
  // Every categorical choice and both ends of the index param show up over 70 trials.
  std::vector<int> cat(4, 0), idx(3, 0);
  for (const auto& p : params) ++cat[static_cast<int>(p[4])], ++idx[static_cast<int>(p[0])];
  for (int c : cat) EXPECT_GT(c, 0);
  for (int c : idx) EXPECT_GT(c, 0);
}

TEST_P(SamplerConformance, SameSeedAndHistoryGiveTheSameParams) {
  const auto a = run(7, {Direction::kMaximize}, 40);
  const auto b = run(7, {Direction::kMaximize}, 40);
  EXPECT_EQ(a, b);
  // Pure function of the history: asking twice, or asking a fresh object, changes nothing.
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "c", {Direction::kMinimize}, space(), make(7));
  study.optimize(
      [](const FrozenTrial& t) {
        return ObjectiveResult{conformance_objective(t.params, 1), {}};
      },
      {.n_trials = 30});
  const std::vector<FrozenTrial> history = study.trials();
  const SearchSpace s = space();
  const std::vector<Direction> dirs{Direction::kMinimize};
  const StudyView view{s, dirs, history};
  auto one = make(7), other = make(7);
  const auto first = one->sample(view, 30);
  EXPECT_EQ(one->sample(view, 30), first);
  EXPECT_EQ(other->sample(view, 30), first);
}

TEST_P(SamplerConformance, DifferentSeedsGiveDifferentSequences) {
  EXPECT_NE(run(1, {Direction::kMinimize}, 30), run(2, {Direction::kMinimize}, 30));
}

TEST_P(SamplerConformance, ToleratesFailedRunningAndNonFiniteTrials) {
  const SearchSpace s = space();
  const std::vector<Direction> dirs{Direction::kMinimize};
  auto sampler = make(3);
  std::vector<FrozenTrial> history;
  for (int t = 0; t < 90; ++t) {
    const StudyView view{s, dirs, history};
    auto params = sampler->sample(view, t);
    if (!params) break;  // a finite space may run out
    expect_in_space(*params);
    FrozenTrial trial;
    trial.id = trial.number = t;
    trial.params = *params;
    switch (t % 5) {
      case 0:
        trial.state = TrialState::kFail;
        trial.system_attrs[kAttrFailReason] = "boom";
        break;
      case 1:
        trial.state = TrialState::kRunning;
        break;
      case 2:
        trial.state = TrialState::kFail;
        trial.system_attrs[kAttrInterrupted] = "1";
        break;
      default:
        trial.state = TrialState::kComplete;
        trial.values = conformance_objective(trial.params, 1);
        if (t % 11 == 4) trial.values[0] = INFINITY;
    }
    history.push_back(trial);
  }
  EXPECT_GE(history.size(), 50u);
}

TEST_P(SamplerConformance, ToleratesSeveralObjectives) {
  for (const auto& p : run(4, {Direction::kMinimize, Direction::kMaximize}, 60)) expect_in_space(p);
  const auto three = run(5, {Direction::kMaximize, Direction::kMinimize, Direction::kMaximize}, 60);
  ASSERT_EQ(three.size(), 60u);
  for (const auto& p : three) expect_in_space(p);
}

// 3 x 2 x 3 = 18 configurations (and a single-valued parameter).
inline SearchSpace tiny_space() {
  return {{"a", Distribution::int_range(0, 2)},
          {"b", Distribution::categorical({"x", "y"})},
          {"c", Distribution::float_range(0, 1, false, 0.5)},
          {"single", Distribution::int_range(4, 4)}};
}

// Issue 9 item 1: a configuration is evaluated at most once, whatever the sampler proposes.
TEST_P(SamplerConformance, EveryConfigurationOfATinySpaceExactlyOnce) {
  for (int jobs : {1, 3}) {
    SCOPED_TRACE(::testing::Message() << "n_jobs " << jobs);
    SamplerOptions o = GetParam().options;
    o.seed = 11;
    o.n_startup_trials = std::min(o.n_startup_trials, 4);
    o.population_size = std::min(o.population_size, 6);
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = Study::create(storage, "tiny", {Direction::kMinimize, Direction::kMaximize},
                                tiny_space(), make_sampler(GetParam().name, o));
    std::mutex mu;
    std::multiset<std::string> evaluated;
    const OptimizeSummary sum = study.optimize(
        [&](const FrozenTrial& t) {
          {
            std::lock_guard<std::mutex> lock(mu);
            evaluated.insert(configuration_key(t));  // a probe (sensitivity) is its own key
          }
          return ObjectiveResult{conformance_objective(t.params, 2), {}};
        },
        {.n_trials = 18, .n_jobs = jobs});
    EXPECT_EQ(sum.started, 18);
    EXPECT_EQ(evaluated.size(), 18u);
    EXPECT_EQ(std::set<std::string>(evaluated.begin(), evaluated.end()).size(), 18u);
    for (const FrozenTrial& t : study.trials()) expect_in_space_of(tiny_space(), t.params);
  }
}

TEST_P(SamplerConformance, MoreTrialsThanTheSpaceStopTheStudyExhausted) {
  for (int jobs : {1, 3}) {
    SCOPED_TRACE(::testing::Message() << "n_jobs " << jobs);
    SamplerOptions o = GetParam().options;
    o.seed = 5;
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = Study::create(storage, "tiny", {Direction::kMinimize}, tiny_space(),
                                make_sampler(GetParam().name, o));
    const OptimizeSummary sum = study.optimize(
        [](const FrozenTrial& t) {
          if (t.number % 5 == 2) throw std::runtime_error("a failing configuration is taken too");
          return ObjectiveResult{conformance_objective(t.params, 1), {}};
        },
        {.n_trials = 30, .n_jobs = jobs});
    EXPECT_TRUE(sum.exhausted);
    // Every configuration once, plus the probes of a sampler that makes them (each once too).
    std::set<std::string> keys, configurations;
    int probes = 0;
    for (const FrozenTrial& t : study.trials()) {
      keys.insert(configuration_key(t));
      if (is_probe(t)) {
        ++probes;
      } else {
        configurations.insert(configuration_key(t));
      }
    }
    EXPECT_EQ(configurations.size(), 18u);
    EXPECT_EQ(sum.started, 18 + probes);
    EXPECT_EQ(keys.size(), 18u + probes);
    EXPECT_EQ(study.trials().size(), 18u + probes);
  }
}

}  // namespace qsearch::search::conformance
