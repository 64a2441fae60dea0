// What `qsearch search` evaluates, built once from resolved settings: the imported model, the
// data split, the search space and the objective. Shared by `search` and `objective` (the
// JSON-lines evaluator), so both score a configuration identically.
#pragma once

#include <memory>
#include <string>

#include "cli/app.h"
#include "config/search_settings.h"
#include "data/dataset.h"
#include "eval/objective.h"
#include "eval/quant_config.h"
#include "ir/graph.h"
#include "ir/input_decl.h"

namespace CLI {
class App;
}

namespace qsearch::cli {

// The options that say which problem a command works on, the same for search, sensitivity and
// objective: --config (required), --model, --dataset, --mode, --num-samples (`per` completes its
// help: "Samples each <per> evaluates"), --fold-bn, --output, --label-column, --feature-columns.
void add_problem_options(CLI::App* cmd, const std::shared_ptr<config::SearchFlags>& flags,
                         const std::string& per);

struct SearchProblem {
  std::shared_ptr<const ir::Graph> graph;
  std::shared_ptr<const data::Dataset> dataset;
  std::shared_ptr<const eval::QuantSearchSpace> space;
  // Not const: a command may configure it before the first trial (e.g. racing's incumbents).
  std::shared_ptr<eval::QuantObjective> objective;
  // The sizes the model's symbolic input dims were bound to from the data set (empty when it
  // has none); recorded in the study (report::setting::kInputDims).
  ir::DimBinding input_dims;
};

// Imports s.model_path (BatchNorm folded when s.fold_batch_norm), loads s.dataset's split
// (global.data_dir, csv columns), builds the space from s's seeds and the objective from
// s.objective (with --output applied: flags.output is written into s.objective.output). Throws
// Error when the model is missing (naming both places looked in and the fix), and for everything
// the loaders and QuantObjective refuse. trial_samples_only: nothing will read past the first
// s.objective.num_samples samples (no `--final-eval full`), so mnist / fashion-mnist load only
// those (data::DataOptions::max_samples; docs/architecture.md "Memory").
SearchProblem load_search_problem(const GlobalOptions& global, const config::SearchFlags& flags,
                                  config::SearchSettings& s, bool trial_samples_only = false);

}  // namespace qsearch::cli
