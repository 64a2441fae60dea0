// The search's PackCache is bounded by the model (at least PackCache::kMinBytes / 4) and drops the
// least recently used packings for new ones, so a long search keeps its recent packings without
// its memory growing beyond half a float32 copy of the weights.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ir/graph.h"
#include "kernels/fixed/isa.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"

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

// A conv's packing depends on the plan's max_batch (its Winograd tile is chosen for it:
// kernels/fixed/winograd.h), so a plan for batch 1 does not reuse the packing of a plan for
// batch 16 from the same cache: a 7x7 map takes F(4x4) at 16 images, F(2x2) at 1. The cache
// counts every byte a packing keeps.
TEST(PackCache, AConvsPackingIsKeptPerMaxBatch) {
  if (kernels::fixed::max_isa() < kernels::fixed::Isa::kAvx2) GTEST_SKIP() << "no AVX2";
  testing::GraphMaker m({kDynamic, 32, 7, 7});
  const ir::ValueId y =
      m.op(ir::OpKind::kConv, {m.input(), m.constant({32, 32, 3, 3}, 5, -0.3f, 0.3f)},
           ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
  const ir::Graph g = m.finish(y);
  quant::QuantAssignment q;
  q[g.nodes().front().config_name] = {.quantized = true,
                                      .data_in = quant::FixedFormat{8, 4, true},
                                      .weight = quant::FixedFormat{8, 6, true}};
  auto cache = std::make_shared<PackCache>();
  auto steps = [&](int64_t max_batch) {
    return make_plan(g,
                     {.mode = Mode::kInt, .max_batch = max_batch, .quant = q, .pack_cache = cache})
        ->to_string();
  };
  const std::string at16 = steps(16);
  // It counts what the packing keeps resident: the Winograd filters too (36 int16 per channel
  // pair), not only the packed GEMM (9 codes per pair).
  EXPECT_GE(cache->bytes(), size_t{36 * 2 * 32 * 32});
  const std::string at1 = steps(1);
  EXPECT_NE(at16.find("winograd F(4x4)"), std::string::npos) << at16;
  EXPECT_NE(at1.find("winograd"), std::string::npos) << at1;
  EXPECT_EQ(at1.find("F(4x4)"), std::string::npos) << at1;
  EXPECT_EQ(cache->hits(), 0u);
  EXPECT_EQ(steps(16), at16);  // the same batch reuses it
  EXPECT_EQ(cache->hits(), 1u);
}

}  // namespace
}  // namespace qsearch::runtime
