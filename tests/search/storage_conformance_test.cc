// The storage conformance suite (storage_conformance.h) for InMemoryStorage.
#include "search/storage_conformance.h"
#include "search/memory_storage.h"

namespace qsearch::search::conformance {
namespace {

class MemoryStore : public StorageUnderTest {
 public:
  std::shared_ptr<Storage> open() override { return storage_; }

 private:
  std::shared_ptr<Storage> storage_ = std::make_shared<InMemoryStorage>();
};

INSTANTIATE_TEST_SUITE_P(Memory, StorageConformance,
                         ::testing::Values(StorageBackend{
                             "memory", [] { return std::make_unique<MemoryStore>(); }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace qsearch::search::conformance
