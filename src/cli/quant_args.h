// Command-line pieces shared by `qsearch eval --quant` and `qsearch quantize`: the execution mode
// flag and the formats of a config's [passes.quantize].
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "ir/input_decl.h"
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

// A model loaded for the data set it runs on. A model whose graph inputs have symbolic dims
// besides the batch (exported with dynamic_axes {0: 'batch', 1: 'seq'}) can only be imported
// once those have sizes, which the data set gives (eval::bind_input_dims); any other model is
// imported in the constructor, so that its errors come before the data set's, as before.
//
//   ModelForData m(path, fold_bn);
//   dopts.input_names = m.input_names();
//   data::Dataset ds = data::load_dataset(..., dopts);
//   onnx::QonnxModel model = m.take(&ds);  // 'seq' bound from ds (a note on stderr says so)
class ModelForData {
 public:
  ModelForData(std::string path, bool fold_bn);
  // What DataOptions::input_names takes (eval::data_input_names of the model).
  std::vector<std::string> input_names() const;
  // True when the model waits for the data set (symbolic dims besides the batch).
  bool needs_data() const { return !model_.has_value(); }
  // The model, with its symbolic dims bound from `data`; without a data set (null) such a model
  // is an Error naming its dims and the fix.
  onnx::QonnxModel take(const data::Dataset* data);
  // The sizes take() bound ({"seq": 12}); empty for a model without symbolic dims. A search
  // records them in its study (report::setting::kInputDims) so that the report can import the
  // model at the same sizes.
  const ir::DimBinding& bound_dims() const { return bound_; }

 private:
  std::string path_;
  bool fold_bn_;
  std::vector<ir::InputDecl> inputs_;
  std::optional<onnx::QonnxModel> model_;
  ir::DimBinding bound_;
};

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
