// The vectorised buffer/tensor conversions (quant/quantize.h) equal the scalar spec element by
// element, bit for bit, including the special values the vector paths treat separately.
#include "quant/quantize.h"

#include <gtest/gtest.h>

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
