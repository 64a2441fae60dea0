#include "storage/storage_url.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
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

}  // namespace

StorageUrl parse_storage_url(const std::string& url) {
  StorageUrl out;
  out.url = url;
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
    fail("storage '{}': PostgreSQL storage is planned but not available yet; {}", url, kForms);
  }
  if (dialect != "sqlite") {
    fail("storage '{}': qsearch keeps studies in SQLite only, not '{}'; {}", url, dialect, kForms);
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
