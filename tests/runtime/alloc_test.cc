// Executor::run allocates nothing: every operator new in this test binary is counted.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "core/thread_pool.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/test_models.h"

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

// The replacements pair malloc with free; GCC's heuristic cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's temporary buffer): otherwise they come from the
// sanitizer's operator new while the replaced delete frees them (ASan: alloc-dealloc-mismatch).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace qsearch::runtime {
namespace {

TEST(Executor, RunDoesNotAllocate) {
  const int saved = num_threads();
  set_num_threads(1);
  for (const ir::Graph& g :
       {testing::make_mlp({784, 256, 128, 10}), testing::make_residual_cnn()}) {
    auto plan = make_plan(g, {.max_batch = 32});
    Executor ex(plan);
    Tensor x = testing::random_tensor({32, 1, 28, 28}, 1, 0.0f, 1.0f);
    Tensor small = x.rows(0, 7);
    const int64_t before = g_allocations.load();
    ex.run(x);
    ex.run(small);  // a different batch size too
    ex.run(x);
    EXPECT_EQ(g_allocations.load() - before, 0);
  }
  set_num_threads(saved);
}

// The quantized modes: int (kernels' per-thread scratch grows on a thread's first run, hence the
// warm-up) and fake.
TEST(Executor, QuantizedRunsDoNotAllocate) {
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const ir::Graph& g :
         {testing::make_mlp({784, 256, 128, 10}), testing::make_residual_cnn()}) {
      quant::QuantAssignment q;
      for (const ir::Node& n : g.nodes()) {
        const std::string op = ir::mase_op(g, n);
        const quant::FixedFormat f{4, 2, op != "relu"};
        if (op == "linear" || op == "conv2d") {
          q[n.config_name] = {.quantized = true, .data_in = f, .weight = f, .bias = f};
        } else if (op == "relu" || op == "add" || op == "batch_norm2d") {
          q[n.config_name] = {.quantized = true, .data_in = f};
        }
      }
      for (Mode mode : {Mode::kInt, Mode::kFake}) {
        auto plan = make_plan(g, {.mode = mode, .max_batch = 32, .quant = q});
        Executor ex(plan);
        Tensor x = testing::random_tensor({32, 1, 28, 28}, 1, 0.0f, 1.0f);
        const Tensor small = x.rows(0, 7);
        ex.run(x);  // warm-up
        const int64_t before = g_allocations.load();
        ex.run(x);
        ex.run(small);
        ex.run(x);
        EXPECT_EQ(g_allocations.load() - before, 0) << mode_name(mode) << ", threads " << threads;
      }
    }
  }
  set_num_threads(saved);
}

TEST(Executor, RunInsideAParallelRegionDoesNotAllocate) {
  // The evaluator's pattern: one executor per worker, run() inside parallel_for chunks (the
  // kernels' own parallel_for then runs inline).
  const int saved = num_threads();
  set_num_threads(2);
  auto plan = make_plan(testing::make_residual_cnn(), {.max_batch = 8});
  Executor ex0(plan), ex1(plan);
  Tensor x = testing::random_tensor({16, 1, 28, 28}, 2, 0.0f, 1.0f);
  Tensor a = x.rows(0, 8), b = x.rows(8, 16);
  std::atomic<int64_t> inside{0};
  parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t before = g_allocations.load();
      (i == 0 ? ex0 : ex1).run(i == 0 ? a : b);
      inside += g_allocations.load() - before;
    }
  });
  // Counted globally: another thread's allocations (none expected) would show up too.
  EXPECT_EQ(inside.load(), 0);
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::runtime
