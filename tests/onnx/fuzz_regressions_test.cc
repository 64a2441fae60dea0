// Inputs that once crashed the importer or tripped a sanitizer (tests/fixtures/
// onnx_fuzz_regressions/, see docs/fuzzing.md): each must now import or fail with qsearch::Error.
// The sanitizer build of the tests (make test-asan) is what makes these checks sharp.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>

#include "core/error.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/onnx_fuzz_regressions";

TEST(FuzzRegressions, EveryInputImportsOrFailsCleanly) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    SCOPED_TRACE(entry.path().string());
    ++files;
    try {
      ir::Graph g = import_model(entry.path().string());
      (void)g.infer_shapes(4);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(entry.path().string()), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(files, 1);
}

TEST(FuzzRegressions, ZeroSizeConstantWithHugeDims) {
  // A zero-element constant reshaped (allowzero) to [0, 2^40, 2^40]: folding a Transpose of it
  // multiplied 2^40 * 2^40 (signed overflow).
  try {
    import_model(kDir + "/zero_size_huge_dims.onnx");
    FAIL() << "imported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node '/Reshape' (Reshape)"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  }
}

TEST(FuzzRegressions, OldOpsetGraphOutputThatNoNodeDefines) {
  // Opset 6 (converted to 13 on import) with a graph output named by nothing: libonnx's version
  // converter dereferenced a null pointer. A node input named by nothing is refused the same way.
  const std::pair<const char*, const char*> cases[] = {
      {"old_opset_undefined_output.onnx", "is not defined by any node, input or initializer"},
      {"old_opset_undefined_input.onnx",
       "node 'relu' (Relu) reads 'nowhere', which no earlier node, input or initializer defines"},
  };
  for (const auto& [file, want] : cases) {
    SCOPED_TRACE(file);
    try {
      import_model(kDir + "/" + file);
      FAIL() << "imported";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is malformed"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
