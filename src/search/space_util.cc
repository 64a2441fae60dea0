#include "search/space_util.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace qsearch::search {

double from_unit(const Distribution& d, double u) {
  const int64_t n = d.cardinality();
  if (n == 1) return d.value_at(0);
  if (d.kind == Distribution::Kind::kInt && d.log) {
    const double lo = std::log(d.low - 0.5 * d.step), hi = std::log(d.high + 0.5 * d.step);
    const double x = std::exp(lo + u * (hi - lo));
    const double k = std::round((x - d.low) / d.step);
    return d.value_at(std::clamp<int64_t>(static_cast<int64_t>(k), 0, n - 1));
  }
  if (n > 0) {
    const auto k = static_cast<int64_t>(std::floor(u * static_cast<double>(n)));
    return d.value_at(std::clamp<int64_t>(k, 0, n - 1));
  }
  const double x = d.log ? std::exp(std::log(d.low) + u * (std::log(d.high) - std::log(d.low)))
                         : d.low + u * (d.high - d.low);
  return std::clamp(x, d.low, d.high);
}

std::vector<double> sample_uniform(const SearchSpace& space, Rng& rng) {
  std::vector<double> out(space.size());
  for (size_t i = 0; i < space.size(); ++i) {
    const Distribution& d = space[i].dist;
    out[i] = d.single() ? d.value_at(0) : from_unit(d, rng.uniform());
  }
  return out;
}

uint64_t space_size(const SearchSpace& space) {
  constexpr uint64_t kMax = uint64_t{1} << 62;
  uint64_t size = 1;
  for (const Param& p : space) {
    const int64_t n = p.dist.cardinality();
    if (n < 0) {
      fail("parameter '{}' is a continuous float: give it a step to enumerate it", p.name);
    }
    if (size > kMax / static_cast<uint64_t>(n)) {
      fail("the search space has more than 2^62 configurations (at parameter '{}')", p.name);
    }
    size *= static_cast<uint64_t>(n);
  }
  return size;
}

uint64_t encode_config(const SearchSpace& space, const std::vector<double>& params) {
  uint64_t index = 0;
  for (size_t i = space.size(); i-- > 0;) {
    const auto n = static_cast<uint64_t>(space[i].dist.cardinality());
    index = index * n + static_cast<uint64_t>(space[i].dist.index_of(params[i]));
  }
  return index;
}

std::vector<double> decode_config(const SearchSpace& space, uint64_t index) {
  std::vector<double> params(space.size());
  for (size_t i = 0; i < space.size(); ++i) {
    const auto n = static_cast<uint64_t>(space[i].dist.cardinality());
    params[i] = space[i].dist.value_at(static_cast<int64_t>(index % n));
    index /= n;
  }
  return params;
}

}  // namespace qsearch::search
