#include "search/trial.h"

#include <algorithm>
#include <cctype>

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

}  // namespace qsearch::search
