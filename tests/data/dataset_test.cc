#include "data/dataset.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <optional>
#include <sstream>

#include "data/download.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;
using testing::TempDir;
using testing::write_bytes;

// Sets (or unsets, for nullopt) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DataDir, ResolutionOrderFlagThenEnvThenHome) {
  ScopedEnv home("HOME", "/home/someone");
  {
    ScopedEnv env("QSEARCH_DATA", "/env/data");
    EXPECT_EQ(resolve_data_dir({"/flag/data", ""}), "/flag/data");
    EXPECT_EQ(data_dir_origin({"/flag/data", ""}), "--data-dir");
    EXPECT_EQ(resolve_data_dir({}), "/env/data");
    EXPECT_EQ(data_dir_origin({}), "$QSEARCH_DATA");
  }
  {
    ScopedEnv env("QSEARCH_DATA", "");  // set but empty: ignored
    EXPECT_EQ(resolve_data_dir({}), "/home/someone/.cache/qsearch/data");
  }
  ScopedEnv env("QSEARCH_DATA", std::nullopt);
  EXPECT_EQ(resolve_data_dir({}), "/home/someone/.cache/qsearch/data");
  EXPECT_EQ(data_dir_origin({}), "default");
}

TEST(DataDir, EnvironmentVariableIsUsedForLoading) {
  ScopedEnv env("QSEARCH_DATA", fixture("idx"));
  EXPECT_EQ(load_dataset("mnist", Split::kTest, {}).size(), 12);
}

TEST(Split, Parse) {
  EXPECT_EQ(parse_split("train"), Split::kTrain);
  EXPECT_EQ(parse_split("val"), Split::kVal);
  EXPECT_EQ(parse_split("validation"), Split::kVal);
  EXPECT_EQ(parse_split("test"), Split::kTest);
  expect_error([] { parse_split("Test"); }, {"unknown split 'Test'", "train, val"});
  EXPECT_STREQ(split_name(Split::kVal), "val");
}

TEST(LoadDataset, UnknownNameListsTheKnownOnes) {
  expect_error([] { load_dataset("cifar10", Split::kTest, {}); },
               {"unknown data set 'cifar10'",
                "mnist, fashion-mnist, jsc, csv:PATH, npz:PATH or npy:X.npy,Y.npy"});
  expect_error([] { load_dataset("csv:", Split::kTest, {}); }, {"needs a path"});
}

TEST(LoadDataset, ErrorsSayWhichDataSetAndSplit) {
  TempDir dir;
  expect_error(
      [&] {
        load_dataset("jsc", Split::kVal, {dir.path(), ""});
      },
      {"while loading data set 'jsc' (val split)"});
}

TEST(ListDatasets, ReportsFoundAndMissing) {
  TempDir dir;
  // MNIST from the fixture (plain), Fashion-MNIST gz, JSC's CSV: all under one data dir.
  for (const std::string f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    write_bytes(dir / ("mnist/" + f), testing::read_bytes(fixture("idx/mnist/" + f)));
  }
  auto rows = list_datasets({dir.path(), ""});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "mnist");
  EXPECT_TRUE(rows[0].found);
  EXPECT_EQ(rows[0].location, dir / "mnist");
  EXPECT_EQ(rows[0].splits,
            (std::vector<std::pair<std::string, int64_t>>{{"train", 20}, {"test", 12}}));
  EXPECT_EQ(rows[2].name, "jsc");
  EXPECT_FALSE(rows[2].found);
  EXPECT_EQ(rows[2].install, "qsearch data download jsc");
  EXPECT_EQ(rows[2].tried.size(), 3u);

  write_bytes(dir / "jsc/hls4ml_lhc_jets_hlf.csv",
              testing::read_bytes(fixture("jsc_csv/jsc/hls4ml_lhc_jets_hlf.csv")));
  rows = list_datasets({dir.path(), ""});
  EXPECT_TRUE(rows[2].found);
  EXPECT_EQ(rows[2].splits, (std::vector<std::pair<std::string, int64_t>>{{"rows in file", 302}}));
  const std::string table = format_dataset_list(rows);
  EXPECT_EQ(table.rfind("data directory: " + dir.path() + " (from --data-dir)\n", 0), 0u) << table;
  EXPECT_NE(table.find("mnist          found    " + dir / "mnist"), std::string::npos) << table;
  EXPECT_NE(table.find("train 20, test 12 (val = test, as in MASE)"), std::string::npos) << table;
  EXPECT_NE(table.find("rows in file 302"), std::string::npos) << table;

  // A corrupt header is reported in the row, not thrown.
  write_bytes(dir / "mnist/t10k-images-idx3-ubyte", "garbage!");
  rows = list_datasets({dir.path(), ""});
  EXPECT_FALSE(rows[0].found);
  EXPECT_NE(rows[0].note.find("not an MNIST IDX file"), std::string::npos) << rows[0].note;
}

TEST(ListDatasets, FashionMnistLooksInDebiansDirectory) {
  TempDir dir;
  auto rows = list_datasets({dir.path(), ""});
  if (!rows[1].found) {
    // Not installed here: then both places were tried.
    EXPECT_NE(std::find(rows[1].tried.begin(), rows[1].tried.end(),
                        "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
              rows[1].tried.end());
  } else {
    EXPECT_EQ(rows[1].location, "/usr/share/datasets/fashion-mnist");
    EXPECT_EQ(rows[1].splits,
              (std::vector<std::pair<std::string, int64_t>>{{"train", 60000}, {"test", 10000}}));
  }
}

// No network in tests: only the failure path of the downloader.
TEST(Download, UnreachableUrlIsAClearError) {
  TempDir dir;
  std::ostringstream log;
  const std::string url = "http://127.0.0.1:9/hls4ml_lhc_jets_hlf.csv";
  expect_error([&] { download_file(url, dir / "x.csv", log); },
               {"download of " + url + " failed", "curl exit code 7", "curl -L -o"});
  EXPECT_FALSE(std::filesystem::exists(dir / "x.csv"));
  EXPECT_FALSE(std::filesystem::exists(dir / "x.csv.part"));
}

TEST(Download, AllSourcesFailingNamesEveryUrl) {
  TempDir dir;
  std::ostringstream log;
  std::vector<DownloadSource> sources = {
      {"first", "http://127.0.0.1:9/a.z", "a.z", ""},
      {"second", "http://127.0.0.1:9/get_csv/{file_id}", "b.csv", "http://127.0.0.1:9/json"}};
  expect_error([&] { download_sources(sources, dir / "jsc", log); },
               {"no file could be downloaded", "http://127.0.0.1:9/a.z",
                "fetching http://127.0.0.1:9/json failed"});
  EXPECT_NE(log.str().find("first"), std::string::npos);
}

TEST(Download, OnlyJscIsDownloadable) {
  std::ostringstream log;
  expect_error([&] { download_dataset("mnist", {"/tmp/x", ""}, log); }, {"scripts/setup.sh"});
  expect_error(
      [&] {
        download_dataset("imagenet", {"/tmp/x", ""}, log);
      },
      {"cannot download data set 'imagenet'", "only jsc"});
  const auto sources = jsc_download_sources();
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].url, "https://cernbox.cern.ch/index.php/s/jvFd5MoWhGs1l5v/download");
  EXPECT_EQ(sources[1].file_id_url, "https://www.openml.org/api/v1/json/data/42468");
}

}  // namespace
}  // namespace qsearch::data
