// The search's weight file (runtime/weight_file.h): constants moved into it keep their shape and
// bytes, their released pages read back the same, and release_file_pages leaves memory that is
// not in a weight file alone.
#include "runtime/weight_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace qsearch::runtime {
namespace {

Tensor ramp(int64_t n, float scale) {
  Tensor t({n / 4, 4}, DType::kFloat32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i % 9973) * scale - 3.0f;
  return t;
}

TEST(WeightFile, ConstantsKeepTheirBytesAndReleasedPagesReadBackTheSame) {
  const std::string dir = (std::filesystem::current_path() / "").string();
  ir::Graph g;
  g.add_input("x", {kDynamic, 4});
  const int64_t big = (int64_t{3} << 20) / 4 + 8, small = 1000;  // 3 MB + 32 bytes, 4 KB
  const ir::ValueId a = g.add_constant("a", ramp(big, 0.5f));
  const ir::ValueId b = g.add_constant("b", ramp(small, 0.25f));
  const Tensor want_a = g.value(a).data.clone(), want_b = g.value(b).data.clone();
  const int64_t moved = map_constants_to_file(g, {dir});
  if (moved == 0) GTEST_SKIP() << "no disk file system for the weight file here";
  EXPECT_EQ(moved, big * 4);  // `b` is below the 64 KB minimum
  const Tensor& got_a = g.value(a).data;
  EXPECT_EQ(got_a.shape(), want_a.shape());
  EXPECT_TRUE(in_weight_file(got_a.raw(), got_a.nbytes()));
  EXPECT_FALSE(in_weight_file(g.value(b).data.raw(), g.value(b).data.nbytes()));
  EXPECT_EQ(std::memcmp(got_a.raw(), want_a.raw(), want_a.nbytes()), 0);
  // Released (whole pages, then an unaligned middle part): the file gives the same bytes back.
  release_file_pages(got_a.raw(), got_a.nbytes());
  EXPECT_EQ(std::memcmp(got_a.raw(), want_a.raw(), want_a.nbytes()), 0);
  release_file_pages(got_a.data<float>() + 12345, 777777);
  EXPECT_EQ(std::memcmp(got_a.raw(), want_a.raw(), want_a.nbytes()), 0);
  // Memory outside a weight file is never touched (MADV_DONTNEED would zero it).
  const Tensor anon = ramp(big, 0.5f);
  release_file_pages(anon.raw(), anon.nbytes());
  EXPECT_EQ(std::memcmp(anon.raw(), want_a.raw(), want_a.nbytes()), 0);
  EXPECT_EQ(std::memcmp(g.value(b).data.raw(), want_b.raw(), want_b.nbytes()), 0);
  // The mapping goes with the last copy of its tensor.
  const void* p = got_a.raw();
  const size_t n = got_a.nbytes();
  g.value(a).data = Tensor();
  EXPECT_FALSE(in_weight_file(p, n));
}

}  // namespace
}  // namespace qsearch::runtime
