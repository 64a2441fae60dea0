// How Optuna's RDB storage spells qsearch's values (storage/schema.h): distributions as
// Optuna's distribution_json, datetimes as SQLAlchemy's text, system attributes as JSON.
//
//   optuna_distribution_json(Distribution::int_range(0, 3))
//     == R"({"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 0, "high":
//     3}})"
//   format_datetime(1733484201655, TimeZone::kLocal) == "2024-12-06 11:23:21.655000" (in UTC)
#pragma once

#include <cstdint>
#include <string>

#include "search/distribution.h"

namespace qsearch::storage {

// Optuna's distribution_to_json: IntDistribution, FloatDistribution (step null when
// continuous) or CategoricalDistribution.
std::string optuna_distribution_json(const search::Distribution& d);
// Optuna's json_to_distribution, including its legacy names (UniformDistribution,
// LogUniformDistribution, DiscreteUniformDistribution, IntUniformDistribution,
// IntLogUniformDistribution). Categorical choices that are not strings become their JSON text.
// Throws Error naming the text when it is not a distribution.
search::Distribution distribution_from_optuna_json(const std::string& text);

// Optuna writes trial times with datetime.now() (local time, naive) and heartbeats with the
// database's CURRENT_TIMESTAMP (UTC in SQLite).
enum class TimeZone { kLocal, kUtc };
// "YYYY-MM-DD HH:MM:SS.ffffff", as SQLAlchemy stores a DateTime in SQLite (and PostgreSQL reads
// into TIMESTAMP WITHOUT TIME ZONE).
std::string format_datetime(int64_t epoch_ms, TimeZone zone);
// Reads that form, with 0 to 6 fraction digits or none (PostgreSQL's text output, SQLite's
// CURRENT_TIMESTAMP), also with 'T' between date and time. Throws Error on other text.
int64_t parse_datetime(const std::string& text, TimeZone zone);

// qsearch's system attributes are plain strings; Optuna's value_json holds JSON. A string is
// stored as a JSON string; reading gives back the string, or the JSON text of any other value
// (what Optuna itself stores, e.g. nsga2:generation 0 -> "0").
std::string system_attr_json(const std::string& value);
// The same for a trial's attribute `key`: Optuna's "constraints" is a JSON list of floats and is
// stored as that list (the text given when it parses as a JSON array), every other key as above.
std::string trial_system_attr_json(const std::string& key, const std::string& value);
std::string system_attr_from_json(const std::string& json);

}  // namespace qsearch::storage
