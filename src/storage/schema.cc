#include "storage/schema.h"

#include "core/error.h"

namespace qsearch::storage {

namespace {

const char* const kSqliteSchema = R"sql(
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
-- Only RUNNING trials: what a refresh asks for ("which trials were running and are not now").
CREATE INDEX IF NOT EXISTS ix_trials_running ON trials (study_id) WHERE state = 'RUNNING';
-- Per-trial tables are clustered on (trial_id, ...) WITHOUT ROWID: one B-tree page to touch
-- per insert instead of a table page plus an index page.
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
-- The last sign of life of each trial's worker (Optuna's trial_heartbeats): written by the first
-- beat after the start (a trial without a row last beat when it started); rows of finished
-- trials are kept but no longer read.
CREATE TABLE IF NOT EXISTS trial_heartbeats (
  trial_id INTEGER PRIMARY KEY REFERENCES trials(trial_id),
  heartbeat INTEGER NOT NULL
);
)sql";

}  // namespace

const char* schema_sql(SqlDialect dialect) {
  // The PostgreSQL variant arrives with Optuna's schema (issue 10).
  if (dialect != SqlDialect::kSqlite) fail("the study schema has no PostgreSQL variant yet");
  return kSqliteSchema;
}

}  // namespace qsearch::storage
