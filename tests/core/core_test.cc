#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/tensor_cache.h"
#include "core/thread_pool.h"

namespace qsearch {
namespace {

TEST(Tensor, ZeroInitialisedAlignedAndShared) {
  Tensor t({3, 5}, DType::kFloat32);
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
  Tensor view = t.reshaped({5, 3});
  view.data<float>()[4] = 2.0f;
  EXPECT_EQ(t.data<float>()[4], 2.0f);
  Tensor copy = t.clone();
  copy.data<float>()[4] = 3.0f;
  EXPECT_EQ(t.data<float>()[4], 2.0f);
}

// Large buffers are recycled (core/tensor.cc's block cache): a reused one is zeroed again. From
// 2 MiB they are mapped from the kernel (zero without a memset) and unmapped when the cache lets
// them go: sizes on both sides of that bound, ragged ones included, reused and released.
TEST(Tensor, RecycledLargeBuffersAreZeroed) {
  for (const int64_t n : {int64_t{64} << 10, (int64_t{2} << 20) - 4096, int64_t{2} << 20,
                          (int64_t{2} << 20) + 100, (int64_t{5} << 20) + 4097}) {
    for (int round = 0; round < 4; ++round) {
      Tensor t({n}, DType::kUInt8);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
      const uint8_t* p = t.data<uint8_t>();
      ASSERT_TRUE(std::all_of(p, p + n, [](uint8_t v) { return v == 0; })) << n << " " << round;
      std::fill(t.data<uint8_t>(), t.data<uint8_t>() + n, uint8_t{7});
      if (round == 2) {
        Tensor keep = t;  // still held: the release below must not free it
        t = Tensor();
        release_cached_tensor_blocks();
        ASSERT_EQ(keep.data<uint8_t>()[n - 1], 7);
      }
    }
    EXPECT_GE(release_cached_tensor_blocks(), static_cast<size_t>(n)) << n;
  }
}

TEST(Tensor, RowsIsAView) {
  Tensor t = Tensor::from<int32_t>({3, 2}, {0, 1, 2, 3, 4, 5});
  Tensor r = t.rows(1, 3);
  EXPECT_EQ(r.shape(), (Shape{2, 2}));
  EXPECT_EQ(r.data<int32_t>()[0], 2);
  EXPECT_EQ(r.data<int32_t>()[3], 5);
  Tensor f = r.to(DType::kFloat32);
  EXPECT_EQ(f.data<float>()[3], 5.0f);
}

TEST(Tensor, ShapeStr) {
  EXPECT_EQ(shape_str({kDynamic, 1, 28, 28}), "[?, 1, 28, 28]");
  EXPECT_EQ(shape_numel({}), 1);
}

TEST(Error, ContextLines) {
  Error e("bad weight");
  e.add_context("while importing node '/fc1/Gemm'").add_context("while loading 'm.onnx'");
  EXPECT_STREQ(e.what(),
               "bad weight\n  while importing node '/fc1/Gemm'\n  while loading 'm.onnx'");
}

TEST(Rng, DeterministicAndInRange) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(Rng(42).next_u64(), c.next_u64());
  Rng r(7);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) {
    double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++counts[r.uniform_int(6)];
  }
  for (int c6 : counts) EXPECT_NEAR(c6, 10000, 500);  // > 5 sigma
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; ++i) {
    double z = r.normal();
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / 100000, 0.0, 0.02);
  EXPECT_NEAR(sq / 100000, 1.0, 0.02);
}

TEST(Rng, ForkDependsOnSeedAndStreamOnly) {
  Rng a(5);
  Rng fa = a.fork(3);
  a.next_u64();
  EXPECT_EQ(a.fork(3).next_u64(), fa.next_u64());
  EXPECT_NE(Rng(5).fork(4).next_u64(), Rng(5).fork(3).next_u64());
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  set_num_threads(4);
  std::vector<std::atomic<int>> hits(10007);
  parallel_for(0, 10007, 13, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, ConcurrentCallersAndNesting) {
  set_num_threads(3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) {
        parallel_for(0, 100, 1, [&](int64_t b, int64_t e) {
          EXPECT_TRUE(in_parallel_region() || e - b == 100);
          // Nested loops run inline.
          parallel_for(0, e - b, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
        });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 4 * 50 * 100);
}

}  // namespace
}  // namespace qsearch
