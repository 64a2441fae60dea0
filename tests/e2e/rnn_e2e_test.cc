// Issue 11, GRU / LSTM end to end: the PyTorch-exported classifiers (tests/fixtures/rnn,
// tools/make_rnn_fixtures.py) run through `qsearch eval` with PyTorch's accuracies in float, and
// with the opt-in `gru` / `lstm` key in fake and int; MASE's `default` config leaves the RNN float
// (`qsearch quantize` prints it unquantized).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kDir = "tests/fixtures/rnn/";

nlohmann::json eval_json(const std::string& args) {
  Result r = run("eval --dataset mnist --num-samples 2000 --json " + args);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(RnnE2E, EvalFloatAndTheRnnKeyInFakeAndInt) {
  const auto ref = nlohmann::json::parse(read_file(source_dir() + "/" + kDir + "rnn_ref.json"));
  ScratchDir dir("rnn");
  for (const char* model : {"gru_classifier", "lstm_bi2"}) {
    SCOPED_TRACE(model);
    const std::string op = std::string(model).starts_with("gru") ? "gru" : "lstm";
    const std::string cfg = write(dir, op + ".toml",
                                  "[passes.quantize]\nby = \"type\"\n[passes.quantize." + op +
                                      ".config]\nname = \"integer\"\ndata_in_width = 8\n"
                                      "data_in_frac_width = 5\nweight_width = 8\n"
                                      "weight_frac_width = 6\nbias_width = 8\n"
                                      "bias_frac_width = 5\n");
    const auto& r = ref["classifiers"][model];
    for (const char* opset : {"11", "17"}) {
      const std::string m = "--model " + kDir + model + "_opset" + opset + ".onnx";
      EXPECT_NEAR(eval_json(m + " --mode float").value("accuracy", 0.0),
                  r["float"]["accuracy"].get<double>(), 1e-6);
      const double torch = r["rnn8"]["accuracy"].get<double>();
      EXPECT_NEAR(eval_json(m + " --quant " + cfg + " --mode fake").value("accuracy", 0.0), torch,
                  0.002);
      EXPECT_NEAR(eval_json(m + " --quant " + cfg + " --mode int").value("accuracy", 0.0), torch,
                  0.002);
    }
  }
}

TEST(RnnE2E, DefaultConfigLeavesTheGruFloat) {
  ScratchDir dir("rnn_default");
  const std::string cfg =
      write(dir, "default.toml",
            "[passes.quantize]\nby = \"type\"\n[passes.quantize.default."
            "config]\nname = \"integer\"\ndata_in_width = 8\n"
            "data_in_frac_width = 4\nweight_width = 8\nweight_frac_width = 6\n");
  Result r = run("quantize --model " + kDir + "gru_classifier_opset17.onnx --config " + cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  bool gru = false, head = false;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("gru_gru ") && !gru) {
      gru = true;
      EXPECT_EQ(line.find("s8."), std::string::npos) << line;  // no format: float
    }
    // The first "head" row is the per-layer format table's (the FPGA estimate's table follows).
    if (line.starts_with("head ") && !head) {
      head = true;
      EXPECT_NE(line.find("s8.4"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(gru && head) << r.out;
}

}  // namespace
}  // namespace qsearch::e2e
