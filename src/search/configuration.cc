#include "search/configuration.h"

#include <cstring>

#include "search/space_util.h"

namespace qsearch::search {

std::string configuration_key(const std::vector<double>& params, const std::string* probe) {
  std::string key;
  key.reserve(params.size() * sizeof(double) + (probe ? probe->size() + 1 : 0));
  for (double v : params) {
    if (v == 0) v = 0;  // -0 and +0 are the same value
    char bytes[sizeof(double)];
    std::memcpy(bytes, &v, sizeof(double));
    key.append(bytes, sizeof(double));
  }
  if (probe) {
    key.push_back('\x01');  // params have a fixed length, so the suffix cannot be confused
    key += *probe;
  }
  return key;
}

std::string configuration_key(const FrozenTrial& trial) {
  auto it = trial.system_attrs.find(kAttrProbe);
  return configuration_key(trial.params, it == trial.system_attrs.end() ? nullptr : &it->second);
}

bool takes_configuration(const FrozenTrial& trial) {
  return !(trial.state == TrialState::kFail && trial.interrupted());
}

void TakenConfigurations::update(const std::vector<FrozenTrial>& history) {
  if (history.size() < counted_.size()) {  // not a later state of the same history: rebuild
    count_.clear();
    key_.clear();
    counted_.clear();
  }
  for (size_t i = 0; i < counted_.size(); ++i) {
    if (!counted_[i] || takes_configuration(history[i])) continue;
    auto it = count_.find(key_[i]);
    if (it != count_.end() && --it->second == 0) count_.erase(it);
    counted_[i] = 0;
    key_[i].clear();
  }
  for (size_t i = counted_.size(); i < history.size(); ++i) {
    const bool takes = takes_configuration(history[i]);
    key_.push_back(takes ? configuration_key(history[i]) : std::string());
    counted_.push_back(takes ? 1 : 0);
    if (takes) ++count_[key_.back()];
  }
}

bool TakenConfigurations::contains(const std::vector<double>& params) const {
  return count_.count(configuration_key(params)) > 0;
}

std::optional<std::vector<double>> nearest_untaken(const SearchSpace& space,
                                                   const std::vector<double>& params,
                                                   const TakenConfigurations& taken, Rng& rng) {
  if (!taken.contains(params)) return params;
  std::vector<int> steppable, continuous;
  for (size_t i = 0; i < space.size(); ++i) {
    const int64_t c = space[i].dist.cardinality();
    if (c < 0) {
      continuous.push_back(static_cast<int>(i));
    } else if (c > 1) {
      steppable.push_back(static_cast<int>(i));
    }
  }
  std::unordered_set<std::string> visited{configuration_key(params)};
  std::vector<std::vector<double>> level{params};
  while (!level.empty()) {
    std::vector<std::vector<double>> next, free;
    for (const std::vector<double>& p : level) {
      for (int i : steppable) {
        const Distribution& d = space[i].dist;
        const int64_t k = d.index_of(p[i]);
        for (int64_t step : {-1, 1}) {
          const int64_t j = k + step;
          if (j < 0 || j >= d.cardinality()) continue;
          std::vector<double> q = p;
          q[i] = d.value_at(j);
          std::string key = configuration_key(q);
          if (!visited.insert(key).second) continue;
          if (!taken.contains_key(key)) free.push_back(q);
          next.push_back(std::move(q));
        }
      }
    }
    if (!free.empty()) return free[rng.uniform_int(free.size())];
    level = std::move(next);
  }
  if (continuous.empty()) return std::nullopt;  // every configuration of a finite space is taken
  std::vector<double> q = params;
  for (int attempt = 0; attempt < 64; ++attempt) {
    for (int i : continuous) q[i] = from_unit(space[i].dist, rng.uniform());
    if (!taken.contains(q)) return q;
  }
  return std::nullopt;
}

}  // namespace qsearch::search
