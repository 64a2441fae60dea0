// One `qsearch export` (docs/export.md): the files of a format plus the sidecar JSON, shared by
// the export command and `qsearch search --export`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::exporter {

// "c", "hls4ml", "qdq" or "qonnx"; Error naming `flag` and the choices otherwise.
void check_format(const std::string& format, const std::string& flag = "--format");

struct ExportJob {
  std::string format = "c";
  std::string out;  // c: a directory (created), holding NAME.h, NAME.c, NAME.json
                    // qdq, qonnx: M.onnx (then M.json beside it), or a directory (NAME.onnx,
                    // NAME.json)
  std::string name = "model";
  std::string model_path;  // checksummed into the sidecar
  std::string command;     // recorded in the sidecar
  std::string source;      // where the formats came from ("--config X", "study D trial N")
  const data::Dataset* dataset = nullptr;  // measured on (int engine)
  std::string split = "test";
  int64_t num_samples = -1;          // < 0: all
  std::string output;                // graph output holding the scores ("" = the first)
  int reuse_factor = 1;              // hls4ml
  std::string strategy = "Latency";  // hls4ml
};

// Writes the export and its sidecar; returns the paths written (sidecar last).
std::vector<std::string> run_export(const ir::Graph& graph, const quant::QuantAssignment& q,
                                    const ExportJob& job);

// A trial's sampled_config (MASE's {"<key>": {"config": {field: value}}}, as a search stores it
// in the trial's user attrs) resolved for `graph`: keys naming nodes match by name, else by op
// type (MASE's two `by` settings).
quant::QuantAssignment assignment_from_sampled_config(const ir::Graph& graph,
                                                      const nlohmann::json& sampled);

}  // namespace qsearch::exporter
