// SobolSequence: the Sobol low-discrepancy sequence in any number of dimensions, optionally
// scrambled (linear matrix scramble + digital shift, the "LMS + shift" of Owen / Matoušek that
// scipy.stats.qmc.Sobol(scramble=True) also uses), for the QMC sampler.
//
// Construction (Bratley & Fox): dimension 0 is van der Corput (all m_k = 1). Dimension d >= 1
// uses the d-th primitive polynomial over GF(2) in (degree, value) order,
//   p = x^s + a_1 x^{s-1} + ... + a_{s-1} x + 1,
// found programmatically (x has multiplicative order 2^s - 1 modulo p), initial direction
// integers m_1 = 1 and m_k = 2 h(d, k) mod 2^k + 1 for 1 < k <= s from a fixed hash h (NOT the
// Joe–Kuo table, which is not available offline: 2-D projections are less uniform than with
// Joe–Kuo, but every dimension keeps the (0, m, 1)-net property), and
//   m_k = m_{k-s} ^ (m_{k-s} << s) ^ XOR_{j<s} a_j (m_{k-j} << j)   for k > s,
// direction numbers V_k = m_k 2^{B-k} (B = 52 bits). Point i has coordinate
//   x_d(i) = 2^{-B} XOR_{k : bit k-1 of i is set} V_k    (direct, no Gray code, any order).
// Scrambling multiplies each V_k by a random lower-triangular binary matrix with unit diagonal
// (bit j of the output depends on bits <= j, counted from the most significant) and XORs a
// random shift: both keep every 1-D projection of the first 2^m points one per 1/2^m cell.
//
//   SobolSequence sobol(3, /*scramble=*/true, /*seed=*/42);
//   std::vector<double> x(3);
//   sobol.point(5, x);  // in [0, 1)^3
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qsearch::search {

// The first `count` primitive polynomials over GF(2) in (degree, value) order; bit i holds the
// coefficient of x^i (x + 1 = 0b11, x^2 + x + 1 = 0b111, x^3 + x + 1 = 0b1011, ...).
std::vector<uint64_t> primitive_polynomials(int count);

class SobolSequence {
 public:
  static constexpr int kBits = 52;
  SobolSequence(int dims, bool scramble, uint64_t seed);
  int dims() const { return dims_; }
  // Coordinate `dim` of point `index` as a kBits-bit integer.
  uint64_t coordinate(uint64_t index, int dim) const;
  void point(uint64_t index, std::span<double> out) const;

 private:
  int dims_;
  std::vector<uint64_t> v_;      // dims x kBits direction numbers (scrambled when asked)
  std::vector<uint64_t> shift_;  // per dimension; 0 without scrambling
};

}  // namespace qsearch::search
