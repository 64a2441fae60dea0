// End to end: a Squeeze / Unsqueeze (axes as an attribute at opset 11, as an input at 13) is
// imported as a Reshape with allowzero = 1, and written back by the exporter (here through
// `qsearch train --opset N --out`) as a model that ONNX's own checker (onnx.checker.check_model,
// full_check: shape inference included) accepts at each target opset: `allowzero` (ONNX has it
// from Reshape-14 on) is written from opset 14, and left out below, where the target shape holds
// no literal 0 and the attribute changes nothing. Skipped when /usr/bin/python3 cannot import
// onnx (scripts/setup.sh --bench installs it).
#include <gtest/gtest.h>

#include <cstdlib>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

bool python_has_onnx() {
  return std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
}

TEST(SqueezeExportE2E, ReshapeOfASqueezeIsValidAtEveryTargetOpset) {
  if (!python_has_onnx()) GTEST_SKIP() << "/usr/bin/python3 cannot import onnx";
  ScratchDir dir("squeeze_export");
  const std::string check = write(dir, "check.py", R"(import sys, onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
for n in m.graph.node:
    if n.op_type == "Reshape":
        print(opset, n.name, "allowzero" if any(a.name == "allowzero" for a in n.attribute) else "-")
)");
  for (const char* model : {"squeeze_opset11", "squeeze_opset13"}) {
    for (const int opset : {11, 13, 17}) {
      SCOPED_TRACE(std::string(model) + " at opset " + std::to_string(opset));
      const std::string out = dir / (std::string(model) + "_" + std::to_string(opset) + ".onnx");
      Result t = run("train --model tests/fixtures/train_inputs/" + std::string(model) +
                     ".onnx --dataset csv:tests/fixtures/data/csv/tabular.csv --label-column kind "
                     "--epochs 1 --batch-size 16 --opset " +
                     std::to_string(opset) + " --out " + out);
      ASSERT_EQ(t.code, 0) << t.err;
      const std::string report = dir / "check.out";
      const int rc =
          std::system(("/usr/bin/python3 " + check + " " + out + " >" + report + " 2>&1").c_str());
      const std::string printed = read_file(report);
      ASSERT_EQ(rc, 0) << printed;
      // Both Reshapes (the Unsqueeze's and the Squeeze's), at the target opset.
      const std::string tag = std::to_string(opset) + " ";
      int reshapes = 0;
      for (size_t p = printed.find(tag); p != std::string::npos; p = printed.find(tag, p + 1)) {
        ++reshapes;
      }
      EXPECT_EQ(reshapes, 2) << printed;
      EXPECT_EQ(printed.find("allowzero") != std::string::npos, opset >= 14) << printed;
      // And the model runs as it was written.
      Result e = run("eval --model " + out +
                     " --dataset csv:tests/fixtures/data/csv/tabular.csv --label-column kind "
                     "--mode float");
      EXPECT_EQ(e.code, 0) << e.err;
    }
  }
}

}  // namespace
}  // namespace qsearch::e2e
