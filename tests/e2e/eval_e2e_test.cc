// End to end: `qsearch eval` and `qsearch inspect` against PyTorch's own numbers.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

TEST(EvalE2E, AccuracyEqualsPyTorchOnTheMnistTestSplit) {
  for (const char* model : {"mlp", "cnn"}) {
    auto ref = nlohmann::json::parse(
        read_file(source_dir() + "/tests/fixtures/torch/" + model + "_ref.json"));
    Result r = run(std::string("eval --model tests/fixtures/torch/") + model +
                   "_opset11.onnx --dataset mnist --json");
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["samples"], 10000);
    // Identical top-1 predictions give exactly PyTorch's accuracy (a float32 in the JSON).
    EXPECT_NEAR(j["accuracy"].get<double>(), ref["test_accuracy"].get<double>(), 1e-6) << model;
    for (const char* key : {"loss", "macro_accuracy", "samples_per_s"}) {
      EXPECT_TRUE(j.contains(key)) << key;
    }
  }
}

TEST(EvalE2E, BadInputsAreClearErrors) {
  Result r = run("eval --model /nonexistent.onnx --dataset mnist");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/nonexistent.onnx"), std::string::npos) << r.err;
  r = run("eval --model tests/fixtures/torch/mlp_opset13.onnx --dataset nosuchset");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nosuchset"), std::string::npos) << r.err;
  r =
      run("eval --model tests/fixtures/torch/mlp_opset13.onnx --dataset mnist --data-dir /tmp "
          "--split banana");
  EXPECT_NE(r.code, 0);
}

TEST(EvalE2E, InspectListsConfigNamesAndCounts) {
  Result r = run("inspect --model tests/fixtures/torch/mlp_opset13.onnx --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["params"], 25818);
  EXPECT_EQ(j["macs_per_sample"], 25760);
  EXPECT_EQ(j["nodes"][1]["name"], "fc1");
  EXPECT_EQ(j["nodes"][1]["mase_op"], "linear");
}

}  // namespace
}  // namespace qsearch::e2e
