// PgConnection (storage/pg_connection.h) against a throwaway PostgreSQL cluster
// (tests/support/pg_cluster.h): every type round-trips, NULLs, exact doubles including the
// non-finite ones, transactions and the writers' lock, reconnects, and errors that name the URL
// with its password hidden. Skipped only when the PostgreSQL server binaries are absent.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>

#include "core/error.h"
#include "storage/pg_connection.h"
#include "storage/pg_test_util.h"
#include "storage/storage_url.h"
#include "support/pg_cluster.h"

namespace qsearch::storage {
namespace {

using test::PgCluster;
using Kind = SqlConnection::TxnKind;

class PgConnectionTest : public test::PgDatabaseTest {
 protected:
  void SetUp() override {
    test::PgDatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    conn_ = connect(url_);
  }
  std::unique_ptr<PgConnection> conn_;
};

TEST_F(PgConnectionTest, EveryTypeRoundTripsAndNullsStayNull) {
  PgConnection& c = *conn_;
  EXPECT_EQ(c.dialect(), SqlDialect::kPostgres);
  EXPECT_GE(c.server_major_version(), 10);
  c.exec(
      "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, s TEXT, "
      "ts TIMESTAMP)");
  const double denorm = std::numeric_limits<double>::denorm_min();
  const std::vector<double> doubles = {0.1,
                                       1.0 / 3.0,
                                       -0.0,
                                       denorm,
                                       std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::lowest(),
                                       1e-300,
                                       123456789.123456789,
                                       std::numeric_limits<double>::infinity(),
                                       -std::numeric_limits<double>::infinity(),
                                       std::numeric_limits<double>::quiet_NaN()};
  const std::vector<int64_t> ints = {0, -1, std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max()};
  const std::vector<std::string> texts = {"", "plain", "it's \"quoted\"\n\ttabbed\\",
                                          "naïve ünïcode 数字 🙂", "{\"json\": [1, 2]}"};
  SqlStatement& ins = c.prepare("INSERT INTO t (i, d, s) VALUES ($1, $2, $3) RETURNING id");
  std::vector<int64_t> ids;
  const size_t n = std::max({doubles.size(), ints.size(), texts.size()});
  for (size_t k = 0; k < n; ++k) {
    ins.bind(1, ints[k % ints.size()]).bind(2, doubles[k % doubles.size()]);
    ins.bind(3, texts[k % texts.size()]);
    ASSERT_TRUE(ins.step());
    ids.push_back(ins.column_int64(0));
    EXPECT_FALSE(ins.step());
    ins.reset();
  }
  SqlStatement& nul = c.prepare("INSERT INTO t (i, d, s) VALUES ($1, $2, $3) RETURNING id");
  EXPECT_EQ(&nul, &ins) << "one prepared statement per SQL text";
  nul.bind_null(1).bind_null(2).bind_null(3);
  ASSERT_TRUE(nul.step());
  const int64_t null_id = nul.column_int64(0);
  nul.reset();

  SqlStatement& get = c.prepare("SELECT i, d, s, ts FROM t WHERE id = $1");
  for (size_t k = 0; k < n; ++k) {
    get.bind(1, ids[k]);
    ASSERT_TRUE(get.step());
    EXPECT_EQ(get.column_int64(0), ints[k % ints.size()]);
    const double want = doubles[k % doubles.size()];
    const double got = get.column_double(1);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << k;
    } else {
      EXPECT_EQ(std::memcmp(&want, &got, sizeof want), 0)
          << "double not bit-exact: " << want << " came back " << got;
    }
    EXPECT_EQ(get.column_text(2), texts[k % texts.size()]);
    EXPECT_FALSE(get.column_is_null(0));
    EXPECT_FALSE(get.column_is_null(2));  // '' is not NULL in PostgreSQL
    EXPECT_TRUE(get.column_is_null(3));
    get.reset();
  }
  get.bind(1, null_id);
  ASSERT_TRUE(get.step());
  for (int col = 0; col < 4; ++col) EXPECT_TRUE(get.column_is_null(col)) << col;
  EXPECT_EQ(get.column_int64(0), 0);
  EXPECT_EQ(get.column_double(1), 0.0);
  EXPECT_EQ(get.column_text(2), "");
  get.reset();

  // Text into a timestamp column, read back as text (the session is UTC, ISO).
  c.prepare("UPDATE t SET ts = $1 WHERE id = $2")
      .bind(1, "2026-12-06 11:30:00.123456")
      .bind(2, ids[0])
      .run();
  EXPECT_EQ(c.query_text(fmt::format("SELECT ts FROM t WHERE id = {}", ids[0])),
            "2026-12-06 11:30:00.123456");
  EXPECT_EQ(c.query_text("SELECT NULL"), std::nullopt);
  EXPECT_EQ(c.query_text("SELECT 1 WHERE false"), std::nullopt);
  // Booleans read as integers.
  SqlStatement& b = c.prepare("SELECT $1::bigint > 0, $1::bigint < 0");
  b.bind(1, int64_t{5});
  ASSERT_TRUE(b.step());
  EXPECT_EQ(b.column_int64(0), 1);
  EXPECT_EQ(b.column_int64(1), 0);
  b.reset();
}

TEST_F(PgConnectionTest, AParameterMayAppearTwiceAndRowsReadCountsRows) {
  conn_->exec("CREATE TABLE n (x BIGINT); INSERT INTO n SELECT generate_series(1, 10)");
  const int64_t before = conn_->rows_read();
  SqlStatement& s = conn_->prepare("SELECT x FROM n WHERE x >= $1 AND x < $1 + 3 ORDER BY x");
  s.bind(1, int64_t{4});
  std::vector<int64_t> got;
  while (s.step()) got.push_back(s.column_int64(0));
  s.reset();
  EXPECT_EQ(got, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(conn_->rows_read() - before, 3);
  // reset() clears the bindings: unbound parameters are NULL, so nothing matches.
  EXPECT_FALSE(s.step());
  s.reset();
}

TEST_F(PgConnectionTest, CommitIsSeenRollbackIsNotAndReadsAreOneSnapshot) {
  auto other = connect(url_);
  conn_->exec("CREATE TABLE t (x BIGINT)");
  {
    SqlTransaction txn(*conn_, Kind::kWrite);
    conn_->prepare("INSERT INTO t VALUES ($1)").bind(1, int64_t{1}).run();
    txn.commit();
  }
  {
    SqlTransaction txn(*conn_, Kind::kWrite);
    conn_->prepare("INSERT INTO t VALUES ($1)").bind(1, int64_t{2}).run();
    // destroyed without commit(): rolled back
  }
  EXPECT_EQ(other->query_text("SELECT string_agg(x::text, ',') FROM t"), "1");

  // A read transaction sees one snapshot, whatever commits meanwhile.
  SqlTransaction read(*conn_, Kind::kRead);
  EXPECT_EQ(conn_->query_text("SELECT count(*) FROM t"), "1");
  other->exec("INSERT INTO t VALUES (3)");
  EXPECT_EQ(conn_->query_text("SELECT count(*) FROM t"), "1");
  read.commit();
  EXPECT_EQ(conn_->query_text("SELECT count(*) FROM t"), "2");
}

TEST_F(PgConnectionTest, AFailedTransactionNeverReportsACommit) {
  conn_->exec("CREATE TABLE t (x BIGINT UNIQUE)");
  conn_->begin(Kind::kWrite);
  conn_->exec("INSERT INTO t VALUES (1)");
  std::string e = error_of([&] { conn_->exec("INSERT INTO t VALUES (1)"); });
  EXPECT_NE(e.find("23505"), std::string::npos) << e;
  e = error_of([&] { conn_->commit(); });
  EXPECT_NE(e.find("rolled the transaction back"), std::string::npos) << e;
  EXPECT_EQ(conn_->query_text("SELECT count(*) FROM t"), "0");
}

TEST_F(PgConnectionTest, WritersTakeTurns) {
  // While one writer is open, another cannot begin (lock_timeout makes the wait an error
  // instead of a hang); once it commits, the other can.
  auto other = connect(url_);
  other->exec("SET lock_timeout = '200ms'");
  conn_->begin(Kind::kWrite);
  std::string e = error_of([&] { other->begin(Kind::kWrite); });
  EXPECT_NE(e.find("55P03"), std::string::npos) << e;
  other->rollback();
  // Readers are not blocked by a writer.
  other->begin(Kind::kRead);
  other->commit();
  conn_->commit();
  other->begin(Kind::kWrite);
  other->commit();
}

TEST_F(PgConnectionTest, ReadModifyWriteInWriteTransactionsLosesNoUpdateAcrossProcesses) {
  // Under READ COMMITTED alone, read-then-update from several processes loses updates; the
  // writers' lock makes each transaction atomic, as create_trial needs.
  conn_->exec("CREATE TABLE counter (v BIGINT); INSERT INTO counter VALUES (0)");
  constexpr int kProcs = 4, kEach = 50;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        auto c = connect(url_);
        for (int k = 0; k < kEach; ++k) {
          SqlTransaction txn(*c, Kind::kWrite);
          SqlStatement& r = c->prepare("SELECT v FROM counter");
          if (!r.step()) code = 3;
          const int64_t v = r.column_int64(0);
          r.reset();
          c->prepare("UPDATE counter SET v = $1").bind(1, v + 1).run();
          txn.commit();
        }
      } catch (const std::exception&) {
        code = 2;
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
  EXPECT_EQ(conn_->query_text("SELECT v FROM counter"), std::to_string(kProcs * kEach));
}

TEST_F(PgConnectionTest, ALostConnectionIsReopenedOutsideATransactionOnly) {
  auto killer = connect(url_);
  auto pid_of = [](PgConnection& c) { return *c.query_text("SELECT pg_backend_pid()"); };
  SqlStatement& s = conn_->prepare("SELECT $1::bigint + 1");
  killer->exec("SELECT pg_terminate_backend(" + pid_of(*conn_) + ")");
  s.bind(1, int64_t{41});
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.column_int64(0), 42);
  s.reset();
  EXPECT_EQ(conn_->reconnects(), 1);

  conn_->begin(Kind::kWrite);
  killer->exec("SELECT pg_terminate_backend(" + pid_of(*conn_) + ")");
  std::string e = error_of([&] { conn_->exec("SELECT 1"); });
  EXPECT_NE(e.find("connection to the server was lost"), std::string::npos) << e;
  EXPECT_EQ(e.find(PgCluster::password()), std::string::npos) << e;
  conn_->rollback();
  EXPECT_EQ(conn_->query_text("SELECT 7"), "7");  // and usable again afterwards
}

TEST_F(PgConnectionTest, AnAutocommitStatementChosenAsDeadlockVictimIsRetried) {
  // Two statements lock rows 1 and 2 in opposite orders with a pause between: the server breaks
  // the deadlock by failing one of them (40P01), which, outside a transaction, is safe to re-run.
  conn_->exec(
      "CREATE TABLE r (id BIGINT PRIMARY KEY, v BIGINT); INSERT INTO r VALUES (1, 0), (2, 0);"
      "CREATE FUNCTION bump_two(a BIGINT, b BIGINT) RETURNS BIGINT AS $$ BEGIN "
      "UPDATE r SET v = v + 1 WHERE id = a; PERFORM pg_sleep(1); "
      "UPDATE r SET v = v + 1 WHERE id = b; RETURN 1; END $$ LANGUAGE plpgsql");
  auto other = connect(url_);
  std::string error;
  std::thread t([&] {
    try {
      other->prepare("SELECT bump_two($1, $2)").bind(1, int64_t{2}).bind(2, int64_t{1}).run();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  std::string mine;
  try {
    conn_->prepare("SELECT bump_two($1, $2)").bind(1, int64_t{1}).bind(2, int64_t{2}).run();
  } catch (const Error& e) {
    mine = e.what();
  }
  t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(mine, "");
  EXPECT_EQ(conn_->query_text("SELECT string_agg(v::text, ',' ORDER BY id) FROM r"), "2,2");
  EXPECT_EQ(conn_->conflict_retries() + other->conflict_retries(), 1);
}

TEST_F(PgConnectionTest, AForkedChildDroppingItsCopyLeavesTheParentConnected) {
  auto copy = connect(url_);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    copy.reset();  // the destructor in the child
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(copy->query_text("SELECT 5"), "5");
  EXPECT_EQ(copy->reconnects(), 0);
}

TEST_F(PgConnectionTest, SqlErrorsNameTheUrlWithoutThePassword) {
  std::string e = error_of([&] { conn_->prepare("SELECT * FROM no_such_table"); });
  EXPECT_NE(e.find("42P01"), std::string::npos) << e;
  EXPECT_NE(e.find("no_such_table"), std::string::npos) << e;
  EXPECT_NE(e.find("qsearch:***@/"), std::string::npos) << e;
  EXPECT_EQ(e.find(PgCluster::password()), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

// Every connection failure: one line, the URL with *** for the password, and what to do.
void expect_connect_error(const std::string& url, const std::string& says) {
  std::string e = error_of([&] { connect(url); });
  EXPECT_NE(e.find(says), std::string::npos) << url << ": " << e;
  EXPECT_NE(e.find(hide_password(url).substr(0, 30)), std::string::npos) << e;
  EXPECT_EQ(e.find(PgCluster::password()), std::string::npos) << e;
  EXPECT_EQ(e.find("qs%20p%40ss"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST_F(PgConnectionTest, ConnectionErrorsSayWhatToDo) {
  const std::string base = cluster().url();
  std::string wrong = base;
  wrong.replace(wrong.find("qs%20p%40ss"), 11, "wrong%20pw%40");
  expect_connect_error(wrong, "wrong user name or password");
  expect_connect_error(cluster().url_of("no_such_db"), "createdb");
  std::string nouser = base;
  nouser.replace(nouser.find("qsearch:"), 8, "nobody_here:");
  expect_connect_error(nouser, "wrong user name or password");
  // The server is down: no socket in that directory.
  std::string down = base.substr(0, base.find("?host=")) + "?host=/nonexistent_qsearch_dir";
  expect_connect_error(down, "not running or not reachable");
  // Connection refused over TCP: nothing listens on port 1 of the loopback address.
  expect_connect_error("postgresql://qsearch:qs%20p%40ss%3Aw%2Frd%25@127.0.0.1:1/studies",
                       "Connection refused");
}

}  // namespace
}  // namespace qsearch::storage
