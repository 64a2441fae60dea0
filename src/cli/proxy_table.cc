#include "cli/proxy_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>

#include "core/error.h"

namespace qsearch::cli {

eval::ProxyTable compute_proxy_table(const SearchProblem& problem, const config::SearchSettings& s,
                                     bool quiet) {
  eval::ProxyOptions po;
  po.method = eval::parse_proxy_method(s.proxy);
  po.num_samples = problem.objective->samples_per_trial();
  po.seed = s.seed;
  eval::ProxyTable t =
      eval::compute_sensitivity_proxy(*problem.graph, *problem.dataset, *problem.space, po);
  if (!quiet) {
    std::cerr << fmt::format(
        "sensitivity proxy {}: {} samples, {} forward passes ({} with backward), {:.2f} s (float "
        "model: "
        "loss {:.4f}, accuracy {:.4f})\n",
        s.proxy, t.num_samples, t.passes, t.backward_passes, t.seconds, t.base_loss,
        t.base_accuracy);
  }
  return t;
}

std::optional<eval::ProxyTable> attach_sensitivity_proxy(const SearchProblem& problem,
                                                         config::SearchSettings& s, bool quiet) {
  std::string sampler = s.sampler;
  std::transform(sampler.begin(), sampler.end(), sampler.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (sampler != "sensitivity" || s.proxy == "probe") return std::nullopt;
  eval::ProxyTable t = compute_proxy_table(problem, s, quiet);
  s.sampler_options.sensitivity_table = std::make_shared<const search::SensitivityTable>(
      eval::proxy_objective_table(t, *problem.objective, *problem.space, s.directions));
  return t;
}

}  // namespace qsearch::cli
