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
#include <functional>

namespace qsearch {

int num_threads();
void set_num_threads(int n);

// Calls fn(b, e) over disjoint [b, e) covering [begin, end); each chunk has >= grain indices
// (except possibly the last).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// True inside a parallel_for chunk (used to run nested loops inline).
bool in_parallel_region();

}  // namespace qsearch
