#include "data/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <filesystem>

#include "core/stopwatch.h"
#include "data/dataset.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::read_bytes;
using testing::read_raw;
using testing::TempDir;
using testing::write_bytes;

DataOptions fixture_dir(const std::string& rel) { return DataOptions{fixture(rel), ""}; }

void expect_matches_expected(const Dataset& d, const std::string& expected_x, int64_t n) {
  ASSERT_EQ(d.x.shape(), (Shape{n, 1, 28, 28}));
  ASSERT_EQ(d.y.shape(), (Shape{n}));
  EXPECT_EQ(d.x.dtype(), DType::kFloat32);
  EXPECT_EQ(d.y.dtype(), DType::kInt64);
  const auto want = read_raw<float>(expected_x);
  ASSERT_EQ(static_cast<int64_t>(want.size()), d.x.numel());
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    ASSERT_EQ(d.x.data<float>()[i], want[i]) << "pixel " << i;  // bit-exact, ToTensor()
  }
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(d.y.data<int64_t>()[i], (i * 7 + 3) % 10);
}

TEST(Idx, PlainFixtureMatchesToTensor) {
  Dataset d = load_dataset("mnist", Split::kTest, fixture_dir("idx"));
  expect_matches_expected(d, fixture("idx/expected_mnist_t10k_x.f32"), 12);
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.x.data<float>()[0], 0.0f);
  EXPECT_EQ(d.x.data<float>()[1], 1.0f);
  EXPECT_NE(d.source.find("t10k-images-idx3-ubyte"), std::string::npos);
  // val = test (as MASE); train is the other file.
  Dataset v = load_dataset("mnist", Split::kVal, fixture_dir("idx"));
  EXPECT_EQ(v.size(), 12);
  EXPECT_EQ(v.x.data<float>()[100], d.x.data<float>()[100]);
  EXPECT_EQ(load_dataset("mnist", Split::kTrain, fixture_dir("idx")).size(), 20);
}

TEST(Idx, GzipFixtureMatchesToTensor) {
  Dataset d = load_dataset("fashion-mnist", Split::kTest, fixture_dir("idx"));
  expect_matches_expected(d, fixture("idx/expected_fashion-mnist_t10k_x.f32"), 12);
  EXPECT_EQ(d.class_names[9], "Ankle boot");
  EXPECT_NE(d.source.find(".gz"), std::string::npos);
}

// A scratch data dir holding a copy of the plain MNIST fixture, to damage.
struct Scratch {
  TempDir dir;
  std::string images = dir / "mnist/t10k-images-idx3-ubyte";
  std::string labels = dir / "mnist/t10k-labels-idx1-ubyte";
  Scratch() {
    write_bytes(images, read_bytes(fixture("idx/mnist/t10k-images-idx3-ubyte")));
    write_bytes(labels, read_bytes(fixture("idx/mnist/t10k-labels-idx1-ubyte")));
  }
  Dataset load() const { return load_dataset("mnist", Split::kTest, {dir.path(), ""}); }
};

TEST(Idx, CorruptMagicIsAnError) {
  Scratch s;
  std::string b = read_bytes(s.images);
  b[3] = 0x01;
  write_bytes(s.images, b);
  expect_error([&] { s.load(); },
               {s.images, "magic number 0x00000801", "expected 0x00000803", "scripts/setup.sh"});
  // Labels file given where images are expected: wrong number of dims.
  write_bytes(s.images, read_bytes(s.labels));
  expect_error([&] { s.load(); }, {s.images, "not an IDX images file"});
}

TEST(Idx, BadDimsAreAnError) {
  Scratch s;
  std::string b = read_bytes(s.images);
  b[8] = b[9] = b[10] = b[11] = 0;  // rows = 0
  write_bytes(s.images, b);
  expect_error([&] { s.load(); }, {s.images, "dimension 1 is 0"});
}

TEST(Idx, TruncatedAndOverlongFilesAreErrors) {
  Scratch s;
  const std::string b = read_bytes(s.images);
  write_bytes(s.images, b.substr(0, b.size() - 100));
  expect_error([&] { s.load(); }, {s.images, "truncated", "9408 bytes", "9308 follow"});
  write_bytes(s.images, b.substr(0, 10));
  expect_error([&] { s.load(); }, {s.images, "truncated", "header"});
  write_bytes(s.images, b + "xyz");
  expect_error([&] { s.load(); }, {s.images, "3 unexpected bytes"});
  write_bytes(s.images, "");
  expect_error([&] { s.load(); }, {s.images, "not an IDX images file"});
}

TEST(Idx, HeaderAnnouncingMoreThanTheFileHoldsIsAnErrorBeforeAllocating) {
  // Found by tests/fuzz/idx_fuzzer.cc: the tensors were allocated from the header's dims before
  // the payload was read, so a few corrupt header bytes asked for gigabytes (or overflowed).
  Scratch s;
  const std::string b = read_bytes(s.images);
  std::string huge = b;
  for (int i = 8; i < 16; ++i) huge[i] = '\xff';  // 12 x 2^32-1 x 2^32-1 pixels
  write_bytes(s.images, huge);
  expect_error([&] { s.load(); }, {s.images, "truncated", "over 2^64 bytes", "only 9408 follow"});
  huge = b;
  huge[9] = '\x7a';  // 12 x 0x7a001c x 28
  write_bytes(s.images, huge);
  expect_error([&] { s.load(); }, {s.images, "truncated", "[12, 7995420, 28]", "only 9408 follow"});
  write_bytes(s.images, b);
  std::string labels = read_bytes(s.labels);
  labels[4] = '\x7f';  // 0x7f00000c labels
  write_bytes(s.labels, labels);
  expect_error([&] { s.load(); }, {s.labels, "truncated", "2130706444 bytes", "only 12 follow"});
  // gzip: at most 1032 times the compressed size (deflate's limit).
  write_bytes(s.labels, read_bytes(fixture("idx/mnist/t10k-labels-idx1-ubyte")));
  huge = b;
  huge[9] = '\x7a';
  std::filesystem::remove(s.images);
  gzFile gz = gzopen((s.images + ".gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzwrite(gz, huge.data(), static_cast<unsigned>(huge.size()));
  gzclose(gz);
  expect_error([&] { s.load(); }, {s.images + ".gz", "corrupt", "gzip file can hold at most"});
}

TEST(Idx, LabelProblemsAreErrors) {
  Scratch s;
  std::string l = read_bytes(s.labels);
  l[8 + 5] = 10;
  write_bytes(s.labels, l);
  expect_error([&] { s.load(); }, {s.labels, "label 10 of sample 5 is out of range 0..9"});
  write_bytes(s.labels, read_bytes(fixture("idx/mnist/train-labels-idx1-ubyte")));
  expect_error([&] { s.load(); }, {"12 images", "20 labels", "do not belong together"});
}

TEST(Idx, TruncatedGzipIsAnError) {
  TempDir dir;
  const std::string src = fixture("idx/fashion-mnist/t10k-images-idx3-ubyte.gz");
  const std::string gz = read_bytes(src);
  const std::string images = dir / "fashion-mnist/t10k-images-idx3-ubyte.gz";
  write_bytes(images, gz.substr(0, gz.size() / 2));
  write_bytes(dir / "fashion-mnist/t10k-labels-idx1-ubyte.gz",
              read_bytes(fixture("idx/fashion-mnist/t10k-labels-idx1-ubyte.gz")));
  expect_error(
      [&] {
        load_dataset("fashion-mnist", Split::kTest, {dir.path(), ""});
      },
      {images, "not a valid gzip file", "truncated or corrupt",
       "apt-get install --reinstall dataset-fashion-mnist"});
  std::string bad = gz;
  for (size_t i = 20; i < 60; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  write_bytes(images, bad);
  expect_error(
      [&] {
        load_dataset("fashion-mnist", Split::kTest, {dir.path(), ""});
      },
      {images, "not a valid gzip file"});
}

TEST(Idx, MissingFilesNameEveryPathAndTheFix) {
  TempDir dir;
  expect_error(
      [&] {
        load_dataset("mnist", Split::kTrain, {dir.path(), ""});
      },
      {"data set 'mnist' (train split) not found", dir / "mnist/train-images-idx3-ubyte",
       dir / "mnist/train-images-idx3-ubyte.gz", dir / "mnist/train-labels-idx1-ubyte.gz",
       "run scripts/setup.sh"});
}

// The real data sets, when scripts/setup.sh / Debian installed them.
const std::array<int64_t, 10> kMnistTestCounts = {980, 1135, 1032, 1010, 982,
                                                  892, 958,  1028, 974,  1009};
const std::array<int64_t, 10> kMnistTrainCounts = {5923, 6742, 5958, 6131, 5842,
                                                   5421, 5918, 6265, 5851, 5949};

std::array<int64_t, 10> class_counts(const Dataset& d) {
  std::array<int64_t, 10> c{};
  for (int64_t v : d.y.span<int64_t>()) ++c[static_cast<size_t>(v)];
  return c;
}

TEST(Idx, RealMnist) {
  DataOptions opts;
  const std::string dir = resolve_data_dir(opts) + "/mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte") &&
      !std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "MNIST not installed in " << dir << " (scripts/setup.sh)";
  }
  Stopwatch sw;
  Dataset test = load_dataset("mnist", Split::kTest, opts);
  const double seconds = sw.seconds();
  EXPECT_EQ(test.x.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(class_counts(test), kMnistTestCounts);
  float lo = 1, hi = 0;
  for (float v : test.x.span<float>()) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  Dataset train = load_dataset("mnist", Split::kTrain, opts);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(class_counts(train), kMnistTrainCounts);
  RecordProperty("mnist_test_load_ms", static_cast<int>(seconds * 1000));
}

TEST(Idx, RealFashionMnist) {
  DataOptions opts;
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") &&
      !std::filesystem::exists(resolve_data_dir(opts) + "/fashion-mnist")) {
    GTEST_SKIP() << "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)";
  }
  Dataset test = load_dataset("fashion-mnist", Split::kTest, opts);
  EXPECT_EQ(test.x.shape(), (Shape{10000, 1, 28, 28}));
  for (int64_t c : class_counts(test)) EXPECT_EQ(c, 1000);  // balanced: 1000 per class
  Dataset train = load_dataset("fashion-mnist", Split::kTrain, opts);
  for (int64_t c : class_counts(train)) EXPECT_EQ(c, 6000);
}

}  // namespace
}  // namespace qsearch::data
