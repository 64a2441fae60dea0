// Fast elementwise and pooling kernels (kernels/elementwise.h, kernels/pool.h) against their
// reference twins on odd shapes, with the bounds of docs/numerics.md "Float kernels".
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "kernels/float_test_util.h"
#include "kernels/pool.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/layout.h"
#include "kernels/ref/pool.h"

namespace qsearch::kernels {
namespace {

using testing::random_floats;

// Dense strides of `shape` with broadcast dims (size 1 in `in`) set to 0, aligned right.
Dims broadcast_strides(const std::vector<int64_t>& in, int rank) {
  Dims s{};
  int64_t acc = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int di = d - (rank - static_cast<int>(in.size()));
    if (di < 0 || in[di] == 1) {
      s[d] = 0;
    } else {
      s[d] = acc;
      acc *= in[di];
    }
  }
  return s;
}

TEST(FastBinary, BroadcastPatternsBitIdenticalToRef) {
  struct Case {
    std::vector<int64_t> out, a, b;
  };
  const Case cases[] = {
      {{7, 3, 5}, {7, 3, 5}, {7, 3, 5}},  // same shape: one coalesced run
      {{7, 3, 5}, {7, 3, 5}, {5}},        // row broadcast
      {{7, 3, 5}, {3, 1}, {7, 3, 5}},     // column broadcast on the left operand
      {{4, 1, 6}, {4, 1, 6}, {}},         // scalar
      {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 1, 4, 5}},
      {{33}, {1}, {33}},
      {{3, 70000}, {3, 70000}, {1, 70000}},  // large enough to split over threads
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const int rank = static_cast<int>(c.out.size());
    int64_t na = 1, nb = 1, ny = 1;
    for (int64_t d : c.a) na *= d;
    for (int64_t d : c.b) nb *= d;
    for (int64_t d : c.out) ny *= d;
    auto a = random_floats(na, seed++), b = random_floats(nb, seed++, 0.5f, 2.0f);
    for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
      BinaryParams p{.op = op, .rank = rank};
      for (int d = 0; d < rank; ++d) p.shape[d] = c.out[d];
      p.a_stride = broadcast_strides(c.a, rank);
      p.b_stride = broadcast_strides(c.b, rank);
      std::vector<float> fast(ny), ref(ny);
      binary_f32(p, a.data(), b.data(), fast.data());
      ref::binary_f32(p, a.data(), b.data(), ref.data());
      EXPECT_EQ(fast, ref) << "case rank " << rank << " op " << static_cast<int>(op);
    }
  }
}

// binary_relu_f32 (an unquantized Add + Relu in one step) against the two kernels it replaces,
// binary_f32 then unary_f32's Relu, bit for bit (-0 and NaN results included; unary_f32 keeps
// -0, where ref::unary_f32 makes it +0), and binary_f32 against the reference: one coalesced run
// (same shapes, or a scalar on either side) split over 1-3 threads, and broadcasts.
TEST(FastBinary, ReluFusedBitIdenticalToBinaryThenRelu) {
  struct Case {
    std::vector<int64_t> out, a, b;
  };
  const Case cases[] = {
      {{2, 64, 56, 56}, {2, 64, 56, 56}, {2, 64, 56, 56}},  // ResNet's residual: split in pieces
      {{200003}, {200003}, {}},                             // a scalar on the right
      {{200003}, {1}, {200003}},                            // and on the left
      {{7, 3, 5}, {7, 3, 5}, {5}},
      {{3, 70000}, {3, 70000}, {1, 70000}},
  };
  const int saved = num_threads();
  uint64_t seed = 40;
  for (const Case& c : cases) {
    const int rank = static_cast<int>(c.out.size());
    int64_t na = 1, nb = 1, ny = 1;
    for (int64_t d : c.a) na *= d;
    for (int64_t d : c.b) nb *= d;
    for (int64_t d : c.out) ny *= d;
    auto a = random_floats(na, seed++), b = random_floats(nb, seed++);
    // -0 + -0 = -0 (kept by the Relu), and NaN (kept) here and there.
    for (int64_t i = 0; i < std::min(na, nb); i += 97) a[i] = b[i] = -0.0f;
    for (int64_t i = 13; i < na; i += 1009) a[i] = std::numeric_limits<float>::quiet_NaN();
    for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul}) {
      BinaryParams p{.op = op, .rank = rank};
      for (int d = 0; d < rank; ++d) p.shape[d] = c.out[d];
      p.a_stride = broadcast_strides(c.a, rank);
      p.b_stride = broadcast_strides(c.b, rank);
      std::vector<float> ref(ny), two_steps(ny);
      ref::binary_f32(p, a.data(), b.data(), ref.data());
      set_num_threads(1);
      binary_f32(p, a.data(), b.data(), two_steps.data());
      unary_f32(UnaryParams{.op = UnaryOp::kRelu}, two_steps.data(), two_steps.data(), ny);
      for (int threads = 1; threads <= 3; ++threads) {
        set_num_threads(threads);
        std::vector<float> plain(ny, 7.0f), fused(ny, 7.0f);
        binary_f32(p, a.data(), b.data(), plain.data());
        binary_relu_f32(p, a.data(), b.data(), fused.data());
        EXPECT_EQ(std::memcmp(plain.data(), ref.data(), ny * sizeof(float)), 0)
            << "binary, rank " << rank << " n " << ny << " op " << static_cast<int>(op) << ", "
            << threads << " threads";
        EXPECT_EQ(std::memcmp(fused.data(), two_steps.data(), ny * sizeof(float)), 0)
            << "binary + relu, rank " << rank << " n " << ny << " op " << static_cast<int>(op)
            << ", " << threads << " threads";
      }
    }
  }
  set_num_threads(saved);
}

TEST(FastUnary, ExactOpsBitIdenticalAndTranscendentalsWithinBound) {
  const int64_t n = 100003;
  auto x = random_floats(n, 7, -20.0f, 20.0f);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  const UnaryParams exact[] = {{.op = UnaryOp::kRelu},
                               {.op = UnaryOp::kLeakyRelu, .alpha = 0.1f},
                               {.op = UnaryOp::kClip, .min = -1.5f, .max = 3.0f},
                               // Crossed bounds: ONNX's min-then-max makes every value max.
                               {.op = UnaryOp::kClip, .min = 2.0f, .max = -1.0f},
                               {.op = UnaryOp::kCopy}};
  for (const UnaryParams& p : exact) {
    std::vector<float> fast(n), ref(n);
    unary_f32(p, x.data(), fast.data(), n);
    ref::unary_f32(p, x.data(), ref.data(), n);
    EXPECT_TRUE(std::isnan(fast[5])) << static_cast<int>(p.op);
    fast[5] = ref[5] = 0.0f;
    EXPECT_EQ(fast, ref) << static_cast<int>(p.op);
  }
  for (UnaryOp op : {UnaryOp::kSigmoid, UnaryOp::kTanh}) {
    std::vector<float> fast(n), ref(n);
    unary_f32({.op = op}, x.data(), fast.data(), n);
    ref::unary_f32({.op = op}, x.data(), ref.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      if (i == 5) {
        EXPECT_TRUE(std::isnan(fast[i]));
        continue;
      }
      ASSERT_LE(std::fabs(fast[i] - ref[i]), 8 * FLT_EPSILON * std::fabs(ref[i])) << "x = " << x[i];
    }
  }
}

TEST(FastUnary, ClipWithCrossedBoundsGivesMaxEverywhereAsOnnx) {
  const std::vector<float> x = {-5.0f, 0.0f, 1.0f, 5.0f};
  std::vector<float> fast(4), ref(4);
  const UnaryParams p{.op = UnaryOp::kClip, .min = 2.0f, .max = -1.0f};
  unary_f32(p, x.data(), fast.data(), 4);
  ref::unary_f32(p, x.data(), ref.data(), 4);
  EXPECT_EQ(fast, std::vector<float>(4, -1.0f));
  EXPECT_EQ(ref, std::vector<float>(4, -1.0f));
}

TEST(FastUnary, InPlace) {
  auto x = random_floats(1000, 8);
  auto want = x;
  for (auto& v : want) v = v < 0 ? 0.0f : v;
  unary_f32({.op = UnaryOp::kRelu}, x.data(), x.data(), 1000);
  EXPECT_EQ(x, want);
}

TEST(FastChannelAffine, FoldedBatchNormWithinBound) {
  const int64_t batch = 3, c = 5, spatial = 37;
  auto x = random_floats(batch * c * spatial, 9, -4.0f, 4.0f);
  auto gamma = random_floats(c, 10), beta = random_floats(c, 11), mean = random_floats(c, 12);
  auto var = random_floats(c, 13, 0.01f, 3.0f);
  const float eps = 1e-5f;
  std::vector<float> s(c), t(c);
  for (int64_t i = 0; i < c; ++i) {
    const double a = gamma[i] / std::sqrt(static_cast<double>(var[i]) + eps);
    s[i] = static_cast<float>(a);
    t[i] = static_cast<float>(beta[i] - mean[i] * a);
  }
  std::vector<float> fast(x.size()), ref(x.size());
  channel_affine_f32(batch, c, spatial, x.data(), s.data(), t.data(), fast.data());
  ref::batch_norm_f32({.batch = batch, .channels = c, .spatial = spatial, .epsilon = eps}, x.data(),
                      gamma.data(), beta.data(), mean.data(), var.data(), ref.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t ch = (static_cast<int64_t>(i) / spatial) % c;
    const double bound = 2 * FLT_EPSILON * (std::fabs(x[i] * s[ch]) + std::fabs(t[ch])) +
                         FLT_EPSILON * std::fabs(ref[i]);
    ASSERT_LE(std::fabs(fast[i] - ref[i]), bound) << i;
  }
}

struct PoolCase {
  int64_t h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool ceil;
};

Pool2dParams pool_params(const PoolCase& c, int64_t batch, int64_t channels) {
  auto out = [](int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, bool ceil) {
    const int64_t span = in + pb + pe - (d * (k - 1) + 1);
    int64_t o = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && (o - 1) * s >= in + pb) --o;
    return o;
  };
  return {.batch = batch,
          .channels = channels,
          .in_h = c.h,
          .in_w = c.w,
          .out_h = out(c.h, c.kh, c.sh, c.dh, c.pt, c.pb, c.ceil),
          .out_w = out(c.w, c.kw, c.sw, c.dw, c.pl, c.pr, c.ceil),
          .kernel_h = c.kh,
          .kernel_w = c.kw,
          .stride_h = c.sh,
          .stride_w = c.sw,
          .dilation_h = c.dh,
          .dilation_w = c.dw,
          .pad_top = c.pt,
          .pad_left = c.pl,
          .pad_bottom = c.pb,
          .pad_right = c.pr};
}

const PoolCase kPoolCases[] = {
    {28, 28, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false},  // the vectorised 2x2 path
    {14, 14, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false},
    {9, 11, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, true},   // 2x2 with ceil-mode edges
    {7, 37, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false},  // a partial vector block
    {9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true},
    {8, 10, 2, 3, 1, 2, 2, 1, 0, 1, 1, 0, false},
    {5, 6, 3, 2, 3, 1, 1, 2, 1, 0, 1, 1, true},
};

TEST(FastPool, MaxBitIdenticalToRef) {
  for (const PoolCase& c : kPoolCases) {
    const Pool2dParams p = pool_params(c, 2, 3);
    auto x = random_floats(2 * 3 * c.h * c.w, 20);
    std::vector<float> fast(2 * 3 * p.out_h * p.out_w), ref(fast.size());
    max_pool2d_f32(p, x.data(), fast.data());
    ref::max_pool2d_f32(p, x.data(), ref.data());
    EXPECT_EQ(fast, ref) << c.h << "x" << c.w << " k" << c.kh << "x" << c.kw;
  }
}

TEST(FastPool, MaxPropagatesNan) {
  for (const PoolCase& c : {kPoolCases[0], kPoolCases[4]}) {
    const Pool2dParams p = pool_params(c, 1, 1);
    auto x = random_floats(c.h * c.w, 21);
    x[c.w + 1] = std::numeric_limits<float>::quiet_NaN();  // row 1, column 1
    std::vector<float> fast(p.out_h * p.out_w), ref(fast.size());
    max_pool2d_f32(p, x.data(), fast.data());
    ref::max_pool2d_f32(p, x.data(), ref.data());
    for (size_t i = 0; i < fast.size(); ++i) {
      EXPECT_EQ(std::isnan(fast[i]), std::isnan(ref[i])) << i;
      if (!std::isnan(ref[i])) {
        EXPECT_EQ(fast[i], ref[i]) << i;
      }
    }
    EXPECT_TRUE(std::isnan(fast[0]));
  }
}

TEST(FastPool, AverageWithinBound) {
  for (const PoolCase& c : kPoolCases) {
    for (bool include_pad : {false, true}) {
      Pool2dParams p = pool_params(c, 2, 3);
      p.count_include_pad = include_pad;
      auto x = random_floats(2 * 3 * c.h * c.w, 22);
      std::vector<float> ax(x.size());
      for (size_t i = 0; i < x.size(); ++i) ax[i] = std::fabs(x[i]);
      std::vector<float> fast(2 * 3 * p.out_h * p.out_w), ref(fast.size()), mag(fast.size());
      avg_pool2d_f32(p, x.data(), fast.data());
      ref::avg_pool2d_f32(p, x.data(), ref.data());
      ref::avg_pool2d_f32(p, ax.data(), mag.data());  // mean |x| over the window
      for (size_t i = 0; i < fast.size(); ++i) {
        const double bound = (c.kh * c.kw + 1) * FLT_EPSILON * mag[i] * (1 + 1e-6);
        ASSERT_LE(std::fabs(fast[i] - ref[i]), bound) << i;
      }
    }
  }
}

TEST(FastPool, SameBitsForOneAndTwoThreads) {
  const int saved = num_threads();
  const Pool2dParams p = pool_params(kPoolCases[0], 64, 8);
  auto x = random_floats(64 * 8 * 28 * 28, 23);
  std::vector<float> y1(64 * 8 * 14 * 14), y2(y1.size());
  set_num_threads(1);
  max_pool2d_f32(p, x.data(), y1.data());
  set_num_threads(2);
  max_pool2d_f32(p, x.data(), y2.data());
  set_num_threads(saved);
  EXPECT_EQ(y1, y2);
}

// Max pooling's vectorised passes (rows in 8 lanes; columns from stride phases for stride_w <=
// 4, the scalar pass beyond) on random windows: kernel 1..5, stride 1..5, dilation 1..2, pads,
// ceil mode, widths with vector tails, -inf and NaN inputs, 1-3 threads; the same values as the
// reference (NaN where it has NaN).
TEST(FastPool, MaxOnRandomWindowsEqualsRef) {
  std::mt19937 rng(5);
  auto pick = [&rng](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const int saved = num_threads();
  int checked = 0;
  for (int trial = 0; trial < 150; ++trial) {
    PoolCase c{};
    c.h = pick(1, 30);
    c.w = trial == 0 ? 112 : pick(1, 70);
    c.kh = trial == 0 ? 3 : pick(1, 5);
    c.kw = trial == 0 ? 3 : pick(1, 5);
    c.sh = trial == 0 ? 2 : pick(1, 5);
    c.sw = trial == 0 ? 2 : pick(1, 5);
    c.dh = trial == 0 ? 1 : pick(1, 2);
    c.dw = trial == 0 ? 1 : pick(1, 2);
    c.pt = pick(0, c.kh - 1);
    c.pb = pick(0, c.kh - 1);
    c.pl = trial == 0 ? 1 : pick(0, c.kw - 1);
    c.pr = pick(0, c.kw - 1);
    c.ceil = pick(0, 1) == 1;
    if (c.h + c.pt + c.pb < c.dh * (c.kh - 1) + 1 || c.w + c.pl + c.pr < c.dw * (c.kw - 1) + 1) {
      continue;
    }
    const Pool2dParams p = pool_params(c, 2, 3);
    if (p.out_h <= 0 || p.out_w <= 0) continue;
    auto x = random_floats(2 * 3 * c.h * c.w, 100 + trial);
    for (float& v : x) {
      const int64_t r = pick(0, 199);
      if (r == 0) v = std::numeric_limits<float>::quiet_NaN();
      if (r == 1) v = -std::numeric_limits<float>::infinity();
    }
    std::vector<float> ref(2 * 3 * p.out_h * p.out_w);
    ref::max_pool2d_f32(p, x.data(), ref.data());
    for (int threads = 1; threads <= 3; ++threads) {
      set_num_threads(threads);
      std::vector<float> fast(ref.size(), 7.0f);
      max_pool2d_f32(p, x.data(), fast.data());
      for (size_t i = 0; i < fast.size(); ++i) {
        if (std::isnan(ref[i]) ? !std::isnan(fast[i]) : fast[i] != ref[i]) {
          ADD_FAILURE() << "trial " << trial << " " << c.h << "x" << c.w << " k" << c.kh << "x"
                        << c.kw << " s" << c.sh << "x" << c.sw << " d" << c.dh << "x" << c.dw
                        << " pads " << c.pt << "," << c.pl << "," << c.pb << "," << c.pr << " ceil "
                        << c.ceil << ", " << threads << " threads: y[" << i << "] = " << fast[i]
                        << ", want " << ref[i];
          break;
        }
      }
    }
    ++checked;
  }
  set_num_threads(saved);
  EXPECT_GE(checked, 100);
}

// GlobalAveragePool: the reference's double sum per row in index order, the same bits, for row
// counts around the 8-row blocks and any thread count.
TEST(FastPool, GlobalAverageBitIdenticalToRef) {
  const int saved = num_threads();
  for (int64_t rows : {1, 7, 8, 9, 17, 40}) {
    for (int64_t spatial : {1, 3, 49, 196, 12544}) {
      auto x = random_floats(rows * spatial, rows * 1000 + spatial, -3.0f, 5.0f);
      std::vector<float> ref(rows);
      ref::global_avg_pool_f32(rows, spatial, x.data(), ref.data());
      for (int threads = 1; threads <= 3; ++threads) {
        set_num_threads(threads);
        std::vector<float> fast(rows, 9.0f);
        global_avg_pool_f32(rows, spatial, x.data(), fast.data());
        EXPECT_EQ(std::memcmp(fast.data(), ref.data(), rows * sizeof(float)), 0)
            << rows << " rows of " << spatial << ", " << threads << " threads";
      }
    }
  }
  set_num_threads(saved);
}

// The same with sums whose double rounding depends on the order (2^60 + 1 - 2^60 is 0 in index
// order, 1 in another): each row summed in index order, in the 16-row blocks (AVX2: 8x8
// transposes, a column tail) and the 8-row and single-row rest.
TEST(FastPool, GlobalAverageSumsEachRowInIndexOrder) {
  const float big = std::ldexp(1.0f, 60);
  for (int64_t rows : {16, 24, 33}) {
    for (int64_t spatial : {8, 15, 16, 23}) {
      auto x = random_floats(rows * spatial, rows * 100 + spatial, -1.0f, 1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        // big, then small values, then -big, at row-dependent columns.
        const int64_t a = r % spatial, b = (r * 7 + 3) % spatial;
        if (a == b) continue;
        x[r * spatial + std::min(a, b)] = r % 2 ? big : -big;
        x[r * spatial + std::max(a, b)] = r % 2 ? -big : big;
      }
      std::vector<float> ref(rows);
      ref::global_avg_pool_f32(rows, spatial, x.data(), ref.data());
      std::vector<float> fast(rows, 9.0f);
      global_avg_pool_f32(rows, spatial, x.data(), fast.data());
      EXPECT_EQ(std::memcmp(fast.data(), ref.data(), rows * sizeof(float)), 0)
          << rows << " rows of " << spatial;
    }
  }
}

TEST(FastTranspose, EveryPermutationOfRandomShapesBitIdenticalToRef) {
  // Ranks 1-5, sizes including 1 (dropped) and runs that merge; every permutation; one and two
  // threads (the ViT's head split [0, 2, 1, 3] and key transpose [0, 1, 3, 2] are among them).
  const int saved = num_threads();
  std::mt19937 rng(5);
  int checked = 0;
  for (int rank = 1; rank <= 5; ++rank) {
    for (int trial = 0; trial < 12; ++trial) {
      TransposeParams p;
      p.rank = rank;
      int64_t total = 1;
      for (int d = 0; d < rank; ++d) {
        p.in_shape[d] = std::uniform_int_distribution<int64_t>(1, trial < 6 ? 5 : 40)(rng);
        total *= p.in_shape[d];
      }
      if (total > 400000) continue;
      const auto x = random_floats(total, static_cast<uint32_t>(100 + trial));
      std::vector<int64_t> perm(rank);
      for (int d = 0; d < rank; ++d) perm[d] = d;
      do {
        for (int d = 0; d < rank; ++d) p.perm[d] = perm[d];
        std::vector<float> want(total), got(total, -1.0f);
        ref::transpose_f32(p, x.data(), want.data());
        set_num_threads(1 + (checked % 2));
        transpose_f32(p, x.data(), got.data());
        ASSERT_EQ(got, want) << "rank " << rank << " trial " << trial;
        ++checked;
      } while (std::next_permutation(perm.begin(), perm.end()));
    }
  }
  set_num_threads(saved);
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace qsearch::kernels
