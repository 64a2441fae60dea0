// The identity of a trial's configuration, the set of configurations a study has "taken", and
// the nearest untaken configuration (issue 9: no evaluation is wasted on a configuration already
// evaluated; docs/search.md "No repeated configurations").
//
// A configuration is taken when some trial with it is COMPLETE, RUNNING or FAIL without
// interrupted = "1" (any other state a trial may gain later counts as taken too); an interrupted
// trial's configuration is re-run on purpose. Its identity is its params plus, when present, the
// value of system attr "probe" (a partial-assignment probe trial never collides with a full
// configuration).
//
//   TakenConfigurations taken(history);          // O(history), once per create_trial
//   if (taken.contains(params)) ...              // O(params)
//   auto next = nearest_untaken(space, params, taken, rng);  // nullopt: the space is exhausted
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/rng.h"
#include "search/trial.h"

namespace qsearch::search {

// A byte string equal for two configurations iff their params are equal (bit for bit, -0 == +0)
// and their probe attrs are equal (absent != any value).
std::string configuration_key(const std::vector<double>& params,
                              const std::string* probe = nullptr);
std::string configuration_key(const FrozenTrial& trial);

// COMPLETE, RUNNING, FAIL not interrupted (and any other non-interrupted state).
bool takes_configuration(const FrozenTrial& trial);

class TakenConfigurations {
 public:
  TakenConfigurations() = default;
  explicit TakenConfigurations(const std::vector<FrozenTrial>& history) { update(history); }
  // Brings the set up to date with `history`, a later state of the same study's trials (trials
  // are only added, and a trial only leaves the taken states, e.g. RUNNING -> interrupted FAIL):
  // keys are computed once per trial, so a call costs O(history) state checks plus O(new trials)
  // hashing.
  void update(const std::vector<FrozenTrial>& history);
  // A full configuration (not a probe).
  bool contains(const std::vector<double>& params) const;
  bool contains_key(const std::string& key) const { return count_.count(key) > 0; }
  size_t size() const { return count_.size(); }

 private:
  std::unordered_map<std::string, int> count_;  // taken key -> number of trials taking it
  std::vector<std::string> key_;                // per trial number; empty once released
  std::vector<char> counted_;                   // per trial number: counted in count_
};

// The untaken configuration nearest to `params` (taken) by one-parameter index steps of +-1 over
// the parameters with more than one value that are finite (ints, stepped floats, categoricals):
// breadth-first, neighbours in parameter order (-1 before +1), and among the untaken
// configurations at the smallest distance one chosen uniformly with `rng`. When every finite
// configuration is taken, a space with continuous floats redraws those uniformly (a repeat has
// probability 0; up to 64 draws); a finite space returns nullopt (exhausted).
std::optional<std::vector<double>> nearest_untaken(const SearchSpace& space,
                                                   const std::vector<double>& params,
                                                   const TakenConfigurations& taken, Rng& rng);

}  // namespace qsearch::search
