// End to end: every shipped config (configs/**/*.toml) runs, as the README promises.
#include <gtest/gtest.h>

#include <set>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(source_dir() + "/configs")) {
    if (e.path().extension() == ".toml") {
      out.push_back(fs::relative(e.path(), source_dir()).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool has_search(const std::string& config) {
  return read_file(source_dir() + "/" + config).find("[search.") != std::string::npos;
}
bool has_quantize_pass(const std::string& config) {
  return read_file(source_dir() + "/" + config).find("[passes.quantize]") != std::string::npos;
}

TEST(ConfigsE2E, EveryShippedConfigRuns) {
  const auto configs = shipped_configs();
  ASSERT_GE(configs.size(), 5u);
  ScratchDir dir("configs");
  // configs/mase/jsc_tiny.toml needs a jsc-tiny trained on JSC data, which cannot be had here:
  // train one on the JSC-format fixture, as its header tells a user to do with the real file.
  const std::string jsc_data = "tests/fixtures/data/jsc_h5";
  const std::string jsc_tiny_model = dir / "jsc-tiny.onnx";
  Result t = run("--data-dir " + jsc_data + " train --model jsc-tiny --dataset jsc --epochs 2 " +
                 "--batch-size 64 --out " + jsc_tiny_model);
  ASSERT_EQ(t.code, 0) << t.err;
  // configs/jsc_fpga.toml searches the hls4ml tutorial's jet tagger (jsc-hls4ml).
  const std::string hls4ml_model = dir / "jsc-hls4ml.onnx";
  t = run("--data-dir " + jsc_data + " train --model jsc-hls4ml --dataset jsc --epochs 1 " +
          "--batch-size 64 --out " + hls4ml_model);
  ASSERT_EQ(t.code, 0) << t.err;

  int searched = 0, quantized = 0;
  for (const std::string& c : configs) {
    SCOPED_TRACE(c);
    const bool jsc =
        c.find("jsc") != std::string::npos &&
        read_file(source_dir() + "/" + c).find("dataset = \"jsc\"") != std::string::npos;
    const std::string data = jsc ? "--data-dir " + jsc_data + " " : "";
    const std::string jsc_model =
        read_file(source_dir() + "/" + c).find("model = \"jsc-hls4ml\"") != std::string::npos
            ? hls4ml_model
            : jsc_tiny_model;
    if (has_search(c)) {
      std::string out = dir / ("out_" + std::to_string(searched));
      Result r = run(data + "search --config " + c + " --trials 3 --num-samples 256 --out " + out +
                     (jsc ? " --model " + jsc_model : ""));
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("Best trial(s):"), std::string::npos);
      EXPECT_TRUE(fs::exists(out + "/best.json"));
      ++searched;
    }
    if (has_quantize_pass(c)) {
      // The config's [passes.quantize] on its model (MNIST MLP for all the shipped ones).
      std::string model = jsc ? jsc_model : "models/mlp_mnist.onnx";
      Result r = run(data + "quantize --model " + model + " --config " + c + " --dataset " +
                     (jsc ? "jsc" : "mnist") + " --num-samples 256");
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("average_bitwidth"), std::string::npos);
      ++quantized;
    }
  }
  EXPECT_GE(searched, 4);
  EXPECT_GE(quantized, 2);
}

}  // namespace
}  // namespace qsearch::e2e
