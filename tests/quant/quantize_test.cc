// The vectorised buffer/tensor conversions (quant/quantize.h) equal the scalar spec element by
// element, bit for bit, including the special values the vector paths treat separately.
#include "quant/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.h"

namespace qsearch::quant {
namespace {

constexpr uint64_t kSeed = 99;
constexpr int kValues = 1003;  // not a multiple of 8: exercises the scalar tails

const Rounding kAllRoundings[] = {Rounding::kHalfToEven, Rounding::kHalfAwayFromZero,
                                  Rounding::kFloor};

std::vector<float> mixed_values(const FixedFormat& f, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          0.49999997f,
                          -0.49999997f};
  for (int k = -8; k < 8; ++k) v.push_back(std::ldexp(k + 0.5f, -f.frac));  // exact ties
  while (static_cast<int>(v.size()) < kValues) {
    const double span = 1.5 * (f.max_value() - f.min_value()) + 1;
    v.push_back(static_cast<float>(rng.uniform(-span, span)));
  }
  return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(VectorQuantize, EqualsScalarForEveryCodeDtype) {
  for (int w : {1, 4, 8, 12, 16, 24, 25, 31, 32}) {
    for (bool s : {true, false}) {
      for (int frac : {-3, w / 2, w + 3}) {
        const FixedFormat f{w, frac, s};
        const std::vector<float> x = mixed_values(f, kSeed + w);
        for (Rounding r : kAllRoundings) {
          Tensor codes = quantize(Tensor::from<float>({kValues}, x), f, r);
          ASSERT_EQ(codes.dtype(), storage_dtype(f));
          std::vector<int64_t> wide(x.size());
          quantize(x, f, r, wide.data(), DType::kInt64);
          for (int i = 0; i < kValues; ++i) {
            const int64_t expect = quantize(x[i], f, r);
            ASSERT_EQ(load_code(codes.raw(), codes.dtype(), i), expect)
                << format_name(f) << " x=" << x[i] << " " << rounding_name(r);
            ASSERT_EQ(wide[i], expect);
          }
        }
      }
    }
  }
}

TEST(VectorFakeQuantize, EqualsScalarBitForBit) {
  for (int w : {1, 2, 8, 16, 26, 32}) {
    for (bool s : {true, false}) {
      const FixedFormat f{w, w / 2, s};
      const std::vector<float> x = mixed_values(f, kSeed + 100 + w);
      for (Rounding r : kAllRoundings) {
        Tensor y = fake_quantize(Tensor::from<float>({kValues}, x), f, r);
        for (int i = 0; i < kValues; ++i) {
          ASSERT_TRUE(same_bits(y.data<float>()[i], fake_quantize(x[i], f, r)))
              << format_name(f) << " x=" << x[i] << " " << rounding_name(r);
        }
        std::vector<float> in_place = x;
        fake_quantize(in_place, f, r, in_place);
        for (int i = 0; i < kValues; ++i) ASSERT_TRUE(same_bits(in_place[i], y.data<float>()[i]));
      }
    }
  }
}

TEST(VectorDequantize, EqualsScalar) {
  Rng rng(kSeed + 7);
  std::vector<int32_t> codes(kValues);
  for (auto& c : codes) c = static_cast<int32_t>(rng.next_u64());
  for (int frac : {-62, -7, 0, 5, 31, 62}) {
    Tensor out = dequantize(Tensor::from<int32_t>({kValues}, codes), frac);
    for (int i = 0; i < kValues; ++i) {
      ASSERT_TRUE(same_bits(out.data<float>()[i], dequantize(codes[i], frac)))
          << codes[i] << " frac " << frac;
    }
  }
}

// Edge values for one format: every tie k + 1/2 of the code grid from below the range to above it
// (at most 40 around 0 and 40 at each end), with their float neighbours, the bounds and their
// neighbours, values that round to -0.0, +-0, +-inf, NaN, subnormals.
std::vector<float> edge_values(const FixedFormat& f) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          std::ldexp(-0.25f, -f.frac),
                          std::ldexp(-0.5f, -f.frac)};
  auto add_tie = [&](int64_t k) {
    const float t = std::ldexp(static_cast<float>(k) + 0.5f, -f.frac);
    v.push_back(t);
    v.push_back(std::nextafter(t, -std::numeric_limits<float>::infinity()));
    v.push_back(std::nextafter(t, std::numeric_limits<float>::infinity()));
  };
  const int64_t lo = f.min_code(), hi = f.max_code();
  for (int64_t k = -20; k < 20; ++k) add_tie(k);
  for (int64_t k = lo - 20; k < lo + 20; ++k) add_tie(k);
  for (int64_t k = hi - 20; k < hi + 20; ++k) add_tie(k);
  for (int64_t code : {lo, hi}) {
    const float b = std::ldexp(static_cast<float>(code), -f.frac);
    v.push_back(b);
    v.push_back(std::nextafter(b, -std::numeric_limits<float>::infinity()));
    v.push_back(std::nextafter(b, std::numeric_limits<float>::infinity()));
  }
  return v;
}

// The vector quantize (quant/quantize_avx2.h, 8 lanes) against the scalar spec at every width
// and every frac width from -4 to width + 6, signed and unsigned, each rounding, into the
// storage dtype and the wider int32 / int64: ties on both sides of zero and at both ends of the
// range (the clamps), their neighbours, -0.0 and values rounding to it, +-inf, NaN. Each value
// is placed at every lane position of a vector (a rotation), not only in the scalar tail.
TEST(VectorQuantize, TiesAtEveryFracClampsAndSignedZeroEqualScalar) {
  int64_t checked = 0;
  for (int w = 1; w <= 32; ++w) {
    for (bool s : {true, false}) {
      for (int frac = -4; frac <= w + 6; ++frac) {
        const FixedFormat f{w, frac, s};
        const std::vector<float> base = edge_values(f);
        for (int rot : {0, 5}) {
          std::vector<float> x(base.size() + static_cast<size_t>(rot), 1.0f);
          std::copy(base.begin(), base.end(), x.begin() + rot);
          for (Rounding r : kAllRoundings) {
            for (DType t : {storage_dtype(f), DType::kInt32, DType::kInt64}) {
              if (!dtype_holds(t, f)) continue;
              std::vector<int64_t> codes(x.size());
              quantize(x, f, r, codes.data(), t);
              for (size_t i = 0; i < x.size(); ++i) {
                ASSERT_EQ(load_code(codes.data(), t, static_cast<int64_t>(i)), quantize(x[i], f, r))
                    << format_name(f) << " x=" << x[i] << " " << rounding_name(r) << " into "
                    << dtype_name(t);
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 1000000);
}

// The vector dequantize of every code dtype against the scalar spec: all int8 / uint8 codes, the
// int16 range's ends and random codes, int32 codes around 2^24 (where float32 rounds) and at both
// ends, each at frac widths from -62 to 62.
TEST(VectorDequantize, EveryCodeDtypeEqualsScalar) {
  Rng rng(kSeed + 9);
  for (DType t : {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kInt32, DType::kInt64}) {
    std::vector<int64_t> values;
    switch (t) {
      case DType::kInt8:
        for (int64_t c = -128; c <= 127; ++c) values.push_back(c);
        break;
      case DType::kUInt8:
        for (int64_t c = 0; c <= 255; ++c) values.push_back(c);
        break;
      case DType::kInt16:
        for (int64_t c = -32768; c < -32700; ++c) values.push_back(c);
        for (int64_t c = 32700; c <= 32767; ++c) values.push_back(c);
        for (int i = 0; i < 300; ++i) values.push_back(static_cast<int16_t>(rng.next_u64()));
        break;
      default:
        for (int64_t base :
             {int64_t{1} << 24, -(int64_t{1} << 24), int64_t{INT32_MAX} - 40, int64_t{INT32_MIN}}) {
          for (int64_t c = base - 20; c < base + 40; ++c) {
            values.push_back(std::clamp<int64_t>(c, INT32_MIN, INT32_MAX));
          }
        }
        for (int i = 0; i < 300; ++i) values.push_back(static_cast<int32_t>(rng.next_u64()));
        break;
    }
    std::vector<int64_t> buf(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      store_code(buf.data(), t, static_cast<int64_t>(i), values[i]);
    }
    for (int frac : {-62, -9, -1, 0, 1, 4, 7, 15, 24, 31, 62}) {
      std::vector<float> out(values.size());
      dequantize(buf.data(), t, static_cast<int64_t>(values.size()), frac, out.data());
      for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_TRUE(same_bits(out[i], dequantize(values[i], frac)))
            << dtype_name(t) << " code " << values[i] << " frac " << frac;
      }
    }
  }
}

TEST(VectorRequantize, EqualsScalarAcrossDtypes) {
  Rng rng(kSeed + 8);
  std::vector<int64_t> in(kValues);
  for (auto& c : in) c = static_cast<int64_t>(rng.next_u64()) >> rng.uniform_int(63);
  Tensor t = Tensor::from<int64_t>({kValues}, in);
  for (const FixedFormat to : {FixedFormat{8, 2, true}, FixedFormat{8, 2, false},
                               FixedFormat{12, -4, true}, FixedFormat{32, 30, false}}) {
    for (Rounding r : kAllRoundings) {
      Tensor out = requantize(t, 17, to, r);
      ASSERT_EQ(out.dtype(), storage_dtype(to));
      for (int i = 0; i < kValues; ++i) {
        ASSERT_EQ(load_code(out.raw(), out.dtype(), i), requantize(in[i], 17, to, r));
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::quant
