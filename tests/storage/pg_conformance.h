// The storage conformance suite (tests/search/storage_conformance.h) on PostgreSQL: RdbStorage
// over PgConnection, each test on a fresh database of a throwaway cluster
// (tests/support/pg_cluster.h), shared by threads and by forked processes (each child with its
// own connection). Skipped only when the PostgreSQL server binaries are absent.
//
// Included by sqlite_conformance_test.cc after storage_conformance.h: the suite's tests may be
// defined in only one file of the test binary.
#pragma once

#include "search/storage_conformance.h"
#include "storage/storage_url.h"
#include "support/pg_cluster.h"

namespace qsearch::search::conformance {
namespace pg {

// Records a skip (the test body then does not run) when the server binaries are absent.
inline void skip_without_postgres(const std::string& why) { GTEST_SKIP() << why; }

class PgStore : public StorageUnderTest {
 public:
  PgStore() {
    test::PgCluster& cluster = test::PgCluster::shared();
    if (cluster.skipped()) {
      skip_without_postgres(cluster.skip_reason());
      return;
    }
    if (!cluster.ok()) throw Error(cluster.error());
    url_ = cluster.create_database();
    if (url_.empty()) throw Error(cluster.error());
  }
  std::shared_ptr<Storage> open() override {
    if (url_.empty()) return nullptr;
    return storage::open_storage(url_, storage::Access::kCreate);
  }
  bool shared_across_processes() const override { return true; }

 private:
  std::string url_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StorageConformance,
                         ::testing::Values(StorageBackend{
                             "server", [] { return std::make_unique<PgStore>(); }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace pg
}  // namespace qsearch::search::conformance
