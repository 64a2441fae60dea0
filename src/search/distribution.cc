#include "search/distribution.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "core/error.h"

namespace qsearch::search {

namespace {

// Grid tolerance for stepped floats: values written to JSON/SQLite and read back may differ from
// low + k * step by a few ulps.
bool near_grid(double x, double grid) {
  return std::fabs(x - grid) <= 1e-9 * std::max(1.0, std::fabs(grid));
}

}  // namespace

Distribution Distribution::int_range(int64_t low, int64_t high, int64_t step, bool log) {
  Distribution d;
  d.kind = Kind::kInt;
  d.low = static_cast<double>(low);
  d.high = static_cast<double>(high);
  d.step = static_cast<double>(step);
  d.log = log;
  d.validate();
  // Optuna's IntDistribution: a high that is not on the step grid is lowered onto it.
  d.high = d.low + std::floor((d.high - d.low) / d.step) * d.step;
  return d;
}

Distribution Distribution::float_range(double low, double high, bool log, double step) {
  Distribution d;
  d.kind = Kind::kFloat;
  d.low = low;
  d.high = high;
  d.step = step;
  d.log = log;
  d.validate();
  if (step > 0) {
    const double n = std::floor((high - low) / step + 1e-9);
    const double on_grid = low + n * step;
    if (!near_grid(high, on_grid)) d.high = on_grid;
  }
  return d;
}

Distribution Distribution::categorical(std::vector<std::string> choices) {
  Distribution d;
  d.kind = Kind::kCategorical;
  d.low = 0;
  d.high = choices.empty() ? 0 : static_cast<double>(choices.size() - 1);
  d.step = 1;
  d.choices = std::move(choices);
  d.validate();
  return d;
}

void Distribution::validate() const {
  switch (kind) {
    case Kind::kInt:
      if (!std::isfinite(low) || !std::isfinite(high) || low != std::floor(low) ||
          high != std::floor(high)) {
        fail("int distribution: bounds must be integers, got low={} high={}", low, high);
      }
      if (low > high) fail("int distribution: low ({}) > high ({}); swap them", low, high);
      if (!(step >= 1) || step != std::floor(step)) {
        fail("int distribution: step must be an integer >= 1, got {}", step);
      }
      if (log && low < 1) fail("int distribution with log=true needs low >= 1, got {}", low);
      if (log && step != 1) fail("int distribution with log=true needs step 1, got {}", step);
      break;
    case Kind::kFloat:
      if (!std::isfinite(low) || !std::isfinite(high)) {
        fail("float distribution: bounds must be finite, got low={} high={}", low, high);
      }
      if (low > high) fail("float distribution: low ({}) > high ({}); swap them", low, high);
      if (!(step >= 0) || !std::isfinite(step)) {
        fail("float distribution: step must be >= 0 (0 = continuous), got {}", step);
      }
      if (log && low <= 0) fail("float distribution with log=true needs low > 0, got {}", low);
      if (log && step > 0) fail("float distribution: log=true and step > 0 cannot be combined");
      break;
    case Kind::kCategorical:
      if (choices.empty()) fail("categorical distribution needs at least one choice");
      break;
  }
}

int64_t Distribution::cardinality() const {
  switch (kind) {
    case Kind::kInt:
      return static_cast<int64_t>(std::llround((high - low) / step)) + 1;
    case Kind::kFloat:
      if (step <= 0) return low == high ? 1 : -1;
      return static_cast<int64_t>(std::llround((high - low) / step)) + 1;
    case Kind::kCategorical:
      return static_cast<int64_t>(choices.size());
  }
  return -1;
}

bool Distribution::contains(double x) const {
  if (std::isnan(x)) return false;
  switch (kind) {
    case Kind::kInt:
      if (x < low || x > high || x != std::floor(x)) return false;
      return std::fmod(x - low, step) == 0;
    case Kind::kFloat: {
      if (step <= 0) return x >= low && x <= high;
      const double tol = 1e-9 * std::max(1.0, std::fabs(x));
      if (x < low - tol || x > high + tol) return false;
      const double k = std::round((x - low) / step);
      return near_grid(x, value_at(static_cast<int64_t>(k)));
    }
    case Kind::kCategorical:
      return x >= 0 && x < static_cast<double>(choices.size()) && x == std::floor(x);
  }
  return false;
}

double Distribution::value_at(int64_t k) const {
  QSEARCH_DCHECK(k >= 0 && (cardinality() < 0 || k < cardinality()));
  switch (kind) {
    case Kind::kInt:
      return low + static_cast<double>(k) * step;
    case Kind::kFloat:
      if (step <= 0) return low;  // a single-valued continuous float
      return k == cardinality() - 1 ? high : low + static_cast<double>(k) * step;
    case Kind::kCategorical:
      return static_cast<double>(k);
  }
  return 0;
}

int64_t Distribution::index_of(double x) const {
  const int64_t n = cardinality();
  if (n < 0) return -1;
  const double k = kind == Kind::kCategorical ? std::round(x) : std::round((x - low) / step);
  if (!(k >= 0)) return 0;
  return std::min<int64_t>(static_cast<int64_t>(k), n - 1);
}

std::string Distribution::to_json() const {
  nlohmann::ordered_json j;
  switch (kind) {
    case Kind::kInt:
      j["kind"] = "int";
      j["low"] = static_cast<int64_t>(low);
      j["high"] = static_cast<int64_t>(high);
      j["step"] = static_cast<int64_t>(step);
      j["log"] = log;
      break;
    case Kind::kFloat:
      j["kind"] = "float";
      j["low"] = low;
      j["high"] = high;
      j["step"] = step;
      j["log"] = log;
      break;
    case Kind::kCategorical:
      j["kind"] = "categorical";
      j["choices"] = choices;
      break;
  }
  return j.dump();
}

Distribution Distribution::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("distribution JSON '{}' does not parse: {}", text, e.what());
  }
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string()) {
    fail("distribution JSON '{}' needs a string field \"kind\" (int, float or categorical)", text);
  }
  const std::string kind = j["kind"];
  auto number = [&](const char* key) -> double {
    if (!j.contains(key) || !j[key].is_number()) {
      fail("distribution JSON '{}' needs a number field \"{}\"", text, key);
    }
    return j[key].get<double>();
  };
  auto boolean = [&](const char* key) -> bool {
    if (!j.contains(key)) return false;
    if (!j[key].is_boolean()) fail("distribution JSON '{}': \"{}\" must be true/false", text, key);
    return j[key].get<bool>();
  };
  if (kind == "int") {
    const double low = number("low"), high = number("high");
    const double step = j.contains("step") ? number("step") : 1.0;
    for (double v : {low, high, step}) {
      if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15) {
        fail("distribution JSON '{}': int bounds and step must be integers", text);
      }
    }
    return int_range(static_cast<int64_t>(low), static_cast<int64_t>(high),
                     static_cast<int64_t>(step), boolean("log"));
  }
  if (kind == "float") {
    const double step = j.contains("step") ? number("step") : 0.0;
    return float_range(number("low"), number("high"), boolean("log"), step);
  }
  if (kind == "categorical") {
    if (!j.contains("choices") || !j["choices"].is_array()) {
      fail("distribution JSON '{}' needs an array field \"choices\"", text);
    }
    std::vector<std::string> choices;
    for (const auto& c : j["choices"]) {
      if (!c.is_string()) fail("distribution JSON '{}': choices must be strings", text);
      choices.push_back(c.get<std::string>());
    }
    return categorical(std::move(choices));
  }
  fail("distribution JSON '{}': unknown kind '{}' (valid: int, float, categorical)", text, kind);
}

}  // namespace qsearch::search
