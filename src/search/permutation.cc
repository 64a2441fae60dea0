#include "search/permutation.h"

#include "core/check.h"
#include "core/rng.h"

namespace qsearch::search {

namespace {
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

FeistelPermutation::FeistelPermutation(uint64_t n, uint64_t seed) : n_(n) {
  QSEARCH_CHECK(n >= 1);
  int bits = 0;
  while (bits < 64 && (n - 1) >> bits) ++bits;
  half_bits_ = bits <= 2 ? 1 : (bits + 1) / 2;
  mask_ = (uint64_t{1} << half_bits_) - 1;
  Rng rng(seed);
  for (auto& k : keys_) k = rng.next_u64();
}

uint64_t FeistelPermutation::round_fn(uint64_t half, int round) const {
  return mix64(half ^ keys_[round]) & mask_;
}

uint64_t FeistelPermutation::encrypt(uint64_t x) const {
  uint64_t l = x >> half_bits_, r = x & mask_;
  for (int i = 0; i < kRounds; ++i) {
    const uint64_t next_r = l ^ round_fn(r, i);
    l = r;
    r = next_r;
  }
  return (l << half_bits_) | r;
}

uint64_t FeistelPermutation::decrypt(uint64_t x) const {
  uint64_t l = x >> half_bits_, r = x & mask_;
  for (int i = kRounds - 1; i >= 0; --i) {
    const uint64_t prev_l = r ^ round_fn(l, i);
    r = l;
    l = prev_l;
  }
  return (l << half_bits_) | r;
}

uint64_t FeistelPermutation::operator()(uint64_t i) const {
  QSEARCH_DCHECK(i < n_);
  uint64_t x = encrypt(i);
  while (x >= n_) x = encrypt(x);
  return x;
}

uint64_t FeistelPermutation::inverse(uint64_t x) const {
  QSEARCH_DCHECK(x < n_);
  uint64_t i = decrypt(x);
  while (i >= n_) i = decrypt(i);
  return i;
}

}  // namespace qsearch::search
