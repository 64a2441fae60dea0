// Storage URLs as SQLAlchemy/Optuna read them (storage/storage_url.h), and opening storages that
// must already exist (report, compare) without ever creating an empty database.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "storage/storage_url.h"
#include "storage/temp_dir.h"

namespace qsearch::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(StorageUrl, SqlalchemyFormsGiveTheDatabasePath) {
  EXPECT_EQ(parse_storage_url("sqlite:///rel.db").path, "rel.db");
  EXPECT_EQ(parse_storage_url("sqlite:///out/sub/study.db").path, "out/sub/study.db");
  EXPECT_EQ(parse_storage_url("sqlite:////abs/dir/x.db").path, "/abs/dir/x.db");
  EXPECT_EQ(parse_storage_url("sqlite+pysqlite:///rel.db").path, "rel.db");
  EXPECT_EQ(parse_storage_url("plain/path.sqlite3").path, "plain/path.sqlite3");
  for (const char* memory :
       {"sqlite://", "sqlite:///", "sqlite:///:memory:", ":memory:", "sqlite://?timeout=2"}) {
    EXPECT_TRUE(parse_storage_url(memory).memory()) << memory;
  }
}

TEST(StorageUrl, QueryParametersAreNotPartOfThePath) {
  StorageUrl u = parse_storage_url("sqlite:///rel.db?timeout=5");
  EXPECT_EQ(u.path, "rel.db");
  EXPECT_EQ(u.busy_timeout_ms, 5000);
  EXPECT_EQ(parse_storage_url("sqlite:////abs.db?timeout=0.25").busy_timeout_ms, 250);
  EXPECT_EQ(parse_storage_url("sqlite:////abs.db?timeout=0.25").path, "/abs.db");
  EXPECT_EQ(parse_storage_url("sqlite:///x.db").busy_timeout_ms, 60000);
  std::string e = error_of([] { parse_storage_url("sqlite:///x.db?check_same_thread=False"); });
  EXPECT_NE(e.find("check_same_thread"), std::string::npos) << e;
  EXPECT_NE(e.find("timeout"), std::string::npos) << e;
  for (const char* bad : {"sqlite:///x.db?timeout=", "sqlite:///x.db?timeout=abc",
                          "sqlite:///x.db?timeout=-1", "sqlite:///x.db?timeout=nan"}) {
    e = error_of([&] { parse_storage_url(bad); });
    EXPECT_NE(e.find("seconds"), std::string::npos) << bad << ": " << e;
  }
}

TEST(StorageUrl, RefusalsNameTheUrlAndTheAcceptedForms) {
  // PostgreSQL URLs: tests/storage/pg_url_test.cc.
  std::string e = error_of([] { parse_storage_url("sqlite://host/x.db"); });
  EXPECT_NE(e.find("host"), std::string::npos) << e;
  e = error_of([] { parse_storage_url(""); });
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = error_of([] { parse_storage_url("mysql://h/db"); });
  EXPECT_NE(e.find("'mysql'"), std::string::npos) << e;
  for (const std::string& msg : {error_of([] { parse_storage_url("sqlite://host/x.db"); }),
                                 error_of([] { parse_storage_url("study"); })}) {
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(OpenStorage, TimeoutReachesTheConnectionAndTheFileIsTheQueryFreePath) {
  TempDir dir;
  auto s = open_storage("sqlite:///" + dir.file("t.db") + "?timeout=3", Access::kCreate);
  s->create_study("s", {search::Direction::kMinimize},
                  {{"x", search::Distribution::int_range(0, 3)}}, false);
  EXPECT_TRUE(fs::exists(dir.file("t.db")));
  EXPECT_FALSE(fs::exists(dir.file("t.db?timeout=3")));
}

TEST(OpenStorage, ExistingAccessNeverCreatesADatabase) {
  TempDir dir;
  const std::string missing = dir.file("nope/study.db");
  for (const std::string& url : {"sqlite:///" + missing, missing, dir.file("nope.db")}) {
    std::string e = error_of([&] { open_storage(url, Access::kExisting); });
    EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_FALSE(fs::exists(dir.file("nope.db")));
  EXPECT_FALSE(fs::exists(dir.file("nope")));
  std::string e = error_of([] { open_storage(":memory:", Access::kExisting); });
  EXPECT_NE(e.find("in-memory"), std::string::npos) << e;
  // What a search created opens fine.
  open_storage(dir.file("made.db"), Access::kCreate)
      ->create_study("s", {search::Direction::kMinimize},
                     {{"x", search::Distribution::int_range(0, 3)}}, false);
  EXPECT_EQ(open_storage(dir.file("made.db"), Access::kExisting)->study_names().size(), 1u);
}

TEST(OpenStorage, DevicesAndDirectoriesAreNotDatabaseFiles) {
  TempDir dir;
  for (Access a : {Access::kCreate, Access::kExisting}) {
    std::string e = error_of([&] { open_storage("sqlite:////dev/null", a); });
    EXPECT_NE(e.find("'/dev/null'"), std::string::npos) << e;
    EXPECT_NE(e.find("device"), std::string::npos) << e;
    e = error_of([&] { open_storage("sqlite:///" + dir.path().string(), a); });
    EXPECT_NE(e.find("directory"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

// Processes opening one brand-new file at the same moment (a search creating its study.db while
// another process polls it): each must see either no schema or all of it, never "tables but no
// application id", which used to refuse the file as a foreign database.
TEST(OpenStorage, ConcurrentFirstOpensOfANewFileAllSucceed) {
  TempDir dir;
  constexpr int kRounds = 20, kProcs = 4;
  int failures = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::string path = dir.file(fmt::format("r{}.db", round));
    std::vector<pid_t> children;
    for (int p = 0; p < kProcs; ++p) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        int status = 0;
        try {
          for (int i = 0; i < 5; ++i) open_storage(path, Access::kCreate);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "round %d child %d: %s\n", round, p, e.what());
          status = 1;
        }
        _exit(status);
      }
      children.push_back(pid);
    }
    for (pid_t pid : children) {
      int status = 0;
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace qsearch::storage
