#include "search/storage.h"

#include "core/error.h"

namespace qsearch::search {

std::string stale_fail_reason(int64_t silent_ms, int64_t grace_ms) {
  return fmt::format(
      "interrupted: no heartbeat for {:.1f}s (grace_period {:.1f}s): its worker died or hung; "
      "the configuration is re-run",
      silent_ms / 1000.0, grace_ms / 1000.0);
}

void check_same_study(const StudyInfo& stored, const std::vector<Direction>& directions,
                      const SearchSpace& space) {
  if (stored.directions != directions) {
    std::string have, want;
    for (Direction d : stored.directions) have += (have.empty() ? "" : ", ") + to_string(d);
    for (Direction d : directions) want += (want.empty() ? "" : ", ") + to_string(d);
    fail("study '{}' exists with directions [{}] but [{}] were given; use another study name",
         stored.name, have, want);
  }
  if (stored.space.size() != space.size()) {
    fail("study '{}' exists with {} parameters but the search space has {}; use another study name",
         stored.name, stored.space.size(), space.size());
  }
  for (size_t i = 0; i < space.size(); ++i) {
    if (stored.space[i].name != space[i].name) {
      fail(
          "study '{}': parameter {} is '{}' in the stored study but '{}' in the search space; "
          "use another study name",
          stored.name, i, stored.space[i].name, space[i].name);
    }
    if (!(stored.space[i].dist == space[i].dist)) {
      fail(
          "study '{}': parameter '{}' is {} in the stored study but {} in the search space; use "
          "another study name",
          stored.name, space[i].name, stored.space[i].dist.to_json(), space[i].dist.to_json());
    }
  }
}

}  // namespace qsearch::search
