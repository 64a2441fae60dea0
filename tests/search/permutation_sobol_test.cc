#include <gtest/gtest.h>

#include <bit>
#include <numeric>
#include <set>

#include "search/permutation.h"
#include "search/sobol.h"

namespace qsearch::search {
namespace {

TEST(FeistelPermutation, IsABijectionForEverySize) {
  for (uint64_t n = 1; n <= 300; ++n) {
    const FeistelPermutation perm(n, n * 7 + 1);
    std::vector<bool> hit(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t x = perm(i);
      ASSERT_LT(x, n);
      ASSERT_FALSE(hit[x]);
      hit[x] = true;
      ASSERT_EQ(perm.inverse(x), i);
    }
  }
}

TEST(FeistelPermutation, HugeDomainsAndSeedsDiffer) {
  const uint64_t n = (uint64_t{1} << 61) + 12345;
  const FeistelPermutation a(n, 1), b(n, 2);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const uint64_t x = a(i * 977);
    ASSERT_LT(x, n);
    EXPECT_EQ(a.inverse(x), i * 977);
    same += x == b(i * 977);
  }
  EXPECT_EQ(same, 0);
  // Not the identity, and order differs between seeds on a small space too.
  const FeistelPermutation c(18, 1), d(18, 2);
  std::vector<uint64_t> oc, od, id(18);
  std::iota(id.begin(), id.end(), 0);
  for (uint64_t i = 0; i < 18; ++i) oc.push_back(c(i)), od.push_back(d(i));
  EXPECT_NE(oc, od);
  EXPECT_NE(oc, id);
}

// Number of primitive polynomials of degree s: φ(2^s - 1) / s.
uint64_t count_primitive(int s) {
  uint64_t n = (uint64_t{1} << s) - 1, phi = n, m = n;
  for (uint64_t q = 2; q * q <= m; ++q) {
    if (m % q) continue;
    phi -= phi / q;
    while (m % q == 0) m /= q;
  }
  if (m > 1) phi -= phi / m;
  return phi / s;
}

TEST(Sobol, PrimitivePolynomials) {
  const auto polys = primitive_polynomials(200);
  // The classical list: x+1, x^2+x+1, x^3+x+1, x^3+x^2+1, x^4+x+1, x^4+x^3+1, ...
  const std::vector<uint64_t> head{0b11, 0b111, 0b1011, 0b1101, 0b10011, 0b11001};
  EXPECT_EQ(std::vector<uint64_t>(polys.begin(), polys.begin() + 6), head);
  std::vector<uint64_t> per_degree(10, 0);
  for (uint64_t p : polys) {
    const int s = std::bit_width(p) - 1;
    if (s < 10) ++per_degree[s];
  }
  for (int s = 1; s <= 8; ++s) EXPECT_EQ(per_degree[s], count_primitive(s)) << "degree " << s;
}

TEST(Sobol, UnscrambledStartsAtOriginAndDim0IsVanDerCorput) {
  const SobolSequence sobol(5, false, 0);
  std::vector<double> x(5);
  sobol.point(0, x);
  for (double v : x) EXPECT_EQ(v, 0.0);
  for (uint64_t i = 1; i < 64; ++i) {
    // van der Corput: the bits of i mirrored behind the binary point.
    double want = 0, scale = 0.5;
    for (uint64_t j = i; j; j >>= 1, scale /= 2) want += (j & 1) * scale;
    sobol.point(i, x);
    EXPECT_EQ(x[0], want);
  }
}

// Every 1-D projection of the first 2^m points hits each cell [k/2^m, (k+1)/2^m) once, and the
// first two dimensions form a (0, m, 2)-net: each 2^a x 2^(m-a) box holds exactly one point.
TEST(Sobol, NetPropertyWithAndWithoutScrambling) {
  for (bool scramble : {false, true}) {
    const int dims = 40;
    const SobolSequence sobol(dims, scramble, 1234);
    for (int m : {1, 4, 8}) {
      const uint64_t n = uint64_t{1} << m;
      for (int d = 0; d < dims; ++d) {
        std::set<uint64_t> cells;
        for (uint64_t i = 0; i < n; ++i) cells.insert(sobol.coordinate(i, d) >> (52 - m));
        EXPECT_EQ(cells.size(), n) << "dim " << d << " m " << m << " scramble " << scramble;
      }
      for (int a = 0; a <= m; ++a) {
        std::set<std::pair<uint64_t, uint64_t>> boxes;
        for (uint64_t i = 0; i < n; ++i) {
          boxes.insert({a == 0 ? 0 : sobol.coordinate(i, 0) >> (52 - a),
                        a == m ? 0 : sobol.coordinate(i, 1) >> (52 - (m - a))});
        }
        EXPECT_EQ(boxes.size(), n) << "a " << a << " m " << m;
      }
    }
  }
}

TEST(Sobol, ScrambleDependsOnSeed) {
  const SobolSequence a(3, true, 1), b(3, true, 2);
  std::vector<double> x(3), y(3);
  a.point(0, x);
  b.point(0, y);
  EXPECT_NE(x, y);
  EXPECT_NE(x, std::vector<double>(3, 0.0));
}

}  // namespace
}  // namespace qsearch::search
