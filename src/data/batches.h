// Batches: a split cut into mini-batches, in order (evaluation) or seeded-shuffled (training).
//
// Batch b holds the rows at positions [b*B, min((b+1)*B, N)) of the epoch's order, where B is
// the batch size and N the number of rows used (all, or the first max_samples of the order):
//
//   unshuffled  order = 0, 1, ..., N-1; batch tensors are views (no copy) onto the data set's
//               storage, so a batch is only valid while that storage lives (Tensor copies
//               share it, so holding the Batch keeps it alive).
//   shuffled    order = a Fisher-Yates permutation of 0..rows-1 drawn from
//               Rng(seed).fork(epoch): the same (seed, epoch) gives the same order on every
//               machine; another epoch gives another permutation. Batch rows are gathered
//               into fresh tensors.
//
//   Batches eval(test.x, test.y, {.batch_size = 256});              // in order
//   for (const Batch& b : eval) run(b.x, b.y);                      // b.x: [<=256, 1, 28, 28]
//   Batches train(ds, {.batch_size = 128, .shuffle = true, .seed = 42, .epoch = e});
//
// operator[] is const and thread-safe: concurrent workers may each take their own batches.
// drop_last drops a final partial batch (PyTorch DataLoader's drop_last).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"

namespace qsearch::data {

struct BatchOptions {
  int64_t batch_size = 256;  // > 0
  bool shuffle = false;
  uint64_t seed = 0;   // shuffle only
  uint64_t epoch = 0;  // shuffle only: selects the permutation
  bool drop_last = false;
  int64_t max_samples = -1;  // < 0 or > rows: all rows; else the first max_samples of the order
};

struct Batch {
  Tensor x;           // [rows, ...] (whatever the data set's x is, dtype included)
  Tensor y;           // [rows, ...]: int64 [rows] class indices, or regression targets
  int64_t index = 0;  // batch number b
  int64_t begin = 0;  // position of its first row in the epoch's order (b * batch_size)
  int64_t size() const { return y.dim(0); }
};

class Batches {
 public:
  // x and y must have the same dim 0 (y: int64 [N] labels, or any targets [N, ...]). Throws Error
  // on a batch size <= 0 or mismatched rows.
  Batches(Tensor x, Tensor y, const BatchOptions& options);
  Batches(const Dataset& data, const BatchOptions& options) : Batches(data.x, data.y, options) {}

  int64_t size() const { return num_batches_; }      // number of batches
  int64_t num_samples() const { return num_rows_; }  // rows covered by the batches
  int64_t batch_size() const { return batch_size_; }
  // Row order of this epoch (size = all rows); empty when unshuffled (identity).
  const std::vector<int64_t>& order() const { return order_; }

  Batch operator[](int64_t b) const;  // 0 <= b < size()

  class Iterator {
   public:
    Iterator(const Batches* owner, int64_t b) : owner_(owner), b_(b) {}
    Batch operator*() const { return (*owner_)[b_]; }
    Iterator& operator++() {
      ++b_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return b_ != o.b_; }

   private:
    const Batches* owner_;
    int64_t b_;
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, num_batches_}; }

 private:
  Tensor x_, y_;
  int64_t batch_size_ = 0;
  int64_t num_rows_ = 0;
  int64_t num_batches_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace qsearch::data
