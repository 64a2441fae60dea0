// `qsearch quantize` and `qsearch eval --quant`: config errors name file:line and the key (unknown
// key with the nearest valid one, widths 0 and 33, a missing required entry, a key matching no
// node), and the commands' outputs agree with the library they report (the int plan's bytes,
// MASE's average bitwidth, the fixtures' PyTorch accuracy).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cli/app.h"
#include "cli/quant_args.h"
#include "core/error.h"
#include "onnx/import.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::cli {
namespace {

namespace fs = std::filesystem;

const std::string kFixtures = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/";
const std::string kMlp = kFixtures + "torch/mlp_opset13.onnx";

std::string write_toml(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() /
               ("qsearch_quantize_test_" + std::to_string(::getpid()) + "_" + name + ".toml");
  std::ofstream(p) << text;
  return p.string();
}

// The error load_quantize_pass gives for a config (and the file it wrote).
std::pair<std::string, std::string> error_of(const std::string& name, const std::string& text) {
  const std::string path = write_toml(name, text);
  const ir::Graph g = onnx::import_model(kMlp);
  try {
    load_quantize_pass(path, g);
  } catch (const Error& e) {
    return {e.what(), path};
  }
  return {"", path};
}

const char* kHeader = "[passes.quantize]\nby = \"name\"\n[passes.quantize.fc1.config]\n";

void expect_mentions(const std::string& msg, const std::vector<std::string>& parts) {
  ASSERT_FALSE(msg.empty()) << "no error";
  for (const auto& p : parts) {
    EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  does not mention: " << p;
  }
}

TEST(QuantizeConfig, ErrorsNameFileLineAndKey) {
  {  // a typo: the key's own line and the nearest valid key
    auto [msg, path] = error_of("typo", std::string(kHeader) +
                                            "name = \"integer\"\ndata_in_width = 8\n"
                                            "data_in_frac_widht = 4\nweight_width = 8\n");
    expect_mentions(msg,
                    {path + ":6:", "'data_in_frac_widht'", "did you mean 'data_in_frac_width'"});
  }
  for (int width : {0, 33}) {
    auto [msg, path] = error_of("width" + std::to_string(width),
                                std::string(kHeader) + "name = \"integer\"\ndata_in_width = 8\n" +
                                    "weight_width = " + std::to_string(width) + "\n");
    expect_mentions(msg, {path + ":6:", "'weight_width'", std::to_string(width), "1..32"});
  }
  {  // a missing required entry: the table's line, the key and the op that needs it
    auto [msg, path] =
        error_of("missing", std::string(kHeader) + "name = \"integer\"\ndata_in_width = 8\n");
    expect_mentions(msg, {path + ":3:", "'weight_width'", "linear", "fc1"});
  }
  {  // a node that does not exist
    auto [msg, path] = error_of("node",
                                "[passes.quantize]\nby = \"name\"\n"
                                "[passes.quantize.fc4.config]\nname = \"integer\"\n"
                                "data_in_width = 8\nweight_width = 8\n");
    expect_mentions(msg, {path + ":3:", "'fc4'", "did you mean 'fc1'"});
  }
  {  // an op type that does not exist
    auto [msg, path] = error_of("type",
                                "[passes.quantize]\nby = \"type\"\n"
                                "[passes.quantize.lineer.config]\nname = \"integer\"\n");
    expect_mentions(msg, {path + ":3:", "'lineer'", "did you mean 'linear'"});
  }
  {  // no [passes.quantize] at all
    auto [msg, path] = error_of("none", "model = \"x\"\n");
    expect_mentions(msg, {path, "no [passes.quantize]"});
  }
  EXPECT_THROW(parse_mode("integer"), Error);
}

// Runs `qsearch <args>` in process; returns (exit code, stdout).
std::pair<int, std::string> qsearch(std::vector<std::string> args) {
  args.insert(args.begin(), "qsearch");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream out;
  std::streambuf* saved = std::cout.rdbuf(out.rdbuf());
  const int code = main(static_cast<int>(argv.size()), argv.data());
  std::cout.rdbuf(saved);
  return {code, out.str()};
}

TEST(QuantizeCommand, ReportsTheIntPlanAndMaseMetrics) {
  const std::string cfg = kFixtures + "quant_models/mlp_weights4.toml";
  auto [code, out] =
      qsearch({"quantize", "--model", kMlp, "--config", cfg, "--json", "--repeats", "3"});
  ASSERT_EQ(code, 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  const ir::Graph g = onnx::import_model(kMlp);
  const auto q = load_quantize_pass(cfg, g);
  auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kInt, .quant = q});
  const auto& hw = j.at("hardware_metrics");
  // model_size_bytes: each parameter at its width, per tensor rounded up to whole bytes (4-bit
  // weights; this config's biases are s8); the engine's in-memory bytes separately.
  EXPECT_EQ(hw.at("model_size_bytes").get<int64_t>(),
            (784 * 32 + 32 * 16 + 16 * 10) * 4 / 8 + (32 + 16 + 10) * 8 / 8);
  EXPECT_EQ(hw.at("engine_parameter_bytes").get<int64_t>(), plan->parameter_bytes());
  // 4-bit weights everywhere: MASE's average bitwidth is exactly 4.
  EXPECT_DOUBLE_EQ(hw.at("average_bitwidth").get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(hw.at("memory_density").get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(hw.at("macs").get<double>(), 784 * 32 + 32 * 16 + 16 * 10);
  EXPECT_DOUBLE_EQ(hw.at("bitops").get<double>(), (784 * 32 + 32 * 16 + 16 * 10) * 4.0 * 8.0);
  EXPECT_GT(hw.at("latency_ms").get<double>(), 0.0);
  int64_t layer_bytes = 0, layer_packed = 0;
  for (const auto& l : j.at("layers")) {
    layer_bytes += l.at("bytes").get<int64_t>();
    layer_packed += l.at("packed_bytes").get<int64_t>();
  }
  EXPECT_EQ(layer_bytes, hw.at("model_size_bytes").get<int64_t>());
  EXPECT_EQ(layer_packed, plan->parameter_bytes());
  EXPECT_EQ(j.at("layers")[1].at("weight").get<std::string>(), "s4.4");
  EXPECT_FALSE(j.contains("software_metrics"));

  // Bad configs exit with 1 (the message goes to stderr).
  const std::string bad =
      write_toml("cmd_bad", std::string(kHeader) + "name = \"integer\"\ndata_in_width = 33\n");
  EXPECT_EQ(qsearch({"quantize", "--model", kMlp, "--config", bad}).first, 1);
  EXPECT_EQ(qsearch({"eval", "--model", kMlp, "--quant", bad}).first, 1);
}

TEST(QuantizeCommand, EvalQuantGivesTheFixtureAccuracyInEveryMode) {
  std::ifstream in(kFixtures + "quant_models/mlp_quant_ref.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  const nlohmann::json* mixed = nullptr;
  for (const auto& c : ref.at("configs")) {
    if (c.at("name") == "mixed") mixed = &c;
  }
  ASSERT_NE(mixed, nullptr);
  const std::string cfg = kFixtures + "quant_models/mlp_mixed.toml";
  for (const std::string mode : {"", "int", "fake"}) {
    std::vector<std::string> args = {"eval", "--model", kMlp, "--quant", cfg, "--json"};
    if (!mode.empty()) args.insert(args.end(), {"--mode", mode});
    auto [code, out] = qsearch(args);
    ASSERT_EQ(code, 0) << out;
    const nlohmann::json j = nlohmann::json::parse(out);
    EXPECT_EQ(j.at("mode").get<std::string>(), mode.empty() ? "int" : mode);
    EXPECT_NEAR(j.at("accuracy").get<double>(), mixed->at("accuracy").get<double>(), 5e-4);
  }
  EXPECT_EQ(qsearch({"eval", "--model", kMlp, "--mode", "int"}).first, 1);  // needs --quant
}

}  // namespace
}  // namespace qsearch::cli
