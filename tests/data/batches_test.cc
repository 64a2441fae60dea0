#include "data/batches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "data_test_util.h"

namespace qsearch::data {
namespace {

// x[i] = {i, 10 i}, y[i] = i: each row says which it is.
Dataset numbered(int64_t n) {
  Dataset d;
  d.x = Tensor({n, 2}, DType::kFloat32);
  d.y = Tensor({n}, DType::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    d.x.data<float>()[2 * i] = static_cast<float>(i);
    d.x.data<float>()[2 * i + 1] = static_cast<float>(10 * i);
    d.y.data<int64_t>()[i] = i;
  }
  return d;
}

TEST(Batches, UnshuffledCoversEveryRowOnceInOrderAsViews) {
  Dataset d = numbered(10);
  Batches b(d, {.batch_size = 4});
  ASSERT_EQ(b.size(), 3);
  EXPECT_EQ(b.num_samples(), 10);
  std::vector<int64_t> seen;
  for (const Batch& batch : b) {
    EXPECT_EQ(batch.begin, batch.index * 4);
    EXPECT_EQ(batch.x.dim(0), batch.size());
    EXPECT_EQ(batch.x.raw(), static_cast<const float*>(d.x.raw()) + 2 * batch.begin);  // view
    for (int64_t i = 0; i < batch.size(); ++i) {
      EXPECT_EQ(batch.x.data<float>()[2 * i], static_cast<float>(batch.y.data<int64_t>()[i]));
      seen.push_back(batch.y.data<int64_t>()[i]);
    }
  }
  std::vector<int64_t> want(10);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(seen, want);
  EXPECT_EQ(b[2].size(), 2);
}

TEST(Batches, MaxSamplesAndDropLast) {
  Dataset d = numbered(10);
  Batches first7(d, {.batch_size = 4, .max_samples = 7});
  EXPECT_EQ(first7.size(), 2);
  EXPECT_EQ(first7[1].size(), 3);
  Batches dropped(d, {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(dropped.size(), 2);
  EXPECT_EQ(dropped.num_samples(), 8);
  Batches all(d, {.batch_size = 100});
  EXPECT_EQ(all.size(), 1);
  EXPECT_EQ(all[0].size(), 10);
}

std::vector<int64_t> epoch_rows(const Dataset& d, uint64_t seed, uint64_t epoch) {
  std::vector<int64_t> rows;
  for (const Batch& batch :
       Batches(d, {.batch_size = 3, .shuffle = true, .seed = seed, .epoch = epoch})) {
    for (int64_t i = 0; i < batch.size(); ++i) {
      // Inputs travel with their labels.
      EXPECT_EQ(batch.x.data<float>()[2 * i + 1],
                10.0f * static_cast<float>(batch.y.data<int64_t>()[i]));
      rows.push_back(batch.y.data<int64_t>()[i]);
    }
  }
  return rows;
}

TEST(Batches, SeededShuffleIsAReproduciblePermutation) {
  Dataset d = numbered(50);
  const auto a = epoch_rows(d, 42, 0);
  EXPECT_EQ(a, epoch_rows(d, 42, 0));  // same seed and epoch: same order
  EXPECT_NE(a, epoch_rows(d, 42, 1));  // another epoch: another order
  EXPECT_NE(a, epoch_rows(d, 7, 0));   // another seed: another order
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> want(50);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(sorted, want);  // a permutation: every row exactly once
  std::vector<int64_t> identity = want;
  EXPECT_NE(a, identity);
}

TEST(Batches, BadArgumentsAreErrors) {
  Dataset d = numbered(4);
  testing::expect_error([&] { Batches(d, {.batch_size = 0}); }, {"batch size must be positive"});
  testing::expect_error([&] { Batches(d.x.rows(0, 3), d.y, {.batch_size = 2}); },
                        {"as many rows as labels"});
}

}  // namespace
}  // namespace qsearch::data
