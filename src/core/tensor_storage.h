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
