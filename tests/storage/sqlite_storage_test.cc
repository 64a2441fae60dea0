// What SqliteStorage adds to the storage contract (the contract itself is checked by the
// conformance suite in sqlite_conformance_test.cc): persistence, durability when the process
// dies, several connections, per-trial cost, refusals of bad files, and open_storage URLs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "search/memory_storage.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_storage.h"
#include "storage/temp_dir.h"

namespace qsearch::storage {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::SearchSpace;
using search::Storage;
using search::TrialState;
using testing::TempDir;

SearchSpace space() {
  return {{"fc1/config/weight_width", Distribution::int_range(0, 100000)},
          {"fc1/config/name", Distribution::categorical({"integer", "NA"})}};
}

Storage::Decide next_value() {
  return [](const std::vector<FrozenTrial>& h) -> std::optional<std::vector<double>> {
    return std::vector<double>{static_cast<double>(h.size()), 0.0};
  };
}

// Runs `body`, expecting an Error whose text contains every one of `parts`.
template <typename F>
void expect_error(F body, std::initializer_list<std::string> parts) {
  try {
    body();
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << part << "' not in: " << e.what();
    }
  }
}

TEST(SqliteStorage, StudiesAndTrialsPersistAcrossReopen) {
  TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t id;
  {
    SqliteStorage s(path);
    id = s.create_study("mnist", {Direction::kMaximize}, space(), false);
    s.set_study_user_attr(id, "seed", "42");
    for (int i = 0; i < 3; ++i) {
      auto t = s.create_trial(id, next_value(), {{"worker", "a:1"}});
      if (i < 2) s.finish_trial(t->id, TrialState::kComplete, {0.5 + i}, {{"m", "{}"}}, {});
    }
  }
  SqliteStorage s(path);
  EXPECT_EQ(s.find_study("mnist"), id);
  EXPECT_EQ(s.get_study(id).user_attrs.at("seed"), "42");
  EXPECT_EQ(s.create_study("mnist", {Direction::kMaximize}, space(), true), id);
  std::vector<FrozenTrial> trials = s.get_trials(id);
  ASSERT_EQ(trials.size(), 3u);
  EXPECT_EQ(trials[1].values, std::vector<double>{1.5});
  EXPECT_EQ(trials[1].user_attrs.at("m"), "{}");
  EXPECT_EQ(trials[2].state, TrialState::kRunning);
  EXPECT_EQ(s.create_trial(id, next_value())->number, 3);  // numbering continues
}

TEST(SqliteStorage, ConnectionsSeeEachOthersFinishes) {
  TempDir dir;
  SqliteStorage a(dir.file("study.db")), b(dir.file("study.db"));
  int64_t id = a.create_study("s", {Direction::kMinimize}, space(), false);
  auto t0 = a.create_trial(id, next_value());
  auto t1 = b.create_trial(id, next_value());
  EXPECT_EQ(t1->number, 1);
  ASSERT_EQ(b.get_trials(id).size(), 2u);  // b now caches trial 0 as RUNNING
  a.finish_trial(t0->id, TrialState::kComplete, {3.0}, {{"k", "\"v\""}}, {{"x", "y"}});
  std::vector<FrozenTrial> seen = b.get_trials(id);
  EXPECT_EQ(seen[0].state, TrialState::kComplete);
  EXPECT_EQ(seen[0].values, std::vector<double>{3.0});
  EXPECT_EQ(seen[0].user_attrs.at("k"), "\"v\"");
  EXPECT_EQ(seen[0].system_attrs.at("x"), "y");
  // And the other way: a finish through b is seen by a's decide.
  b.finish_trial(t1->id, TrialState::kFail, {}, {}, {{"fail_reason", "boom"}});
  a.create_trial(id, [&](const std::vector<FrozenTrial>& h) {
    EXPECT_EQ(h[1].state, TrialState::kFail);
    EXPECT_EQ(h[1].system_attrs.at("fail_reason"), "boom");
    return std::optional<std::vector<double>>{};
  });
  EXPECT_THROW(a.finish_trial(t1->id, TrialState::kComplete, {1.0}, {}, {}), Error);
}

// A finished trial survives its process being killed right after finish_trial returned.
TEST(SqliteStorage, TrialsFinishedBeforeAKillSurviveIt) {
  TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t id = SqliteStorage(path).create_study("s", {Direction::kMinimize}, space(), false);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SqliteStorage s(path);
    auto done = s.create_trial(id, next_value());
    s.finish_trial(done->id, TrialState::kComplete, {0.25}, {{"sampled_config", "{}"}}, {});
    s.create_trial(id, next_value());  // left RUNNING
    kill(getpid(), SIGKILL);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  std::vector<FrozenTrial> trials = SqliteStorage(path).get_trials(id);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].state, TrialState::kComplete);
  EXPECT_EQ(trials[0].values, std::vector<double>{0.25});
  EXPECT_EQ(trials[0].user_attrs.at("sampled_config"), "{}");
  EXPECT_EQ(trials[1].state, TrialState::kRunning);
}

// Finished trials are cached, so a create + finish reads the same few rows whatever the history.
TEST(SqliteStorage, PerTrialRowsReadDoNotGrowWithHistory) {
  TempDir dir;
  SqliteStorage s(dir.file("study.db"));
  int64_t id = s.create_study("s", {Direction::kMinimize, Direction::kMaximize}, space(), false);
  auto rows_for_one_trial = [&] {
    int64_t before = s.rows_read();
    auto t = s.create_trial(id, next_value(), {{"worker", "w"}});
    s.finish_trial(t->id, TrialState::kComplete, {1.0, 2.0}, {{"software_metrics", "{}"}}, {});
    return s.rows_read() - before;
  };
  for (int i = 0; i < 20; ++i) rows_for_one_trial();
  int64_t early = rows_for_one_trial();
  for (int i = 0; i < 1000; ++i) rows_for_one_trial();
  int64_t late = rows_for_one_trial();
  EXPECT_EQ(late, early);
  EXPECT_LE(late, 4);
  // get_trials after the history is cached reads nothing new either.
  s.get_trials(id);
  int64_t before = s.rows_read();
  EXPECT_EQ(s.get_trials(id).size(), 1022u);
  EXPECT_EQ(s.rows_read() - before, 0);
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Not a pass/fail test: prints the cost per trial (create_trial + finish_trial) of SqliteStorage
// on a file and in memory, and of InMemoryStorage, measured in the same run, for trials 0-99 and
// 1000-1099: wall time and process CPU time (user + system; less disturbed by other load).
TEST(SqliteStorage, MeasurePerTrialTime) {
  TempDir dir;
  auto measure = [](Storage& s, const char* name) {
    int64_t id = s.create_study("s", {Direction::kMinimize, Direction::kMaximize}, space(), false);
    const int kBlock = 100, kBlocks = 11;
    std::vector<double> wall_us, cpu_us;
    for (int b = 0; b < kBlocks; ++b) {
      auto start = std::chrono::steady_clock::now();
      double cpu_start = cpu_seconds();
      for (int i = 0; i < kBlock; ++i) {
        auto t = s.create_trial(id, next_value(), {{"worker", "host:1"}});
        s.finish_trial(t->id, TrialState::kComplete, {0.5, 4.0},
                       {{"software_metrics", R"({"loss": 0.69, "accuracy": 0.5})"},
                        {"hardware_metrics", R"({"average_bitwidth": 4.0})"}},
                       {});
      }
      wall_us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count() /
          kBlock);
      cpu_us.push_back((cpu_seconds() - cpu_start) * 1e6 / kBlock);
    }
    std::printf(
        "%-24s per trial: trials 0-99 %7.1f us wall %7.1f us cpu; trials 1000-1099 %7.1f us "
        "wall %7.1f us cpu\n",
        name, wall_us.front(), cpu_us.front(), wall_us.back(), cpu_us.back());
    EXPECT_EQ(s.get_trials(id).size(), static_cast<size_t>(kBlock * kBlocks));
  };
  SqliteStorage file(dir.file("study.db"));
  measure(file, "SqliteStorage (file)");
  SqliteStorage sqlite_memory(":memory:");
  measure(sqlite_memory, "SqliteStorage (:memory:)");
  search::InMemoryStorage memory;
  measure(memory, "InMemoryStorage");
}

TEST(SqliteStorage, RefusesAnOptunaSchemaRevisionItDoesNotKnow) {
  TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage{path};
  {
    SqliteConnection db(path, 1000);
    db.exec("UPDATE alembic_version SET version_num = 'v3.4.0.a'");
  }
  expect_error([&] { SqliteStorage s(path); }, {path, "v3.4.0.a", "upgrade qsearch"});
  {
    SqliteConnection db(path, 1000);
    db.exec("UPDATE alembic_version SET version_num = 'v3.0.0.c'");
  }
  expect_error([&] { SqliteStorage s(path); }, {path, "v3.0.0.c", "optuna storage upgrade"});
  {
    SqliteConnection db(path, 1000);
    db.exec(
        "UPDATE alembic_version SET version_num = 'v3.0.0.d'; "
        "UPDATE version_info SET schema_version = 99");
  }
  expect_error([&] { SqliteStorage s(path); }, {path, "schema version 99"});
}

TEST(SqliteStorage, RefusesFilesThatAreNotStudyDatabases) {
  TempDir dir;
  const std::string text = dir.file("notes.db");
  std::ofstream(text) << "this is not a database, just some text that is long enough......\n";
  expect_error([&] { SqliteStorage s(text); }, {text, "not an SQLite database"});

  const std::string foreign = dir.file("other.db");
  {
    SqliteConnection db(foreign, 1000);
    db.exec("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)");
  }
  expect_error([&] { SqliteStorage s(foreign); },
               {foreign, "not a study database of qsearch or Optuna"});
  {
    SqliteConnection db(foreign, 1000);  // nothing was written to it
    EXPECT_EQ(db.query_text("PRAGMA journal_mode"), "delete");
  }

  expect_error([&] { SqliteStorage s(dir.path().string()); }, {"is a directory"});
}

TEST(SqliteStorage, ReportsACorruptFile) {
  TempDir dir;
  const std::string path = dir.file("study.db");
  {
    SqliteStorage s(path);
    int64_t id = s.create_study("s", {Direction::kMinimize}, space(), false);
    for (int i = 0; i < 200; ++i) {
      auto t = s.create_trial(id, next_value());
      s.finish_trial(t->id, TrialState::kComplete, {1.0}, {{"big", std::string(500, 'x')}}, {});
    }
  }  // the last connection closing checkpoints the WAL into the main file
  auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 40000u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8192);
    std::string garbage(size - 8192, '\xab');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  expect_error(
      [&] {
        SqliteStorage s(path);
        s.get_trials(*s.find_study("s"));
      },
      {path, "corrupt"});
}

TEST(SqliteStorage, ReportsMissingAndUnwritableDirectories) {
  TempDir dir;
  const std::string missing = dir.file("no/such/dir/study.db");
  expect_error([&] { SqliteStorage s(missing); }, {missing, "does not exist"});
  // /proc exists but nobody (root included) can create files in it.
  expect_error([&] { SqliteStorage s("/proc/qsearch_study.db"); },
               {"/proc/qsearch_study.db", "writable"});
}

TEST(SqliteStorage, AWriterThatWaitsTooLongGetsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage s(path, SqliteStorage::Options{.busy_timeout_ms = 150});
  int64_t id = s.create_study("s", {Direction::kMinimize}, space(), false);
  SqliteConnection other(path, 1000);
  other.exec("BEGIN IMMEDIATE");
  auto start = std::chrono::steady_clock::now();
  expect_error([&] { s.create_trial(id, next_value()); }, {path, "locked", "150 ms"});
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(140));
  other.exec("COMMIT");
  EXPECT_EQ(s.create_trial(id, next_value())->number, 0);  // nothing half-done was left behind
}

TEST(OpenStorage, AcceptsSqliteUrlsPathsAndMemory) {
  TempDir dir;
  auto a = open_storage("sqlite:///" + dir.file("a.db"));  // sqlite:////abs/path
  a->create_study("s", {Direction::kMinimize}, space(), false);
  EXPECT_TRUE(std::filesystem::exists(dir.file("a.db")));
  open_storage(dir.file("b.sqlite"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("b.sqlite")));
  for (const char* memory : {":memory:", "sqlite:///:memory:"}) {
    auto m = open_storage(memory);
    EXPECT_TRUE(m->study_names().empty());
  }
  expect_error([] { open_storage("postgresql://user:pw@host"); },
               {"postgresql://user:***@host", "names no database"});
  expect_error([] { open_storage("mysql://host/db"); }, {"mysql://host/db", "sqlite:///", ".db"});
  expect_error([] { open_storage("study"); }, {"'study'", ":memory:"});
}

}  // namespace
}  // namespace qsearch::storage
