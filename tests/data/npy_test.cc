// The .npy / .npz reader against files numpy wrote (tools/make_npz_fixtures.py), and against
// damaged copies of them: every damage is a one-line Error naming the file, the member and a fix.
#include "data/npy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

std::string npz(const std::string& name) { return fixture("npz/" + name); }

// np.arange(24).reshape(2, 3, 4), minus 12 for signed types, as doubles in C order.
std::vector<double> expected(bool is_signed) {
  std::vector<double> v;
  for (int i = 0; i < 24; ++i) v.push_back(is_signed ? i - 12 : i);
  return v;
}

template <typename T>
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v;
  for (T x : t.span<T>()) v.push_back(static_cast<double>(x));
  return v;
}

struct TypeCase {
  const char* code;
  DType dtype;
  bool is_signed;
};

TEST(Npy, ReadsEverySupportedDtypeInBothByteOrders) {
  const TypeCase cases[] = {
      {"f4", DType::kFloat32, true}, {"f8", DType::kFloat64, true}, {"i1", DType::kInt8, true},
      {"u1", DType::kUInt8, false},  {"i2", DType::kInt16, true},   {"i4", DType::kInt32, true},
      {"i8", DType::kInt64, true},   {"u2", DType::kInt32, false},  {"u4", DType::kInt64, false}};
  for (const TypeCase& c : cases) {
    for (const char* order : {"le", "be"}) {
      SCOPED_TRACE(std::string(c.code) + "_" + order);
      const Tensor t = read_npy(npz(std::string("a_") + c.code + "_" + order + ".npy"));
      EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
      ASSERT_EQ(t.dtype(), c.dtype);
      std::vector<double> got;
      switch (c.dtype) {
        case DType::kFloat32:
          got = as_doubles<float>(t);
          break;
        case DType::kFloat64:
          got = as_doubles<double>(t);
          break;
        case DType::kInt8:
          got = as_doubles<int8_t>(t);
          break;
        case DType::kUInt8:
          got = as_doubles<uint8_t>(t);
          break;
        case DType::kInt16:
          got = as_doubles<int16_t>(t);
          break;
        case DType::kInt32:
          got = as_doubles<int32_t>(t);
          break;
        case DType::kInt64:
          got = as_doubles<int64_t>(t);
          break;
      }
      EXPECT_EQ(got, expected(c.is_signed));
    }
  }
}

TEST(Npy, BoolBecomesUint8ZeroOrOne) {
  for (const char* f : {"a_b1_le.npy", "a_b1_be.npy"}) {
    const Tensor t = read_npy(npz(f));
    ASSERT_EQ(t.dtype(), DType::kUInt8);
    for (int i = 0; i < 24; ++i) EXPECT_EQ(t.data<uint8_t>()[i], i % 3 == 0 ? 1 : 0) << i;
  }
}

TEST(Npy, FortranOrderIsTransposedIntoCOrder) {
  const Tensor t = read_npy(npz("a_f4_fortran.npy"));
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(as_doubles<float>(t), expected(true));
}

TEST(Npy, ReadsFormatVersions2And3) {
  for (const char* f : {"a_f4_v2.npy", "a_f4_v3.npy"}) {
    const Tensor t = read_npy(npz(f));
    EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
    EXPECT_EQ(as_doubles<float>(t), expected(true)) << f;
  }
}

TEST(Npy, DamageIsAnErrorNamingTheFileAndTheFix) {
  TempDir dir;
  const std::string good = read_bytes(npz("a_f4_le.npy"));
  auto write = [&](const std::string& name, const std::string& bytes) {
    write_bytes(dir / name, bytes);
    return dir / name;
  };
  const std::string truncated = write("truncated.npy", good.substr(0, good.size() - 4));
  expect_error([&] { read_npy(truncated); }, {truncated, "truncated", "numpy.save"});
  const std::string no_magic = write("no_magic.npy", "hello world, not numpy");
  expect_error([&] { read_npy(no_magic); }, {no_magic, "magic"});
  std::string f2 = good;
  f2.replace(f2.find("<f4"), 3, "<f2");
  const std::string half = write("half.npy", f2);
  expect_error([&] { read_npy(half); }, {half, "'<f2'", "astype"});
  std::string v9 = good;
  v9[6] = 9;
  const std::string version = write("v9.npy", v9);
  expect_error([&] { read_npy(version); }, {version, "version 9.0"});
  std::string shape = good;
  shape.replace(shape.find("(2, 3, 4)"), 9, "(2, x, 4)");
  const std::string bad_shape = write("shape.npy", shape);
  expect_error([&] { read_npy(bad_shape); }, {bad_shape, "'shape'"});
  std::string huge = good;
  huge.replace(huge.find("(2, 3, 4)"), 9, "(99999999999999)");
  const std::string big = write("huge.npy", huge);
  expect_error([&] { read_npy(big); }, {big, "truncated"});
  std::string rec = good;
  rec.replace(rec.find("'<f4'"), 5, "[('a','<f4')]");
  const std::string structured = write("rec.npy", rec);
  expect_error([&] { read_npy(structured); }, {structured, "structured"});
  expect_error([&] { read_npy(dir / "missing.npy"); }, {dir / "missing.npy"});
}

TEST(Npz, ReadsStoredDeflatedAndZip64Archives) {
  for (const char* f : {"arrays.npz", "arrays_compressed.npz"}) {
    SCOPED_TRACE(f);
    const NpzFile z = NpzFile::open(npz(f));
    EXPECT_EQ(z.names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(as_doubles<float>(z.array("a")), expected(true));
    const Tensor b = z.array("b");
    EXPECT_EQ(b.dtype(), DType::kInt64);
    EXPECT_EQ(as_doubles<int64_t>(b), (std::vector<double>{0, 7, 14, 21, 28}));
    const Tensor c = z.array("c");
    EXPECT_EQ(c.shape(), (Shape{2, 2}));
    EXPECT_EQ(as_doubles<uint8_t>(c), (std::vector<double>{1, 0, 0, 1}));
  }
  const NpzFile z = NpzFile::open(npz("zip64.npz"));
  EXPECT_EQ(z.names(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(as_doubles<float>(z.array("a")), expected(true));
}

// Reading the first rows only (qsearch eval --num-samples): the same values as the whole array's
// first rows, the array's full row count reported, and every byte still checked.
TEST(Npz, FirstRowsOnlyAreTheWholeArraysFirstRows) {
  for (const char* f : {"arrays.npz", "arrays_compressed.npz", "zip64.npz"}) {
    SCOPED_TRACE(f);
    const NpzFile z = NpzFile::open(npz(f));
    const std::vector<double> all = expected(true);
    for (int64_t keep : {0, 1, 2, 5}) {
      SCOPED_TRACE(keep);
      int64_t rows = -1;
      const Tensor a = z.array("a", keep, &rows);
      EXPECT_EQ(rows, 2);
      const int64_t kept = std::min<int64_t>(keep, 2);
      EXPECT_EQ(a.shape(), (Shape{kept, 3, 4}));
      EXPECT_EQ(as_doubles<float>(a), std::vector<double>(all.begin(), all.begin() + 12 * kept));
    }
    if (z.has("b")) {
      int64_t rows = -1;
      EXPECT_EQ(as_doubles<int64_t>(z.array("b", 3, &rows)), (std::vector<double>{0, 7, 14}));
      EXPECT_EQ(rows, 5);
    }
  }
  // Fortran order is read whole (its first rows are not contiguous in the file).
  int64_t rows = -1;
  const Tensor f = read_npy(npz("a_f4_fortran.npy"), 1, &rows);
  EXPECT_EQ(f.shape(), read_npy(npz("a_f4_fortran.npy")).shape());
  EXPECT_EQ(rows, f.dim(0));
  const Tensor c = read_npy(npz("a_f4_le.npy"), 1, &rows);
  EXPECT_EQ(c.shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(rows, 2);
}

TEST(Npz, FirstRowsOnlyStillChecksTheRestOfTheMember) {
  TempDir dir;
  std::string stored = read_bytes(npz("arrays.npz"));
  // The last byte of a's data (row 1), which a reader of row 0 does not keep.
  const size_t a = stored.find("\x93NUMPY");
  const size_t header = static_cast<unsigned char>(stored[a + 8]) + 10;
  stored[a + header + 95] ^= 0x40;
  write_bytes(dir / "crc.npz", stored);
  expect_error([&] { NpzFile::open(dir / "crc.npz").array("a", 1); },
               {dir / "crc.npz", "member 'a.npy'", "CRC"});
  std::string deflated = read_bytes(npz("arrays_compressed.npz"));
  deflated[60] ^= 0xff;
  write_bytes(dir / "stream.npz", deflated);
  expect_error([&] { NpzFile::open(dir / "stream.npz").array("a", 1); },
               {dir / "stream.npz", "member 'a.npy'"});
}

// A directory entry declaring more bytes than its compressed data can inflate to (2^50 here) is
// refused with the clear error before anything is allocated for those bytes (a reserve of the
// declared size threw std::bad_alloc first).
TEST(Npz, AnImpossibleDeclaredSizeIsAnErrorBeforeAnyAllocation) {
  TempDir dir;
  std::string z = read_bytes(npz("zip64.npz"));
  const size_t entry = z.find("PK\x01\x02");
  ASSERT_NE(entry, std::string::npos);
  z[entry + 10] = 8;  // deflate
  // The zip64 extra field after the name ("a.npy"): id, length, then the uncompressed size.
  const size_t size_at = entry + 46 + 5 + 4;
  ASSERT_EQ(static_cast<unsigned char>(z[size_at]), 224);
  for (int i = 0; i < 8; ++i) z[size_at + i] = static_cast<char>(i == 6 ? 0x04 : 0);  // 2^50
  write_bytes(dir / "huge.npz", z);
  expect_error([&] { NpzFile::open(dir / "huge.npz").array("a"); },
               {dir / "huge.npz", "member 'a.npy'", "declares a size", "numpy.savez"});
}

TEST(Npz, AMissingArrayListsTheArchivesArrays) {
  const NpzFile z = NpzFile::open(npz("arrays.npz"));
  expect_error([&] { z.array("x"); }, {"arrays.npz", "no array 'x'", "a, b, c"});
}

TEST(Npz, DamageIsAnErrorNamingTheFileTheMemberAndTheFix) {
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& bytes) {
    write_bytes(dir / name, bytes);
    return dir / name;
  };
  const std::string stored = read_bytes(npz("arrays.npz"));
  const std::string deflated = read_bytes(npz("arrays_compressed.npz"));
  // A flipped byte inside member a's data: the CRC catches it (stored) ...
  std::string flip = stored;
  flip[flip.find("\x93NUMPY") + 130] ^= 0x40;
  const std::string crc = write("crc.npz", flip);
  expect_error([&] { NpzFile::open(crc).array("a"); },
               {crc, "member 'a.npy'", "CRC", "numpy.savez"});
  // ... and the deflate stream (compressed).
  std::string flip2 = deflated;
  flip2[60] ^= 0xff;
  const std::string stream = write("stream.npz", flip2);
  expect_error([&] { NpzFile::open(stream).array("a"); }, {stream, "member 'a.npy'"});
  const std::string cut = write("cut.npz", stored.substr(0, stored.size() / 2));
  expect_error([&] { NpzFile::open(cut); }, {cut, "end-of-directory", "numpy.savez"});
  const std::string not_zip = write("not.npz", "PK but not a zip archive at all, no directory");
  expect_error([&] { NpzFile::open(not_zip); }, {not_zip});
  const std::string npy = write("npy.npz", read_bytes(npz("a_f4_le.npy")));
  expect_error([&] { NpzFile::open(npy); }, {npy, "not an .npz"});
}

}  // namespace
}  // namespace qsearch::data
