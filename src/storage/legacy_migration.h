// qsearch's own SQLite schema before Optuna's (schema versions 1 to 3, PRAGMA application_id
// 'qsch'; a search space stored once per study in study_params, epoch-millisecond times, plain
// text system attributes), and its migration to Optuna's schema (storage/schema.h).
//
// Opening such a file migrates it in place: first a copy of it as it was, '<file>.qsearch-v3.bak'
// (VACUUM INTO; an existing backup is kept), then one write transaction that renames the old
// tables, creates Optuna's, copies every study and trial across (ids, numbers, states, values,
// attributes, heartbeats kept; times written as Optuna's datetimes; the space into the study
// system attribute qsearch:search_space and each trial's params with their distributions) and
// drops the old tables. A process that opens the file meanwhile waits for that transaction and
// then finds the new schema. A COMPLETE trial with a NaN value (which Optuna's schema cannot
// hold; qsearch's Study never wrote one) becomes FAIL with fail_reason "objective returned NaN".
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace qsearch::storage {

class SqliteConnection;

// 'qsch' in ASCII.
inline constexpr int32_t kLegacyApplicationId = 0x71736368;

// Whether a database with this application_id and these tables is an old qsearch file.
bool is_legacy_qsearch_db(int64_t application_id, const std::set<std::string>& tables);

// The backup, then the migration (see above); nothing when another process has migrated the file
// already. Throws Error naming the file when the backup cannot be written or the file holds
// something the old schema could not (a newer or an invalid schema version).
void migrate_legacy_qsearch_db(SqliteConnection& db);

}  // namespace qsearch::storage
