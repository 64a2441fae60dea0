#include "data/batches.h"

#include <cstring>
#include <numeric>

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"

namespace qsearch::data {

Batches::Batches(Tensor x, Tensor y, const BatchOptions& options)
    : x_(std::move(x)), y_(std::move(y)), batch_size_(options.batch_size) {
  if (batch_size_ <= 0) fail("batch size must be positive, got {}", batch_size_);
  if (y_.empty() || y_.rank() < 1) {
    fail("batching needs labels of shape [N, ...], got {} {}", dtype_name(y_.dtype()),
         shape_str(y_.shape()));
  }
  if (x_.empty() || x_.rank() < 1 || x_.dim(0) != y_.dim(0)) {
    fail("batching needs inputs with as many rows as labels: x {} vs y {}", shape_str(x_.shape()),
         shape_str(y_.shape()));
  }
  const int64_t rows = y_.dim(0);
  num_rows_ = options.max_samples < 0 || options.max_samples > rows ? rows : options.max_samples;
  num_batches_ =
      options.drop_last ? num_rows_ / batch_size_ : (num_rows_ + batch_size_ - 1) / batch_size_;
  if (options.drop_last) num_rows_ = num_batches_ * batch_size_;
  if (options.shuffle) {
    order_.resize(static_cast<size_t>(rows));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    Rng rng = Rng(options.seed).fork(options.epoch);
    rng.shuffle(std::span<int64_t>(order_));
  }
}

Batch Batches::operator[](int64_t b) const {
  QSEARCH_CHECK(0 <= b && b < num_batches_);
  const int64_t begin = b * batch_size_;
  const int64_t end = std::min(begin + batch_size_, num_rows_);
  Batch batch;
  batch.index = b;
  batch.begin = begin;
  if (order_.empty()) {
    batch.x = x_.rows(begin, end);
    batch.y = y_.rows(begin, end);
    return batch;
  }
  Shape shape = x_.shape();
  shape[0] = end - begin;
  batch.x = Tensor(shape, x_.dtype());
  Shape yshape = y_.shape();
  yshape[0] = end - begin;
  batch.y = Tensor(yshape, y_.dtype());
  // Rows of both are gathered by bytes: any dtype, any per-sample shape.
  auto gather = [&](const Tensor& from, Tensor& to) {
    const size_t row_bytes = from.nbytes() / static_cast<size_t>(from.dim(0));
    const auto* src = static_cast<const std::byte*>(from.raw());
    auto* dst = static_cast<std::byte*>(to.raw());
    for (int64_t i = begin; i < end; ++i) {
      const int64_t r = order_[static_cast<size_t>(i)];
      std::memcpy(dst + static_cast<size_t>(i - begin) * row_bytes,
                  src + static_cast<size_t>(r) * row_bytes, row_bytes);
    }
  };
  gather(x_, batch.x);
  gather(y_, batch.y);
  return batch;
}

}  // namespace qsearch::data
