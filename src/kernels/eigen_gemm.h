// The Eigen alternative to the hand-written GEMM: Y[M, N] = A[M, K] * W[N, K]^T (PyTorch's
// Linear), through Eigen's own blocked GEMM (single-threaded, the build's ISA). The runtime does
// not use it: bench/float_gemm_bench.cc measures it against gemm_f32_packed to decide whether the
// hand kernel pays (it does: see BENCHMARKS.md).
#pragma once

#include <cstdint>

namespace qsearch::kernels {

void gemm_f32_eigen(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* y);

}  // namespace qsearch::kernels
