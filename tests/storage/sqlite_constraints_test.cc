// Optuna's "constraints" trial system attribute in study.db: stored as the JSON list Optuna
// writes (value_json = [0.0, 12.5], not a JSON string), read back as the same values, so Optuna
// and qsearch agree on which trials are feasible.
#include <gtest/gtest.h>

#include "search/trial.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_storage.h"
#include "storage/temp_dir.h"

namespace qsearch::storage {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::TrialState;

std::optional<std::vector<double>> one(const std::vector<FrozenTrial>&) {
  return std::vector<double>{1};
}

TEST(SqliteConstraints, StoredAsAJsonListAndReadBack) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t study = 0;
  {
    SqliteStorage s(path);
    study =
        s.create_study("s", {Direction::kMaximize}, {{"a", Distribution::int_range(0, 3)}}, false);
    auto t = s.create_trial(study, one);
    ASSERT_TRUE(t);
    s.finish_trial(t->id, TrialState::kComplete, {0.5}, {},
                   {{search::kAttrConstraints, search::constraints_json({-3.0, 12.5})}});
  }
  SqliteConnection db(path, 1000);
  EXPECT_EQ(db.query_text("SELECT value_json FROM trial_system_attributes WHERE key = "
                          "'constraints'"),
            "[-3.0,12.5]");
  SqliteStorage again(path);
  const auto trials = again.get_trials(study);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(search::constraint_values(trials[0]), (std::vector<double>{-3.0, 12.5}));
  EXPECT_FALSE(search::is_feasible(trials[0]));
}

}  // namespace
}  // namespace qsearch::storage
