#include "search/memory_storage.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "core/error.h"

namespace qsearch::search {
namespace {

SearchSpace small_space() {
  return {{"a", Distribution::int_range(0, 2)}, {"b", Distribution::categorical({"x", "y"})}};
}

Storage::Decide fixed(std::vector<double> params) {
  return [params](const std::vector<FrozenTrial>&) { return std::optional(params); };
}

TEST(InMemoryStorage, CreateLoadAndMismatch) {
  InMemoryStorage s;
  const int64_t id = s.create_study("s", {Direction::kMinimize}, small_space(), false);
  EXPECT_EQ(s.create_study("s", {Direction::kMinimize}, small_space(), true), id);
  EXPECT_THROW(s.create_study("s", {Direction::kMinimize}, small_space(), false), Error);
  EXPECT_THROW(s.create_study("s", {Direction::kMaximize}, small_space(), true), Error);
  SearchSpace other = small_space();
  other[0].dist = Distribution::int_range(0, 3);
  try {
    s.create_study("s", {Direction::kMinimize}, other, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.find_study("s"), id);
  EXPECT_EQ(s.find_study("t"), std::nullopt);
  EXPECT_EQ(s.study_names(), std::vector<std::string>{"s"});
  s.set_study_user_attr(id, "k", "1");
  EXPECT_EQ(s.get_study(id).user_attrs.at("k"), "1");
  EXPECT_THROW(s.get_study(7), Error);
}

TEST(InMemoryStorage, TrialLifecycle) {
  InMemoryStorage s;
  const int64_t id = s.create_study("s", {Direction::kMinimize}, small_space(), false);
  auto t0 = s.create_trial(id, fixed({1, 0}), {{"worker", "h:1"}});
  ASSERT_TRUE(t0);
  EXPECT_EQ(t0->number, 0);
  EXPECT_EQ(t0->state, TrialState::kRunning);
  EXPECT_GT(t0->datetime_start_ms, 0);
  size_t seen = 99;
  auto none = s.create_trial(id, [&](const std::vector<FrozenTrial>& h) {
    seen = h.size();
    return std::optional<std::vector<double>>();
  });
  EXPECT_FALSE(none);
  EXPECT_EQ(seen, 1u);
  EXPECT_THROW(s.create_trial(id, fixed({1})), Error);  // wrong param count
  EXPECT_THROW(s.finish_trial(t0->id, TrialState::kComplete, {1, 2}, {}, {}), Error);
  s.finish_trial(t0->id, TrialState::kComplete, {0.5}, {{"m", "{}"}}, {{"x", "y"}});
  EXPECT_THROW(s.finish_trial(t0->id, TrialState::kFail, {}, {}, {}), Error);
  auto t1 = s.create_trial(id, fixed({2, 1}));
  EXPECT_EQ(t1->number, 1);
  s.finish_trial(t1->id, TrialState::kFail, {3.0}, {}, {{kAttrFailReason, "boom"}});
  const auto trials = s.get_trials(id);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].values, std::vector<double>{0.5});
  EXPECT_EQ(trials[0].system_attrs.at("worker"), "h:1");  // merged, not replaced
  EXPECT_EQ(trials[0].system_attrs.at("x"), "y");
  EXPECT_EQ(trials[0].user_attrs.at("m"), "{}");
  EXPECT_GE(trials[0].datetime_complete_ms, trials[0].datetime_start_ms);
  EXPECT_TRUE(trials[1].values.empty());  // FAIL keeps no values
  EXPECT_EQ(trials[1].system_attrs.at(kAttrFailReason), "boom");
}

TEST(InMemoryStorage, ConcurrentWritersGetDistinctNumbers) {
  InMemoryStorage s;
  const int64_t id = s.create_study("s", {Direction::kMinimize}, small_space(), false);
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kEach; ++k) {
        auto trial = s.create_trial(id, [](const std::vector<FrozenTrial>& h) {
          // The decision sees every earlier trial: encode the count into the params.
          return std::optional<std::vector<double>>({static_cast<double>(h.size() % 3), 0});
        });
        s.finish_trial(trial->id, TrialState::kComplete, {1.0 * trial->number}, {}, {});
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto trials = s.get_trials(id);
  ASSERT_EQ(trials.size(), static_cast<size_t>(kThreads * kEach));
  std::set<int64_t> ids;
  for (int i = 0; i < static_cast<int>(trials.size()); ++i) {
    EXPECT_EQ(trials[i].number, i);
    EXPECT_EQ(trials[i].params[0], i % 3);
    EXPECT_EQ(trials[i].values[0], i);
    ids.insert(trials[i].id);
  }
  EXPECT_EQ(ids.size(), trials.size());
}

}  // namespace
}  // namespace qsearch::search
