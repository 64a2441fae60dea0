// Registration of the subcommands (one .cc file each). A command adds its CLI11 subcommand to
// `app` and, when selected, sets `run` to the function that executes it after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

#include "cli/app.h"

namespace qsearch::cli {

using Runner = std::function<int()>;

void add_eval_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_inspect_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_data_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_search_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_train_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_sensitivity_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_objective_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_export_command(CLI::App& app, const GlobalOptions& global, Runner& run);

}  // namespace qsearch::cli
