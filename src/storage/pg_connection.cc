#include "storage/pg_connection.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/check.h"
#include "core/error.h"

namespace qsearch::storage {
namespace {

constexpr int kMaxRetries = 5;

// Frees a failed result once raise() has read it (raise throws).
struct ResultGuard {
  PGresult* res;
  ~ResultGuard() { PQclear(res); }
};

// The first line of a libpq / server message, trimmed (errors are one line).
std::string first_line(const char* message) {
  std::string s = message ? message : "";
  const size_t nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  return s;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string value_of(const PgParams& params, const char* key) {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return "";
}

// What to do about a failed connection attempt, from libpq's message (connection failures carry
// no SQLSTATE on the client side).
std::string connect_advice(const std::string& message, const PgParams& params) {
  const std::string user = value_of(params, "user");
  const std::string db = value_of(params, "dbname");
  if (contains(message, "password authentication failed") ||
      contains(message, "no password supplied") || contains(message, "authentication failed")) {
    return "wrong user name or password: check them in the URL (percent-encode special "
           "characters, e.g. '@' as %40 and ':' as %3A)";
  }
  if (contains(message, "no pg_hba.conf entry")) {
    return "the server does not accept this client: add a line to the server's pg_hba.conf "
           "(host <db> <user> <client-address>/32 scram-sha-256) and reload it (docs/"
           "distributed.md)";
  }
  if (contains(message, "database") && contains(message, "does not exist")) {
    return fmt::format(
        "the database does not exist: create it on the server (createdb -O {} {}, or CREATE "
        "DATABASE {} OWNER {})",
        user.empty() ? "<user>" : user, db.empty() ? "<db>" : db, db.empty() ? "<db>" : db,
        user.empty() ? "<user>" : user);
  }
  if (contains(message, "role") && contains(message, "does not exist")) {
    return fmt::format(
        "the user does not exist on the server: create it (CREATE ROLE {} LOGIN PASSWORD '...')",
        user.empty() ? "<user>" : user);
  }
  if (contains(message, "too many clients") || contains(message, "remaining connection slots")) {
    return "the server has no free connection: raise max_connections in postgresql.conf or run "
           "fewer workers";
  }
  if (contains(message, "could not translate host name")) {
    return "unknown host name: check the host in the URL";
  }
  if (contains(message, "Connection refused") || contains(message, "No such file or directory") ||
      contains(message, "timeout expired") || contains(message, "could not connect") ||
      contains(message, "No route to host") || contains(message, "Network is unreachable") ||
      contains(message, "the database system is starting up") ||
      contains(message, "the database system is shutting down")) {
    return "the PostgreSQL server is not running or not reachable there: start it (pg_ctl start, "
           "systemctl start postgresql), or check the host and port in the URL and the server's "
           "listen_addresses";
  }
  if (contains(message, "invalid connection option") || contains(message, "invalid") ||
      contains(message, "missing")) {
    return "the URL's connection options are wrong: use postgresql://user:password@host:port/db "
           "with libpq's options after '?'";
  }
  return "cannot connect to the PostgreSQL server: check the URL and that the server runs";
}

// What to do about a failed statement, from its SQLSTATE.
std::string statement_advice(const std::string& sqlstate) {
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return "a concurrent transaction conflicted with this one; run the command again";
  }
  if (sqlstate == "25P02") return "an earlier statement of this transaction failed (see above)";
  if (sqlstate == "53300") {
    return "too many connections: raise max_connections in postgresql.conf or run fewer workers";
  }
  if (sqlstate.rfind("53", 0) == 0) {
    return "the server ran out of resources (disk, memory): free some and run the command again";
  }
  if (sqlstate.rfind("57P", 0) == 0 || sqlstate.rfind("08", 0) == 0) {
    return "the connection to the server was lost (server stopped or restarted); run the command "
           "again once it is up";
  }
  if (sqlstate == "42501") {
    return "permission denied: the user needs CREATE and write rights on the database (GRANT ALL "
           "ON DATABASE <db> TO <user>; and on schema public)";
  }
  if (sqlstate == "23505") return "a row with this key exists already";
  if (sqlstate.rfind("42", 0) == 0) {
    return "the database's tables are not what qsearch expects (a study database of another "
           "program or version?)";
  }
  return "PostgreSQL error";
}

}  // namespace

bool is_libpq_option(const std::string& keyword) {
  PQconninfoOption* options = PQconndefaults();
  bool found = false;
  for (PQconninfoOption* o = options; o && o->keyword; ++o) {
    if (keyword == o->keyword) found = true;
  }
  PQconninfoFree(options);
  return found;
}

// ---------------------------------------------------------------------------------------------
// PgStatement

PgStatement::PgStatement(PgConnection& conn, std::string sql)
    : conn_(conn), sql_(std::move(sql)), name_("qs" + std::to_string(++conn.next_statement_)) {
  ensure_prepared();
}

PgStatement::~PgStatement() { clear_result(); }

void PgStatement::ensure_prepared() {
  if (prepared_generation_ == conn_.generation_) return;
  PGresult* res = PQprepare(conn_.conn_, name_.c_str(), sql_.c_str(), 0, nullptr);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    const std::string what = fmt::format("preparing '{}'", sql_.substr(0, 60));
    ResultGuard guard{res};
    conn_.raise(res, what);
  }
  PQclear(res);
  res = PQdescribePrepared(conn_.conn_, name_.c_str());
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    ResultGuard guard{res};
    conn_.raise(res, fmt::format("describing '{}'", sql_.substr(0, 60)));
  }
  const int nparams = PQnparams(res);
  PQclear(res);
  if (prepared_generation_ < 0) {  // the first preparation; a re-preparation keeps the bindings
    nparams_ = nparams;
    values_.resize(nparams_);
    is_null_.assign(nparams_, 1);
  }
  prepared_generation_ = conn_.generation_;
}

std::string& PgStatement::slot(int index) {
  if (index < 1 || index > nparams_) {
    fail(
        "PostgreSQL study storage '{}': parameter ${} out of range for '{}' ({} parameters; a "
        "qsearch bug)",
        conn_.display_name_, index, sql_.substr(0, 60), nparams_);
  }
  is_null_[index - 1] = 0;
  return values_[index - 1];
}

SqlStatement& PgStatement::bind(int index, int64_t value) {
  slot(index) = std::to_string(value);
  return *this;
}

SqlStatement& PgStatement::bind(int index, double value) {
  std::string& s = slot(index);
  if (std::isnan(value)) {
    s = "NaN";
  } else if (std::isinf(value)) {
    s = value > 0 ? "Infinity" : "-Infinity";
  } else {
    s = fmt::format("{:.17g}", value);
  }
  return *this;
}

SqlStatement& PgStatement::bind(int index, std::string_view text) {
  slot(index).assign(text.data(), text.size());
  return *this;
}

SqlStatement& PgStatement::bind_null(int index) {
  slot(index).clear();
  is_null_[index - 1] = 1;
  return *this;
}

void PgStatement::clear_result() {
  if (result_) PQclear(result_);
  result_ = nullptr;
  row_ = -1;
  executed_ = false;
}

void PgStatement::execute() {
  std::vector<const char*> values(nparams_);
  for (int attempt = 0;; ++attempt) {
    ensure_prepared();
    for (int i = 0; i < nparams_; ++i) values[i] = is_null_[i] ? nullptr : values_[i].c_str();
    PGresult* res = PQexecPrepared(conn_.conn_, name_.c_str(), nparams_, values.data(), nullptr,
                                   nullptr, /*resultFormat=*/0);
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      result_ = res;
      executed_ = true;
      row_ = -1;
      return;
    }
    if (conn_.may_retry(res, attempt)) {
      PQclear(res);
      continue;
    }
    ResultGuard guard{res};
    conn_.raise(res, fmt::format("running '{}'", sql_.substr(0, 60)));
  }
}

bool PgStatement::step() {
  if (!executed_) execute();
  if (row_ + 1 < PQntuples(result_)) {
    ++row_;
    ++conn_.rows_read_;
    return true;
  }
  return false;
}

void PgStatement::run() {
  if (!executed_) execute();
  reset();
}

void PgStatement::reset() {
  clear_result();
  for (auto& v : values_) v.clear();
  is_null_.assign(nparams_, 1);
}

const char* PgStatement::value(int col) const {
  QSEARCH_CHECK(result_ != nullptr && row_ >= 0 && row_ < PQntuples(result_));
  QSEARCH_CHECK(col >= 0 && col < PQnfields(result_));
  if (PQgetisnull(result_, row_, col)) return nullptr;
  return PQgetvalue(result_, row_, col);
}

int64_t PgStatement::column_int64(int col) const {
  const char* v = value(col);
  if (!v) return 0;
  if (v[0] == 't' && v[1] == '\0') return 1;  // boolean
  if (v[0] == 'f' && v[1] == '\0') return 0;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || errno != 0 || (*end != '\0' && *end != '.')) {
    fail(
        "PostgreSQL study storage '{}': column {} of '{}' holds '{}', not an integer (a study "
        "database of another program?)",
        conn_.display_name_, col, sql_.substr(0, 60), v);
  }
  return x;
}

double PgStatement::column_double(int col) const {
  const char* v = value(col);
  if (!v) return 0.0;
  // strtod reads PostgreSQL's 'Infinity', '-Infinity' and 'NaN' (case-insensitive) too.
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0') {
    fail(
        "PostgreSQL study storage '{}': column {} of '{}' holds '{}', not a number (a study "
        "database of another program?)",
        conn_.display_name_, col, sql_.substr(0, 60), v);
  }
  return x;
}

std::string PgStatement::column_text(int col) const {
  const char* v = value(col);
  if (!v) return std::string();
  return std::string(v, PQgetlength(result_, row_, col));
}

bool PgStatement::column_is_null(int col) const { return value(col) == nullptr; }

// ---------------------------------------------------------------------------------------------
// PgConnection

PgConnection::PgConnection(PgParams params, std::string display_name)
    : params_(std::move(params)), display_name_(std::move(display_name)) {
  connect();
}

PgConnection::~PgConnection() {
  statements_.clear();
  if (!conn_) return;
  if (getpid() != owner_pid_) {
    // A forked child: closing our copy of the socket leaves the parent's session alone, whereas
    // PQfinish would send the server a Terminate message on the shared socket.
    ::close(PQsocket(conn_));
  }
  PQfinish(conn_);
}

void PgConnection::connect() {
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  PgParams params = params_;
  auto has = [&](const char* key) {
    for (const auto& kv : params) {
      if (kv.first == key) return true;
    }
    return false;
  };
  if (!has("client_encoding")) params.emplace_back("client_encoding", "UTF8");
  if (!has("application_name")) params.emplace_back("application_name", "qsearch");
  if (!has("connect_timeout")) params.emplace_back("connect_timeout", "10");
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  owner_pid_ = getpid();
  if (!conn_) fail("PostgreSQL study storage '{}': out of memory while connecting", display_name_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = first_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    fail("PostgreSQL study storage '{}': {} ({})", display_name_, connect_advice(message, params_),
         message);
  }
  // The server's notices ("relation ... already exists, skipping" from CREATE TABLE IF NOT
  // EXISTS) would go to stderr; qsearch reports through its own messages only.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  // Plain, predictable sessions whatever the server's defaults: UTC timestamps, ISO dates,
  // and the shortest exact float output (the default since PostgreSQL 12).
  PGresult* res = PQexec(conn_, "SET TIME ZONE 'UTC'; SET datestyle = 'ISO'");
  const bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) {
    ResultGuard guard{res};
    raise(res, "setting up the session");
  }
  PQclear(res);
}

bool PgConnection::connection_ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::may_retry(const pg_result* res, int attempt) {
  if (in_transaction_ || attempt >= kMaxRetries) return false;
  if (!connection_ok()) {
    if (attempt > 0) return false;  // re-open once only
    try {
      connect();
    } catch (const Error&) {
      return false;  // the original error is the one to report
    }
    ++generation_;  // statements prepare themselves again
    return true;
  }
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  if (state && (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0)) {
    ++conflict_retries_;
    std::this_thread::sleep_for(std::chrono::milliseconds(1 << attempt));
    return true;
  }
  return false;
}

pg_result* PgConnection::exec_result(const std::string& sql) {
  for (int attempt = 0;; ++attempt) {
    PGresult* res = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return res;
    if (may_retry(res, attempt)) {
      PQclear(res);
      continue;
    }
    ResultGuard guard{res};
    raise(res, fmt::format("running '{}'", sql.substr(0, 60)));
  }
}

void PgConnection::exec(const std::string& sql) { PQclear(exec_result(sql)); }

std::optional<std::string> PgConnection::query_text(const std::string& sql) {
  PGresult* res = exec_result(sql);
  std::optional<std::string> out;
  if (PQntuples(res) > 0 && PQnfields(res) > 0) {
    ++rows_read_;
    if (!PQgetisnull(res, 0, 0)) out = std::string(PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0));
  }
  PQclear(res);
  return out;
}

SqlStatement& PgConnection::prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return *it->second;
  if (!connection_ok() && !in_transaction_) {
    connect();
    ++generation_;
  }
  auto stmt = std::make_unique<PgStatement>(*this, sql);
  auto [pos, inserted] = statements_.emplace(sql, std::move(stmt));
  return *pos->second;
}

void PgConnection::begin(TxnKind kind) {
  if (in_transaction_) {
    fail("PostgreSQL study storage '{}': a transaction is open already (a qsearch bug)",
         display_name_);
  }
  // One round trip: BEGIN and, for a writer, the writers' lock (see the header).
  const std::string sql =
      kind == TxnKind::kWrite
          ? fmt::format("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
                        kWriterLockKey)
          : std::string("BEGIN ISOLATION LEVEL REPEATABLE READ");
  PQclear(exec_result(sql));
  in_transaction_ = true;
}

void PgConnection::commit() {
  PGresult* res = PQexec(conn_, "COMMIT");
  const ExecStatusType st = PQresultStatus(res);
  const std::string tag = st == PGRES_COMMAND_OK ? PQcmdStatus(res) : "";
  in_transaction_ = false;
  if (st != PGRES_COMMAND_OK) {
    ResultGuard guard{res};
    raise(res, "committing");
  }
  PQclear(res);
  if (tag != "COMMIT") {
    fail(
        "PostgreSQL study storage '{}': the server rolled the transaction back instead of "
        "committing it (an earlier statement failed); run the command again",
        display_name_);
  }
}

void PgConnection::rollback() {
  in_transaction_ = false;
  if (!connection_ok()) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
}

int PgConnection::server_major_version() const {
  return conn_ ? PQserverVersion(conn_) / 10000 : 0;
}

void PgConnection::raise(const pg_result* res, const std::string& what) const {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = res ? first_line(PQresultErrorMessage(res)) : "";
  if (message.empty() && conn_) message = first_line(PQerrorMessage(conn_));
  if (!connection_ok()) {
    fail(
        "PostgreSQL study storage '{}': the connection to the server was lost ({}) while {}; "
        "check that the server runs, then run the command again",
        display_name_, message, what);
  }
  const std::string sqlstate = state ? state : "";
  fail("PostgreSQL study storage '{}': {} ({}{}{} while {})", display_name_,
       statement_advice(sqlstate), sqlstate.empty() ? "" : "SQLSTATE ", sqlstate,
       sqlstate.empty() ? message : ": " + message, what);
}

}  // namespace qsearch::storage
