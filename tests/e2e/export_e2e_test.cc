// `qsearch export` from a config and from a search trial: the C files and the sidecar JSON
// (per-layer formats, the int engine's accuracy equal to `qsearch eval`'s, the data checksum),
// the generated C compiling warning-free as C99, and one-line errors for bad flags.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

std::string c_compiler() {
  const char* cc = std::getenv("CC");
  return cc && *cc ? cc : "cc";
}

TEST(ExportE2E, ConfigExportWritesCompilableCAndASidecarWithEvalsAccuracy) {
  ScratchDir dir("export_config");
  const Result r =
      run("export --model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml "
          "--format c --out " +
          dir / "c" + " --name digits --num-samples 500");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"c/digits.h", "c/digits.c", "c/digits.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  const nlohmann::json side = nlohmann::json::parse(read_file(dir / "c/digits.json"));
  EXPECT_EQ(side["format"], "c");
  EXPECT_EQ(side["model"], "models/mlp_mnist.onnx");
  EXPECT_EQ(side["model_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(side["measured"]["samples"], 500);
  EXPECT_EQ(side["measured"]["engine"], "int");
  EXPECT_EQ(side["measured"]["data_sha256"].get<std::string>().size(), 64u);
  EXPECT_NE(side["command"].get<std::string>().find("--name digits"), std::string::npos);
  ASSERT_EQ(side["layers"].size(), 3u);
  EXPECT_EQ(side["layers"][0]["name"], "fc1");
  EXPECT_EQ(side["layers"][0]["config"]["data_in_width"], 8);
  EXPECT_EQ(side["layers"][0]["config"]["weight_frac_width"], 7);
  EXPECT_EQ(side["layers"][0]["config"]["bias_width"], 16);
  // The accuracy is the int engine's, as `qsearch eval` measures it.
  const Result ev =
      run("eval --model models/mlp_mnist.onnx --quant configs/mnist_mlp_int8.toml "
          "--num-samples 500 --json");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_EQ(side["measured"]["accuracy"].get<double>(),
            nlohmann::json::parse(ev.out)["accuracy"].get<double>());
  // The same data gives the same checksum; other data another one.
  const Result again =
      run("export --model models/mlp_mnist.onnx --config "
          "configs/mnist_mlp_int8.toml --out " +
          dir / "c2" + " --num-samples 400");
  ASSERT_EQ(again.code, 0) << again.err;
  const nlohmann::json side2 = nlohmann::json::parse(read_file(dir / "c2/model.json"));
  EXPECT_NE(side2["measured"]["data_sha256"], side["measured"]["data_sha256"]);
  EXPECT_TRUE(fs::exists(dir / "c2/model.h"));
  // The C compiles as strict C99 without a warning.
  const std::string cmd = c_compiler() + " -std=c99 -O2 -Wall -Wextra -pedantic -Werror -c " +
                          dir / "c/digits.c" + " -o " + dir / "digits.o";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(ExportE2E, StudyTrialExportHasTheTrialsFormats) {
  ScratchDir dir("export_study");
  const std::string cfg = write(dir, "s.toml", mlp_by_name_config(200));
  const Result s = run("search --config " + cfg + " --out " + dir / "out" +
                       " --trials 3 --sampler random --seed 5");
  ASSERT_EQ(s.code, 0) << s.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 3u);
  const Result r =
      run("export --study " + dir / "out" + " --trial 1 --out " + dir / "x" + " --num-samples 200");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json side = nlohmann::json::parse(read_file(dir / "x/model.json"));
  nlohmann::json sampled = nlohmann::json::parse(trials[1].user_attrs.at("sampled_config"));
  if (sampled.is_string()) sampled = nlohmann::json::parse(sampled.get<std::string>());
  ASSERT_EQ(side["layers"].size(), 3u);
  for (const auto& layer : side["layers"]) {
    const auto& want = sampled[layer["name"].get<std::string>()]["config"];
    EXPECT_EQ(layer["config"]["data_in_width"], want["data_in_width"]) << layer.dump();
    EXPECT_EQ(layer["config"]["weight_width"], want["weight_width"]) << layer.dump();
  }
  EXPECT_EQ(side["model"], "tests/fixtures/torch/mlp_opset13.onnx");
  EXPECT_NE(side["quantization_from"].get<std::string>().find("trial 1"), std::string::npos);
}

// `search --export c`: one export per Pareto-front trial into <out>/export/trial_<N>/, no more.
TEST(ExportE2E, SearchExportsEveryParetoFrontTrial) {
  ScratchDir dir("export_search");
  const std::string cfg = write(dir, "s.toml", mlp_by_name_config(200));
  const Result s = run("search --config " + cfg + " --out " + dir / "out" +
                       " --trials 6 --sampler random --seed 3 --export c --quiet");
  ASSERT_EQ(s.code, 0) << s.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 6u);
  const nlohmann::json best = nlohmann::json::parse(read_file(dir / "out/best.json"));
  std::set<int> front;
  for (const auto& [key, t] : best.items()) front.insert(t["number"].get<int>());
  ASSERT_FALSE(front.empty());
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(dir / "out/export")) {
    ++dirs;
    const std::string name = e.path().filename().string();
    ASSERT_EQ(name.rfind("trial_", 0), 0u) << name;
    const int n = std::stoi(name.substr(6));
    EXPECT_TRUE(front.count(n)) << name << " is not on the front";
    EXPECT_TRUE(fs::exists(e.path() / "model.c"));
    const nlohmann::json side = nlohmann::json::parse(read_file(e.path() / "model.json"));
    EXPECT_EQ(side["measured"]["samples"], 200);
    nlohmann::json sampled = nlohmann::json::parse(trials[n].user_attrs.at("sampled_config"));
    if (sampled.is_string()) sampled = nlohmann::json::parse(sampled.get<std::string>());
    for (const auto& layer : side["layers"]) {
      EXPECT_EQ(layer["config"]["weight_width"],
                sampled[layer["name"].get<std::string>()]["config"]["weight_width"]);
    }
  }
  EXPECT_EQ(dirs, static_cast<int>(front.size()));
  // An unknown format is refused before the search runs.
  const Result bad =
      run("search --config " + cfg + " --out " + dir / "out2" + " --trials 1 --export tflite");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--export tflite"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir / "out2/study.db"));
}

TEST(ExportE2E, Hls4mlExportWritesTheConfigNextToTheModel) {
  ScratchDir dir("export_hls4ml");
  const Result r =
      run("export --model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml "
          "--format hls4ml --reuse-factor 2 --out " +
          dir / "h" + " --num-samples 300");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_file(dir / "h/model.onnx"), read_file(source_dir() + "/models/mlp_mnist.onnx"));
  const std::string yaml = read_file(dir / "h/model.yml");
  EXPECT_NE(yaml.find("LayerName:"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("weight: ap_fixed<8,1,AP_RND_CONV,AP_SAT>"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("bias: ap_fixed<16,8,AP_RND_CONV,AP_SAT>"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("ReuseFactor: 2"), std::string::npos) << yaml;
  const nlohmann::json side = nlohmann::json::parse(read_file(dir / "h/model.json"));
  EXPECT_EQ(side["format"], "hls4ml");
  EXPECT_EQ(side["measured"]["samples"], 300);
  const Result bad =
      run("export --model models/mlp_mnist.onnx --config "
          "configs/mnist_mlp_int8.toml --format hls4ml --strategy Fast --out " +
          dir / "h2");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--strategy Fast"), std::string::npos) << bad.err;
}

TEST(ExportE2E, BadFlagsAreOneLineErrors) {
  ScratchDir dir("export_errors");
  struct Case {
    std::string args, part;
  };
  const std::vector<Case> cases = {
      {"--model models/mlp_mnist.onnx --out " + dir / "o", "either --config"},
      {"--model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml --format onnx --out " +
           dir / "o",
       "--format onnx"},
      {"--model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml --name 3x --out " +
           dir / "o",
       "--name '3x'"},
      {"--study " + dir / "none" + " --trial 0 --out " + dir / "o", "no study.db"},
      {"--study " + dir.path().string() + " --out " + dir / "o", "needs --trial"},
  };
  for (const Case& c : cases) {
    const Result r = run("export " + c.args);
    EXPECT_EQ(r.code, 1) << c.args;
    EXPECT_NE(r.err.find(c.part), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace qsearch::e2e
