#include "storage/optuna_format.h"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qsearch::storage {

using search::Distribution;

std::string optuna_distribution_json(const Distribution& d) {
  // Python's json.dumps spacing, so the text reads like Optuna's own rows.
  switch (d.kind) {
    case Distribution::Kind::kInt:
      return fmt::format(
          R"({{"name": "IntDistribution", "attributes": {{"log": {}, "step": {}, "low": {}, "high": {}}}}})",
          d.log ? "true" : "false", static_cast<int64_t>(d.step), static_cast<int64_t>(d.low),
          static_cast<int64_t>(d.high));
    case Distribution::Kind::kFloat: {
      const nlohmann::json step = d.step > 0 ? nlohmann::json(d.step) : nlohmann::json(nullptr);
      return fmt::format(
          R"({{"name": "FloatDistribution", "attributes": {{"step": {}, "low": {}, "high": {}, "log": {}}}}})",
          step.dump(), nlohmann::json(d.low).dump(), nlohmann::json(d.high).dump(),
          d.log ? "true" : "false");
    }
    case Distribution::Kind::kCategorical: {
      std::string choices;
      for (size_t i = 0; i < d.choices.size(); ++i) {
        try {
          choices += (i ? ", " : "") + nlohmann::json(d.choices[i]).dump();
        } catch (const nlohmann::json::exception& e) {
          fail("categorical choice '{}' cannot be stored as JSON ({}): choices must be UTF-8",
               d.choices[i], e.what());
        }
      }
      return fmt::format(
          R"({{"name": "CategoricalDistribution", "attributes": {{"choices": [{}]}}}})", choices);
    }
  }
  return "";
}

Distribution distribution_from_optuna_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("Optuna distribution_json '{}' does not parse: {}", text, e.what());
  }
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() ||
      !j.contains("attributes") || !j["attributes"].is_object()) {
    fail("Optuna distribution_json '{}' needs a string \"name\" and an object \"attributes\"",
         text);
  }
  const std::string name = j["name"];
  const nlohmann::json& a = j["attributes"];
  auto number = [&](const char* key, double fallback, bool required) -> double {
    if (!a.contains(key) || a[key].is_null()) {
      if (required) fail("Optuna distribution_json '{}' needs a number \"{}\"", text, key);
      return fallback;
    }
    if (!a[key].is_number()) fail("Optuna distribution_json '{}': \"{}\" is no number", text, key);
    return a[key].get<double>();
  };
  auto flag = [&](const char* key) {
    return a.contains(key) && a[key].is_boolean() && a[key].get<bool>();
  };
  auto integer = [&](double v) {
    if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15) {
      fail("Optuna distribution_json '{}': int bounds and step must be integers", text);
    }
    return static_cast<int64_t>(v);
  };
  try {
    if (name == "IntDistribution" || name == "IntUniformDistribution" ||
        name == "IntLogUniformDistribution") {
      return Distribution::int_range(
          integer(number("low", 0, true)), integer(number("high", 0, true)),
          integer(number("step", 1, false)), flag("log") || name == "IntLogUniformDistribution");
    }
    if (name == "FloatDistribution" || name == "UniformDistribution" ||
        name == "LogUniformDistribution" || name == "DiscreteUniformDistribution") {
      const char* step_key = name == "DiscreteUniformDistribution" ? "q" : "step";
      return Distribution::float_range(number("low", 0, true), number("high", 0, true),
                                       flag("log") || name == "LogUniformDistribution",
                                       number(step_key, 0, false));
    }
    if (name == "CategoricalDistribution") {
      if (!a.contains("choices") || !a["choices"].is_array() || a["choices"].empty()) {
        fail("Optuna distribution_json '{}' needs a non-empty array \"choices\"", text);
      }
      std::vector<std::string> choices;
      for (const auto& c : a["choices"]) {
        choices.push_back(c.is_string() ? c.get<std::string>() : c.dump());
      }
      return Distribution::categorical(std::move(choices));
    }
  } catch (Error& e) {
    e.add_context(fmt::format("reading Optuna distribution_json '{}'", text));
    throw;
  }
  fail("Optuna distribution_json '{}' names an unknown distribution '{}'", text, name);
}

std::string format_datetime(int64_t epoch_ms, TimeZone zone) {
  const int64_t ms = ((epoch_ms % 1000) + 1000) % 1000;
  const time_t seconds = static_cast<time_t>((epoch_ms - ms) / 1000);
  tm parts{};
  if (zone == TimeZone::kUtc) {
    gmtime_r(&seconds, &parts);
  } else {
    localtime_r(&seconds, &parts);
  }
  char out[96];
  std::snprintf(out, sizeof out, "%04d-%02d-%02d %02d:%02d:%02d.%03d000", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<int>(ms));
  return out;
}

int64_t parse_datetime(const std::string& text, TimeZone zone) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, used = 0;
  char sep = 0;
  const int n = std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &year, &month, &day, &sep,
                            &hour, &minute, &second, &used);
  if (n < 7 || (sep != ' ' && sep != 'T') || month < 1 || month > 12 || day < 1 || day > 31 ||
      hour > 23 || minute > 59 || second > 60) {
    fail("'{}' is not a datetime 'YYYY-MM-DD HH:MM:SS[.ffffff]' (study database corrupt?)", text);
  }
  int64_t micros = 0;
  size_t i = static_cast<size_t>(used);
  if (i < text.size() && text[i] == '.') {
    int digits = 0;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (digits < 6) micros = micros * 10 + (text[i] - '0');
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  if (i != text.size()) {
    fail("'{}' is not a datetime 'YYYY-MM-DD HH:MM:SS[.ffffff]' (study database corrupt?)", text);
  }
  tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  parts.tm_isdst = -1;
  const time_t seconds = zone == TimeZone::kUtc ? timegm(&parts) : mktime(&parts);
  return static_cast<int64_t>(seconds) * 1000 + micros / 1000;
}

std::string system_attr_json(const std::string& value) {
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string trial_system_attr_json(const std::string& key, const std::string& value) {
  if (key == "constraints") {
    try {
      const nlohmann::json j = nlohmann::json::parse(value);
      if (j.is_array()) return j.dump();
    } catch (const nlohmann::json::exception&) {
    }
  }
  return system_attr_json(value);
}

std::string system_attr_from_json(const std::string& json) {
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    return j.is_string() ? j.get<std::string>() : j.dump();
  } catch (const nlohmann::json::exception&) {
    return json;  // not JSON (another program's row): the text as it is
  }
}

}  // namespace qsearch::storage
