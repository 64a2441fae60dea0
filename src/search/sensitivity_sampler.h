// The sensitivity sampler ("sensitivity"): per-group probes, an additive model, an exact
// multiple-choice knapsack for the predicted Pareto front, then measured-front-guided search.
// docs/search.md ("The sensitivity strategy") has the algorithm and the reasons.
//
// Groups. A parameter belongs to the group named by its name up to the last "/config/" (MASE's
// flattened "<key>/config/<field>": one group per layer key), else up to its last '/', else its
// whole name (param_group_name). Groups are ordered by their first parameter.
//
// Phase a, probes. A probe is a trial tagged with system attr kAttrProbe (sampler.h): "base"
// (every group left unquantized; params all at their first value) or a group name (only that
// group's parameters matter, every other group left unquantized; their params are at their first
// value). A group with one option is the same in every configuration and is not probed (its
// constant effect is absorbed by the correction's intercept). A group with at most
// max_group_options options (product of its parameters' cardinalities; default 16) is probed at
// every option ("exhaustive"); a larger group ("per-parameter") at its top option (every
// parameter at its highest index), its main parameter (the most probed values, first on ties)
// at each other value, and every other parameter at each other value twice: with the main
// parameter at its top and at its lowest index (the interaction with the main parameter, e.g. a
// weight width with its fractional width, measured at both ends and linearly interpolated in
// between). A parameter with more than max_group_options values is probed at that many evenly
// spaced indices (both ends included) and linearly interpolated in between.
//
// Order. The base, every group's first probe (its top; exhaustive: a seeded random option),
// then the groups by decreasing weight (how much their first probe moved the objectives from
// the base, relative to the base): each per-parameter group's stage 1 (its cheap end: the main
// parameter at its lowest index and the other parameters' values there), then the remaining
// probes round-robin. Full configurations are interleaved: one for each per-parameter group
// whose stage 1 is finished, the first such group excepted, and one per two finished stage-2
// probes; each is the phase d + e proposal of the partial model (every group restricted to the
// options its finished probes determine). A space of exhaustive groups is probed completely
// first.
//
// Phase b, model. In loss space (maximised objectives negated), for every objective k
//   pred_k(x) = base_k + sum_g delta_g(x_g),  delta_g = probe_k(g, x_g) - base_k
// exact for costs that add over groups, an approximation for accuracy or loss. Measured full
// configurations correct it per objective: measured - base ~ a + s (pred - base), least squares
// (from 4 measurements; before that a mean shift), s clamped to [0.2, 5].
//
// Phase c, knapsack (search/knapsack.h): the exact Pareto front of the model over every budget,
// one option per group.
//
// Phases d + e, evaluation. Candidates = the predicted front plus every neighbour of the
// measured Pareto front (one group changed to another of its options, or one parameter one
// index step), minus taken configurations. Each is scored by its corrected prediction's
// exclusive hypervolume contribution to the measured front (plus RUNNING configurations at their
// corrected prediction, so parallel workers spread out), in objective space normalised by the
// range of candidates and measurements (and completed probes while probes remain), reference
// point 1.1; a candidate the front dominates
// scores minus the distance it would have to move to escape domination. The best score is
// proposed (ties: the first candidate, predicted front first). With no candidate left, or no
// complete model yet (probes still RUNNING elsewhere), a random untaken configuration (a taken
// last draw is moved by the Study; it ends the study when every configuration is taken).
//
// Taken: a trial with the same params (and for probes the same kAttrProbe) that is COMPLETE,
// RUNNING, or FAIL without interrupted = 1. A pure function of (seed, space, directions,
// history, trial number), like every sampler.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "search/sampler.h"

namespace qsearch::search {

inline constexpr const char* kProbeBase = "base";

// "<key>/config/<field>" -> "<key>"; "a/b" -> "a"; "x" -> "x".
std::string param_group_name(const std::string& param_name);

struct ParamGroup {
  std::string name;
  std::vector<int> params;  // indices into the space, increasing
};
// The groups of a space, ordered by their first parameter.
std::vector<ParamGroup> param_groups(const SearchSpace& space);

// Per-group deltas computed without probe trials (e.g. eval/sensitivity_proxy.h's Fisher or
// Hessian-trace proxies; docs/search.md "Proxies instead of probes"). With one in
// SamplerOptions::sensitivity_table the sampler proposes no probes: every group with more than
// one option is modelled exhaustively from the table (phases b-e unchanged).
struct SensitivityTable {
  std::string method;        // what produced it ("fisher", "hessian"), for messages
  std::vector<double> base;  // loss space (to_loss), every group unquantized
  // Group name -> per option -> loss-space delta per objective. Options are every combination
  // of the group's parameter indices in mixed radix over their cardinalities, parameter 0
  // fastest (option = i0 + c0 * (i1 + c1 * (i2 + ...))).
  std::map<std::string, std::vector<std::vector<double>>> deltas;
};

class SensitivitySampler final : public Sampler {
 public:
  explicit SensitivitySampler(const SamplerOptions& options);
  std::string name() const override { return "sensitivity"; }
  std::optional<std::vector<double>> sample(const StudyView& study, int trial_number) override;
  std::optional<Proposal> propose(const StudyView& study, int trial_number) override;
  bool uses_probes() const override { return true; }
  uint64_t seed() const override { return options_.seed; }
  // Error for continuous floats, spaces above 2^62 configurations, or a group whose knapsack
  // options (the product of its probed indices) exceed 2^16.
  void check_space(const SearchSpace& space,
                   const std::vector<Direction>& directions) const override;

  // The probes of a space in proposal order before any result is known (group weights unknown:
  // group order): label (kProbeBase or the group name) and params.
  struct Probe {
    std::string label;
    std::vector<double> params;
  };
  std::vector<Probe> probes(const SearchSpace& space) const;

 private:
  struct Cache;
  SamplerOptions options_;
  std::shared_ptr<Cache> cache_;
};

}  // namespace qsearch::search
