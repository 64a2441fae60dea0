// TPE's Parzen estimators (Optuna 4.x _ParzenEstimator), univariate and multivariate.
//
// A mixture over m observations plus one prior component, weights w_i (given, e.g. TPE's
// default_weights) and prior_weight, normalised to sum 1 (no observations: the prior alone).
// Numerical parameters work in "transformed" coordinates t (log t for log distributions) on
//   discrete (int, stepped float, not log):  [a, b] = [low - s/2, high + s/2], step s
//   continuous float:                        [a, b] = [T(low), T(high)]
//   log int (Optuna 4.x's log-int hack):     [a, b] = [log(low - s/2), log(high + s/2)],
//                                            continuous kernels, samples rounded to the grid
// Prior: mu = (a + b) / 2, sigma = b - a. Observation bandwidths:
//   univariate: sort the m mus and the prior mu (ties in observation order, prior last), pad
//     with a and b; sigma = max(gap to left, gap to right); without consider_endpoints the first
//     and last sorted entries use their inner gap only (when m >= 1);
//   multivariate: sigma = 0.2 * max(m, 1)^(-1 / (D + 4)) * (b - a) for every kernel;
//   magic clip: sigma in [(b - a) / min(100, m + 2), b - a].
// Kernels: continuous  p(t) = φ((t - mu)/sigma) / (sigma [Φ((b - mu)/sigma) - Φ((a - mu)/sigma)]),
//          discrete    P(x) = [Φ((x + s/2 - mu)/sigma) - Φ((x - s/2 - mu)/sigma)] / same mass,
//          categorical P_i(j) = (p/K + [j = c_i]) / (1 + C p/K), K = m + 1, p = prior_weight;
//                      the prior is uniform 1/C.
// Sampling picks a component by weight, then draws from it (truncated normal, then snapped to
// the grid for discrete/log-int).
//
// Speed: kernels with equal (mu, sigma) are the same function, so the univariate estimator
// merges them (summing weights). For a parameter with C values at most 3 sigmas occur per
// distinct mu (first / middle / last of a run of equal mus), so a mixture costs O(C) per
// evaluation instead of O(m); observations are bucket-sorted in O(m + C). Categorical mixtures
// collapse to one probability vector.
//
//   ParzenEstimator1D l(Distribution::int_range(0, 4), {1.0, 3.0}, {1.0, 1.0});
//   double lp = l.log_pdf(2.0);          // log P(x = 2) under the mixture
//   double x = l.sample(rng);            // one of 0..4
#pragma once

#include <span>
#include <vector>

#include "core/rng.h"
#include "search/distribution.h"

namespace qsearch::search::tpe {

struct ParzenOptions {
  double prior_weight = 1.0;
  bool consider_magic_clip = true;
  bool consider_endpoints = false;
};

struct Kernel {
  double mu = 0;
  double sigma = 1;
  double weight = 0;  // normalised
};

class ParzenEstimator1D {
 public:
  // observations: internal values the distribution contains; weights: one per observation.
  // `dist` must outlive the estimator.
  ParzenEstimator1D(const Distribution& dist, std::span<const double> observations,
                    std::span<const double> weights, const ParzenOptions& options = {});

  double sample(Rng& rng) const;          // an internal value
  double log_pdf(double internal) const;  // log density (continuous) or log mass

  // Inspection for tests: merged numerical kernels with the prior last (empty for
  // categoricals), the categorical mixture pmf (empty for numerical).
  const std::vector<Kernel>& kernels() const { return kernels_; }
  const std::vector<double>& categorical_pmf() const { return pmf_; }

 private:
  enum class Mode { kCategorical, kDiscrete, kContinuous };
  const Distribution* dist_;
  Mode mode_;
  double a_ = 0, b_ = 0, step_ = 0;  // transformed bounds; step_ only for kDiscrete
  std::vector<Kernel> kernels_;
  std::vector<double> log_weight_, log_norm_, cumulative_;
  std::vector<double> pmf_, cumulative_pmf_;
};

class MultivariateParzenEstimator {
 public:
  // dims: the distributions (none single-valued), each outliving the estimator; observations:
  // row-major m x dims.size(); weights: m.
  MultivariateParzenEstimator(std::vector<const Distribution*> dims,
                              std::span<const double> observations, std::span<const double> weights,
                              const ParzenOptions& options = {});

  void sample(Rng& rng, std::span<double> out) const;
  double log_pdf(std::span<const double> x) const;

 private:
  enum class Mode { kCategorical, kDiscrete, kContinuous };
  struct Dim {
    const Distribution* dist = nullptr;
    Mode mode = Mode::kContinuous;
    double a = 0, b = 0, step = 0;
    double sigma = 1, prior_mu = 0, prior_sigma = 1, prior_log_norm = 0;
    double cat_p = 0, cat_norm = 1;  // categorical: p/K and 1 + C p/K
    std::vector<double> mu;          // per observation (transformed; category for categorical)
    std::vector<double> log_norm;    // per observation (numerical)
    // Finite dims: kernels depend only on the observed value, so log_pdf evaluates each distinct
    // observed value once. slot[i] indexes distinct_mu.
    std::vector<int> slot;
    std::vector<double> distinct_mu, distinct_log_norm;
  };
  double component_log_pdf(const Dim& d, double mu, double sigma, double log_norm, double x) const;
  double draw(const Dim& d, Rng& rng, int k) const;

  int m_ = 0;
  std::vector<Dim> dims_;
  std::vector<double> log_weight_, cumulative_;  // m + 1, prior last
};

}  // namespace qsearch::search::tpe
