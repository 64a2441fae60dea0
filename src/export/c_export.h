// `qsearch export --format c`: a dependency-free C99 source and header that compute exactly what
// the integer engine (runtime Mode::kInt) computes for one sample (docs/export.md).
//
// The generated code follows the engine's semantics (docs/numerics.md "Execution modes", the
// exact reference tests/runtime/quant_reference.h): the float input is quantized with the
// quantizer of each quantized node reading it; weights and biases are quantized at export time
// and stored as const integer arrays in the smallest C integer type of their format (one code per
// element, sub-byte widths not bit-packed); a linear / conv accumulates exactly in int64 at
// F = max(fa + fb, fc) with the bias aligned by an exact shift; every requantization is the
// integer rounding shift and clamp of docs/numerics.md "Requantization"; relu and max pooling
// run on codes or accumulators; the graph output is dequantized once to float32.
//
//   CExport c = export_c(graph, assignment, {.name = "lenet"});
//   // c.header_name == "lenet.h", c.source_name == "lenet.c"; lenet_predict(in, out),
//   // LENET_INPUT_SIZE, LENET_OUTPUT_SIZE
//
// Throws qsearch::Error (one line, naming the node) for a node the C export cannot run on
// integers: an op that runs in float in int mode (batch norm, an unquantized add or Gemm, ...), an
// op the exporter does not implement, or a configuration the int engine itself refuses.
#pragma once

#include <string>

#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::exporter {

struct CExportOptions {
  std::string name = "model";  // file names NAME.h / NAME.c and the prefix of every symbol
  std::string comment;         // one line put at the top of both files (e.g. the command)
};

struct CExport {
  std::string header_name, source_name;  // "model.h", "model.c"
  std::string header, source;
  int64_t input_size = 0, output_size = 0;
};

CExport export_c(const ir::Graph& graph, const quant::QuantAssignment& q,
                 const CExportOptions& options = {});

// Error unless `name` is a C identifier (letters, digits, '_', not starting with a digit).
void check_c_name(const std::string& name, const std::string& flag);

}  // namespace qsearch::exporter
