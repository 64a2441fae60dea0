// Old qsearch study.db files (application_id 'qsch', schema versions 1 to 3) are migrated in
// place to Optuna's schema on open, after a backup (storage/legacy_migration.h).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "storage/legacy_db.h"
#include "storage/legacy_migration.h"
#include "storage/optuna_format.h"
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

class LegacyMigration : public ::testing::TestWithParam<int> {};

TEST_P(LegacyMigration, EveryStudyAndTrialIsKeptAndTheOldFileBackedUp) {
  const int version = GetParam();
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  testing::write_legacy_db(path, version);
  SqliteStorage s(path);

  // The backup is the old file, as it was.
  const std::string bak = path + ".qsearch-v3.bak";
  ASSERT_TRUE(std::filesystem::exists(bak));
  {
    SqliteConnection old(bak, 1000);
    EXPECT_EQ(old.query_text("PRAGMA application_id"), std::to_string(kLegacyApplicationId));
    EXPECT_EQ(old.query_text("SELECT schema_version FROM version_info"), std::to_string(version));
    EXPECT_EQ(old.query_text("SELECT count(*) FROM trials"), "6");
  }
  {
    SqliteConnection db(path, 1000);
    EXPECT_EQ(db.query_text("PRAGMA application_id"), "0");
    EXPECT_EQ(db.query_text("SELECT schema_version FROM version_info"), "12");
    EXPECT_EQ(db.query_text("SELECT version_num FROM alembic_version"), "v3.0.0.d");
    EXPECT_EQ(db.query_text("SELECT count(*) FROM sqlite_master WHERE name LIKE 'qsearch_v3_%' "
                            "OR name = 'study_params'"),
              "0");
    EXPECT_EQ(db.query_text("SELECT count(*) FROM trial_params"), "11");
  }

  EXPECT_EQ(s.study_names(), (std::vector<std::string>{"legacy", "other"}));
  const int64_t id = *s.find_study("legacy");
  const search::StudyInfo info = s.get_study(id);
  EXPECT_EQ(info.directions, (std::vector<Direction>{Direction::kMaximize, Direction::kMinimize}));
  ASSERT_EQ(info.space.size(), 2u);
  EXPECT_EQ(info.space[0].name, "a");
  EXPECT_EQ(info.space[0].dist, Distribution::int_range(0, 3));
  EXPECT_EQ(info.space[1].dist, Distribution::categorical({"x", "y"}));
  EXPECT_EQ(info.user_attrs.at("search_config"), "{\"n\": 5}");

  const auto trials = s.get_trials(id);
  ASSERT_EQ(trials.size(), 5u);
  EXPECT_EQ(trials[0].id, 1);
  EXPECT_EQ(trials[0].state, TrialState::kComplete);
  EXPECT_EQ(trials[0].params, (std::vector<double>{1, 1}));
  EXPECT_EQ(trials[0].values, (std::vector<double>{0.75, 2}));
  EXPECT_EQ(trials[0].user_attrs.at("software_metrics"), "{\"loss\": 0.5}");
  EXPECT_EQ(trials[0].system_attrs.at("worker"), "w");
  EXPECT_EQ(trials[0].datetime_start_ms, 1700000000000);
  EXPECT_EQ(trials[0].datetime_complete_ms, 1700000001000);
  EXPECT_EQ(trials[1].state, TrialState::kFail);
  EXPECT_EQ(trials[1].system_attrs.at("fail_reason"), "bad \"config\"\nline 2");
  if (version >= 3) {
    EXPECT_EQ(trials[2].state, TrialState::kPruned);
    EXPECT_TRUE(trials[2].values.empty());
  } else {
    EXPECT_EQ(trials[2].values,
              (std::vector<double>{0.5, std::numeric_limits<double>::infinity()}));
  }
  EXPECT_EQ(trials[3].state, TrialState::kRunning);
  EXPECT_EQ(trials[3].datetime_start_ms, testing::kLegacyStart);
  // Optuna's schema has no NaN value: that trial is FAIL now, as qsearch's Study makes one.
  EXPECT_EQ(trials[4].state, TrialState::kFail);
  EXPECT_TRUE(trials[4].values.empty());
  EXPECT_EQ(trials[4].system_attrs.at("fail_reason"), "objective returned NaN");

  const int64_t other = *s.find_study("other");
  const auto other_trials = s.get_trials(other);
  ASSERT_EQ(other_trials.size(), 1u);
  EXPECT_EQ(other_trials[0].params, std::vector<double>{1.25});
  EXPECT_EQ(s.get_study(other).space[0].dist, Distribution::float_range(0.5, 2.0, true));

  // The heartbeat (version >= 2) is kept: 1700000005000 is long ago, so the trial is stale.
  const auto reclaimed = s.fail_stale_trials(id, 1000);
  ASSERT_EQ(reclaimed.size(), 1u);
  const std::string reason = reclaimed[0].system_attrs.at("fail_reason");
  EXPECT_NE(reason.find("no heartbeat"), std::string::npos) << reason;

  // Resuming with the same space goes on numbering.
  EXPECT_EQ(s.create_study("legacy", info.directions, info.space, true), id);
  auto next = s.create_trial(id, [](const std::vector<FrozenTrial>&) {
    return std::optional<std::vector<double>>(std::vector<double>{3, 1});
  });
  ASSERT_TRUE(next);
  EXPECT_EQ(next->number, 5);
  EXPECT_GT(next->id, 6);

  // Opening again changes nothing.
  SqliteStorage again(path);
  EXPECT_EQ(again.get_trials(id).size(), 6u);
}

INSTANTIATE_TEST_SUITE_P(Versions, LegacyMigration, ::testing::Values(1, 2, 3));

TEST(LegacyMigrationErrors, AnInvalidOldVersionIsRefusedNamingTheFile) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  testing::write_legacy_db(path, 3);
  {
    SqliteConnection db(path, 1000);
    db.exec("UPDATE version_info SET schema_version = 7");
  }
  try {
    SqliteStorage s(path);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("schema version 7"), std::string::npos) << what;
  }
  SqliteConnection db(path, 1000);  // left as it was, and no backup made
  EXPECT_EQ(db.query_text("SELECT count(*) FROM study_params"), "3");
  EXPECT_FALSE(std::filesystem::exists(path + ".qsearch-v3.bak"));
}

// Found by study_db_fuzzer: a parameter name that is not UTF-8 made the JSON library throw its
// own exception out of the migration.
TEST(LegacyMigrationErrors, ANameThatIsNotUtf8IsAnErrorAndTheFileIsLeftAsItWas) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  testing::write_legacy_db(path, 3);
  {
    SqliteConnection db(path, 1000);
    db.exec("UPDATE study_params SET param_name = CAST(X'61FF62' AS TEXT) WHERE position = 0");
  }
  try {
    SqliteStorage s(path);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
  SqliteConnection db(path, 1000);
  EXPECT_EQ(db.query_text("SELECT count(*) FROM study_params"), "3");
}

TEST(LegacyMigrationErrors, ProcessesOpeningAnOldFileTogetherMigrateItOnce) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  testing::write_legacy_db(path, 3);
  std::vector<std::thread> threads;
  std::vector<size_t> counts(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      SqliteStorage s(path);
      counts[i] = s.get_trials(*s.find_study("legacy")).size();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counts, (std::vector<size_t>{5, 5, 5, 5}));
  SqliteConnection db(path, 1000);
  EXPECT_EQ(db.query_text("SELECT count(*) FROM trials"), "6");
}

}  // namespace
}  // namespace qsearch::storage
