// The transformer kernels (issue 11) against their reference twins: reductions, layer norm and
// softmax (kernels/norm.h vs kernels/ref/norm.h, ref::softmax_f32), the new unary ops (erf,
// sqrt, exp, neg, both GELUs) and Pow, within the bounds stated in kernels/norm.h and
// kernels/elementwise.h (docs/numerics.md "Float kernels").
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "kernels/float_test_util.h"
#include "kernels/norm.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/norm.h"

namespace qsearch::kernels {
namespace {

using testing::random_floats;

TEST(NormKernels, ReduceMatchesTheReference) {
  for (ReduceOp op : {ReduceOp::kMean, ReduceOp::kSum, ReduceOp::kMax}) {
    for (auto [outer, axis, inner] :
         {std::array<int64_t, 3>{3, 17, 1}, {2, 5, 7}, {1, 300, 2}, {40, 1, 3}}) {
      SCOPED_TRACE(::testing::Message()
                   << static_cast<int>(op) << " " << outer << "x" << axis << "x" << inner);
      const ReduceParams p{op, outer, axis, inner};
      const std::vector<float> x = random_floats(outer * axis * inner, 7, -4.0f, 4.0f);
      std::vector<float> fast(outer * inner), ref(outer * inner);
      reduce_f32(p, x.data(), fast.data());
      ref::reduce_f32(p, x.data(), ref.data());
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          double abs_sum = 0, sum = 0, mx = -INFINITY;
          for (int64_t a = 0; a < axis; ++a) {
            const double v = x[(o * axis + a) * inner + i];
            abs_sum += std::fabs(v);
            sum += v;
            mx = std::max(mx, v);
          }
          const int64_t k = o * inner + i;
          if (op == ReduceOp::kMax) {
            EXPECT_EQ(fast[k], ref[k]);
            EXPECT_EQ(ref[k], static_cast<float>(mx));
            continue;
          }
          const double expect = op == ReduceOp::kMean ? sum / axis : sum;
          EXPECT_NEAR(ref[k], expect, std::fabs(expect) * FLT_EPSILON);
          const double bound =
              (axis + 2) * FLT_EPSILON * abs_sum / (op == ReduceOp::kMean ? axis : 1);
          EXPECT_LE(std::fabs(fast[k] - ref[k]), bound);
        }
      }
    }
  }
}

TEST(NormKernels, MaxPropagatesNaN) {
  const std::vector<float> x = {1.0f, NAN, 3.0f};
  float fast = 0, ref = 0;
  const ReduceParams p{ReduceOp::kMax, 1, 3, 1};
  reduce_f32(p, x.data(), &fast);
  ref::reduce_f32(p, x.data(), &ref);
  EXPECT_TRUE(std::isnan(fast));
  EXPECT_TRUE(std::isnan(ref));
}

TEST(NormKernels, LayerNormMatchesTheReferenceAndTheDefinition) {
  for (int64_t n : {1, 7, 32, 768}) {
    SCOPED_TRACE(n);
    const int64_t rows = 9;
    const LayerNormParams p{rows, n, 1e-5f};
    std::vector<float> x = random_floats(rows * n, 3, -3.0f, 5.0f);
    const std::vector<float> scale = random_floats(n, 4, 0.5f, 2.0f);
    const std::vector<float> bias = random_floats(n, 5, -1.0f, 1.0f);
    std::vector<float> fast(rows * n), ref(rows * n), ref_nb(rows * n);
    layer_norm_f32(p, x.data(), scale.data(), bias.data(), fast.data());
    ref::layer_norm_f32(p, x.data(), scale.data(), bias.data(), ref.data());
    ref::layer_norm_f32(p, x.data(), scale.data(), nullptr, ref_nb.data());
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t j = 0; j < n; ++j) mean += x[r * n + j];
      mean /= n;
      for (int64_t j = 0; j < n; ++j) var += (x[r * n + j] - mean) * (x[r * n + j] - mean);
      var /= n;
      const double sigma = std::sqrt(var + 1e-5);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = r * n + j;
        const double normed = (x[k] - mean) / sigma;
        const double exact = normed * scale[j] + bias[j];
        EXPECT_NEAR(ref[k], exact, 2 * FLT_EPSILON * (std::fabs(exact) + 1e-6));
        EXPECT_NEAR(ref_nb[k], normed * scale[j],
                    2 * FLT_EPSILON * (std::fabs(normed * scale[j]) + 1e-6));
        const double bound =
            (n + 8) * FLT_EPSILON * (std::fabs(scale[j] * normed) + std::fabs(bias[j])) +
            FLT_EPSILON * std::fabs(ref[k]);
        EXPECT_LE(std::fabs(fast[k] - ref[k]), bound) << r << "," << j;
      }
    }
  }
}

TEST(NormKernels, LayerNormOfRowsFarFromZeroKeepsItsBound) {
  // Rows with |mean| >> sigma (still var >= eps * mean^2): fl(mean) alone is off by half an ulp
  // of the mean, far more than the bound allows for x next to the mean; the corrected mean
  // (kernels/norm.cc) keeps it.
  for (int64_t n : {7, 64, 100}) {
    SCOPED_TRACE(n);
    const int64_t rows = 16;
    const LayerNormParams p{rows, n, 1e-5f};
    std::vector<float> x = random_floats(rows * n, 11, -1.0f, 1.0f);
    for (int64_t k = 0; k < rows * n; ++k) x[k] += 300.0f + 37.0f * static_cast<float>(k / n);
    const std::vector<float> scale = random_floats(n, 12, 0.5f, 2.0f);
    const std::vector<float> bias = random_floats(n, 13, -1.0f, 1.0f);
    std::vector<float> fast(rows * n), ref(rows * n);
    layer_norm_f32(p, x.data(), scale.data(), bias.data(), fast.data());
    ref::layer_norm_f32(p, x.data(), scale.data(), bias.data(), ref.data());
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t j = 0; j < n; ++j) mean += x[r * n + j];
      mean /= n;
      for (int64_t j = 0; j < n; ++j) var += (x[r * n + j] - mean) * (x[r * n + j] - mean);
      var /= n;
      ASSERT_GE(var, FLT_EPSILON * mean * mean);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = r * n + j;
        const double normed = (x[k] - mean) / std::sqrt(var + 1e-5);
        const double bound =
            (n + 8) * FLT_EPSILON * (std::fabs(scale[j] * normed) + std::fabs(bias[j])) +
            FLT_EPSILON * std::fabs(ref[k]);
        ASSERT_LE(std::fabs(fast[k] - ref[k]), bound) << r << "," << j;
      }
    }
  }
}

TEST(NormKernels, SoftmaxMatchesTheReferenceOnAnyAxis) {
  for (auto [outer, axis, inner] :
       {std::array<int64_t, 3>{4, 10, 1}, {2, 16, 3}, {1, 1000, 1}, {5, 1, 4}}) {
    const SoftmaxParams p{outer, axis, inner};
    const std::vector<float> x = random_floats(outer * axis * inner, 11, -20.0f, 20.0f);
    std::vector<float> fast(x.size()), ref(x.size());
    softmax_f32(p, x.data(), fast.data());
    ref::softmax_f32(p, x.data(), ref.data());
    for (size_t k = 0; k < x.size(); ++k) {
      EXPECT_LE(std::fabs(fast[k] - ref[k]),
                (axis + 8) * FLT_EPSILON * ref[k] + FLT_EPSILON * 1e-38)
          << k;
    }
  }
}

TEST(NormKernels, ResultsDoNotDependOnTheThreadCount) {
  const int64_t rows = 300, n = 64;
  const std::vector<float> x = random_floats(rows * n, 21, -2.0f, 2.0f);
  const std::vector<float> scale(n, 1.5f), bias(n, 0.25f);
  auto run = [&] {
    std::vector<float> y(x.size()), s(x.size()), r(rows);
    layer_norm_f32({rows, n, 1e-5f}, x.data(), scale.data(), bias.data(), y.data());
    softmax_f32({rows, n, 1}, x.data(), s.data());
    reduce_f32({ReduceOp::kMean, rows, n, 1}, x.data(), r.data());
    y.insert(y.end(), s.begin(), s.end());
    y.insert(y.end(), r.begin(), r.end());
    return y;
  };
  const int before = num_threads();
  set_num_threads(1);
  const std::vector<float> one = run();
  set_num_threads(4);
  const std::vector<float> four = run();
  set_num_threads(before);
  EXPECT_EQ(one, four);
}

TEST(NormKernels, NewUnaryOpsMatchTheReference) {
  std::vector<float> x = random_floats(4000, 9, -9.0f, 9.0f);
  x.insert(x.end(), {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f});
  for (UnaryOp op : {UnaryOp::kErf, UnaryOp::kSqrt, UnaryOp::kExp, UnaryOp::kNeg, UnaryOp::kGelu,
                     UnaryOp::kGeluTanh}) {
    SCOPED_TRACE(static_cast<int>(op));
    std::vector<float> in = x;
    if (op == UnaryOp::kSqrt) {
      for (float& v : in) v = std::fabs(v);
    }
    std::vector<float> fast(in.size()), ref(in.size());
    unary_f32(UnaryParams{.op = op}, in.data(), fast.data(), static_cast<int64_t>(in.size()));
    ref::unary_f32(UnaryParams{.op = op}, in.data(), ref.data(), static_cast<int64_t>(in.size()));
    for (size_t i = 0; i < in.size(); ++i) {
      const double v = in[i];
      double exact = 0;
      switch (op) {
        case UnaryOp::kErf:
          exact = std::erf(v);
          break;
        case UnaryOp::kSqrt:
          exact = std::sqrt(v);
          break;
        case UnaryOp::kExp:
          exact = std::exp(v);
          break;
        case UnaryOp::kNeg:
          exact = -v;
          break;
        case UnaryOp::kGelu:
          exact = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          break;
        default:
          exact = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
      }
      EXPECT_EQ(ref[i], static_cast<float>(exact)) << v;
      const bool gelu = op == UnaryOp::kGelu || op == UnaryOp::kGeluTanh;
      const double bound = gelu ? 8 * FLT_EPSILON * (std::fabs(v) + std::fabs(ref[i]))
                                : 8 * FLT_EPSILON * std::fabs(ref[i]);
      if (op == UnaryOp::kSqrt || op == UnaryOp::kNeg) {
        EXPECT_EQ(fast[i], ref[i]) << v;
      } else {
        EXPECT_LE(std::fabs(fast[i] - ref[i]), bound) << v;
      }
    }
  }
}

TEST(NormKernels, PowMatchesTheReferenceAndSquaresExactly) {
  const std::vector<float> a = random_floats(500, 13, 0.01f, 4.0f);
  for (float e : {2.0f, 3.0f, 0.5f, -1.5f}) {
    SCOPED_TRACE(e);
    BinaryParams p;
    p.op = BinaryOp::kPow;
    p.rank = 1;
    p.shape[0] = 500;
    p.a_stride[0] = 1;
    p.b_stride[0] = 0;
    std::vector<float> fast(500), ref(500);
    binary_f32(p, a.data(), &e, fast.data());
    ref::binary_f32(p, a.data(), &e, ref.data());
    for (int i = 0; i < 500; ++i) {
      EXPECT_EQ(ref[i], static_cast<float>(std::pow(static_cast<double>(a[i]), e)));
      if (e == 2.0f) {
        EXPECT_EQ(fast[i], ref[i]);
      } else {
        EXPECT_LE(std::fabs(fast[i] - ref[i]), 2 * FLT_EPSILON * std::fabs(ref[i]));
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::kernels
