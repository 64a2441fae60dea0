#include "data/jsc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "data/dataset.h"
#include "data/sha256.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::read_bytes;
using testing::read_raw;
using testing::TempDir;
using testing::write_bytes;

// Compares bit for bit with the arrays MASE's code (pandas + sklearn) produced from the same
// file (tools/make_data_fixtures.py).
void expect_equals_mase(const std::string& dir, Split split, const std::string& expected) {
  Dataset d = load_dataset("jsc", split, {fixture(dir), ""});
  const auto want_x = read_raw<float>(fixture(dir + "/expected_" + expected + "_x.f32"));
  const auto want_y = read_raw<int64_t>(fixture(dir + "/expected_" + expected + "_y.i64"));
  const auto n = static_cast<int64_t>(want_y.size());
  ASSERT_EQ(d.x.shape(), (Shape{n, 16}));
  ASSERT_EQ(d.y.shape(), (Shape{n}));
  EXPECT_EQ(d.num_classes, 5);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"g", "q", "w", "z", "t"}));
  int mismatches = 0;
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    const float got = d.x.data<float>()[i];
    if (std::memcmp(&got, &want_x[static_cast<size_t>(i)], sizeof got) != 0 && ++mismatches < 5) {
      ADD_FAILURE() << dir << " " << expected << " x[" << i / 16 << "][" << i % 16 << "] = " << got
                    << ", MASE: " << want_x[static_cast<size_t>(i)];
    }
  }
  EXPECT_EQ(mismatches, 0) << dir << " " << expected;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(d.y.data<int64_t>()[i], want_y[static_cast<size_t>(i)]) << "row " << i;
  }
}

TEST(Jsc, Hdf5Float32MatchesMaseBitExact) {
  expect_equals_mase("jsc_h5", Split::kTrain, "train");
  expect_equals_mase("jsc_h5", Split::kVal, "train");  // MASE: validation = training data
  expect_equals_mase("jsc_h5", Split::kTest, "test");
}

TEST(Jsc, Hdf5Float64MatchesMaseBitExact) {
  expect_equals_mase("jsc_h5_f64", Split::kTrain, "train");
  expect_equals_mase("jsc_h5_f64", Split::kTest, "test");
}

TEST(Jsc, OpenMlCsvMatchesMaseBitExact) {
  expect_equals_mase("jsc_csv", Split::kTrain, "train");
  expect_equals_mase("jsc_csv", Split::kTest, "test");
}

TEST(Jsc, DuplicatesAreDroppedBeforeTheSplit) {
  // 302 rows in the file, 21 duplicates (one of them differs only by 0.0 vs -0.0).
  Table t = read_jsc_hdf5(
      fixture("jsc_h5/jsc/processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z"),
      "");
  EXPECT_EQ(t.rows, 302);
  EXPECT_TRUE(t.float32_source);
  EXPECT_EQ(drop_duplicate_rows(t), 21);
  EXPECT_EQ(t.rows, 281);
  Dataset train = load_dataset("jsc", Split::kTrain, {fixture("jsc_h5"), ""});
  Dataset test = load_dataset("jsc", Split::kTest, {fixture("jsc_h5"), ""});
  EXPECT_EQ(test.size(), 57);  // ceil(0.2 * 281)
  EXPECT_EQ(train.size(), 224);
  // Standardised with the training part's statistics: mean 0, population std 1 there.
  for (int j = 0; j < 16; ++j) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < train.size(); ++i) s += train.x.data<float>()[i * 16 + j];
    const double mean = s / static_cast<double>(train.size());
    for (int64_t i = 0; i < train.size(); ++i) {
      const double d = train.x.data<float>()[i * 16 + j] - mean;
      q += d * d;
    }
    EXPECT_NEAR(mean, 0.0, 1e-6) << j;
    EXPECT_NEAR(std::sqrt(q / static_cast<double>(train.size())), 1.0, 1e-6) << j;
  }
}

TEST(Jsc, MissingFilesNameEveryPathAndTheDownloadCommand) {
  TempDir dir;
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {dir.path(), ""});
      },
      {"data set 'jsc' not found", dir / "jsc/hls4ml_lhc_jets_hlf.csv",
       dir / "jsc/hls4ml_lhc_jets_hlf.csv.gz",
       dir / "jsc/processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z",
       "qsearch data download jsc"});
}

const char* kH5 = "jsc/processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z";

TEST(Jsc, BadHdf5FilesAreErrors) {
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {fixture("bad_h5/missing_field"), ""});
      },
      {"lacks the field(s) j_multiplicity, j_t", "it has: j_zlogz", "qsearch data download jsc"});
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {fixture("bad_h5/not_compound"), ""});
      },
      {"is not a compound (structured) dataset"});
  // 2^40 records declared in a 2.6 KB file: refused before allocating for them.
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {fixture("bad_h5/huge_rows"), ""});
      },
      {"is corrupt", "claims 1099511627776 records", "qsearch data download jsc"});
  TempDir dir;
  const std::string good = read_bytes(fixture(std::string("jsc_h5/") + kH5));
  write_bytes(dir / kH5, good.substr(0, good.size() / 2));
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {dir.path(), ""});
      },
      {dir / kH5, "qsearch data download jsc"});
  write_bytes(dir / kH5, "zlogz,class\n1,g\n");
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTrain, {dir.path(), ""});
      },
      {dir / kH5, "not an HDF5 file"});
}

TEST(Jsc, ChecksumIsVerifiedOnLoad) {
  TempDir dir;
  const std::string file = dir / kH5;
  write_bytes(file, read_bytes(fixture(std::string("jsc_h5/") + kH5)));
  write_checksum_file(file, sha256_file(file));
  EXPECT_EQ(load_dataset("jsc", Split::kTest, {dir.path(), ""}).size(), 57);
  std::string tampered = read_bytes(file);
  tampered[tampered.size() - 1] = static_cast<char>(tampered.back() ^ 1);
  write_bytes(file, tampered);
  expect_error(
      [&] {
        load_dataset("jsc", Split::kTest, {dir.path(), ""});
      },
      {file, "does not match its checksum", "qsearch data download jsc"});
}

TEST(Jsc, BadCsvFilesAreErrors) {
  TempDir dir;
  const std::string file = dir / "jsc/hls4ml_lhc_jets_hlf.csv";
  const std::string good = read_bytes(fixture("jsc_csv/jsc/hls4ml_lhc_jets_hlf.csv"));
  auto load = [&] { load_dataset("jsc", Split::kTest, {dir.path(), ""}); };
  // Drop the multiplicity column name from the header.
  std::string no_col = good;
  no_col.replace(no_col.find(",multiplicity"), 13, "");
  write_bytes(file, no_col);
  expect_error(load, {file, "column(s) multiplicity missing", "the header has: zlogz"});
  std::string bad_class = good;
  bad_class.replace(bad_class.find(",w\n"), 3, ",x\n");
  write_bytes(file, bad_class);
  expect_error(load, {file + ":3:", "class 'x' is not one of g, q, w, z, t"});
  std::string bad_num = good;
  bad_num.replace(bad_num.find("-0.2895113"), 10, "?");
  write_bytes(file, bad_num);
  expect_error(load, {file + ":3:", "column 'zlogz' holds '?', not a number"});
  std::string ragged = good;
  ragged.replace(ragged.find(",w\n"), 3, ",1,w\n");
  write_bytes(file, ragged);
  expect_error(load, {file + ":3:", "18 cells, but the header has 17 columns"});
}

TEST(Jsc, PrefixedCsvHeaderAndOneHotLabelsLoad) {
  // "j_"-prefixed names, reordered columns, one-hot labels instead of `class`.
  TempDir dir;
  std::string csv;
  for (const auto& f : jsc_feature_names()) csv += "j_" + f + ",";
  csv += "j_g,j_q,j_w,j_z,j_t\n";
  for (int r = 0; r < 10; ++r) {
    for (int j = 0; j < 16; ++j) csv += std::to_string(r * 16 + j) + ",";
    for (int k = 0; k < 5; ++k) csv += (k == r % 5 ? "1," : "0,");
    csv.back() = '\n';
  }
  write_bytes(dir / "jsc/hls4ml_lhc_jets_hlf.csv", csv);
  Table t = read_jsc_csv(dir / "jsc/hls4ml_lhc_jets_hlf.csv", "");
  ASSERT_EQ(t.rows, 10);
  EXPECT_EQ(t.values[16 * 3 + 2], 50.0);
  EXPECT_EQ(t.labels[3], 3);
  EXPECT_EQ(t.labels[9], 4);
}

}  // namespace
}  // namespace qsearch::data
