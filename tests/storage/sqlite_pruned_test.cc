// The PRUNED state in study.db (schema version 3): stored and read back, and a file of an older
// version, whose trials table CHECK knows only RUNNING/COMPLETE/FAIL, is migrated on open with
// every row kept, so that a resumed racing search can store PRUNED trials in it.
#include <gtest/gtest.h>

#include "core/error.h"
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

// Rewrites the trials table with version 2's CHECK (what qsearch wrote before PRUNED).
void make_version_2(const std::string& path) {
  SqliteConnection db(path, 1000);
  db.exec(
      "PRAGMA foreign_keys = OFF; BEGIN; "
      "CREATE TABLE trials_old (trial_id INTEGER PRIMARY KEY, number INTEGER NOT NULL, study_id "
      "INTEGER NOT NULL REFERENCES studies(study_id), state TEXT NOT NULL CHECK (state IN "
      "('RUNNING', 'COMPLETE', 'FAIL')), datetime_start INTEGER NOT NULL, datetime_complete "
      "INTEGER, UNIQUE (study_id, number)); "
      "INSERT INTO trials_old SELECT * FROM trials; DROP TABLE trials; "
      "ALTER TABLE trials_old RENAME TO trials; "
      "CREATE INDEX ix_trials_running ON trials (study_id) WHERE state = 'RUNNING'; "
      "UPDATE version_info SET schema_version = 2; COMMIT;");
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

TEST(SqlitePruned, AVersionTwoFileIsMigratedWithItsTrials) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t study = 0;
  {
    SqliteStorage s(path);
    study =
        s.create_study("s", {Direction::kMaximize}, {{"a", Distribution::int_range(0, 3)}}, false);
    auto t0 = s.create_trial(study, one);
    s.finish_trial(t0->id, TrialState::kComplete, {0.75}, {{"k", "1"}}, {{"worker", "w"}});
    auto t1 = s.create_trial(study, one);
    s.finish_trial(t1->id, TrialState::kFail, {}, {}, {{"fail_reason", "x"}});
    ASSERT_TRUE(s.create_trial(study, one));  // RUNNING
  }
  make_version_2(path);
  {
    // The old layout indeed refuses the new state.
    SqliteConnection db(path, 1000);
    EXPECT_THROW(db.exec("UPDATE trials SET state = 'PRUNED' WHERE number = 2"), Error);
  }
  SqliteStorage s(path);
  {
    SqliteConnection db(path, 1000);
    EXPECT_EQ(db.query_text("SELECT schema_version FROM version_info"),
              std::to_string(kSchemaVersion));
    EXPECT_EQ(db.query_text("PRAGMA foreign_key_check"), std::nullopt);
    EXPECT_EQ(db.query_text("SELECT count(*) FROM sqlite_master WHERE name = 'ix_trials_running'"),
              "1");
  }
  auto trials = s.get_trials(study);
  ASSERT_EQ(trials.size(), 3u);
  EXPECT_EQ(trials[0].state, TrialState::kComplete);
  EXPECT_EQ(trials[0].values, std::vector<double>{0.75});
  EXPECT_EQ(trials[0].user_attrs.at("k"), "1");
  EXPECT_EQ(trials[1].state, TrialState::kFail);
  EXPECT_EQ(trials[1].system_attrs.at("fail_reason"), "x");
  EXPECT_EQ(trials[2].state, TrialState::kRunning);
  EXPECT_EQ(trials[2].params, std::vector<double>{1});
  s.finish_trial(trials[2].id, TrialState::kPruned, {}, {}, {});
  EXPECT_EQ(s.get_trials(study)[2].state, TrialState::kPruned);
  auto t3 = s.create_trial(study, one);  // numbering goes on
  ASSERT_TRUE(t3);
  EXPECT_EQ(t3->number, 3);
}

}  // namespace
}  // namespace qsearch::storage
