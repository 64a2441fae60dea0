// The sensitivity sampler on a synthetic additive problem: probes, the exact front, probes hidden
// from other samplers and best_trials, n_jobs and resume.
#include "search/sensitivity_sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "core/error.h"
#include "search/memory_storage.h"
#include "search/multi_objective.h"
#include "search/samplers.h"
#include "search/space_util.h"
#include "search/study.h"

namespace qsearch::search {
namespace {

constexpr int kGroups = 3;

// Three layers, MASE-style names: "L<g>/config/a" (3 values) and "L<g>/config/b" (2 values).
SearchSpace layer_space() {
  SearchSpace s;
  for (int g = 0; g < kGroups; ++g) {
    s.push_back({"L" + std::to_string(g) + "/config/a", Distribution::int_range(0, 2)});
    s.push_back({"L" + std::to_string(g) + "/config/b", Distribution::int_range(0, 1)});
  }
  return s;
}

// An additive problem: minimise cost, maximise quality. A layer left "float" (outside a probe's
// group) costs 40 and loses nothing; a quantized layer costs and loses what its option says.
// Integer values with a non-monotone structure so the front is not trivial.
double layer_cost(int g, int a, int b) { return (a + 1) * (b + 2) + g; }
double layer_loss(int g, int a, int b) {
  return ((2 - a) * (3 + g) + (1 - b) * (2 + 2 * g)) % 7 + (2 - a);
}

std::vector<double> additive_objective(const FrozenTrial& t) {
  auto probe = t.system_attrs.find(kAttrProbe);
  double cost = 0, quality = 100;
  for (int g = 0; g < kGroups; ++g) {
    const std::string name = "L" + std::to_string(g);
    const bool quantized = probe == t.system_attrs.end() || probe->second == name;
    if (!quantized) {
      cost += 40;
      continue;
    }
    const int a = static_cast<int>(t.params[2 * g]), b = static_cast<int>(t.params[2 * g + 1]);
    cost += layer_cost(g, a, b);
    quality -= layer_loss(g, a, b);
  }
  return {cost, quality};
}

const std::vector<Direction> kDirs = {Direction::kMinimize, Direction::kMaximize};

// The distinct non-dominated value vectors of the whole space.
std::set<std::vector<double>> true_front() {
  const SearchSpace space = layer_space();
  std::vector<std::vector<double>> values;
  Points loss(2);
  for (uint64_t i = 0; i < space_size(space); ++i) {
    FrozenTrial t;
    t.params = decode_config(space, i);
    values.push_back(additive_objective(t));
    loss.push_back(to_loss(values.back(), kDirs));
  }
  std::set<std::vector<double>> front;
  for (int i : pareto_front(loss)) front.insert(values[i]);
  return front;
}

Study make_study(std::shared_ptr<InMemoryStorage> storage, uint64_t seed,
                 std::unique_ptr<Sampler> sampler = nullptr) {
  if (!sampler) sampler = make_sampler("sensitivity", {.seed = seed});
  return Study::create(storage, "s", kDirs, layer_space(), std::move(sampler));
}

Objective objective() {
  return [](const FrozenTrial& t) { return ObjectiveResult{additive_objective(t), {}}; };
}

TEST(SensitivitySampler, GroupsByLayerKey) {
  EXPECT_EQ(param_group_name("fc1/config/weight_width"), "fc1");
  EXPECT_EQ(param_group_name("a/b/config/c/config/d"), "a/b/config/c");
  EXPECT_EQ(param_group_name("net/x"), "net");
  EXPECT_EQ(param_group_name("x"), "x");
  const auto groups = param_groups(layer_space());
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[1].name, "L1");
  EXPECT_EQ(groups[1].params, (std::vector<int>{2, 3}));
}

TEST(SensitivitySampler, ProbesFirstThenTheExactFrontOfAnAdditiveProblem) {
  const std::set<std::vector<double>> front = true_front();
  const int n_probes = 1 + kGroups * 6;
  for (uint64_t seed : {0, 1, 2}) {
    auto storage = std::make_shared<InMemoryStorage>();
    Study study = make_study(storage, seed);
    study.optimize(objective(), {.n_trials = n_probes + static_cast<int>(front.size())});
    const auto trials = study.trials();
    ASSERT_EQ(trials.size(), n_probes + front.size());
    std::set<std::pair<std::string, std::vector<double>>> probes;
    for (int i = 0; i < n_probes; ++i) {
      ASSERT_TRUE(is_probe(trials[i])) << "trial " << i;
      EXPECT_TRUE(probes.insert({trials[i].system_attrs.at(kAttrProbe), trials[i].params}).second);
    }
    EXPECT_EQ(trials[0].system_attrs.at(kAttrProbe), kProbeBase);
    // Then exactly the true front, each configuration once.
    std::set<std::vector<double>> measured, configs;
    for (size_t i = n_probes; i < trials.size(); ++i) {
      EXPECT_FALSE(is_probe(trials[i]));
      EXPECT_TRUE(configs.insert(trials[i].params).second);
      measured.insert(trials[i].values);
    }
    EXPECT_EQ(measured, front) << "seed " << seed;
    // best_trials never holds a probe (the base probe costs 120 at quality 100: non-dominated).
    for (const FrozenTrial& t : study.best_trials()) EXPECT_FALSE(is_probe(t));
  }
}

// Records the history other samplers are shown.
class SpySampler final : public Sampler {
 public:
  explicit SpySampler(std::vector<FrozenTrial>* seen) : seen_(seen) {}
  std::string name() const override { return "spy"; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override {
    *seen_ = study.history;
    return RandomSampler(0).sample(study, trial_number);
  }

 private:
  std::vector<FrozenTrial>* seen_;
};

TEST(SensitivitySampler, ProbesAreHiddenFromOtherSamplersAndCountAsTrials) {
  auto storage = std::make_shared<InMemoryStorage>();
  {
    Study study = make_study(storage, 0);
    study.optimize(objective(), {.n_trials = 25});  // 19 probes + 6 configurations
  }
  std::vector<FrozenTrial> seen;
  Study other = make_study(storage, 0, std::make_unique<SpySampler>(&seen));
  auto t = other.ask();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->number, 25);  // the probes are trials
  EXPECT_EQ(seen.size(), 6u);
  for (const FrozenTrial& s : seen) EXPECT_FALSE(is_probe(s));
  EXPECT_FALSE(is_probe(*t));
  other.tell(*t, TrialState::kComplete, additive_objective(*t));
  // n_trials counts probes: the study is already at 26.
  EXPECT_EQ(other.optimize(objective(), {.n_trials = 26}).started, 0);
}

TEST(SensitivitySampler, ThreeJobsNeverRepeatAProbeOrAConfiguration) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, 3);
  study.optimize(objective(), {.n_trials = 60, .n_jobs = 3});
  std::set<std::pair<std::string, std::vector<double>>> seen;
  int probes = 0;
  for (const FrozenTrial& t : study.trials()) {
    auto it = t.system_attrs.find(kAttrProbe);
    probes += it != t.system_attrs.end();
    EXPECT_TRUE(seen.insert({it == t.system_attrs.end() ? "" : it->second, t.params}).second)
        << "trial " << t.number;
    EXPECT_EQ(t.state, TrialState::kComplete);
  }
  EXPECT_EQ(probes, 19);
  EXPECT_EQ(study.trials().size(), 60u);
}

TEST(SensitivitySampler, ResumedStudyContinuesAsIfNeverStopped) {
  auto full = std::make_shared<InMemoryStorage>();
  make_study(full, 5).optimize(objective(), {.n_trials = 45});
  auto part = std::make_shared<InMemoryStorage>();
  make_study(part, 5).optimize(objective(), {.n_trials = 12});  // inside the probes
  make_study(part, 5).optimize(objective(), {.n_trials = 30});  // fresh sampler objects
  make_study(part, 5).optimize(objective(), {.n_trials = 45});
  const auto a = make_study(full, 5).trials(), b = make_study(part, 5).trials();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].params, b[i].params) << "trial " << i;
    EXPECT_EQ(a[i].system_attrs.count(kAttrProbe), b[i].system_attrs.count(kAttrProbe));
  }
}

TEST(SensitivitySampler, InterruptedProbeIsReProposedAsAProbe) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, 0);
  auto first = study.ask();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->system_attrs.at(kAttrProbe), kProbeBase);
  storage->finish_trial(first->id, TrialState::kFail, {}, {}, {{kAttrInterrupted, "1"}});
  auto again = study.ask();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->system_attrs.at(kAttrProbe), kProbeBase);
  EXPECT_EQ(again->params, first->params);
}

TEST(SensitivitySampler, LargeGroupsAreProbedOneParameterAtATime) {
  // A 10 x 10 x 10 group: above a cap of 64 options, so top + 9 + 9 + 9 probes; with a cap of 4
  // each parameter is probed at 4 evenly spaced indices (3 besides the top).
  SearchSpace space;
  for (const char* f : {"x", "y", "z"}) {
    space.push_back({std::string("g/config/") + f, Distribution::int_range(0, 9)});
  }
  SensitivitySampler wide({.seed = 0, .max_group_options = 64});
  EXPECT_EQ(wide.probes(space).size(), 1u + 1 + 27);
  SensitivitySampler narrow({.seed = 0, .max_group_options = 4});
  const auto p = narrow.probes(space);
  ASSERT_EQ(p.size(), 1u + 1 + 9);
  EXPECT_EQ(p[1].params, (std::vector<double>{9, 9, 9}));  // the top comes first
  std::set<double> xs;
  for (size_t i = 2; i < p.size(); ++i) {
    if (p[i].params[1] == 9 && p[i].params[2] == 9) xs.insert(p[i].params[0]);
  }
  EXPECT_EQ(xs, (std::set<double>{0, 3, 6}));
  // The study still runs past the probes (the model interpolates the other indices).
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "g", {Direction::kMinimize, Direction::kMinimize}, space,
                              make_sampler("sensitivity", {.max_group_options = 4}));
  study.optimize(
      [](const FrozenTrial& t) {
        const bool base =
            t.system_attrs.count(kAttrProbe) && t.system_attrs.at(kAttrProbe) == kProbeBase;
        const double s = base ? 30 : t.params[0] + t.params[1] + t.params[2];
        return ObjectiveResult{{s, base ? 0 : 27 - s + 0.1 * t.params[0]}, {}};
      },
      {.n_trials = 30});
  EXPECT_EQ(study.trials().size(), 30u);
}

TEST(SensitivitySampler, AFailedProbeRulesItsOptionOut) {
  // L1 at a = 2, b = 1 cannot run (e.g. an accumulator the int engine refuses): its probe FAILs,
  // and no configuration using that option is proposed afterwards.
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_study(storage, 0);
  study.optimize(
      [](const FrozenTrial& t) {
        auto probe = t.system_attrs.find(kAttrProbe);
        const bool l1_quantized = probe == t.system_attrs.end() || probe->second == "L1";
        if (l1_quantized && t.params[2] == 2 && t.params[3] == 1) {
          throw std::runtime_error("accumulator too wide");
        }
        return ObjectiveResult{additive_objective(t), {}};
      },
      {.n_trials = 19 + 30});
  const auto trials = study.trials();
  ASSERT_EQ(trials.size(), 49u);
  int failed_probes = 0;
  for (const FrozenTrial& t : trials) {
    if (is_probe(t)) {
      failed_probes += t.state == TrialState::kFail;
      continue;
    }
    EXPECT_FALSE(t.params[2] == 2 && t.params[3] == 1) << "trial " << t.number;
  }
  EXPECT_EQ(failed_probes, 1);
}

TEST(SensitivitySampler, NeverBlocksWhileProbesRunElsewhere) {
  // Every probe handed out, some still RUNNING (other workers): a configuration is proposed from
  // the probes completed so far (or at random), never nothing and never a probe again.
  const SearchSpace space = layer_space();
  SensitivitySampler sampler({.seed = 4});
  std::vector<FrozenTrial> history;
  for (const auto& p : sampler.probes(space)) {
    FrozenTrial t;
    t.id = t.number = static_cast<int>(history.size());
    t.params = p.params;
    t.system_attrs[kAttrProbe] = p.label;
    t.state = t.number % 3 == 2 ? TrialState::kRunning : TrialState::kComplete;
    if (t.state == TrialState::kComplete) t.values = additive_objective(t);
    history.push_back(t);
  }
  for (bool base_running : {false, true}) {
    history[0].state = base_running ? TrialState::kRunning : TrialState::kComplete;
    if (base_running) history[0].values.clear();
    const StudyView view{space, kDirs, history};
    auto p = sampler.propose(view, static_cast<int>(history.size()));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->system_attrs.count(kAttrProbe), 0u);
  }
}

TEST(SensitivitySampler, RefusesContinuousParameters) {
  SearchSpace space = {{"f", Distribution::float_range(0, 1)}};
  EXPECT_THROW(Study::create(std::make_shared<InMemoryStorage>(), "c", kDirs, space,
                             make_sampler("sensitivity", {})),
               Error);
}

}  // namespace
}  // namespace qsearch::search
