// Command-line pieces shared by `qsearch eval --quant` and `qsearch quantize`: the execution mode
// flag and the formats of a config's [passes.quantize].
#pragma once

#include <string>

#include "ir/graph.h"
#include "quant/assignment.h"
#include "runtime/plan.h"

namespace qsearch::cli {

// "float" | "fake" | "int" -> Mode; Error naming the flag otherwise.
runtime::Mode parse_mode(const std::string& mode);

// Reads `path` (MASE-schema TOML) and resolves its [passes.quantize] for `graph`. Errors name the
// file, line and key (unknown keys with the nearest valid one, widths outside 1..32, missing
// required entries, keys matching no node).
quant::QuantAssignment load_quantize_pass(const std::string& path, const ir::Graph& graph);

}  // namespace qsearch::cli
