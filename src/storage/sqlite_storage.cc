#include "storage/sqlite_storage.h"

#include <filesystem>

#include "core/error.h"
#include "storage/sqlite_db.h"

namespace qsearch::storage {
namespace {

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path,
                                           const SqliteStorage::Options& options) {
  if (path != ":memory:") {
    namespace fs = std::filesystem;
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      fail("cannot create study database '{}': directory '{}' does not exist (create it first)",
           path, parent.string());
    }
    if (fs::is_directory(path, ec)) {
      fail("study database path '{}' is a directory: give a file name such as '{}/study.db'", path,
           path);
    }
  }
  return std::make_unique<SqliteConnection>(path, options.busy_timeout_ms);
}

}  // namespace

SqliteStorage::SqliteStorage(const std::string& path) : SqliteStorage(path, Options{}) {}

SqliteStorage::SqliteStorage(const std::string& path, Options options)
    : RdbStorage(open_sqlite(path, options)) {}

}  // namespace qsearch::storage
