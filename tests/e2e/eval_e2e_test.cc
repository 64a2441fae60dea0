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

// The executor's buffers follow the batch actually evaluated: 32 samples at the default batch
// of 256 allocate for 32, and a schedule (forced or chosen) never changes the numbers.
TEST(EvalE2E, BuffersFollowTheBatchAndSchedulesAgree) {
  const std::string base = "eval --model models/mlp_mnist.onnx --dataset mnist --json ";
  auto eval = [&](const std::string& args) {
    Result r = run(base + args);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  };
  const auto j32 = eval("--num-samples 32");
  const auto b32 = eval("--num-samples 32 --batch-size 32");
  const auto b64 = eval("--num-samples 64 --batch-size 64");
  const int64_t a32 = j32["activation_bytes_per_batch"].get<int64_t>();
  EXPECT_EQ(a32, b32["activation_bytes_per_batch"].get<int64_t>());
  EXPECT_EQ(2 * a32, b64["activation_bytes_per_batch"].get<int64_t>());
  EXPECT_GT(a32, 32 * 784 * 4);
  // The samples an Executor runs at once: a row-independent MLP runs in micro-batches of at
  // most the batch (multiples of 8, the GEMM's row tiles, when 8 or more).
  for (const auto* j : {&b32, &b64}) {
    const int64_t mb = (*j)["micro_batch"].get<int64_t>();
    EXPECT_GT(mb, 0);
    EXPECT_LE(mb, (*j)["samples"].get<int64_t>());
    EXPECT_EQ(mb % 8, 0);
  }
  const auto want = eval("--num-samples 300 --batch-size 64 --schedule batch-parallel");
  for (const char* s : {"auto", "threaded-kernels", "both"}) {
    const auto got =
        eval(std::string("--num-samples 300 --batch-size 64 --threads 2 --schedule ") + s);
    EXPECT_EQ(got["loss"], want["loss"]) << s;
    EXPECT_EQ(got["accuracy"], want["accuracy"]) << s;
  }
  Result bad = run(base + "--schedule fastest");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(
      bad.err.find("--schedule 'fastest': use auto, batch-parallel, threaded-kernels or both"),
      std::string::npos)
      << bad.err;
}

// --conv-algorithm (float mode's 3x3 convs): every value runs, a bad one is a one-line error
// naming the flag and the choices, before the model is read.
TEST(EvalE2E, ConvAlgorithmFlag) {
  const std::string base = "eval --model models/mlp_mnist.onnx --dataset mnist --num-samples 32 ";
  for (const char* a : {"auto", "direct", "winograd"}) {
    Result r = run(base + "--conv-algorithm " + a);
    EXPECT_EQ(r.code, 0) << a << ": " << r.err;
  }
  Result bad = run("eval --model /nonexistent.onnx --conv-algorithm fast");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--conv-algorithm 'fast': use auto, direct or winograd"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.err.find("nonexistent"), std::string::npos) << bad.err;
  bad = run("quantize --model /nonexistent.onnx --conv-algorithm 3x3");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--conv-algorithm '3x3': use auto, direct or winograd"), std::string::npos)
      << bad.err;
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
