// Storage conformance suite: the contract of search/storage.h, checked for every backend.
//
// A backend registers a StorageBackend (a name and a factory of fresh, empty stores) and
// instantiates the suite once in its own test binary:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StorageConformance,
//       ::testing::Values(StorageBackend{"memory", [] { return std::make_unique<MemoryStore>();
//       }}),
//       [](const auto& info) { return info.param.name; });
//
// Include this header from exactly one .cc per test binary (it defines the tests).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "search/storage.h"

namespace qsearch::search::conformance {

// One fresh, empty store for one test.
class StorageUnderTest {
 public:
  virtual ~StorageUnderTest() = default;
  // A handle to this test's store. The first call creates the store; later calls open it again
  // (a new connection where the backend has connections, else the same object).
  virtual std::shared_ptr<Storage> open() = 0;
  // True when several processes can share the store; open() is then called in forked children.
  virtual bool shared_across_processes() const { return false; }
};

struct StorageBackend {
  std::string name;  // a valid gtest name: letters, digits, underscores
  std::function<std::unique_ptr<StorageUnderTest>()> make;
};

inline void PrintTo(const StorageBackend& backend, std::ostream* os) { *os << backend.name; }

class StorageConformance : public ::testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    storage_ = store_->open();
  }

  static SearchSpace space2() {
    return {{"a/config/width", Distribution::int_range(0, 999)},
            {"b", Distribution::categorical({"integer", "NA", "minifloat"})}};
  }
  // A decide that always proposes `params`.
  static Storage::Decide propose(std::vector<double> params) {
    return [params](const std::vector<FrozenTrial>&) -> std::optional<std::vector<double>> {
      return params;
    };
  }
  // Brute force over param 0: the smallest value no earlier trial used (param 1 fixed to 0).
  static std::optional<std::vector<double>> smallest_unused(const std::vector<FrozenTrial>& h) {
    std::set<double> used;
    for (const FrozenTrial& t : h) used.insert(t.params[0]);
    for (double v = 0; v < 1000; ++v) {
      if (!used.count(v)) return std::vector<double>{v, 0.0};
    }
    return std::nullopt;
  }
  int64_t make_study(const std::string& name = "s",
                     std::vector<Direction> dirs = {Direction::kMaximize, Direction::kMinimize}) {
    return storage_->create_study(name, dirs, space2(), false);
  }
  FrozenTrial add_trial(int64_t study, std::vector<double> params = {1, 2},
                        std::map<std::string, std::string> system_attrs = {}) {
    auto t = storage_->create_trial(study, propose(std::move(params)), system_attrs);
    EXPECT_TRUE(t.has_value());
    return *t;
  }

  std::unique_ptr<StorageUnderTest> store_;
  std::shared_ptr<Storage> storage_;
};

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_P(StorageConformance, CreateStudyStoresNameDirectionsAndSpace) {
  int64_t id = make_study("mnist");
  StudyInfo info = storage_->get_study(id);
  EXPECT_EQ(info.id, id);
  EXPECT_EQ(info.name, "mnist");
  EXPECT_EQ(info.directions, (std::vector<Direction>{Direction::kMaximize, Direction::kMinimize}));
  EXPECT_EQ(info.space, space2());
  EXPECT_TRUE(info.user_attrs.empty());
  EXPECT_EQ(storage_->find_study("mnist"), id);
  EXPECT_EQ(storage_->find_study("other"), std::nullopt);
  EXPECT_EQ(storage_->study_names(), std::vector<std::string>{"mnist"});
  EXPECT_THROW(storage_->get_study(id + 1000), Error);
}

TEST_P(StorageConformance, SeveralStudiesAreIndependent) {
  int64_t a = make_study("a");
  int64_t b = storage_->create_study("b", {Direction::kMinimize}, {}, false);
  EXPECT_NE(a, b);
  EXPECT_EQ(storage_->study_names(), (std::vector<std::string>{"a", "b"}));
  FrozenTrial a0 = add_trial(a);
  FrozenTrial b0 = add_trial(b, {});
  FrozenTrial a1 = add_trial(a);
  EXPECT_EQ(a0.number, 0);
  EXPECT_EQ(b0.number, 0);
  EXPECT_EQ(a1.number, 1);
  EXPECT_EQ((std::set<int64_t>{a0.id, b0.id, a1.id}).size(), 3u);  // ids unique storage-wide
  EXPECT_EQ(storage_->get_trials(a).size(), 2u);
  EXPECT_EQ(storage_->get_trials(b).size(), 1u);
  EXPECT_EQ(storage_->get_study(b).space.size(), 0u);
}

TEST_P(StorageConformance, LoadIfExistsReturnsTheSameStudy) {
  int64_t id = make_study("s");
  add_trial(id);
  EXPECT_THROW(make_study("s"), Error);  // exists and load_if_exists = false
  int64_t again = storage_->create_study("s", {Direction::kMaximize, Direction::kMinimize},
                                         space2(), /*load_if_exists=*/true);
  EXPECT_EQ(again, id);
  EXPECT_EQ(storage_->get_trials(again).size(), 1u);
  EXPECT_EQ(storage_->study_names().size(), 1u);
}

TEST_P(StorageConformance, LoadingWithOtherDirectionsOrSpaceThrows) {
  make_study("s");
  auto load = [&](std::vector<Direction> dirs, SearchSpace space) {
    return storage_->create_study("s", dirs, space, true);
  };
  const std::vector<Direction> dirs{Direction::kMaximize, Direction::kMinimize};
  EXPECT_THROW(load({Direction::kMaximize}, space2()), Error);
  EXPECT_THROW(load({Direction::kMinimize, Direction::kMaximize}, space2()), Error);
  SearchSpace fewer = space2();
  fewer.pop_back();
  EXPECT_THROW(load(dirs, fewer), Error);
  SearchSpace renamed = space2();
  renamed[1].name = "c";
  EXPECT_THROW(load(dirs, renamed), Error);
  SearchSpace wider = space2();
  wider[0].dist = Distribution::int_range(0, 1000);
  EXPECT_THROW(load(dirs, wider), Error);
  SearchSpace other_choices = space2();
  other_choices[1].dist = Distribution::categorical({"integer", "NA"});
  EXPECT_THROW(load(dirs, other_choices), Error);
  try {
    load(dirs, wider);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'s'"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(load(dirs, space2()));
}

TEST_P(StorageConformance, StudyUserAttrsRoundTripAndOverwrite) {
  int64_t id = make_study();
  storage_->set_study_user_attr(id, "config", R"({"seed": 42, "name": "x"})");
  storage_->set_study_user_attr(id, "sampler", R"("tpe")");
  storage_->set_study_user_attr(id, "sampler", R"("random")");
  auto attrs = storage_->get_study(id).user_attrs;
  EXPECT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs["config"], R"({"seed": 42, "name": "x"})");
  EXPECT_EQ(attrs["sampler"], R"("random")");
  EXPECT_THROW(storage_->set_study_user_attr(id + 1000, "k", "1"), Error);
}

// The attrs given to create_study belong to the study from its first moment: a loader gets them
// and cannot replace them (a resumed search compares its settings with the stored ones).
TEST_P(StorageConformance, CreateStudyStoresUserAttrsAndLoadingKeepsThem) {
  const std::vector<Direction> dirs = {Direction::kMaximize};
  int64_t id = storage_->create_study("s", dirs, space2(), true, {{"model", R"("a.onnx")"}});
  EXPECT_EQ(storage_->get_study(id).user_attrs.at("model"), R"("a.onnx")");
  EXPECT_EQ(storage_->create_study("s", dirs, space2(), true, {{"model", R"("b.onnx")"}}), id);
  EXPECT_EQ(storage_->create_study("s", dirs, space2(), true), id);
  auto attrs = store_->open()->get_study(id).user_attrs;
  EXPECT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs.at("model"), R"("a.onnx")");
}

// Threads (and, where shared, processes) racing to create one study with different attrs: one
// wins, and every racer sees the winner's attrs, never a study without them.
TEST_P(StorageConformance, RacingCreatorsAllSeeTheWinnersUserAttrs) {
  const std::vector<Direction> dirs = {Direction::kMaximize};
  constexpr int kRacers = 6;
  std::vector<std::string> seen(kRacers);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int r = 0; r < kRacers; ++r) {
    threads.emplace_back([&, r] {
      std::shared_ptr<Storage> mine = store_->open();
      while (!go.load()) std::this_thread::yield();
      int64_t id = mine->create_study("race", dirs, space2(), true,
                                      {{"racer", std::to_string(r)}, {"other", "1"}});
      seen[r] = mine->get_study(id).user_attrs.at("racer");
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  for (int r = 1; r < kRacers; ++r) EXPECT_EQ(seen[r], seen[0]);
  EXPECT_EQ(storage_->study_names().size(), 1u);
  if (!store_->shared_across_processes()) return;
  storage_.reset();
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int status = 0;
      try {
        std::shared_ptr<Storage> mine = store_->open();
        int64_t id =
            mine->create_study("race2", dirs, space2(), true, {{"racer", std::to_string(p)}});
        status = 10 + std::stoi(mine->get_study(id).user_attrs.at("racer"));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        status = 1;
      }
      _exit(status);
    }
    children.push_back(pid);
  }
  std::set<int> winners;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) >= 10) << "child failed: " << status;
    winners.insert(WEXITSTATUS(status) - 10);
  }
  EXPECT_EQ(winners.size(), 1u);
  auto id = store_->open()->find_study("race2");
  ASSERT_TRUE(id);
  EXPECT_EQ(store_->open()->get_study(*id).user_attrs.at("racer"),
            std::to_string(*winners.begin()));
}

TEST_P(StorageConformance, TrialsAreNumberedFromZeroInCreationOrder) {
  int64_t id = make_study();
  int64_t before = wall_ms();
  for (int i = 0; i < 5; ++i) {
    FrozenTrial t = add_trial(id, {static_cast<double>(i), 1}, {{"worker", "host:1"}});
    EXPECT_EQ(t.number, i);
    EXPECT_EQ(t.state, TrialState::kRunning);
    EXPECT_EQ(t.params, (std::vector<double>{static_cast<double>(i), 1}));
    EXPECT_TRUE(t.values.empty());
    EXPECT_EQ(t.system_attrs.at("worker"), "host:1");
    EXPECT_GE(t.datetime_start_ms, before - 1000);
    EXPECT_LE(t.datetime_start_ms, wall_ms() + 1000);
    EXPECT_EQ(t.datetime_complete_ms, 0);
  }
  std::vector<FrozenTrial> trials = storage_->get_trials(id);
  ASSERT_EQ(trials.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(trials[i].number, i);
    EXPECT_EQ(trials[i].params[0], i);
  }
  EXPECT_THROW(storage_->get_trials(id + 1000), Error);
  EXPECT_THROW(storage_->create_trial(id + 1000, propose({1, 1})), Error);
}

TEST_P(StorageConformance, DecideSeesEveryEarlierTrialAndNulloptInsertsNothing) {
  int64_t id = make_study();
  FrozenTrial t0 = add_trial(id, {5, 0});
  storage_->finish_trial(t0.id, TrialState::kComplete, {0.5, 2.0}, {}, {});
  add_trial(id, {6, 1});
  std::vector<FrozenTrial> seen;
  auto none = storage_->create_trial(id, [&](const std::vector<FrozenTrial>& history) {
    seen = history;
    return std::optional<std::vector<double>>{};
  });
  EXPECT_FALSE(none.has_value());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].state, TrialState::kComplete);
  EXPECT_EQ(seen[0].values, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(seen[1].state, TrialState::kRunning);
  EXPECT_EQ(seen[1].params, (std::vector<double>{6, 1}));
  EXPECT_EQ(storage_->get_trials(id).size(), 2u);
  EXPECT_EQ(add_trial(id).number, 2);  // nothing was inserted by the refused proposal
}

TEST_P(StorageConformance, DecideThatThrowsInsertsNothing) {
  int64_t id = make_study();
  add_trial(id);
  EXPECT_THROW(storage_->create_trial(
                   id,
                   [](const std::vector<FrozenTrial>&) -> std::optional<std::vector<double>> {
                     throw Error("sampler failed");
                   }),
               Error);
  EXPECT_EQ(storage_->get_trials(id).size(), 1u);
  EXPECT_EQ(add_trial(id).number, 1);
}

TEST_P(StorageConformance, WrongParamCountThrows) {
  int64_t id = make_study();
  EXPECT_THROW(storage_->create_trial(id, propose({1})), Error);
  EXPECT_THROW(storage_->create_trial(id, propose({1, 2, 3})), Error);
  EXPECT_TRUE(storage_->get_trials(id).empty());
}

TEST_P(StorageConformance, ParamsValuesAndAttrsRoundTrip) {
  int64_t id = make_study();
  const double inf = std::numeric_limits<double>::infinity();
  std::string big = R"({"sampled_config": {)";
  for (int i = 0; i < 5000; ++i) {
    big += (i ? ", " : "") + std::string("\"seq_blocks_") + std::to_string(i) +
           R"(": {"config": {"name": "integer", "data_in_width": 8, "weight_frac_width": null}})";
  }
  big += "}}";
  ASSERT_GT(big.size(), 300000u);
  const std::string unicode = "\"na\\u00efve \xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80 \\\" \\n\"";
  struct Case {
    std::vector<double> params;
    TrialState state;
    std::vector<double> values;
  };
  std::vector<Case> cases = {
      {{0.0, 2.0}, TrialState::kComplete, {0.1, 1e-300}},
      {{999, 1}, TrialState::kComplete, {inf, -inf}},
      {{123, 0}, TrialState::kComplete, {0.0, -0.0}},
      {{7, 2}, TrialState::kComplete, {-1.7976931348623157e308, 4.9406564584124654e-324}},
      {{8, 1}, TrialState::kFail, {}},
  };
  for (const Case& c : cases) {
    FrozenTrial t = add_trial(id, c.params, {{"worker", "h\xc3\xb6st:42"}, {"keep", "1"}});
    std::map<std::string, std::string> user = {
        {"software_metrics", R"({"loss": 0.6922941208, "accuracy": 0.5})"},
        {"unicode \xe2\x9c\x93", unicode},
        {"big", big},
        {"empty", ""}};
    std::map<std::string, std::string> sys = {{"fail_reason", "bad \"config\"\nline 2"},
                                              {"keep", "2"}};
    storage_->finish_trial(t.id, c.state, c.values, user, sys);
  }
  std::vector<FrozenTrial> trials = storage_->get_trials(id);
  ASSERT_EQ(trials.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const FrozenTrial& t = trials[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(t.params, cases[i].params);
    EXPECT_EQ(t.state, cases[i].state);
    ASSERT_EQ(t.values.size(), cases[i].values.size());
    for (size_t k = 0; k < t.values.size(); ++k) {
      const double want = cases[i].values[k];
      EXPECT_EQ(t.values[k], want);
      EXPECT_EQ(std::signbit(t.values[k]), std::signbit(want));
    }
    EXPECT_EQ(t.user_attrs.size(), 4u);
    EXPECT_EQ(t.user_attrs.at("software_metrics"), R"({"loss": 0.6922941208, "accuracy": 0.5})");
    EXPECT_EQ(t.user_attrs.at("unicode \xe2\x9c\x93"), unicode);
    EXPECT_EQ(t.user_attrs.at("big"), big);
    EXPECT_EQ(t.user_attrs.at("empty"), "");
    // Attrs given at creation are kept; ones given again at finish replace them.
    EXPECT_EQ(t.system_attrs.size(), 3u);
    EXPECT_EQ(t.system_attrs.at("worker"), "h\xc3\xb6st:42");
    EXPECT_EQ(t.system_attrs.at("keep"), "2");
    EXPECT_EQ(t.system_attrs.at("fail_reason"), "bad \"config\"\nline 2");
    EXPECT_GE(t.datetime_complete_ms, t.datetime_start_ms);
  }
}

TEST_P(StorageConformance, FinishedTrialsAreImmutable) {
  int64_t id = make_study();
  FrozenTrial done = add_trial(id, {1, 0});
  FrozenTrial failed = add_trial(id, {2, 0});
  storage_->finish_trial(done.id, TrialState::kComplete, {1.0, 2.0}, {{"a", "1"}}, {});
  storage_->finish_trial(failed.id, TrialState::kFail, {}, {}, {{"fail_reason", "overflow"}});
  const std::vector<FrozenTrial> before = storage_->get_trials(id);

  EXPECT_THROW(storage_->finish_trial(done.id, TrialState::kComplete, {3.0, 4.0}, {}, {}), Error);
  EXPECT_THROW(storage_->finish_trial(done.id, TrialState::kFail, {}, {}, {}), Error);
  EXPECT_THROW(storage_->finish_trial(failed.id, TrialState::kFail, {}, {}, {}), Error);
  EXPECT_THROW(storage_->finish_trial(failed.id, TrialState::kComplete, {1, 2}, {{"a", "2"}}, {}),
               Error);

  const std::vector<FrozenTrial> after = storage_->get_trials(id);
  ASSERT_EQ(after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(after[i].state, before[i].state);
    EXPECT_EQ(after[i].values, before[i].values);
    EXPECT_EQ(after[i].user_attrs, before[i].user_attrs);
    EXPECT_EQ(after[i].system_attrs, before[i].system_attrs);
    EXPECT_EQ(after[i].datetime_complete_ms, before[i].datetime_complete_ms);
  }
  EXPECT_EQ(after[0].values, (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(after[1].system_attrs.at("fail_reason"), "overflow");
}

TEST_P(StorageConformance, FinishValidatesStateAndValues) {
  int64_t id = make_study();
  FrozenTrial t = add_trial(id);
  EXPECT_THROW(storage_->finish_trial(t.id, TrialState::kRunning, {}, {}, {}), Error);
  EXPECT_THROW(storage_->finish_trial(t.id, TrialState::kComplete, {1.0}, {}, {}), Error);
  EXPECT_THROW(storage_->finish_trial(t.id, TrialState::kComplete, {1, 2, 3}, {}, {}), Error);
  // Optuna's rule (and schema): no NaN objective value in a COMPLETE trial.
  EXPECT_THROW(storage_->finish_trial(t.id, TrialState::kComplete, {1, std::nan("")}, {}, {}),
               Error);
  EXPECT_THROW(storage_->finish_trial(t.id + 1000, TrialState::kComplete, {1, 2}, {}, {}), Error);
  EXPECT_EQ(storage_->get_trials(id)[0].state, TrialState::kRunning);  // refusals change nothing
  // A FAIL trial keeps no objective values.
  storage_->finish_trial(t.id, TrialState::kFail, {1.0, 2.0}, {}, {});
  EXPECT_TRUE(storage_->get_trials(id)[0].values.empty());
}

TEST_P(StorageConformance, GetTrialsIsOrderedAndSeesFinishes) {
  int64_t id = make_study();
  std::vector<FrozenTrial> created;
  for (int i = 0; i < 30; ++i) created.push_back(add_trial(id, {static_cast<double>(i), 0}));
  // Finish out of order, interleaved with reads (exercises any caching of finished trials).
  for (int i = 29; i >= 0; i -= 3) {
    storage_->finish_trial(created[i].id, TrialState::kComplete, {i * 1.0, -i * 1.0}, {}, {});
    std::vector<FrozenTrial> now = storage_->get_trials(id);
    ASSERT_EQ(now.size(), 30u);
    EXPECT_EQ(now[i].state, TrialState::kComplete);
    EXPECT_EQ(now[i].values, (std::vector<double>{i * 1.0, -i * 1.0}));
  }
  std::vector<FrozenTrial> trials = storage_->get_trials(id);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(trials[i].number, i);
    EXPECT_EQ(trials[i].id, created[i].id);
    EXPECT_EQ(trials[i].state, (29 - i) % 3 == 0 ? TrialState::kComplete : TrialState::kRunning);
  }
}

// 4 threads x 50 trials: numbers 0..199 exactly once, nothing lost, and a brute-force decide
// ("the smallest unused value") never proposes a configuration twice.
TEST_P(StorageConformance, ConcurrentThreadsNeverDuplicate) {
  int64_t id = make_study();
  constexpr int kThreads = 4, kPerThread = 50;
  std::atomic<int> history_gaps{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerThread; ++i) {
        auto t = storage_->create_trial(id,
                                        [&](const std::vector<FrozenTrial>& h) {
                                          for (size_t k = 0; k < h.size(); ++k) {
                                            if (h[k].number != static_cast<int>(k)) ++history_gaps;
                                          }
                                          return smallest_unused(h);
                                        },
                                        {{"worker", std::to_string(w)}});
        if (!t) return;
        storage_->finish_trial(t->id, TrialState::kComplete, {t->params[0], 1.0 * w}, {}, {});
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(history_gaps.load(), 0);
  std::vector<FrozenTrial> trials = storage_->get_trials(id);
  ASSERT_EQ(trials.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<double> params;
  std::map<std::string, int> per_worker;
  for (size_t i = 0; i < trials.size(); ++i) {
    EXPECT_EQ(trials[i].number, static_cast<int>(i));
    EXPECT_EQ(trials[i].state, TrialState::kComplete);
    EXPECT_EQ(trials[i].values[0], trials[i].params[0]);
    params.insert(trials[i].params[0]);
    ++per_worker[trials[i].system_attrs.at("worker")];
  }
  EXPECT_EQ(params.size(), trials.size());  // no duplicate configuration
  EXPECT_EQ(*params.rbegin(), kThreads * kPerThread - 1);
  for (const auto& [w, n] : per_worker) EXPECT_EQ(n, kPerThread) << "worker " << w;
}

// 3 forked processes x 30 trials on one store (backends shared across processes only).
TEST_P(StorageConformance, ConcurrentProcessesNeverDuplicate) {
  if (!store_->shared_across_processes()) GTEST_SKIP() << "backend is process-local";
  int64_t id = make_study();
  // SQLite forbids carrying an open connection across fork(), even unused: close ours first.
  storage_.reset();
  constexpr int kProcs = 3, kPerProc = 30;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: its own connection; report through the exit status only.
      int status = 0;
      try {
        std::shared_ptr<Storage> mine = store_->open();
        for (int i = 0; i < kPerProc; ++i) {
          auto t = mine->create_trial(id, smallest_unused, {{"worker", std::to_string(p)}});
          if (!t) {
            status = 2;
            break;
          }
          mine->finish_trial(t->id, TrialState::kComplete, {t->params[0], 1.0 * p}, {}, {});
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        status = 1;
      }
      _exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed: " << status;
  }
  std::vector<FrozenTrial> trials = store_->open()->get_trials(id);
  ASSERT_EQ(trials.size(), static_cast<size_t>(kProcs * kPerProc));
  std::set<double> params;
  std::map<std::string, int> per_worker;
  for (size_t i = 0; i < trials.size(); ++i) {
    EXPECT_EQ(trials[i].number, static_cast<int>(i));
    EXPECT_EQ(trials[i].state, TrialState::kComplete);
    params.insert(trials[i].params[0]);
    ++per_worker[trials[i].system_attrs.at("worker")];
  }
  EXPECT_EQ(params.size(), trials.size());
  EXPECT_EQ(*params.rbegin(), kProcs * kPerProc - 1);
  for (const auto& [w, n] : per_worker) EXPECT_EQ(n, kPerProc) << "worker " << w;
}

// Heartbeats: a trial is reclaimed only after grace_ms without a beat, exactly once, as an
// interrupted FAIL; beats of finished trials are ignored.
TEST_P(StorageConformance, StaleTrialsAreReclaimedOnceAndBeatingOnesKept) {
  int64_t id = make_study();
  FrozenTrial beating = add_trial(id, {1, 0});
  FrozenTrial silent = add_trial(id, {2, 0});
  FrozenTrial done = add_trial(id, {3, 0});
  storage_->finish_trial(done.id, TrialState::kComplete, {1.0, 2.0}, {}, {});
  // Nothing is older than a generous grace period.
  EXPECT_TRUE(storage_->fail_stale_trials(id, 60000).empty());
  const int64_t created = wall_ms();
  while (wall_ms() < created + 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  storage_->record_heartbeat({beating.id, done.id});
  std::vector<FrozenTrial> reclaimed = storage_->fail_stale_trials(id, 20);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, silent.id);
  EXPECT_EQ(reclaimed[0].state, TrialState::kFail);
  EXPECT_TRUE(reclaimed[0].interrupted());
  EXPECT_NE(reclaimed[0].system_attrs.at(kAttrFailReason).find("no heartbeat"), std::string::npos);
  std::vector<FrozenTrial> trials = storage_->get_trials(id);
  EXPECT_EQ(trials[0].state, TrialState::kRunning);
  EXPECT_EQ(trials[1].state, TrialState::kFail);
  EXPECT_TRUE(trials[1].interrupted());
  EXPECT_EQ(trials[1].params, silent.params);
  EXPECT_EQ(trials[2].state, TrialState::kComplete);
  // The reclaimed trial is finished: its late result is refused, and nobody reclaims it again.
  EXPECT_THROW(storage_->finish_trial(silent.id, TrialState::kComplete, {1.0, 2.0}, {}, {}), Error);
  EXPECT_TRUE(storage_->fail_stale_trials(id, 20).empty());
  // A beating trial is reclaimed once it stops beating.
  const int64_t beat = wall_ms();
  while (wall_ms() < beat + 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  reclaimed = storage_->fail_stale_trials(id, 20);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].id, beating.id);
}

// Several processes reclaiming at once: each stale trial is reclaimed by exactly one.
TEST_P(StorageConformance, ConcurrentProcessesReclaimEachStaleTrialOnce) {
  if (!store_->shared_across_processes()) GTEST_SKIP() << "backend is process-local";
  int64_t id = make_study();
  constexpr int kStale = 8, kProcs = 3;
  for (int i = 0; i < kStale; ++i) add_trial(id, {static_cast<double>(i), 0});
  const int64_t created = wall_ms();
  while (wall_ms() < created + 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  storage_.reset();
  std::vector<pid_t> children;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int reclaimed = 0;
      try {
        std::shared_ptr<Storage> mine = store_->open();
        for (int round = 0; round < 5; ++round) {
          reclaimed += static_cast<int>(mine->fail_stale_trials(id, 20).size());
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        _exit(100);
      }
      _exit(reclaimed);  // the count, through the exit status
    }
    children.push_back(pid);
  }
  int total = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_NE(WEXITSTATUS(status), 100);
    total += WEXITSTATUS(status);
  }
  EXPECT_EQ(total, kStale);
  for (const FrozenTrial& t : store_->open()->get_trials(id)) {
    EXPECT_EQ(t.state, TrialState::kFail);
    EXPECT_TRUE(t.interrupted());
  }
}

}  // namespace qsearch::search::conformance
