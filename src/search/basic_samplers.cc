// RandomSampler, BruteForceSampler and QmcSampler (samplers.h).
#include <vector>

#include "core/error.h"
#include "search/permutation.h"
#include "search/samplers.h"
#include "search/sobol.h"
#include "search/space_util.h"

namespace qsearch::search {

std::optional<std::vector<double>> RandomSampler::sample(const StudyView& study, int trial_number) {
  Rng rng = Rng(seed_).fork(static_cast<uint64_t>(trial_number));
  std::vector<double> params = sample_uniform(study.space, rng);
  for (int r = 0; r < kMaxRedraws && study.is_taken(params); ++r) {
    params = sample_uniform(study.space, rng);
  }
  return params;
}

void BruteForceSampler::check_space(const SearchSpace& space,
                                    const std::vector<Direction>& directions) const {
  (void)directions;
  try {
    space_size(space);
  } catch (Error& e) {
    e.add_context("while preparing the bruteforce sampler (it enumerates every configuration)");
    throw;
  }
}

std::optional<std::vector<double>> BruteForceSampler::sample(const StudyView& study,
                                                             int trial_number) {
  (void)trial_number;
  const SearchSpace& space = study.space;
  const uint64_t n = space_size(space);
  const FeistelPermutation perm(n, seed_);
  // taken[p]: permutation position p is done or in progress. At most history.size() positions
  // are taken, so the smallest free one is <= history.size().
  std::vector<bool> taken(study.history.size() + 1, false);
  for (const FrozenTrial& t : study.history) {
    if (t.state == TrialState::kFail && t.interrupted()) continue;
    if (t.params.size() != space.size()) continue;
    bool inside = true;
    for (size_t i = 0; i < space.size() && inside; ++i)
      inside = space[i].dist.contains(t.params[i]);
    if (!inside) continue;
    const uint64_t pos = perm.inverse(encode_config(space, t.params));
    if (pos < taken.size()) taken[pos] = true;
  }
  uint64_t free_pos = 0;
  while (free_pos < taken.size() && taken[free_pos]) ++free_pos;
  if (free_pos >= n) return std::nullopt;
  return decode_config(space, perm(free_pos));
}

std::optional<std::vector<double>> QmcSampler::sample(const StudyView& study, int trial_number) {
  const SearchSpace& space = study.space;
  std::vector<int> dims;  // space index of each Sobol dimension
  for (size_t i = 0; i < space.size(); ++i) {
    if (!space[i].dist.single()) dims.push_back(static_cast<int>(i));
  }
  std::shared_ptr<const SobolSequence> engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!engine_ || engine_->dims() != static_cast<int>(dims.size())) {
      engine_ = std::make_shared<const SobolSequence>(static_cast<int>(dims.size()),
                                                      options_.scramble, options_.seed);
    }
    engine = engine_;
  }
  std::vector<double> u(dims.size());
  engine->point(static_cast<uint64_t>(trial_number), u);
  std::vector<double> out(space.size());
  for (size_t i = 0; i < space.size(); ++i) {
    if (space[i].dist.single()) out[i] = space[i].dist.value_at(0);
  }
  for (size_t k = 0; k < dims.size(); ++k) out[dims[k]] = from_unit(space[dims[k]].dist, u[k]);
  return out;
}

}  // namespace qsearch::search
