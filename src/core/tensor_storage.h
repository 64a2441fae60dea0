// A buffer for the next Tensor made on this thread, instead of the allocator's (core/tensor.cc):
// for tensors over memory allocated elsewhere (a file mapping, runtime/weight_file.h).
//
//   {
//     ScopedTensorStorage use(std::move(mapping));  // 64-byte aligned, >= the tensor's bytes
//     t = Tensor(shape, dtype);                     // lives in the mapping, contents kept
//   }
#pragma once

#include <cstddef>
#include <memory>

namespace qsearch {

// Tensor buffers start at kTensorAlignment-byte boundaries. Those of kTensorHugePageBytes and
// more are mapped from the kernel zero-filled, 2 MiB aligned, with transparent huge pages
// (core/tensor.cc).
inline constexpr size_t kTensorAlignment = 64;
inline constexpr size_t kTensorHugePageBytes = size_t{2} << 20;

// The bytes to allocate for a block of `bytes` so that it takes whole huge pages, a page fault per
// 2 MiB: rounded up to kTensorHugePageBytes once it reaches one (smaller blocks keep 4 KiB pages).
inline size_t whole_huge_pages(size_t bytes) {
  return bytes < kTensorHugePageBytes
             ? bytes
             : (bytes + kTensorHugePageBytes - 1) / kTensorHugePageBytes * kTensorHugePageBytes;
}

// While alive, the first Tensor(shape, dtype) constructed on this thread takes `storage` as its
// buffer, unzeroed (its deleter runs when the last copy goes); later ones allocate as usual.
class ScopedTensorStorage {
 public:
  explicit ScopedTensorStorage(std::shared_ptr<std::byte[]> storage);
  ~ScopedTensorStorage();
  ScopedTensorStorage(const ScopedTensorStorage&) = delete;
  ScopedTensorStorage& operator=(const ScopedTensorStorage&) = delete;
};

}  // namespace qsearch
