// The search space the storage and sampler benchmarks share: MASE's lab search space (3 linear
// nodes x 6 fields, one index parameter per key as MASE's suggest_int makes them; 18 parameters).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "search/distribution.h"
#include "search/trial.h"

namespace qsearch::bench {

inline search::SearchSpace mase_space() {
  const std::vector<std::string> nodes = {"seq_blocks_2", "seq_blocks_5", "seq_blocks_8"};
  const std::vector<std::pair<std::string, int>> fields = {
      {"data_in_width", 3},     {"data_in_frac_width", 3}, {"weight_width", 4},
      {"weight_frac_width", 4}, {"bias_width", 2},         {"bias_frac_width", 2}};
  search::SearchSpace space;
  for (const auto& node : nodes) {
    for (const auto& [field, n] : fields) {
      space.push_back({node + "/config/" + field, search::Distribution::int_range(0, n - 1)});
    }
  }
  return space;
}

}  // namespace qsearch::bench
