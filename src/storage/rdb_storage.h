// RdbStorage: search::Storage in a relational database reached through one SqlConnection
// (storage/sql_connection.h: an SQLite file or a PostgreSQL server; schema in storage/schema.h),
// shared safely by the threads of one process and by several processes (on several machines
// with PostgreSQL). Its SQL is dialect-neutral ($N parameters, INSERT ... RETURNING); what only
// one dialect has lives in its driver or behind a switch on SqlConnection::dialect().
// SqliteStorage is RdbStorage on a SqliteConnection.
//
//   auto storage = std::make_shared<SqliteStorage>("out/study.db");
//   int64_t id = storage->create_study("demo", {Direction::kMaximize}, space, true);
//   auto trial = storage->create_trial(id, [&](const std::vector<FrozenTrial>& history) {
//     return sampler.sample({space, directions, history}, static_cast<int>(history.size()));
//   });
//   storage->finish_trial(trial->id, TrialState::kComplete, {0.93}, user_attrs, {});
//
// Sharing and durability (SQLite; the PostgreSQL driver gives the same guarantees):
// - WAL journal (readers never block the writer) and a busy timeout: a writer waits up to
//   Options::busy_timeout_ms for another process's write transaction, then throws Error.
// - Opening creates the schema or checks it, and create_trial runs, inside a write transaction
//   (SqlConnection::TxnKind::kWrite, which every driver makes exclusive per database: SQLite's
//   BEGIN IMMEDIATE): for create_trial, reading the history, the sampler's decision and the
//   insert are one atomic step across processes, so numbers are 0, 1, 2, ... without gaps or
//   duplicates and a brute-force decide never proposes a configuration twice.
// - finish_trial has committed when it returns (a process killed right after keeps the trial;
//   synchronous = NORMAL, so only a power cut can lose the last commits). Finished trials are
//   immutable: finishing one again throws Error.
//
// Cost: trials never change once finished, so each study's trials are cached in memory and a
// refresh reads only what changed since: trials created since (by number, through qsearch's index
// on (study_id, number)) and the few trials that were RUNNING (through its partial index of
// RUNNING trials). The per-trial cost of
// create_trial + finish_trial therefore does not grow with the history; rows_read() exposes
// the count of rows read so tests can check that.
//
// Ownership: one connection per RdbStorage, serialised by an internal mutex. After fork()
// a child process must open its own storage (never use the parent's).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "search/storage.h"
#include "storage/sql_connection.h"

namespace qsearch::storage {

// The study system attribute that holds a qsearch study's search space (search_space_json):
// stored once per study, where Optuna ignores it. A study without it was not made by qsearch:
// it is read (its space derived from its trials' params) but never resumed.
inline constexpr const char* kSearchSpaceAttr = "qsearch:search_space";

// [{"name": ..., "distribution": <Distribution::to_json>}, ...] in space order, and back
// (throws Error on bad text).
std::string search_space_json(const search::SearchSpace& space);
search::SearchSpace search_space_from_json(const std::string& text);

class RdbStorage : public search::Storage {
 public:
  // Takes an open connection and creates Optuna's schema on it, or checks the revision of the
  // schema it has (an old qsearch SQLite file is migrated first: legacy_migration.h). Throws
  // Error naming the database when it is not a study database of qsearch or Optuna, or has a
  // revision of Optuna's schema that qsearch does not know.
  explicit RdbStorage(std::unique_ptr<SqlConnection> conn);
  ~RdbStorage() override;

  int64_t create_study(const std::string& name, const std::vector<search::Direction>& directions,
                       const search::SearchSpace& space, bool load_if_exists,
                       const std::map<std::string, std::string>& user_attrs = {}) override;
  search::StudyInfo get_study(int64_t study_id) override;
  std::optional<int64_t> find_study(const std::string& name) override;
  std::vector<std::string> study_names() override;
  void set_study_user_attr(int64_t study_id, const std::string& key,
                           const std::string& json_value) override;

  std::optional<search::FrozenTrial> create_trial(
      int64_t study_id, const Decide& decide,
      const std::map<std::string, std::string>& system_attrs = {}) override;
  void finish_trial(int64_t trial_id, search::TrialState state, const std::vector<double>& values,
                    const std::map<std::string, std::string>& user_attrs,
                    const std::map<std::string, std::string>& system_attrs) override;
  std::vector<search::FrozenTrial> get_trials(int64_t study_id) override;
  void record_heartbeat(const std::vector<int64_t>& trial_ids) override;
  std::vector<search::FrozenTrial> fail_stale_trials(int64_t study_id, int64_t grace_ms) override;

  // The file path, or the URL with its password hidden.
  const std::string& path() const { return path_; }
  // Database rows read so far by this connection (a cost counter for tests and benchmarks).
  int64_t rows_read() const;

 private:
  struct StudyCache;

  void open_schema();
  void open_schema_tables();  // the tables or the check of their revision (one transaction)
  std::optional<search::SearchSpace> read_qsearch_space(int64_t study_id);
  search::SearchSpace derive_space(int64_t study_id);
  StudyCache& cache_for(int64_t study_id);
  void refresh(StudyCache& cache);
  // finish_trial's work inside the caller's write transaction (mu_ held); returns the update of
  // the cache to apply once the transaction has committed.
  std::function<void()> finish_in_transaction(
      int64_t trial_id, search::TrialState state, const std::vector<double>& values,
      const std::map<std::string, std::string>& user_attrs,
      const std::map<std::string, std::string>& system_attrs);
  void load_trial_details(StudyCache& cache, bool by_number, int64_t key);
  std::string study_name_of(int64_t study_id);
  search::StudyInfo read_study(int64_t study_id);

  std::string path_;
  mutable std::mutex mu_;
  std::unique_ptr<SqlConnection> db_;
  std::map<int64_t, std::unique_ptr<StudyCache>> caches_;
};

}  // namespace qsearch::storage
