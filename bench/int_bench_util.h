// The harness the integer kernel benches share (int_direct_bench, int_winograd_bench,
// int_depthwise_bench): random
// codes, process CPU time, medians, and one timed call of a kernel.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "quant/quantize.h"

namespace qsearch::bench {

// n codes uniform in [lo, hi], stored as dtype t.
inline Tensor codes(DType t, int64_t n, int64_t lo, int64_t hi, Rng& rng) {
  Tensor out({n}, t);
  for (int64_t i = 0; i < n; ++i) {
    quant::store_code(out.raw(), t, i, lo + static_cast<int64_t>(rng.uniform_int(hi - lo + 1)));
  }
  return out;
}

// The process CPU time in ms (all threads).
inline double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Wall and process CPU ms per call of f(), over reps calls.
struct Timing {
  double ms = 0, cpu_ms = 0;
};
template <class F>
Timing time_calls(int reps, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_ms();
  for (int k = 0; k < reps; ++k) f();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return Timing{ms / reps, (cpu_ms() - c0) / reps};
}

// One warm-up call of f(), then `rounds` timed calls: the median wall and CPU ms per call.
template <class F>
Timing median_timing(int rounds, F&& f) {
  f();
  std::vector<double> t, c;
  for (int r = 0; r < rounds; ++r) {
    const Timing tm = time_calls(1, f);
    t.push_back(tm.ms);
    c.push_back(tm.cpu_ms);
  }
  return Timing{median(t), median(c)};
}

}  // namespace qsearch::bench
