// Writing the search outputs when the disk refuses (issue 8): no temporary file stays behind and
// the old files are kept; and the output lock excludes other processes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "report/output_lock.h"
#include "report/search_report.h"

namespace qsearch::report {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("qsearch_outwrite_" + std::to_string(getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

search::StudyInfo study_info() {
  search::StudyInfo info;
  info.id = 0;
  info.name = "s";
  info.directions = {search::Direction::kMaximize};
  info.space = {{"a", search::Distribution::int_range(0, 1000)}};
  return info;
}

// Enough trials that log.json is far larger than the file size limit below.
std::vector<search::FrozenTrial> many_trials() {
  std::vector<search::FrozenTrial> trials;
  for (int i = 0; i < 200; ++i) {
    search::FrozenTrial t;
    t.id = i;
    t.number = i;
    t.state = search::TrialState::kComplete;
    t.params = {static_cast<double>(i)};
    t.values = {0.5 + i};
    t.user_attrs["software_metrics"] = "{\"accuracy\": 0.5}";
    t.datetime_start_ms = 1000;
    t.datetime_complete_ms = 2000;
    trials.push_back(t);
  }
  return trials;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(OutputWrite, AFailedWriteLeavesNoTemporaryFileAndKeepsTheOldFiles) {
  TempDir dir;
  const auto info = study_info();
  write_search_outputs(dir.path, info, {});  // small files: fit under the limit
  const std::string old_log = read_text(dir.path / "log.json");
  // A file size limit makes writes fail as a full disk does (EFBIG instead of ENOSPC).
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &ignore, &old);
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  std::string message;
  try {
    write_search_outputs(dir.path, info, many_trials());
  } catch (const Error& e) {
    threw = true;
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &old, nullptr);
  EXPECT_TRUE(threw);
  EXPECT_NE(message.find("disk full"), std::string::npos) << message;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  EXPECT_EQ(read_text(dir.path / "log.json"), old_log);
}

TEST(OutputWrite, TheOutputLockExcludesOtherProcesses) {
  TempDir dir;
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: takes the lock, says so, holds it until told to go.
    {
      OutputDirLock lock(dir.path);
      char c = 'x';
      if (write(ready[1], &c, 1) != 1) _exit(2);
      if (read(done[0], &c, 1) != 1) _exit(3);
    }
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  // While the child holds it, a non-blocking attempt on the same lock file fails.
  const std::string path = OutputDirLock::lock_path(dir.path).string();
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(write(done[1], &c, 1), 1);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);  // released when the child let go
  close(fd);
}

}  // namespace
}  // namespace qsearch::report
