// Tensor: a dense, row-major, 64-byte-aligned n-d array with shared storage.
//
// Ownership: copies of a Tensor share one buffer (like a shared_ptr); clone() deep-copies.
// reshaped() and rows() return views onto the same buffer. Elements are zero-initialised.
//
//   Tensor x({2, 3}, DType::kFloat32);
//   float* p = x.data<float>();        // p[i * 3 + j] == x(i, j)
//   Tensor y = x.reshaped({3, 2});     // same storage
//   Tensor r = x.rows(1, 2);           // row 1 only, shape {1, 3}, same storage
//
// Shapes use kDynamic (-1) only in graph metadata (a dynamic batch dimension); a Tensor's
// shape is always concrete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"

namespace qsearch {

using Shape = std::vector<int64_t>;
inline constexpr int64_t kDynamic = -1;

// Product of the dims (1 for a scalar shape {}). All dims must be >= 0.
int64_t shape_numel(const Shape& shape);
// "[?, 1, 28, 28]" (kDynamic prints as "?").
std::string shape_str(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  Tensor(Shape shape, DType dtype);

  // A float32 / int64 / ... tensor holding `values` (values.size() must equal the numel).
  template <typename T>
  static Tensor from(Shape shape, const std::vector<T>& values) {
    Tensor t(std::move(shape), dtype_of<T>());
    QSEARCH_CHECK(static_cast<int64_t>(values.size()) == t.numel());
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }

  bool empty() const { return storage_ == nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  template <typename T>
  T* data() {
    QSEARCH_DCHECK(dtype_of<T>() == dtype_);
    return reinterpret_cast<T*>(storage_.get() + offset_);
  }
  template <typename T>
  const T* data() const {
    QSEARCH_DCHECK(dtype_of<T>() == dtype_);
    return reinterpret_cast<const T*>(storage_.get() + offset_);
  }
  template <typename T>
  std::span<T> span() {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  template <typename T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  void* raw() { return storage_.get() + offset_; }
  const void* raw() const { return storage_.get() + offset_; }
  // Handles (copies and views) sharing this tensor's buffer, this one included; 0 when empty.
  long use_count() const { return storage_.use_count(); }

  // View with another shape of the same numel.
  Tensor reshaped(Shape shape) const;
  // View of rows [begin, end) along dim 0.
  Tensor rows(int64_t begin, int64_t end) const;
  // Deep copy.
  Tensor clone() const;
  // Element-wise conversion to another dtype (float -> int truncates toward zero).
  Tensor to(DType dtype) const;

 private:
  std::shared_ptr<std::byte[]> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::kFloat32;
  int64_t numel_ = 0;
};

}  // namespace qsearch
