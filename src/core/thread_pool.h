// Process-wide thread pool and parallel_for.
//
//   parallel_for(0, rows, /*grain=*/16, [&](int64_t begin, int64_t end) {
//     for (int64_t i = begin; i < end; ++i) compute_row(i);
//   });
//
// The calling thread works too and returns when every chunk is done. Any number of threads may
// call parallel_for at once (e.g. several search trials evaluating concurrently); their chunks
// share the workers. A parallel_for called from inside a chunk runs inline (no nesting), so a
// kernel may always call it. Chunk boundaries depend only on (begin, end, grain, num_threads()),
// and each index is processed by exactly one call of `fn`: results that do not reduce across
// chunks are therefore identical for any thread count.
//
// Thread count: set_num_threads(n) (the CLI's --threads), else $QSEARCH_THREADS, else the
// number of hardware threads.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

namespace qsearch {

int num_threads();
void set_num_threads(int n);

// A non-owning reference to a callable fn(int64_t begin, int64_t end), valid while the callable
// lives (parallel_for's caller waits for every chunk). Unlike std::function it never allocates,
// whatever the lambda captures: steps and kernels run allocation-free after their first call.
class ChunkFn {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, ChunkFn>)
      ChunkFn(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, int64_t b, int64_t e) {
          (*static_cast<std::remove_reference_t<F>*>(o))(b, e);
        }) {}
  void operator()(int64_t b, int64_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

// Calls fn(b, e) over disjoint [b, e) covering [begin, end); each chunk has >= grain indices
// (except possibly the last).
void parallel_for(int64_t begin, int64_t end, int64_t grain, ChunkFn fn);

// True inside a parallel_for chunk (used to run nested loops inline).
bool in_parallel_region();

}  // namespace qsearch
