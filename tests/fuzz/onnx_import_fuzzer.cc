// libFuzzer target for the ONNX importer: any bytes must import or raise qsearch::Error, never
// crash, leak, hang or trip a sanitizer. Built by `make fuzz`; see docs/fuzzing.md.
// fuzz-deps: onnx
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/qonnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // import_qonnx_bytes is import_model_bytes plus the QONNX formats of the Quant nodes it
    // strips (placement, scales, roundings), so both paths get fuzzed.
    qsearch::onnx::QonnxModel m = qsearch::onnx::import_qonnx_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    const qsearch::ir::Graph& g = m.graph;
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
