// qsearch's study.db is Optuna's RDB schema (storage/schema.h): the tables, version and
// revision of a new file, the rows a trial becomes, a file `optuna storage upgrade` moved to
// v3.2.0.a, and a study Optuna itself made (read, never resumed). The Python side (Optuna
// reading a real search's study.db) is tests/e2e/optuna_e2e_test.cc.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "core/error.h"
#include "storage/optuna_format.h"
#include "storage/rdb_storage.h"
#include "storage/schema.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_storage.h"
#include "storage/temp_dir.h"

namespace qsearch::storage {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::SearchSpace;
using search::TrialState;

SearchSpace space() {
  return {{"seq_blocks_2/config/weight_width", Distribution::int_range(0, 3)},
          {"seq_blocks_2/config/name", Distribution::categorical({"integer", "NA"})},
          {"lr", Distribution::float_range(1e-4, 0.1, true)}};
}

search::Storage::Decide propose(std::vector<double> params) {
  return [params](const std::vector<FrozenTrial>&) {
    return std::optional<std::vector<double>>(params);
  };
}

std::vector<std::string> rows(SqliteConnection& db, const std::string& sql) {
  std::vector<std::string> out;
  SqlStatement& s = db.prepare(sql);
  while (s.step()) out.push_back(s.column_is_null(0) ? "NULL" : s.column_text(0));
  s.reset();
  return out;
}

TEST(OptunaSchema, ANewFileHasOptunasTablesVersionAndRevision) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage{path};
  SqliteConnection db(path, 1000);
  const auto tables = rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  EXPECT_EQ(tables, (std::vector<std::string>{
                        "alembic_version", "studies", "study_directions", "study_system_attributes",
                        "study_user_attributes", "trial_heartbeats", "trial_intermediate_values",
                        "trial_params", "trial_system_attributes", "trial_user_attributes",
                        "trial_values", "trials", "version_info"}));
  EXPECT_EQ(rows(db, "SELECT schema_version || ' ' || library_version FROM version_info"),
            std::vector<std::string>{"12 3.1.0"});
  EXPECT_EQ(rows(db, "SELECT version_num FROM alembic_version"),
            std::vector<std::string>{"v3.0.0.d"});
  EXPECT_EQ(db.query_text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(db.query_text("PRAGMA application_id"), "0");
  // Optuna's columns, in Optuna's order.
  auto columns = [&](const std::string& table) {
    std::string out;
    for (const auto& c : rows(db, "SELECT name FROM pragma_table_info('" + table + "')")) {
      out += (out.empty() ? "" : ",") + c;
    }
    return out;
  };
  EXPECT_EQ(columns("trials"), "trial_id,number,study_id,state,datetime_start,datetime_complete");
  EXPECT_EQ(columns("trial_params"), "param_id,trial_id,param_name,param_value,distribution_json");
  EXPECT_EQ(columns("trial_values"), "trial_value_id,trial_id,objective,value,value_type");
  EXPECT_EQ(columns("trial_system_attributes"),
            "trial_system_attribute_id,trial_id,key,value_json");
  EXPECT_EQ(columns("study_directions"), "study_direction_id,direction,study_id,objective");
  EXPECT_EQ(columns("trial_heartbeats"), "trial_heartbeat_id,trial_id,heartbeat");
}

TEST(OptunaSchema, ATrialBecomesOptunasRows) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage s(path);
  const int64_t study = s.create_study("mase", {Direction::kMaximize, Direction::kMinimize},
                                       space(), false, {{"search_config", "{\"n\": 3}"}});
  auto t = s.create_trial(study, propose({2, 1, 0.01}), {{"worker", "host:1"}});
  ASSERT_TRUE(t);
  s.finish_trial(t->id, TrialState::kComplete, {0.5, std::numeric_limits<double>::infinity()},
                 {{"software_metrics", "{\"loss\": 0.25}"}}, {{"fail_reason", "none \"x\""}});
  SqliteConnection db(path, 1000);
  EXPECT_EQ(rows(db, "SELECT direction FROM study_directions ORDER BY objective"),
            (std::vector<std::string>{"MAXIMIZE", "MINIMIZE"}));
  EXPECT_EQ(rows(db, "SELECT value_json FROM study_user_attributes WHERE key = 'search_config'"),
            std::vector<std::string>{"{\"n\": 3}"});
  const auto stored_space =
      rows(db, "SELECT value_json FROM study_system_attributes WHERE key = 'qsearch:search_space'");
  ASSERT_EQ(stored_space.size(), 1u);
  EXPECT_EQ(search_space_from_json(system_attr_from_json(stored_space[0])), space());
  EXPECT_EQ(rows(db, "SELECT number || ' ' || state FROM trials"),
            std::vector<std::string>{"0 COMPLETE"});
  const std::regex datetime(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})");
  for (const auto& d : rows(db,
                            "SELECT datetime_start FROM trials UNION ALL "
                            "SELECT datetime_complete FROM trials")) {
    EXPECT_TRUE(std::regex_match(d, datetime)) << d;
  }
  EXPECT_EQ(
      rows(db,
           "SELECT param_name || '=' || param_value || ' ' || distribution_json FROM trial_params "
           "ORDER BY param_id"),
      (std::vector<std::string>{
          "seq_blocks_2/config/weight_width=2.0 " +
              optuna_distribution_json(Distribution::int_range(0, 3)),
          "seq_blocks_2/config/name=1.0 " +
              optuna_distribution_json(Distribution::categorical({"integer", "NA"})),
          "lr=0.01 " + optuna_distribution_json(Distribution::float_range(1e-4, 0.1, true))}));
  EXPECT_EQ(rows(db,
                 "SELECT objective || ' ' || ifnull(value, 'NULL') || ' ' || value_type "
                 "FROM trial_values ORDER BY objective"),
            (std::vector<std::string>{"0 0.5 FINITE", "1 NULL INF_POS"}));
  EXPECT_EQ(rows(db, "SELECT key || '=' || value_json FROM trial_system_attributes ORDER BY key"),
            (std::vector<std::string>{R"(fail_reason="none \"x\"")", R"(worker="host:1")"}));
  EXPECT_EQ(rows(db, "SELECT value_json FROM trial_user_attributes"),
            std::vector<std::string>{"{\"loss\": 0.25}"});
  // And back, from a fresh connection.
  const auto back = SqliteStorage(path).get_trials(study);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].params, (std::vector<double>{2, 1, 0.01}));
  EXPECT_EQ(back[0].system_attrs.at("fail_reason"), "none \"x\"");
  EXPECT_EQ(back[0].datetime_start_ms, t->datetime_start_ms);
}

// What `optuna storage upgrade` does to a v3.0.0.d file (Optuna >= 3.2, revision v3.2.0.a):
// one index on trials.study_id and the new revision.
void upgrade_to_v3_2(const std::string& path) {
  SqliteConnection db(path, 1000);
  db.exec(
      "BEGIN; CREATE INDEX trials_study_id_key ON trials (study_id); "
      "UPDATE alembic_version SET version_num = 'v3.2.0.a'; COMMIT;");
}

TEST(OptunaSchema, AFileUpgradedToRevision320OpensAndResumes) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  int64_t study = 0;
  {
    SqliteStorage s(path);
    study = s.create_study("mase", {Direction::kMinimize}, space(), false);
    auto t = s.create_trial(study, propose({1, 0, 0.001}));
    s.finish_trial(t->id, TrialState::kComplete, {1.5}, {}, {});
    ASSERT_TRUE(s.create_trial(study, propose({2, 0, 0.001})));  // left RUNNING
  }
  upgrade_to_v3_2(path);
  SqliteStorage s(path);
  EXPECT_EQ(s.create_study("mase", {Direction::kMinimize}, space(), true), study);
  auto trials = s.get_trials(study);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].values, std::vector<double>{1.5});
  s.finish_trial(trials[1].id, TrialState::kComplete, {0.5}, {}, {});
  auto t2 = s.create_trial(study, propose({3, 1, 0.002}));
  ASSERT_TRUE(t2);
  EXPECT_EQ(t2->number, 2);
  SqliteConnection db(path, 1000);
  EXPECT_EQ(db.query_text("SELECT version_num FROM alembic_version"), "v3.2.0.a");
}

// A study as Optuna 3.1 writes it (ask / suggest_int / suggest_float / tell, NSGA-II's system
// attr), without qsearch's search-space attribute.
void add_optuna_made_study(const std::string& path) {
  SqliteConnection db(path, 1000);
  const std::string int_json = optuna_distribution_json(Distribution::int_range(0, 3));
  const std::string float_json = optuna_distribution_json(Distribution::float_range(0.5, 2.0));
  db.exec(R"sql(
BEGIN;
INSERT INTO studies (study_id, study_name) VALUES (7, 'by-optuna');
INSERT INTO study_directions (direction, study_id, objective) VALUES ('MINIMIZE', 7, 0);
INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) VALUES
  (70, 0, 7, 'COMPLETE', '2026-12-06 11:23:21.655534', '2026-12-06 11:23:21.711454'),
  (71, 1, 7, 'FAIL', '2026-12-06 11:23:22.000001', '2026-12-06 11:23:22.5'),
  (72, 2, 7, 'WAITING', '2026-12-06 11:23:23', NULL);
INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES
  (70, 'x', 2.0, ')sql" +
          int_json + R"sql('), (70, 'y', 1.25, ')sql" + float_json + R"sql('),
  (71, 'x', 0.0, ')sql" +
          int_json + R"sql('), (71, 'y', 0.5, ')sql" + float_json + R"sql(');
INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (70, 0, 0.125, 'FINITE');
INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES (70, 'nsga2:generation', '0');
INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (70, 'note', '{"a": [1, 2]}');
COMMIT;
)sql");
}

TEST(OptunaSchema, AStudyOptunaMadeIsReadButNotResumed) {
  testing::TempDir dir;
  const std::string path = dir.file("study.db");
  SqliteStorage{path};
  add_optuna_made_study(path);
  SqliteStorage s(path);
  const int64_t id = *s.find_study("by-optuna");
  const search::StudyInfo info = s.get_study(id);
  EXPECT_EQ(info.directions, std::vector<Direction>{Direction::kMinimize});
  ASSERT_EQ(info.space.size(), 2u);  // from the trials' params, in order of appearance
  EXPECT_EQ(info.space[0].name, "x");
  EXPECT_EQ(info.space[0].dist, Distribution::int_range(0, 3));
  EXPECT_EQ(info.space[1].dist, Distribution::float_range(0.5, 2.0));
  const auto trials = s.get_trials(id);
  ASSERT_EQ(trials.size(), 3u);
  EXPECT_EQ(trials[0].params, (std::vector<double>{2.0, 1.25}));
  EXPECT_EQ(trials[0].values, std::vector<double>{0.125});
  EXPECT_EQ(trials[0].system_attrs.at("nsga2:generation"), "0");
  EXPECT_EQ(trials[0].user_attrs.at("note"), "{\"a\": [1, 2]}");
  EXPECT_EQ(trials[0].datetime_complete_ms - trials[0].datetime_start_ms, 711 - 655);
  EXPECT_EQ(trials[1].state, TrialState::kFail);
  EXPECT_EQ(trials[2].state, TrialState::kRunning);  // WAITING: not finished
  try {
    s.create_study("by-optuna", {Direction::kMinimize}, info.space, true);
    ADD_FAILURE() << "resumed a study qsearch did not create";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("by-optuna"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("not created by qsearch"), std::string::npos) << what;
  }
  // A WAITING trial is not a stale RUNNING one.
  EXPECT_TRUE(s.fail_stale_trials(id, 0).empty());
}

}  // namespace
}  // namespace qsearch::storage
