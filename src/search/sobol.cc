#include "search/sobol.h"

#include <bit>

#include "core/check.h"
#include "core/rng.h"

namespace qsearch::search {

namespace {

// a * b mod p in GF(2)[x], deg p = s.
uint64_t gf2_mulmod(uint64_t a, uint64_t b, uint64_t p, int s) {
  uint64_t r = 0;
  while (b) {
    if (b & 1) r ^= a;
    b >>= 1;
    a <<= 1;
    if (a >> s & 1) a ^= p;
  }
  return r;
}

uint64_t gf2_powmod_x(uint64_t e, uint64_t p, int s) {
  uint64_t result = 1, base = s == 1 ? (2 ^ p) : 2;  // x mod p (x = 1 mod x + 1)
  while (e) {
    if (e & 1) result = gf2_mulmod(result, base, p, s);
    base = gf2_mulmod(base, base, p, s);
    e >>= 1;
  }
  return result;
}

std::vector<uint64_t> prime_factors(uint64_t n) {
  std::vector<uint64_t> f;
  for (uint64_t q = 2; q * q <= n; ++q) {
    if (n % q) continue;
    f.push_back(q);
    while (n % q == 0) n /= q;
  }
  if (n > 1) f.push_back(n);
  return f;
}

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<uint64_t> primitive_polynomials(int count) {
  std::vector<uint64_t> out;
  for (int s = 1; static_cast<int>(out.size()) < count; ++s) {
    QSEARCH_CHECK(s <= 40);
    const uint64_t order = (uint64_t{1} << s) - 1;
    const std::vector<uint64_t> factors = prime_factors(order);
    // Constant term 1 (else x is not invertible); x then has order 2^s - 1 iff p is primitive.
    for (uint64_t p = (uint64_t{1} << s) | 1; p < (uint64_t{1} << (s + 1)); p += 2) {
      if (gf2_powmod_x(order, p, s) != 1) continue;
      bool primitive = true;
      for (uint64_t q : factors) {
        if (q != order && gf2_powmod_x(order / q, p, s) == 1) primitive = false;
      }
      if (!primitive) continue;
      out.push_back(p);
      if (static_cast<int>(out.size()) == count) break;
    }
  }
  return out;
}

SobolSequence::SobolSequence(int dims, bool scramble, uint64_t seed)
    : dims_(dims), v_(static_cast<size_t>(dims) * kBits), shift_(dims, 0) {
  const std::vector<uint64_t> polys = primitive_polynomials(dims > 1 ? dims - 1 : 0);
  std::vector<uint64_t> m(kBits + 1);
  for (int d = 0; d < dims; ++d) {
    if (d == 0) {
      for (int k = 1; k <= kBits; ++k) m[k] = 1;
    } else {
      const uint64_t p = polys[d - 1];
      const int s = std::bit_width(p) - 1;
      for (int k = 1; k <= s && k <= kBits; ++k) {
        m[k] = k == 1
                   ? 1
                   : 2 * (mix64(static_cast<uint64_t>(d) << 8 | k) % (uint64_t{1} << (k - 1))) + 1;
      }
      for (int k = s + 1; k <= kBits; ++k) {
        uint64_t mk = m[k - s] ^ (m[k - s] << s);
        for (int j = 1; j < s; ++j) {
          if (p >> (s - j) & 1) mk ^= m[k - j] << j;
        }
        m[k] = mk;
      }
    }
    for (int k = 1; k <= kBits; ++k)
      v_[static_cast<size_t>(d) * kBits + (k - 1)] = m[k] << (kBits - k);
  }
  if (!scramble) return;
  Rng rng(seed);
  const uint64_t full = (uint64_t{1} << kBits) - 1;
  std::vector<uint64_t> rows(kBits);
  for (int d = 0; d < dims; ++d) {
    // Row i makes output bit i (from the most significant) from input bits 0..i.
    for (int i = 0; i < kBits; ++i) {
      const uint64_t own = uint64_t{1} << (kBits - 1 - i);
      const uint64_t above = full & ~((own << 1) - 1);
      rows[i] = (rng.next_u64() & above) | own;
    }
    for (int k = 0; k < kBits; ++k) {
      uint64_t& v = v_[static_cast<size_t>(d) * kBits + k];
      uint64_t out = 0;
      for (int i = 0; i < kBits; ++i) {
        out |= static_cast<uint64_t>(std::popcount(rows[i] & v) & 1) << (kBits - 1 - i);
      }
      v = out;
    }
    shift_[d] = rng.next_u64() & full;
  }
}

uint64_t SobolSequence::coordinate(uint64_t index, int dim) const {
  QSEARCH_DCHECK(dim >= 0 && dim < dims_);
  QSEARCH_DCHECK(index < (uint64_t{1} << kBits));
  const uint64_t* v = v_.data() + static_cast<size_t>(dim) * kBits;
  uint64_t x = shift_[dim];
  for (int k = 0; index; ++k, index >>= 1) {
    if (index & 1) x ^= v[k];
  }
  return x;
}

void SobolSequence::point(uint64_t index, std::span<double> out) const {
  QSEARCH_DCHECK(static_cast<int>(out.size()) == dims_);
  for (int d = 0; d < dims_; ++d) {
    out[d] = static_cast<double>(coordinate(index, d)) * 0x1.0p-52;
  }
}

}  // namespace qsearch::search
