// The SQLite driver of the study storage: SqliteConnection implements SqlConnection
// (storage/sql_connection.h) over the SQLite3 C API. Every failure becomes a qsearch::Error that
// names the database file and says what to do (a locked file, not a database, corrupt, cannot
// create the file, read-only, disk full).
//
// What only SQLite has lives here, not in the dialect-neutral RdbStorage: statements written
// with $N parameters are rewritten to ?N when prepared; begin(kWrite) is BEGIN IMMEDIATE (the
// file's write lock up front, so the reads inside see the latest data and nobody else writes until
// commit) and begin(kRead) BEGIN DEFERRED (a consistent snapshot); open_for_study() switches the
// file to WAL with synchronous = NORMAL.
//
// Not thread-safe: the storage serialises all use of one connection with its own mutex.
//
//   SqliteConnection db("study.db", /*busy_timeout_ms=*/60000);
//   SqlStatement& s = db.prepare("SELECT number FROM trials WHERE study_id = $1");
//   s.bind(1, study_id);
//   while (s.step()) use(s.column_int64(0));
//   s.reset();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/sql_connection.h"

struct sqlite3;
struct sqlite3_stmt;

namespace qsearch::storage {

class SqliteConnection;

// A prepared statement owned by its SqliteConnection.
class SqliteStatement : public SqlStatement {
 public:
  SqliteStatement(SqliteConnection& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement() override;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  using SqlStatement::bind;
  SqlStatement& bind(int index, int64_t value) override;
  SqlStatement& bind(int index, double value) override;
  SqlStatement& bind(int index, std::string_view text) override;
  SqlStatement& bind_null(int index) override;

  bool step() override;
  void run() override;
  void reset() override;

  int64_t column_int64(int col) const override;
  double column_double(int col) const override;
  std::string column_text(int col) const override;
  bool column_is_null(int col) const override;

 private:
  SqliteConnection& db_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection : public SqlConnection {
 public:
  // Opens (creating if needed) `path`; ":memory:" is a private in-memory database. Throws Error
  // naming the path when the file cannot be opened.
  SqliteConnection(const std::string& path, int busy_timeout_ms);
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }
  const std::string& display_name() const override { return path_; }
  void exec(const std::string& sql) override;
  std::optional<std::string> query_text(const std::string& sql) override;
  SqlStatement& prepare(const std::string& sql) override;
  void begin(TxnKind kind) override;
  void commit() override;
  void rollback() override;
  int64_t rows_read() const override { return rows_read_; }

  // What a study database needs before its schema is read: checks that the file is an SQLite
  // database (reading its header, before anything is written), then switches it to WAL (readers
  // never block the writer) with synchronous = NORMAL (a commit is durable against a killed
  // process; only a power cut can lose the last ones). Several processes opening a new file
  // together retry the switch within the busy timeout.
  void open_for_study();

  const std::string& path() const { return path_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }

  // Throws the Error for SQLite result code `rc` while doing `what`.
  [[noreturn]] void raise(int rc, std::string_view what) const;

 private:
  friend class SqliteStatement;
  std::string path_;
  int busy_timeout_ms_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<SqliteStatement>> statements_;
  int64_t rows_read_ = 0;
};

// `sql` with every $N parameter outside quoted text written ?N (SQLite's numbered form).
std::string sqlite_parameters(std::string_view sql);

}  // namespace qsearch::storage
