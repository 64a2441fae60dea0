// The fast matmul of two activations (kernels/matmul.h) against its reference twin: broadcast
// batches as attention uses them, within the GEMM bound, independent of the thread count.
#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/float_test_util.h"
#include "kernels/ref/gemm.h"

namespace qsearch::kernels {
namespace {

using testing::dot_bound;
using testing::random_floats;

// [b0, b1, m, k] @ [b1 or 1, k, n] (B broadcast over dim 0, and over dim 1 when b_shared).
MatMulParams params(int64_t b0, int64_t b1, int64_t m, int64_t k, int64_t n, bool b_shared) {
  MatMulParams p;
  p.m = m, p.k = k, p.n = n;
  p.batch_rank = 2;
  p.batch_shape = {b0, b1};
  p.a_batch_stride = {b1 * m * k, m * k};
  p.b_batch_stride = {0, b_shared ? 0 : k * n};
  return p;
}

TEST(MatMulKernel, MatchesTheReferenceOnBroadcastBatches) {
  for (auto [b0, b1, m, k, n, shared] : {std::tuple{2, 4, 16, 8, 16, false},
                                         {3, 2, 5, 33, 7, true},
                                         {1, 1, 1, 1, 1, false},
                                         {2, 3, 17, 64, 9, false}}) {
    const MatMulParams p = params(b0, b1, m, k, n, shared);
    const std::vector<float> a = random_floats(b0 * b1 * m * k, 1, -2.0f, 2.0f);
    const std::vector<float> b = random_floats((shared ? 1 : b1) * k * n, 2, -2.0f, 2.0f);
    std::vector<float> fast(b0 * b1 * m * n), ref(fast.size());
    matmul_f32(p, a.data(), b.data(), fast.data());
    ref::matmul_f32(p, a.data(), b.data(), ref.data());
    for (int64_t x = 0; x < b0 * b1; ++x) {
      const float* am = a.data() + x * m * k;
      const float* bm = b.data() + (shared ? 0 : (x % b1) * k * n);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double mag = 0;
          for (int64_t t = 0; t < k; ++t) mag += std::fabs(am[i * k + t] * bm[t * n + j]);
          const int64_t o = (x * m + i) * n + j;
          EXPECT_LE(std::fabs(fast[o] - ref[o]), dot_bound(k, mag)) << x << " " << i << " " << j;
        }
      }
    }
  }
}

TEST(MatMulKernel, SameBitsForAnyThreadCount) {
  const MatMulParams p = params(4, 4, 64, 32, 64, false);
  const std::vector<float> a = random_floats(16 * 64 * 32, 3), b = random_floats(16 * 32 * 64, 4);
  std::vector<float> one(16 * 64 * 64), four(one.size());
  const int saved = num_threads();
  set_num_threads(1);
  matmul_f32(p, a.data(), b.data(), one.data());
  set_num_threads(4);
  matmul_f32(p, a.data(), b.data(), four.data());
  set_num_threads(saved);
  EXPECT_EQ(one, four);
}

TEST(MatMulKernel, EachOutputIsOneFmaChainOverAscendingK) {
  // The documented order, bit for bit, on every row-tile remainder (m % 4) and column remainder
  // (n % 16, n % 8), as attention's 17-token shapes have.
  for (int64_t m : {1, 2, 3, 4, 5, 17}) {
    for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 33}) {
      const int64_t k = 1 + (m * 7 + n) % 19;
      const MatMulParams p = params(2, 3, m, k, n, n % 2 == 0);
      const int64_t nb = n % 2 == 0 ? 1 : 3;
      const std::vector<float> a = random_floats(6 * m * k, 5, -2.0f, 2.0f);
      const std::vector<float> b = random_floats(nb * k * n, 6, -2.0f, 2.0f);
      std::vector<float> got(6 * m * n);
      matmul_f32(p, a.data(), b.data(), got.data());
      for (int64_t x = 0; x < 6; ++x) {
        const float* am = a.data() + x * m * k;
        const float* bm = b.data() + (nb == 1 ? 0 : (x % 3) * k * n);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            float acc = 0.0f;
            for (int64_t t = 0; t < k; ++t) acc = std::fma(am[i * k + t], bm[t * n + j], acc);
            ASSERT_EQ(got[(x * m + i) * n + j], acc) << m << " " << n << " " << x << " " << i;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::kernels
