// The fast mask / select kernels (kernels/select.h) against their reference twins
// (kernels/ref/select.h): none of them rounds, so they must agree bit for bit on every
// broadcast pattern, element size and index type; plus the conversions of ref::cast.
#include "kernels/select.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/ref/select.h"

namespace qsearch::kernels {
namespace {

// A random output shape of rank 0..5 and, for each of three operands, a random broadcast of it
// (each dim kept or made 1, leading dims dropped).
struct Case {
  SelectParams p;
  std::array<std::vector<int64_t>, 3> in_shape;
  std::array<int64_t, 3> numel{1, 1, 1};
  int64_t out_numel = 1;
};

Case random_case(std::mt19937& rng) {
  Case c;
  c.p.rank = static_cast<int>(rng() % 6);
  for (int d = 0; d < c.p.rank; ++d) {
    c.p.shape[d] = 1 + static_cast<int64_t>(rng() % 4);
    c.out_numel *= c.p.shape[d];
  }
  for (int k = 0; k < 3; ++k) {
    const int drop = c.p.rank == 0 ? 0 : static_cast<int>(rng() % (c.p.rank + 1));
    for (int d = drop; d < c.p.rank; ++d) {
      c.in_shape[k].push_back(rng() % 3 == 0 ? 1 : c.p.shape[d]);
    }
    int64_t s = 1;
    const int r_in = static_cast<int>(c.in_shape[k].size());
    for (int d = c.p.rank - 1; d >= 0; --d) {
      const int di = d - (c.p.rank - r_in);
      if (di < 0) {
        c.p.stride[k][d] = 0;
      } else {
        c.p.stride[k][d] = c.in_shape[k][di] == 1 ? 0 : s;
        s *= c.in_shape[k][di];
      }
    }
    c.numel[k] = s;
  }
  return c;
}

template <typename T>
std::vector<T> random_values(std::mt19937& rng, int64_t n, int range) {
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(static_cast<int>(rng() % range) - range / 2);
  return v;
}

TEST(SelectKernels, FastEqualsReferenceOnRandomBroadcasts) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 400; ++trial) {
    const Case c = random_case(rng);
    const auto n = static_cast<size_t>(c.out_numel);
    // Equal of int64, int32 and float32 (small ranges so that both outcomes occur).
    {
      auto a = random_values<int64_t>(rng, c.numel[0], 3),
           b = random_values<int64_t>(rng, c.numel[1], 3);
      std::vector<uint8_t> y1(n, 7), y2(n, 9);
      equal(DType::kInt64, c.p, a.data(), b.data(), y1.data());
      ref::equal(DType::kInt64, c.p, a.data(), b.data(), y2.data());
      EXPECT_EQ(y1, y2) << trial;
    }
    {
      auto a = random_values<float>(rng, c.numel[0], 3),
           b = random_values<float>(rng, c.numel[1], 3);
      if (!a.empty()) a[0] = std::numeric_limits<float>::quiet_NaN();  // NaN != NaN
      std::vector<uint8_t> y1(n, 7), y2(n, 9);
      equal(DType::kFloat32, c.p, a.data(), b.data(), y1.data());
      ref::equal(DType::kFloat32, c.p, a.data(), b.data(), y2.data());
      EXPECT_EQ(y1, y2) << trial;
    }
    // And, Where (4- and 8-byte elements), Expand (1, 4, 8 bytes).
    auto m0 = random_values<uint8_t>(rng, c.numel[0], 2),
         m1 = random_values<uint8_t>(rng, c.numel[1], 2);
    for (uint8_t& v : m0) v = v != 0;
    for (uint8_t& v : m1) v = v != 0;
    {
      std::vector<uint8_t> y1(n, 7), y2(n, 9);
      logical_and(c.p, m0.data(), m1.data(), y1.data());
      ref::logical_and(c.p, m0.data(), m1.data(), y2.data());
      EXPECT_EQ(y1, y2) << trial;
    }
    {
      auto a = random_values<float>(rng, c.numel[1], 100),
           b = random_values<float>(rng, c.numel[2], 100);
      std::vector<float> y1(n, 1.5f), y2(n, 2.5f);
      where(4, c.p, m0.data(), a.data(), b.data(), y1.data());
      ref::where(4, c.p, m0.data(), a.data(), b.data(), y2.data());
      EXPECT_EQ(std::memcmp(y1.data(), y2.data(), 4 * n), 0) << trial;
      auto ia = random_values<int64_t>(rng, c.numel[1], 100),
           ib = random_values<int64_t>(rng, c.numel[2], 100);
      std::vector<int64_t> z1(n, 1), z2(n, 2);
      where(8, c.p, m0.data(), ia.data(), ib.data(), z1.data());
      ref::where(8, c.p, m0.data(), ia.data(), ib.data(), z2.data());
      EXPECT_EQ(z1, z2) << trial;
    }
  }
}

TEST(SelectKernels, ExpandFastEqualsReference) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    const Case c = random_case(rng);
    const auto n = static_cast<size_t>(c.out_numel);
    auto x8 = random_values<int64_t>(rng, c.numel[0], 1000);
    std::vector<int64_t> y1(n, 1), y2(n, 2);
    expand(8, c.p, x8.data(), y1.data());
    ref::expand(8, c.p, x8.data(), y2.data());
    EXPECT_EQ(y1, y2) << trial;
    auto x1 = random_values<uint8_t>(rng, c.numel[0], 200);
    std::vector<uint8_t> u1(n, 1), u2(n, 2);
    expand(1, c.p, x1.data(), u1.data());
    ref::expand(1, c.p, x1.data(), u2.data());
    EXPECT_EQ(u1, u2) << trial;
  }
}

TEST(SelectKernels, GatherFastEqualsReferenceWithNegativeAndBadIndices) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    GatherParams p;
    p.outer = 1 + static_cast<int64_t>(rng() % 3);
    p.n = 1 + static_cast<int64_t>(rng() % 6);
    p.inner = 1 + static_cast<int64_t>(rng() % 4);
    p.count = static_cast<int64_t>(rng() % 7);
    const bool f32 = trial % 2 == 0;
    p.data = f32 ? DType::kFloat32 : DType::kInt64;
    p.elem = f32 ? 4 : 8;
    p.index = trial % 4 < 2 ? DType::kInt64 : DType::kInt32;
    const int64_t xn = p.outer * p.n * p.inner, yn = p.outer * p.count * p.inner;
    std::vector<int64_t> x8 = random_values<int64_t>(rng, xn, 1000);
    std::vector<float> x4(x8.begin(), x8.end());
    // Indices in [-n - 2, n + 2): valid ones of both signs and out-of-range ones.
    std::vector<int64_t> i64;
    for (int64_t j = 0; j < p.count; ++j)
      i64.push_back(static_cast<int64_t>(rng() % (2 * p.n + 4)) - p.n - 2);
    std::vector<int32_t> i32(i64.begin(), i64.end());
    const void* idx = p.index == DType::kInt64 ? static_cast<const void*>(i64.data()) : i32.data();
    const void* x = f32 ? static_cast<const void*>(x4.data()) : x8.data();
    std::vector<char> y1(yn * p.elem, 1), y2(yn * p.elem, 2);
    gather(p, x, idx, y1.data());
    ref::gather(p, x, idx, y2.data());
    EXPECT_EQ(y1, y2) << trial;  // NaN rows compare equal as bytes (the same quiet NaN)
    // Spot check against the definition.
    for (int64_t o = 0; o < p.outer; ++o) {
      for (int64_t j = 0; j < p.count; ++j) {
        const int64_t i = i64[j];
        for (int64_t k = 0; k < p.inner; ++k) {
          const int64_t at = (o * p.count + j) * p.inner + k;
          if (i < -p.n || i >= p.n) {
            if (f32) {
              float v;
              std::memcpy(&v, y1.data() + at * 4, 4);
              EXPECT_TRUE(std::isnan(v));
            }
            continue;
          }
          const int64_t src = (o * p.n + (i < 0 ? i + p.n : i)) * p.inner + k;
          if (f32) {
            float v;
            std::memcpy(&v, y1.data() + at * 4, 4);
            EXPECT_EQ(v, x4[src]);
          } else {
            int64_t v;
            std::memcpy(&v, y1.data() + at * 8, 8);
            EXPECT_EQ(v, x8[src]);
          }
        }
      }
    }
  }
}

TEST(SelectKernels, CastFollowsOnnx) {
  const std::vector<float> f = {-2.7f, -0.5f, 0.0f,   0.5f,
                                2.7f,  3e10f, -3e10f, std::numeric_limits<float>::quiet_NaN()};
  std::vector<int64_t> i64(f.size());
  ref::cast(DType::kFloat32, DType::kInt64, f.data(), i64.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(i64, (std::vector<int64_t>{-2, 0, 0, 0, 2, 30000001024, -30000001024, 0}));
  std::vector<int32_t> i32(f.size());
  ref::cast(DType::kFloat32, DType::kInt32, f.data(), i32.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(i32, (std::vector<int32_t>{-2, 0, 0, 0, 2, std::numeric_limits<int32_t>::max(),
                                       std::numeric_limits<int32_t>::min(), 0}));
  std::vector<uint8_t> b(f.size());
  ref::cast(DType::kFloat32, DType::kUInt8, f.data(), b.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(b, (std::vector<uint8_t>{1, 1, 0, 1, 1, 1, 1, 1}));  // NaN != 0 is true
  const std::vector<int64_t> ids = {0, 5, -3, (int64_t{1} << 40) + 7};
  std::vector<float> back(ids.size());
  ref::cast(DType::kInt64, DType::kFloat32, ids.data(), back.data(), 4);
  EXPECT_EQ(back,
            (std::vector<float>{0.0f, 5.0f, -3.0f, static_cast<float>((int64_t{1} << 40) + 7)}));
  std::vector<int32_t> low(ids.size());
  ref::cast(DType::kInt64, DType::kInt32, ids.data(), low.data(), 4);
  EXPECT_EQ(low, (std::vector<int32_t>{0, 5, -3, 7}));
  std::vector<uint8_t> nb(ids.size()), nn(ids.size());
  ref::cast(DType::kInt64, DType::kUInt8, ids.data(), nb.data(), 4);
  EXPECT_EQ(nb, (std::vector<uint8_t>{0, 1, 1, 1}));
  ref::logical_not(nb.data(), nn.data(), 4);
  EXPECT_EQ(nn, (std::vector<uint8_t>{1, 0, 0, 0}));
  std::vector<float> fb(4);
  ref::cast(DType::kUInt8, DType::kFloat32, nb.data(), fb.data(), 4);
  EXPECT_EQ(fb, (std::vector<float>{0.0f, 1.0f, 1.0f, 1.0f}));
}

}  // namespace
}  // namespace qsearch::kernels
