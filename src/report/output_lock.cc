#include "report/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "report/search_report.h"

namespace qsearch::report {

std::filesystem::path OutputDirLock::lock_path(const std::filesystem::path& out_dir) {
  return out_dir / ".qsearch.lock";
}

OutputDirLock::OutputDirLock(const std::filesystem::path& out_dir) {
  const std::string path = lock_path(out_dir).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    fail("cannot open the output lock '{}': {} (check that the output directory is writable)", path,
         std::strerror(errno));
  }
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail("cannot lock '{}': {}", path, std::strerror(err));
  }
}

OutputDirLock::~OutputDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

std::vector<search::FrozenTrial> write_search_outputs_locked(
    const std::filesystem::path& out_dir, const search::StudyInfo& info,
    const std::function<std::vector<search::FrozenTrial>()>& read_trials) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec || !std::filesystem::is_directory(out_dir)) {
    fail("cannot create output directory '{}': {}", out_dir.string(),
         ec ? ec.message() : "a file of that name exists");
  }
  OutputDirLock lock(out_dir);
  std::vector<search::FrozenTrial> trials = read_trials();
  write_search_outputs(out_dir, info, trials);
  return trials;
}

}  // namespace qsearch::report
