// Issue 11, GRU / LSTM end to end: the PyTorch-exported classifiers (tests/fixtures/rnn,
// tools/make_rnn_fixtures.py) run through `qsearch eval` with PyTorch's accuracies in float, and
// with the opt-in `gru` / `lstm` key in fake and int; MASE's `default` config leaves the RNN float
// (`qsearch quantize` prints it unquantized).
#include <gtest/gtest.h>

#include <cstdlib>
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

// The config both tests use: MASE's integer formats on every `op` ("gru" / "lstm") node.
std::string rnn_config(const ScratchDir& dir, const std::string& op) {
  return write(
      dir, op + ".toml",
      "[passes.quantize]\nby = \"type\"\n[passes.quantize." + op +
          ".config]\nname = \"integer\"\ndata_in_width = 8\ndata_in_frac_width = 5\n"
          "weight_width = 8\nweight_frac_width = 6\nbias_width = 8\nbias_frac_width = 5\n");
}

TEST(RnnE2E, EvalFloatAndTheRnnKeyInFakeAndInt) {
  const auto ref = nlohmann::json::parse(read_file(source_dir() + "/" + kDir + "rnn_ref.json"));
  ScratchDir dir("rnn");
  for (const char* model : {"gru_classifier", "lstm_bi2"}) {
    SCOPED_TRACE(model);
    const std::string op = std::string(model).starts_with("gru") ? "gru" : "lstm";
    const std::string cfg = rnn_config(dir, op);
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

// `qsearch export --format qonnx` of the GRU and LSTM classifiers (before: refused): Python's
// onnx.checker (full check, with shape inference) accepts the file, and the exported model
// evaluates in fake and int mode with its own Quant formats exactly as the original under the
// config. The QDQ export runs too.
TEST(RnnE2E, QonnxExportPassesTheCheckerAndEvaluatesAsTheOriginal) {
  ScratchDir dir("rnn_export");
  const bool python = std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
  for (const char* model : {"gru_classifier", "lstm_bi2"}) {
    SCOPED_TRACE(model);
    const std::string op = std::string(model).starts_with("gru") ? "gru" : "lstm";
    const std::string cfg = rnn_config(dir, op);
    const std::string src = kDir + model + "_opset17.onnx";
    const std::string out = dir / (std::string(model) + "_q.onnx");
    const Result r = run("export --model " + src + " --config " + cfg +
                         " --format qonnx --num-samples 300 --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    if (python) {
      const std::string check =
          "/usr/bin/python3 -c \"import onnx, sys; "
          "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" " +
          out;
      EXPECT_EQ(std::system(check.c_str()), 0) << check;
    }
    for (const char* mode : {"fake", "int"}) {
      SCOPED_TRACE(mode);
      const Result want = run("eval --dataset mnist --model " + src + " --quant " + cfg +
                              " --num-samples 300 --json --mode " + mode);
      const Result got =
          run("eval --dataset mnist --model " + out + " --num-samples 300 --json --mode " + mode);
      ASSERT_EQ(want.code, 0) << want.err;
      ASSERT_EQ(got.code, 0) << got.err;
      const auto a = nlohmann::json::parse(want.out), b = nlohmann::json::parse(got.out);
      EXPECT_EQ(a["loss"], b["loss"]);
      EXPECT_EQ(a["accuracy"], b["accuracy"]);
    }
    const Result qdq =
        run("export --model " + src + " --config " + cfg +
            " --format qdq --num-samples 100 --out " + (dir / (std::string(model) + "_qdq.onnx")));
    EXPECT_EQ(qdq.code, 0) << qdq.err;
  }
}

}  // namespace
}  // namespace qsearch::e2e
