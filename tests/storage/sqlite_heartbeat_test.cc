// Heartbeats in SqliteStorage beyond the conformance suite (issue 8): study.db files written
// before the trial_heartbeats table (schema version 1) are migrated and their orphaned RUNNING
// trials can be reclaimed; a failed commit leaves the trial RUNNING.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <thread>

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

TEST(SqliteHeartbeat, AVersionOneFileIsMigratedAndItsOrphansReclaimed) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t study = 0;
  {
    SqliteStorage storage(path);
    study = storage.create_study("s", {Direction::kMinimize},
                                 {{"a", Distribution::int_range(0, 3)}}, false);
    ASSERT_TRUE(storage.create_trial(study, one));  // RUNNING, its process long gone
  }
  {
    // Make it the layout of qsearch before heartbeats.
    SqliteConnection db(path, 1000);
    db.exec("DROP TABLE trial_heartbeats; UPDATE version_info SET schema_version = 1;");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  SqliteStorage storage(path);
  {
    SqliteConnection db(path, 1000);
    EXPECT_EQ(db.query_text("SELECT schema_version FROM version_info"),
              std::to_string(kSchemaVersion));
  }
  // Without a heartbeat row, the trial's start time is its last sign of life.
  std::vector<FrozenTrial> reclaimed = storage.fail_stale_trials(study, 10);
  ASSERT_EQ(reclaimed.size(), 1u);
  EXPECT_TRUE(reclaimed[0].interrupted());
  // New trials beat normally.
  auto t = storage.create_trial(study, one);
  ASSERT_TRUE(t);
  storage.record_heartbeat({t->id});
  EXPECT_TRUE(storage.fail_stale_trials(study, 60000).empty());
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
