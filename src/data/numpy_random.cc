#include "data/numpy_random.h"

#include <cmath>
#include <numeric>
#include <utility>

#include "core/check.h"
#include "core/error.h"

namespace qsearch::data {

namespace {
constexpr int kN = 624;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpper = 0x80000000U;
constexpr uint32_t kLower = 0x7fffffffU;
}  // namespace

Mt19937::Mt19937(uint32_t seed) : pos_(kN) {
  mt_[0] = seed;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
}

void Mt19937::twist() {
  for (int i = 0; i < kN; ++i) {
    uint32_t y = (mt_[i] & kUpper) | (mt_[(i + 1) % kN] & kLower);
    mt_[i] = mt_[(i + kM) % kN] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
  }
  pos_ = 0;
}

uint32_t Mt19937::next_u32() {
  if (pos_ >= kN) twist();
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= y >> 18;
  return y;
}

uint64_t Mt19937::next_u64() {
  uint64_t hi = next_u32();
  uint64_t lo = next_u32();
  return hi << 32 | lo;
}

uint64_t random_interval(Mt19937& rng, uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
  uint64_t v;
  if (max <= 0xffffffffULL) {
    do {
      v = rng.next_u32() & mask;
    } while (v > max);
  } else {
    do {
      v = rng.next_u64() & mask;
    } while (v > max);
  }
  return v;
}

std::vector<int64_t> legacy_permutation(int64_t n, uint32_t seed) {
  QSEARCH_CHECK(n >= 0);
  std::vector<int64_t> a(static_cast<size_t>(n));
  std::iota(a.begin(), a.end(), int64_t{0});
  Mt19937 rng(seed);
  for (int64_t i = n - 1; i >= 1; --i) {
    auto j = static_cast<int64_t>(random_interval(rng, static_cast<uint64_t>(i)));
    std::swap(a[static_cast<size_t>(i)], a[static_cast<size_t>(j)]);
  }
  return a;
}

TrainTestIndices train_test_split_indices(int64_t n, double test_fraction, uint32_t seed) {
  QSEARCH_CHECK(test_fraction > 0 && test_fraction < 1);
  const auto n_test = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(n)));
  const int64_t n_train = n - n_test;
  if (n_test <= 0 || n_train <= 0) {
    fail("cannot split {} rows {:g}/{:g}: one part would be empty (need at least 2 rows)", n,
         1 - test_fraction, test_fraction);
  }
  std::vector<int64_t> perm = legacy_permutation(n, seed);
  TrainTestIndices out;
  out.test.assign(perm.begin(), perm.begin() + n_test);
  out.train.assign(perm.begin() + n_test, perm.end());
  return out;
}

}  // namespace qsearch::data
