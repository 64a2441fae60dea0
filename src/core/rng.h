// Rng: a small, fast, seeded random generator (xoshiro256**, seeded through splitmix64) whose
// output is identical on every platform and compiler: all distributions are implemented here
// rather than with <random>'s implementation-defined ones.
//
//   Rng rng(42);
//   double u = rng.uniform();          // [0, 1)
//   uint64_t k = rng.uniform_int(10);  // 0..9, unbiased
//   double z = rng.normal();           // N(0, 1)
//   Rng child = rng.fork(7);           // independent stream derived from (state, 7)
//
// Not thread-safe: give each thread its own Rng (e.g. Rng(seed).fork(trial_number)).
#pragma once

#include <cstdint>
#include <span>
#include <utility>

namespace qsearch {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);

  uint64_t next_u64();
  // Uniform double in [0, 1) with 53 random bits.
  double uniform();
  // Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0, without modulo bias.
  uint64_t uniform_int(uint64_t n);
  // Standard normal (Marsaglia polar method; caches the second variate).
  double normal();
  // A new generator whose stream depends on this one's seed and `stream` but not on how many
  // numbers this one has produced.
  Rng fork(uint64_t stream) const;

  template <typename T>
  void shuffle(std::span<T> v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(uniform_int(i));
      std::swap(v[i - 1], v[j]);
    }
  }

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace qsearch
