#include "search/memory_storage.h"

#include <algorithm>
#include <cmath>

#include <chrono>

#include "core/error.h"

namespace qsearch::search {

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

InMemoryStorage::StudyData& InMemoryStorage::study_locked(int64_t study_id) {
  if (study_id < 0 || study_id >= static_cast<int64_t>(studies_.size())) {
    fail("in-memory storage has no study with id {}", study_id);
  }
  return *studies_[study_id];
}

int64_t InMemoryStorage::create_study(const std::string& name,
                                      const std::vector<Direction>& directions,
                                      const SearchSpace& space, bool load_if_exists,
                                      const std::map<std::string, std::string>& user_attrs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : studies_) {
    if (s->info.name != name) continue;
    if (!load_if_exists) {
      fail("study '{}' already exists; load it (load_if_exists) or choose another name", name);
    }
    check_same_study(s->info, directions, space);
    return s->info.id;
  }
  auto data = std::make_unique<StudyData>();
  data->info.id = static_cast<int64_t>(studies_.size());
  data->info.name = name;
  data->info.directions = directions;
  data->info.space = space;
  data->info.user_attrs = user_attrs;
  studies_.push_back(std::move(data));
  return studies_.back()->info.id;
}

StudyInfo InMemoryStorage::get_study(int64_t study_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return study_locked(study_id).info;
}

std::optional<int64_t> InMemoryStorage::find_study(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : studies_) {
    if (s->info.name == name) return s->info.id;
  }
  return std::nullopt;
}

std::vector<std::string> InMemoryStorage::study_names() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& s : studies_) names.push_back(s->info.name);
  return names;
}

void InMemoryStorage::set_study_user_attr(int64_t study_id, const std::string& key,
                                          const std::string& json_value) {
  std::lock_guard<std::mutex> lock(mu_);
  study_locked(study_id).info.user_attrs[key] = json_value;
}

std::optional<FrozenTrial> InMemoryStorage::create_trial(
    int64_t study_id, const Decide& decide,
    const std::map<std::string, std::string>& system_attrs) {
  std::lock_guard<std::mutex> lock(mu_);
  StudyData& study = study_locked(study_id);
  std::optional<std::vector<double>> params = decide(study.trials);
  if (!params) return std::nullopt;
  if (params->size() != study.info.space.size()) {
    fail("study '{}': a trial needs {} params, got {}", study.info.name, study.info.space.size(),
         params->size());
  }
  FrozenTrial t;
  t.id = static_cast<int64_t>(trial_locations_.size());
  t.number = static_cast<int>(study.trials.size());
  t.state = TrialState::kRunning;
  t.params = std::move(*params);
  t.system_attrs = system_attrs;
  t.datetime_start_ms = now_ms();
  trial_locations_.emplace_back(study_id, t.number);
  heartbeats_.push_back(t.datetime_start_ms);
  study.trials.push_back(t);
  return t;
}

void InMemoryStorage::finish_trial(int64_t trial_id, TrialState state,
                                   const std::vector<double>& values,
                                   const std::map<std::string, std::string>& user_attrs,
                                   const std::map<std::string, std::string>& system_attrs) {
  std::lock_guard<std::mutex> lock(mu_);
  finish_locked(trial_id, state, values, user_attrs, system_attrs);
}

void InMemoryStorage::finish_locked(int64_t trial_id, TrialState state,
                                    const std::vector<double>& values,
                                    const std::map<std::string, std::string>& user_attrs,
                                    const std::map<std::string, std::string>& system_attrs) {
  if (trial_id < 0 || trial_id >= static_cast<int64_t>(trial_locations_.size())) {
    fail("in-memory storage has no trial with id {}", trial_id);
  }
  auto [study_id, number] = trial_locations_[trial_id];
  StudyData& study = *studies_[study_id];
  FrozenTrial& t = study.trials[number];
  if (state == TrialState::kRunning) {
    fail("trial {} of study '{}': finish_trial needs state COMPLETE, FAIL or PRUNED", number,
         study.info.name);
  }
  if (t.finished()) {
    fail("trial {} of study '{}' is already finished ({}); finished trials never change", number,
         study.info.name, to_string(t.state));
  }
  if (state == TrialState::kComplete && values.size() != study.info.directions.size()) {
    fail("trial {} of study '{}': {} values for {} objectives", number, study.info.name,
         values.size(), study.info.directions.size());
  }
  if (state == TrialState::kComplete &&
      std::any_of(values.begin(), values.end(), [](double v) { return std::isnan(v); })) {
    fail(
        "trial {} of study '{}': a COMPLETE trial cannot have a NaN objective value (a NaN "
        "objective makes the trial FAIL, as in Optuna)",
        number, study.info.name);
  }
  t.state = state;
  t.values = state == TrialState::kComplete ? values : std::vector<double>{};
  for (const auto& [k, v] : user_attrs) t.user_attrs[k] = v;
  for (const auto& [k, v] : system_attrs) t.system_attrs[k] = v;
  t.datetime_complete_ms = now_ms();
}

std::vector<FrozenTrial> InMemoryStorage::get_trials(int64_t study_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return study_locked(study_id).trials;
}

void InMemoryStorage::record_heartbeat(const std::vector<int64_t>& trial_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = now_ms();
  for (int64_t id : trial_ids) {
    if (id < 0 || id >= static_cast<int64_t>(trial_locations_.size())) continue;
    auto [study_id, number] = trial_locations_[id];
    if (!studies_[study_id]->trials[number].finished()) heartbeats_[id] = now;
  }
}

std::vector<FrozenTrial> InMemoryStorage::fail_stale_trials(int64_t study_id, int64_t grace_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  StudyData& study = study_locked(study_id);
  const int64_t now = now_ms();
  std::vector<FrozenTrial> reclaimed;
  for (FrozenTrial& t : study.trials) {
    const int64_t silent = now - heartbeats_[t.id];
    if (t.finished() || silent <= grace_ms) continue;
    finish_locked(
        t.id, TrialState::kFail, {}, {},
        {{kAttrInterrupted, "1"}, {kAttrFailReason, stale_fail_reason(silent, grace_ms)}});
    reclaimed.push_back(t);
  }
  return reclaimed;
}

}  // namespace qsearch::search
