// The SQL layer under the study storage: one connection to a database (SQLite file or
// PostgreSQL server), prepared statements and transactions, behind one interface so that the
// storage (Optuna's RDB schema, storage/schema.h) is written once for both back ends.
//
// Conventions every driver keeps:
// - Parameters are written $1, $2, ... (PostgreSQL's spelling); the SQLite driver rewrites them
//   to ?1, ?2, ... when it prepares the statement. A parameter may appear several times.
// - Ids of new rows come back through `INSERT ... RETURNING <id>` (SQLite >= 3.35, PostgreSQL),
//   read with step() + column_int64(0); there is no last_insert_rowid().
// - Text is UTF-8; doubles are bound and read as IEEE doubles (the PostgreSQL driver sends and
//   reads them as text with 17 significant digits, so they round-trip exactly).
// - Every failure is a qsearch::Error that names the database (display_name(): the file path,
//   or the URL with its password hidden) and says what to do.
// - Not thread-safe: the storage serialises use of one connection with its own mutex. After
//   fork() a child process opens its own connection.
//
//   SqlStatement& s = conn.prepare("SELECT number FROM trials WHERE study_id = $1");
//   s.bind(1, study_id);
//   while (s.step()) use(s.column_int64(0));
//   s.reset();
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace qsearch::storage {

enum class SqlDialect { kSqlite, kPostgres };

// A prepared statement owned by its connection (valid as long as the connection). step() returns
// true while there is a row; run() executes a statement without rows and resets it; reset()
// also clears the bindings.
class SqlStatement {
 public:
  virtual ~SqlStatement() = default;

  virtual SqlStatement& bind(int index, int64_t value) = 0;
  virtual SqlStatement& bind(int index, double value) = 0;
  virtual SqlStatement& bind(int index, std::string_view text) = 0;
  SqlStatement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  SqlStatement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  virtual SqlStatement& bind_null(int index) = 0;

  virtual bool step() = 0;
  virtual void run() = 0;
  virtual void reset() = 0;

  virtual int64_t column_int64(int col) const = 0;
  virtual double column_double(int col) const = 0;
  virtual std::string column_text(int col) const = 0;
  virtual bool column_is_null(int col) const = 0;
};

class SqlConnection {
 public:
  enum class TxnKind {
    kRead,   // a consistent read snapshot
    kWrite,  // a writer; SQLite: BEGIN IMMEDIATE (the file's write lock up front)
  };

  virtual ~SqlConnection() = default;

  virtual SqlDialect dialect() const = 0;
  // The file path or the URL with its password hidden: what error messages name.
  virtual const std::string& display_name() const = 0;

  // Runs one or more statements without results or parameters (schema text, BEGIN/COMMIT).
  virtual void exec(const std::string& sql) = 0;
  // Runs a single-row query without parameters and returns its first column as text (nullopt:
  // no row or NULL).
  virtual std::optional<std::string> query_text(const std::string& sql) = 0;
  // Prepared once per SQL text and cached for the connection's lifetime.
  virtual SqlStatement& prepare(const std::string& sql) = 0;

  virtual void begin(TxnKind kind) = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;  // never throws

  // Rows returned by step() since the connection opened (the storage's cost model; tests use it).
  virtual int64_t rows_read() const = 0;
};

// RAII transaction: begins in the constructor, rolls back in the destructor unless commit() was
// called.
class SqlTransaction {
 public:
  SqlTransaction(SqlConnection& conn, SqlConnection::TxnKind kind) : conn_(conn) {
    conn_.begin(kind);
    open_ = true;
  }
  ~SqlTransaction() {
    if (open_) conn_.rollback();
  }
  SqlTransaction(const SqlTransaction&) = delete;
  SqlTransaction& operator=(const SqlTransaction&) = delete;
  void commit() {
    conn_.commit();
    open_ = false;
  }

 private:
  SqlConnection& conn_;
  bool open_ = false;
};

}  // namespace qsearch::storage
