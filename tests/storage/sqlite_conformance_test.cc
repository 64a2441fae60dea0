// The storage conformance suite (tests/search/storage_conformance.h) for SqliteStorage: on a
// file in a temporary directory (shared by threads and by forked processes, each child with its
// own connection) and on a private ":memory:" database.
#include "search/storage_conformance.h"
#include "storage/pg_conformance.h"  // the same suite on PostgreSQL
#include "storage/sqlite_storage.h"
#include "storage/temp_dir.h"

namespace qsearch::search::conformance {
namespace {

class SqliteFileStore : public StorageUnderTest {
 public:
  std::shared_ptr<Storage> open() override {
    return std::make_shared<storage::SqliteStorage>(dir_.file("study.db"));
  }
  bool shared_across_processes() const override { return true; }

 private:
  storage::testing::TempDir dir_;
};

class SqliteMemoryStore : public StorageUnderTest {
 public:
  std::shared_ptr<Storage> open() override { return storage_; }

 private:
  std::shared_ptr<Storage> storage_ = std::make_shared<storage::SqliteStorage>(":memory:");
};

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StorageConformance,
    ::testing::Values(StorageBackend{"file", [] { return std::make_unique<SqliteFileStore>(); }},
                      StorageBackend{"memory",
                                     [] { return std::make_unique<SqliteMemoryStore>(); }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace qsearch::search::conformance
