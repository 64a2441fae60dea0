// End to end, issue 8 item 6: which model output is scored and how.
//   * A model ending in Softmax is scored with the negative log-likelihood of its probabilities
//     (so its loss equals the cross-entropy of the same model without the Softmax), with a note.
//   * So is a model ending in LogSoftmax, by -logp[label] (no second softmax), in every mode.
//   * A model whose output does not hold one score per class is refused before anything runs
//     (search: before the first trial, nothing recorded).
//   * A model with several outputs says which one is scored; --output NAME picks another, and an
//     unknown NAME is an error listing the outputs.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "e2e/e2e_util.h"
#include "ir/graph.h"
#include "onnx/export.h"

namespace qsearch::e2e {
namespace {

// x [N, 1, 28, 28] -> Flatten -> Gemm (classes x 784, deterministic weights) = "logits"
// [-> Softmax = "probs"] [-> LogSoftmax = "log_probs"]; `outputs` names the graph outputs in
// order.
void write_model(const std::string& path, int64_t classes,
                 const std::vector<std::string>& outputs) {
  ir::Graph g;
  const ir::ValueId x = g.add_input("x", {kDynamic, 1, 28, 28});
  Tensor w({classes, 784}, DType::kFloat32);
  for (int64_t i = 0; i < w.numel(); ++i) {
    w.data<float>()[i] = 0.02f * static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  }
  Tensor b({classes}, DType::kFloat32);
  // A confident model (class 0 favoured by 5): -log p[label] is far from what cross-entropy of
  // the probabilities taken as logits gives (at most log(9 + e) = 2.46 for 10 classes).
  for (int64_t i = 0; i < classes; ++i) b.data<float>()[i] = i == 0 ? 5.0f : 0.0f;
  const ir::ValueId flat = g.add_value("flat");
  g.add_node({ir::OpKind::kFlatten, "/flatten/Flatten", {x}, {flat}, ir::AxisAttrs{1}});
  const ir::ValueId logits = g.add_value("logits");
  g.add_node(
      {ir::OpKind::kGemm,
       "/fc/Gemm",
       {flat, g.add_constant("fc.weight", std::move(w)), g.add_constant("fc.bias", std::move(b))},
       {logits},
       ir::GemmAttrs{.trans_b = true}});
  const ir::ValueId probs = g.add_value("probs");
  g.add_node({ir::OpKind::kSoftmax, "/softmax/Softmax", {logits}, {probs}, ir::AxisAttrs{-1}});
  const ir::ValueId log_probs = g.add_value("log_probs");
  g.add_node({ir::OpKind::kLogSoftmax,
              "/log_softmax/LogSoftmax",
              {logits},
              {log_probs},
              ir::AxisAttrs{1}});
  for (const std::string& o : outputs) {
    g.mark_output(o == "probs" ? probs : o == "log_probs" ? log_probs : logits);
  }
  g.finalize();
  onnx::export_model(g, path);
}

nlohmann::json eval_json(const std::string& model, const std::string& extra,
                         Result* raw = nullptr) {
  Result r = run("eval --model '" + model + "' --dataset mnist --num-samples 300 --json " + extra);
  if (raw) *raw = r;
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(ModelOutputE2E, SoftmaxModelIsScoredByTheLikelihoodOfItsProbabilities) {
  ScratchDir dir("softmax_out");
  write_model(dir / "logits.onnx", 10, {"logits"});
  write_model(dir / "probs.onnx", 10, {"probs"});
  Result with_softmax;
  const nlohmann::json a = eval_json(dir / "logits.onnx", "");
  const nlohmann::json b = eval_json(dir / "probs.onnx", "", &with_softmax);
  ASSERT_TRUE(a.contains("loss") && b.contains("loss"));
  // -log softmax(z)[y] is the cross-entropy of z: the same number up to float32 rounding.
  EXPECT_NEAR(b["loss"].get<double>(), a["loss"].get<double>(), 1e-4);
  EXPECT_EQ(b["accuracy"], a["accuracy"]);
  EXPECT_NE(with_softmax.err.find("ends in Softmax"), std::string::npos) << with_softmax.err;
  // Cross-entropy of probabilities taken as logits (MASE's reading) is at most log(9 + e).
  EXPECT_GT(b["loss"].get<double>(), std::log(9.0 + std::exp(1.0)) + 0.5);
}

TEST(ModelOutputE2E, LogSoftmaxModelIsScoredByItsLogLikelihoodInEveryMode) {
  ScratchDir dir("log_softmax_out");
  write_model(dir / "logits.onnx", 10, {"logits"});
  write_model(dir / "log_probs.onnx", 10, {"log_probs"});
  // fc quantized to 8-bit integers; the LogSoftmax stays float (MASE cannot quantize it).
  const std::string quant = dir / "quant.toml";
  std::ofstream(quant) << "[passes.quantize]\nby = \"name\"\n"
                          "[passes.quantize.default.config]\nname = \"NA\"\n"
                          "[passes.quantize.fc.config]\nname = \"integer\"\n"
                          "data_in_width = 8\ndata_in_frac_width = 4\n"
                          "weight_width = 8\nweight_frac_width = 7\n";
  for (const std::string mode : {"float", "fake", "int"}) {
    SCOPED_TRACE(mode);
    const std::string extra = mode == "float" ? "" : "--mode " + mode + " --quant '" + quant + "'";
    Result with_log_softmax;
    const nlohmann::json a = eval_json(dir / "logits.onnx", extra);
    const nlohmann::json b = eval_json(dir / "log_probs.onnx", extra, &with_log_softmax);
    ASSERT_TRUE(a.contains("loss") && b.contains("loss"));
    // -log_softmax(z)[y] is the cross-entropy of z.
    EXPECT_NEAR(b["loss"].get<double>(), a["loss"].get<double>(), 1e-4);
    EXPECT_EQ(b["accuracy"], a["accuracy"]);
    EXPECT_NE(with_log_softmax.err.find("ends in LogSoftmax"), std::string::npos)
        << with_log_softmax.err;
  }
}

TEST(ModelOutputE2E, WrongOutputCountIsRefusedBeforeTheFirstTrial) {
  ScratchDir dir("count_out");
  write_model(dir / "seven.onnx", 7, {"logits"});
  Result r = run("eval --model '" + (dir / "seven.onnx") + "' --dataset mnist --num-samples 10");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("7 values per sample"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("10 classes"), std::string::npos) << r.err;

  const std::string cfg = dir / "search.toml";
  std::ofstream(cfg) << "model = \"seven.onnx\"\ndataset = \"mnist\"\n"
                        "[search.search_space]\nname = \"graph/quantize/mixed_precision_ptq\"\n"
                        "[search.search_space.setup]\nby = \"name\"\n"
                        "[search.search_space.seed.default.config]\nname = [\"NA\"]\n"
                        "[search.search_space.seed.fc.config]\nname = [\"integer\"]\n"
                        "data_in_width = [8]\ndata_in_frac_width = [4]\n"
                        "weight_width = [8]\nweight_frac_width = [4]\n"
                        "[search.strategy]\nname = \"optuna\"\n"
                        "[search.strategy.sw_runner.basic_evaluation]\nnum_samples = 64\n"
                        "[search.strategy.setup]\nn_trials = 2\n"
                        "[search.strategy.metrics]\naccuracy.scale = 1.0\n"
                        "accuracy.direction = \"maximize\"\n";
  r = run("search --config '" + cfg + "' --model '" + (dir / "seven.onnx") + "' --out '" +
          (dir / "out") + "' --quiet");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("7 values per sample"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out/study.db")) << "a study was created for a refused model";
}

TEST(ModelOutputE2E, SeveralOutputsNameTheOneScoredAndOutputPicksAnother) {
  ScratchDir dir("multi_out");
  write_model(dir / "two.onnx", 10, {"probs", "logits"});
  Result r;
  const nlohmann::json first = eval_json(dir / "two.onnx", "", &r);
  EXPECT_NE(r.err.find("2 outputs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'probs'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--output"), std::string::npos) << r.err;
  const nlohmann::json logits = eval_json(dir / "two.onnx", "--output logits");
  ASSERT_TRUE(first.contains("loss") && logits.contains("loss"));
  EXPECT_NEAR(first["loss"].get<double>(), logits["loss"].get<double>(), 1e-4);

  r = run("eval --model '" + (dir / "two.onnx") + "' --dataset mnist --output nope");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("'nope'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'probs', 'logits'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qsearch::e2e
