#include "search/sampler.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "search/samplers.h"
#include "search/sensitivity_sampler.h"
#include "search/tpe_sampler.h"

namespace qsearch::search {

std::vector<std::string> sampler_names() {
  return {"bruteforce", "random", "tpe", "nsgaii", "qmc", "sensitivity"};
}

std::unique_ptr<Sampler> make_sampler(const std::string& name, const SamplerOptions& options) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (key == "bruteforce" || key == "brute_force" || key == "grid") {
    return std::make_unique<BruteForceSampler>(options.seed);
  }
  if (key == "random") return std::make_unique<RandomSampler>(options.seed);
  if (key == "tpe") return std::make_unique<TpeSampler>(options);
  if (key == "nsgaii") return std::make_unique<NsgaIISampler>(options);
  if (key == "qmc") return std::make_unique<QmcSampler>(options);
  if (key == "sensitivity") return std::make_unique<SensitivitySampler>(options);
  fail(
      "unknown sampler '{}': valid names are bruteforce (aliases grid, brute_force), random, "
      "tpe, nsgaii, qmc, sensitivity (case-insensitive)",
      name);
}

}  // namespace qsearch::search
