#include "search/trial.h"

#include <algorithm>
#include <cctype>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qsearch::search {

std::string to_string(Direction d) { return d == Direction::kMinimize ? "minimize" : "maximize"; }

std::string to_string(TrialState s) {
  switch (s) {
    case TrialState::kRunning:
      return "RUNNING";
    case TrialState::kComplete:
      return "COMPLETE";
    case TrialState::kFail:
      return "FAIL";
    case TrialState::kPruned:
      return "PRUNED";
  }
  return "?";
}

Direction parse_direction(const std::string& s) {
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "minimize") return Direction::kMinimize;
  if (lower == "maximize") return Direction::kMaximize;
  fail("unknown direction '{}': use \"minimize\" or \"maximize\"", s);
}

std::optional<std::vector<double>> constraint_values(const FrozenTrial& t) {
  auto it = t.system_attrs.find(kAttrConstraints);
  if (it == t.system_attrs.end()) return std::nullopt;
  std::vector<double> out;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    for (const auto& v : j) out.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  } catch (const nlohmann::json::exception&) {
    return std::vector<double>{std::numeric_limits<double>::infinity()};
  }
  return out;
}

double constraint_violation(const FrozenTrial& t) {
  const auto c = constraint_values(t);
  if (!c) return 0;
  double sum = 0;
  for (double v : *c) {
    if (std::isnan(v)) return std::numeric_limits<double>::infinity();
    if (v > 0) sum += v;
  }
  return sum;
}

std::string constraints_json(const std::vector<double>& values) {
  nlohmann::json j = nlohmann::json::array();
  for (double v : values) j.push_back(v);
  return j.dump();
}

}  // namespace qsearch::search
