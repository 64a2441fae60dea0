// `qsearch export --format qdq`: `--out M.onnx` writes the QDQ model and M.json beside it, whose
// accuracy is fake mode's (`qsearch eval --mode fake`); a width QDQ cannot store is a one-line
// error naming the layer and suggesting --format qonnx.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

TEST(QdqExportE2E, OnnxOutWritesTheModelAndASidecarWithFakeModesAccuracy) {
  ScratchDir dir("export_qdq");
  const Result r =
      run("export --model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml --format qdq "
          "--out " +
          dir / "q/digits.onnx" + " --num-samples 300");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "q/digits.onnx"));
  const nlohmann::json side = nlohmann::json::parse(read_file(dir / "q/digits.json"));
  EXPECT_EQ(side["format"], "qdq");
  EXPECT_EQ(side["measured"]["engine"], "fake");
  EXPECT_EQ(side["measured"]["samples"], 300);
  const Result ev =
      run("eval --model models/mlp_mnist.onnx --quant configs/mnist_mlp_int8.toml --mode fake "
          "--num-samples 300 --json");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_EQ(side["measured"]["accuracy"].get<double>(),
            nlohmann::json::parse(ev.out)["accuracy"].get<double>());
  // A directory --out: NAME.onnx and NAME.json in it.
  const Result d =
      run("export --model models/mlp_mnist.onnx --config configs/mnist_mlp_int8.toml --format qdq "
          "--out " +
          dir / "d" + " --num-samples 10");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_TRUE(fs::exists(dir / "d/model.onnx"));
  EXPECT_TRUE(fs::exists(dir / "d/model.json"));
}

TEST(QdqExportE2E, AWidthQdqCannotStoreIsAnErrorNamingTheLayer) {
  ScratchDir dir("export_qdq_err");
  const std::string cfg = write(dir, "w6.toml", R"([passes.quantize]
by = "name"
[passes.quantize.default.config]
name = "NA"
[passes.quantize.fc2.config]
name = "integer"
data_in_width = 8
data_in_frac_width = 4
weight_width = 6
weight_frac_width = 5
bias_width = 8
bias_frac_width = 4
)");
  const Result r = run("export --model models/mlp_mnist.onnx --config " + cfg +
                       " --format qdq --out " + dir / "m.onnx" + " --num-samples 10");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("layer 'fc2'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("s6"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--format qonnx"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "m.onnx"));
}

}  // namespace
}  // namespace qsearch::e2e
