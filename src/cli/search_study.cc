#include "cli/search_study.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cli/html_layers.h"
#include "core/error.h"
#include "data/sha256.h"
#include "report/study_settings.h"
#include "runtime/plan.h"
#include "storage/storage_url.h"

namespace qsearch::cli {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

std::string kind_of(const fs::file_status& st) {
  if (fs::is_regular_file(st)) return "a file";
  if (fs::is_character_file(st) || fs::is_block_file(st)) return "a device";
  if (fs::is_fifo(st)) return "a pipe";
  if (fs::is_socket(st)) return "a socket";
  return "not a directory";
}

// `dir` must be a directory that exists and is writable, or one that can be created: its
// nearest existing ancestor is a writable directory. Leaves nothing behind.
void check_dir(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  fs::path probe = dir;
  while (!probe.empty() && !fs::exists(fs::status(probe, ec))) probe = probe.parent_path();
  if (probe.empty()) probe = ".";
  const fs::file_status st = fs::status(probe, ec);
  if (!fs::is_directory(st)) {
    if (probe == dir) {
      fail("{} '{}' is {}, not a directory: pass a directory for the outputs", what, dir.string(),
           kind_of(st));
    }
    fail("{} '{}' cannot be created: '{}' is {}, not a directory", what, dir.string(),
         probe.string(), kind_of(st));
  }
  // Permission bits do not tell (root writes anywhere except on read-only or virtual file
  // systems such as /proc): make and remove a scratch directory.
  std::string scratch = (probe / ".qsearch_write_check_XXXXXX").string();
  if (::mkdtemp(scratch.data()) != nullptr) {
    ::rmdir(scratch.c_str());
  } else {
    const std::string why = std::strerror(errno);
    if (probe == dir) fail("{} '{}' is not writable ({})", what, dir.string(), why);
    fail("{} '{}' cannot be created: '{}' is not writable ({})", what, dir.string(), probe.string(),
         why);
  }
}

void make_dir(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    fail("{} '{}' cannot be created: {}", what, dir.string(),
         ec ? ec.message() : "a file of that name exists");
  }
}

bool storage_is_default(const config::SearchSettings& s) {
  return s.storage == "sqlite:///" + (fs::path(s.out_dir) / "study.db").string();
}

}  // namespace

void check_search_paths(const config::SearchSettings& s) {
  if (s.out_dir.empty()) {
    fail("--out is empty: give the directory for best.json, log.json, trials.csv and study.db");
  }
  check_dir(s.out_dir, "--out");
  const storage::StorageUrl url = storage::parse_storage_url(s.storage);
  if (url.memory() || url.backend == storage::StorageBackend::kPostgres) return;
  const fs::path db = url.path;
  std::error_code ec;
  const fs::file_status st = fs::status(db, ec);
  if (fs::exists(st)) {
    if (!fs::is_regular_file(st)) {
      fail("storage '{}': '{}' is {}, not a database file", s.storage, db.string(),
           fs::is_directory(st) ? "a directory" : kind_of(st));
    }
    if (::access(db.c_str(), R_OK | W_OK) != 0) {
      fail("storage '{}': '{}' is not writable ({})", s.storage, db.string(), std::strerror(errno));
    }
  }
  // SQLite also writes '-wal' and '-shm' files beside the database.
  const fs::path parent = db.parent_path();
  if (parent != fs::path(s.out_dir)) check_dir(parent.empty() ? "." : parent, "storage directory");
}

std::map<std::string, std::string> study_settings_attrs(const config::SearchSettings& s,
                                                        int64_t samples_per_trial,
                                                        const Json& param_choices,
                                                        const ir::DimBinding& input_dims) {
  namespace k = report::setting;
  std::map<std::string, std::string> m;
  m[k::kModel] = Json(s.model_path).dump();
  m[k::kModelSha256] = Json(data::sha256_file(s.model_path)).dump();
  m[k::kDataset] = Json(s.dataset).dump();
  m[k::kSplit] = Json(s.split).dump();
  m[k::kNumSamples] = Json(samples_per_trial).dump();
  m[k::kMode] = Json(runtime::mode_name(s.objective.mode)).dump();
  m[k::kFoldBatchNorm] = Json(s.fold_batch_norm).dump();
  if (!input_dims.empty()) m[k::kInputDims] = Json(input_dims).dump();
  Json objectives = Json::array();
  const auto& metrics = s.objective.metrics;
  if (s.objective.sum_scaled_metrics) {
    Json sum_of = Json::array();
    for (const auto& mt : metrics) sum_of.push_back({{"metric", mt.name}, {"scale", mt.scale}});
    objectives.push_back(
        {{"sum_of", sum_of},
         {"direction",
          s.directions.empty() ? std::string("?") : search::to_string(s.directions[0])}});
  } else {
    for (size_t i = 0; i < metrics.size(); ++i) {
      objectives.push_back(
          {{"metric", metrics[i].name},
           {"scale", metrics[i].scale},
           {"direction",
            i < s.directions.size() ? search::to_string(s.directions[i]) : std::string("?")}});
    }
  }
  m[k::kObjectives] = objectives.dump();
  m[k::kParamChoices] = param_choices.dump();
  m[k::kQsearchVersion] = Json(QSEARCH_VERSION).dump();
  m[k::kSampler] = Json(s.sampler).dump();
  m[k::kSeed] = Json(s.seed).dump();
  m[k::kCommand] = Json(this_command_line()).dump();
  return m;
}

search::Study open_search_study(const config::SearchSettings& s, const search::SearchSpace& space,
                                const std::map<std::string, std::string>& attrs,
                                std::unique_ptr<search::Sampler> sampler,
                                std::vector<std::string>* notes) {
  const storage::StorageUrl url = storage::parse_storage_url(s.storage);
  make_dir(s.out_dir, "--out");
  if (!url.memory() && url.backend == storage::StorageBackend::kSqlite) {
    const fs::path parent = fs::path(url.path).parent_path();
    if (!parent.empty()) make_dir(parent, "storage directory");
  }
  std::shared_ptr<search::Storage> storage =
      storage::open_storage(s.storage, storage::Access::kCreate);
  const std::string where =
      fmt::format("study '{}' in '{}'", s.study_name,
                  url.backend == storage::StorageBackend::kPostgres ? url.display : url.path);
  const std::string fix =
      storage_is_default(s)
          ? "--out NEW_DIR (a new study.db), or --study NEW_NAME (another study in this study.db)"
          : "--study NEW_NAME, or another --storage";
  auto check = [&](int64_t id) {
    const search::StudyInfo info = storage->get_study(id);
    std::vector<std::string> unchecked;
    const auto diffs =
        report::diff_settings(info.user_attrs, attrs, report::resume_settings(), &unchecked);
    if (!diffs.empty()) {
      fail(
          "{} was made with other settings: {}. Run it again with the settings it was made with, "
          "or start a new study: {}",
          where, report::describe(diffs, "the study", "this run"), fix);
    }
    return unchecked;
  };
  // Checked before create_study too, so that a difference in objectives or space is reported
  // with the settings rather than as the storage's bare direction/space mismatch.
  if (auto id = storage->find_study(s.study_name)) check(*id);
  int64_t id = -1;
  try {
    id = storage->create_study(s.study_name, s.directions, space, true, attrs);
  } catch (Error& e) {
    // The study exists with other directions or another space: explain with its settings when
    // it has them (it may have been created meanwhile), else name the fix.
    if (auto other = storage->find_study(s.study_name)) {
      check(*other);
      e.add_context(fmt::format("to start a new study instead: {}", fix));
    }
    throw;
  }
  const std::vector<std::string> unchecked = check(id);
  if (!unchecked.empty() && notes) {
    std::string list;
    for (const auto& u : unchecked) list += (list.empty() ? "" : ", ") + u;
    notes->push_back(fmt::format(
        "{} records no settings ({}): it was made by an older qsearch, so they were not checked "
        "against this run",
        where, list));
  }
  return search::Study::create(std::move(storage), s.study_name, s.directions, space,
                               std::move(sampler));
}

}  // namespace qsearch::cli
