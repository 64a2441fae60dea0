#include "cli/quant_args.h"

#include "config/config.h"
#include "core/error.h"
#include "eval/quant_config.h"

namespace qsearch::cli {

runtime::Mode parse_mode(const std::string& mode) {
  if (mode == "float") return runtime::Mode::kFloat;
  if (mode == "fake") return runtime::Mode::kFake;
  if (mode == "int") return runtime::Mode::kInt;
  fail("--mode {}: expected float, fake or int", mode);
}

quant::QuantAssignment load_quantize_pass(const std::string& path, const ir::Graph& graph) {
  config::RunConfig cfg = config::load_config(path);
  if (!cfg.quantize) {
    fail(
        "{}: no [passes.quantize] table; add one, e.g.\n  [passes.quantize]\n  by = \"type\"\n"
        "  [passes.quantize.linear.config]\n  name = \"integer\"\n  data_in_width = 8\n  ...",
        path);
  }
  return eval::resolve_quantize_pass(graph, eval::parse_match_by(cfg.quantize->by),
                                     cfg.quantize->entries);
}

}  // namespace qsearch::cli
