// Command-line pieces shared by `qsearch eval --quant` and `qsearch quantize`: the execution mode
// flag and the formats of a config's [passes.quantize].
#pragma once

#include <functional>
#include <string>

#include "ir/graph.h"
#include "onnx/qonnx.h"
#include "quant/assignment.h"
#include "runtime/plan.h"

namespace CLI {
class App;
}

namespace qsearch::cli {

// "float" | "fake" | "int" -> Mode; Error naming the flag otherwise.
runtime::Mode parse_mode(const std::string& mode);

// Imports the ONNX model at `path`. With fold_bn, each BatchNormalization directly after a conv /
// linear that it alone reads is folded into that node's weights and bias (ir::fold_batch_norm:
// a deployment's semantics; without it, MASE's: BatchNorm stays a float op), and a note on
// stderr says how many were folded and names those kept.
ir::Graph load_model(const std::string& path, bool fold_bn);
// The same through onnx::import_qonnx: a QONNX model's Quant nodes become its own formats
// (docs/onnx.md "QONNX models"); a plain ONNX model gives no formats.
onnx::QonnxModel load_model_and_formats(const std::string& path, bool fold_bn);

// --fold-bn / --fold-bn=true|false / --no-fold-bn on `cmd` (CLI11's flag-value and negated-flag
// forms; the last one given wins); `set` receives the value, and is not called when none is
// given. "Fold each BatchNormalization ... before quantizing" + `help_tail` is the help text.
void add_fold_bn_flag(CLI::App* cmd, std::function<void(bool)> set, const std::string& help_tail);

// The top-level `fold_batch_norm` of the MASE-schema TOML at `path` (false when absent).
bool config_folds_batch_norm(const std::string& path);

// Reads `path` (MASE-schema TOML) and resolves its [passes.quantize] for `graph`. Errors name the
// file, line and key (unknown keys with the nearest valid one, widths outside 1..32, missing
// required entries, keys matching no node).
quant::QuantAssignment load_quantize_pass(const std::string& path, const ir::Graph& graph);

}  // namespace qsearch::cli
