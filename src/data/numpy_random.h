// numpy's legacy random stream, reproduced exactly so that qsearch splits the JSC data the way
// MASE does with sklearn.model_selection.train_test_split(X, y, test_size=0.2,
// random_state=42).
//
// Mt19937 is the Mersenne Twister MT19937 seeded with init_genrand(seed), which is what
// numpy.random.RandomState(seed) does for an integer seed. legacy_permutation(n, seed) equals
// numpy.random.RandomState(seed).permutation(n):
//
//   a = [0, 1, ..., n-1]
//   for i = n-1 down to 1:  j = random_interval(i);  swap(a[i], a[j])
//   random_interval(m): mask = all-ones up to m's highest bit; draw (32-bit words if
//                       m <= 2^32-1, else 64-bit = (first word << 32) | second word) & mask
//                       until the value is <= m (rejection, no modulo bias)
//
// train_test_split_indices(n, 0.2, 42) then gives sklearn's ShuffleSplit indices:
//   n_test = ceil(0.2 * n) (in double precision, as Python computes it), n_train = n - n_test,
//   test = perm[0, n_test), train = perm[n_test, n).
//
//   auto idx = train_test_split_indices(1000, 0.2, 42);   // idx.test.size() == 200
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace qsearch::data {

class Mt19937 {
 public:
  explicit Mt19937(uint32_t seed);
  uint32_t next_u32();
  uint64_t next_u64();  // (next_u32() << 32) | next_u32(), high word drawn first

 private:
  void twist();
  std::array<uint32_t, 624> mt_;
  int pos_;
};

// numpy's random_interval: a uniform integer in [0, max].
uint64_t random_interval(Mt19937& rng, uint64_t max);

// numpy.random.RandomState(seed).permutation(n).
std::vector<int64_t> legacy_permutation(int64_t n, uint32_t seed);

struct TrainTestIndices {
  std::vector<int64_t> train;
  std::vector<int64_t> test;
};
// sklearn train_test_split(..., test_size=test_fraction, random_state=seed) row indices
// (shuffle=True, no stratification). 0 < test_fraction < 1; throws Error when either part
// would be empty.
TrainTestIndices train_test_split_indices(int64_t n, double test_fraction, uint32_t seed);

}  // namespace qsearch::data
