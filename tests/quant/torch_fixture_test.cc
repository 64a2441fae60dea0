// qsearch's fixed-point conversions against values computed by real PyTorch
// (tools/make_quant_fixtures.py -> tests/fixtures/quant/). Equality is bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "quant/fixed_point.h"
#include "quant/quantize.h"
#include "support/source_dir.h"

namespace qsearch::quant {
namespace {

const std::string kFixtureDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/quant/";

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::vector<uint32_t> read_hex(std::istream& in, size_t n) {
  std::vector<uint32_t> v(n);
  for (auto& x : v) {
    in >> std::hex >> x >> std::dec;
  }
  return v;
}

std::string skip_comments(std::istream& in) {
  std::string word;
  while (in >> word) {
    if (word[0] != '#') return word;
    std::string rest;
    std::getline(in, rest);
  }
  return "";
}

TEST(TorchFixtures, RoundHalfToEvenMatchesTorchRound) {
  std::ifstream in(kFixtureDir + "round_ties.txt");
  ASSERT_TRUE(in) << "missing " << kFixtureDir << "round_ties.txt";
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    uint32_t x = 0, y = 0;
    ls >> std::hex >> x >> y;
    EXPECT_EQ(to_bits(round_to_integral(from_bits(x), Rounding::kHalfToEven)), y)
        << "x=" << from_bits(x) << " torch.round=" << from_bits(y);
    ++n;
  }
  EXPECT_GE(n, 16);
}

struct FixtureFormat {
  FixedFormat format;
  Rounding rounding;
  std::vector<uint32_t> expected;
};

void load_fake_quant(std::vector<uint32_t>* inputs, std::vector<FixtureFormat>* formats) {
  std::ifstream in(kFixtureDir + "fake_quant.txt");
  ASSERT_TRUE(in) << "missing " << kFixtureDir << "fake_quant.txt";
  ASSERT_EQ(skip_comments(in), "inputs");
  size_t n = 0;
  in >> n;
  *inputs = read_hex(in, n);
  std::string word;
  while (in >> word) {
    ASSERT_EQ(word, "format");
    FixtureFormat f;
    int s = 0;
    std::string rounding;
    in >> f.format.width >> f.format.frac >> s >> rounding;
    f.format.is_signed = s != 0;
    ASSERT_TRUE(rounding == "half_to_even" || rounding == "floor") << rounding;
    f.rounding = rounding == "floor" ? Rounding::kFloor : Rounding::kHalfToEven;
    f.expected = read_hex(in, n);
    formats->push_back(std::move(f));
  }
}

TEST(TorchFixtures, FakeQuantizeEqualsMaseIntegerQuantizeBitForBit) {
  std::vector<uint32_t> inputs;
  std::vector<FixtureFormat> formats;
  load_fake_quant(&inputs, &formats);
  ASSERT_GE(inputs.size(), 2000u);
  ASSERT_GE(formats.size(), 10u);
  for (const FixtureFormat& f : formats) {
    std::vector<float> x(inputs.size()), y(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) x[i] = from_bits(inputs[i]);
    fake_quantize(x, f.format, f.rounding, y);  // the vectorised version
    int mismatches = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const uint32_t scalar = to_bits(fake_quantize(x[i], f.format, f.rounding));
      if (scalar != f.expected[i] || to_bits(y[i]) != f.expected[i]) {
        if (++mismatches <= 5) {
          ADD_FAILURE() << format_name(f.format) << " " << rounding_name(f.rounding)
                        << " x=" << x[i] << " (0x" << std::hex << inputs[i] << ") torch=0x"
                        << f.expected[i] << " scalar=0x" << scalar << " vector=0x" << to_bits(y[i])
                        << std::dec;
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << format_name(f.format);
  }
}

TEST(TorchFixtures, CodesDequantizeToTorchValues) {
  // The integer route (quantize to codes, dequantize) lands on PyTorch's value too, except
  // where a code cannot say it: NaN and the sign of zero.
  std::vector<uint32_t> inputs;
  std::vector<FixtureFormat> formats;
  load_fake_quant(&inputs, &formats);
  for (const FixtureFormat& f : formats) {
    std::vector<float> x(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) x[i] = from_bits(inputs[i]);
    std::vector<int64_t> codes(x.size());
    quantize(x, f.format, f.rounding, codes.data(), DType::kInt64);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const float torch_value = from_bits(f.expected[i]);
      if (std::isnan(torch_value)) {
        EXPECT_EQ(codes[i], 0);
        continue;
      }
      ASSERT_EQ(dequantize(codes[i], f.format.frac), torch_value)
          << format_name(f.format) << " x=" << x[i] << " code=" << codes[i];
    }
  }
}

}  // namespace
}  // namespace qsearch::quant
