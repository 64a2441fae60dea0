#include "cli/quant_args.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "config/config.h"
#include "core/error.h"
#include "eval/evaluate.h"
#include "eval/quant_config.h"
#include "ir/fold_batch_norm.h"
#include "onnx/import.h"

namespace qsearch::cli {

runtime::Mode parse_mode(const std::string& mode) {
  if (mode == "float") return runtime::Mode::kFloat;
  if (mode == "fake") return runtime::Mode::kFake;
  if (mode == "int") return runtime::Mode::kInt;
  fail("--mode {}: expected float, fake or int", mode);
}

namespace {

ir::Graph fold_with_note(ir::Graph g) {
  ir::BatchNormFold f = ir::fold_batch_norm(g);
  std::string kept;
  for (size_t i = 0; i < f.kept.size() && i < 5; ++i) kept += (i ? ", " : "") + f.kept[i];
  if (f.kept.size() > 5) kept += fmt::format(" and {} more", f.kept.size() - 5);
  std::cerr << fmt::format(
      "qsearch: note: fold_batch_norm: {} BatchNormalization node(s) folded into the conv / "
      "linear before them{}\n",
      f.folded.size(),
      f.kept.empty() ? std::string()
                     : fmt::format("; {} kept as float ops (not directly after a Conv, "
                                   "ConvTranspose, Gemm or 2-D MatMul with constant weights "
                                   "that only they read): {}",
                                   f.kept.size(), kept));
  return std::move(f.graph);
}

}  // namespace

ir::Graph load_model(const std::string& path, bool fold_bn) {
  ir::Graph g = onnx::import_model(path);
  return fold_bn ? fold_with_note(std::move(g)) : g;
}

onnx::QonnxModel load_model_and_formats(const std::string& path, bool fold_bn) {
  onnx::QonnxModel m = onnx::import_qonnx(path);
  if (fold_bn) m.graph = fold_with_note(std::move(m.graph));
  return m;
}

ModelForData::ModelForData(std::string path, bool fold_bn)
    : path_(std::move(path)), fold_bn_(fold_bn) {
  // A file that cannot be read this way is imported at once, which reports why.
  std::optional<std::vector<ir::InputDecl>> inputs = onnx::read_graph_inputs(path_);
  if (inputs) inputs_ = std::move(*inputs);
  if (!ir::any_symbolic_dims(inputs_)) model_ = load_model_and_formats(path_, fold_bn_);
}

std::vector<std::string> ModelForData::input_names() const {
  if (model_) return eval::data_input_names(model_->graph);
  std::vector<std::string> names;
  if (inputs_.size() < 2) return names;
  for (const ir::InputDecl& in : inputs_) names.push_back(in.name);
  return names;
}

onnx::QonnxModel ModelForData::take(const data::Dataset* data) {
  if (model_) return std::move(*model_);
  if (data == nullptr) {
    std::string dims;
    for (const ir::InputDecl& in : inputs_) {
      if (in.has_symbolic_dims()) dims += (dims.empty() ? "" : ", ") + in.name + " " + in.str();
    }
    fail(
        "model '{}' has symbolic input dims ({}), whose sizes qsearch takes from the data set; "
        "fix: pass --dataset (e.g. npz:DATA.npz with the arrays the model reads)",
        path_, dims);
  }
  onnx::ImportOptions options;
  options.dims = eval::bind_input_dims(inputs_, *data);
  bound_ = options.dims;
  std::string bound;
  for (const auto& [name, size] : options.dims) {
    bound += fmt::format("{}{} = {}", bound.empty() ? "" : ", ", name, size);
  }
  std::cerr << fmt::format(
      "qsearch: note: {} has symbolic input dims; bound from data set '{}': {} (the model runs "
      "at these sizes)\n",
      path_, data->name, bound);
  onnx::QonnxModel m = onnx::import_qonnx(path_, options);
  if (fold_bn_) m.graph = fold_with_note(std::move(m.graph));
  return m;
}

void add_fold_bn_flag(CLI::App* cmd, std::function<void(bool)> set, const std::string& help_tail) {
  // A value that is no boolean is refused by the check (CLI11 would otherwise throw stoll's
  // std::invalid_argument converting it to a flag count).
  const CLI::Validator boolean(
      [](std::string& v) {
        bool b = false;
        return CLI::detail::lexical_cast(v, b)
                   ? std::string()
                   : fmt::format("expected true or false, got '{}' (or use --no-fold-bn)", v);
      },
      "BOOL");
  cmd->add_flag_function(
         "--fold-bn,!--no-fold-bn", [set = std::move(set)](int64_t n) { set(n > 0); },
         "Fold each BatchNormalization into the conv / linear before it before quantizing (a "
         "deployment's semantics; default: MASE's, BatchNorm stays float); --fold-bn=false or "
         "--no-fold-bn: don't, whatever " +
             help_tail)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->check(boolean);
}

bool config_folds_batch_norm(const std::string& path) {
  return config::load_config(path).fold_batch_norm.value_or(false);
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
