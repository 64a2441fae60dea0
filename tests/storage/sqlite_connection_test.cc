// SqliteConnection as a SqlConnection (storage/sql_connection.h): $N parameters, RETURNING ids,
// transactions.
#include <gtest/gtest.h>

#include "core/error.h"
#include "storage/sqlite_db.h"

namespace qsearch::storage {
namespace {

TEST(SqliteConnection, RewritesDollarParametersOutsideQuotedText) {
  EXPECT_EQ(sqlite_parameters("SELECT a FROM t WHERE b = $1 AND c = $12 OR d = $1"),
            "SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = ?1");
  EXPECT_EQ(sqlite_parameters("SELECT '$1', \"$2\", 'it''s $3', $4"),
            "SELECT '$1', \"$2\", 'it''s $3', ?4");
  EXPECT_EQ(sqlite_parameters("SELECT $ || $a"), "SELECT $ || $a");
}

TEST(SqliteConnection, BindsDollarParametersAndReturnsIds) {
  SqliteConnection db(":memory:", 1000);
  SqlConnection& conn = db;
  EXPECT_EQ(conn.dialect(), SqlDialect::kSqlite);
  conn.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b REAL, c INTEGER)");
  SqlStatement& insert = conn.prepare("INSERT INTO t (a, b, c) VALUES ($1, $2, $3) RETURNING id");
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    insert.bind(1, "x$1").bind(2, 0.1 * i).bind(3, int64_t{i});
    ASSERT_TRUE(insert.step());
    ids.push_back(insert.column_int64(0));
    insert.reset();
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3}));
  SqlStatement& s = conn.prepare("SELECT a, b FROM t WHERE c = $1 AND id = $1 + 1");
  s.bind(1, int64_t{2});
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.column_text(0), "x$1");
  EXPECT_DOUBLE_EQ(s.column_double(1), 0.2);
  EXPECT_FALSE(s.step());
  s.reset();
  EXPECT_EQ(conn.query_text("SELECT NULL"), std::nullopt);
}

TEST(SqliteConnection, TransactionsRollBackUnlessCommitted) {
  SqliteConnection db(":memory:", 1000);
  db.exec("CREATE TABLE t (a INTEGER)");
  {
    SqlTransaction txn(db, SqlConnection::TxnKind::kWrite);
    db.prepare("INSERT INTO t VALUES ($1)").bind(1, int64_t{1}).run();
  }
  EXPECT_EQ(db.query_text("SELECT count(*) FROM t"), "0");
  {
    SqlTransaction txn(db, SqlConnection::TxnKind::kWrite);
    db.prepare("INSERT INTO t VALUES ($1)").bind(1, int64_t{1}).run();
    txn.commit();
  }
  EXPECT_EQ(db.query_text("SELECT count(*) FROM t"), "1");
  EXPECT_THROW(db.prepare("SELECT nope FROM t"), Error);
}

}  // namespace
}  // namespace qsearch::storage
