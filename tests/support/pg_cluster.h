// A throwaway PostgreSQL cluster for tests (tests/support/pg_cluster.sh does the work: initdb +
// pg_ctl in a temporary directory, a Unix socket in that directory, no TCP port, run as an
// unprivileged user when the tests run as root).
//
//   class MyPgTest : public qsearch::test::PgDatabaseTest {};  // url_: a fresh, empty database
//   TEST_F(MyPgTest, Something) { open_storage(url_, ...); }
//   std::string url = PgCluster::shared().create_database();  // another fresh database's URL
//
// One cluster per test process: started by the first shared() call, stopped when the process
// exits (atexit, in the process that started it, never in a forked child) and, should the
// process die before that (a crash, SIGKILL), by the script's watchdog. A cluster that fails to
// start for any reason other than absent binaries fails the test with the server's log.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace qsearch::test {

class PgCluster {
 public:
  // The process's cluster, started on first use. Never null.
  static PgCluster& shared();

  // False when the PostgreSQL server binaries are absent (skip_reason() says so) or the
  // cluster failed to start (error() has the script's message; tests should fail, not skip).
  bool ok() const { return error_.empty() && skip_reason_.empty(); }
  bool skipped() const { return !skip_reason_.empty(); }
  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& error() const { return error_; }

  const std::string& dir() const { return dir_; }  // the data's and the socket's directory
  // The URL of database "studies" (created with the cluster).
  const std::string& url() const { return url_; }
  // The URL of `db` on this cluster (which need not exist; for error tests).
  std::string url_of(const std::string& db) const;
  // The password, plain (the URLs carry it percent-encoded).
  static const char* password() { return "qs p@ss:w/rd%"; }
  // Creates a fresh database (named qs_<n>) and returns its URL.
  std::string create_database();

  void stop();
  ~PgCluster();

 private:
  PgCluster();
  std::string script_;
  std::string dir_;
  std::string url_;
  std::string skip_reason_;
  std::string error_;
  int owner_pid_ = 0;
  int databases_ = 0;
};

// A fixture giving each test a fresh database of the process's cluster (url_). Skips only when
// the server binaries are absent; a cluster that did not start fails the test with its log.
class PgDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PgCluster& cluster = PgCluster::shared();
    if (cluster.skipped()) GTEST_SKIP() << cluster.skip_reason();
    ASSERT_TRUE(cluster.ok()) << cluster.error();
    url_ = cluster.create_database();
    ASSERT_FALSE(url_.empty()) << cluster.error();
  }
  static PgCluster& cluster() { return PgCluster::shared(); }
  std::string url_;
};

// Runs `command` through /bin/sh; returns its stdout (trailing newline removed) and sets
// *status to its exit status (-1 when it could not run or was killed).
std::string run_capture(const std::string& command, int* status);

}  // namespace qsearch::test
