// The sensitivity sampler's proxies for the CLI (eval/sensitivity_proxy.h): computed from a
// loaded problem on the samples its trials evaluate, then handed to the sampler as its table.
#pragma once

#include <optional>

#include "cli/search_problem.h"
#include "config/search_settings.h"
#include "eval/sensitivity_proxy.h"

namespace qsearch::cli {

// s.proxy ("fisher" | "hessian") on the first objective.samples_per_trial() samples of the
// problem's data (seed = s.seed), with a one-line summary on stderr unless quiet.
eval::ProxyTable compute_proxy_table(const SearchProblem& problem, const config::SearchSettings& s,
                                     bool quiet);

// When the sampler is "sensitivity" and s.proxy is not "probe": computes the proxy and sets
// s.sampler_options.sensitivity_table (every process computes the same table: the passes are
// deterministic), returning the proxy. nullopt otherwise.
std::optional<eval::ProxyTable> attach_sensitivity_proxy(const SearchProblem& problem,
                                                         config::SearchSettings& s, bool quiet);

}  // namespace qsearch::cli
