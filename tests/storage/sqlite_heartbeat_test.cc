// Heartbeats in SqliteStorage beyond the conformance suite (issue 8): study.db files written
// before the trial_heartbeats table (qsearch's schema version 1) are migrated and their orphaned
// RUNNING trials can be reclaimed; heartbeats are Optuna's UTC datetimes; a failed commit leaves
// the trial RUNNING.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

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

TEST(SqliteHeartbeat, AVersionOneFileIsMigratedAndItsOrphansReclaimed) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  // The layout of qsearch before heartbeats, with a RUNNING trial whose process is long gone.
  testing::write_legacy_db(path, 1);
  SqliteStorage storage(path);
  {
    SqliteConnection db(path, 1000);
    EXPECT_EQ(db.query_text("SELECT schema_version FROM version_info"),
              std::to_string(kOptunaSchemaVersion));
    EXPECT_EQ(db.query_text("SELECT count(*) FROM trial_heartbeats"), "0");
  }
  const int64_t study = *storage.find_study("legacy");
  // Without a heartbeat row, the trial's start time is its last sign of life.
  std::vector<FrozenTrial> reclaimed = storage.fail_stale_trials(study, 10);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_EQ(reclaimed[0].number, 3);
  EXPECT_EQ(reclaimed[0].datetime_start_ms, testing::kLegacyStart);
  EXPECT_TRUE(reclaimed[0].interrupted());
  // New trials beat normally.
  auto t = storage.create_trial(study, [](const std::vector<FrozenTrial>&) {
    return std::optional<std::vector<double>>(std::vector<double>{1, 0});
  });
  ASSERT_TRUE(t);
  storage.record_heartbeat({t->id});
  EXPECT_TRUE(storage.fail_stale_trials(study, 60000).empty());
}

// A heartbeat is written in UTC as Optuna's (SQLite's CURRENT_TIMESTAMP) and read back as such.
TEST(SqliteHeartbeat, HeartbeatsAreUtcDatetimesAsOptunaWritesThem) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage storage(path);
  const int64_t study = storage.create_study("s", {Direction::kMinimize},
                                             {{"a", Distribution::int_range(0, 3)}}, false);
  auto t = storage.create_trial(study, one);
  ASSERT_TRUE(t);
  storage.record_heartbeat({t->id});
  SqliteConnection db(path, 1000);
  const std::string beat = db.query_text("SELECT heartbeat FROM trial_heartbeats").value();
  const std::string utc = db.query_text("SELECT datetime('now')").value();
  EXPECT_EQ(beat.size(), 26u) << beat;  // YYYY-MM-DD HH:MM:SS.ffffff
  EXPECT_EQ(beat.substr(0, 13), utc.substr(0, 13)) << beat << " vs " << utc;  // same hour
  // A heartbeat from 10 minutes ago (as another process would have left it) is stale.
  db.exec("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-10 minutes')");
  EXPECT_EQ(storage.fail_stale_trials(study, 60000).size(), 1u);
}

// Trial start times are local (Optuna's datetime.now()) but liveness is judged in UTC: a trial a
// worker west of the reclaimer has just created is alive, not 8 hours silent.
TEST(SqliteHeartbeat, ANewTrialOfAWorkerInAnotherTimeZoneIsNotReclaimed) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  auto set_tz = [](const char* tz) {
    if (tz) {
      setenv("TZ", tz, 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  };
  int64_t study = 0;
  {
    set_tz("America/Los_Angeles");
    SqliteStorage worker(path);
    study = worker.create_study("s", {Direction::kMinimize}, {{"a", Distribution::int_range(0, 3)}},
                                false);
    ASSERT_TRUE(worker.create_trial(study, one));
  }
  set_tz("Asia/Tokyo");
  SqliteStorage reclaimer(path);
  const std::vector<FrozenTrial> reclaimed = reclaimer.fail_stale_trials(study, 30000);
  set_tz(old_tz ? saved.c_str() : nullptr);
  EXPECT_TRUE(reclaimed.empty()) << reclaimed.size() << " trial(s) reclaimed at once";
}

TEST(SqliteHeartbeat, AFinishThatCannotCommitLeavesTheTrialRunning) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage storage(path, {.busy_timeout_ms = 50});
  const int64_t study = storage.create_study("s", {Direction::kMinimize},
                                             {{"a", Distribution::int_range(0, 3)}}, false);
  auto t = storage.create_trial(study, one);
  ASSERT_TRUE(t);
  {
    // Another connection holds the write lock past the busy timeout: "database is locked".
    SqliteConnection other(path, 1000);
    other.exec("BEGIN IMMEDIATE");
    EXPECT_THROW(storage.finish_trial(t->id, TrialState::kComplete, {1.0}, {}, {}), Error);
    other.exec("ROLLBACK");
  }
  EXPECT_EQ(storage.get_trials(study)[0].state, TrialState::kRunning);
  {
    // The commit itself fails, as on a full disk (a file size limit: EFBIG instead of ENOSPC).
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ignore, &old);
    rlimit saved{};
    getrlimit(RLIMIT_FSIZE, &saved);
    rlimit tiny = saved;
    tiny.rlim_cur = 1;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    bool threw = false;
    try {
      storage.finish_trial(t->id, TrialState::kComplete, {1.0}, {}, {});
    } catch (const Error&) {
      threw = true;
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    sigaction(SIGXFSZ, &old, nullptr);
    EXPECT_TRUE(threw);
  }
  // Neither the file nor this connection's cache says it finished: it can still be recorded
  // (or reclaimed and re-run).
  EXPECT_EQ(storage.get_trials(study)[0].state, TrialState::kRunning);
  storage.finish_trial(t->id, TrialState::kComplete, {1.0}, {}, {});
  EXPECT_EQ(storage.get_trials(study)[0].state, TrialState::kComplete);
}

}  // namespace
}  // namespace qsearch::storage
