// Standard normal functions with accurate tails, for TPE's truncated-normal kernels.
//
//   Φ(x)            = (1 + erf(x / √2)) / 2                  (normal CDF)
//   log_ndtr(x)     = log Φ(x), accurate for x -> -inf (asymptotic series below -20) and for
//                     x -> +inf (log1p(-Φ(-x)))
//   log_gauss_mass(a, b) = log(Φ(b) - Φ(a)), a <= b, computed in whichever tail avoids
//                     cancellation (Optuna's _log_gauss_mass does the same case split)
//   ndtri(p)        = Φ^{-1}(p), p in (0, 1); ndtri_exp(log p) for p below the double range
//   sample_truncnorm(rng, a, b) = z ~ N(0, 1) conditioned on a <= z <= b, by inversion in
//                     the tail that keeps precision (one uniform per sample)
//
// erf/erfc come from the C library (glibc: < 1 ulp); everything built on them is ours.
#pragma once

#include "core/rng.h"

namespace qsearch::search {

double log_ndtr(double x);
double log_gauss_mass(double a, double b);
double ndtri(double p);
double ndtri_exp(double log_p);
double sample_truncnorm(Rng& rng, double a, double b);

// log(exp(a) + exp(b)) without overflow; -inf inputs allowed.
double log_add_exp(double a, double b);

}  // namespace qsearch::search
