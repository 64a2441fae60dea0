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
// PostgreSQL (many workers on many machines share one study; docs/distributed.md):
//
//   postgresql://user:password@host:port/db        also postgres:// and postgresql+psycopg2://
//   postgresql://user:p%40ss@host/db               user, password and database percent-decoded
//   postgresql://user@/db?host=/run/postgresql     a Unix socket directory (libpq's host option)
//   postgresql://user@[::1]:5433/db                an IPv6 address
//   ...?sslmode=require&connect_timeout=5          any libpq connection option, as psycopg2
//
// Refused with an Error naming the URL (password hidden) and the accepted forms: an empty URL, a
// host part ("sqlite://host/x.db"), unknown query parameters, other schemes, a PostgreSQL URL
// without a database or with a bad port. parse_storage_url touches no file and no server, so a
// command can check its storage before loading a model or data.
#pragma once

#include <memory>
#include <string>

#include "search/storage.h"
#include "storage/pg_connection.h"

namespace qsearch::storage {

enum class StorageBackend { kSqlite, kPostgres };

struct StorageUrl {
  std::string url;      // as given
  std::string display;  // the URL with its password hidden (what messages name)
  StorageBackend backend = StorageBackend::kSqlite;
  std::string path;  // SQLite: the database file, or ":memory:"
  int busy_timeout_ms = 60000;
  PgParams pg;  // PostgreSQL: libpq's keywords (host, port, user, password, dbname, ...)
  bool memory() const { return backend == StorageBackend::kSqlite && path == ":memory:"; }
};

StorageUrl parse_storage_url(const std::string& url);

// `url` with the password replaced by *** (postgresql://user:***@host:port/db, and a
// password=... query value likewise), the way SQLAlchemy prints URLs; other URLs unchanged.
std::string hide_password(const std::string& url);

enum class Access {
  kCreate,    // open the database file, creating it when missing (a search)
  kExisting,  // the file must exist already (report, compare): never creates an empty database
};

// Opens the storage a URL names. Throws Error for what parse_storage_url refuses; with
// kExisting, for a missing file or an in-memory URL (which can hold no study yet).
std::shared_ptr<search::Storage> open_storage(const std::string& url, Access access);

}  // namespace qsearch::storage
