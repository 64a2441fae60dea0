#include "search/normal_math.h"

#include <cmath>
#include <limits>

namespace qsearch::search {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;
constexpr double kSqrt2Pi = 2.50662827463100050242;

// Φ(x) for moderate x; underflows to 0 only below about -38.
double ndtr(double x) { return 0.5 * std::erfc(-x * kSqrt1_2); }

// log(1 - exp(x)) for x <= 0 (Mächler's split between the two forms).
double log1mexp(double x) {
  return x > -0.6931471805599453 ? std::log(-std::expm1(x)) : std::log1p(-std::exp(x));
}

}  // namespace

double log_add_exp(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double m = a > b ? a : b;
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

double log_ndtr(double x) {
  if (std::isnan(x)) return x;
  if (x > 6.0) return std::log1p(-ndtr(-x));
  if (x > -20.0) return std::log(ndtr(x));
  // Φ(x) = φ(x)/|x| · (1 - 1/x² + 3/x⁴ - 15/x⁶ + ...); at x <= -20 the terms shrink by at least
  // 1/400 · (2k-1) each, so 12 terms are far below double precision.
  const double x2 = x * x;
  double term = 1.0, sum = 1.0;
  for (int k = 1; k <= 12; ++k) {
    term *= -(2.0 * k - 1.0) / x2;
    sum += term;
  }
  return -0.5 * x2 - std::log(-x) - kLogSqrt2Pi + std::log(sum);
}

double log_gauss_mass(double a, double b) {
  if (!(a < b)) return -kInf;
  if (b <= 0) return log_ndtr(b) + log1mexp(log_ndtr(a) - log_ndtr(b));
  if (a >= 0) return log_ndtr(-a) + log1mexp(log_ndtr(-b) - log_ndtr(-a));
  // a < 0 < b: both tails are at most 1/2, so 1 - Φ(a) - Φ(-b) has no cancellation problem.
  return std::log1p(-ndtr(a) - ndtr(-b));
}

double ndtri(double p) {
  if (!(p > 0)) return p == 0 ? -kInf : std::numeric_limits<double>::quiet_NaN();
  if (!(p < 1)) return p == 1 ? kInf : std::numeric_limits<double>::quiet_NaN();
  // Acklam's rational approximation (relative error < 1.2e-9) ...
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // ... refined by one Halley step on Φ(x) - p, which brings it to full double precision. The
  // residual is taken in the smaller tail so it keeps its relative precision.
  const double e = x < 0 ? ndtr(x) - p : (1 - p) - ndtr(-x);
  const double u = e * kSqrt2Pi * std::exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

double ndtri_exp(double log_p) {
  if (log_p > -700) return ndtri(std::exp(log_p));
  // Far tail: start from log Φ(x) ≈ -x²/2 - log(-x) - log√(2π) and Newton-iterate on
  // log Φ(x) = log_p, whose derivative is φ(x)/Φ(x) = exp(log φ(x) - log Φ(x)).
  double x = -std::sqrt(-2 * log_p);
  for (int it = 0; it < 4; ++it) x = -std::sqrt(-2 * (log_p + std::log(-x) + kLogSqrt2Pi));
  for (int it = 0; it < 3; ++it) {
    const double f = log_ndtr(x) - log_p;
    const double dlog = std::exp(-0.5 * x * x - kLogSqrt2Pi - log_ndtr(x));
    x -= f / dlog;
  }
  return x;
}

namespace {

// Inverse CDF of N(0, 1) restricted to [a, b] at probability u.
double truncnorm_inverse(double u, double a, double b) {
  if (a > 0) return -truncnorm_inverse(u, -b, -a);  // mirror a right-tail interval
  double z;
  if (b <= 0) {
    // Left tail: Φ(a) + u (Φ(b) - Φ(a)) = (1 - u) Φ(a) + u Φ(b), assembled in log space.
    const double lp = log_add_exp(std::log1p(-u) + log_ndtr(a), std::log(u) + log_ndtr(b));
    z = ndtri_exp(lp);
  } else {
    const double p = ndtr(a) + u * (ndtr(b) - ndtr(a));
    if (p <= 0.5) {
      z = ndtri(p);
    } else {  // upper half: invert the complement 1 - p = (1 - u) Φ(-a) + u Φ(-b)
      z = -ndtri((1 - u) * ndtr(-a) + u * ndtr(-b));
    }
  }
  return std::fmin(std::fmax(z, a), b);
}

}  // namespace

double sample_truncnorm(Rng& rng, double a, double b) {
  const double u = rng.uniform();
  if (!(a < b)) return a;
  return truncnorm_inverse(u, a, b);
}

}  // namespace qsearch::search
