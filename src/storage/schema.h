// The SQLite study database schema: the one place its text lives (docs/outputs.md explains it).
//
// In the spirit of Optuna's RDB storage (optuna/storages/_rdb/models.py), reduced to a
// fixed-space study, with the search space stored once per study instead of per trial param:
//
//   version_info(version_info_id = 1, schema_version, library_version)
//   studies(study_id, study_name UNIQUE)
//   study_directions(study_id, objective, direction 'MINIMIZE'|'MAXIMIZE')
//   study_params(study_id, position, param_name, distribution_json)   -- the search space
//   study_user_attributes(study_id, key, value_json)
//   trials(trial_id, number, study_id, state 'RUNNING'|'COMPLETE'|'FAIL'|'PRUNED',
//          datetime_start, datetime_complete)                         -- epoch milliseconds
//   trial_params(trial_id, position, param_value)                     -- internal repr
//   trial_values(trial_id, objective, value, value_type)              -- see below
//   trial_user_attributes(trial_id, key, value_json)
//   trial_system_attributes(trial_id, key, value)
//   trial_heartbeats(trial_id, heartbeat)                            -- epoch ms, since version 2
//
// SQLite turns NaN into NULL, so a value is stored as (value, value_type) with value_type
// 'FINITE' (value holds it), 'INF_POS', 'INF_NEG' or 'NAN' (value is NULL), as Optuna does.
// The file also carries PRAGMA application_id = kApplicationId so that a foreign SQLite file
// (an Optuna study.db, say) is refused instead of half-read.
#pragma once

#include <cstdint>

#include "storage/sql_connection.h"

namespace qsearch::storage {

// Bump when the layout changes, and teach SqliteStorage to migrate older files.
// 1: the first layout. 2: trial_heartbeats (opening a version-1 file adds the table; its
//    RUNNING trials count as last beating when they started). 3: state 'PRUNED' (racing);
//    opening an older file rebuilds its trials table with the wider CHECK, rows unchanged.
inline constexpr int64_t kSchemaVersion = 3;
// 'qsch' in ASCII.
inline constexpr int32_t kApplicationId = 0x71736368;

// CREATE TABLE/INDEX IF NOT EXISTS statements, safe to run on every open, in `dialect`'s SQL.
const char* schema_sql(SqlDialect dialect);

}  // namespace qsearch::storage
