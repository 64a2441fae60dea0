// The search's PackCache is bounded by the model (at least PackCache::kMinBytes / 4) and drops the
// least recently used packings for new ones, so a long search keeps its recent packings without
// its memory growing beyond half a float32 copy of the weights.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "runtime/plan.h"

namespace qsearch::runtime {
namespace {

std::shared_ptr<const void> value(int v) { return std::make_shared<const int>(v); }

int int_of(const std::shared_ptr<const void>& p) { return *static_cast<const int*>(p.get()); }

TEST(PackCache, KeepsTheRecentlyUsedPackingsWithinItsBound) {
  ir::Graph g;
  g.add_input("x", {kDynamic, 4});
  PackCache cache(100);
  cache.put(g, "a", value(1), 40);
  cache.put(g, "b", value(2), 40);
  ASSERT_NE(cache.find(g, "a"), nullptr);  // a is now more recent than b
  cache.put(g, "c", value(3), 40);         // over 100: b goes
  EXPECT_EQ(cache.find(g, "b"), nullptr);
  ASSERT_NE(cache.find(g, "a"), nullptr);
  ASSERT_NE(cache.find(g, "c"), nullptr);
  EXPECT_EQ(int_of(cache.find(g, "a")), 1);
  EXPECT_EQ(int_of(cache.find(g, "c")), 3);
  EXPECT_EQ(cache.bytes(), 80u);
  // A packing larger than the bound is never kept and drops nothing.
  cache.put(g, "huge", value(4), 101);
  EXPECT_EQ(cache.find(g, "huge"), nullptr);
  EXPECT_EQ(cache.bytes(), 80u);
  // Alternating between two sets that together exceed the bound: the recent one always hits.
  for (int round = 0; round < 4; ++round) {
    for (const char* k : {"p", "q"}) {
      if (!cache.find(g, k)) cache.put(g, k, value(round), 60);
      ASSERT_NE(cache.find(g, k), nullptr) << k;
      EXPECT_LE(cache.bytes(), 100u);
    }
  }
}

TEST(PackCache, DefaultBoundIsHalfTheGraphsFloat32WeightsAtLeastTheMinimum) {
  ir::Graph small;
  small.add_input("x", {kDynamic, 4});
  small.add_constant("w", Tensor({4, 4}, DType::kFloat32));
  PackCache a;
  EXPECT_EQ(a.find(small, "k"), nullptr);
  EXPECT_EQ(a.max_bytes(), PackCache::kMinBytes / 4);

  ir::Graph big;
  big.add_input("x", {kDynamic, 4});
  const int64_t n = static_cast<int64_t>(PackCache::kMinBytes / 8) + 1024 * 1024;  // +4 MB
  big.add_constant("w1", Tensor({n}, DType::kFloat32));
  big.add_constant("w2", Tensor({1024}, DType::kFloat32));
  PackCache b;
  b.put(big, "k", value(1), 16);
  EXPECT_EQ(b.max_bytes(), static_cast<size_t>(n + 1024) * 2);
  // Filling it never holds more than half the weights' bytes.
  for (int i = 0; i < 40; ++i) {
    b.put(big, fmt::format("p{}", i), value(i), PackCache::kMinBytes / 32);
    EXPECT_LE(b.bytes(), b.max_bytes());
  }
  EXPECT_NE(b.find(big, "p39"), nullptr);
}

}  // namespace
}  // namespace qsearch::runtime
