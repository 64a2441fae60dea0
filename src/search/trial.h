// Trials and studies as stored: plain values, immutable once finished (Optuna's FrozenTrial).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "search/distribution.h"

namespace qsearch::search {

enum class Direction { kMinimize, kMaximize };
// kPruned: stopped early by racing (eval/objective.h) because a COMPLETE trial dominated even its
// optimistic values; it keeps no values (its partial metrics are in its user attrs), is never a
// best trial and counts toward n_trials (Optuna's TrialState.PRUNED).
enum class TrialState { kRunning, kComplete, kFail, kPruned };

std::string to_string(Direction d);               // "minimize" / "maximize"
std::string to_string(TrialState s);              // "RUNNING" / "COMPLETE" / "FAIL" / "PRUNED"
Direction parse_direction(const std::string& s);  // case-insensitive; throws Error

// Well-known system attribute keys.
inline constexpr const char* kAttrFailReason = "fail_reason";   // why a trial FAILed
inline constexpr const char* kAttrInterrupted = "interrupted";  // "1": its process died
inline constexpr const char* kAttrWorker = "worker";            // "<hostname>:<pid>"
// A probe trial (the sensitivity sampler's; search/sensitivity_sampler.h): "base" (every group
// unquantized) or the name of the one group the trial evaluates, all others left out. A probe is
// not a configuration of the space: Study hides probes from samplers that do not use them
// (Sampler::uses_probes), from best_trials, and report leaves them out of best.json / log.json /
// trials.csv. They count as evaluations (n_trials), and the attr is part of the trial's
// configuration identity (search/configuration.h).
inline constexpr const char* kAttrProbe = "probe";
// Optuna's constraints (`optuna.study._constrained_optimization._CONSTRAINTS_KEY`): a JSON list of
// floats, one per constraint, a value > 0 meaning violated by that much (stored as a JSON list,
// as Optuna stores it). A trial without it has no constraints (feasible).
inline constexpr const char* kAttrConstraints = "constraints";

struct FrozenTrial {
  int64_t id = -1;  // storage-wide unique id
  int number = -1;  // 0, 1, 2, ... within the study, in creation order
  TrialState state = TrialState::kRunning;
  std::vector<double> params;  // internal repr, one per SearchSpace entry, same order
  std::vector<double> values;  // one per objective; only for COMPLETE
  // Values are JSON texts (e.g. "{\"loss\": 0.3}" or "0.5"), so any nested metric dict fits.
  std::map<std::string, std::string> user_attrs;
  std::map<std::string, std::string> system_attrs;
  int64_t datetime_start_ms = 0;     // Unix epoch milliseconds
  int64_t datetime_complete_ms = 0;  // 0 while RUNNING

  bool finished() const { return state != TrialState::kRunning; }
  // A FAIL caused by the process dying, not by the configuration: brute force re-runs these.
  bool interrupted() const {
    auto it = system_attrs.find(kAttrInterrupted);
    return it != system_attrs.end() && it->second == "1";
  }
};

// The trial's constraint values (kAttrConstraints), nullopt when it has none. An unreadable
// attr reads as one violated constraint (+inf), as Optuna treats a trial without values.
std::optional<std::vector<double>> constraint_values(const FrozenTrial& t);
// Sum of the positive constraint values (Optuna's violation score); 0 without constraints.
double constraint_violation(const FrozenTrial& t);
// No constraint value > 0 (a trial without constraints is feasible).
inline bool is_feasible(const FrozenTrial& t) { return constraint_violation(t) <= 0; }
// The JSON text stored for constraint values: "[0.0, 12.5]".
std::string constraints_json(const std::vector<double>& values);

// Whether the trial is a probe (kAttrProbe).
inline bool is_probe(const FrozenTrial& t) { return t.system_attrs.count(kAttrProbe) > 0; }

struct StudyInfo {
  int64_t id = -1;
  std::string name;
  std::vector<Direction> directions;  // one per objective
  SearchSpace space;
  std::map<std::string, std::string> user_attrs;
};

}  // namespace qsearch::search
