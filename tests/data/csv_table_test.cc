#include "data/csv_table.h"

#include <gtest/gtest.h>

#include <cstring>

#include "data/csv.h"
#include "data/dataset.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::read_raw;
using testing::TempDir;
using testing::write_bytes;

TEST(CsvDataset, MatchesSklearnBitExact) {
  const std::string name = "csv:" + fixture("csv/tabular.csv");
  for (auto [split, expected] : std::vector<std::pair<Split, std::string>>{
           {Split::kTrain, "train"}, {Split::kVal, "train"}, {Split::kTest, "test"}}) {
    Dataset d = load_dataset(name, split, {"", "kind"});
    const auto want_x = read_raw<float>(fixture("csv/expected_" + expected + "_x.f32"));
    const auto want_y = read_raw<int64_t>(fixture("csv/expected_" + expected + "_y.i64"));
    const auto n = static_cast<int64_t>(want_y.size());
    ASSERT_EQ(d.x.shape(), (Shape{n, 4}));
    EXPECT_EQ(std::memcmp(d.x.raw(), want_x.data(), want_x.size() * sizeof(float)), 0);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(d.y.data<int64_t>()[i], want_y[i]);
    // Strings map to their sorted order (byte-wise: upper case first), like LabelEncoder.
    EXPECT_EQ(d.class_names,
              (std::vector<std::string>{"Zeta", "setosa", "versicolor", "virginica"}));
    EXPECT_EQ(d.num_classes, 4);
    EXPECT_EQ(d.name, name);
  }
  // The constant column has std 0 -> scale 1: its standardised value is exactly 0.
  Dataset d = load_dataset(name, Split::kTrain, {"", "kind"});
  for (int64_t i = 0; i < d.size(); ++i) EXPECT_EQ(d.x.data<float>()[i * 4 + 2], 0.0f);
}

TEST(CsvDataset, IntegerLabelsAreClassIndices) {
  TempDir dir;
  write_bytes(dir / "a.csv", "x,label,y\n1,2,3\n4,0,6\n7,2,9\n1.5,0,2\n3,2,1\n");
  Dataset d = load_dataset("csv:" + dir / "a.csv", Split::kTrain, {"", "label"});
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(d.size(), 4);  // 5 rows: test = ceil(0.2 * 5) = 1
  EXPECT_EQ(load_dataset("csv:" + dir / "a.csv", Split::kTest, {"", "label"}).size(), 1);
}

TEST(CsvDataset, QuotingCrlfAndBom) {
  TempDir dir;
  write_bytes(dir / "q.csv",
              "\xEF\xBB\xBF\"f 1\",\"lab,el\"\r\n1,\"a,b\"\r\n\r\n2,\"say \"\"hi\"\"\"\r\n"
              "3,'c'\r\n4,c\r\n");
  CsvTable t = read_csv_table(dir / "q.csv", "lab,el");
  EXPECT_EQ(t.feature_names, (std::vector<std::string>{"f 1"}));
  EXPECT_EQ(t.table.rows, 4);
  EXPECT_EQ(t.class_names, (std::vector<std::string>{"a,b", "c", "say \"hi\""}));
  EXPECT_EQ(t.table.labels, (std::vector<int64_t>{0, 2, 1, 1}));
}

TEST(CsvDataset, FeatureColumnsChooseAndOrderTheInputs) {
  TempDir dir;
  // An id column of strings, the label in the middle, features in another order than wanted.
  write_bytes(dir / "f.csv", "id,b,label,a,c\nr1,2,x,1,3\nr2,5,y,4,6\nr3,8,x,7,9\n");
  CsvTable t = read_csv_table(dir / "f.csv", "label", {"a", "b"});
  EXPECT_EQ(t.feature_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.table.cols, 2);
  EXPECT_EQ(t.table.values, (std::vector<double>{1, 2, 4, 5, 7, 8}));  // a, b per row
  EXPECT_EQ(t.table.labels, (std::vector<int64_t>{0, 1, 0}));
  // Without feature columns the string column is a feature, and an error says which.
  expect_error([&] { read_csv_table(dir / "f.csv", "label"); },
               {"column 'id' holds 'r1', not a number"});
  // Through load_dataset: DataOptions::feature_columns.
  write_bytes(dir / "g.csv", "id,y,a,b\nr1,0,1,2\nr2,1,3,4\nr3,0,5,6\nr4,1,7,8\nr5,0,9,10\n");
  Dataset d = load_dataset("csv:" + dir / "g.csv", Split::kTrain, {"", "y", {"b"}});
  EXPECT_EQ(d.x.shape(), (Shape{4, 1}));
}

TEST(CsvDataset, FeatureColumnErrorsNameTheColumn) {
  TempDir dir;
  const std::string f = dir / "e.csv";
  write_bytes(f, "a,b,c\n1,2,3\n4,5,6\n");
  expect_error(
      [&] {
        read_csv_table(f, "c", {"a", "z"});
      },
      {"no column 'z' (a feature column)", "the columns are: 'a', 'b', 'c'"});
  expect_error(
      [&] {
        read_csv_table(f, "c", {"a", "c"});
      },
      {"'c' is the label column", "cannot also be a feature"});
  expect_error(
      [&] {
        read_csv_table(f, "c", {"a", "b", "a"});
      },
      {"feature column 'a' is given twice"});
}

TEST(CsvDataset, Errors) {
  TempDir dir;
  const std::string f = dir / "e.csv";
  auto load = [&](const std::string& label) {
    return [=] { load_dataset("csv:" + f, Split::kTrain, {"", label}); };
  };
  write_bytes(f, "a,b,c\n1,2,3\n4,5\n");
  expect_error(load("c"), {f + ":3:", "2 cells, but the header has 3 columns", "ragged"});
  write_bytes(f, "a,b,c\n1,2,3\n4,5,6\n\n7,abc,9\n");
  expect_error(load("c"), {f + ":5:", "column 'b' holds 'abc', not a number"});
  write_bytes(f, "a,b,c\n1,2,3\n");
  expect_error(load("label"), {"no column 'label'", "the columns are: 'a', 'b', 'c'"});
  expect_error(load(""), {"--label-column", "label_column =", "the columns are: 'a', 'b', 'c'"});
  expect_error(load("c"), {"cannot split 1 rows"});
  write_bytes(f, "a,b\n");
  expect_error(load("b"), {"no data rows"});
  write_bytes(f, "a,b\n\"1,2\n");
  expect_error(load("b"), {f + ":2:", "never closed"});
  write_bytes(f, "a,b\ninf,1\n2,1\n3,0\n");
  expect_error(load("b"), {"column 'a' is inf", "finite"});
  expect_error(
      [&] {
        load_dataset("csv:" + dir / "nope.csv", Split::kTrain, {"", "b"});
      },
      {dir / "nope.csv", "does not exist"});
}

TEST(CsvReader, NumbersParseLikePythonFloat) {
  double v = 0;
  EXPECT_TRUE(parse_number(" 0.1 ", v));
  EXPECT_EQ(v, 0.1);
  EXPECT_TRUE(parse_number("+1e-3", v));
  EXPECT_EQ(v, 1e-3);
  EXPECT_TRUE(parse_number("2.2250738585072011e-308", v));
  EXPECT_EQ(v, 2.2250738585072011e-308);
  EXPECT_FALSE(parse_number("", v));
  EXPECT_FALSE(parse_number("1.5x", v));
  EXPECT_FALSE(parse_number("++1", v));
  EXPECT_FALSE(parse_number("?", v));
  int64_t k = 0;
  EXPECT_TRUE(parse_integer("42", k));
  EXPECT_EQ(k, 42);
  EXPECT_FALSE(parse_integer("4.0", k));
}

}  // namespace
}  // namespace qsearch::data
