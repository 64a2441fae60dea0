// Helpers shared by the samplers: mapping the unit interval onto a distribution, uniform
// sampling, and mixed-radix indexing of finite spaces.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "search/distribution.h"

namespace qsearch::search {

// The internal value that u in [0, 1) maps to (Optuna's _SearchSpaceTransform semantics):
// - finite, not log (ints, stepped floats, categoricals): C equal-width cells, k = floor(u C);
//   the same as Optuna's uniform on [low - step/2, high + step/2] rounded to the step grid;
// - log int: exp of a uniform position in [log(low - step/2), log(high + step/2)], rounded to
//   the step grid;
// - continuous float: low + u (high - low), or log-uniform when log.
double from_unit(const Distribution& d, double u);

// Optuna's RandomSampler for a whole space: one uniform draw per parameter, in space order
// (single-valued parameters consume no draw).
std::vector<double> sample_uniform(const SearchSpace& space, Rng& rng);

// Number of configurations of a finite space (product of cardinalities). Throws Error if a
// parameter is continuous or the product exceeds 2^62.
uint64_t space_size(const SearchSpace& space);

// Mixed radix with parameter 0 as the fastest digit.
uint64_t encode_config(const SearchSpace& space, const std::vector<double>& params);
std::vector<double> decode_config(const SearchSpace& space, uint64_t index);

}  // namespace qsearch::search
