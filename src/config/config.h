// MASE-schema TOML configs, read into plain structs (no TOML types leak past config.cc).
//
// The schema is MASE's (mase.md §2): top-level CLI keys (model, dataset, batch_size, seed,
// project, load_name, ...), `[passes.quantize]` (the transform pass), `[search.search_space]`
// and `[search.strategy]`. qsearch adds: `model` may be an ONNX path or a zoo name,
// `label_column` / `feature_columns` of a csv:PATH data set,
// `[search.strategy.setup] seed / storage / study_name`, runners beyond MASE's, and
// `[search.strategy.sw_runner.basic_evaluation] mode = "int" | "fake" | "float"`.
// Everything is documented in docs/config.md.
//
// "NA" (MASE's null) is kept as ConfigValue::Kind::kNA. Every value remembers its file:line so
// later checks (unknown node names, bad widths) can point at it. Unknown keys are errors that
// name file, line, the table, and the nearest valid key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config_value.h"
#include "eval/quant_config.h"
#include "search/trial.h"

namespace qsearch::config {

using eval::Fields;
using eval::QuantEntry;
using eval::SeedEntry;

struct QuantizePass {
  std::string by = "name";  // "name" | "type" | "regex_name"
  SourceLoc loc;
  std::vector<QuantEntry> entries;
};

struct MetricConfig {
  std::string name;
  double scale = 1.0;
  std::optional<search::Direction> direction;
  SourceLoc loc;
};

// A runner table ([search.strategy.sw_runner.<name>] / hw_runner.<name>) and its options.
struct RunnerConfig {
  std::string name;
  SourceLoc loc;
  Fields options;
  // Options given as arrays (only hw_runner.fpga's reuse_factor: a search dimension).
  std::vector<std::pair<std::string, std::vector<ConfigValue>>> lists;
  const ConfigValue* find(const std::string& key) const;
};

struct SearchSection {
  SourceLoc loc;
  std::string space_name = "graph/quantize/mixed_precision_ptq";
  std::string by = "name";
  SourceLoc by_loc;
  std::vector<SeedEntry> seeds;
  std::string strategy_name = "optuna";
  bool eval_mode = true;
  std::vector<RunnerConfig> sw_runners;
  std::vector<RunnerConfig> hw_runners;
  // [search.strategy.setup]; unset fields take defaults < TOML < command line.
  std::optional<int64_t> n_jobs, n_trials;
  std::optional<double> timeout;
  std::optional<std::string> sampler;
  std::optional<bool> sum_scaled_metrics;
  std::optional<search::Direction> direction;
  std::optional<uint64_t> seed;
  std::optional<std::string> storage, study_name;
  // Seconds; search/study.h has what they do.
  std::optional<double> heartbeat_interval, grace_period;
  std::optional<int64_t> max_group_options;    // the sensitivity sampler's
  std::optional<std::string> proxy;            // its phase a: "probe" | "fisher" | "hessian"
  std::optional<int64_t> save_every_n_trials;  // accepted for MASE compatibility (no effect)
  // Racing and the final evaluation (eval/objective.h, docs/search.md "Racing").
  std::optional<bool> racing;
  std::optional<double> racing_slice, racing_z;
  std::optional<std::string> final_eval;
  // TPE (Optuna's names; docs/search.md): gamma(n) = min(ceil(gamma n), gamma_max).
  std::optional<bool> multivariate, group, constant_liar;
  std::optional<int64_t> n_startup_trials, n_ei_candidates, gamma_max, stall_window;
  std::optional<double> gamma;
  std::vector<MetricConfig> metrics;  // sorted by name, as MASE orders objectives
  const RunnerConfig* sw_runner(const std::string& name) const;
  const RunnerConfig* hw_runner(const std::string& name) const;
};

struct RunConfig {
  std::string path;
  // Top-level keys (MASE's CLI arguments) that qsearch uses.
  std::optional<std::string> model, dataset, project, load_name, load_type, task;
  std::optional<int64_t> batch_size;
  std::optional<uint64_t> seed;
  SourceLoc model_loc, dataset_loc;
  // qsearch: the columns of a csv:PATH data set (data::DataOptions); empty = not given.
  std::optional<std::string> label_column;
  std::vector<std::string> feature_columns;
  // qsearch: the input / label arrays of an npz:PATH data set (data::DataOptions).
  std::optional<std::string> x_array, y_array;
  // qsearch: fold each BatchNormalization into the conv / linear before it before quantizing
  // (ir::fold_batch_norm; a deployment's semantics). Absent = false: MASE's, BatchNorm float.
  std::optional<bool> fold_batch_norm;
  std::optional<QuantizePass> quantize;
  std::optional<SearchSection> search;
  // MASE keys accepted but without effect in qsearch (printed as a note).
  std::vector<std::string> ignored_keys;
};

// Parses and checks the schema. Throws Error "file:line:col: message" for TOML syntax errors,
// unknown keys (with the nearest valid key), wrong types, empty choice lists, numbers out of
// range (config/checks.h: "x.toml:3:12: search.strategy.setup.n_trials must be at least 1
// (got 0)"); Error for a path that does not exist or is a directory.
RunConfig load_config(const std::string& path);

// The valid key closest to `key` by edit distance, or "" when nothing is reasonably close.
std::string nearest_key(const std::string& key, const std::vector<std::string>& valid);

}  // namespace qsearch::config
