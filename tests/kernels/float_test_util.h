// Helpers of the float kernel tests: seeded random data and the error bound of
// docs/numerics.md "Float kernels".
#pragma once

#include <cfloat>
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace qsearch::kernels::testing {

// Uniform values in [lo, hi), seeded.
inline std::vector<float> random_floats(int64_t n, uint64_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

// docs/numerics.md "Float kernels": a fast dot-product kernel's output differs from the
// reference (double accumulation, one final rounding) by at most
//   (terms + 4) * FLT_EPSILON * magnitude,
// where terms is the number of products summed (K for GEMM, C/G * kH * kW for conv) and
// magnitude = |alpha| * sum_k |a_k * b_k| + |bias| + |residual| of that output element.
inline double dot_bound(int64_t terms, double magnitude) {
  return static_cast<double>(terms + 4) * FLT_EPSILON * magnitude;
}

}  // namespace qsearch::kernels::testing
