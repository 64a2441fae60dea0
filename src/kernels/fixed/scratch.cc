#include "kernels/fixed/scratch.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/check.h"

namespace qsearch::kernels::fixed {

namespace {

struct Buffer {
  std::unique_ptr<std::byte, decltype(&std::free)> data{nullptr, &std::free};
  size_t capacity = 0;
};

thread_local Buffer t_buffers[static_cast<int>(ScratchSlot::kCount)];

}  // namespace

void* scratch(ScratchSlot slot, size_t bytes) {
  Buffer& b = t_buffers[static_cast<int>(slot)];
  if (bytes > b.capacity || b.data == nullptr) {
    // Grow geometrically so that slowly rising sizes do not reallocate every call.
    size_t cap = std::max<size_t>(bytes, b.capacity + b.capacity / 2);
    cap = (cap + 63) / 64 * 64 + 64;
    b.data.reset(static_cast<std::byte*>(std::aligned_alloc(64, cap)));
    QSEARCH_CHECK(b.data != nullptr);
    b.capacity = cap;
  }
  return b.data.get();
}

}  // namespace qsearch::kernels::fixed
