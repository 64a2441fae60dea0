// libFuzzer target for the ONNX importer: any bytes must import or raise qsearch::Error, never
// crash, leak, hang or trip a sanitizer. Built by `make fuzz`; see docs/fuzzing.md.
// fuzz-deps: onnx
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "onnx/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qsearch::ir::Graph g = qsearch::onnx::import_model_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    // A graph that imports must also answer the questions later modules ask of it.
    for (const auto& n : g.nodes()) {
      (void)qsearch::ir::mase_op(g, n);
      (void)qsearch::ir::param_count(g, n);
    }
    (void)g.infer_shapes(4);
  } catch (const qsearch::Error&) {
  }
  return 0;
}
