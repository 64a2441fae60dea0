// `qsearch export` and `qsearch train` of a 3-D ConvTranspose model (tests/fixtures/nd/convt3d_net,
// tools/make_nd_fixtures.py: a plain and a grouped, dilated nn.ConvTranspose3d with
// output_padding, imported as transposed Im2Col3d -> ConvTranspose (1, kW) -> view): the QONNX
// and QDQ exports write each as one 3-D ONNX ConvTranspose, pass Python's onnx.checker
// (full_check) and the QONNX model evaluates exactly as the original under the config in fake
// and int mode; training lowers the loss and writes a model that evaluates to the best epoch's
// validation loss.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kModel = "tests/fixtures/nd/convt3d_net_opset13.onnx";
const std::string kData = " --dataset npz:tests/fixtures/nd/convt3d_net_data.npz";

void expect_full_check(const std::string& path) {
  if (std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") != 0) return;
  const std::string check =
      "/usr/bin/python3 -c \"import onnx, sys; "
      "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" " +
      path;
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
}

TEST(ConvTranspose3dE2E, QonnxAndQdqExportsOfAConvTranspose3dModel) {
  ScratchDir dir("convt3d_export");
  std::string cfg_text =
      "[passes.quantize]\nby = \"type\"\n[passes.quantize.default.config]\n"
      "name = \"NA\"\n";
  for (const char* op : {"convtranspose3d", "linear"}) {
    cfg_text += std::string("[passes.quantize.") + op +
                ".config]\nname = \"integer\"\ndata_in_width = 8\ndata_in_frac_width = 4\n"
                "weight_width = 8\nweight_frac_width = 6\nbias_width = 32\nbias_frac_width = 8\n";
  }
  // 32-bit biases: an 8-bit QDQ model (opset 13; a 16-bit one needs opset 21, beyond the Python
  // onnx.checker of Debian 12).
  const std::string cfg = write(dir, "q.toml", cfg_text);
  const std::string out = dir / "ct3_q.onnx";
  Result r =
      run("export --model " + kModel + " --config " + cfg + kData + " --format qonnx --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_full_check(out);
  for (const char* mode : {"fake", "int"}) {
    SCOPED_TRACE(mode);
    const Result want = run("eval --model " + kModel + " --quant " + cfg + kData +
                            " --json --mode " + std::string(mode));
    const Result got = run("eval --model " + out + kData + " --json --mode " + mode);
    ASSERT_EQ(want.code, 0) << want.err;
    ASSERT_EQ(got.code, 0) << got.err;
    EXPECT_EQ(nlohmann::json::parse(want.out)["loss"], nlohmann::json::parse(got.out)["loss"]);
  }
  const std::string qdq = dir / "ct3_qdq.onnx";
  r = run("export --model " + kModel + " --config " + cfg + kData + " --format qdq --out " + qdq);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_full_check(qdq);
}

TEST(ConvTranspose3dE2E, TrainsAConvTranspose3dModel) {
  ScratchDir dir("convt3d_train");
  const std::string out = dir / "trained.onnx";
  Result r = run("train --model " + kModel + kData +
                 " --epochs 3 --batch-size 3 --val-split train --json --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& epochs = j.at("epochs");
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_LT(epochs[2].at("train_loss").get<double>(), epochs[0].at("train_loss").get<double>());
  const int best = j.at("best_epoch").get<int>();
  const Result e = run("eval --model " + out + kData + " --json --mode float");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out).at("loss").get<double>(),
              epochs[best - 1].at("val_loss").get<double>(), 1e-5);
  expect_full_check(out);
}

}  // namespace
}  // namespace qsearch::e2e
