#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>
#include <string>

#include "search/memory_storage.h"
#include "search/multi_objective.h"
#include "search/parzen_estimator.h"
#include "search/samplers.h"
#include "search/study.h"
#include "search/test_util.h"
#include "search/tpe_sampler.h"

namespace qsearch::search {
namespace {

using tpe::Kernel;
using tpe::ParzenEstimator1D;

double Phi(double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); }

// Discrete truncated-normal mass of integer x on [lo, hi] (step 1), written out.
double int_kernel(double x, double mu, double sigma, double lo, double hi) {
  return (Phi((x + 0.5 - mu) / sigma) - Phi((x - 0.5 - mu) / sigma)) /
         (Phi((hi + 0.5 - mu) / sigma) - Phi((lo - 0.5 - mu) / sigma));
}

TEST(Tpe, GammaAndDefaultWeights) {
  EXPECT_EQ(tpe::gamma(0), 0);
  EXPECT_EQ(tpe::gamma(1), 1);
  EXPECT_EQ(tpe::gamma(10), 1);
  EXPECT_EQ(tpe::gamma(11), 2);
  EXPECT_EQ(tpe::gamma(30), 3);
  EXPECT_EQ(tpe::gamma(31), 4);
  EXPECT_EQ(tpe::gamma(1000), 25);
  EXPECT_TRUE(tpe::default_weights(0).empty());
  EXPECT_EQ(tpe::default_weights(3), std::vector<double>(3, 1.0));
  const auto w = tpe::default_weights(30);  // linspace(1/30, 1, 5) then 25 ones
  ASSERT_EQ(w.size(), 30u);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(w[i], 1.0 / 30 + (1 - 1.0 / 30) * i / 4, 1e-15);
  for (int i = 5; i < 30; ++i) EXPECT_EQ(w[i], 1.0);
}

TEST(Tpe, UnivariateIntMixtureWrittenOut) {
  // int [0, 4], observations {1, 3}: prior mu 2 sits between them; padded bounds [-0.5, 4.5].
  // Sorted (1, 2*, 3): endpoint rule -> sigma(1) = 2 - 1 = 1, sigma(3) = 3 - 2 = 1, then the magic
  // clip raises both to 5 / min(100, 2 + 2) = 1.25. Prior sigma 5. Weights 1/3 each.
  const Distribution d = Distribution::int_range(0, 4);
  const std::vector<double> obs{3, 1}, w{1, 1};
  const ParzenEstimator1D pe(d, obs, w);
  ASSERT_EQ(pe.kernels().size(), 3u);
  EXPECT_EQ(pe.kernels()[0].mu, 1);
  EXPECT_EQ(pe.kernels()[0].sigma, 1.25);
  EXPECT_EQ(pe.kernels()[1].mu, 3);
  EXPECT_EQ(pe.kernels()[1].sigma, 1.25);
  EXPECT_EQ(pe.kernels()[2].mu, 2);
  EXPECT_EQ(pe.kernels()[2].sigma, 5);
  double total = 0;
  for (int x = 0; x <= 4; ++x) {
    const double p =
        (int_kernel(x, 1, 1.25, 0, 4) + int_kernel(x, 3, 1.25, 0, 4) + int_kernel(x, 2, 5, 0, 4)) /
        3;
    EXPECT_NEAR(pe.log_pdf(x), std::log(p), 1e-13) << x;
    total += std::exp(pe.log_pdf(x));
  }
  EXPECT_NEAR(total, 1.0, 1e-13);
}

TEST(Tpe, DuplicatesAreMergedWithoutChangingTheMixture) {
  // int [0, 9], observations {2, 2, 2, 7} (weights 1, 2, 3, 4), prior mu 4.5, bounds [-.5, 9.5].
  // Sorted (2, 2, 2, 4.5*, 7): raw sigmas 0 (endpoint: inner gap), 0, 2.5, -, 2.5 (endpoint);
  // clip to [10 / 6, 10]: 10/6, 10/6, 2.5, 2.5. Mixture weights w / (1 + 2 + 3 + 4 + 1).
  const Distribution d = Distribution::int_range(0, 9);
  const std::vector<double> obs{2, 2, 2, 7}, w{1, 2, 3, 4};
  const ParzenEstimator1D pe(d, obs, w);
  const double lo = 10.0 / 6;
  ASSERT_EQ(pe.kernels().size(), 4u);  // (2, lo) merged from two observations
  EXPECT_EQ(pe.kernels()[0].mu, 2);
  EXPECT_DOUBLE_EQ(pe.kernels()[0].sigma, lo);
  EXPECT_DOUBLE_EQ(pe.kernels()[0].weight, 3.0 / 11);
  EXPECT_EQ(pe.kernels()[1].sigma, 2.5);
  EXPECT_DOUBLE_EQ(pe.kernels()[1].weight, 3.0 / 11);
  for (int x = 0; x <= 9; ++x) {
    const double p = (1 * int_kernel(x, 2, lo, 0, 9) + 2 * int_kernel(x, 2, lo, 0, 9) +
                      3 * int_kernel(x, 2, 2.5, 0, 9) + 4 * int_kernel(x, 7, 2.5, 0, 9) +
                      1 * int_kernel(x, 4.5, 10, 0, 9)) /
                     11;
    EXPECT_NEAR(pe.log_pdf(x), std::log(p), 1e-13) << x;
  }
}

// Optuna's univariate estimator for an int [0, hi] taken literally: one kernel per observation,
// sigmas from a sort of (mu, index) with the prior appended, no merging.
double literal_log_pdf(int hi, const std::vector<double>& obs, const std::vector<double>& w,
                       double x) {
  const int m = static_cast<int>(obs.size());
  const double a = -0.5, b = hi + 0.5, prior = 0.5 * (a + b);
  std::vector<std::pair<double, int>> sorted;
  for (int i = 0; i < m; ++i) sorted.push_back({obs[i], i});
  sorted.push_back({prior, m});
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> sigma(m + 1);
  const int k_last = m;
  for (int k = 0; k <= k_last; ++k) {
    const double left = k == 0 ? a : sorted[k - 1].first;
    const double right = k == k_last ? b : sorted[k + 1].first;
    double s = std::max(sorted[k].first - left, right - sorted[k].first);
    if (m >= 1 && k == 0) s = sorted[1].first - sorted[0].first;
    if (m >= 1 && k == k_last) s = sorted[k].first - sorted[k - 1].first;
    sigma[sorted[k].second] = std::clamp(s, (b - a) / std::min(100.0, m + 2.0), b - a);
  }
  sigma[m] = b - a;
  double total = 1, p = int_kernel(x, prior, b - a, 0, hi);
  for (int i = 0; i < m; ++i) {
    p += w[i] * int_kernel(x, obs[i], sigma[i], 0, hi);
    total += w[i];
  }
  return std::log(p / total);
}

TEST(Tpe, MergedEstimatorEqualsTheLiteralOneOnRandomData) {
  Rng rng(21);
  for (int trial = 0; trial < 200; ++trial) {
    // Few values (bucket-sort path) and many values (comparison-sort path).
    const int hi = trial % 2 ? 3 + static_cast<int>(rng.uniform_int(5))
                             : 500 + static_cast<int>(rng.uniform_int(500));
    const int m = static_cast<int>(rng.uniform_int(40));
    std::vector<double> obs, w;
    for (int i = 0; i < m; ++i) {
      obs.push_back(static_cast<double>(rng.uniform_int(std::min(hi, 12) + 1)));
      w.push_back(rng.uniform(0.05, 1));
    }
    const Distribution d = Distribution::int_range(0, hi);
    const ParzenEstimator1D pe(d, obs, w);
    for (int x = 0; x <= std::min(hi, 14); ++x) {
      ASSERT_NEAR(pe.log_pdf(x), literal_log_pdf(hi, obs, w, x), 1e-11)
          << "hi " << hi << " m " << m << " x " << x;
    }
  }
}

TEST(Tpe, CategoricalMixtureWrittenOut) {
  const Distribution d = Distribution::categorical({"a", "b", "c"});
  const std::vector<double> obs{0, 0, 2}, w{1, 1, 1};
  const ParzenEstimator1D pe(d, obs, w);
  // K = 4 kernels, p/K = 1/4, rows (1/4 + [j = c]) / (1 + 3/4), prior uniform; weights 1/4.
  for (int j = 0; j < 3; ++j) {
    double p = 0.25 / 3;
    for (double c : obs) p += 0.25 * (0.25 + (j == c)) / 1.75;
    EXPECT_NEAR(pe.log_pdf(j), std::log(p), 1e-14) << j;
  }
}

TEST(Tpe, ContinuousAndLogMixturesWrittenOut) {
  auto tn = [](double t, double mu, double s, double a, double b) {
    return std::exp(-0.5 * (t - mu) * (t - mu) / (s * s)) / (s * std::sqrt(2 * M_PI)) /
           (Phi((b - mu) / s) - Phi((a - mu) / s));
  };
  // float [0, 1], obs {0.2, 0.6}: sorted (0.2, 0.5*, 0.6): sigmas 0.3 and 0.1 -> clip 0.25.
  const Distribution f = Distribution::float_range(0, 1);
  const std::vector<double> obs{0.2, 0.6}, w{1, 1};
  const ParzenEstimator1D pe(f, obs, w);
  for (double x : {0.0, 0.1, 0.55, 0.99}) {
    const double p = (tn(x, 0.2, 0.3, 0, 1) + tn(x, 0.6, 0.25, 0, 1) + tn(x, 0.5, 1, 0, 1)) / 3;
    EXPECT_NEAR(pe.log_pdf(x), std::log(p), 1e-13) << x;
  }
  // log float [1e-3, 1]: the same in t = log x (density w.r.t. t).
  const Distribution lf = Distribution::float_range(1e-3, 1, true);
  const double a = std::log(1e-3), b = 0;
  const std::vector<double> lobs{0.01};
  const std::vector<double> lw{1};
  const ParzenEstimator1D lpe(lf, lobs, lw);
  // sorted (log 0.01, prior a/2): sigma(first) = inner gap, clipped to >= (b - a) / 3.
  const double mu = std::log(0.01), prior = 0.5 * (a + b);
  const double s = std::clamp(prior - mu, (b - a) / 3, b - a);
  for (double x : {0.002, 0.05, 0.7}) {
    const double t = std::log(x);
    const double p = (tn(t, mu, s, a, b) + tn(t, prior, b - a, a, b)) / 2;
    EXPECT_NEAR(lpe.log_pdf(x), std::log(p), 1e-12) << x;
  }
}

TEST(Tpe, MultivariateMixtureWrittenOut) {
  // Dims int [0, 4] and categorical {a, b, c}; observations (1, a) and (3, c), weights 1 and 1.
  // Scott-like sigma 0.2 * 2^(-1/6) * 5 = 0.89 is raised by the magic clip to 5 / 4 = 1.25.
  // Categorical rows (1/3 + [j = c]) / 2 (K = 3 kernels, p/K = 1/3); the prior is a product of
  // the int prior (mu 2, sigma 5) and the uniform 1/3.
  const Distribution i = Distribution::int_range(0, 4);
  const Distribution c = Distribution::categorical({"a", "b", "c"});
  const std::vector<double> obs{1, 0, 3, 2}, w{1, 1};
  const tpe::MultivariateParzenEstimator pe({&i, &c}, obs, w);
  double total = 0;
  for (int x0 = 0; x0 <= 4; ++x0) {
    for (int x1 = 0; x1 < 3; ++x1) {
      const double p = (int_kernel(x0, 1, 1.25, 0, 4) * (1.0 / 3 + (x1 == 0)) / 2 +
                        int_kernel(x0, 3, 1.25, 0, 4) * (1.0 / 3 + (x1 == 2)) / 2 +
                        int_kernel(x0, 2, 5, 0, 4) / 3) /
                       3;
      const std::vector<double> x{double(x0), double(x1)};
      EXPECT_NEAR(pe.log_pdf(x), std::log(p), 1e-13) << x0 << " " << x1;
      total += std::exp(pe.log_pdf(x));
    }
  }
  EXPECT_NEAR(total, 1.0, 1e-13);
  // Joint samples follow the joint mixture (components are shared across dimensions).
  Rng rng(4);
  std::vector<int> count(15, 0);
  std::vector<double> x(2);
  constexpr int kN = 60000;
  for (int k = 0; k < kN; ++k) {
    pe.sample(rng, x);
    ++count[static_cast<int>(x[0]) * 3 + static_cast<int>(x[1])];
  }
  for (int k = 0; k < 15; ++k) {
    const std::vector<double> xv{double(k / 3), double(k % 3)};
    const double p = std::exp(pe.log_pdf(xv));
    EXPECT_NEAR(count[k] / double(kN), p, 5 * std::sqrt(p * (1 - p) / kN) + 1e-4) << k;
  }
}

TEST(Tpe, SamplesFollowTheMixture) {
  const Distribution d = Distribution::int_range(0, 4);
  const std::vector<double> obs{3, 1}, w{1, 1};
  const ParzenEstimator1D pe(d, obs, w);
  Rng rng(9);
  std::vector<int> count(5, 0);
  constexpr int kN = 50000;
  for (int i = 0; i < kN; ++i) ++count[static_cast<int>(pe.sample(rng))];
  for (int x = 0; x <= 4; ++x) {
    const double p = std::exp(pe.log_pdf(x));
    EXPECT_NEAR(count[x] / double(kN), p, 5 * std::sqrt(p * (1 - p) / kN)) << x;
  }
}

FrozenTrial done(int number, std::vector<double> values, std::vector<double> params = {0}) {
  FrozenTrial t;
  t.number = number;
  t.id = number;
  t.state = TrialState::kComplete;
  t.values = std::move(values);
  t.params = std::move(params);
  return t;
}

TEST(Tpe, SingleObjectiveSplit) {
  std::vector<FrozenTrial> h;
  const double v[] = {5, 1, 3, 1, 9, 2, 8, 7, 6, 4, 0.5};
  for (int i = 0; i < 11; ++i) h.push_back(done(i, {v[i]}));
  h[4].state = TrialState::kFail;  // FAIL: ignored
  h[4].values.clear();
  FrozenTrial running;
  running.number = 11;
  running.params = {0};
  h.push_back(running);
  // 10 COMPLETE -> gamma = 1: the best (0.5, trial 10).
  auto s = tpe::split(h, {Direction::kMinimize}, false);
  EXPECT_EQ(s.below, std::vector<int>{10});
  EXPECT_EQ(s.above, (std::vector<int>{0, 1, 2, 3, 5, 6, 7, 8, 9}));
  // Maximise, with constant liar: the running trial joins above.
  s = tpe::split(h, {Direction::kMaximize}, true);
  EXPECT_EQ(s.below, std::vector<int>{6});
  EXPECT_EQ(s.above, (std::vector<int>{0, 1, 2, 3, 5, 7, 8, 9, 10, 11}));
  // Ties keep trial order (stable sort): 12 complete -> gamma 2: values 1 at trials 1 and 3.
  h[4] = done(4, {1});
  h[10] = done(10, {1});
  s = tpe::split(h, {Direction::kMinimize}, false);
  EXPECT_EQ(s.below, (std::vector<int>{1, 3}));
}

TEST(Tpe, MultiObjectiveSplitUsesRanksThenHssp) {
  // 11 COMPLETE -> gamma 2. Rank 0 = {(0,4), (1,1), (4,0)} overflows; reference point from that
  // rank = (4.4, 4.4); greedy HSSP takes (1,1) (box 11.56), then (0,4) and (4,0) tie at 0.4 and
  // the lexicographically smaller (0,4) wins.
  std::vector<FrozenTrial> h;
  const std::vector<std::vector<double>> v = {{5, 5}, {0, 4}, {6, 6}, {1, 1}, {7, 5}, {4, 0},
                                              {5, 7}, {8, 8}, {6, 5}, {5, 6}, {9, 9}};
  for (int i = 0; i < 11; ++i) h.push_back(done(i, {v[i][0], -v[i][1]}));
  const std::vector<Direction> dirs{Direction::kMinimize, Direction::kMaximize};
  const auto s = tpe::split(h, dirs, false);
  EXPECT_EQ(s.below, (std::vector<int>{1, 3}));
  // Below weights: reference (1.1, 4.4) from their worst loss; HV = 0.74; leave-one-out
  // contributions 0.40 for (0,4) and 0.30 for (1,1) -> weights 1 and 0.75.
  const auto w = tpe::below_weights(h, s.below, dirs);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 1.0, 1e-12);
  EXPECT_NEAR(w[1], 0.75, 1e-12);
  // A dominated below trial gets 1e-12.
  const auto w3 = tpe::below_weights(h, {1, 3, 0}, dirs);
  EXPECT_EQ(w3[2], 1e-12);
}

SearchSpace index_space(int n, int choices) {
  SearchSpace space;
  for (int i = 0; i < n; ++i) {
    std::string name = "p";
    name += std::to_string(i);  // (not "p" + ...: g++ 12 -O3 warns falsely, -Wrestrict)
    space.push_back({name, Distribution::int_range(0, choices - 1)});
  }
  return space;
}

TEST(Tpe, StartupTrialsAreTheRandomSamplersDraws) {
  const SearchSpace space = index_space(6, 4);
  const std::vector<Direction> dirs{Direction::kMinimize};
  std::vector<FrozenTrial> h;
  TpeSampler tpe({.seed = 5});
  RandomSampler random(5);
  for (int t = 0; t < 10; ++t) {
    const StudyView view{space, dirs, h};
    EXPECT_EQ(tpe.sample(view, t), random.sample(view, t));
    h.push_back(done(t, {1.0 * t}, *random.sample(view, t)));
  }
  const StudyView view{space, dirs, h};
  EXPECT_NE(tpe.sample(view, 10), random.sample(view, 10));
}

// Separable part plus interactions between neighbouring parameters; minimum 0 at x = target.
double synthetic(const std::vector<double>& x) {
  double f = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double target = static_cast<double>(i % 3);
    f += (x[i] - target) * (x[i] - target);
    if (i + 1 < x.size() && i % 2 == 0) f += std::fabs(x[i] - x[i + 1]) == 1 ? 0 : 1.5;
  }
  return f;
}

double best_after(const std::string& sampler, uint64_t seed, int n_trials) {
  auto storage = std::make_shared<InMemoryStorage>();
  Study study = Study::create(storage, "s", {Direction::kMinimize}, index_space(18, 3),
                              make_sampler(sampler, {.seed = seed}));
  study.optimize(
      [](const FrozenTrial& t) {
        return ObjectiveResult{{synthetic(t.params)}, {}};
      },
      {.n_trials = n_trials});
  return study.best_trials().front().values[0];
}

// Issue 5 "Done when": TPE beats random on average over many seeds on a fixed synthetic
// discrete objective (18 index params in {0, 1, 2}, 60 trials, 30 seeds). The margin: the mean
// paired improvement must exceed 3 standard errors.
TEST(Tpe, BeatsRandomOnASyntheticDiscreteObjective) {
  constexpr int kSeeds = 30;
  double sum = 0, sum2 = 0, mean_tpe = 0, mean_random = 0;
  for (int s = 0; s < kSeeds; ++s) {
    const double r = best_after("random", s, 60), t = best_after("tpe", s, 60);
    mean_tpe += t / kSeeds;
    mean_random += r / kSeeds;
    sum += r - t;
    sum2 += (r - t) * (r - t);
  }
  const double mean = sum / kSeeds;
  const double se = std::sqrt((sum2 / kSeeds - mean * mean) / (kSeeds - 1));
  RecordProperty("mean_best_tpe", std::to_string(mean_tpe));
  RecordProperty("mean_best_random", std::to_string(mean_random));
  std::printf("mean best after 60 trials: tpe %.3f random %.3f (improvement %.3f, se %.3f)\n",
              mean_tpe, mean_random, mean, se);
  EXPECT_GT(mean, 3 * se);
}

double hv_after(const std::string& sampler, uint64_t seed, int n_trials) {
  auto storage = std::make_shared<InMemoryStorage>();
  const std::vector<Direction> dirs{Direction::kMinimize, Direction::kMaximize};
  Study study =
      Study::create(storage, "s", dirs, index_space(10, 4), make_sampler(sampler, {.seed = seed}));
  // A trade-off: "bitwidth" (sum of indices) against "accuracy" (saturating in the indices with
  // per-parameter sensitivity, and a penalty when neighbours differ a lot).
  study.optimize(
      [](const FrozenTrial& t) {
        double cost = 0, acc = 0;
        for (size_t i = 0; i < t.params.size(); ++i) {
          cost += t.params[i];
          acc += (1.0 + i % 4) * (1 - std::exp(-t.params[i]));
          if (i > 0) acc -= 0.3 * std::fabs(t.params[i] - t.params[i - 1]);
        }
        return ObjectiveResult{{cost, acc}, {}};
      },
      {.n_trials = n_trials});
  Points loss(2);
  for (const FrozenTrial& t : study.best_trials()) loss.push_back(to_loss(t.values, dirs));
  return hypervolume(loss, std::vector<double>{30, 0});
}

TEST(Tpe, MotpeReachesMoreHypervolumeThanRandom) {
  constexpr int kSeeds = 20;
  double sum = 0, sum2 = 0;
  for (int s = 0; s < kSeeds; ++s) {
    const double d = hv_after("tpe", s, 80) - hv_after("random", s, 80);
    sum += d;
    sum2 += d * d;
  }
  const double mean = sum / kSeeds;
  const double se = std::sqrt((sum2 / kSeeds - mean * mean) / (kSeeds - 1));
  std::printf("MOTPE - random hypervolume after 80 trials: %.3f (se %.3f)\n", mean, se);
  EXPECT_GT(mean, 3 * se);
}

// A frozen model (issue 9: TPE seed 2 cycled from trial ~240): 4 ints 0..9, loss = L1 distance
// from (2, 2, 2, 2). Every configuration within distance 2 of the optimum has been evaluated
// (the best 9 first), then five configurations at distance 3 were evaluated over and over, so no
// trial has entered "below" for 90 trials and TPE's best-EI proposal is taken.
struct FrozenHistory {
  SearchSpace space;
  std::vector<FrozenTrial> history;
};

FrozenHistory frozen_history() {
  FrozenHistory f;
  for (int i = 0; i < 4; ++i)
    f.space.push_back({testing::param_name("p", i), Distribution::int_range(0, 9)});
  std::vector<std::vector<double>> by_distance[3];
  for (int code = 0; code < 10000; ++code) {
    std::vector<double> p(4);
    int d = 0;
    for (int i = 0, c = code; i < 4; ++i, c /= 10) {
      p[i] = c % 10;
      d += std::abs(c % 10 - 2);
    }
    if (d <= 2) by_distance[d].push_back(p);
  }
  auto add = [&](const std::vector<double>& p) {
    FrozenTrial t;
    t.id = t.number = static_cast<int>(f.history.size());
    t.state = TrialState::kComplete;
    t.params = p;
    double d = 0;
    for (double x : p) d += std::fabs(x - 2);
    t.values = {d};
    f.history.push_back(t);
  };
  for (int d = 0; d <= 2; ++d) {
    for (const auto& p : by_distance[d]) add(p);
  }
  const std::vector<std::vector<double>> cycle = {
      {5, 2, 2, 2}, {2, 5, 2, 2}, {2, 2, 5, 2}, {2, 2, 2, 5}, {3, 3, 3, 2}};
  for (int round = 0; round < 12; ++round) {
    for (const auto& p : cycle) add(p);
  }
  return f;
}

TEST(TpeStall, StallAgeCountsTrialsSinceTheNewestBelowTrial) {
  FrozenHistory f = frozen_history();
  const std::vector<Direction> dirs{Direction::kMinimize};
  const int n = static_cast<int>(f.history.size());  // 9 + 32 + 60 = 101
  ASSERT_EQ(n, 101);
  tpe::Split s = tpe::split(f.history, dirs, false);
  ASSERT_EQ(s.below.size(), 11u);  // gamma(101)
  EXPECT_EQ(tpe::stall_age(f.history, s, 1), n - 11);
  // A new best trial enters below: the model is no longer frozen.
  f.history.push_back(f.history[0]);
  f.history.back().number = n;
  f.history.back().values = {-1};
  s = tpe::split(f.history, dirs, false);
  EXPECT_EQ(tpe::stall_age(f.history, s, 1), 0);
  // RUNNING and FAIL trials do not age the model.
  f.history.push_back(f.history[1]);
  f.history.back().state = TrialState::kRunning;
  EXPECT_EQ(tpe::stall_age(f.history, tpe::split(f.history, dirs, false), 1), 0);
}

// The cycle of issue 9: the 41 configurations within distance 2 of the optimum, then 150 trials
// of a TPE that does not know what is taken (as before item 1: a blind StudyView), each
// evaluated. It re-proposes configurations it has evaluated already, again and again.
FrozenHistory cycling_history() {
  FrozenHistory f = frozen_history();
  f.history.resize(41);
  const std::vector<Direction> dirs{Direction::kMinimize};
  const TakenConfigurations none;
  TpeSampler blind_tpe(SamplerOptions{.seed = 2, .multivariate = false, .stall_window = 0});
  for (int k = 0; k < 150; ++k) {
    const StudyView blind{f.space, dirs, f.history, &none};
    FrozenTrial t;
    t.id = t.number = static_cast<int>(f.history.size());
    t.state = TrialState::kComplete;
    t.params = *blind_tpe.sample(blind, t.number);
    double d = 0;
    for (double x : t.params) d += std::fabs(x - 2);
    t.values = {d};
    f.history.push_back(t);
  }
  return f;
}

// Mean L1 distance from the optimum of the proposals for 40 trial numbers; *best_taken counts
// those whose best-EI candidate (what a blind TPE would propose) is taken.
double mean_distance(const FrozenHistory& f, SamplerOptions o, int* best_taken = nullptr) {
  const std::vector<Direction> dirs{Direction::kMinimize};
  const TakenConfigurations taken(f.history), none;
  const StudyView view{f.space, dirs, f.history, &taken};
  const StudyView blind{f.space, dirs, f.history, &none};
  TpeSampler tpe(o);
  double sum = 0;
  for (int k = 0; k < 40; ++k) {
    const int number = static_cast<int>(f.history.size()) + k;
    const auto p = tpe.sample(view, number);
    EXPECT_TRUE(p && !view.is_taken(*p));
    if (best_taken) *best_taken += taken.contains(*tpe.sample(blind, number));
    double d = 0;
    for (double x : *p) d += std::fabs(x - 2);
    sum += d;
  }
  return sum / 40;
}

// With the escape, a frozen model proposes from a prior-heavy mixture: configurations away from
// the neighbourhood it keeps re-proposing, not the nearest untaken ones around it forever.
TEST(TpeStall, AFrozenModelThatCyclesEscapesItsNeighbourhood) {
  const FrozenHistory f = cycling_history();
  std::set<std::vector<double>> distinct;
  for (size_t k = 41; k < f.history.size(); ++k) distinct.insert(f.history[k].params);
  EXPECT_LT(distinct.size(), 100u);  // the blind TPE repeated itself (61 distinct of 150)
  const std::vector<Direction> dirs{Direction::kMinimize};
  const int age = tpe::stall_age(f.history, tpe::split(f.history, dirs, false), 1);
  EXPECT_GE(age, 25);
  SamplerOptions o{.seed = 2, .multivariate = false, .stall_window = 25};
  int best_taken = 0;
  const double with_escape = mean_distance(f, o, &best_taken);
  EXPECT_GE(best_taken, 30);  // the model keeps proposing what it has evaluated
  o.stall_window = 0;
  const double without = mean_distance(f, o);
  std::printf(
      "cycling model: stall age %d, best-EI taken %d/40, mean distance %.2f with the "
      "escape, %.2f without\n",
      age, best_taken, with_escape, without);
  EXPECT_GT(with_escape, without + 1.5);
  // A window longer than the stall does not trigger the escape.
  o.stall_window = age + 1;
  EXPECT_EQ(mean_distance(f, o), without);
  // The multivariate model's wider kernels do not freeze on this history: its best-EI candidate
  // is untaken, so the escape changes nothing.
  o = {.seed = 2, .multivariate = true, .stall_window = 25};
  best_taken = 0;
  const double multivariate = mean_distance(f, o, &best_taken);
  o.stall_window = 0;
  EXPECT_EQ(best_taken, 0);
  EXPECT_EQ(mean_distance(f, o), multivariate);
}

}  // namespace
}  // namespace qsearch::search
