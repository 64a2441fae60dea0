// A study.db as qsearch wrote it before Optuna's schema (schema versions 1 to 3, application_id
// 'qsch'; storage/legacy_migration.h), for the migration tests. The DDL is the old schema's text.
//
//   write_legacy_db(path, 3);  // version 1: no trial_heartbeats, no 'PRUNED'; 2: no 'PRUNED'
//
// Contents: study "legacy" (directions MAXIMIZE, MINIMIZE; space a = int[0, 3], b = categorical
// {x, y}; user attr search_config = {"n": 5}) with trials
//   0 COMPLETE a=1 b=1 values (0.75, 2) user {software_metrics: {"loss": 0.5}}, sys {worker: w}
//   1 FAIL     a=2 b=0 sys {fail_reason: "bad \"config\"\nline 2"}
//   2 PRUNED   a=3 b=0 (version 3 only; COMPLETE with values (0.5, inf) before)
//   3 RUNNING  a=0 b=1 started at epoch ms 1700000000123, heartbeat 1700000005000 (version >= 2)
//   4 COMPLETE a=0 b=0 values (NaN, 1)
// and a second study "other" with one COMPLETE trial (value 1.5, minimize; space c = float
// [0.5, 2.0] log).
#pragma once

#include <string>

#include "storage/sqlite_db.h"

namespace qsearch::storage::testing {

inline constexpr int64_t kLegacyStart = 1700000000123;

inline void write_legacy_db(const std::string& path, int version) {
  SqliteConnection db(path, 1000);
  std::string ddl = R"sql(
CREATE TABLE IF NOT EXISTS version_info (
  version_info_id INTEGER PRIMARY KEY CHECK (version_info_id = 1),
  schema_version INTEGER NOT NULL,
  library_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
  study_id INTEGER PRIMARY KEY,
  study_name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS study_directions (
  study_direction_id INTEGER PRIMARY KEY,
  study_id INTEGER NOT NULL REFERENCES studies(study_id),
  objective INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('MINIMIZE', 'MAXIMIZE')),
  UNIQUE (study_id, objective)
);
CREATE TABLE IF NOT EXISTS study_params (
  study_param_id INTEGER PRIMARY KEY,
  study_id INTEGER NOT NULL REFERENCES studies(study_id),
  position INTEGER NOT NULL,
  param_name TEXT NOT NULL,
  distribution_json TEXT NOT NULL,
  UNIQUE (study_id, position)
);
CREATE TABLE IF NOT EXISTS study_user_attributes (
  study_user_attribute_id INTEGER PRIMARY KEY,
  study_id INTEGER NOT NULL REFERENCES studies(study_id),
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  UNIQUE (study_id, key)
);
CREATE TABLE IF NOT EXISTS trials (
  trial_id INTEGER PRIMARY KEY,
  number INTEGER NOT NULL,
  study_id INTEGER NOT NULL REFERENCES studies(study_id),
  state TEXT NOT NULL CHECK (state IN ('RUNNING', 'COMPLETE', 'FAIL', 'PRUNED')),
  datetime_start INTEGER NOT NULL,
  datetime_complete INTEGER,
  UNIQUE (study_id, number)
);
CREATE INDEX IF NOT EXISTS ix_trials_running ON trials (study_id) WHERE state = 'RUNNING';
CREATE TABLE IF NOT EXISTS trial_params (
  trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
  position INTEGER NOT NULL,
  param_value REAL NOT NULL,
  PRIMARY KEY (trial_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trial_values (
  trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
  objective INTEGER NOT NULL,
  value REAL,
  value_type TEXT NOT NULL CHECK (value_type IN ('FINITE', 'INF_POS', 'INF_NEG', 'NAN')),
  PRIMARY KEY (trial_id, objective)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trial_user_attributes (
  trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  PRIMARY KEY (trial_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trial_system_attributes (
  trial_id INTEGER NOT NULL REFERENCES trials(trial_id),
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (trial_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trial_heartbeats (
  trial_id INTEGER PRIMARY KEY REFERENCES trials(trial_id),
  heartbeat INTEGER NOT NULL
);
)sql";
  if (version < 3) {
    const std::string with = "('RUNNING', 'COMPLETE', 'FAIL', 'PRUNED')";
    ddl.replace(ddl.find(with), with.size(), "('RUNNING', 'COMPLETE', 'FAIL')");
  }
  if (version < 2) {
    ddl = ddl.substr(0, ddl.find("CREATE TABLE IF NOT EXISTS trial_heartbeats"));
  }
  db.exec("PRAGMA journal_mode = WAL; BEGIN;");
  db.exec(ddl);
  db.exec("PRAGMA application_id = 1903387496");  // 'qsch'
  db.exec("INSERT INTO version_info VALUES (1, " + std::to_string(version) + ", '0.9.0')");
  db.exec(R"sql(
INSERT INTO studies VALUES (1, 'legacy'), (2, 'other');
INSERT INTO study_directions VALUES (1, 1, 0, 'MAXIMIZE'), (2, 1, 1, 'MINIMIZE'),
  (3, 2, 0, 'MINIMIZE');
INSERT INTO study_params VALUES
  (1, 1, 0, 'a', '{"kind":"int","low":0,"high":3,"step":1,"log":false}'),
  (2, 1, 1, 'b', '{"kind":"categorical","choices":["x","y"]}'),
  (3, 2, 0, 'c', '{"kind":"float","low":0.5,"high":2.0,"step":0.0,"log":true}');
INSERT INTO study_user_attributes VALUES (1, 1, 'search_config', '{"n": 5}');
INSERT INTO trials VALUES
  (1, 0, 1, 'COMPLETE', 1700000000000, 1700000001000),
  (2, 1, 1, 'FAIL', 1700000001000, 1700000002000),
  (3, 2, 1, 'COMPLETE', 1700000002000, 1700000002500),
  (4, 0, 2, 'COMPLETE', 1700000002000, 1700000003000),
  (5, 3, 1, 'RUNNING', 1700000000123, NULL),
  (6, 4, 1, 'COMPLETE', 1700000004000, 1700000004001);
INSERT INTO trial_params VALUES (1, 0, 1), (1, 1, 1), (2, 0, 2), (2, 1, 0), (3, 0, 3), (3, 1, 0),
  (4, 0, 1.25), (5, 0, 0), (5, 1, 1), (6, 0, 0), (6, 1, 0);
INSERT INTO trial_values VALUES (1, 0, 0.75, 'FINITE'), (1, 1, 2, 'FINITE'),
  (3, 0, 0.5, 'FINITE'), (3, 1, NULL, 'INF_POS'), (4, 0, 1.5, 'FINITE'),
  (6, 0, NULL, 'NAN'), (6, 1, 1, 'FINITE');
INSERT INTO trial_user_attributes VALUES (1, 'software_metrics', '{"loss": 0.5}');
INSERT INTO trial_system_attributes VALUES (1, 'worker', 'w'),
  (2, 'fail_reason', 'bad "config"
line 2');
)sql");
  if (version >= 3) {
    db.exec(
        "UPDATE trials SET state = 'PRUNED' WHERE trial_id = 3; "
        "DELETE FROM trial_values WHERE trial_id = 3;");
  }
  if (version >= 2) db.exec("INSERT INTO trial_heartbeats VALUES (5, 1700000005000)");
  db.exec("COMMIT");
}

}  // namespace qsearch::storage::testing
