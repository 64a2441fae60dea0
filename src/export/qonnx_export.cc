#include "export/qonnx_export.h"

#include "core/error.h"
#include "onnx/qonnx.h"
#include "runtime/node_quant.h"

namespace qsearch::exporter {

std::string qonnx_model_bytes(const ir::Graph& graph, const quant::QuantAssignment& q) {
  const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(graph, q);
  std::vector<onnx::QonnxNodeFormats> formats(nq.size());
  for (size_t k = 0; k < nq.size(); ++k) {
    if (!nq[k].quantized()) continue;
    // A GRU / LSTM (kRnn) quantizes X (data_in), W and R (weight) and B (bias): ONNX's inputs
    // 0..3, the ir node's too, so its Quant nodes sit where the engine quantizes.
    formats[k] = {.inputs = nq[k].inputs, .data_out = nq[k].data_out, .rounding = nq[k].rounding};
  }
  return onnx::export_qonnx_bytes(graph, formats);
}

}  // namespace qsearch::exporter
