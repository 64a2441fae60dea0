// Study storage URLs, read the way SQLAlchemy (and so Optuna) reads them, and opening a storage
// from one.
//
//   sqlite:///relative/path.db      relative to the working directory
//   sqlite:////absolute/path.db     absolute (four slashes: "sqlite://" + "/" + "/abs/...")
//   sqlite+pysqlite:///x.db         a driver name after '+' is accepted and ignored
//   sqlite://  sqlite:///:memory:   a private in-memory database (also plain ":memory:")
//   path/to/x.db                    a file path ending in .db, .sqlite or .sqlite3
//   ...?timeout=5                   query parameters; qsearch understands `timeout` (seconds a
//                                   writer waits for another process's lock, SQLite's busy
//                                   timeout; default 60)
//
// Refused with an Error naming the URL and the accepted forms: an empty URL, a host part
// ("sqlite://host/x.db"), unknown query parameters, other schemes. PostgreSQL ("postgresql://",
// "postgres://", "postgresql+psycopg2://") is planned and refused by parse_storage_url, which
// touches no file, so a command can check its storage before loading a model or data.
#pragma once

#include <memory>
#include <string>

#include "search/storage.h"

namespace qsearch::storage {

struct StorageUrl {
  std::string url;   // as given
  std::string path;  // the database file, or ":memory:"
  int busy_timeout_ms = 60000;
  bool memory() const { return path == ":memory:"; }
};

StorageUrl parse_storage_url(const std::string& url);

enum class Access {
  kCreate,    // open the database file, creating it when missing (a search)
  kExisting,  // the file must exist already (report, compare): never creates an empty database
};

// Opens the storage a URL names. Throws Error for what parse_storage_url refuses; with
// kExisting, for a missing file or an in-memory URL (which can hold no study yet).
std::shared_ptr<search::Storage> open_storage(const std::string& url, Access access);

}  // namespace qsearch::storage
