// SqliteStorage: RdbStorage (storage/rdb_storage.h) on one SQLite file, shared safely by the
// threads of one process and by several processes on one machine.
//
//   auto storage = std::make_shared<SqliteStorage>("out/study.db");
#pragma once

#include <memory>
#include <string>

#include "storage/rdb_storage.h"

namespace qsearch::storage {

// RdbStorage on one SQLite file.
class SqliteStorage : public RdbStorage {
 public:
  struct Options {
    // How long a writer waits for another connection's write transaction before giving up.
    int busy_timeout_ms = 60000;
  };

  // Opens or creates the database file; ":memory:" gives a private in-memory database. Throws
  // Error naming the path when its parent directory does not exist, the file is not a qsearch
  // study database (or is corrupt, or from a newer qsearch), or cannot be created.
  explicit SqliteStorage(const std::string& path);
  SqliteStorage(const std::string& path, Options options);
};

// Opens (creating when missing) the study storage a URL names: storage_url.h has the forms and
// open_storage(url, Access) (defined in storage_url.cc).
std::shared_ptr<search::Storage> open_storage(const std::string& url);

}  // namespace qsearch::storage
