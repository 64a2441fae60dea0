#include "storage/rdb_storage.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/check.h"
#include "core/error.h"
#include "storage/legacy_migration.h"
#include "storage/optuna_format.h"
#include "storage/schema.h"
#include "storage/sqlite_db.h"

namespace qsearch::storage {

using search::Direction;
using search::FrozenTrial;
using search::SearchSpace;
using search::StudyInfo;
using search::TrialState;

namespace {

// Optuna's enum member names (schema.h): they belong to the schema, not to search::to_string,
// so that renaming an enumerator or its display text never changes what stored rows mean.
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

// WAITING (a trial Optuna enqueued) reads as RUNNING: not finished, not reclaimed (only RUNNING
// rows are), and never given to a sampler as a result.
TrialState parse_state(const std::string& s) {
  return s == "COMPLETE" ? TrialState::kComplete
         : s == "FAIL"   ? TrialState::kFail
         : s == "PRUNED" ? TrialState::kPruned
                         : TrialState::kRunning;
}

const char* direction_text(Direction d) {
  return d == Direction::kMinimize ? "MINIMIZE" : "MAXIMIZE";
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Optuna's older revisions, which `optuna storage upgrade` brings to a current one.
bool older_optuna_revision(const std::string& revision) {
  for (const char* r : {"v0.9.0.a", "v1.2.0.a", "v1.3.0.a", "v2.0.0.a", "v2.3.0.a", "v2.4.0.a",
                        "v2.6.0.a", "v3.0.0.a", "v3.0.0.b", "v3.0.0.c"}) {
    if (revision == r) return true;
  }
  return false;
}

bool known_revision(const std::string& revision) {
  for (const char* r : kKnownOptunaRevisions) {
    if (revision == r) return true;
  }
  return false;
}

}  // namespace

std::string search_space_json(const SearchSpace& space) {
  try {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& p : space) {
      out.push_back(
          {{"name", p.name}, {"distribution", nlohmann::ordered_json::parse(p.dist.to_json())}});
    }
    return out.dump();
  } catch (const nlohmann::json::exception& e) {
    // JSON text must be UTF-8: a name or choice that is not cannot be stored.
    fail(
        "the search space cannot be stored as JSON ({}): parameter names and choices must be "
        "UTF-8",
        e.what());
  }
}

SearchSpace search_space_from_json(const std::string& text) {
  SearchSpace space;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_array()) fail("not an array");
    for (const auto& p : j) {
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string() ||
          !p.contains("distribution")) {
        fail("an entry needs \"name\" and \"distribution\"");
      }
      space.push_back({p["name"].get<std::string>(),
                       search::Distribution::from_json(p["distribution"].dump())});
    }
  } catch (const nlohmann::json::exception& e) {
    fail("the search space '{}' does not parse: {}", text.substr(0, 200), e.what());
  } catch (Error& e) {
    e.add_context(fmt::format("reading the search space '{}'", text.substr(0, 200)));
    throw;
  }
  return space;
}

struct RdbStorage::StudyCache {
  int64_t study_id = -1;
  size_t n_objectives = 0;
  SearchSpace space;
  std::vector<std::string> distribution_json;        // Optuna's, per position
  std::unordered_map<std::string, size_t> position;  // param name -> position
  std::vector<FrozenTrial> trials;                   // index == number
  std::vector<int> running;  // numbers of cached trials that were RUNNING when read
};

RdbStorage::RdbStorage(std::unique_ptr<SqlConnection> conn)
    : path_(conn->display_name()), db_(std::move(conn)) {
  open_schema();
}

RdbStorage::~RdbStorage() = default;

void RdbStorage::open_schema() {
  if (db_->dialect() == SqlDialect::kSqlite) {
    auto* sqlite = dynamic_cast<SqliteConnection*>(db_.get());
    QSEARCH_CHECK(sqlite != nullptr);
    // What the file is, read in one snapshot (another process creating the schema meanwhile
    // would otherwise look like a half-made database). Reading it first also makes a file that
    // is not a database fail here, before anything is written.
    std::set<std::string> tables;
    int64_t app_id = 0;
    {
      SqlTransaction snapshot(*db_, SqlConnection::TxnKind::kRead);
      app_id = std::stoll(db_->query_text("PRAGMA application_id").value_or("0"));
      SqlStatement& s = db_->prepare("SELECT name FROM sqlite_master WHERE type = 'table'");
      while (s.step()) tables.insert(s.column_text(0));
      s.reset();
      snapshot.commit();
    }
    const bool legacy = is_legacy_qsearch_db(app_id, tables);
    if (!tables.empty() && !legacy && !tables.count("version_info")) {
      fail(
          "'{}' is an SQLite database but not a study database of qsearch or Optuna ({} tables, "
          "no version_info). Use another file for the study",
          path_, tables.size());
    }
    // WAL and synchronous = NORMAL, only once the file is known to be a study database.
    sqlite->open_for_study();
    if (legacy) migrate_legacy_qsearch_db(*sqlite);
  }
  open_schema_tables();
}

void RdbStorage::open_schema_tables() {
  const SqlDialect dialect = db_->dialect();
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  if (db_->query_text(has_optuna_schema_sql(dialect)).value_or("0") == "0") {
    db_->exec(optuna_schema_sql(dialect));
    db_->prepare(
           "INSERT INTO version_info (version_info_id, schema_version, library_version) "
           "VALUES (1, $1, $2)")
        .bind(1, kOptunaSchemaVersion)
        .bind(2, kOptunaLibraryVersion)
        .run();
    db_->prepare("INSERT INTO alembic_version (version_num) VALUES ($1)")
        .bind(1, kOptunaRevision)
        .run();
  } else {
    SqlStatement& get = db_->prepare("SELECT schema_version, library_version FROM version_info");
    std::optional<int64_t> version;
    std::string library = "?";
    if (get.step()) {
      version = get.column_is_null(0) ? -1 : get.column_int64(0);
      library = get.column_text(1);
    }
    get.reset();
    std::string revision = "(none)";
    if (db_->query_text(dialect == SqlDialect::kSqlite
                            ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'alembic_version'"
                            : "SELECT count(*) FROM information_schema.tables WHERE "
                              "table_schema = current_schema() AND table_name = "
                              "'alembic_version'")
            .value_or("0") != "0") {
      revision = db_->query_text("SELECT version_num FROM alembic_version").value_or("(none)");
    }
    if (version != kOptunaSchemaVersion || !known_revision(revision)) {
      const bool older = (version && *version >= 0 && *version < kOptunaSchemaVersion) ||
                         older_optuna_revision(revision);
      fail(
          "study database '{}' has Optuna's schema at revision {} (schema version {}, set up by "
          "optuna {}); qsearch reads revisions v3.0.0.d and v3.2.0.a (schema version {}): {}",
          path_, revision, version ? std::to_string(*version) : "(none)", library,
          kOptunaSchemaVersion,
          older
              ? fmt::format("upgrade it with `optuna storage upgrade --storage <url of {}>`", path_)
              : std::string("upgrade qsearch, or give the search another study database"));
    }
  }
  db_->exec(qsearch_indexes_sql(dialect));
  txn.commit();
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

std::optional<SearchSpace> RdbStorage::read_qsearch_space(int64_t study_id) {
  SqlStatement& s = db_->prepare(
      "SELECT value_json FROM study_system_attributes WHERE study_id = $1 AND key = $2");
  s.bind(1, study_id).bind(2, kSearchSpaceAttr);
  std::optional<std::string> text;
  if (s.step()) text = s.column_text(0);
  s.reset();
  if (!text) return std::nullopt;
  try {
    return search_space_from_json(system_attr_from_json(*text));
  } catch (Error& e) {
    e.add_context(
        fmt::format("study {} in '{}', system attribute '{}'", study_id, path_, kSearchSpaceAttr));
    throw;
  }
}

// A study Optuna made has no stored space: it is what its trials' params name, in the order
// each name first appears, with the distribution of that first appearance.
SearchSpace RdbStorage::derive_space(int64_t study_id) {
  SqlStatement& s = db_->prepare(
      "SELECT p.param_name, p.distribution_json FROM trial_params p WHERE p.param_id IN ("
      "SELECT MIN(q.param_id) FROM trial_params q JOIN trials t ON t.trial_id = q.trial_id "
      "WHERE t.study_id = $1 GROUP BY q.param_name) ORDER BY p.param_id");
  s.bind(1, study_id);
  SearchSpace space;
  try {
    while (s.step()) {
      space.push_back({s.column_text(0), distribution_from_optuna_json(s.column_text(1))});
    }
  } catch (...) {
    s.reset();
    throw;
  }
  s.reset();
  return space;
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
    if (!read_qsearch_space(*existing)) {
      fail(
          "study '{}' in '{}' was not created by qsearch (it has no '{}' system attribute; "
          "Optuna's own study?): qsearch reports on it but does not resume it; give the search "
          "another study name or storage",
          name, path_, kSearchSpaceAttr);
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
      "INSERT INTO study_directions (direction, study_id, objective) VALUES ($1, $2, $3)");
  for (size_t i = 0; i < directions.size(); ++i) {
    d.bind(1, direction_text(directions[i])).bind(2, id).bind(3, static_cast<int64_t>(i)).run();
  }
  db_->prepare(
         "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES ($1, $2, $3)")
      .bind(1, id)
      .bind(2, kSearchSpaceAttr)
      .bind(3, system_attr_json(search_space_json(space)))
      .run();
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
  std::optional<SearchSpace> space = read_qsearch_space(study_id);
  info.space = space ? std::move(*space) : derive_space(study_id);
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
  StudyInfo info = read_study(study_id);  // throws for an unknown study
  auto cache = std::make_unique<StudyCache>();
  cache->study_id = study_id;
  cache->n_objectives = info.directions.size();
  cache->space = std::move(info.space);
  for (size_t i = 0; i < cache->space.size(); ++i) {
    cache->distribution_json.push_back(optuna_distribution_json(cache->space[i].dist));
    cache->position[cache->space[i].name] = i;
  }
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
  std::vector<int> loaded;
  while (rows.step()) {
    int64_t number = rows.column_is_null(1) ? -1 : rows.column_int64(1);
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
    loaded.push_back(t.number);
    t.state = parse_state(rows.column_text(2));
    t.datetime_start_ms =
        rows.column_is_null(3) ? 0 : parse_datetime(rows.column_text(3), TimeZone::kLocal);
    t.datetime_complete_ms =
        rows.column_is_null(4) ? 0 : parse_datetime(rows.column_text(4), TimeZone::kLocal);
    t.params.assign(cache.space.size(), std::numeric_limits<double>::quiet_NaN());
  }
  rows.reset();
  if (loaded.empty()) return;

  SqlStatement& params = db_->prepare(
      "SELECT t.number, p.param_name, p.param_value FROM trials t "
      "JOIN trial_params p ON p.trial_id = t.trial_id WHERE " +
      where);
  params.bind(1, cache.study_id).bind(2, key);
  while (params.step()) {
    FrozenTrial& t = cache.trials[params.column_int64(0)];
    const std::string name = params.column_text(1);
    auto pos = cache.position.find(name);
    if (pos == cache.position.end()) {
      params.reset();
      fail(
          "study database '{}': trial {} of study {} has parameter '{}', which is not in the "
          "study's search space (a trial another program added with other parameters?)",
          path_, t.number, cache.study_id, name);
    }
    t.params[pos->second] = params.column_double(2);
  }
  params.reset();

  SqlStatement& values = db_->prepare(
      "SELECT t.number, v.objective, v.value, v.value_type FROM trials t "
      "JOIN trial_values v ON v.trial_id = t.trial_id WHERE " +
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
      "SELECT t.number, a.key, a.value_json FROM trials t "
      "JOIN trial_user_attributes a ON a.trial_id = t.trial_id WHERE " +
      where);
  user.bind(1, cache.study_id).bind(2, key);
  while (user.step()) {
    cache.trials[user.column_int64(0)].user_attrs[user.column_text(1)] = user.column_text(2);
  }
  user.reset();

  SqlStatement& system = db_->prepare(
      "SELECT t.number, a.key, a.value_json FROM trials t "
      "JOIN trial_system_attributes a ON a.trial_id = t.trial_id WHERE " +
      where);
  system.bind(1, cache.study_id).bind(2, key);
  while (system.step()) {
    cache.trials[system.column_int64(0)].system_attrs[system.column_text(1)] =
        system_attr_from_json(system.column_text(2));
  }
  system.reset();

  // A finished trial must have a value for every parameter: qsearch's samplers and reports
  // know no other kind (a RUNNING trial of Optuna's ask() may still be getting its params).
  for (int n : loaded) {
    const FrozenTrial& t = cache.trials[n];
    if (!t.finished()) continue;
    for (size_t i = 0; i < t.params.size(); ++i) {
      if (std::isnan(t.params[i])) {
        fail(
            "study database '{}': finished trial {} of study {} has no value for parameter '{}' "
            "(a trial another program added with other parameters?)",
            path_, t.number, cache.study_id, cache.space[i].name);
      }
    }
  }

  std::vector<int> running;
  for (int number : cache.running) {
    if (cache.trials[number].state == TrialState::kRunning) running.push_back(number);
  }
  if (by_number) {
    for (int n : loaded) {
      if (cache.trials[n].state == TrialState::kRunning) running.push_back(n);
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
  if (params->size() != cache.space.size()) {
    fail("study '{}': a new trial needs {} parameter values but {} were proposed",
         study_name_of(study_id), cache.space.size(), params->size());
  }
  FrozenTrial t;
  t.number = static_cast<int>(cache.trials.size());
  t.state = TrialState::kRunning;
  t.params = std::move(*params);
  t.system_attrs = system_attrs;
  t.datetime_start_ms = now_ms();
  for (size_t i = 0; i < t.params.size(); ++i) {
    if (std::isnan(t.params[i])) {
      fail("study '{}': parameter {} of new trial {} is NaN", study_name_of(study_id), i, t.number);
    }
  }

  SqlStatement& insert = db_->prepare(
      "INSERT INTO trials (number, study_id, state, datetime_start) "
      "VALUES ($1, $2, 'RUNNING', $3) RETURNING trial_id");
  insert.bind(1, static_cast<int64_t>(t.number))
      .bind(2, study_id)
      .bind(3, format_datetime(t.datetime_start_ms, TimeZone::kLocal));
  QSEARCH_CHECK(insert.step());
  t.id = insert.column_int64(0);
  insert.reset();
  SqlStatement& p = db_->prepare(
      "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
      "VALUES ($1, $2, $3, $4)");
  for (size_t i = 0; i < t.params.size(); ++i) {
    p.bind(1, t.id)
        .bind(2, cache.space[i].name)
        .bind(3, t.params[i])
        .bind(4, cache.distribution_json[i])
        .run();
  }
  SqlStatement& a = db_->prepare(
      "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES ($1, $2, $3)");
  for (const auto& [k, v] : system_attrs) {
    a.bind(1, t.id).bind(2, k).bind(3, trial_system_attr_json(k, v)).run();
  }
  // The first heartbeat, in UTC, with the trial (as Optuna beats at a trial's start): the start
  // time is local (Optuna's datetime.now()), so judging a new trial by it would reclaim the trials
  // of a worker in a time zone west of the reclaimer's during their first heartbeat interval.
  db_->prepare("INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES ($1, $2)")
      .bind(1, t.id)
      .bind(2, format_datetime(t.datetime_start_ms, TimeZone::kUtc))
      .run();
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
  const std::optional<std::string> start_text =
      s.column_is_null(3) ? std::nullopt : std::optional<std::string>(s.column_text(3));
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
  if (state == TrialState::kComplete) {
    for (double x : values) {
      if (std::isnan(x)) {
        fail(
            "trial {} of study '{}': a COMPLETE trial cannot have a NaN objective value (Optuna's "
            "schema has none; a NaN objective makes the trial FAIL)",
            number, study_name_of(study_id));
      }
    }
  }
  // As in InMemoryStorage, a FAIL trial keeps no values (Optuna's FAIL trials have none).
  const std::vector<double> kept = state == TrialState::kComplete ? values : std::vector<double>{};
  const int64_t start_ms = start_text ? parse_datetime(*start_text, TimeZone::kLocal) : 0;
  const int64_t complete_ms = std::max(now_ms(), start_ms);

  db_->prepare(
         "UPDATE trials SET state = $2, datetime_complete = $3 WHERE trial_id = $1 AND "
         "state = 'RUNNING'")
      .bind(1, trial_id)
      .bind(2, state_text(state))
      .bind(3, format_datetime(complete_ms, TimeZone::kLocal))
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
      v.bind_null(3).bind(4, x > 0 ? "INF_POS" : "INF_NEG");
    }
    v.run();
  }
  SqlStatement& u = db_->prepare(
      "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES ($1, $2, $3) "
      "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json");
  for (const auto& [k, val] : user_attrs) u.bind(1, trial_id).bind(2, k).bind(3, val).run();
  SqlStatement& a = db_->prepare(
      "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES ($1, $2, $3) "
      "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json");
  for (const auto& [k, val] : system_attrs) {
    a.bind(1, trial_id).bind(2, k).bind(3, trial_system_attr_json(k, val)).run();
  }

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

// Heartbeats are UTC, as Optuna's (the database's CURRENT_TIMESTAMP), so that an Optuna process
// checking them reads the same clock; trial times are local, as Optuna's datetime.now().
void RdbStorage::record_heartbeat(const std::vector<int64_t>& trial_ids) {
  if (trial_ids.empty()) return;
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  SqlStatement& state = db_->prepare("SELECT state FROM trials WHERE trial_id = $1");
  SqlStatement& beat = db_->prepare(
      "INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES ($1, $2) "
      "ON CONFLICT (trial_id) DO UPDATE SET heartbeat = excluded.heartbeat");
  const std::string now = format_datetime(now_ms(), TimeZone::kUtc);
  for (int64_t id : trial_ids) {
    state.bind(1, id);
    const bool running = state.step() && state.column_text(0) == "RUNNING";
    state.reset();
    if (running) beat.bind(1, id).bind(2, now).run();
  }
  txn.commit();
}

std::vector<FrozenTrial> RdbStorage::fail_stale_trials(int64_t study_id, int64_t grace_ms) {
  std::lock_guard lock(mu_);
  SqlTransaction txn(*db_, SqlConnection::TxnKind::kWrite);
  StudyCache& cache = cache_for(study_id);
  refresh(cache);  // the stale trials are then cached as RUNNING, and updated below
  const int64_t now = now_ms();
  // Through the partial index of RUNNING trials. create_trial writes each trial's first heartbeat;
  // a trial without a row (created by Optuna without heartbeats, or in a migrated old file)
  // counts as last beating when it started, read in this process's local time.
  SqlStatement& stale = db_->prepare(
      "SELECT t.trial_id, t.datetime_start, h.heartbeat FROM trials t "
      "LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
      "WHERE t.study_id = $1 AND t.state = 'RUNNING'");
  stale.bind(1, study_id);
  std::vector<std::pair<int64_t, int64_t>> found;
  try {
    while (stale.step()) {
      const int64_t last =
          !stale.column_is_null(2)   ? parse_datetime(stale.column_text(2), TimeZone::kUtc)
          : !stale.column_is_null(1) ? parse_datetime(stale.column_text(1), TimeZone::kLocal)
                                     : 0;
      if (last < now - grace_ms) found.emplace_back(stale.column_int64(0), last);
    }
  } catch (...) {
    stale.reset();
    throw;
  }
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
