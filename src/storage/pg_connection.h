// PgConnection: the SqlConnection (storage/sql_connection.h) of a PostgreSQL server, over libpq.
// The study storage runs on it unchanged when many workers on many machines share one study.
//
//   PgConnection conn(PgParams{{"host", "db.lan"}, {"user", "qs"}, {"password", "..."},
//                              {"dbname", "studies"}},
//                     "postgresql://qs:***@db.lan/studies");
//   SqlTransaction txn(conn, SqlConnection::TxnKind::kWrite);
//   conn.prepare("INSERT INTO t(x) VALUES ($1) RETURNING id").bind(1, 0.5).step();
//   txn.commit();
//
// What the driver does:
// - Statements: PQprepare once per SQL text (named qs1, qs2, ... on this connection), then
//   PQexecPrepared with text parameters: integers in decimal, doubles as %.17g (exact) with
//   'Infinity', '-Infinity' and 'NaN' for the non-finite ones (PostgreSQL's float8 spellings),
//   text as is. Results come back as text and are parsed; the server's float8 output is the
//   shortest exact form, so doubles round-trip bit for bit (NaN stays NaN; SQLite has no NaN).
// - Transactions: kRead is BEGIN ISOLATION LEVEL REPEATABLE READ (one snapshot for all reads).
//   kWrite is BEGIN (READ COMMITTED) followed by pg_advisory_xact_lock(kWriterLockKey): writers
//   of one database take turns, exactly like SQLite's BEGIN IMMEDIATE, and every statement after
//   the lock sees everything earlier writers committed. So create_trial (read the history, let
//   the sampler decide, insert) is atomic across processes and machines without any PostgreSQL
//   specific SQL in the storage; a storage may still take row locks (SELECT ... FOR UPDATE) of
//   its own, always after this lock, so the order of locks is fixed and no deadlock can arise.
//   commit() checks that the server really committed (COMMIT of a failed transaction answers
//   ROLLBACK) and throws otherwise.
// - Retries: a statement outside a transaction (autocommit) that fails with a serialization
//   failure (40001) or deadlock (40P01) is retried, up to 5 times; a connection lost outside a
//   transaction (server restart, idle timeout) is re-opened once and the statement (or BEGIN)
//   re-run, with the statements prepared again. Inside a transaction nothing is retried (the
//   caller's earlier statements would be lost): the Error says to retry the command.
// - Errors: one line naming the URL with its password hidden and the fix: server down or
//   unreachable, wrong user or password, a missing database or role, no pg_hba.conf entry,
//   too many connections, and SQL errors with their SQLSTATE.
// - After fork() the child must open its own PgConnection; destroying the parent's copy in the
//   child only closes the child's file descriptor (the parent's session is left intact).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/sql_connection.h"

struct pg_conn;
struct pg_result;

namespace qsearch::storage {

// libpq connection keywords and values (host, port, user, password, dbname, sslmode, ...), as
// PQconnectdbParams takes them. storage_url.h builds them from a postgresql:// URL.
using PgParams = std::vector<std::pair<std::string, std::string>>;

// Whether libpq knows `keyword` as a connection option (host, port, sslmode, connect_timeout,
// ...): a postgresql:// URL's query may carry any of them, as with SQLAlchemy + psycopg2.
bool is_libpq_option(const std::string& keyword);

// The advisory lock key kWrite transactions take (ASCII "qsearch" in the low bytes).
inline constexpr int64_t kWriterLockKey = 0x71736561726368;

class PgConnection;

class PgStatement final : public SqlStatement {
 public:
  PgStatement(PgConnection& conn, std::string sql);
  ~PgStatement() override;
  PgStatement(const PgStatement&) = delete;
  PgStatement& operator=(const PgStatement&) = delete;

  SqlStatement& bind(int index, int64_t value) override;
  SqlStatement& bind(int index, double value) override;
  SqlStatement& bind(int index, std::string_view text) override;
  SqlStatement& bind_null(int index) override;
  using SqlStatement::bind;

  bool step() override;
  void run() override;
  void reset() override;

  int64_t column_int64(int col) const override;
  double column_double(int col) const override;
  std::string column_text(int col) const override;
  bool column_is_null(int col) const override;

 private:
  friend class PgConnection;
  void ensure_prepared();
  void execute();
  void clear_result();
  const char* value(int col) const;
  std::string& slot(int index);

  PgConnection& conn_;
  std::string sql_;
  std::string name_;
  int64_t prepared_generation_ = -1;  // the connection generation the statement lives in
  int nparams_ = 0;
  std::vector<std::string> values_;
  std::vector<char> is_null_;
  pg_result* result_ = nullptr;
  int row_ = -1;  // the current row of result_; -1 before the first step()
  bool executed_ = false;
};

class PgConnection final : public SqlConnection {
 public:
  // Connects; throws Error naming `display_name` (the URL, password hidden) when the server is
  // unreachable, refuses the credentials, or lacks the database.
  PgConnection(PgParams params, std::string display_name);
  ~PgConnection() override;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }
  const std::string& display_name() const override { return display_name_; }

  void exec(const std::string& sql) override;
  std::optional<std::string> query_text(const std::string& sql) override;
  SqlStatement& prepare(const std::string& sql) override;

  void begin(TxnKind kind) override;
  void commit() override;
  void rollback() override;

  int64_t rows_read() const override { return rows_read_; }

  // The server's major version (e.g. 15).
  int server_major_version() const;
  // Connections re-opened after a loss (tests).
  int64_t reconnects() const { return generation_; }
  // Autocommit statements re-run after a serialization failure or deadlock (tests).
  int64_t conflict_retries() const { return conflict_retries_; }

  // Throws the Error for a failed result (or a lost connection when `res` is null).
  [[noreturn]] void raise(const pg_result* res, const std::string& what) const;

 private:
  friend class PgStatement;
  void connect();
  bool connection_ok() const;
  // Runs `sql` through the simple query protocol; retries outside a transaction as documented.
  pg_result* exec_result(const std::string& sql);
  // Whether a failed autocommit attempt may run again: a lost connection (re-opened here) or a
  // serialization failure / deadlock. `attempt` counts from 0.
  bool may_retry(const pg_result* res, int attempt);

  PgParams params_;
  std::string display_name_;
  pg_conn* conn_ = nullptr;
  pid_t owner_pid_ = 0;
  int64_t generation_ = 0;
  int64_t conflict_retries_ = 0;
  int64_t next_statement_ = 0;
  bool in_transaction_ = false;
  std::unordered_map<std::string, std::unique_ptr<PgStatement>> statements_;
  int64_t rows_read_ = 0;
};

}  // namespace qsearch::storage
