// InMemoryStorage: the Storage contract (search/storage.h) in process memory, like Optuna's
// InMemoryStorage. Thread-safe: one mutex guards everything, so create_trial (and the sampler
// it calls through `decide`) runs one at a time. Nothing survives the process.
//
//   auto storage = std::make_shared<InMemoryStorage>();
//   int64_t id = storage->create_study("demo", {Direction::kMinimize}, space, true);
//   auto t = storage->create_trial(id, [](const std::vector<FrozenTrial>&) {
//     return std::optional<std::vector<double>>{{1.0}};
//   });
//   storage->finish_trial(t->id, TrialState::kComplete, {0.5}, {}, {});
//
// Study ids are 0, 1, 2, ...; trial ids are unique across all studies of the storage.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "search/storage.h"

namespace qsearch::search {

class InMemoryStorage final : public Storage {
 public:
  int64_t create_study(const std::string& name, const std::vector<Direction>& directions,
                       const SearchSpace& space, bool load_if_exists,
                       const std::map<std::string, std::string>& user_attrs = {}) override;
  StudyInfo get_study(int64_t study_id) override;
  std::optional<int64_t> find_study(const std::string& name) override;
  std::vector<std::string> study_names() override;
  void set_study_user_attr(int64_t study_id, const std::string& key,
                           const std::string& json_value) override;

  // `decide` is called with the storage's own trial list (no copy) while the lock is held.
  std::optional<FrozenTrial> create_trial(
      int64_t study_id, const Decide& decide,
      const std::map<std::string, std::string>& system_attrs = {}) override;
  void finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values,
                    const std::map<std::string, std::string>& user_attrs,
                    const std::map<std::string, std::string>& system_attrs) override;
  std::vector<FrozenTrial> get_trials(int64_t study_id) override;
  void record_heartbeat(const std::vector<int64_t>& trial_ids) override;
  std::vector<FrozenTrial> fail_stale_trials(int64_t study_id, int64_t grace_ms) override;

 private:
  struct StudyData {
    StudyInfo info;
    std::vector<FrozenTrial> trials;
  };
  StudyData& study_locked(int64_t study_id);
  void finish_locked(int64_t trial_id, TrialState state, const std::vector<double>& values,
                     const std::map<std::string, std::string>& user_attrs,
                     const std::map<std::string, std::string>& system_attrs);

  std::mutex mu_;
  std::vector<std::unique_ptr<StudyData>> studies_;       // index = study id
  std::vector<std::pair<int64_t, int>> trial_locations_;  // index = trial id -> (study, number)
  std::vector<int64_t> heartbeats_;                       // index = trial id -> last beat (ms)
};

}  // namespace qsearch::search
