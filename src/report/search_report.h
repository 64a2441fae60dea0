// The files and the table a search leaves behind (docs/outputs.md has the full layouts).
//
// Pure functions of a study (StudyInfo) and its trials (FrozenTrials ordered by number). They
// know nothing of neural networks: they format whatever the search stored in the trials' user
// attrs, which are JSON texts. MASE's search writes four of them and so does ours:
//   software_metrics, hardware_metrics, scaled_metrics  JSON objects: metric name -> number
//   sampled_config                                      nested JSON object (the configuration)
//
// Byte-equal to MASE (pandas 1.5 / tabulate 0.8-0.9 output, checked against fixtures made by
// tools/make_report_fixtures.py with the real libraries):
// - best_json: best.json = DataFrame(number, value, software_metrics, hardware_metrics,
//   scaled_metrics, sampled_config).to_json(orient="index", indent=4) over best_trials().
//   As in MASE's code (`if study._is_multi_objective:` tests a bound method, which is always
//   true), the rows are always Optuna's best_trials and `value` is always the list of values,
//   also for a single objective (then every trial tied for the best value is a row).
// - log_json: log.json = study.trials_dataframe(attrs=(number, value, user_attrs,
//   system_attrs, state, datetime_start, datetime_complete, duration))
//   .to_json(orient="index", indent=4): one row per trial ("0", "1", ...), columns number,
//   value (one objective) or values_0, values_1, ... (several), user_attrs_<key> (sorted),
//   system_attrs_<key> (sorted; only keys some trial has), state, datetime_start,
//   datetime_complete (Unix epoch ms), duration (ms). Missing cells are null, and a column
//   of numbers with a missing cell is written as floats ("3.0"), as pandas' dtypes do.
// - best_trials_table: "Best trial(s):\n" + tabulate(orgtbl) of index, number and the three
//   metric dicts "beautified" (numbers round(v, 3), other values str(v) cut to 20 characters
//   plus "..."), as MASE logs it.
// Ours:
// - trials_csv: one row per trial (see the function).
// - write_search_outputs: the three files, each written to a temporary file and renamed, plus
//   sensitivity.json when the study holds probe trials (report/sensitivity_report.h).
// Probe trials (system attr search::kAttrProbe, the sensitivity strategy's) are not
// configurations of the space: every function here leaves them out.
//
//   std::vector<FrozenTrial> trials = storage.get_trials(id);
//   std::cout << best_trials_table(info, trials) << "\n";
//   write_search_outputs("qsearch_output/mnist/search", info, trials);
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::report {

// User attr keys the search writes and these reports read.
inline constexpr const char* kSoftwareMetrics = "software_metrics";
inline constexpr const char* kHardwareMetrics = "hardware_metrics";
inline constexpr const char* kScaledMetrics = "scaled_metrics";
inline constexpr const char* kSampledConfig = "sampled_config";
// Study user attr written by `qsearch search --final-eval full`: {"<trial number>": {loss,
// accuracy, macro_accuracy, their *_se, num_samples} on the whole split, ...}. Shown as an extra
// "final_eval" key of best.json's rows, an extra table column and final_<metric> columns of
// trials.csv, only when present (MASE's layouts are unchanged otherwise).
inline constexpr const char* kFinalEval = "final_eval";

// Optuna's study.best_trials: COMPLETE feasible trials (no constraint value > 0) no other such
// trial dominates under the study's directions (for one objective: every trial with the best
// value), in number order.
std::vector<search::FrozenTrial> best_trials(const search::StudyInfo& info,
                                             const std::vector<search::FrozenTrial>& trials);

std::string best_json(const search::StudyInfo& info,
                      const std::vector<search::FrozenTrial>& trials);
std::string log_json(const search::StudyInfo& info, const std::vector<search::FrozenTrial>& trials);
std::string best_trials_table(const search::StudyInfo& info,
                              const std::vector<search::FrozenTrial>& trials);

// trials.csv, RFC 4180 quoting ("" inside quoted fields), "\n" line ends. Columns:
//   number, state, value | values_0.., per search parameter its name (the external value: the
//   integer -- for MASE's index parameters the choice index --, the float, or the categorical
//   choice) then "<name>:value" (the value the index stands for, from the study's recorded
//   param_choices, else the trial's sampled_config; "NA" for MASE's NA, empty when unknown;
//   only for parameters with recorded choices, or named key/config/field when a trial has a
//   sampled_config), one per metric in software_metrics then
//   hardware_metrics (metric name; a name in both gets "hardware_" on the second), one per
//   scaled metric ("scaled_<name>"), duration_ms, fail_reason.
// Metric columns appear in the order the metrics are first seen. Numbers print as Python's
// repr (shortest round trip: "0.5", "1e-05", "nan", "inf"); a missing cell is empty.
std::string trials_csv(const search::StudyInfo& info,
                       const std::vector<search::FrozenTrial>& trials);

// Writes `text` to `path` through a temporary file renamed over it, so a reader sees the old
// file or the new one, never half of one; a failure is an Error naming the file (and leaves no
// temporary file behind).
void write_atomically(const std::filesystem::path& path, const std::string& text);

// Writes best.json, log.json and trials.csv into out_dir (created with its parents). Each file
// is written to a temporary name in out_dir and renamed over the old one, so a reader never sees
// half a file. Throws Error naming the file that could not be written.
void write_search_outputs(const std::filesystem::path& out_dir, const search::StudyInfo& info,
                          const std::vector<search::FrozenTrial>& trials);

}  // namespace qsearch::report
