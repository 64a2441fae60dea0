// The per-layer sensitivity table of the sensitivity strategy's probe trials (system attr
// search::kAttrProbe): `qsearch sensitivity` prints it, and it is written as sensitivity.json by
// every search whose study holds probes (write_search_outputs). docs/outputs.md has the layout.
//
// Probe trials are not configurations of the search space, so best.json, log.json, trials.csv,
// the best-trials table and `qsearch compare`'s fronts leave them out (configuration_trials).
//
//   std::cout << sensitivity_table(info, trials);   // group | option | metric | drop ...
//   write_text(out / "sensitivity.json", sensitivity_json(info, trials));
#pragma once

#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::report {

bool has_probes(const std::vector<search::FrozenTrial>& trials);
// The trials that are configurations of the space (every trial but the probes), in order.
std::vector<search::FrozenTrial> configuration_trials(
    const std::vector<search::FrozenTrial>& trials);

// {"objectives": [names], "directions": [...], "base": {trial, state, values, software_metrics,
//  hardware_metrics} | null, "probes": [{group, option: {field: value}, trial, state, values,
//  drop, software_metrics, hardware_metrics[, fail_reason]}]}, probes by group (space order)
// then trial number; drop_k = base_k - value_k for every objective (an accuracy that falls gives
// a positive drop, and so does a cost that falls, e.g. average_bitwidth 32 -> 4 drops 28).
std::string sensitivity_json(const search::StudyInfo& info,
                             const std::vector<search::FrozenTrial>& trials);
// The same as a text table (orgtbl): group, option, then per objective its value and drop.
std::string sensitivity_table(const search::StudyInfo& info,
                              const std::vector<search::FrozenTrial>& trials);

}  // namespace qsearch::report
