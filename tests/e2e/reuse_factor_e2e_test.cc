// `[search.strategy.hw_runner.fpga] reuse_factor = [..]`: the search samples a ReuseFactor per
// layer with the formats, its fpga_* metrics follow it, the hls4ml export of a trial writes each
// layer's; a value hls4ml would reject is a config error at its file:line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

// configs/mnist_fpga.toml with `reuse_factor = LIST`.
std::string mnist_fpga_with(const ScratchDir& dir, const std::string& list) {
  std::string text = read_file(source_dir() + "/configs/mnist_fpga.toml");
  const std::string from = "reuse_factor = 16";
  text.replace(text.find(from), from.size(), "reuse_factor = " + list);
  text.replace(text.find("models/mlp_mnist.onnx"), 21, source_dir() + "/models/mlp_mnist.onnx");
  return write(dir, "rf.toml", text);
}

TEST(ReuseFactorE2E, SearchSamplesItPerLayerAndTheHls4mlExportWritesIt) {
  ScratchDir dir("rf_search");
  const std::string config = mnist_fpga_with(dir, "[4, 16]");
  const std::string out = dir / "out";
  Result r = run("search --config " + config +
                 " --sampler random --trials 6 --num-samples 64 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  std::set<int64_t> seen;
  int64_t exported = -1;
  for (const search::FrozenTrial& t : trials_of(out)) {
    nlohmann::json sampled = nlohmann::json::parse(t.user_attrs.at("sampled_config"));
    if (sampled.is_string()) sampled = nlohmann::json::parse(sampled.get<std::string>());
    for (const char* layer : {"fc1", "fc2", "fc3"}) {
      ASSERT_TRUE(sampled[layer]["config"].contains("reuse_factor")) << sampled.dump();
      seen.insert(sampled[layer]["config"]["reuse_factor"].get<int64_t>());
    }
    // The II is the largest layer's ReuseFactor (one pass per sample for a dense layer).
    int64_t max_rf = 0;
    for (const char* layer : {"fc1", "fc2", "fc3"}) {
      max_rf = std::max(max_rf, sampled[layer]["config"]["reuse_factor"].get<int64_t>());
    }
    nlohmann::json attrs = nlohmann::json::parse(t.user_attrs.at("hardware_metrics"));
    if (attrs.is_string()) attrs = nlohmann::json::parse(attrs.get<std::string>());
    EXPECT_EQ(attrs["fpga_ii"].get<int64_t>(), max_rf) << attrs.dump();
    if (exported < 0 &&
        sampled["fc1"]["config"]["reuse_factor"] != sampled["fc3"]["config"]["reuse_factor"]) {
      exported = t.number;
    }
  }
  EXPECT_EQ(seen, (std::set<int64_t>{4, 16}));
  ASSERT_GE(exported, 0) << "no trial with different ReuseFactors for fc1 and fc3";
  Result e = run("export --study " + out + " --trial " + std::to_string(exported) +
                 " --format hls4ml --out " + dir / "hls" + " --num-samples 10");
  ASSERT_EQ(e.code, 0) << e.err;
  const std::string yaml = read_file(dir / "hls/model.yml");
  std::set<std::string> rfs;
  for (size_t at = yaml.find("    ReuseFactor: "); at != std::string::npos;
       at = yaml.find("    ReuseFactor: ", at + 1)) {
    rfs.insert(yaml.substr(at + 17, yaml.find('\n', at) - at - 17));
  }
  EXPECT_EQ(rfs, (std::set<std::string>{"4", "16"})) << yaml;
}

TEST(ReuseFactorE2E, AValueHls4mlRejectsIsAConfigErrorAtItsLine) {
  ScratchDir dir("rf_bad");
  // 32 does not divide fc1's 784 inputs (hls4ml: R < n_in needs n_in * n_out / R % n_out == 0).
  const std::string config = mnist_fpga_with(dir, "[4, 32]");
  Result r = run("search --config " + config + " --trials 1 --num-samples 16 --out " + dir / "out");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("rf.toml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reuse_factor 32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'fc1'"), std::string::npos) << r.err;
  Result s = run("search --config " + mnist_fpga_with(dir, "[4, \"x\"]") + " --trials 1");
  EXPECT_NE(s.code, 0);
  EXPECT_NE(s.err.find("rf.toml:"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("must be an integer"), std::string::npos) << s.err;
}

}  // namespace
}  // namespace qsearch::e2e
