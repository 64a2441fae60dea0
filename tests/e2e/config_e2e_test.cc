// End to end: what `qsearch` does with the numbers and names a user gives it, through the real
// binary: range checks of every numeric flag (one plain line, exit 1, before any work), exact
// --num-samples in search as in eval, batch sizes larger than the data.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"
#include "storage/sqlite_storage.h"

namespace qsearch::e2e {
namespace {

const std::string kMlp = "tests/fixtures/torch/mlp_opset13.onnx";

// A small search of the MLP fixture on MNIST; `top` and `runners` are added at the top level
// and after the basic_evaluation table.
std::string mlp_search(const std::string& top = "", const std::string& runners = "") {
  return "model = \"" + kMlp + "\"\ndataset = \"mnist\"\n" + top + R"(
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [8]
weight_width = [4, 8]
[search.strategy.sw_runner.basic_evaluation]
)" + runners +
         R"(
[search.strategy.setup]
sum_scaled_metrics = false
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
)";
}

TEST(ConfigE2E, NumericFlagsOutOfRangeArePlainOneLineErrors) {
  ScratchDir dir("flags");
  const std::string cfg = write(dir, "c.toml", mlp_search());
  const std::string search = "search --config " + cfg + " --out " + (dir / "out") + " ";
  const std::string eval = "eval --model " + kMlp + " --dataset mnist ";
  const std::string quantize =
      "quantize --model " + kMlp + " --config " + "configs/mnist_mlp_int8.toml --dataset mnist ";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {search + "--trials -3", "--trials must be at least 1 (got -3)"},
      {search + "--trials 0", "--trials must be at least 1 (got 0)"},
      {search + "--timeout -1", "--timeout must be a positive number (got -1)"},
      {search + "--timeout nan", "--timeout must be a positive number (got nan)"},
      {search + "--timeout inf", "--timeout must be a positive number (got inf)"},
      {search + "--seed -1", "--seed must be at least 0 (got -1)"},
      {search + "--jobs 0", "--jobs must be at least 1 (got 0)"},
      {search + "--num-samples 0", "--num-samples must be at least 1 (got 0)"},
      {eval + "--num-samples -1", "--num-samples must be at least 1 (got -1)"},
      {eval + "--batch-size 0", "--batch-size must be at least 1 (got 0)"},
      {quantize + "--batch-size -2", "--batch-size must be at least 1 (got -2)"},
      {quantize + "--num-samples 0", "--num-samples must be at least 1 (got 0)"},
      {quantize + "--latency-batch 0", "--latency-batch must be at least 1 (got 0)"},
      {quantize + "--repeats 0", "--repeats must be at least 1 (got 0)"},
      {quantize + "--compare-to 0", "--compare-to must be a positive number (got 0)"},
      {quantize + "--compare-to -32", "--compare-to must be a positive number (got -32)"},
      {"--threads -1 " + eval, "--threads must be at least 0 (got -1)"},
  };
  for (const Case& c : cases) {
    Result r = run(c.args);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_EQ(r.err, "qsearch: error: " + c.message + "\n") << c.args;
  }
  EXPECT_FALSE(fs::exists(dir / "out"));  // refused before anything was created
}

TEST(ConfigE2E, SearchEvaluatesExactlyNumSamplesAsEvalDoes) {
  // 1000 is not a multiple of the batch (256): the last batch is partial in both commands.
  ScratchDir dir("num_samples");
  const std::string cfg = write(dir, "c.toml", mlp_search("batch_size = 256\n"));
  Result s = run("search --config " + cfg + " --out " + (dir / "out") +
                 " --trials 1 --mode float --num-samples 1000");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.err.find("1000 samples/trial, batch 256"), std::string::npos) << s.err;
  auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 1u);
  ASSERT_EQ(trials[0].state, search::TrialState::kComplete);
  auto sw = nlohmann::json::parse(trials[0].user_attrs.at("software_metrics"));

  Result e = run("eval --model " + kMlp +
                 " --dataset mnist --split val --num-samples 1000 --batch-size 256 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j["samples"], 1000);
  // Float mode evaluates the model as eval does: the same samples give the same numbers.
  EXPECT_EQ(sw["accuracy"].get<double>(), j["accuracy"].get<double>());
  EXPECT_EQ(sw["loss"].get<double>(), j["loss"].get<double>());
}

TEST(ConfigE2E, BatchLargerThanTheDataIsClamped) {
  ScratchDir dir("big_batch");
  // A plan for a billion samples would not fit in memory: every trial used to fail.
  const std::string cfg =
      write(dir, "c.toml", mlp_search("batch_size = 1000000000\n", "num_samples = 300\n"));
  Result s = run("search --config " + cfg + " --out " + (dir / "out") + " --trials 2");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.err.find("300 samples/trial, batch 300"), std::string::npos) << s.err;
  auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 2u);
  for (const auto& t : trials) EXPECT_EQ(t.state, search::TrialState::kComplete);

  Result e = run("eval --model " + kMlp +
                 " --dataset mnist --num-samples 300 --batch-size 1000000000 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(nlohmann::json::parse(e.out)["samples"], 300);
  Result q = run("quantize --model " + kMlp +
                 " --config configs/mnist_mlp_int8.toml --dataset mnist --num-samples 300 "
                 "--batch-size 1000000000 --json");
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(nlohmann::json::parse(q.out)["software_metrics"]["samples"], 300);
}

TEST(ConfigE2E, WhatWouldFailEveryTrialIsRefusedBeforeTrialZero) {
  ScratchDir dir("fail_all");
  // MNIST's validation split has 10000 samples: a latency batch of 20000 cannot be measured.
  const std::string cfg = write(
      dir, "c.toml",
      mlp_search("",
                 "num_samples = 100\n[search.strategy.hw_runner.latency]\nbatch_size = 20000\n"));
  Result s = run("search --config " + cfg + " --out " + (dir / "out") + " --trials 2");
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find("batch_size = 20000 needs that many samples"), std::string::npos) << s.err;
  EXPECT_EQ(s.err.find("trial    0"), std::string::npos) << s.err;
}

TEST(ConfigE2E, MaseSpellingsWeRefuseGetAHint) {
  ScratchDir dir("mase_hints");
  // MASE's floor rounding switch, in a search seed and in a [passes.quantize] entry.
  std::string seed = mlp_search("", "num_samples = 100\n");
  seed.replace(seed.find("weight_width = [4, 8]"), 21, "weight_width = [4, 8]\nfloor = [true]");
  Result r = run("search --config " + write(dir, "s.toml", seed) + " --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("unknown field 'floor' in seed 'linear': 'floor' is MASE's floor-rounding"),
            std::string::npos)
      << r.err;
  std::string pass = read_file(source_dir() + "/configs/mnist_mlp_int8.toml");
  pass.replace(pass.find("weight_width = 8"), 16, "weight_width = 8\nweight_exponent_width = 4");
  r = run("quantize --model " + kMlp + " --config " + write(dir, "q.toml", pass));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("'weight_exponent_width' is a key of MASE's"), std::string::npos) << r.err;
  // A directory passed as --config.
  r = run("search --config configs");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("config 'configs' is a directory, not a TOML file: give one file, e.g. "
                       "configs/"),
            std::string::npos)
      << r.err;
}

TEST(ConfigE2E, SpaceSizesBeyondInt64PrintAsSuch) {
  ScratchDir dir("huge_space");
  // Three linear layers with 125 frac widths for each of 4 operands: 125^12 ~ 1.5e25.
  std::string fracs = "[";
  for (int f = -62; f <= 62; ++f) fracs += std::to_string(f) + (f < 62 ? ", " : "]");
  std::string cfg = "model = \"" + kMlp + "\"\ndataset = \"mnist\"\n" +
                    "[search.search_space.setup]\nby = \"name\"\n"
                    "[search.search_space.seed.default.config]\nname = [\"NA\"]\n";
  for (const char* fc : {"fc1", "fc2", "fc3"}) {
    cfg += std::string("[search.search_space.seed.") + fc + ".config]\nname = [\"integer\"]\n" +
           "data_in_width = [8]\nweight_width = [8]\nbias_width = [8]\ndata_out_width = [8]\n" +
           "data_in_frac_width = " + fracs + "\nweight_frac_width = " + fracs +
           "\nbias_frac_width = " + fracs + "\ndata_out_frac_width = " + fracs + "\n";
  }
  cfg += R"(
[search.strategy.sw_runner.basic_evaluation]
num_samples = 10
[search.strategy.setup]
sum_scaled_metrics = false
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
)";
  Result r = run("search --config " + write(dir, "c.toml", cfg) + " --out " + (dir / "out") +
                 " --trials 1 --sampler random");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("> 9.2e18 configurations"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("9223372036854775807"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qsearch::e2e
