#include "search/storage.h"

#include "core/error.h"

namespace qsearch::search {

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
