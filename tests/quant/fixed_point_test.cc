// Property tests of the fixed-point spec (quant/fixed_point.h, docs/numerics.md "Fixed point").
// Each bound is a named constant; every random test is seeded and prints its seed on failure.
#include "quant/fixed_point.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace qsearch::quant {
namespace {

// |dequantize(quantize(x)) - x| for x inside the range, in units of the step 2^-frac.
constexpr double kNearestRoundTripBoundSteps = 0.5;  // round to nearest: half a step
constexpr double kFloorRoundTripBoundSteps = 1.0;    // floor: strictly less than one step
constexpr int kSamplesPerFormat = 4000;
constexpr uint64_t kSeed = 1234;

const Rounding kAllRoundings[] = {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero,
                                  Rounding::kFloor};

std::vector<FixedFormat> test_formats() {
  std::vector<FixedFormat> v;
  for (int w : {1, 2, 3, 4, 7, 8, 9, 12, 16, 20, 24, 25, 31, 32}) {
    for (int f : {-5, 0, w / 2, w, w + 6}) {
      v.push_back({w, f, true});
      v.push_back({w, f, false});
    }
  }
  return v;
}

// A float32 uniformly placed in [lo, hi] (as doubles, rounded to float).
float uniform_float(Rng& rng, double lo, double hi) {
  return static_cast<float>(rng.uniform(lo, hi));
}

TEST(FixedFormat, RangesAndNames) {
  EXPECT_EQ((FixedFormat{8, 4, true}.min_code()), -128);
  EXPECT_EQ((FixedFormat{8, 4, true}.max_code()), 127);
  EXPECT_EQ((FixedFormat{8, 4, false}.min_code()), 0);
  EXPECT_EQ((FixedFormat{8, 4, false}.max_code()), 255);
  EXPECT_EQ((FixedFormat{1, 0, true}.min_code()), -1);
  EXPECT_EQ((FixedFormat{1, 0, true}.max_code()), 0);
  EXPECT_EQ((FixedFormat{32, 0, true}.min_code()), INT32_MIN);
  EXPECT_EQ((FixedFormat{32, 0, false}.max_code()), 4294967295LL);
  EXPECT_EQ((FixedFormat{8, 4, true}.max_abs_code()), 128);
  EXPECT_EQ((FixedFormat{8, 4, false}.max_abs_code()), 255);
  EXPECT_DOUBLE_EQ((FixedFormat{8, 4, true}.max_value()), 127.0 / 16);
  EXPECT_DOUBLE_EQ((FixedFormat{8, -3, true}.step()), 8.0);
  EXPECT_EQ(format_name({8, 4, true}), "s8.4");
  EXPECT_EQ(format_name({4, -2, false}), "u4.-2");
}

TEST(FixedFormat, NaFracIsHalfTheWidth) {
  EXPECT_EQ(resolve_frac_width(8), 4);
  EXPECT_EQ(resolve_frac_width(7), 3);
  EXPECT_EQ(resolve_frac_width(1), 0);
  EXPECT_EQ(resolve_frac_width(32), 16);
}

TEST(FixedFormat, ValidateNamesTheFieldAndTheRange) {
  EXPECT_NO_THROW(validate({1, -62, true}, "weight"));
  EXPECT_NO_THROW(validate({32, 62, false}, "weight"));
  try {
    validate({33, 4, true}, "weight");
    FAIL() << "width 33 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight width 33"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1..32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(validate({0, 0, true}, "data_in"), Error);
  EXPECT_THROW(validate({8, 63, true}, "data_in"), Error);
  EXPECT_THROW(validate({8, -63, true}, "data_in"), Error);
}

TEST(FixedFormat, StorageDtypeIsNarrowestThatHolds) {
  EXPECT_EQ(storage_dtype({1, 0, true}), DType::kInt8);
  EXPECT_EQ(storage_dtype({8, 4, true}), DType::kInt8);
  EXPECT_EQ(storage_dtype({9, 4, true}), DType::kInt16);
  EXPECT_EQ(storage_dtype({16, 4, true}), DType::kInt16);
  EXPECT_EQ(storage_dtype({17, 4, true}), DType::kInt32);
  EXPECT_EQ(storage_dtype({32, 4, true}), DType::kInt32);
  EXPECT_EQ(storage_dtype({8, 4, false}), DType::kUInt8);
  EXPECT_EQ(storage_dtype({9, 4, false}), DType::kInt16);
  EXPECT_EQ(storage_dtype({15, 4, false}), DType::kInt16);
  EXPECT_EQ(storage_dtype({16, 4, false}), DType::kInt32);
  EXPECT_EQ(storage_dtype({31, 4, false}), DType::kInt32);
  EXPECT_EQ(storage_dtype({32, 4, false}), DType::kInt64);
  for (int w = 1; w <= 32; ++w) {
    for (bool s : {true, false}) {
      const FixedFormat f{w, 0, s};
      EXPECT_TRUE(dtype_holds(storage_dtype(f), f)) << format_name(f);
    }
  }
  EXPECT_FALSE(dtype_holds(DType::kInt8, {8, 0, false}));
  EXPECT_FALSE(dtype_holds(DType::kUInt8, {8, 0, true}));
  EXPECT_TRUE(dtype_holds(DType::kInt16, {8, 0, false}));
}

TEST(Quantize, ZeroMapsToZero) {
  for (const FixedFormat& f : test_formats()) {
    for (Rounding r : kAllRoundings) {
      EXPECT_EQ(quantize(0.0f, f, r), 0) << format_name(f);
      EXPECT_EQ(quantize(-0.0f, f, r), 0) << format_name(f);
      EXPECT_EQ(fake_quantize(0.0f, f, r), 0.0f) << format_name(f);
      EXPECT_EQ(dequantize(0, f.frac), 0.0f);
    }
  }
}

TEST(Quantize, RoundTripErrorWithinBoundInsideRange) {
  Rng rng(kSeed);
  for (const FixedFormat& f : test_formats()) {
    if (f.width > 24) continue;  // codes beyond 2^24 are not exact floats: see the next test
    for (Rounding r : kAllRoundings) {
      const double bound =
          (r == Rounding::kFloor ? kFloorRoundTripBoundSteps : kNearestRoundTripBoundSteps) *
          f.step();
      for (int i = 0; i < kSamplesPerFormat; ++i) {
        const float x = uniform_float(rng, f.min_value(), f.max_value());
        const double back = dequantize(quantize(x, f, r), f.frac);
        const double err = std::abs(back - static_cast<double>(x));
        if (r == Rounding::kFloor) {
          ASSERT_LT(err, bound) << format_name(f) << " x=" << x << " seed=" << kSeed;
          ASSERT_LE(back, x) << format_name(f) << " x=" << x;
        } else {
          ASSERT_LE(err, bound) << format_name(f) << " x=" << x << " seed=" << kSeed;
        }
      }
    }
  }
}

TEST(Quantize, WideFormatsRoundTripWithinFloatPrecision) {
  // For w > 24 the code itself is exact but dequantize rounds it once to float32, adding at most
  // half an ulp of the value.
  Rng rng(kSeed + 1);
  for (const FixedFormat& f : test_formats()) {
    if (f.width <= 24) continue;
    for (int i = 0; i < kSamplesPerFormat; ++i) {
      const float x = uniform_float(rng, f.min_value(), f.max_value());
      const int64_t c = quantize(x, f, Rounding::kHalfToEven);
      const double exact = std::ldexp(static_cast<double>(c), -f.frac);
      ASSERT_LE(std::abs(exact - x), kNearestRoundTripBoundSteps * f.step()) << format_name(f);
      const double back = dequantize(c, f.frac);
      ASSERT_LE(std::abs(back - exact), 0.5 * std::ldexp(std::abs(exact), -23)) << format_name(f);
    }
  }
}

TEST(Quantize, QuantizeOfDequantizeIsIdentity) {
  // q(dq(q(x))) == q(x), wherever a code is an exact float32 (|code| <= 2^24).
  Rng rng(kSeed + 2);
  for (const FixedFormat& f : test_formats()) {
    if (f.width > 24) continue;
    for (Rounding r : kAllRoundings) {
      for (int i = 0; i < kSamplesPerFormat; ++i) {
        const float x = uniform_float(rng, 2 * f.min_value() - 1, 2 * f.max_value() + 1);
        const int64_t c = quantize(x, f, r);
        ASSERT_EQ(quantize(dequantize(c, f.frac), f, r), c) << format_name(f) << " x=" << x;
      }
    }
  }
}

TEST(Quantize, FakeQuantizeIsIdempotentForEveryWidth) {
  Rng rng(kSeed + 3);
  for (const FixedFormat& f : test_formats()) {
    for (Rounding r : kAllRoundings) {
      for (int i = 0; i < kSamplesPerFormat / 4; ++i) {
        const float x = uniform_float(rng, 2 * f.min_value() - 1, 2 * f.max_value() + 1);
        const float y = fake_quantize(x, f, r);
        ASSERT_EQ(fake_quantize(y, f, r), y) << format_name(f) << " x=" << x;
      }
    }
  }
}

TEST(Quantize, FakeQuantizeEqualsDequantizeOfQuantize) {
  Rng rng(kSeed + 4);
  for (const FixedFormat& f : test_formats()) {
    for (Rounding r : kAllRoundings) {
      for (int i = 0; i < kSamplesPerFormat / 4; ++i) {
        const float x = uniform_float(rng, 2 * f.min_value() - 1, 2 * f.max_value() + 1);
        const float a = fake_quantize(x, f, r);
        const float b = dequantize(quantize(x, f, r), f.frac);
        // Equal as values (-0.0 == 0.0): the code cannot carry the sign of zero.
        ASSERT_EQ(a, b) << format_name(f) << " x=" << x;
      }
    }
  }
}

TEST(Quantize, Monotonic) {
  Rng rng(kSeed + 5);
  for (const FixedFormat& f : test_formats()) {
    for (Rounding r : kAllRoundings) {
      std::vector<float> xs(512);
      for (float& x : xs) x = uniform_float(rng, 3 * f.min_value() - 2, 3 * f.max_value() + 2);
      std::sort(xs.begin(), xs.end());
      int64_t prev = std::numeric_limits<int64_t>::min();
      float prev_fq = -std::numeric_limits<float>::infinity();
      for (float x : xs) {
        const int64_t c = quantize(x, f, r);
        const float y = fake_quantize(x, f, r);
        ASSERT_GE(c, prev) << format_name(f) << " x=" << x;
        ASSERT_GE(y, prev_fq) << format_name(f) << " x=" << x;
        prev = c;
        prev_fq = y;
      }
    }
  }
}

TEST(Quantize, SaturatesAtBothEnds) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const FixedFormat& f : test_formats()) {
    for (Rounding r : kAllRoundings) {
      const float above = static_cast<float>(f.max_value() + f.step());
      const float below = static_cast<float>(f.min_value() - f.step());
      for (float x : {above, 1e30f, inf, std::numeric_limits<float>::max()}) {
        EXPECT_EQ(quantize(x, f, r), f.max_code()) << format_name(f) << " x=" << x;
        EXPECT_EQ(fake_quantize(x, f, r),
                  static_cast<float>(f.max_code()) / std::ldexp(1.0f, f.frac))
            << format_name(f);
      }
      for (float x : {below, -1e30f, -inf, std::numeric_limits<float>::lowest()}) {
        EXPECT_EQ(quantize(x, f, r), f.min_code()) << format_name(f) << " x=" << x;
      }
    }
  }
  // PyTorch clamps in float32: the top of a signed 32-bit format is fl(2^31 - 1) = 2^31.
  EXPECT_EQ(fake_quantize(1e20f, {32, 0, true}, Rounding::kHalfToEven), 2147483648.0f);
  EXPECT_EQ(quantize(1e20f, {32, 0, true}, Rounding::kHalfToEven), INT32_MAX);
}

TEST(Quantize, NanHasCodeZeroAndStaysNanWhenFake) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (Rounding r : kAllRoundings) {
    EXPECT_EQ(quantize(nan, {8, 4, true}, r), 0);
    EXPECT_TRUE(std::isnan(fake_quantize(nan, {8, 4, true}, r)));
  }
}

TEST(Quantize, SignedVersusUnsigned) {
  const FixedFormat s{4, 1, true}, u{4, 1, false};  // s: [-8, 7] / 2, u: [0, 15] / 2
  EXPECT_EQ(quantize(-1.0f, s, Rounding::kHalfToEven), -2);
  EXPECT_EQ(quantize(-1.0f, u, Rounding::kHalfToEven), 0);  // the ReLU input saturates at 0
  EXPECT_EQ(quantize(5.0f, s, Rounding::kHalfToEven), 7);   // 3.5 is the signed top
  EXPECT_EQ(quantize(5.0f, u, Rounding::kHalfToEven), 10);  // 7.5 is the unsigned top
  EXPECT_EQ(quantize(9.0f, u, Rounding::kHalfToEven), 15);
  // On the common range both agree.
  for (int k = 0; k <= 7; ++k) {
    const float x = 0.5f * k + 0.1f;
    EXPECT_EQ(quantize(x, s, Rounding::kHalfToEven), quantize(x, u, Rounding::kHalfToEven));
  }
  // A negative value that rounds to zero keeps its sign through unsigned fake-quant, as PyTorch.
  EXPECT_TRUE(std::signbit(fake_quantize(-0.1f, u, Rounding::kHalfToEven)));
}

TEST(Quantize, FracGreaterThanWidthAndNegativeFrac) {
  const FixedFormat fine{8, 12, true};  // step 2^-12, range [-1/32, 127/4096]
  EXPECT_EQ(quantize(0.01f, fine, Rounding::kHalfToEven), 41);  // 40.96
  EXPECT_EQ(quantize(0.5f, fine, Rounding::kHalfToEven), 127);
  EXPECT_EQ(fake_quantize(0.5f, fine, Rounding::kHalfToEven), 127.0f / 4096);
  const FixedFormat coarse{8, -3, true};                         // step 8, range [-1024, 1016]
  EXPECT_EQ(quantize(20.0f, coarse, Rounding::kHalfToEven), 2);  // 2.5 -> 2
  EXPECT_EQ(quantize(28.0f, coarse, Rounding::kHalfToEven), 4);  // 3.5 -> 4
  EXPECT_EQ(quantize(-20.0f, coarse, Rounding::kHalfToEven), -2);
  EXPECT_EQ(quantize(20.0f, coarse, Rounding::kHalfAwayFromZero), 3);
  EXPECT_EQ(quantize(-20.0f, coarse, Rounding::kHalfAwayFromZero), -3);
  EXPECT_EQ(quantize(-20.0f, coarse, Rounding::kFloor), -3);
  EXPECT_EQ(fake_quantize(28.0f, coarse, Rounding::kHalfToEven), 32.0f);
  EXPECT_EQ(fake_quantize(5000.0f, coarse, Rounding::kHalfToEven), 1016.0f);
}

TEST(Rounding, TiesOfEachMode) {
  struct Case {
    float x;
    float even, away, floor;
  };
  const Case cases[] = {{2.5f, 2, 3, 2},     {3.5f, 4, 4, 3},     {-2.5f, -2, -3, -3},
                        {-3.5f, -4, -4, -4}, {0.5f, 0, 1, 0},     {-0.5f, -0.0f, -1, -1},
                        {1.25f, 1, 1, 1},    {-1.75f, -2, -2, -2}};
  for (const Case& c : cases) {
    EXPECT_EQ(round_to_integral(c.x, Rounding::kHalfToEven), c.even) << c.x;
    EXPECT_EQ(round_to_integral(c.x, Rounding::kHalfAwayFromZero), c.away) << c.x;
    EXPECT_EQ(round_to_integral(c.x, Rounding::kFloor), c.floor) << c.x;
  }
  // 0.5 - 2^-25: floor(x + 0.5) would give 1.
  EXPECT_EQ(round_to_integral(0.49999997f, Rounding::kHalfAwayFromZero), 0.0f);
}

// Independent oracle for requantize: the exact value code * 2^(to.frac - from) as a double
// (exact while |code| < 2^53 and the shift is moderate), rounded and clamped in double.
int64_t requantize_via_double(int64_t code, int from, const FixedFormat& to, Rounding r) {
  const double v = std::ldexp(static_cast<double>(code), to.frac - from);
  double q = r == Rounding::kHalfToEven         ? std::nearbyint(v)
             : r == Rounding::kHalfAwayFromZero ? std::round(v)
                                                : std::floor(v);
  q = std::clamp(q, static_cast<double>(to.min_code()), static_cast<double>(to.max_code()));
  return static_cast<int64_t>(q);
}

TEST(Requantize, EqualsExactRoundingOfTheRealValue) {
  Rng rng(kSeed + 6);
  for (const FixedFormat& to : test_formats()) {
    for (Rounding r : kAllRoundings) {
      for (int i = 0; i < 300; ++i) {
        const int from = static_cast<int>(rng.uniform_int(90)) - 40;
        const int bits = 1 + static_cast<int>(rng.uniform_int(52));
        const int64_t code =
            static_cast<int64_t>(rng.uniform_int(uint64_t{1} << bits)) - (int64_t{1} << (bits - 1));
        ASSERT_EQ(requantize(code, from, to, r), requantize_via_double(code, from, to, r))
            << "code=" << code << " from=" << from << " to=" << format_name(to)
            << " rounding=" << rounding_name(r);
      }
    }
  }
}

TEST(Requantize, EqualsQuantizeOfTheSameValue) {
  Rng rng(kSeed + 7);
  const FixedFormat to{6, 2, true};
  for (Rounding r : kAllRoundings) {
    for (int i = 0; i < 2000; ++i) {
      const int64_t code = static_cast<int64_t>(rng.uniform_int(4096)) - 2048;  // s12.7
      const float x = std::ldexp(static_cast<float>(code), -7);
      ASSERT_EQ(requantize(code, 7, to, r), quantize(x, to, r)) << code;
    }
  }
}

TEST(RoundingShiftRight, ExtremesAreExact) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(rounding_shift_right(min, 63, Rounding::kFloor), -1);
  EXPECT_EQ(rounding_shift_right(min, 63, Rounding::kHalfToEven), -1);
  EXPECT_EQ(rounding_shift_right(min, 64, Rounding::kHalfToEven), 0);         // -0.5 -> 0
  EXPECT_EQ(rounding_shift_right(min, 64, Rounding::kHalfAwayFromZero), -1);  // -0.5 -> -1
  EXPECT_EQ(rounding_shift_right(min, 64, Rounding::kFloor), -1);
  EXPECT_EQ(rounding_shift_right(max, 63, Rounding::kHalfToEven), 1);
  EXPECT_EQ(rounding_shift_right(max, 64, Rounding::kHalfToEven), 0);
  EXPECT_EQ(rounding_shift_right(-1, 200, Rounding::kFloor), -1);
  EXPECT_EQ(rounding_shift_right(-1, 200, Rounding::kHalfAwayFromZero), 0);
  EXPECT_EQ(rounding_shift_right(5, 1, Rounding::kHalfToEven), 2);
  EXPECT_EQ(rounding_shift_right(7, 1, Rounding::kHalfToEven), 4);
  EXPECT_EQ(rounding_shift_right(-5, 1, Rounding::kHalfToEven), -2);
  EXPECT_EQ(rounding_shift_right(-5, 1, Rounding::kHalfAwayFromZero), -3);
  EXPECT_EQ(rounding_shift_right(-5, 1, Rounding::kFloor), -3);
  EXPECT_EQ(rounding_shift_right(3, -4, Rounding::kFloor), 48);
  EXPECT_EQ(rounding_shift_right(1, -62, Rounding::kFloor), int64_t{1} << 62);
  EXPECT_EQ(rounding_shift_right(2, -62, Rounding::kFloor), max);  // saturates
  EXPECT_EQ(rounding_shift_right(-3, -62, Rounding::kFloor), min);
  EXPECT_EQ(rounding_shift_right(-1, -63, Rounding::kFloor), min);
  EXPECT_EQ(rounding_shift_right(0, -100, Rounding::kFloor), 0);
}

}  // namespace
}  // namespace qsearch::quant
