#include "cli/search_problem.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "cli/quant_args.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "runtime/weight_file.h"

namespace qsearch::cli {

void add_problem_options(CLI::App* cmd, const std::shared_ptr<config::SearchFlags>& flags,
                         const std::string& per) {
  cmd->add_option("--config", flags->config, "TOML config (MASE schema)")->required();
  auto opt = [&](const char* name, auto& target, const std::string& help) {
    cmd->add_option_function<std::decay_t<decltype(*target)>>(
        name, [&target](const auto& v) { target = v; }, help);
  };
  opt("--model", flags->model, "ONNX model (overrides the config's model)");
  opt("--dataset", flags->dataset, "Data set (overrides the config)");
  opt("--mode", flags->mode, "int | fake | float (default int)");
  opt("--num-samples", flags->num_samples,
      "Samples each " + per + " evaluates (overrides num_samples)");
  add_fold_bn_flag(
      cmd, [flags](bool v) { flags->fold_bn = v; }, "the config's fold_batch_norm says");
  opt("--output", flags->output, "Graph output holding the class scores (default: the first)");
  opt("--label-column", flags->label_column, "Label column of a csv:PATH data set (label_column)");
  cmd->add_option_function<std::vector<std::string>>(
         "--feature-columns",
         [flags](const std::vector<std::string>& v) { flags->feature_columns = v; },
         "Feature columns of a csv:PATH data set, in the model's input order: A,B,C "
         "(feature_columns; default: every column but the label)")
      ->delimiter(',');
}

SearchProblem load_search_problem(const GlobalOptions& global, const config::SearchFlags& flags,
                                  config::SearchSettings& s, bool trial_samples_only) {
  if (!std::filesystem::exists(s.model_path) && !flags.model) {
    // A config's relative model path is looked up from the working directory, then beside the
    // config; say both and how to fix it rather than only "cannot open".
    fail(
        "{}: model '{}' not found: looked in the working directory ({}) and beside the config; "
        "run qsearch from the directory the path is relative to (the shipped configs: the "
        "repository root) or pass --model PATH.onnx",
        flags.config, s.model_path, std::filesystem::current_path().string());
  }
  SearchProblem p;
  // A model with a symbolic sequence length is imported once the data set gives its size.
  ModelForData loader(s.model_path, s.fold_batch_norm);
  data::DataOptions dopts{.data_dir = global.data_dir,
                          .label_column = s.label_column,
                          .feature_columns = s.feature_columns,
                          .x_array = s.x_array,
                          .y_array = s.y_array,
                          .input_names = loader.input_names(),
                          .max_samples = trial_samples_only && s.objective.num_samples > 0
                                             ? s.objective.num_samples
                                             : 0};
  std::shared_ptr<data::Dataset> dataset;
  if (loader.needs_data()) {
    dataset = std::make_shared<data::Dataset>(
        data::load_dataset(s.dataset, data::parse_split(s.split), dopts));
  }
  onnx::QonnxModel model = loader.take(dataset.get());
  p.input_dims = loader.bound_dims();
  if (model.quant_nodes > 0) {
    std::cerr << fmt::format(
        "qsearch: note: {} is a QONNX model ({} Quant nodes); the search quantizes its float "
        "graph with the formats it samples, not the model's own (eval --mode int without --quant "
        "measures those)\n",
        s.model_path, model.quant_nodes);
  }
  auto graph = std::make_shared<ir::Graph>(std::move(model.graph));
  // Every trial's plan is made from this graph, but reads a float weight only while quantizing
  // it: the weights live in a file (its page cache) and a trial holds only what it quantizes
  // (runtime/weight_file.h, docs/architecture.md "Memory").
  runtime::map_constants_to_file(*graph, {s.out_dir});
  if (!dataset) {
    dataset = std::make_shared<data::Dataset>(
        data::load_dataset(s.dataset, data::parse_split(s.split), dopts));
  }
  auto space = std::make_shared<eval::QuantSearchSpace>(eval::QuantSearchSpace::build(
      *graph, s.by, s.seeds,
      s.objective.fpga ? s.objective.fpga->reuse_factor_choices : std::vector<ConfigValue>{}));
  if (flags.output) s.objective.output = *flags.output;
  p.objective = std::make_shared<eval::QuantObjective>(graph, dataset, space, s.objective);
  p.graph = std::move(graph);
  p.dataset = std::move(dataset);
  p.space = std::move(space);
  return p;
}

}  // namespace qsearch::cli
