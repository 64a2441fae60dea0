// FeistelPermutation: a seeded bijection of [0, n) that needs O(1) memory, for visiting a huge
// finite space in pseudo-random order without storing it (brute force).
//
// A balanced Feistel network on 2h bits (2^{2h} >= n, h >= 1) is a bijection of [0, 2^{2h})
// whatever its round function; "cycle walking" (apply it again while the result is >= n)
// restricts it to a bijection of [0, n), with on average fewer than 4 applications because
// 2^{2h} < 4n. Six rounds with a 64-bit mixing round function keyed by the seed.
//
//   FeistelPermutation perm(18, /*seed=*/7);
//   perm(perm.inverse(5)) == 5;   // and {perm(0), ..., perm(17)} == {0, ..., 17}
#pragma once

#include <array>
#include <cstdint>

namespace qsearch::search {

class FeistelPermutation {
 public:
  FeistelPermutation(uint64_t n, uint64_t seed);
  uint64_t size() const { return n_; }
  uint64_t operator()(uint64_t i) const;  // i < size()
  uint64_t inverse(uint64_t x) const;     // x < size()

 private:
  static constexpr int kRounds = 6;
  uint64_t round_fn(uint64_t half, int round) const;
  uint64_t encrypt(uint64_t x) const;
  uint64_t decrypt(uint64_t x) const;

  uint64_t n_;
  int half_bits_;
  uint64_t mask_;
  std::array<uint64_t, kRounds> keys_;
};

}  // namespace qsearch::search
