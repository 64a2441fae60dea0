#include "search/parzen_estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"
#include "search/normal_math.h"

namespace qsearch::search::tpe {

namespace {

constexpr double kEps = 1e-12;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

using Kind = Distribution::Kind;

bool is_discrete(const Distribution& d) {
  return !d.log && d.kind != Kind::kCategorical && d.cardinality() > 0;
}

// Transformed bounds of a numerical distribution (see the header).
void bounds(const Distribution& d, double* a, double* b, double* step) {
  if (is_discrete(d)) {
    *a = d.low - 0.5 * d.step;
    *b = d.high + 0.5 * d.step;
    *step = d.step;
  } else if (d.kind == Kind::kInt) {  // log int
    *a = std::log(d.low - 0.5 * d.step);
    *b = std::log(d.high + 0.5 * d.step);
    *step = 0;
  } else {
    *a = d.log ? std::log(d.low) : d.low;
    *b = d.log ? std::log(d.high) : d.high;
    *step = 0;
  }
}

double transform(const Distribution& d, double x) { return d.log ? std::log(x) : x; }

// Back from a transformed sample to an internal value of d.
double untransform(const Distribution& d, double t) {
  if (is_discrete(d)) {
    const double k = std::round((t - d.low) / d.step);
    return d.value_at(std::clamp<int64_t>(static_cast<int64_t>(k), 0, d.cardinality() - 1));
  }
  const double x = d.log ? std::exp(t) : t;
  if (d.kind == Kind::kInt) {
    const double k = std::round((x - d.low) / d.step);
    return d.value_at(std::clamp<int64_t>(static_cast<int64_t>(k), 0, d.cardinality() - 1));
  }
  return std::clamp(x, d.low, d.high);
}

// Running log-sum-exp: one exp per term.
class LogSumExp {
 public:
  void add(double t) {
    if (t == kNegInf) return;
    if (t <= max_) {
      sum_ += std::exp(t - max_);
    } else {
      sum_ = sum_ * std::exp(max_ - t) + 1.0;
      max_ = t;
    }
  }
  double value() const { return max_ == kNegInf ? kNegInf : max_ + std::log(sum_); }

 private:
  double max_ = kNegInf;
  double sum_ = 0;
};

double discrete_log_mass(double x, double half_step, double mu, double sigma) {
  return log_gauss_mass((x - half_step - mu) / sigma, (x + half_step - mu) / sigma);
}

double continuous_log_density(double t, double mu, double sigma) {
  const double z = (t - mu) / sigma;
  return -0.5 * z * z - std::log(sigma) - kLogSqrt2Pi;
}

int pick(const std::vector<double>& cumulative, Rng& rng) {
  const double u = rng.uniform() * cumulative.back();
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return static_cast<int>(
      std::min<ptrdiff_t>(it - cumulative.begin(), static_cast<ptrdiff_t>(cumulative.size()) - 1));
}

// Mixture weights: observation weights then the prior, normalised (prior alone when m = 0).
std::vector<double> mixture_weights(std::span<const double> weights, double prior_weight) {
  std::vector<double> w(weights.begin(), weights.end());
  w.push_back(weights.empty() ? 1.0 : prior_weight);
  double total = 0;
  for (double x : w) total += x;
  QSEARCH_CHECK(total > 0);
  for (double& x : w) x /= total;
  return w;
}

}  // namespace

ParzenEstimator1D::ParzenEstimator1D(const Distribution& dist, std::span<const double> obs,
                                     std::span<const double> weights, const ParzenOptions& options)
    : dist_(&dist) {
  QSEARCH_CHECK(obs.size() == weights.size());
  const int m = static_cast<int>(obs.size());
  const std::vector<double> w = mixture_weights(weights, options.prior_weight);

  if (dist.kind == Kind::kCategorical) {
    mode_ = Mode::kCategorical;
    const int c = static_cast<int>(dist.choices.size());
    pmf_.assign(c, 0.0);
    if (m == 0) {
      std::fill(pmf_.begin(), pmf_.end(), 1.0 / c);
    } else {
      const double p_over_k = options.prior_weight / (m + 1);
      const double row_norm = 1.0 + c * p_over_k;
      double w_obs = 0;
      for (int i = 0; i < m; ++i) {
        pmf_[static_cast<int>(obs[i])] += w[i] / row_norm;
        w_obs += w[i];
      }
      for (double& p : pmf_) p += w_obs * p_over_k / row_norm + w[m] / c;
    }
    cumulative_pmf_.resize(c);
    std::partial_sum(pmf_.begin(), pmf_.end(), cumulative_pmf_.begin());
    return;
  }

  mode_ = is_discrete(dist) ? Mode::kDiscrete : Mode::kContinuous;
  bounds(dist, &a_, &b_, &step_);
  const double range = b_ - a_;
  const double prior_mu = 0.5 * (a_ + b_);

  // The observations and the prior sorted by (mu, index), as entries (mu, weight). For a finite
  // distribution with few values the sorted list is built run by run: within a run of c equal
  // mus every entry has a zero gap on its inner side(s), so only the run's first and last entries
  // can differ from the c - 2 middle ones, and one entry per class (weights summed) gives the
  // same sigmas. That is O(m + C) with no sort.
  struct Entry {
    double mu;
    double weight;
    bool prior;
  };
  std::vector<Entry> entries;
  const int64_t card = dist.cardinality();
  if (card > 0 && card <= 4 * static_cast<int64_t>(m) + 64) {
    struct Run {
      int count = 0;
      double first = 0, last = 0, total = 0;
    };
    std::vector<Run> runs(card);
    const double low = dist.low, step = dist.kind == Kind::kCategorical ? 1.0 : dist.step;
    for (int i = 0; i < m; ++i) {
      const auto k = std::clamp<int64_t>(
          static_cast<int64_t>(std::floor((obs[i] - low) / step + 0.5)), 0, card - 1);
      Run& r = runs[k];
      if (r.count++ == 0) r.first = w[i];
      r.last = w[i];
      r.total += w[i];
    }
    entries.reserve(3 * std::min<int64_t>(card, m) + 1);
    for (int64_t k = 0; k < card; ++k) {
      const Run& r = runs[k];
      if (r.count == 0) continue;
      const double mu = transform(dist, dist.value_at(k));
      entries.push_back({mu, r.first, false});
      if (r.count >= 3) entries.push_back({mu, r.total - r.first - r.last, false});
      if (r.count >= 2) entries.push_back({mu, r.last, false});
    }
  } else {
    std::vector<double> mu(m);
    for (int i = 0; i < m; ++i) {
      mu[i] = card > 0 ? transform(dist, dist.value_at(dist.index_of(obs[i])))
                       : transform(dist, obs[i]);
    }
    std::vector<int> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return mu[x] < mu[y]; });
    entries.reserve(m + 1);
    for (int i : order) entries.push_back({mu[i], w[i], false});
  }
  // The prior joins after every observation with mu <= prior_mu (its index m sorts last).
  const auto prior_at = std::upper_bound(entries.begin(), entries.end(), prior_mu,
                                         [](double v, const Entry& e) { return v < e.mu; });
  entries.insert(prior_at, Entry{prior_mu, w[m], true});
  const int n_sorted = static_cast<int>(entries.size());

  const double min_sigma = options.consider_magic_clip ? range / std::min(100.0, 2.0 + m) : kEps;
  const double max_sigma = range;
  auto sigma_at = [&](int k) {
    double s;
    const double mu_k = entries[k].mu;
    if (!options.consider_endpoints && n_sorted >= 2 && (k == 0 || k == n_sorted - 1)) {
      s = k == 0 ? entries[1].mu - mu_k : mu_k - entries[k - 1].mu;
    } else {
      const double left = k == 0 ? a_ : entries[k - 1].mu;
      const double right = k == n_sorted - 1 ? b_ : entries[k + 1].mu;
      s = std::max(mu_k - left, right - mu_k);
    }
    return std::clamp(s, min_sigma, max_sigma);
  };

  for (int k = 0; k < n_sorted; ++k) {
    const Entry& e = entries[k];
    if (e.prior) continue;
    const double s = sigma_at(k);
    if (!kernels_.empty() && kernels_.back().mu == e.mu && kernels_.back().sigma == s) {
      kernels_.back().weight += e.weight;
    } else {
      kernels_.push_back({e.mu, s, e.weight});
    }
  }
  kernels_.push_back({prior_mu, range, w[m]});

  for (const Kernel& k : kernels_) {
    log_weight_.push_back(std::log(k.weight));
    log_norm_.push_back(log_gauss_mass((a_ - k.mu) / k.sigma, (b_ - k.mu) / k.sigma));
    cumulative_.push_back((cumulative_.empty() ? 0.0 : cumulative_.back()) + k.weight);
  }
}

double ParzenEstimator1D::sample(Rng& rng) const {
  if (mode_ == Mode::kCategorical) {
    const double u = rng.uniform() * cumulative_pmf_.back();
    const auto it = std::upper_bound(cumulative_pmf_.begin(), cumulative_pmf_.end(), u);
    return static_cast<double>(std::min<ptrdiff_t>(
        it - cumulative_pmf_.begin(), static_cast<ptrdiff_t>(cumulative_pmf_.size()) - 1));
  }
  const Kernel& k = kernels_[pick(cumulative_, rng)];
  const double z = sample_truncnorm(rng, (a_ - k.mu) / k.sigma, (b_ - k.mu) / k.sigma);
  return untransform(*dist_, k.mu + k.sigma * z);
}

double ParzenEstimator1D::log_pdf(double x) const {
  if (mode_ == Mode::kCategorical) return std::log(pmf_[static_cast<size_t>(x)]);
  LogSumExp acc;
  if (mode_ == Mode::kDiscrete) {
    const double half = 0.5 * step_;
    for (size_t k = 0; k < kernels_.size(); ++k) {
      acc.add(log_weight_[k] + discrete_log_mass(x, half, kernels_[k].mu, kernels_[k].sigma) -
              log_norm_[k]);
    }
  } else {
    const double t = transform(*dist_, x);
    for (size_t k = 0; k < kernels_.size(); ++k) {
      acc.add(log_weight_[k] + continuous_log_density(t, kernels_[k].mu, kernels_[k].sigma) -
              log_norm_[k]);
    }
  }
  return acc.value();
}

MultivariateParzenEstimator::MultivariateParzenEstimator(std::vector<const Distribution*> dists,
                                                         std::span<const double> obs,
                                                         std::span<const double> weights,
                                                         const ParzenOptions& options) {
  const int n_dims = static_cast<int>(dists.size());
  m_ = static_cast<int>(weights.size());
  QSEARCH_CHECK(obs.size() == static_cast<size_t>(m_) * n_dims);
  const std::vector<double> w = mixture_weights(weights, options.prior_weight);
  for (double x : w) log_weight_.push_back(std::log(x));
  cumulative_.resize(w.size());
  std::partial_sum(w.begin(), w.end(), cumulative_.begin());

  dims_.resize(n_dims);
  for (int d = 0; d < n_dims; ++d) {
    Dim& dim = dims_[d];
    const Distribution& dist = *dists[d];
    dim.dist = &dist;
    const int64_t card = dist.cardinality();
    dim.mu.resize(m_);
    for (int i = 0; i < m_; ++i) {
      const double x = obs[static_cast<size_t>(i) * n_dims + d];
      dim.mu[i] = dist.kind == Kind::kCategorical ? x
                  : card > 0                      ? transform(dist, dist.value_at(dist.index_of(x)))
                                                  : transform(dist, x);
    }
    if (dist.kind == Kind::kCategorical) {
      dim.mode = Mode::kCategorical;
      const int c = static_cast<int>(dist.choices.size());
      dim.cat_p = options.prior_weight / (m_ + 1);
      dim.cat_norm = 1.0 + c * dim.cat_p;
    } else {
      dim.mode = is_discrete(dist) ? Mode::kDiscrete : Mode::kContinuous;
      bounds(dist, &dim.a, &dim.b, &dim.step);
      const double range = dim.b - dim.a;
      const double min_sigma =
          options.consider_magic_clip ? range / std::min(100.0, 2.0 + m_) : kEps;
      dim.sigma = std::clamp(0.2 * std::pow(std::max(m_, 1), -1.0 / (n_dims + 4)) * range,
                             min_sigma, range);
      dim.prior_mu = 0.5 * (dim.a + dim.b);
      dim.prior_sigma = range;
      dim.prior_log_norm = log_gauss_mass(-0.5, 0.5);  // (a - mid)/range, (b - mid)/range
      dim.log_norm.resize(m_);
      for (int i = 0; i < m_; ++i) {
        dim.log_norm[i] =
            log_gauss_mass((dim.a - dim.mu[i]) / dim.sigma, (dim.b - dim.mu[i]) / dim.sigma);
      }
    }
    if (card > 0) {
      dim.distinct_mu = dim.mu;
      std::sort(dim.distinct_mu.begin(), dim.distinct_mu.end());
      dim.distinct_mu.erase(std::unique(dim.distinct_mu.begin(), dim.distinct_mu.end()),
                            dim.distinct_mu.end());
      dim.slot.resize(m_);
      for (int i = 0; i < m_; ++i) {
        dim.slot[i] = static_cast<int>(
            std::lower_bound(dim.distinct_mu.begin(), dim.distinct_mu.end(), dim.mu[i]) -
            dim.distinct_mu.begin());
      }
      if (dim.mode != Mode::kCategorical) {
        for (double mu : dim.distinct_mu) {
          dim.distinct_log_norm.push_back(
              log_gauss_mass((dim.a - mu) / dim.sigma, (dim.b - mu) / dim.sigma));
        }
      }
    }
  }
}

double MultivariateParzenEstimator::component_log_pdf(const Dim& d, double mu, double sigma,
                                                      double log_norm, double x) const {
  if (d.mode == Mode::kDiscrete) return discrete_log_mass(x, 0.5 * d.step, mu, sigma) - log_norm;
  return continuous_log_density(transform(*d.dist, x), mu, sigma) - log_norm;
}

double MultivariateParzenEstimator::log_pdf(std::span<const double> x) const {
  std::vector<double> acc(log_weight_);
  std::vector<double> table;
  for (size_t d = 0; d < dims_.size(); ++d) {
    const Dim& dim = dims_[d];
    const double xd = x[d];
    if (dim.mode == Mode::kCategorical) {
      const double hit = std::log((dim.cat_p + 1) / dim.cat_norm);
      const double miss = std::log(dim.cat_p / dim.cat_norm);
      for (int i = 0; i < m_; ++i) acc[i] += dim.mu[i] == xd ? hit : miss;
      acc[m_] += -std::log(static_cast<double>(dim.dist->choices.size()));
      continue;
    }
    if (!dim.slot.empty()) {
      // All observation kernels of this dim share sigma, so each distinct mu is evaluated once.
      table.resize(dim.distinct_mu.size());
      for (size_t s = 0; s < table.size(); ++s) {
        table[s] =
            component_log_pdf(dim, dim.distinct_mu[s], dim.sigma, dim.distinct_log_norm[s], xd);
      }
      for (int i = 0; i < m_; ++i) acc[i] += table[dim.slot[i]];
    } else {
      for (int i = 0; i < m_; ++i) {
        acc[i] += component_log_pdf(dim, dim.mu[i], dim.sigma, dim.log_norm[i], xd);
      }
    }
    acc[m_] += component_log_pdf(dim, dim.prior_mu, dim.prior_sigma, dim.prior_log_norm, xd);
  }
  LogSumExp total;
  for (double v : acc) total.add(v);
  return total.value();
}

double MultivariateParzenEstimator::draw(const Dim& d, Rng& rng, int k) const {
  if (d.mode == Mode::kCategorical) {
    const auto c = static_cast<int64_t>(d.dist->choices.size());
    if (k == m_) return static_cast<double>(rng.uniform_int(static_cast<uint64_t>(c)));
    const double u = rng.uniform() * d.cat_norm;
    if (u < 1.0) return d.mu[k];
    return static_cast<double>(std::min<int64_t>(static_cast<int64_t>((u - 1.0) / d.cat_p), c - 1));
  }
  const double mu = k == m_ ? d.prior_mu : d.mu[k];
  const double sigma = k == m_ ? d.prior_sigma : d.sigma;
  const double z = sample_truncnorm(rng, (d.a - mu) / sigma, (d.b - mu) / sigma);
  return untransform(*d.dist, mu + sigma * z);
}

void MultivariateParzenEstimator::sample(Rng& rng, std::span<double> out) const {
  const int k = pick(cumulative_, rng);
  for (size_t d = 0; d < dims_.size(); ++d) out[d] = draw(dims_[d], rng, k);
}

}  // namespace qsearch::search::tpe
