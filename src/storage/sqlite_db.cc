#include "storage/sqlite_db.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

#include "core/check.h"
#include "core/error.h"

namespace qsearch::storage {
namespace {

// What the user can do about each kind of failure; the raw SQLite message follows it.
std::string advice(int rc, const std::string& path, int busy_timeout_ms) {
  if (rc == SQLITE_BUSY_SNAPSHOT) {
    return fmt::format(
        "study database '{}' was changed by another connection in the middle of a read-then-"
        "write transaction (a qsearch bug: writers must begin IMMEDIATE); retry the command",
        path);
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return fmt::format(
          "study database '{}' stayed locked for more than {} ms (another process holds a write "
          "transaction). Wait for it to finish, raise the busy timeout, or give this search its "
          "own study file",
          path, busy_timeout_ms);
    case SQLITE_NOTADB:
      return fmt::format(
          "'{}' is not an SQLite database. Point the storage at a new file or at a qsearch "
          "study.db",
          path);
    case SQLITE_CORRUPT:
      return fmt::format(
          "study database '{}' is corrupt. Restore it from a backup, or move it away and start a "
          "new study",
          path);
    case SQLITE_CANTOPEN:
      return fmt::format(
          "cannot open or create study database '{}': check that its directory exists and is "
          "writable",
          path);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return fmt::format(
          "study database '{}' is read-only: the file and its directory must be writable (SQLite "
          "creates '-wal' and '-shm' files beside it)",
          path);
    case SQLITE_FULL:
      return fmt::format("the disk holding study database '{}' is full: free some space", path);
    case SQLITE_IOERR:
      return fmt::format("I/O error on study database '{}': check the disk and the file system",
                         path);
    default:
      return fmt::format("SQLite error on study database '{}'", path);
  }
}

}  // namespace

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

SqlStatement& SqliteStatement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) db_.raise(rc, "binding a parameter");
  return *this;
}

SqlStatement& SqliteStatement::bind(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) db_.raise(rc, "binding a parameter");
  return *this;
}

SqlStatement& SqliteStatement::bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_.raise(rc, "binding a parameter");
  return *this;
}

SqlStatement& SqliteStatement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) db_.raise(rc, "binding a parameter");
  return *this;
}

bool SqliteStatement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    ++db_.rows_read_;
    return true;
  }
  if (rc == SQLITE_DONE) return false;
  std::string sql = sqlite3_sql(stmt_);
  sqlite3_reset(stmt_);
  db_.raise(rc, fmt::format("running '{}'", sql.substr(0, 60)));
}

void SqliteStatement::run() {
  while (step()) {
  }
  reset();
}

void SqliteStatement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStatement::column_int64(int col) const { return sqlite3_column_int64(stmt_, col); }

double SqliteStatement::column_double(int col) const { return sqlite3_column_double(stmt_, col); }

std::string SqliteStatement::column_text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return text ? std::string(reinterpret_cast<const char*>(text), n) : std::string();
}

bool SqliteStatement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::string sqlite_parameters(std::string_view sql) {
  std::string out(sql);
  char quote = 0;  // inside '...' or "..." when set
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (quote) {
      if (c == quote) quote = 0;  // a doubled quote re-enters at once: still correct
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '$' && i + 1 < out.size() && out[i + 1] >= '0' && out[i + 1] <= '9') {
      out[i] = '?';
    }
  }
  return out;
}

SqliteConnection::SqliteConnection(const std::string& path, int busy_timeout_ms)
    : path_(path), busy_timeout_ms_(busy_timeout_ms) {
  // NOMUTEX: the owner serialises access; SQLite's own mutex would only add cost.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    fail("{} ({})", advice(rc, path_, busy_timeout_ms_), message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

SqliteConnection::~SqliteConnection() {
  statements_.clear();  // statements must be finalised before the connection closes
  sqlite3_close(db_);
}

void SqliteConnection::exec(const std::string& sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message ? message : "";
    sqlite3_free(message);
    fail("{} ({} while running '{}')", advice(rc, path_, busy_timeout_ms_), text,
         sql.substr(0, 60));
  }
}

std::optional<std::string> SqliteConnection::query_text(const std::string& sql) {
  SqlStatement& s = prepare(sql);
  std::optional<std::string> out;
  if (s.step() && !s.column_is_null(0)) out = s.column_text(0);
  s.reset();
  return out;
}

SqlStatement& SqliteConnection::prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return *it->second;
  const std::string text = sqlite_parameters(sql);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, text.c_str(), static_cast<int>(text.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) raise(rc, fmt::format("preparing '{}'", sql.substr(0, 60)));
  QSEARCH_CHECK(stmt != nullptr);
  auto [pos, inserted] = statements_.emplace(sql, std::make_unique<SqliteStatement>(*this, stmt));
  return *pos->second;
}

void SqliteConnection::begin(TxnKind kind) {
  exec(kind == TxnKind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

void SqliteConnection::commit() { exec("COMMIT"); }

void SqliteConnection::rollback() {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteConnection::open_for_study() {
  // Any read of the header makes a file that is not a database fail here, before a write.
  query_text("PRAGMA schema_version");
  // WAL (":memory:" stays "memory", which is fine). Switching a new file to WAL needs a moment
  // when no other connection is inside a transaction, and SQLite answers BUSY at once instead of
  // calling the busy handler; so several processes opening a new study.db together retry here,
  // within the busy timeout. A file already in WAL mode needs no switch.
  if (query_text("PRAGMA journal_mode").value_or("") != "wal") {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      try {
        query_text("PRAGMA journal_mode = WAL");
        break;
      } catch (const Error& e) {
        const auto waited = std::chrono::steady_clock::now() - start;
        if (std::string(e.what()).find("locked") == std::string::npos ||
            waited > std::chrono::milliseconds(busy_timeout_ms_)) {
          throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }
  exec("PRAGMA synchronous = NORMAL");
}

void SqliteConnection::raise(int rc, std::string_view what) const {
  fail("{} ({} while {})", advice(rc, path_, busy_timeout_ms_), sqlite3_errmsg(db_), what);
}

}  // namespace qsearch::storage
