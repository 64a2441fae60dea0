// "Pack once, run many batches without allocating": after a warm-up call, gemm() and conv2d()
// make no heap allocation (counted through a replaced global operator new in this binary).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/thread_pool.h"
#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/gemm.h"
#include "kernels_fixed/tester.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// These replacements pair malloc with free on purpose; GCC's heuristic sees "new" and "free".
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace qsearch::kernels::fixed {
namespace {

using testing::make_codes;

TEST(NoAllocation, GemmAndConvAfterWarmUp) {
  const int saved = num_threads();
  set_num_threads(1);  // the pool's own bookkeeping is core's business; this checks the kernels
  Rng rng(5);
  const FixedFormat f{8, 4, true};
  Tensor a = make_codes(DType::kInt8, 64 * 100, f, rng);
  Tensor b = make_codes(DType::kInt8, 100 * 40, f, rng);
  GemmWeights s;
  s.b = b.raw();
  s.k = 100;
  s.n = 40;
  s.stride_k = 40;
  s.stride_n = 1;
  s.b_format = f;
  s.a_format = f;
  const PackedWeights pw = pack_weights(s);
  GemmParams p;
  p.output = GemmOutput::kRequantize;
  p.out_format = {8, 4, false};
  std::vector<uint8_t> c(64 * 40);

  Conv2dGeometry g;
  g.in_channels = 2;
  g.in_h = g.in_w = 10;
  g.out_channels = 4;
  g.kernel_h = g.kernel_w = 3;
  Tensor w = make_codes(DType::kInt8, 4 * 2 * 9, f, rng);
  Conv2dWeights cw;
  cw.w = w.raw();
  cw.w_format = f;
  cw.a_format = f;
  const PackedConv2d pc = pack_conv2d(g, cw);
  Tensor x = make_codes(DType::kInt8, 3 * 2 * 10 * 10, f, rng);
  std::vector<uint8_t> y(3 * 4 * 8 * 8);
  // A depthwise conv (its own path, issue 14): 2 groups, stride 2, 5x5 taps, a fused Clip.
  Conv2dGeometry dg = g;
  dg.groups = 2;
  dg.kernel_h = dg.kernel_w = 5;
  dg.pad_top = dg.pad_left = dg.pad_bottom = dg.pad_right = 2;
  dg.stride_h = dg.stride_w = 2;
  Tensor dw = make_codes(DType::kInt8, 4 * 25, f, rng);
  Conv2dWeights dcw = cw;
  dcw.w = dw.raw();
  const PackedConv2d dpc = pack_conv2d(dg, dcw);
  GemmParams dp = p;
  dp.clamp_lo = 2;
  dp.clamp_hi = 96;
  std::vector<uint8_t> dy(3 * 4 * 5 * 5);

  gemm(a.raw(), 64, 100, pw, p, c.data());  // warm-up: per-thread scratch grows once
  conv2d(x.raw(), 3, pc, p, y.data());
  conv2d(x.raw(), 3, dpc, dp, dy.data());
  const long before = g_allocations.load();
  for (int i = 0; i < 3; ++i) {
    gemm(a.raw(), 64, 100, pw, p, c.data());
    gemm(a.raw(), 17, 100, pw, p, c.data());  // smaller batches reuse the scratch
    conv2d(x.raw(), 3, pc, p, y.data());
    conv2d(x.raw(), 3, dpc, dp, dy.data());
  }
  const long after = g_allocations.load();
  set_num_threads(saved);
  EXPECT_EQ(after - before, 0);
}

}  // namespace
}  // namespace qsearch::kernels::fixed
