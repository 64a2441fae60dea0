#include "storage/storage_url.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "storage/pg_connection.h"
#include "storage/rdb_storage.h"
#include "storage/sqlite_storage.h"

namespace qsearch::storage {

namespace {

constexpr const char* kForms =
    "use 'sqlite:///relative/path.db', 'sqlite:////absolute/path.db', a file path ending in .db, "
    ".sqlite or .sqlite3, or ':memory:'";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// SQLAlchemy's query string: name=value pairs separated by '&'.
void apply_query(const std::string& url, const std::string& query, StorageUrl& out) {
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string item = query.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (name != "timeout") {
      fail(
          "storage '{}': unknown query parameter '{}'; qsearch understands only timeout=SECONDS "
          "(how long a writer waits for another process's lock)",
          url, name);
    }
    char* stop = nullptr;
    errno = 0;
    const double seconds = std::strtod(value.c_str(), &stop);
    if (value.empty() || *stop != '\0' || errno != 0 || !std::isfinite(seconds) || seconds < 0 ||
        seconds > 1e6) {
      fail("storage '{}': timeout='{}' must be a number of seconds between 0 and 1000000", url,
           value);
    }
    out.busy_timeout_ms = static_cast<int>(std::lround(seconds * 1000));
  }
}

constexpr const char* kPgForms =
    "use postgresql://user:password@host:port/database (percent-encode special characters in "
    "the password, e.g. '@' as %40), or postgresql://user@/database?host=/socket/dir";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX -> the byte; a '%' without two hex digits is an error.
std::string percent_decode(const std::string& display, const std::string& part, const char* what) {
  std::string out;
  out.reserve(part.size());
  for (size_t i = 0; i < part.size(); ++i) {
    if (part[i] != '%') {
      out += part[i];
      continue;
    }
    const int hi = i + 2 < part.size() ? hex_digit(part[i + 1]) : -1;
    const int lo = i + 2 < part.size() ? hex_digit(part[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      fail("storage '{}': the {} has a '%' not followed by two hex digits; write '%' as %25. {}",
           display, what, kPgForms);
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// SQLAlchemy's URL: scheme://[user[:password]@][host][:port][/database][?query], where the
// query holds psycopg2's (libpq's) connection options.
void parse_postgres(const std::string& url, size_t scheme_end, StorageUrl& out) {
  const std::string& shown = out.display;
  out.backend = StorageBackend::kPostgres;
  std::string rest = url.substr(scheme_end + 3);
  std::string query;
  if (const size_t q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  const std::string database = slash == std::string::npos ? "" : rest.substr(slash + 1);
  std::string user, password;
  bool has_password = false;
  if (const size_t at = authority.rfind('@'); at != std::string::npos) {
    const std::string userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    user = percent_decode(shown, userinfo.substr(0, colon), "user name");
    if (colon != std::string::npos) {
      has_password = true;
      password = percent_decode(shown, userinfo.substr(colon + 1), "password");
    }
  }
  std::string host, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      fail("storage '{}': an IPv6 host needs its closing ']'; {}", shown, kPgForms);
    }
    host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':')
        fail("storage '{}': unexpected '{}' after the host; {}", shown, after, kPgForms);
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (!port.empty() || authority.find(':') != std::string::npos) {
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      fail(
          "storage '{}': the port '{}' must be a number from 1 to 65535 (PostgreSQL's is "
          "5432); {}",
          shown, port, kPgForms);
    }
  }
  const std::string dbname = percent_decode(shown, database, "database name");
  if (dbname.empty()) {
    fail(
        "storage '{}' names no database: add it after the host, as in "
        "postgresql://user:password@host:5432/studies",
        shown);
  }
  if (dbname.find('/') != std::string::npos) {
    fail("storage '{}': the database name '{}' has a '/'; {}", shown, dbname, kPgForms);
  }
  if (!host.empty()) out.pg.emplace_back("host", percent_decode(shown, host, "host"));
  if (!port.empty()) out.pg.emplace_back("port", port);
  if (!user.empty()) out.pg.emplace_back("user", user);
  if (has_password) out.pg.emplace_back("password", password);
  out.pg.emplace_back("dbname", dbname);
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string item = query.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value =
        eq == std::string::npos ? "" : percent_decode(shown, item.substr(eq + 1), "query value");
    if (!is_libpq_option(name)) {
      fail(
          "storage '{}': unknown connection option '{}'; after '?' give libpq's options, such "
          "as host=/socket/dir, port, sslmode, connect_timeout, application_name",
          shown, name);
    }
    bool replaced = false;
    for (auto& [k, v] : out.pg) {
      if (k == name) {
        v = value;
        replaced = true;
      }
    }
    if (!replaced) out.pg.emplace_back(name, value);
  }
}

}  // namespace

std::string hide_password(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  std::string out = url;
  const size_t auth_begin = scheme_end + 3;
  size_t auth_end = out.find_first_of("/?", auth_begin);
  if (auth_end == std::string::npos) auth_end = out.size();
  const size_t at = out.rfind('@', auth_end - 1);
  if (auth_end > auth_begin && at != std::string::npos && at >= auth_begin) {
    const size_t colon = out.find(':', auth_begin);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  // password=... in the query.
  const size_t q = out.find('?');
  if (q != std::string::npos) {
    size_t pos = q + 1;
    while (pos < out.size()) {
      size_t end = out.find('&', pos);
      if (end == std::string::npos) end = out.size();
      if (out.compare(pos, 9, "password=") == 0 && end > pos + 9) {
        out.replace(pos + 9, end - pos - 9, "***");
        end = pos + 12;
      }
      pos = end + 1;
    }
  }
  return out;
}

StorageUrl parse_storage_url(const std::string& url) {
  StorageUrl out;
  out.url = url;
  out.display = hide_password(url);
  if (url.empty()) fail("the storage URL is empty; {}", kForms);
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    if (url == ":memory:") {
      out.path = url;
      return out;
    }
    if (ends_with(url, ".db") || ends_with(url, ".sqlite") || ends_with(url, ".sqlite3")) {
      out.path = url;
      return out;
    }
    fail("storage '{}' is not understood: {}", url, kForms);
  }
  const std::string scheme = url.substr(0, scheme_end);
  const std::string dialect = scheme.substr(0, scheme.find('+'));
  if (dialect == "postgresql" || dialect == "postgres") {
    parse_postgres(url, scheme_end, out);
    return out;
  }
  if (dialect != "sqlite") {
    fail("storage '{}': qsearch keeps studies in SQLite or PostgreSQL, not '{}'; {}, or {}",
         out.display, dialect, kForms, kPgForms);
  }
  std::string rest = url.substr(scheme_end + 3);
  const size_t q = rest.find('?');
  if (q != std::string::npos) {
    apply_query(url, rest.substr(q + 1), out);
    rest = rest.substr(0, q);
  }
  // What follows "sqlite://" is "[host]/database"; SQLite has no host.
  if (rest.empty()) {
    out.path = ":memory:";
    return out;
  }
  if (rest[0] != '/') {
    fail("storage '{}': an SQLite URL has no host part ('{}'); {}", url,
         rest.substr(0, rest.find('/')), kForms);
  }
  const std::string database = rest.substr(1);
  out.path = database.empty() ? ":memory:" : database;
  return out;
}

std::shared_ptr<search::Storage> open_storage(const std::string& url, Access access) {
  const StorageUrl parsed = parse_storage_url(url);
  if (parsed.backend == StorageBackend::kPostgres) {
    // A missing database is the connection's error; kExisting also refuses a database without
    // the study tables instead of creating them (as it never creates an SQLite file).
    auto conn = std::make_unique<PgConnection>(parsed.pg, parsed.display);
    if (access == Access::kExisting &&
        conn->query_text("SELECT to_regclass('studies') IS NULL") == std::string("t")) {
      fail(
          "storage '{}' holds no study (the database has no study tables); give the URL a "
          "search wrote to",
          parsed.display);
    }
    return std::make_shared<RdbStorage>(std::move(conn));
  }
  namespace fs = std::filesystem;
  if (!parsed.memory()) {
    std::error_code ec;
    const fs::file_status st = fs::status(parsed.path, ec);
    if (fs::exists(st) && !fs::is_regular_file(st)) {
      fail(
          "study database '{}' (storage '{}') is {}, not a database file; give a file path such "
          "as '{}'",
          parsed.path, url, fs::is_directory(st) ? "a directory" : "a device or special file",
          fs::is_directory(st) ? (fs::path(parsed.path) / "study.db").string()
                               : std::string("out/study.db"));
    }
  }
  if (access == Access::kExisting) {
    if (parsed.memory()) {
      fail(
          "storage '{}' is a new in-memory database, which holds no study; give the study.db of "
          "a search",
          url);
    }
    std::error_code ec;
    if (!fs::exists(parsed.path, ec)) {
      fail("study database '{}' does not exist (storage '{}'); give the study.db a search wrote",
           parsed.path, url);
    }
  }
  SqliteStorage::Options options;
  options.busy_timeout_ms = parsed.busy_timeout_ms;
  return std::make_shared<SqliteStorage>(parsed.path, options);
}

std::shared_ptr<search::Storage> open_storage(const std::string& url) {
  return open_storage(url, Access::kCreate);
}

}  // namespace qsearch::storage
