// The effective settings of `qsearch search`: built-in defaults < the TOML config < flags
// (MASE's precedence, mase.md §1.1), with where each value came from for the start-up summary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "eval/objective.h"
#include "search/study.h"
#include "search/trial.h"

namespace qsearch::config {

// Command-line overrides (unset = not given).
struct SearchFlags {
  std::string config;
  std::optional<std::string> model, dataset, sampler, storage, study, out, mode;
  std::optional<std::string> output;        // --output NAME: the graph output scored
  std::optional<std::string> label_column;  // csv:PATH data sets
  std::optional<std::vector<std::string>> feature_columns;
  std::optional<int64_t> trials, jobs, num_samples, seed;  // seed: signed so -1 is refused
  std::optional<double> timeout;
  std::optional<bool> racing;   // --racing
  std::optional<bool> fold_bn;  // --fold-bn (fold_batch_norm)
  std::optional<double> racing_slice, racing_z;
  std::optional<std::string> final_eval;  // --final-eval none|full
  std::optional<std::string> proxy;       // --proxy probe|fisher|hessian (sensitivity sampler)
  // TPE: --multivariate --group --constant-liar (true|false), --n-startup-trials,
  // --n-ei-candidates, --gamma, --gamma-max, --stall-window.
  std::optional<bool> multivariate, group, constant_liar;
  std::optional<int64_t> n_startup_trials, n_ei_candidates, gamma_max, stall_window;
  std::optional<double> gamma;
};

struct SearchSettings {
  std::string config_path;
  std::string model_path;  // ONNX file to search (model, or load_name for a zoo name)
  std::string model_name;  // as written (zoo name or path)
  std::string dataset;
  // csv:PATH (a path from the config is located like the model) and its columns.
  std::string label_column;
  std::vector<std::string> feature_columns;
  // npz:PATH: the input and label arrays (x_array, y_array; empty = "x", "y").
  std::string x_array, y_array;
  std::string split = "val";  // MASE's runner reads the validation loader
  // fold_batch_norm / --fold-bn: BatchNorm folded into the conv / linear before it before
  // quantizing (ir::fold_batch_norm); false: MASE's semantics, BatchNorm stays float.
  bool fold_batch_norm = false;
  std::string project;
  std::string sampler = "tpe";
  int64_t n_trials = -1;
  double timeout_s = -1;
  int n_jobs = 1;
  uint64_t seed = 0;
  // The sampler's options (TPE's and the sensitivity sampler's max_group_options from
  // [search.strategy.setup] / flags; seed = `seed`).
  search::SamplerOptions sampler_options;
  std::string storage;  // URL
  std::string study_name;
  std::string out_dir;
  int save_every_n_trials = 10;
  double heartbeat_interval_s = search::kDefaultHeartbeatIntervalS;
  double grace_period_s = search::kDefaultGracePeriodS;
  eval::MatchBy by = eval::MatchBy::kName;
  std::vector<eval::SeedEntry> seeds;
  std::vector<search::Direction> directions;  // one per objective
  eval::ObjectiveOptions objective;           // also holds racing, racing_slice, racing_z
  // "full": after the search, the Pareto front is evaluated again on the whole split.
  std::string final_eval = "none";
  // The sensitivity sampler's phase a: "probe" (measured probe trials) or a gradient proxy
  // ("fisher", "hessian"; eval/sensitivity_proxy.h) computed by the command before the search.
  std::string proxy = "probe";
  // "key = value (source)" lines for the summary.
  std::vector<std::string> provenance;
};

// Resolves everything that does not need the model or the data. Throws Error (file:line, or the
// flag) for a value out of range (see config/checks.h), a config without a [search] section,
// missing directions, unknown runners or modes, an unknown sampler name, a zoo model without
// load_name (qsearch searches pretrained models only).
SearchSettings resolve_search_settings(const RunConfig& config, const SearchFlags& flags);

}  // namespace qsearch::config
