// Outputs of several processes sharing one output directory are never stale.
//
// Each search process rewrites best.json / log.json / trials.csv from the study it shares with
// the others. Without coordination, a process that read the trials before another one committed
// its last trial could rename its (older) files over the newer ones. So the whole step "read
// every trial from the storage, write the three files (temporary file + rename)" runs under an
// exclusive flock(2) on `<out_dir>/.qsearch.lock`; and every process does that step once more
// after its last commit. The last process to take the lock therefore reads every committed
// trial, and its files are the ones left behind.
//
//   auto trials = report::write_search_outputs_locked(out_dir, info, [&] {
//     return storage.get_trials(info.id);
//   });
#pragma once

#include <filesystem>
#include <functional>
#include <vector>

#include "search/trial.h"

namespace qsearch::report {

// An exclusive advisory lock on `<out_dir>/.qsearch.lock` (created if missing; the directory
// must exist), held until destruction. Blocks while another process holds it. Throws Error
// naming the lock file when it cannot be opened or locked.
class OutputDirLock {
 public:
  explicit OutputDirLock(const std::filesystem::path& out_dir);
  ~OutputDirLock();
  OutputDirLock(const OutputDirLock&) = delete;
  OutputDirLock& operator=(const OutputDirLock&) = delete;

  static std::filesystem::path lock_path(const std::filesystem::path& out_dir);

 private:
  int fd_ = -1;
};

// Creates out_dir, takes the lock, calls read_trials() and writes the three files from what it
// returns (write_search_outputs); returns those trials.
std::vector<search::FrozenTrial> write_search_outputs_locked(
    const std::filesystem::path& out_dir, const search::StudyInfo& info,
    const std::function<std::vector<search::FrozenTrial>()>& read_trials);

}  // namespace qsearch::report
