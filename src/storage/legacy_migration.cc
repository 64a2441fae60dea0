#include "storage/legacy_migration.h"

#include <filesystem>
#include <map>
#include <vector>

#include "core/error.h"
#include "search/distribution.h"
#include "storage/optuna_format.h"
#include "storage/rdb_storage.h"
#include "storage/schema.h"
#include "storage/sqlite_db.h"

namespace qsearch::storage {
namespace {

constexpr int64_t kLastLegacyVersion = 3;
constexpr const char* kOldTables[] = {"version_info",          "studies",
                                      "study_directions",      "study_params",
                                      "study_user_attributes", "trials",
                                      "trial_params",          "trial_values",
                                      "trial_user_attributes", "trial_system_attributes",
                                      "trial_heartbeats"};

std::string sql_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::set<std::string> table_names(SqliteConnection& db) {
  std::set<std::string> out;
  SqlStatement& s = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'");
  while (s.step()) out.insert(s.column_text(0));
  s.reset();
  return out;
}

void backup(SqliteConnection& db) {
  const std::string path = db.path() + ".qsearch-v3.bak";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return;
  try {
    db.exec("VACUUM INTO " + sql_quote(path));
  } catch (Error& e) {
    if (std::filesystem::exists(path, ec)) return;  // another process made it just now
    e.add_context(fmt::format(
        "while backing up old qsearch study database '{}' to '{}' before migrating it to "
        "Optuna's schema (free some space or make the directory writable)",
        db.path(), path));
    throw;
  }
}

std::string old(const char* table) { return std::string("qsearch_v3_") + table; }

}  // namespace

bool is_legacy_qsearch_db(int64_t application_id, const std::set<std::string>& tables) {
  return application_id == kLegacyApplicationId && tables.count("study_params") > 0;
}

void migrate_legacy_qsearch_db(SqliteConnection& db) {
  {
    // Read as an integer by SQLite itself: a damaged file's text there reads as 0 (refused).
    SqlStatement& get = db.prepare("SELECT schema_version FROM version_info");
    const int64_t version = get.step() ? get.column_int64(0) : 0;
    get.reset();
    if (version < 1 || version > kLastLegacyVersion) {
      fail(
          "'{}' is an old qsearch study database with schema version {}, which no qsearch wrote "
          "(1 to {}): restore it from a backup, or use another file for the study",
          db.path(), version, kLastLegacyVersion);
    }
  }
  backup(db);
  SqlTransaction txn(db, SqlConnection::TxnKind::kWrite);
  const int64_t app_id = std::stoll(db.query_text("PRAGMA application_id").value_or("0"));
  std::set<std::string> tables = table_names(db);
  if (!is_legacy_qsearch_db(app_id, tables)) return;  // migrated by another process meanwhile
  for (const char* t : kOldTables) {
    if (tables.count(t)) db.exec(fmt::format("ALTER TABLE {} RENAME TO {}", t, old(t)));
  }
  db.exec(optuna_schema_sql(SqlDialect::kSqlite));
  db.prepare(
        "INSERT INTO version_info (version_info_id, schema_version, library_version) "
        "VALUES (1, $1, $2)")
      .bind(1, kOptunaSchemaVersion)
      .bind(2, kOptunaLibraryVersion)
      .run();
  db.prepare("INSERT INTO alembic_version (version_num) VALUES ($1)")
      .bind(1, kOptunaRevision)
      .run();

  db.exec(fmt::format(
      "INSERT INTO studies (study_id, study_name) SELECT study_id, study_name FROM {0}; "
      "INSERT INTO study_directions (study_direction_id, direction, study_id, objective) "
      "SELECT study_direction_id, direction, study_id, objective FROM {1}; "
      "INSERT INTO study_user_attributes (study_id, key, value_json) "
      "SELECT study_id, key, value_json FROM {2}",
      old("studies"), old("study_directions"), old("study_user_attributes")));

  // The space of each study, and each param's distribution in Optuna's form.
  std::map<int64_t, search::SearchSpace> spaces;
  std::vector<std::pair<int64_t, std::string>> optuna_json;  // study_param_id -> Optuna's
  {
    SqlStatement& s = db.prepare(
        fmt::format("SELECT study_param_id, study_id, param_name, distribution_json FROM {} "
                    "ORDER BY study_id, position",
                    old("study_params")));
    try {
      while (s.step()) {
        const search::Distribution d = search::Distribution::from_json(s.column_text(3));
        spaces[s.column_int64(1)].push_back({s.column_text(2), d});
        optuna_json.emplace_back(s.column_int64(0), optuna_distribution_json(d));
      }
    } catch (Error& e) {
      s.reset();
      e.add_context(fmt::format("migrating old qsearch study database '{}'", db.path()));
      throw;
    }
    s.reset();
  }
  SqlStatement& space_attr = db.prepare(
      "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES ($1, $2, $3)");
  SqlStatement& id_of = db.prepare("SELECT study_id FROM studies");
  std::vector<int64_t> studies;
  while (id_of.step()) studies.push_back(id_of.column_int64(0));
  id_of.reset();
  for (int64_t id : studies) {
    space_attr.bind(1, id)
        .bind(2, kSearchSpaceAttr)
        .bind(3, system_attr_json(search_space_json(spaces[id])))
        .run();
  }
  SqlStatement& set_json = db.prepare(fmt::format(
      "UPDATE {} SET distribution_json = $2 WHERE study_param_id = $1", old("study_params")));
  for (const auto& [id, json] : optuna_json) set_json.bind(1, id).bind(2, json).run();

  // Trials: epoch milliseconds become Optuna's local datetimes.
  {
    SqlStatement& read = db.prepare(fmt::format(
        "SELECT trial_id, number, study_id, state, datetime_start, datetime_complete FROM {} "
        "ORDER BY trial_id",
        old("trials")));
    SqlStatement& write = db.prepare(
        "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, "
        "datetime_complete) VALUES ($1, $2, $3, $4, $5, $6)");
    while (read.step()) {
      write.bind(1, read.column_int64(0))
          .bind(2, read.column_int64(1))
          .bind(3, read.column_int64(2))
          .bind(4, read.column_text(3))
          .bind(5, format_datetime(read.column_int64(4), TimeZone::kLocal));
      if (read.column_is_null(5)) {
        write.bind_null(6);
      } else {
        write.bind(6, format_datetime(read.column_int64(5), TimeZone::kLocal));
      }
      write.run();
    }
    read.reset();
  }
  db.exec(fmt::format(
      "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
      "SELECT p.trial_id, sp.param_name, p.param_value, sp.distribution_json FROM {0} p "
      "JOIN {1} t ON t.trial_id = p.trial_id "
      "JOIN {2} sp ON sp.study_id = t.study_id AND sp.position = p.position "
      "ORDER BY p.trial_id, p.position; "
      "INSERT INTO trial_values (trial_id, objective, value, value_type) "
      "SELECT trial_id, objective, value, value_type FROM {3} WHERE trial_id NOT IN "
      "(SELECT trial_id FROM {3} WHERE value_type = 'NAN') ORDER BY trial_id, objective; "
      "INSERT INTO trial_user_attributes (trial_id, key, value_json) "
      "SELECT trial_id, key, value_json FROM {4} ORDER BY trial_id; "
      "INSERT INTO trial_system_attributes (trial_id, key, value_json) "
      "SELECT trial_id, key, json_quote(value) FROM {5} ORDER BY trial_id; "
      "UPDATE trials SET state = 'FAIL' WHERE trial_id IN "
      "(SELECT trial_id FROM {3} WHERE value_type = 'NAN'); "
      "INSERT INTO trial_system_attributes (trial_id, key, value_json) "
      "SELECT DISTINCT trial_id, 'fail_reason', '\"objective returned NaN\"' FROM {3} "
      "WHERE value_type = 'NAN' "
      "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json",
      old("trial_params"), old("trials"), old("study_params"), old("trial_values"),
      old("trial_user_attributes"), old("trial_system_attributes")));
  if (tables.count("trial_heartbeats")) {
    SqlStatement& read =
        db.prepare(fmt::format("SELECT trial_id, heartbeat FROM {}", old("trial_heartbeats")));
    SqlStatement& write =
        db.prepare("INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES ($1, $2)");
    while (read.step()) {
      write.bind(1, read.column_int64(0))
          .bind(2, format_datetime(read.column_int64(1), TimeZone::kUtc))
          .run();
    }
    read.reset();
  }
  for (const char* t : kOldTables) {
    if (tables.count(t)) db.exec(fmt::format("DROP TABLE {}", old(t)));
  }
  db.exec("PRAGMA application_id = 0");
  txn.commit();
}

}  // namespace qsearch::storage
