// Storage: where studies and trials live (Optuna's BaseStorage, reduced to what a fixed-space
// study needs). Implementations: InMemoryStorage (search/memory_storage.h) and RdbStorage
// (storage/rdb_storage.h: Optuna's RDB schema in SQLite, SqliteStorage, or PostgreSQL). All
// methods are thread-safe; RdbStorage is also safe across processes sharing one database.
//
// Contract (checked by tests/search/storage_conformance.h for every backend):
// - create_trial is atomic: `decide` sees every trial created before it (by any thread or
//   process) and the new trial gets the next number; no two trials share a number.
// - finish_trial is durable when it returns (SQLite: committed) and a finished trial never
//   changes again (finishing twice throws Error).
// - get_trials returns trials ordered by number.
// - heartbeats: a trial's start time counts as its first heartbeat; record_heartbeat renews it;
// fail_stale_trials atomically finishes, as FAIL with
//   interrupted = "1" and a fail_reason, every RUNNING trial whose last heartbeat (its start time
//   when it has none, e.g. from an older file) is older than the grace period, so exactly one
//   caller reclaims each (Optuna's heartbeat_interval / grace_period / fail_stale_trials).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "search/trial.h"

namespace qsearch::search {

class Storage {
 public:
  virtual ~Storage() = default;

  // Creates a study, or with load_if_exists returns the existing one of that name. Loading a
  // study whose directions or space differ from the given ones throws Error saying what
  // differs (a resumed search must search the same space). A new study gets `user_attrs`
  // (key -> JSON text) in the same atomic step, so whoever loads it, even a process racing to
  // create it, sees them; loading leaves the stored attrs as they are.
  virtual int64_t create_study(const std::string& name, const std::vector<Direction>& directions,
                               const SearchSpace& space, bool load_if_exists,
                               const std::map<std::string, std::string>& user_attrs = {}) = 0;
  // Throws Error if there is no such study.
  virtual StudyInfo get_study(int64_t study_id) = 0;
  virtual std::optional<int64_t> find_study(const std::string& name) = 0;
  virtual std::vector<std::string> study_names() = 0;
  virtual void set_study_user_attr(int64_t study_id, const std::string& key,
                                   const std::string& json_value) = 0;

  // Atomically: read the study's trials, call decide(trials); when it returns params, insert a
  // RUNNING trial with those params, number = count of existing trials, start time = now, and
  // the given system attrs (read after decide returns, so decide may add to a map the caller
  // passes here: Study stores its sampler's Proposal attrs that way); return it. When decide
  // returns nullopt nothing is inserted.
  using Decide = std::function<std::optional<std::vector<double>>(const std::vector<FrozenTrial>&)>;
  virtual std::optional<FrozenTrial> create_trial(
      int64_t study_id, const Decide& decide,
      const std::map<std::string, std::string>& system_attrs = {}) = 0;

  // Finishes a RUNNING trial. values must have one entry per objective when COMPLETE, none of
  // them NaN (Optuna's rule and schema: a NaN objective makes the trial FAIL); +-inf is fine.
  virtual void finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values,
                            const std::map<std::string, std::string>& user_attrs,
                            const std::map<std::string, std::string>& system_attrs) = 0;

  virtual std::vector<FrozenTrial> get_trials(int64_t study_id) = 0;

  // Sets the last heartbeat of each RUNNING trial among trial_ids to now (others are skipped).
  virtual void record_heartbeat(const std::vector<int64_t>& trial_ids) = 0;
  // Reclaims the study's RUNNING trials without a heartbeat for more than grace_ms (see above);
  // returns them as stored after the change.
  virtual std::vector<FrozenTrial> fail_stale_trials(int64_t study_id, int64_t grace_ms) = 0;
};

// The fail_reason of a trial reclaimed by fail_stale_trials.
std::string stale_fail_reason(int64_t silent_ms, int64_t grace_ms);

// For create_study(load_if_exists) of every backend: throws Error naming the study and the first
// difference (number or order of objectives, a direction, a parameter's name or distribution)
// between a stored study and the directions/space a caller wants to resume it with.
void check_same_study(const StudyInfo& stored, const std::vector<Direction>& directions,
                      const SearchSpace& space);

}  // namespace qsearch::search
