// The sampler conformance suite (sampler_conformance.h) for every sampler and its main options.
#include "search/sampler_conformance.h"

namespace qsearch::search::conformance {
namespace {

// Small startup / population settings so 30-90 trial runs exercise the model-based paths.
INSTANTIATE_TEST_SUITE_P(
    All, SamplerConformance,
    ::testing::Values(
        SamplerCase{"random", {}}, SamplerCase{"qmc", {}},
        SamplerCase{"bruteforce", {}, /*finite_only=*/true},
        SamplerCase{"tpe", {.n_startup_trials = 5}},  // the defaults
        SamplerCase{"tpe", {.n_startup_trials = 5, .multivariate = false, .constant_liar = false}},
        SamplerCase{"tpe", {.n_startup_trials = 5, .multivariate = true, .constant_liar = false}},
        SamplerCase{"tpe",
                    {.n_startup_trials = 5,
                     .multivariate = false,
                     .constant_liar = false,
                     .stall_window = 0}},
        SamplerCase{"nsgaii", {.population_size = 8}},
        SamplerCase{"sensitivity", {}, /*finite_only=*/true}),
    [](const auto& info) { return info.param.label(); });

}  // namespace
}  // namespace qsearch::search::conformance
