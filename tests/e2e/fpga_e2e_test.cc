// End to end: configs/jsc_fpga.toml (accuracy vs the FPGA cost model's DSPs and latency cycles,
// max_dsp constraint) on a jsc-hls4ml trained on the JSC-format fixture, and `qsearch quantize`
// printing the per-layer FPGA estimate. Constraints follow Optuna: every trial stores its
// "constraints" system attr (value - max, > 0 = violated), and no infeasible trial is a best
// trial.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kJscData = "tests/fixtures/data/jsc_h5";

std::string train_jsc_hls4ml(const ScratchDir& dir) {
  const std::string model = dir / "jsc-hls4ml.onnx";
  Result t = run("--data-dir " + kJscData + " train --model jsc-hls4ml --dataset jsc --epochs 1 " +
                 "--batch-size 64 --out " + model);
  EXPECT_EQ(t.code, 0) << t.err;
  return model;
}

// The shipped config with its constraint tightened so that part of the space is infeasible.
std::string config_with_max_dsp(const ScratchDir& dir, int max_dsp) {
  std::string text = read_file(source_dir() + "/configs/jsc_fpga.toml");
  const std::string from = "max_dsp = 1000";
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos);
  text.replace(at, from.size(), "max_dsp = " + std::to_string(max_dsp));
  return write(dir, "jsc_fpga_tight.toml", text);
}

void expect_constraint_semantics(const std::string& out, int max_dsp, const std::string& sampler) {
  SCOPED_TRACE(sampler);
  const auto trials = trials_of(out);
  ASSERT_FALSE(trials.empty());
  int feasible = 0, infeasible = 0;
  for (const auto& t : trials) {
    if (t.state != search::TrialState::kComplete) continue;
    auto c = t.system_attrs.find("constraints");
    ASSERT_NE(c, t.system_attrs.end()) << "trial " << t.number;
    const auto values = nlohmann::json::parse(c->second);
    ASSERT_TRUE(values.is_array());
    ASSERT_EQ(values.size(), 1u);
    const auto hw = nlohmann::json::parse(t.user_attrs.at("hardware_metrics"));
    EXPECT_DOUBLE_EQ(values[0].get<double>(), hw["fpga_dsp"].get<double>() - max_dsp);
    (values[0].get<double>() > 0 ? infeasible : feasible) += 1;
  }
  EXPECT_GT(feasible, 0);
  EXPECT_GT(infeasible, 0) << "the tightened constraint should cut part of the space";
  // best.json: only feasible trials, each within the DSP budget.
  const auto best = nlohmann::json::parse(read_file(out + "/best.json"));
  ASSERT_FALSE(best.empty());
  for (const auto& [row, r] : best.items()) {
    const auto& hw = r["hardware_metrics"];
    EXPECT_LE(hw["fpga_dsp"].get<double>(), max_dsp) << "best row " << row;
    for (const char* m : {"fpga_lut", "fpga_ff", "fpga_bram", "fpga_latency_cycles",
                          "fpga_latency_ns", "fpga_ii"}) {
      EXPECT_TRUE(hw.contains(m)) << m;
    }
  }
}

TEST(FpgaE2E, JscFpgaConfigSearchesWithTheDspConstraint) {
  ScratchDir dir("fpga_search");
  const std::string model = train_jsc_hls4ml(dir);
  // 16-bit everything needs thousands of DSPs, 4-bit weights none: 300 cuts the space.
  const int max_dsp = 300;
  const std::string config = config_with_max_dsp(dir, max_dsp);
  for (const std::string sampler : {"nsgaii", "tpe"}) {
    const std::string out = dir / ("out_" + sampler);
    Result r = run("--data-dir " + kJscData + " search --config " + config + " --model " + model +
                   " --sampler " + sampler + " --trials 24 --num-samples 256 --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("Best trial(s):"), std::string::npos);
    expect_constraint_semantics(out, max_dsp, sampler);
  }
}

TEST(FpgaE2E, QuantizePrintsThePerLayerEstimate) {
  ScratchDir dir("fpga_quantize");
  const std::string model = train_jsc_hls4ml(dir);
  const std::string base = "--data-dir " + kJscData + " quantize --model " + model +
                           " --config configs/jsc_fpga.toml --dataset jsc --num-samples 64";
  Result text = run(base);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("FPGA estimate: hls4ml io_parallel"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("fpga_latency_ns"), std::string::npos);
  Result js = run(base + " --json --fpga-reuse-factor 2");
  ASSERT_EQ(js.code, 0) << js.err;
  const auto j = nlohmann::json::parse(js.out);
  const auto& f = j["fpga"];
  EXPECT_EQ(f["device"], "xcu250");
  EXPECT_EQ(f["reuse_factor"], 2);
  EXPECT_EQ(f["ii"], 2);
  int64_t dsp = 0;
  int dense = 0;
  for (const auto& l : f["layers"]) {
    dsp += l["dsp"].get<int64_t>();
    dense += l["op"] == "linear";
  }
  EXPECT_EQ(dense, 4);
  EXPECT_EQ(dsp, f["dsp"].get<int64_t>());
  EXPECT_EQ(j["hardware_metrics"]["fpga_dsp"], f["dsp"]);
  // A bad device is a one-line error naming the flag and the known devices.
  Result bad = run(base + " --fpga-device xc7z999");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--fpga-device"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("xcu250"), std::string::npos) << bad.err;
}

TEST(FpgaE2E, ConstraintWithoutTheFpgaRunnerOrAnUnknownKeyIsAClearError) {
  ScratchDir dir("fpga_errors");
  std::string text = read_file(source_dir() + "/configs/jsc_fpga.toml");
  const std::string from = "max_dsp = 1000";
  text.replace(text.find(from), from.size(), "max_dsps = 1000");
  const std::string config = write(dir, "typo.toml", text);
  Result r = run("--data-dir " + kJscData + " search --config " + config + " --trials 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("max_dsps"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_dsp'"), std::string::npos) << r.err;  // did you mean 'max_dsp'?
}

}  // namespace
}  // namespace qsearch::e2e
