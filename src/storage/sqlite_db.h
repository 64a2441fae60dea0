// Thin RAII layer over the SQLite3 C API used by SqliteStorage: a connection (Db), prepared
// statements (Stmt) and transactions (Transaction). Every failure becomes a qsearch::Error that
// names the database file and says what to do (a locked file, not a database, corrupt, cannot
// create the file, read-only, disk full).
//
// Not thread-safe: SqliteStorage serialises all use of one Db with its own mutex.
//
//   Db db("study.db", /*busy_timeout_ms=*/60000);
//   Stmt& s = db.prepare("SELECT number FROM trials WHERE study_id = ?1");
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

struct sqlite3;
struct sqlite3_stmt;

namespace qsearch::storage {

class Db;

// A prepared statement owned by its Db. step() returns true while there is a row.
class Stmt {
 public:
  Stmt(Db& db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int index, int64_t value);
  Stmt& bind(int index, double value);
  Stmt& bind(int index, std::string_view text);
  Stmt& bind_null(int index);

  bool step();
  // Runs a statement that returns no rows, then resets it.
  void run();
  void reset();  // also clears bindings

  int64_t column_int64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  bool column_is_null(int col) const;

 private:
  Db& db_;
  sqlite3_stmt* stmt_;
};

class Db {
 public:
  // Opens (creating if needed) `path`; ":memory:" is a private in-memory database. Throws Error
  // naming the path when the file cannot be opened.
  Db(const std::string& path, int busy_timeout_ms);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements without results (schema text, pragmas, BEGIN/COMMIT).
  void exec(const std::string& sql);
  // Runs a single-row pragma / query and returns its first column as text (nullopt: no row).
  std::optional<std::string> query_text(const std::string& sql);
  // Prepared once per SQL text and cached for the connection's lifetime.
  Stmt& prepare(const std::string& sql);
  int64_t last_insert_rowid() const;

  const std::string& path() const { return path_; }
  int busy_timeout_ms() const { return busy_timeout_ms_; }
  // Rows returned by Stmt::step() since construction (the storage's cost model; tests use it).
  int64_t rows_read() const { return rows_read_; }

  // Throws the Error for SQLite result code `rc` while doing `what`.
  [[noreturn]] void raise(int rc, std::string_view what) const;

 private:
  friend class Stmt;
  friend class Transaction;
  std::string path_;
  int busy_timeout_ms_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> statements_;
  int64_t rows_read_ = 0;
};

// BEGIN IMMEDIATE (a writer: takes the database's write lock up front, so the reads inside see
// the latest data and nobody else writes until commit) or BEGIN DEFERRED (a consistent read
// snapshot). Rolls back in the destructor unless commit() was called.
class Transaction {
 public:
  enum class Kind { kRead, kWrite };
  Transaction(Db& db, Kind kind);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Db& db_;
  bool open_ = false;
};

}  // namespace qsearch::storage
