#include "cli/search_problem.h"

#include <filesystem>

#include "core/error.h"
#include "onnx/import.h"

namespace qsearch::cli {

SearchProblem load_search_problem(const GlobalOptions& global, const config::SearchFlags& flags,
                                  config::SearchSettings& s) {
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
  auto graph = std::make_shared<ir::Graph>(onnx::import_model(s.model_path));
  data::DataOptions dopts{.data_dir = global.data_dir,
                          .label_column = s.label_column,
                          .feature_columns = s.feature_columns};
  auto dataset = std::make_shared<data::Dataset>(
      data::load_dataset(s.dataset, data::parse_split(s.split), dopts));
  auto space = std::make_shared<eval::QuantSearchSpace>(
      eval::QuantSearchSpace::build(*graph, s.by, s.seeds));
  if (flags.output) s.objective.output = *flags.output;
  p.objective = std::make_shared<eval::QuantObjective>(graph, dataset, space, s.objective);
  p.graph = std::move(graph);
  p.dataset = std::move(dataset);
  p.space = std::move(space);
  return p;
}

}  // namespace qsearch::cli
