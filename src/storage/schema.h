// The study database schema: the one place its text lives (docs/outputs.md explains it).
//
// It is Optuna's RDB schema (optuna/storages/_rdb/models.py) at revision v3.0.0.d (Optuna 3.0 and
// 3.1; version_info.schema_version 12), table for table and column for column, so that
// optuna.load_study(storage="sqlite:///study.db") reads a qsearch study without conversion:
//
//   studies(study_id, study_name UNIQUE)
//   study_directions(study_direction_id, direction, study_id, objective)
//   study_user_attributes / study_system_attributes(id, study_id, key, value_json)
//   trials(trial_id, number, study_id, state, datetime_start, datetime_complete)
//   trial_params(param_id, trial_id, param_name, param_value, distribution_json)
//   trial_values(trial_value_id, trial_id, objective, value, value_type)
//   trial_intermediate_values(id, trial_id, step, intermediate_value, intermediate_value_type)
//   trial_user_attributes / trial_system_attributes(id, trial_id, key, value_json)
//   trial_heartbeats(trial_heartbeat_id, trial_id UNIQUE, heartbeat)
//   version_info(version_info_id = 1, schema_version, library_version)
//   alembic_version(version_num)
//
// Stored as SQLAlchemy stores Optuna's models: enums by member name (direction 'MINIMIZE' |
// 'MAXIMIZE'; state 'RUNNING' | 'COMPLETE' | 'PRUNED' | 'FAIL' | 'WAITING'; value_type
// 'FINITE' | 'INF_POS' | 'INF_NEG', value NULL unless FINITE), in SQLite as VARCHAR text and in
// PostgreSQL as native ENUM types (studydirection, trialstate, trialvaluetype,
// trialintermediatevaluetype); datetimes in SQLite as text 'YYYY-MM-DD HH:MM:SS.ffffff', in
// PostgreSQL as TIMESTAMP WITHOUT TIME ZONE; floats as REAL / DOUBLE PRECISION.
//
// qsearch adds only indexes, which Optuna neither needs nor minds (an index of each study's
// trials by number, and a partial index of RUNNING trials: a refresh reads only what changed),
// and system attributes (storage/rdb_storage.h). Optuna >= 3.2's `optuna storage upgrade`
// (revision v3.2.0.a) adds the index trials_study_id_key and nothing else; qsearch reads and
// writes both revisions.
#pragma once

#include <cstdint>

#include "storage/sql_connection.h"

namespace qsearch::storage {

// version_info.schema_version of Optuna's revisions v3.0.0.d and v3.2.0.a.
inline constexpr int64_t kOptunaSchemaVersion = 12;
// What qsearch writes into a new database: Optuna 3.1's revision and version.
inline constexpr const char* kOptunaRevision = "v3.0.0.d";
inline constexpr const char* kOptunaLibraryVersion = "3.1.0";
// The alembic revisions qsearch reads and writes (their tables are the same).
inline constexpr const char* kKnownOptunaRevisions[] = {"v3.0.0.d", "v3.2.0.a"};

// Optuna's tables, types and indexes for a database that has none yet (not idempotent: run once,
// inside the transaction that also writes version_info and alembic_version).
const char* optuna_schema_sql(SqlDialect dialect);
// qsearch's own indexes (CREATE INDEX IF NOT EXISTS): safe to run on every open.
const char* qsearch_indexes_sql(SqlDialect dialect);
// A query returning one row whose first column is 1 when the database has Optuna's tables
// (version_info), else 0.
const char* has_optuna_schema_sql(SqlDialect dialect);

}  // namespace qsearch::storage
