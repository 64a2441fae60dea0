#include "storage/rdb_storage.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "core/check.h"
#include "core/error.h"
#include "storage/schema.h"
#include "storage/sqlite_db.h"

namespace qsearch::storage {

using search::Direction;
using search::FrozenTrial;
using search::SearchSpace;
using search::StudyInfo;
using search::TrialState;

namespace {

// The on-disk spellings belong to the schema, not to search::to_string, so that renaming an
// enumerator or its display text never changes what existing files mean.
const char* state_text(TrialState s) {
  switch (s) {
    case TrialState::kRunning:
      return "RUNNING";
    case TrialState::kComplete:
      return "COMPLETE";
    case TrialState::kFail:
      return "FAIL";
    case TrialState::kPruned:
      return "PRUNED";
  }
  QSEARCH_CHECK(false);
  return "";
}

const char* direction_text(Direction d) {
  return d == Direction::kMinimize ? "MINIMIZE" : "MAXIMIZE";
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct RdbStorage::StudyCache {
  int64_t study_id = -1;
  size_t n_objectives = 0;
  size_t n_params = 0;
  std::vector<FrozenTrial> trials;  // index == number
  std::vector<int> running;         // numbers of cached trials that were RUNNING when read
};

RdbStorage::RdbStorage(std::unique_ptr<SqlConnection> conn)
    : path_(conn->display_name()), db_(std::move(conn)) {
  open_schema();
}

RdbStorage::~RdbStorage() = default;

void RdbStorage::open_schema() {
  if (db_->dialect() != SqlDialect::kSqlite) {
    open_schema_tables();
    return;
  }
  // SQLite: a file of another program is refused before anything is written. Both reads come
  // from one snapshot: another process creating the schema in between would otherwise look like
  // a foreign database (tables but no application id).
  int64_t app_id = 0, n_tables = 0;
  {
    SqlTransaction snapshot(*db_, SqlConnection::TxnKind::kRead);
    app_id = std::stoll(db_->query_text("PRAGMA application_id").value_or("0"));
    n_tables = std::stoll(
        db_->query_text("SELECT count(*) FROM sqlite_master WHERE type = 'table'").value_or("0"));
    snapshot.commit();
  }
  if (n_tables > 0 && app_id != kApplicationId) {
    fail(
        "'{}' is an SQLite database but not a qsearch study database (application_id {}, {} "
        "tables; an Optuna or other program's file?). Use another file for the study",
        path_, app_id, n_tables);
  }
  // WAL and synchronous = NORMAL, only once the file is known to be ours.
  auto* sqlite = dynamic_cast<SqliteConnection*>(db_.get());
  QSEARCH_CHECK(sqlite != nullptr);
  sqlite->open_for_study();
  // Foreign keys stay off until the schema is current: rebuilding the trials table of an older
  // file (below) drops the old table, which they would refuse (SQLite's ALTER TABLE recipe).
  db_->exec("PRAGMA foreign_keys = OFF");
  open_schema_tables();
  db_->exec("PRAGMA foreign_keys = ON");
}

void RdbStorage::open_schema_tables() {
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  db_->exec(schema_sql(db_->dialect()));
  if (db_->dialect() == SqlDialect::kSqlite) {
    db_->exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
  }
  SqlStatement& get =
      db_->prepare("SELECT schema_version FROM version_info WHERE version_info_id = 1");
  std::optional<int64_t> version;
  if (get.step()) version = get.column_int64(0);
  get.reset();
  if (!version) {
    db_->prepare(
           "INSERT INTO version_info (version_info_id, schema_version, library_version) "
           "VALUES (1, $1, $2)")
        .bind(1, kSchemaVersion)
        .bind(2, std::string_view(QSEARCH_VERSION))
        .run();
  } else if (*version > kSchemaVersion) {
    fail(
        "study database '{}' has schema version {}, newer than this qsearch understands ({}): "
        "upgrade qsearch, or use another file for this study",
        path_, *version, kSchemaVersion);
  } else if (*version < 1) {
    fail("study database '{}' has an invalid schema version {}", path_, *version);
  } else if (*version < kSchemaVersion) {
    // Versions 1 and 2 exist only as SQLite files.
    QSEARCH_CHECK(db_->dialect() == SqlDialect::kSqlite);
    migrate_sqlite_trials_table();
    db_->prepare("UPDATE version_info SET schema_version = $1 WHERE version_info_id = 1")
        .bind(1, kSchemaVersion)
        .run();
  }
  txn.commit();
}

// Versions 1 and 2 lack only tables that the schema text has just created, and the state
// 'PRUNED' in the trials table's CHECK (version 3): rebuild that table with the new CHECK,
// inside the caller's transaction (a process opening the file meanwhile waits, then sees
// version 3).
void RdbStorage::migrate_sqlite_trials_table() {
  const std::string old_sql =
      db_->query_text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'trials'")
          .value_or("");
  if (old_sql.find("'PRUNED'") != std::string::npos) return;
  // The new table from the schema's own text (its one place), under a temporary name.
  const std::string schema = schema_sql(SqlDialect::kSqlite);
  const std::string head = "CREATE TABLE IF NOT EXISTS trials (";
  const size_t begin = schema.find(head), end = schema.find(");", begin);
  QSEARCH_CHECK(begin != std::string::npos && end != std::string::npos);
  db_->exec("CREATE TABLE trials_v3 (" +
            schema.substr(begin + head.size(), end + 2 - begin - head.size()));
  db_->exec(
      "INSERT INTO trials_v3 (trial_id, number, study_id, state, datetime_start, "
      "datetime_complete) SELECT trial_id, number, study_id, state, datetime_start, "
      "datetime_complete FROM trials; DROP TABLE trials; ALTER TABLE trials_v3 RENAME TO "
      "trials;");
  db_->exec(schema);  // the partial index, dropped with the old table
}

int64_t RdbStorage::rows_read() const {
  std::lock_guard lock(mu_);
  return db_->rows_read();
}

std::string RdbStorage::study_name_of(int64_t study_id) {
  SqlStatement& s = db_->prepare("SELECT study_name FROM studies WHERE study_id = $1");
  s.bind(1, study_id);
  if (!s.step()) {
    s.reset();
    fail("no study with id {} in '{}'", study_id, path_);
  }
  std::string name = s.column_text(0);
  s.reset();
  return name;
}

int64_t RdbStorage::create_study(const std::string& name, const std::vector<Direction>& directions,
                                 const SearchSpace& space, bool load_if_exists,
                                 const std::map<std::string, std::string>& user_attrs) {
  if (directions.empty()) fail("study '{}' needs at least one objective direction", name);
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  SqlStatement& find = db_->prepare("SELECT study_id FROM studies WHERE study_name = $1");
  find.bind(1, name);
  std::optional<int64_t> existing;
  if (find.step()) existing = find.column_int64(0);
  find.reset();

  if (existing) {
    if (!load_if_exists) {
      fail(
          "study '{}' already exists in '{}': load it to resume (load_if_exists) or choose "
          "another study name",
          name, path_);
    }
    try {
      search::check_same_study(read_study(*existing), directions, space);
    } catch (Error& e) {
      e.add_context(fmt::format("while loading study '{}' from '{}' to resume it", name, path_));
      throw;
    }
    txn.commit();
    return *existing;
  }

  std::set<std::string> names;
  for (const auto& p : space) {
    if (!names.insert(p.name).second) {
      fail("study '{}': search parameter '{}' appears twice", name, p.name);
    }
  }
  SqlStatement& insert =
      db_->prepare("INSERT INTO studies (study_name) VALUES ($1) RETURNING study_id");
  insert.bind(1, name);
  QSEARCH_CHECK(insert.step());
  const int64_t id = insert.column_int64(0);
  insert.reset();
  SqlStatement& d = db_->prepare(
      "INSERT INTO study_directions (study_id, objective, direction) VALUES ($1, $2, $3)");
  for (size_t i = 0; i < directions.size(); ++i) {
    d.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, direction_text(directions[i])).run();
  }
  SqlStatement& p = db_->prepare(
      "INSERT INTO study_params (study_id, position, param_name, distribution_json) "
      "VALUES ($1, $2, $3, $4)");
  for (size_t i = 0; i < space.size(); ++i) {
    p.bind(1, id).bind(2, static_cast<int64_t>(i)).bind(3, space[i].name);
    p.bind(4, space[i].dist.to_json()).run();
  }
  SqlStatement& a = db_->prepare(
      "INSERT INTO study_user_attributes (study_id, key, value_json) VALUES ($1, $2, $3)");
  for (const auto& [key, value] : user_attrs) a.bind(1, id).bind(2, key).bind(3, value).run();
  txn.commit();
  return id;
}

StudyInfo RdbStorage::get_study(int64_t study_id) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kRead);
  StudyInfo info = read_study(study_id);
  txn.commit();
  return info;
}

StudyInfo RdbStorage::read_study(int64_t study_id) {
  StudyInfo info;
  info.id = study_id;
  info.name = study_name_of(study_id);
  SqlStatement& d =
      db_->prepare("SELECT direction FROM study_directions WHERE study_id = $1 ORDER BY objective");
  d.bind(1, study_id);
  while (d.step()) {
    info.directions.push_back(d.column_text(0) == "MINIMIZE" ? Direction::kMinimize
                                                             : Direction::kMaximize);
  }
  d.reset();
  SqlStatement& p = db_->prepare(
      "SELECT param_name, distribution_json FROM study_params WHERE study_id = $1 "
      "ORDER BY position");
  p.bind(1, study_id);
  while (p.step()) {
    info.space.push_back({p.column_text(0), search::Distribution::from_json(p.column_text(1))});
  }
  p.reset();
  SqlStatement& a =
      db_->prepare("SELECT key, value_json FROM study_user_attributes WHERE study_id = $1");
  a.bind(1, study_id);
  while (a.step()) info.user_attrs[a.column_text(0)] = a.column_text(1);
  a.reset();
  return info;
}

std::optional<int64_t> RdbStorage::find_study(const std::string& name) {
  std::lock_guard lock(mu_);
  SqlStatement& s = db_->prepare("SELECT study_id FROM studies WHERE study_name = $1");
  s.bind(1, name);
  std::optional<int64_t> out;
  if (s.step()) out = s.column_int64(0);
  s.reset();
  return out;
}

std::vector<std::string> RdbStorage::study_names() {
  std::lock_guard lock(mu_);
  SqlStatement& s = db_->prepare("SELECT study_name FROM studies ORDER BY study_id");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_text(0));
  s.reset();
  return out;
}

void RdbStorage::set_study_user_attr(int64_t study_id, const std::string& key,
                                     const std::string& json_value) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  study_name_of(study_id);  // throws for an unknown study
  db_->prepare(
         "INSERT INTO study_user_attributes (study_id, key, value_json) VALUES ($1, $2, $3) "
         "ON CONFLICT (study_id, key) DO UPDATE SET value_json = excluded.value_json")
      .bind(1, study_id)
      .bind(2, key)
      .bind(3, json_value)
      .run();
  txn.commit();
}

RdbStorage::StudyCache& RdbStorage::cache_for(int64_t study_id) {
  auto it = caches_.find(study_id);
  if (it != caches_.end()) return *it->second;
  study_name_of(study_id);  // throws for an unknown study
  auto cache = std::make_unique<StudyCache>();
  cache->study_id = study_id;
  SqlStatement& d = db_->prepare("SELECT count(*) FROM study_directions WHERE study_id = $1");
  d.bind(1, study_id);
  QSEARCH_CHECK(d.step());
  cache->n_objectives = static_cast<size_t>(d.column_int64(0));
  d.reset();
  SqlStatement& p = db_->prepare("SELECT count(*) FROM study_params WHERE study_id = $1");
  p.bind(1, study_id);
  QSEARCH_CHECK(p.step());
  cache->n_params = static_cast<size_t>(p.column_int64(0));
  p.reset();
  return *caches_.emplace(study_id, std::move(cache)).first->second;
}

void RdbStorage::refresh(StudyCache& cache) {
  if (!cache.running.empty()) {
    SqlStatement& s =
        db_->prepare("SELECT trial_id FROM trials WHERE study_id = $1 AND state = 'RUNNING'");
    s.bind(1, cache.study_id);
    std::set<int64_t> still_running;
    while (s.step()) still_running.insert(s.column_int64(0));
    s.reset();
    std::vector<int> finished;
    for (int number : cache.running) {
      if (!still_running.count(cache.trials[number].id)) finished.push_back(number);
    }
    for (int number : finished) load_trial_details(cache, false, cache.trials[number].id);
  }
  load_trial_details(cache, true, static_cast<int64_t>(cache.trials.size()));
}

// Loads trial rows and their params, values and attributes, either every trial with
// number >= key (by_number) or the one trial with trial_id == key, into the cache.
void RdbStorage::load_trial_details(StudyCache& cache, bool by_number, int64_t key) {
  const std::string where =
      by_number ? "t.study_id = $1 AND t.number >= $2" : "t.study_id = $1 AND t.trial_id = $2";
  SqlStatement& rows = db_->prepare(
      "SELECT t.trial_id, t.number, t.state, t.datetime_start, t.datetime_complete "
      "FROM trials t WHERE " +
      where + " ORDER BY t.number");
  rows.bind(1, cache.study_id).bind(2, key);
  bool any = false;
  while (rows.step()) {
    any = true;
    int64_t number = rows.column_int64(1);
    if (number > static_cast<int64_t>(cache.trials.size()) || number < 0) {
      rows.reset();
      fail("study database '{}' is inconsistent: study {} has trial number {} but only {} before",
           path_, cache.study_id, number, cache.trials.size());
    }
    if (number == static_cast<int64_t>(cache.trials.size())) cache.trials.emplace_back();
    FrozenTrial& t = cache.trials[number];
    t = FrozenTrial{};
    t.id = rows.column_int64(0);
    t.number = static_cast<int>(number);
    std::string state = rows.column_text(2);
    t.state = state == "COMPLETE" ? TrialState::kComplete
              : state == "FAIL"   ? TrialState::kFail
              : state == "PRUNED" ? TrialState::kPruned
                                  : TrialState::kRunning;
    t.datetime_start_ms = rows.column_int64(3);
    t.datetime_complete_ms = rows.column_is_null(4) ? 0 : rows.column_int64(4);
    t.params.assign(cache.n_params, std::numeric_limits<double>::quiet_NaN());
  }
  rows.reset();
  if (!any) return;

  SqlStatement& params = db_->prepare(
      "SELECT t.number, p.position, p.param_value FROM trial_params p "
      "JOIN trials t ON t.trial_id = p.trial_id WHERE " +
      where);
  params.bind(1, cache.study_id).bind(2, key);
  while (params.step()) {
    int64_t pos = params.column_int64(1);
    FrozenTrial& t = cache.trials[params.column_int64(0)];
    if (pos < 0 || pos >= static_cast<int64_t>(t.params.size())) {
      params.reset();
      fail("study database '{}' is inconsistent: trial {} has parameter position {}", path_,
           t.number, pos);
    }
    t.params[pos] = params.column_double(2);
  }
  params.reset();

  SqlStatement& values = db_->prepare(
      "SELECT t.number, v.objective, v.value, v.value_type FROM trial_values v "
      "JOIN trials t ON t.trial_id = v.trial_id WHERE " +
      where + " ORDER BY t.number, v.objective");
  values.bind(1, cache.study_id).bind(2, key);
  while (values.step()) {
    FrozenTrial& t = cache.trials[values.column_int64(0)];
    std::string type = values.column_text(3);
    double v = type == "FINITE"    ? values.column_double(2)
               : type == "INF_POS" ? std::numeric_limits<double>::infinity()
               : type == "INF_NEG" ? -std::numeric_limits<double>::infinity()
                                   : std::numeric_limits<double>::quiet_NaN();
    t.values.push_back(v);
  }
  values.reset();

  SqlStatement& user = db_->prepare(
      "SELECT t.number, a.key, a.value_json FROM trial_user_attributes a "
      "JOIN trials t ON t.trial_id = a.trial_id WHERE " +
      where);
  user.bind(1, cache.study_id).bind(2, key);
  while (user.step()) {
    cache.trials[user.column_int64(0)].user_attrs[user.column_text(1)] = user.column_text(2);
  }
  user.reset();

  SqlStatement& system = db_->prepare(
      "SELECT t.number, a.key, a.value FROM trial_system_attributes a "
      "JOIN trials t ON t.trial_id = a.trial_id WHERE " +
      where);
  system.bind(1, cache.study_id).bind(2, key);
  while (system.step()) {
    cache.trials[system.column_int64(0)].system_attrs[system.column_text(1)] =
        system.column_text(2);
  }
  system.reset();

  std::vector<int> running;
  for (int number : cache.running) {
    if (cache.trials[number].state == TrialState::kRunning) running.push_back(number);
  }
  if (by_number) {
    for (size_t n = static_cast<size_t>(key); n < cache.trials.size(); ++n) {
      if (cache.trials[n].state == TrialState::kRunning) running.push_back(static_cast<int>(n));
    }
  }
  cache.running = std::move(running);
}

std::optional<FrozenTrial> RdbStorage::create_trial(
    int64_t study_id, const Decide& decide,
    const std::map<std::string, std::string>& system_attrs) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  StudyCache& cache = cache_for(study_id);
  refresh(cache);
  std::optional<std::vector<double>> params = decide(cache.trials);
  if (!params) {
    txn.commit();
    return std::nullopt;
  }
  if (params->size() != cache.n_params) {
    fail("study '{}': a new trial needs {} parameter values but {} were proposed",
         study_name_of(study_id), cache.n_params, params->size());
  }
  FrozenTrial t;
  t.number = static_cast<int>(cache.trials.size());
  t.state = TrialState::kRunning;
  t.params = std::move(*params);
  t.system_attrs = system_attrs;
  t.datetime_start_ms = now_ms();

  SqlStatement& insert = db_->prepare(
      "INSERT INTO trials (number, study_id, state, datetime_start) "
      "VALUES ($1, $2, 'RUNNING', $3) RETURNING trial_id");
  insert.bind(1, static_cast<int64_t>(t.number)).bind(2, study_id).bind(3, t.datetime_start_ms);
  QSEARCH_CHECK(insert.step());
  t.id = insert.column_int64(0);
  insert.reset();
  SqlStatement& p = db_->prepare(
      "INSERT INTO trial_params (trial_id, position, param_value) VALUES ($1, $2, $3)");
  for (size_t i = 0; i < t.params.size(); ++i) {
    if (std::isnan(t.params[i])) {
      fail("study '{}': parameter {} of new trial {} is NaN", study_name_of(study_id), i, t.number);
    }
    p.bind(1, t.id).bind(2, static_cast<int64_t>(i)).bind(3, t.params[i]).run();
  }
  SqlStatement& a = db_->prepare(
      "INSERT INTO trial_system_attributes (trial_id, key, value) VALUES ($1, $2, $3)");
  for (const auto& [k, v] : system_attrs) a.bind(1, t.id).bind(2, k).bind(3, v).run();
  txn.commit();

  cache.trials.push_back(t);
  cache.running.push_back(t.number);
  return t;
}

void RdbStorage::finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values,
                              const std::map<std::string, std::string>& user_attrs,
                              const std::map<std::string, std::string>& system_attrs) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  std::function<void()> update_cache =
      finish_in_transaction(trial_id, state, values, user_attrs, system_attrs);
  txn.commit();
  update_cache();
}

std::function<void()> RdbStorage::finish_in_transaction(
    int64_t trial_id, TrialState state, const std::vector<double>& values,
    const std::map<std::string, std::string>& user_attrs,
    const std::map<std::string, std::string>& system_attrs) {
  SqlStatement& s = db_->prepare(
      "SELECT study_id, number, state, datetime_start FROM trials WHERE trial_id = $1");
  s.bind(1, trial_id);
  if (!s.step()) {
    s.reset();
    fail("no trial with id {} in '{}'", trial_id, path_);
  }
  int64_t study_id = s.column_int64(0);
  int number = static_cast<int>(s.column_int64(1));
  std::string old_state = s.column_text(2);
  int64_t start_ms = s.column_int64(3);
  s.reset();

  if (old_state != "RUNNING") {
    fail("trial {} of study '{}' is already finished ({}); finished trials are immutable", number,
         study_name_of(study_id), old_state);
  }
  if (state == TrialState::kRunning) {
    fail("trial {} of study '{}': finish_trial needs state COMPLETE, FAIL or PRUNED, not RUNNING",
         number, study_name_of(study_id));
  }
  StudyCache& cache = cache_for(study_id);
  if (state == TrialState::kComplete && values.size() != cache.n_objectives) {
    fail("trial {} of study '{}': a COMPLETE trial needs {} objective value(s), got {}", number,
         study_name_of(study_id), cache.n_objectives, values.size());
  }
  // As in InMemoryStorage, a FAIL trial keeps no values (Optuna's FAIL trials have none).
  const std::vector<double> kept = state == TrialState::kComplete ? values : std::vector<double>{};
  int64_t complete_ms = std::max(now_ms(), start_ms);

  db_->prepare(
         "UPDATE trials SET state = $2, datetime_complete = $3 WHERE trial_id = $1 AND "
         "state = 'RUNNING'")
      .bind(1, trial_id)
      .bind(2, state_text(state))
      .bind(3, complete_ms)
      .run();
  SqlStatement& v = db_->prepare(
      "INSERT INTO trial_values (trial_id, objective, value, value_type) "
      "VALUES ($1, $2, $3, $4)");
  for (size_t i = 0; i < kept.size(); ++i) {
    double x = kept[i];
    v.bind(1, trial_id).bind(2, static_cast<int64_t>(i));
    if (std::isfinite(x)) {
      v.bind(3, x).bind(4, "FINITE");
    } else {
      v.bind_null(3).bind(4, std::isnan(x) ? "NAN" : x > 0 ? "INF_POS" : "INF_NEG");
    }
    v.run();
  }
  SqlStatement& u = db_->prepare(
      "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES ($1, $2, $3) "
      "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json");
  for (const auto& [k, val] : user_attrs) u.bind(1, trial_id).bind(2, k).bind(3, val).run();
  SqlStatement& a = db_->prepare(
      "INSERT INTO trial_system_attributes (trial_id, key, value) VALUES ($1, $2, $3) "
      "ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value");
  for (const auto& [k, val] : system_attrs) a.bind(1, trial_id).bind(2, k).bind(3, val).run();

  // Once committed, the cached RUNNING copy plus what was just written is exactly the stored
  // trial, so the next refresh has nothing to read for it. (Before the commit the cache must not
  // change: a failed commit leaves the trial RUNNING.)
  return [&cache, number, trial_id, state, kept, complete_ms, user_attrs, system_attrs] {
    if (number < static_cast<int>(cache.trials.size()) && cache.trials[number].id == trial_id &&
        cache.trials[number].state == TrialState::kRunning) {
      FrozenTrial& t = cache.trials[number];
      t.state = state;
      t.values = kept;
      t.datetime_complete_ms = complete_ms;
      for (const auto& [k, val] : user_attrs) t.user_attrs[k] = val;
      for (const auto& [k, val] : system_attrs) t.system_attrs[k] = val;
      std::erase(cache.running, number);
    }
  };
}

void RdbStorage::record_heartbeat(const std::vector<int64_t>& trial_ids) {
  if (trial_ids.empty()) return;
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  SqlStatement& beat = db_->prepare(
      "INSERT INTO trial_heartbeats (trial_id, heartbeat) "
      "SELECT trial_id, $2 FROM trials WHERE trial_id = $1 AND state = 'RUNNING' "
      "ON CONFLICT (trial_id) DO UPDATE SET heartbeat = excluded.heartbeat");
  const int64_t now = now_ms();
  for (int64_t id : trial_ids) beat.bind(1, id).bind(2, now).run();
  txn.commit();
}

std::vector<FrozenTrial> RdbStorage::fail_stale_trials(int64_t study_id, int64_t grace_ms) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  StudyCache& cache = cache_for(study_id);
  refresh(cache);  // the stale trials are then cached as RUNNING, and updated below
  const int64_t now = now_ms();
  // Through the partial index of RUNNING trials. A trial without a heartbeat row (none beat yet,
  // or a file from before schema version 2) counts as last beating when it started: no row is
  // written per trial, so a short trial costs nothing extra.
  SqlStatement& stale = db_->prepare(
      "SELECT t.trial_id, COALESCE(h.heartbeat, t.datetime_start) FROM trials t "
      "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
      "WHERE t.study_id = $1 AND t.state = 'RUNNING' "
      "AND COALESCE(h.heartbeat, t.datetime_start) < $2");
  stale.bind(1, study_id).bind(2, now - grace_ms);
  std::vector<std::pair<int64_t, int64_t>> found;
  while (stale.step()) found.emplace_back(stale.column_int64(0), stale.column_int64(1));
  stale.reset();
  std::vector<std::function<void()>> updates;
  for (const auto& [id, last] : found) {
    updates.push_back(finish_in_transaction(
        id, TrialState::kFail, {}, {},
        {{search::kAttrInterrupted, "1"},
         {search::kAttrFailReason, search::stale_fail_reason(now - last, grace_ms)}}));
  }
  txn.commit();
  for (const auto& update : updates) update();
  std::set<int64_t> ids;
  for (const auto& [id, last] : found) ids.insert(id);
  std::vector<FrozenTrial> out;
  for (const FrozenTrial& t : cache.trials) {
    if (ids.count(t.id)) out.push_back(t);
  }
  return out;
}

std::vector<FrozenTrial> RdbStorage::get_trials(int64_t study_id) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kRead);
  StudyCache& cache = cache_for(study_id);
  refresh(cache);
  txn.commit();
  return cache.trials;
}

}  // namespace qsearch::storage
