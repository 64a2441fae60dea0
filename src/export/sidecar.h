// The sidecar JSON every `qsearch export` writes beside its files (docs/export.md "Sidecar"):
// what was exported (per-layer formats with MASE's field names), what qsearch measured with the
// int engine on which data (accuracy, samples, the data's SHA-256), and what produced it (model
// checksum, qsearch version, command).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "quant/assignment.h"
#include "runtime/plan.h"

namespace qsearch::exporter {

struct Measurement {
  std::string engine = "int";  // "int", or "fake" (the qdq export computes fake mode)
  std::string dataset, split;
  int64_t samples = 0;
  double accuracy = 0;
  std::string data_sha256;  // SHA-256 of the samples' x (float32) then y (int64), as loaded
  std::string data_source;  // the file(s) the data came from
};

// Accuracy of the int engine (runtime Mode::kInt; or `mode`) under q on the first `num_samples`
// samples of `ds` (< 0: all), scoring graph output `output` ("" = the first).
Measurement measure_int(const ir::Graph& graph, const quant::QuantAssignment& q,
                        const data::Dataset& ds, const std::string& split, int64_t num_samples,
                        const std::string& output = "", runtime::Mode mode = runtime::Mode::kInt);

// Per node of q that is quantized: {"name", "mase_op", "onnx_op", "config": {MASE fields},
// "rounding", "unsigned": [groups with unsigned codes]}, in graph order.
nlohmann::ordered_json layer_formats(const ir::Graph& graph, const quant::QuantAssignment& q);

struct SidecarInfo {
  std::string format;              // "c", "hls4ml"
  std::vector<std::string> files;  // what the export wrote (paths as written)
  std::string model_path;
  std::string command;  // the command line that produced the export
  std::string source;   // "--config X.toml" or "study DIR, trial N"
};

nlohmann::ordered_json sidecar_json(const ir::Graph& graph, const quant::QuantAssignment& q,
                                    const Measurement& m, const SidecarInfo& info);

// SHA-256 of a file's bytes (Error naming the file when it cannot be read).
std::string file_sha256(const std::string& path);

}  // namespace qsearch::exporter
