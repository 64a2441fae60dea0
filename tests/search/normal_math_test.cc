#include "search/normal_math.h"

#include <gtest/gtest.h>

#include <cmath>

namespace qsearch::search {
namespace {

// Reference values: mpmath 1.2.1 with 40-400 digits, e.g.
//   mp.mp.dps = 40; mp.log(mp.ncdf(-38))
struct Ref {
  double x, want;
};

TEST(NormalMath, LogNdtrMatchesHighPrecision) {
  const Ref refs[] = {
      {-100.0, -5005.5242086942050886},    {-40.0, -804.60844201375378817},
      {-38.0, -726.5572160188201301},      {-25.0, -316.63940800802025894},
      {-20.5, -214.06672896326380017},     {-19.5, -194.01696577749749941},
      {-10.0, -53.231285150512470578},     {-5.0, -15.064998393988725736},
      {-1.0, -1.8410216450092635058},      {0.0, -0.69314718055994530942},
      {0.5, -0.36894641528865639307},      {3.0, -0.0013508099647481937988},
      {6.5, -4.0160005839397591118e-11},   {10.0, -7.6198530241605260704e-24},
      {30.0, -4.9067139271481870595e-198},
  };
  for (const Ref& r : refs) {
    EXPECT_NEAR(log_ndtr(r.x), r.want, 1e-13 * std::fabs(r.want)) << r.x;
  }
}

TEST(NormalMath, LogGaussMassInBothTailsAndTheMiddle) {
  struct Mass {
    double a, b, want;
  };
  const Mass refs[] = {
      {-1.0, 1.0, -0.38171514630212607227},     {-50.0, -49.0, -1205.3111748916652575},
      {49.0, 50.0, -1205.3111748916652575},     {-3.0, -2.5, -5.3267647240790622482},
      {2.0, 2.0000001, -19.03703428579957124},  {-0.1, 40.0, -0.61650501011502628874},
      {-40.0, 8.0, -6.2209605742717860585e-16},
  };
  for (const Mass& m : refs) {
    EXPECT_NEAR(log_gauss_mass(m.a, m.b), m.want, 1e-9 * std::fabs(m.want) + 1e-22)
        << m.a << " " << m.b;
  }
  EXPECT_EQ(log_gauss_mass(1, 1), -INFINITY);
}

TEST(NormalMath, NdtriInvertsTheCdf) {
  const Ref refs[] = {{1e-20, -9.2623400897984075737},
                      {0.001, -3.0902323061678135415},
                      {0.3, -0.52440051270804078404},
                      {0.5, 0.0},
                      {0.9, 1.281551565544600467},
                      // 1 - 2^-10 and 1 - 2^-40 are exact doubles (upper-tail branch)
                      {1 - 0x1p-10, 3.0972690781987844624},
                      {1 - 0x1p-40, 7.0477002566644087254},
                      {1e-300, -37.047096299361199237}};
  for (const Ref& r : refs) EXPECT_NEAR(ndtri(r.x), r.want, 1e-13 * (1 + std::fabs(r.want))) << r.x;
  EXPECT_NEAR(ndtri_exp(-1000.0), -44.61574773196940302, 1e-12);
  EXPECT_NEAR(ndtri_exp(std::log(0.3)), -0.52440051270804078404, 1e-13);
  EXPECT_EQ(ndtri(0.0), -INFINITY);
}

// Mean of N(0,1) truncated to [a, b]: (φ(a) - φ(b)) / (Φ(b) - Φ(a)).
double truncated_mean(double a, double b) {
  const double log_mass = log_gauss_mass(a, b);
  auto ratio = [&](double x) {
    return std::exp(-0.5 * x * x - 0.5 * std::log(2 * M_PI) - log_mass);
  };
  return ratio(a) - ratio(b);
}

TEST(NormalMath, TruncnormSamplesStayInsideAndHaveTheRightMean) {
  const std::pair<double, double> intervals[] = {{-1, 1},    {-0.5, 3}, {2, 2.5},  {8, 9},
                                                 {-40, -39}, {-3, 30},  {0, 0.001}};
  for (auto [a, b] : intervals) {
    Rng rng(17);
    constexpr int kN = 20000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < kN; ++i) {
      const double z = sample_truncnorm(rng, a, b);
      ASSERT_GE(z, a);
      ASSERT_LE(z, b);
      sum += z;
      sum2 += z * z;
    }
    const double mean = sum / kN, sd = std::sqrt(sum2 / kN - mean * mean);
    // 5 standard errors: a wrong inversion (e.g. untruncated or mirrored) misses by far more.
    EXPECT_NEAR(mean, truncated_mean(a, b), 5 * sd / std::sqrt(kN) + 1e-12) << a << " " << b;
  }
}

TEST(NormalMath, LogAddExp) {
  EXPECT_NEAR(log_add_exp(std::log(2.0), std::log(3.0)), std::log(5.0), 1e-15);
  EXPECT_EQ(log_add_exp(-INFINITY, 1.5), 1.5);
  EXPECT_NEAR(log_add_exp(1000, 1000), 1000 + std::log(2.0), 1e-12);
}

}  // namespace
}  // namespace qsearch::search
