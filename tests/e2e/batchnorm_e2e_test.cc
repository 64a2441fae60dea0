// End to end, issue 14's "BatchNorm as MASE sees it": tests/fixtures/bn (tools/make_bn_fixtures.py)
// exported with BatchNorm kept. `eval` / `quantize` / `search` keep MASE's semantics by default
// and fold BatchNorm before quantizing with --fold-bn or `fold_batch_norm = true`; the losses are
// PyTorch's under each semantics, the hardware metrics count the folded graph, and a study
// records the choice so that resuming it with the other value is refused. --fold-bn=false /
// --no-fold-bn switch off a config's fold_batch_norm = true. The linconvt_bn fixture folds
// BatchNorm after ConvTranspose, MatMul (+ Add) and Gemm; tests/fixtures/nd's nd_bn after Conv3d,
// Conv1d and ConvTranspose1d.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kModel = "tests/fixtures/bn/resnet_bn_preserve.onnx";
const std::string kData = "npz:tests/fixtures/bn/bn_data.npz";

nlohmann::json ref() {
  std::ifstream in(source_dir() + "/tests/fixtures/bn/bn_ref.json");
  return nlohmann::json::parse(in);
}

// [passes.quantize] with the fixture's formats (conv2d and linear: data_in 8.4, weight 6.4,
// bias 10.5), `top` at the top level.
std::string quant_config(const std::string& top = "",
                         std::vector<std::string> ops = {"conv2d", "linear"}) {
  std::string s = top +
                  "\n[passes.quantize]\nby = \"type\"\n[passes.quantize.default.config]\n"
                  "name = \"NA\"\n";
  for (const std::string& op : ops) {
    s += std::string("[passes.quantize.") + op +
         ".config]\nname = \"integer\"\ndata_in_width = 8\ndata_in_frac_width = 4\n"
         "weight_width = 6\nweight_frac_width = 4\nbias_width = 10\nbias_frac_width = 5\n";
  }
  return s;
}

double eval_loss(const std::string& args) {
  Result r = run("eval --model " + kModel + " --dataset " + kData + " --json " + args);
  EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out).at("loss").get<double>() : -1;
}

TEST(BatchNormE2E, EvalIsMaseByDefaultAndFoldsWithTheFlagOrTheConfigKey) {
  ScratchDir dir("bn_eval");
  const nlohmann::json want = ref();
  const double mase = want.at("loss_mase").get<double>();
  const double folded = want.at("loss_folded").get<double>();
  ASSERT_GT(std::abs(mase - folded), 0.05);  // the two semantics are told apart
  const std::string cfg = write(dir, "q.toml", quant_config());
  const std::string cfg_fold = write(dir, "qf.toml", quant_config("fold_batch_norm = true"));
  for (const char* mode : {"fake", "int"}) {
    SCOPED_TRACE(mode);
    const std::string m = std::string(" --mode ") + mode;
    EXPECT_NEAR(eval_loss("--quant " + cfg + m), mase, 2e-3);
    EXPECT_NEAR(eval_loss("--quant " + cfg + m + " --fold-bn"), folded, 2e-3);
    EXPECT_NEAR(eval_loss("--quant " + cfg_fold + m), folded, 2e-3);
    // The config's fold_batch_norm = true switched off from the command line (the last wins).
    EXPECT_NEAR(eval_loss("--quant " + cfg_fold + m + " --fold-bn=false"), mase, 2e-3);
    EXPECT_NEAR(eval_loss("--quant " + cfg_fold + m + " --no-fold-bn"), mase, 2e-3);
    EXPECT_NEAR(eval_loss("--quant " + cfg_fold + m + " --no-fold-bn --fold-bn"), folded, 2e-3);
    EXPECT_NEAR(eval_loss("--quant " + cfg + m + " --fold-bn=true"), folded, 2e-3);
  }
  // The note names what was folded and what was kept (the BatchNorm after the residual add).
  Result r = run("eval --model " + kModel + " --dataset " + kData + " --quant " + cfg +
                 " --fold-bn --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("5 BatchNormalization node(s) folded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 kept"), std::string::npos) << r.err;
  // A non-boolean key is refused with the file and line.
  const std::string bad = write(dir, "bad.toml", quant_config("fold_batch_norm = 1"));
  r = run("eval --model " + kModel + " --dataset " + kData + " --quant " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.toml:1:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fold_batch_norm"), std::string::npos) << r.err;
  // A flag value that is no boolean is refused naming the flag (not CLI11's internal stoll
  // error).
  for (const char* cmd : {"eval --quant ", "quantize --config "}) {
    r = run(std::string(cmd) + cfg + " --model " + kModel + " --fold-bn=maybe");
    EXPECT_NE(r.code, 0) << cmd;  // CLI11's usage-error exit code, as for every flag
    EXPECT_NE(r.err.find("--fold-bn: expected true or false, got 'maybe'"), std::string::npos)
        << r.err;
  }
}

// BatchNorm after ConvTranspose2d (plain and grouped), x @ W + b, x @ W and a Linear: every one
// folds, and eval's losses are PyTorch's under both semantics in fake, int (and float) modes.
TEST(BatchNormE2E, FoldsAfterConvTransposeMatMulAndGemm) {
  ScratchDir dir("bn_linconvt");
  std::ifstream in(source_dir() + "/tests/fixtures/bn/linconvt_bn_ref.json");
  const nlohmann::json want = nlohmann::json::parse(in);
  const double mase = want.at("loss_mase").get<double>();
  const double folded = want.at("loss_folded").get<double>();
  ASSERT_GT(std::abs(mase - folded), 0.05);
  const std::string model = " --model tests/fixtures/bn/linconvt_bn_preserve.onnx";
  const std::string data = " --dataset npz:tests/fixtures/bn/linconvt_bn_data.npz --json";
  const std::string cfg = write(dir, "q.toml", quant_config("", {"convtranspose2d", "linear"}));
  auto loss = [&](const std::string& args) {
    Result r = run("eval" + model + data + args);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out).at("loss").get<double>() : -1;
  };
  for (const char* mode : {"fake", "int"}) {
    SCOPED_TRACE(mode);
    const std::string m = std::string(" --mode ") + mode;
    EXPECT_NEAR(loss(" --quant " + cfg + m), mase, 2e-3);
    EXPECT_NEAR(loss(" --quant " + cfg + m + " --fold-bn"), folded, 2e-3);
  }
  // Float: folding changes nothing but rounding.
  EXPECT_NEAR(loss(" --mode float --fold-bn"), loss(" --mode float"), 1e-4);
  Result r = run("eval" + model + data + " --quant " + cfg + " --fold-bn");
  EXPECT_NE(r.err.find("5 BatchNormalization node(s) folded"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("kept"), std::string::npos) << r.err;
}

// BatchNorm after Conv3d (plain, grouped), Conv1d and ConvTranspose1d (plain, grouped), which
// the importer writes as 2-D convs followed by a view: all five fold; eval's losses are PyTorch's
// under both semantics, and the folded model exports as QONNX (the 3-D Convs as 3-D Convs) that
// evaluates as the folded one.
TEST(BatchNormE2E, FoldsAfterConv3dConv1dAndConvTranspose1d) {
  ScratchDir dir("bn_nd");
  std::ifstream in(source_dir() + "/tests/fixtures/nd/nd_bn_ref.json");
  const nlohmann::json want = nlohmann::json::parse(in);
  const double mase = want.at("loss_mase").get<double>();
  const double folded = want.at("loss_folded").get<double>();
  ASSERT_GT(std::abs(mase - folded), 0.01);
  const std::string model = " --model tests/fixtures/nd/nd_bn_preserve.onnx";
  const std::string data = " --dataset npz:tests/fixtures/nd/nd_bn_data.npz --json";
  const std::string cfg =
      write(dir, "q.toml", quant_config("", {"conv3d", "conv1d", "convtranspose2d", "linear"}));
  auto loss = [&](const std::string& m, const std::string& args) {
    Result r = run("eval" + m + data + args);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out).at("loss").get<double>() : -1;
  };
  for (const char* mode : {"fake", "int"}) {
    SCOPED_TRACE(mode);
    const std::string m = std::string(" --mode ") + mode;
    EXPECT_NEAR(loss(model, " --quant " + cfg + m), mase, 1e-3);
    EXPECT_NEAR(loss(model, " --quant " + cfg + m + " --fold-bn"), folded, 1e-3);
  }
  EXPECT_NEAR(loss(model, " --mode float --fold-bn"), loss(model, " --mode float"), 1e-4);
  Result r = run("eval" + model + data + " --quant " + cfg + " --fold-bn");
  EXPECT_NE(r.err.find("5 BatchNormalization node(s) folded"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("kept"), std::string::npos) << r.err;
  const std::string out = dir / "nd_bn_q.onnx";
  r = run("export" + model + " --config " + cfg +
          " --dataset npz:tests/fixtures/nd/nd_bn_data.npz --fold-bn --format qonnx --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(loss(" --model " + out, " --mode int"), folded, 1e-3);
}

TEST(BatchNormE2E, QuantizeCountsTheFoldedGraph) {
  ScratchDir dir("bn_quantize");
  const std::string cfg = write(dir, "q.toml", quant_config());
  auto quantize = [&](const std::string& extra) {
    Result r =
        run("quantize --model " + kModel + " --config " + cfg + " --repeats 1 --json" + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  };
  const nlohmann::json kept = quantize("").value("hardware_metrics", nlohmann::json::object());
  const nlohmann::json folded =
      quantize(" --fold-bn").value("hardware_metrics", nlohmann::json::object());
  ASSERT_TRUE(kept.contains("model_size_bytes")) << kept.dump();
  ASSERT_TRUE(folded.contains("model_size_bytes")) << folded.dump();
  // BatchNorm parameters: float32 [gamma, beta, mean, var] per channel, kept: 8 + 16 * 4 + 16
  // (after the add) + 12 channels. Folded, only the BatchNorm after the add remains (16 channels)
  // and the five folded convs / linears get a 10-bit bias (b_conv1, b_conv2 and conv1 get one;
  // down and fc1 had one): 4 * 16 * 4 bytes of BatchNorm plus the new biases at 10 bits.
  const int64_t bn_kept = (8 + 16 + 16 + 16 + 16 + 12) * 4 * 4, bn_folded = 16 * 4 * 4;
  const int64_t new_biases = (8 * 10 + 7) / 8 + (16 * 10 + 7) / 8 + (16 * 10 + 7) / 8;
  EXPECT_EQ(
      kept.at("model_size_bytes").get<int64_t>() - folded.at("model_size_bytes").get<int64_t>(),
      bn_kept - bn_folded - new_biases)
      << kept.dump() << "\n"
      << folded.dump();
}

TEST(BatchNormE2E, AStudyRecordsFoldBatchNormAndRefusesToResumeWithTheOtherValue) {
  ScratchDir dir("bn_search");
  const std::string space = R"(
model = ")" + kModel + R"("
dataset = ")" + kData + R"("
batch_size = 8
[search.search_space]
name = "graph/quantize/mixed_precision_ptq"
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.conv2d.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = [4]
weight_width = [4, 6]
weight_frac_width = [4]
bias_width = [10]
bias_frac_width = [5]
[search.strategy]
name = "optuna"
eval_mode = true
[search.strategy.sw_runner.basic_evaluation]
mode = "fake"
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
n_trials = 2
sampler = "bruteforce"
seed = 0
[search.strategy.metrics]
loss.scale = 1.0
loss.direction = "minimize"
)";
  const std::string cfg = write(dir, "s.toml", space);
  const std::string out = dir / "out";
  Result r = run("search --config " + cfg + " --fold-bn --out " + out + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("folded"), std::string::npos) << r.err;
  r = run("search --config " + cfg + " --trials 3 --out " + out + " --quiet");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("fold_batch_norm: true in the study, false in this run"), std::string::npos)
      << r.err;
  r = run("search --config " + cfg + " --trials 3 --fold-bn --out " + out + " --quiet");
  EXPECT_EQ(r.code, 0) << r.err;
  // export of the folded study's trial: --no-fold-bn contradicts the study and is refused.
  r = run("export --study " + out + " --trial 0 --format qonnx --out " + (dir / "x.onnx") +
          " --dataset " + kData + " --no-fold-bn");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("--no-fold-bn: the study in --study"), std::string::npos) << r.err;

  // A config's fold_batch_norm = true switched off by --no-fold-bn: the study records false, and
  // resuming it without the flag (the config's true) is refused.
  const std::string cfg_fold = write(dir, "sf.toml", "fold_batch_norm = true\n" + space);
  const std::string out2 = dir / "out2";
  r = run("search --config " + cfg_fold + " --no-fold-bn --out " + out2 + " --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("folded"), std::string::npos) << r.err;
  r = run("search --config " + cfg_fold + " --trials 3 --out " + out2 + " --quiet");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("fold_batch_norm: false in the study, true in this run"), std::string::npos)
      << r.err;
  r = run("search --config " + cfg_fold + " --trials 3 --fold-bn=false --out " + out2 + " --quiet");
  EXPECT_EQ(r.code, 0) << r.err;
}

}  // namespace
}  // namespace qsearch::e2e
