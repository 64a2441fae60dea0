// The PRUNED state in study.db: stored and read back, and an old qsearch file of schema version
// 2, whose trials table CHECK knew only RUNNING/COMPLETE/FAIL, is migrated on open (to Optuna's
// schema) so that a resumed racing search can store PRUNED trials in it.
#include <gtest/gtest.h>

#include "core/error.h"
#include "storage/legacy_db.h"
#include "storage/schema.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_storage.h"
#include "storage/temp_dir.h"

namespace qsearch::storage {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::TrialState;

std::optional<std::vector<double>> one(const std::vector<FrozenTrial>&) {
  return std::vector<double>{1};
}

TEST(SqlitePruned, StoredAndReadBack) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t study = 0;
  {
    SqliteStorage s(path);
    study =
        s.create_study("s", {Direction::kMaximize}, {{"a", Distribution::int_range(0, 3)}}, false);
    auto t = s.create_trial(study, one);
    ASSERT_TRUE(t);
    s.finish_trial(t->id, TrialState::kPruned, {0.5}, {{"racing", "{\"slice_samples\":256}"}}, {});
    const auto trials = s.get_trials(study);  // the writer's cache
    EXPECT_EQ(trials[0].state, TrialState::kPruned);
  }
  SqliteStorage again(path);  // a fresh read
  const auto trials = again.get_trials(study);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kPruned);
  EXPECT_TRUE(trials[0].values.empty());  // as FAIL: no values (Optuna's PRUNED has none here)
  EXPECT_EQ(trials[0].user_attrs.at("racing"), "{\"slice_samples\":256}");
  SqliteConnection db(path, 1000);
  EXPECT_EQ(db.query_text("SELECT state FROM trials"), "PRUNED");
}

TEST(SqlitePruned, AVersionTwoFileIsMigratedAndTakesPrunedTrials) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  testing::write_legacy_db(path, 2);
  {
    // The old layout indeed refuses the new state.
    SqliteConnection db(path, 1000);
    EXPECT_THROW(db.exec("UPDATE trials SET state = 'PRUNED' WHERE number = 2"), Error);
  }
  SqliteStorage s(path);
  const int64_t study = *s.find_study("legacy");
  auto trials = s.get_trials(study);
  ASSERT_EQ(trials.size(), 5u);
  EXPECT_EQ(trials[2].state, TrialState::kComplete);
  EXPECT_EQ(trials[3].state, TrialState::kRunning);
  s.finish_trial(trials[3].id, TrialState::kPruned, {}, {}, {});
  EXPECT_EQ(s.get_trials(study)[3].state, TrialState::kPruned);
  EXPECT_EQ(SqliteStorage(path).get_trials(study)[3].state, TrialState::kPruned);
  auto t5 = s.create_trial(study, [](const std::vector<FrozenTrial>&) {
    return std::optional<std::vector<double>>(std::vector<double>{2, 1});
  });  // numbering goes on
  ASSERT_TRUE(t5);
  EXPECT_EQ(t5->number, 5);
}

}  // namespace
}  // namespace qsearch::storage
