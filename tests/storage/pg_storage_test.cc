// RdbStorage on PostgreSQL beyond the conformance suite (pg_conformance.h): what only a server
// has. A database written by an unknown (newer) schema is refused with one line naming the URL,
// password hidden; opening an empty database for reading never creates tables; many processes
// opening one fresh database at once create the schema once, without errors. Skipped only when
// the PostgreSQL server binaries are absent.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "storage/pg_connection.h"
#include "storage/pg_test_util.h"
#include "storage/storage_url.h"
#include "support/pg_cluster.h"

namespace qsearch::storage {
namespace {

using test::PgCluster;

class PgStorageTest : public test::PgDatabaseTest {};

TEST_F(PgStorageTest, AnUnknownNewerSchemaIsRefusedNamingTheUrl) {
  open_storage(url_, Access::kCreate)->create_study("s", {search::Direction::kMinimize}, {}, false);
  auto c = connect(url_);
  c->exec("UPDATE version_info SET schema_version = 9999");
  // Optuna's schema also names its version in alembic_version.
  if (c->query_text("SELECT to_regclass('alembic_version') IS NOT NULL") == std::string("t")) {
    c->exec("UPDATE alembic_version SET version_num = 'v99.0.0.a'");
  }
  for (Access access : {Access::kCreate, Access::kExisting}) {
    std::string e = error_of([&] { open_storage(url_, access); });
    EXPECT_NE(e.find("version"), std::string::npos) << e;
    EXPECT_NE(e.find(hide_password(url_)), std::string::npos) << e;
    EXPECT_EQ(e.find(PgCluster::password()), std::string::npos) << e;
    EXPECT_EQ(e.find("qs%20p%40ss"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST_F(PgStorageTest, OpeningAnEmptyDatabaseForReadingCreatesNothing) {
  std::string e = error_of([&] { open_storage(url_, Access::kExisting); });
  EXPECT_NE(e.find("holds no study"), std::string::npos) << e;
  EXPECT_NE(e.find(hide_password(url_)), std::string::npos) << e;
  EXPECT_EQ(connect(url_)->query_text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"),
            "0");
}

TEST_F(PgStorageTest, ProcessesOpeningAFreshDatabaseTogetherCreateTheSchemaOnce) {
  constexpr int kProcs = 6;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        auto s = open_storage(url_, Access::kCreate);
        s->create_study("shared", {search::Direction::kMaximize}, {}, true);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "child: %s\n", ex.what());
        code = 1;
      }
      _exit(code);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto s = open_storage(url_, Access::kExisting);
  EXPECT_EQ(s->study_names(), std::vector<std::string>{"shared"});
}

}  // namespace
}  // namespace qsearch::storage
