// QONNX through the binary: `export --format qonnx --out M.onnx` writes the model and its sidecar;
// `eval` and `quantize` of that model without a config use its own Quant formats and measure
// exactly what the original model measures under the config; `search` reads it as its float graph
// (with a note) and `search --export qonnx` writes one QONNX model per front trial.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

TEST(QonnxE2E, ExportedModelEvaluatesAsTheOriginalUnderItsConfig) {
  ScratchDir dir("qonnx_export");
  for (const std::string m : {"mlp", "lenet5"}) {
    SCOPED_TRACE(m);
    const std::string model = "models/" + m + "_mnist.onnx";
    const std::string cfg = "tests/fixtures/qonnx/" + m + "_mixed.toml";
    const std::string out = dir / (m + "_q.onnx");
    const Result r = run("export --model " + model + " --config " + cfg +
                         " --format qonnx --num-samples 500 --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(fs::exists(out));
    const nlohmann::json side = nlohmann::json::parse(read_file(dir / (m + "_q.json")));
    EXPECT_EQ(side["format"], "qonnx");
    EXPECT_EQ(side["files"][0], out);
    for (const char* mode : {"fake", "int"}) {
      SCOPED_TRACE(mode);
      const Result want = run("eval --model " + model + " --quant " + cfg +
                              " --num-samples 500 --json --mode " + std::string(mode));
      const Result got = run("eval --model " + out + " --num-samples 500 --json --mode " + mode);
      ASSERT_EQ(want.code, 0) << want.err;
      ASSERT_EQ(got.code, 0) << got.err;
      const auto a = nlohmann::json::parse(want.out), b = nlohmann::json::parse(got.out);
      EXPECT_EQ(a["loss"], b["loss"]);
      EXPECT_EQ(a["accuracy"], b["accuracy"]);
      if (std::string(mode) == "int") {
        EXPECT_EQ(side["measured"]["accuracy"], b["accuracy"]);
      }
    }
    // Without --mode, a QONNX model runs in int with its own formats; --mode float ignores them.
    const Result dflt = run("eval --model " + out + " --num-samples 200");
    ASSERT_EQ(dflt.code, 0) << dflt.err;
    EXPECT_NE(dflt.out.find("int (the model's QONNX formats)"), std::string::npos) << dflt.out;
    const Result flt = run("eval --model " + out + " --num-samples 200 --mode float --json");
    const Result orig = run("eval --model " + model + " --num-samples 200 --mode float --json");
    EXPECT_EQ(nlohmann::json::parse(flt.out)["loss"], nlohmann::json::parse(orig.out)["loss"]);
    // quantize without --config shows the same per-layer formats as with the config.
    const Result q1 = run("quantize --model " + model + " --config " + cfg + " --json");
    const Result q2 = run("quantize --model " + out + " --json");
    ASSERT_EQ(q1.code, 0) << q1.err;
    ASSERT_EQ(q2.code, 0) << q2.err;
    const auto l1 = nlohmann::json::parse(q1.out)["layers"],
               l2 = nlohmann::json::parse(q2.out)["layers"];
    EXPECT_EQ(l1, l2);
  }
  // A plain model still needs a config.
  const Result none = run("quantize --model models/mlp_mnist.onnx");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("--config is required"), std::string::npos) << none.err;
}

TEST(QonnxE2E, SearchReadsAQonnxModelAsItsFloatGraphAndExportsQonnx) {
  ScratchDir dir("qonnx_search");
  const std::string q = dir / "mlp_q.onnx";
  ASSERT_EQ(run("export --model models/mlp_mnist.onnx --config tests/fixtures/qonnx/mlp_mixed.toml "
                "--format qonnx --num-samples 100 --out " +
                q)
                .code,
            0);
  const std::string cfg = write(dir, "s.toml", mlp_by_name_config(200));
  const Result s = run("search --config " + cfg + " --model " + q + " --out " + dir / "out" +
                       " --trials 3 --sampler random --seed 2 --export qonnx --quiet");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.err.find("is a QONNX model"), std::string::npos) << s.err;
  int exported = 0;
  for (const auto& e : fs::directory_iterator(dir / "out/export")) {
    ASSERT_TRUE(fs::exists(e.path() / "model.onnx")) << e.path();
    const nlohmann::json side = nlohmann::json::parse(read_file(e.path() / "model.json"));
    EXPECT_EQ(side["format"], "qonnx");
    // The exported trial evaluates (int, its own formats) to the accuracy its sidecar states.
    const Result ev =
        run("eval --model " + (e.path() / "model.onnx").string() + " --num-samples 200 --json");
    ASSERT_EQ(ev.code, 0) << ev.err;
    EXPECT_EQ(nlohmann::json::parse(ev.out)["accuracy"], side["measured"]["accuracy"]);
    ++exported;
  }
  EXPECT_GT(exported, 0);
}

}  // namespace
}  // namespace qsearch::e2e
