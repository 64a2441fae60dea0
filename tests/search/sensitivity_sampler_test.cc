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
  // A 10 x 10 x 10 group: above a cap of 64 options, so probed one parameter at a time: the top,
  // the main parameter (x: the most values, first on ties) at its 9 other values, y and z at
  // their 9 other values with x at the top, and again with x at its lowest index. With a cap of 4
  // each parameter is probed at 4 evenly spaced indices (3 besides the top): 1 + 3 + 2 x 2 x 3.
  SearchSpace space;
  for (const char* f : {"x", "y", "z"}) {
    space.push_back({std::string("g/config/") + f, Distribution::int_range(0, 9)});
  }
  SensitivitySampler wide({.seed = 0, .max_group_options = 64});
  EXPECT_EQ(wide.probes(space).size(), 1u + 1 + 9 + 2 * 2 * 9);
  SensitivitySampler narrow({.seed = 0, .max_group_options = 4});
  const auto p = narrow.probes(space);
  ASSERT_EQ(p.size(), 1u + 1 + 3 + 2 * 2 * 3);
  EXPECT_EQ(p[1].params, (std::vector<double>{9, 9, 9}));  // the top comes first
  std::set<double> xs;
  for (size_t i = 2; i < p.size(); ++i) {
    if (p[i].params[1] == 9 && p[i].params[2] == 9) xs.insert(p[i].params[0]);
  }
  EXPECT_EQ(xs, (std::set<double>{0, 3, 6}));
  std::set<std::vector<double>> low;  // y or z moved with x at its lowest index
  for (size_t i = 2; i < p.size(); ++i) {
    if (p[i].params[0] == 0 && (p[i].params[1] != 9 || p[i].params[2] != 9)) {
      low.insert(p[i].params);
    }
  }
  EXPECT_EQ(low, (std::set<std::vector<double>>{
                     {0, 0, 9}, {0, 3, 9}, {0, 6, 9}, {0, 9, 0}, {0, 9, 3}, {0, 9, 6}}));
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

// Per-parameter groups (24 options each, above the default cap of 16): three layers "W<g>"
// with w = width index {0..5}, f = fractional index {0, 1} and d = input width index {0, 1}, of
// kWeights[g] weights each. A probe leaves the other layers float (32 bits, no loss). Widths
// interact with the fractional index: at the lowest width f = 1 loses 4 and f = 0 only 0.1, at
// the top width f does not matter. So a model that measures f only at the top width (every
// other parameter at its top) predicts the cheap, accurate option (w 0, f 0) to lose 4.
constexpr int kWideGroups = 3;
constexpr double kWeights[kWideGroups] = {1, 10, 3};  // W1 costs most, then W2, then W0

SearchSpace wide_space() {
  SearchSpace s;
  for (int g = 0; g < kWideGroups; ++g) {
    const std::string k = "W" + std::to_string(g) + "/config/";
    s.push_back({k + "d", Distribution::int_range(0, 1)});
    s.push_back({k + "w", Distribution::int_range(0, 5)});
    s.push_back({k + "f", Distribution::int_range(0, 1)});
  }
  return s;
}

std::vector<double> wide_objective(const FrozenTrial& t) {
  constexpr double kBits[6] = {2, 3, 4, 5, 6, 8};
  auto probe = t.system_attrs.find(kAttrProbe);
  double cost = 0, quality = 100;
  for (int g = 0; g < kWideGroups; ++g) {
    const bool quantized =
        probe == t.system_attrs.end() || probe->second == "W" + std::to_string(g);
    if (!quantized) {
      cost += 32 * kWeights[g];
      continue;
    }
    const int d = static_cast<int>(t.params[3 * g]), w = static_cast<int>(t.params[3 * g + 1]),
              f = static_cast<int>(t.params[3 * g + 2]);
    cost += kBits[w] * kWeights[g];
    quality -= (d == 0 ? 5 : 0) + (w == 0 ? (f == 1 ? 4 : 0.1) : 0.05 * (5 - w));
  }
  return {cost, quality};
}

Study make_wide_study(std::shared_ptr<InMemoryStorage> storage, uint64_t seed) {
  return Study::create(storage, "w", kDirs, wide_space(),
                       make_sampler("sensitivity", {.seed = seed}));
}

Objective wide() {
  return [](const FrozenTrial& t) { return ObjectiveResult{wide_objective(t), {}}; };
}

std::string probe_label(const FrozenTrial& t) {
  auto it = t.system_attrs.find(kAttrProbe);
  return it == t.system_attrs.end() ? "" : it->second;
}

TEST(SensitivitySampler, ProbesTheCostliestGroupsCheapEndFirstThenProposesAConfiguration) {
  // Base, every group's top; then, costliest group first (W1, then W2), the cheap end: the main
  // parameter (w, the most values) at its lowest index, and d and f moved there. Once two
  // groups' cheap ends are known, a full configuration comes before the remaining probes: W1 and
  // W2 at their cheap, accurate option (d 1, w 0, f 0), which only the probes at the lowest width
  // reveal, and W0 at its top.
  for (uint64_t seed : {0, 1}) {
    auto storage = std::make_shared<InMemoryStorage>();
    make_wide_study(storage, seed).optimize(wide(), {.n_trials = 11});
    const auto t = make_wide_study(storage, seed).trials();
    ASSERT_EQ(t.size(), 11u);
    const std::vector<std::string> labels = {"base", "W0", "W1", "W2", "W1", "W1",
                                             "W1",   "W2", "W2", "W2", ""};
    for (size_t i = 0; i < t.size(); ++i) {
      EXPECT_EQ(probe_label(t[i]), labels[i]) << "trial " << i << ", seed " << seed;
    }
    for (int i : {1, 2, 3}) {  // tops: d 1, w 5, f 1
      const int g = i - 1;
      EXPECT_EQ(std::vector<double>(t[i].params.begin() + 3 * g, t[i].params.begin() + 3 * g + 3),
                (std::vector<double>{1, 5, 1}));
    }
    EXPECT_EQ(t[4].params[4], 0) << "W1's first stage-1 probe: w at its lowest index";
    EXPECT_EQ(t[10].params, (std::vector<double>{1, 5, 1, /*W1*/ 1, 0, 0, /*W2*/ 1, 0, 0}));
  }
}

TEST(SensitivitySampler, ProbesFirstKeepsEveryProbeBeforeTheFirstConfiguration) {
  // probes_first (`qsearch sensitivity`): the 31 probes (the base and 10 per layer), then
  // configurations; without it a configuration comes at trial 10.
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "w", kDirs, wide_space(),
                              make_sampler("sensitivity", {.probes_first = true}));
  study.optimize(wide(), {.n_trials = 33});
  const auto t = study.trials();
  ASSERT_EQ(t.size(), 33u);
  for (size_t i = 0; i < t.size(); ++i) EXPECT_EQ(is_probe(t[i]), i < 31) << "trial " << i;
}

TEST(SensitivitySampler, PerParameterGroupsFindTheExactFrontOfAnInteractingProblem) {
  // The model with both ends of the main parameter is exact for this problem's interaction
  // (only at the lowest width does f matter), so every configuration proposed after the probes
  // completes the true front quickly; no configuration or probe is proposed twice.
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = make_wide_study(storage, 0);
  study.optimize(wide(), {.n_trials = 120});
  std::set<std::pair<std::string, std::vector<double>>> seen;
  Points loss(2);
  std::vector<std::vector<double>> values;
  for (const FrozenTrial& t : study.trials()) {
    EXPECT_TRUE(seen.insert({probe_label(t), t.params}).second) << "trial " << t.number;
    if (is_probe(t)) continue;
    values.push_back(t.values);
  }
  // The true front over the 24^3 configurations.
  const SearchSpace space = wide_space();
  Points all(2);
  std::vector<std::vector<double>> all_values;
  for (uint64_t i = 0; i < space_size(space); ++i) {
    FrozenTrial t;
    t.params = decode_config(space, i);
    all_values.push_back(wide_objective(t));
    all.push_back(to_loss(all_values.back(), kDirs));
  }
  std::set<std::vector<double>> front, found;
  for (int i : pareto_front(all)) front.insert(all_values[i]);
  for (const auto& v : values) {
    if (front.count(v)) found.insert(v);
  }
  EXPECT_EQ(found, front);
}

TEST(SensitivitySampler, PerParameterGroupsResumeAndRunInParallelAsIfOneRun) {
  // The interleaved probes and configurations depend only on the history: a study stopped
  // mid-probes and resumed with fresh samplers repeats the uninterrupted run; three jobs never
  // repeat a probe or a configuration.
  auto full = std::make_shared<InMemoryStorage>();
  make_wide_study(full, 2).optimize(wide(), {.n_trials = 50});
  auto part = std::make_shared<InMemoryStorage>();
  make_wide_study(part, 2).optimize(wide(), {.n_trials = 9});
  make_wide_study(part, 2).optimize(wide(), {.n_trials = 23});
  make_wide_study(part, 2).optimize(wide(), {.n_trials = 50});
  const auto a = make_wide_study(full, 2).trials(), b = make_wide_study(part, 2).trials();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].params, b[i].params) << "trial " << i;
    EXPECT_EQ(probe_label(a[i]), probe_label(b[i])) << "trial " << i;
  }
  auto jobs = std::make_shared<InMemoryStorage>();
  Study study = make_wide_study(jobs, 3);
  study.optimize(wide(), {.n_trials = 60, .n_jobs = 3});
  std::set<std::pair<std::string, std::vector<double>>> seen;
  for (const FrozenTrial& t : study.trials()) {
    EXPECT_TRUE(seen.insert({probe_label(t), t.params}).second) << "trial " << t.number;
    EXPECT_EQ(t.state, TrialState::kComplete);
  }
  EXPECT_EQ(study.trials().size(), 60u);
}

}  // namespace
}  // namespace qsearch::search
