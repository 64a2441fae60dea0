// `qsearch export` of a Conv3d model (tests/fixtures/nd/conv3d_net, tools/make_nd_fixtures.py):
// each imported Im2Col3d -> Conv -> view is written back as a 3-D ONNX Conv, so `--format qonnx`
// and `--format qdq` succeed, and the QONNX model evaluates exactly as the original under the
// config in fake and int mode. It also trains (`qsearch train`).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

TEST(Conv3dExportE2E, QonnxAndQdqExportsOfAConv3dModel) {
  ScratchDir dir("conv3d_export");
  const std::string model = "tests/fixtures/nd/conv3d_net_opset13.onnx";
  const std::string data = " --dataset npz:tests/fixtures/nd/conv3d_net_data.npz";
  std::string cfg_text =
      "[passes.quantize]\nby = \"type\"\n[passes.quantize.default.config]\n"
      "name = \"NA\"\n";
  for (const char* op : {"conv3d", "linear"}) {
    cfg_text += std::string("[passes.quantize.") + op +
                ".config]\nname = \"integer\"\ndata_in_width = 8\ndata_in_frac_width = 4\n"
                "weight_width = 8\nweight_frac_width = 6\nbias_width = 16\nbias_frac_width = 8\n";
  }
  const std::string cfg = write(dir, "q.toml", cfg_text);
  const std::string out = dir / "c3_q.onnx";
  Result r =
      run("export --model " + model + " --config " + cfg + data + " --format qonnx --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* mode : {"fake", "int"}) {
    SCOPED_TRACE(mode);
    const Result want = run("eval --model " + model + " --quant " + cfg + data + " --json --mode " +
                            std::string(mode));
    const Result got = run("eval --model " + out + data + " --json --mode " + mode);
    ASSERT_EQ(want.code, 0) << want.err;
    ASSERT_EQ(got.code, 0) << got.err;
    EXPECT_EQ(nlohmann::json::parse(want.out)["loss"], nlohmann::json::parse(got.out)["loss"]);
  }
  r = run("export --model " + model + " --config " + cfg + data + " --format qdq --out " +
          (dir / "c3_qdq.onnx"));
  EXPECT_EQ(r.code, 0) << r.err;
}

// `qsearch train` fine-tunes the Conv3d model (Conv3d + BatchNorm3d + MaxPool3d + grouped
// Conv3d + global pool + Linear): its loss falls, and the written model evaluates to the best
// epoch's validation loss (the validation split is the training data here).
TEST(Conv3dExportE2E, TrainsAConv3dModel) {
  ScratchDir dir("conv3d_train");
  const std::string out = dir / "trained.onnx";
  const std::string data = " --dataset npz:tests/fixtures/nd/conv3d_net_data.npz";
  Result r = run("train --model tests/fixtures/nd/conv3d_net_opset13.onnx" + data +
                 " --epochs 3 --batch-size 3 --val-split train --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& epochs = j.at("epochs");
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_LT(epochs[2].at("train_loss").get<double>(), epochs[0].at("train_loss").get<double>());
  const int best = j.at("best_epoch").get<int>();
  const Result e = run("eval --model " + out + data + " --json --mode float");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out).at("loss").get<double>(),
              epochs[best - 1].at("val_loss").get<double>(), 1e-5);
}

}  // namespace
}  // namespace qsearch::e2e
