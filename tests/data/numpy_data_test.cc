// npz:/npy: data sets (data/numpy_data.h) from files numpy wrote (tools/make_npz_fixtures.py):
// the same samples as the loaders they mirror, any input dtype kept, regression targets, and
// one-line errors naming the file and the arrays.
#include "data/numpy_data.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "data/batches.h"
#include "data_test_util.h"

namespace qsearch::data {
namespace {

using testing::expect_error;
using testing::fixture;

std::string npz(const std::string& name) { return fixture("npz/" + name); }

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(NumpyData, NpzSplitsGiveTheSamplesOfTheIdxFilesTheyWereMadeFrom) {
  const DataOptions idx{.data_dir = fixture("idx")};
  for (Split split : {Split::kTrain, Split::kVal, Split::kTest}) {
    SCOPED_TRACE(split_name(split));
    const Dataset want = load_dataset("mnist", split, idx);
    const Dataset got = load_dataset("npz:" + npz("mnist12.npz"), split, {});
    EXPECT_EQ(got.x.shape(), want.x.shape());
    EXPECT_TRUE(same_bytes(got.x, want.x));
    EXPECT_TRUE(same_bytes(got.y, want.y));
    EXPECT_FALSE(got.regression);
    EXPECT_EQ(got.num_classes, 10);
    EXPECT_NE(got.source.find(split == Split::kTrain ? "x_train" : "x_test"), std::string::npos)
        << got.source;
  }
}

TEST(NumpyData, ArraysNamedInTheNameOrTheOptionsAndFloat64InputsBecomeFloat32) {
  const Dataset want = load_dataset("npz:" + npz("mnist12.npz"), Split::kTest, {});
  const Dataset q =
      load_dataset("npz:" + npz("mnist12_flat.npz") + "?x=inputs&y=labels", Split::kTest, {});
  const Dataset o = load_dataset("npz:" + npz("mnist12_flat.npz"), Split::kVal,
                                 {.x_array = "inputs", .y_array = "labels"});
  for (const Dataset* d : {&q, &o}) {
    EXPECT_EQ(d->x.shape(), (Shape{12, 784}));
    EXPECT_EQ(d->x.dtype(), DType::kFloat32);
    EXPECT_TRUE(same_bytes(d->x.reshaped(want.x.shape()), want.x));
    EXPECT_TRUE(same_bytes(d->y, want.y));
  }
}

// DataOptions::max_samples (`eval --num-samples`, a search without `--final-eval full`) keeps
// the first samples of the split only, with the classes of the whole split.
TEST(NumpyData, MaxSamplesKeepsTheFirstSamplesAndTheSplitsClasses) {
  for (const std::string& name :
       {"npz:" + npz("mnist12.npz"), "npy:" + npz("mnist12_x.npy") + "," + npz("mnist12_y.npy")}) {
    SCOPED_TRACE(name);
    const Dataset all = load_dataset(name, Split::kTest, {});
    ASSERT_GT(all.size(), 5);
    const Dataset few = load_dataset(name, Split::kTest, {.max_samples = 5});
    EXPECT_EQ(few.size(), 5);
    EXPECT_EQ(few.x.dim(0), 5);
    EXPECT_TRUE(same_bytes(few.x, all.x.rows(0, 5).clone()));
    EXPECT_TRUE(same_bytes(few.y, all.y.rows(0, 5).clone()));
    EXPECT_EQ(few.num_classes, all.num_classes);
    EXPECT_EQ(few.x.use_count(), 1);  // its own buffer, not a view of the whole split
    const Dataset more = load_dataset(name, Split::kTest, {.max_samples = all.size() + 1});
    EXPECT_EQ(more.size(), all.size());
  }
}

TEST(NumpyData, NpyPairKeepsIntegerInputsAndWidensLabels) {
  const Dataset d =
      load_dataset("npy:" + npz("mnist12_x.npy") + "," + npz("mnist12_y.npy"), Split::kTrain, {});
  EXPECT_EQ(d.x.dtype(), DType::kUInt8);
  EXPECT_EQ(d.x.shape(), (Shape{12, 28, 28}));
  EXPECT_EQ(d.y.dtype(), DType::kInt64);
  const Dataset want = load_dataset("npz:" + npz("mnist12.npz"), Split::kTest, {});
  EXPECT_TRUE(same_bytes(d.y, want.y));
  // Pixels as saved (0..255), not scaled: x_test is pixels / 255 in float32.
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    ASSERT_EQ(static_cast<float>(d.x.data<uint8_t>()[i]) / 255.0f, want.x.data<float>()[i]) << i;
  }
}

TEST(NumpyData, FloatLabelsMakeARegressionDataSetThatBatchesByRows) {
  const Dataset d = load_dataset("npz:" + npz("regress.npz"), Split::kTest, {});
  EXPECT_TRUE(d.regression);
  EXPECT_EQ(d.num_classes, 0);
  EXPECT_EQ(d.y.dtype(), DType::kFloat32);
  EXPECT_EQ(d.y.shape(), (Shape{12, 10}));
  EXPECT_EQ(d.size(), 12);
  Batches b(d, {.batch_size = 5, .shuffle = true, .seed = 3});
  const Batch first = b[0];
  ASSERT_EQ(first.y.shape(), (Shape{5, 10}));
  for (int64_t i = 0; i < 5; ++i) {
    const int64_t r = b.order()[static_cast<size_t>(i)];
    EXPECT_EQ(std::memcmp(first.y.data<float>() + i * 10, d.y.data<float>() + r * 10, 40), 0);
    EXPECT_EQ(std::memcmp(first.x.data<float>() + i * 784, d.x.data<float>() + r * 784, 3136), 0);
  }
}

TEST(NumpyData, ErrorsNameTheFileTheArraysAndTheFix) {
  const std::string arrays = npz("arrays.npz");
  expect_error([&] { load_dataset("npz:" + arrays, Split::kTest, {}); },
               {arrays, "no input array for the test split", "x_test", "a, b, c", "?x=NAME"});
  expect_error([&] { load_dataset("npz:" + arrays + "?x=a", Split::kTest, {}); },
               {arrays, "no labels 'y'", "a, b, c"});
  // a has 2 rows, b 5.
  expect_error([&] { load_dataset("npz:" + arrays + "?x=a&y=b", Split::kTest, {}); },
               {arrays, "'a' has 2 samples", "'b' has 5"});
  expect_error([&] { load_dataset("npz:" + arrays + "?z=a", Split::kTest, {}); },
               {"'z=a' is no array choice", "?x=INPUTS&y=LABELS"});
  expect_error([&] { load_dataset("npy:" + npz("a_f4_le.npy"), Split::kTest, {}); },
               {"npy:INPUTS.npy,LABELS.npy"});
  expect_error(
      [&] {
        load_dataset("npy:" + npz("mnist12_x.npy") + "," + npz("a_i4_le.npy"), Split::kTest, {});
      },
      {"a_i4_le.npy", "class labels must have shape [N]"});
  expect_error([&] { load_dataset("npz:/nonexistent/d.npz", Split::kTest, {}); },
               {"/nonexistent/d.npz", "npz:/nonexistent/d.npz"});
}

}  // namespace
}  // namespace qsearch::data
