// Range checks for numbers read from a config file or given as command-line overrides, shared so
// that a bad value gets the same plain one-line message wherever it came from:
//
//   config/checks.h: check_at_least("x.toml:12:5: num_samples", 0, 1)
//     -> Error "x.toml:12:5: num_samples must be at least 1 (got 0)"
//   check_at_least("--trials", -3, 1)  -> Error "--trials must be at least 1 (got -3)"
//   check_positive("--timeout", NaN)   -> Error "--timeout must be a positive number (got nan)"
//
// `what` names the value: the flag, or "file:line:col: key" for a config value.
#pragma once

#include <cstdint>
#include <string>

namespace qsearch::config {

// Throws Error unless min <= value <= max ("must be at most" for the upper bound: counts that
// are kept in an int).
void check_at_least(const std::string& what, int64_t value, int64_t min, int64_t max = INT64_MAX);
// The largest value of an int count (n_trials, save_every_n_trials, repeats).
inline constexpr int64_t kMaxIntCount = INT32_MAX;
// The largest TPE n_ei_candidates (each costs a mixture evaluation per parameter and trial).
inline constexpr int64_t kMaxTpeCandidates = 100000;
// Throws Error unless value is finite and > 0.
void check_positive(const std::string& what, double value);
// Throws Error unless value is finite (not NaN, not +-inf).
void check_finite(const std::string& what, double value);

}  // namespace qsearch::config
