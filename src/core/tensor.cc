#include "core/tensor.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <sys/mman.h>

#include <fmt/format.h>

#include "core/error.h"
#include "core/tensor_cache.h"
#include "core/tensor_storage.h"

namespace qsearch {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    QSEARCH_CHECK(d >= 0);
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] == kDynamic ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {
// Blocks of kMapBytes and more are mapped from the kernel directly, 2 MiB aligned and marked for
// transparent huge pages (MADV_HUGEPAGE): fresh anonymous pages are zero, so they need no memset,
// and a 2 MiB page costs one fault where 4 KiB pages cost 512. An executor's activation buffers
// (ResNet-18 at 224x224, batch 16: 160 MB) used to be zeroed by memset on creation, a page fault
// per 4 KiB: 0.2 s, more than the batch it then ran. Smaller blocks come from malloc.
constexpr size_t kPageBytes = 4096;
constexpr size_t kHugeBytes = kTensorHugePageBytes;
constexpr size_t kMapBytes = kHugeBytes;

void* map_block(size_t bytes) {
  // Over-map by a huge page less a page, keep the 2 MiB-aligned part, unmap the rest.
  const size_t span = bytes + kHugeBytes - kPageBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugeBytes - 1) / kHugeBytes * kHugeBytes;
  if (start > base) munmap(raw, start - base);
  if (const uintptr_t end = base + span; end > start + bytes) {
    munmap(reinterpret_cast<void*>(start + bytes), end - (start + bytes));
  }
  void* p = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the block keeps 4 KiB pages
#endif
  return p;
}

// Frees a block of `bytes` (page-rounded) from new_block.
void free_block(void* p, size_t bytes) {
  if (bytes >= kMapBytes) {
    munmap(p, bytes);
  } else {
    std::free(p);
  }
}

// Freed tensor buffers of 64 KiB and more, kept for reuse by size. A search builds and drops a
// plan and its executors every trial; handing those buffers back to malloc fragmented its heap
// (live memory stayed near 40 MB while the heap grew by ~0.5 MB a trial, each new page a page
// fault) and returning them to the kernel costs a page fault per page on the next trial. Blocks
// are reused only at their exact (page-rounded) size; at most kCacheBytes are kept. Never
// destroyed, so tensors that outlive static destruction still free safely.
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;
  static constexpr size_t kCacheBytes = size_t{256} << 20;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = free_.find(bytes);
    if (it == free_.end()) return nullptr;
    void* p = it->second;
    free_.erase(it);
    cached_ -= bytes;
    return p;
  }
  // Frees every cached block; returns their bytes.
  size_t release() {
    std::multimap<size_t, void*> blocks;
    {
      std::lock_guard<std::mutex> lock(m_);
      blocks.swap(free_);
      cached_ = 0;
    }
    size_t bytes = 0;
    for (auto& [n, p] : blocks) {
      bytes += n;
      free_block(p, n);
    }
    return bytes;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (cached_ + bytes <= kCacheBytes) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    free_block(p, bytes);
  }

 private:
  std::mutex m_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

// ScopedTensorStorage's buffer for the next tensor of this thread, if any.
thread_local std::shared_ptr<std::byte[]> provided_storage;

std::shared_ptr<std::byte[]> allocate(size_t bytes) {
  if (provided_storage != nullptr) return std::move(provided_storage);
  // Round up so that aligned_alloc's size is a multiple of the alignment; keep at least one
  // block so that empty tensors still have a non-null, distinct buffer.
  size_t padded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (padded == 0) padded = kTensorAlignment;
  const bool cached = padded >= BlockCache::kMinBytes;
  if (cached) padded = (padded + kPageBytes - 1) / kPageBytes * kPageBytes;
  void* p = cached ? block_cache().take(padded) : nullptr;
  if (p != nullptr) {
    std::memset(p, 0, padded);  // a reused block: resident, so this is a plain memory write
  } else if (padded >= kMapBytes) {
    p = map_block(padded);  // zero from the kernel
  } else {
    p = std::aligned_alloc(kTensorAlignment, padded);
    if (p != nullptr) std::memset(p, 0, padded);
  }
  if (p == nullptr) fail("out of memory allocating a tensor of {} bytes", bytes);
  auto* b = static_cast<std::byte*>(p);
  if (cached) {
    return std::shared_ptr<std::byte[]>(b,
                                        [padded](std::byte* q) { block_cache().give(q, padded); });
  }
  return std::shared_ptr<std::byte[]>(b, [](std::byte* q) { std::free(q); });
}
}  // namespace

size_t release_cached_tensor_blocks() { return block_cache().release(); }

ScopedTensorStorage::ScopedTensorStorage(std::shared_ptr<std::byte[]> storage) {
  QSEARCH_CHECK(storage != nullptr && reinterpret_cast<uintptr_t>(storage.get()) % 64 == 0);
  provided_storage = std::move(storage);
}

ScopedTensorStorage::~ScopedTensorStorage() { provided_storage.reset(); }

Tensor::Tensor(Shape shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype), numel_(shape_numel(shape_)) {
  storage_ = allocate(nbytes());
}

Tensor Tensor::reshaped(Shape shape) const {
  QSEARCH_CHECK(shape_numel(shape) == numel_);
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  QSEARCH_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_[0]);
  Tensor t = *this;
  int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  t.offset_ = offset_ + static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = (end - begin) * row;
  return t;
}

Tensor Tensor::clone() const {
  if (empty()) return {};
  Tensor t(shape_, dtype_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

namespace {
template <typename S, typename D>
void convert(const S* s, D* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
}

template <typename S>
void convert_from(const S* s, Tensor& out, int64_t n) {
  switch (out.dtype()) {
    case DType::kFloat32:
      convert(s, out.data<float>(), n);
      break;
    case DType::kFloat64:
      convert(s, out.data<double>(), n);
      break;
    case DType::kInt8:
      convert(s, out.data<int8_t>(), n);
      break;
    case DType::kUInt8:
      convert(s, out.data<uint8_t>(), n);
      break;
    case DType::kInt16:
      convert(s, out.data<int16_t>(), n);
      break;
    case DType::kInt32:
      convert(s, out.data<int32_t>(), n);
      break;
    case DType::kInt64:
      convert(s, out.data<int64_t>(), n);
      break;
  }
}
}  // namespace

Tensor Tensor::to(DType dtype) const {
  Tensor out(shape_, dtype);
  switch (dtype_) {
    case DType::kFloat32:
      convert_from(data<float>(), out, numel_);
      break;
    case DType::kFloat64:
      convert_from(data<double>(), out, numel_);
      break;
    case DType::kInt8:
      convert_from(data<int8_t>(), out, numel_);
      break;
    case DType::kUInt8:
      convert_from(data<uint8_t>(), out, numel_);
      break;
    case DType::kInt16:
      convert_from(data<int16_t>(), out, numel_);
      break;
    case DType::kInt32:
      convert_from(data<int32_t>(), out, numel_);
      break;
    case DType::kInt64:
      convert_from(data<int64_t>(), out, numel_);
      break;
  }
  return out;
}

}  // namespace qsearch
