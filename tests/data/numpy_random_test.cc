#include "data/numpy_random.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "data/sha256.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::fixture;
using testing::read_raw;

TEST(Mt19937, ReferenceOutputs) {
  // The reference implementation's default seed 5489: first outputs of genrand_int32.
  Mt19937 mt(5489);
  EXPECT_EQ(mt.next_u32(), 3499211612u);
  EXPECT_EQ(mt.next_u32(), 581869302u);
  EXPECT_EQ(mt.next_u32(), 3890346734u);
  // The 10000th output of the default-seeded generator (C++ std::mt19937's specified value).
  Mt19937 mt2(5489);
  uint32_t v = 0;
  for (int i = 0; i < 10000; ++i) v = mt2.next_u32();
  EXPECT_EQ(v, 4123659995u);
}

TEST(LegacyPermutation, MatchesNumpy) {
  for (auto [seed, n] : std::vector<std::pair<uint32_t, int64_t>>{{42, 1},
                                                                  {42, 2},
                                                                  {42, 3},
                                                                  {42, 5},
                                                                  {42, 10},
                                                                  {42, 100},
                                                                  {42, 1000},
                                                                  {42, 4097},
                                                                  {0, 1000}}) {
    auto want = read_raw<int64_t>(
        fixture("numpy/perm_seed" + std::to_string(seed) + "_n" + std::to_string(n) + ".i64"));
    ASSERT_EQ(static_cast<int64_t>(want.size()), n);
    EXPECT_EQ(legacy_permutation(n, seed), want) << "seed " << seed << " n " << n;
  }
}

TEST(LegacyPermutation, MillionMatchesNumpyHash) {
  std::vector<int64_t> p = legacy_permutation(1000000, 42);
  std::string want;
  std::ifstream(fixture("numpy/perm_seed42_n1000000.sha256")) >> want;
  Sha256 h;
  h.update(p.data(), p.size() * sizeof(int64_t));  // little-endian int64, like numpy's bytes
  EXPECT_EQ(h.hex_digest(), want);
}

TEST(TrainTestSplit, MatchesSklearn) {
  std::ifstream in(fixture("numpy/split_indices.txt"));
  std::string line;
  int cases = 0;
  auto parse = [](const std::string& s) {
    std::vector<int64_t> v;
    std::stringstream ss(s);
    std::string tok;
    while (std::getline(ss, tok, ',')) v.push_back(std::stoll(tok));
    return v;
  };
  while (std::getline(in, line)) {
    const size_t a = line.find(';'), b = line.find(';', a + 1);
    const int64_t n = std::stoll(line.substr(0, a));
    const auto idx = train_test_split_indices(n, 0.2, 42);
    EXPECT_EQ(idx.train, parse(line.substr(a + 1, b - a - 1))) << "n " << n;
    EXPECT_EQ(idx.test, parse(line.substr(b + 1))) << "n " << n;
    ++cases;
  }
  EXPECT_EQ(cases, 7);
}

TEST(TrainTestSplit, TooFewRowsIsAnError) {
  testing::expect_error([] { train_test_split_indices(1, 0.2, 42); }, {"cannot split 1 rows"});
}

}  // namespace
}  // namespace qsearch::data
