#include "data/download.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "core/error.h"
#include "data/file_io.h"
#include "data/sha256.h"

extern char** environ;

namespace qsearch::data {

namespace {

struct CurlResult {
  int exit_code = -1;
  std::string message;  // curl's last line of output (its error when it failed)
};

// Runs curl with `args`, copying its stderr (progress bar, errors) to `log` as it arrives.
CurlResult run_curl(const std::vector<std::string>& args, std::ostream* log) {
  int pipe_fd[2];
  if (pipe(pipe_fd) != 0) fail("cannot create a pipe for curl: {}", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fd[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fd[0]);
  posix_spawn_file_actions_addclose(&actions, pipe_fd[1]);
  std::vector<char*> argv;
  std::vector<std::string> all = {"curl"};
  all.insert(all.end(), args.begin(), args.end());
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "curl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fd[1]);
  if (rc != 0) {
    close(pipe_fd[0]);
    fail(
        "cannot run curl ({}): install it (sudo apt-get install curl) or download the file "
        "by hand",
        std::strerror(rc));
  }
  CurlResult result;
  std::string tail;
  char buf[4096];
  for (;;) {
    ssize_t got = read(pipe_fd[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (log != nullptr) log->write(buf, got).flush();
    tail.append(buf, static_cast<size_t>(got));
    if (tail.size() > 8192) tail.erase(0, tail.size() - 4096);
  }
  close(pipe_fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // The progress bar redraws with \r: keep the last non-empty line or segment.
  for (char& c : tail) {
    if (c == '\r') c = '\n';
  }
  const size_t end = tail.find_last_not_of(" \n");
  if (end != std::string::npos) {
    const size_t nl = tail.rfind('\n', end);
    const size_t begin = nl == std::string::npos ? 0 : nl + 1;
    result.message = tail.substr(begin, end + 1 - begin);
  }
  return result;
}

std::vector<std::string> curl_common() {
  return {"--fail", "--location", "--connect-timeout", "30", "--retry", "2"};
}

}  // namespace

std::string download_file(const std::string& url, const std::string& dest, std::ostream& log) {
  const std::string part = dest + ".part";
  std::vector<std::string> args = curl_common();
  args.insert(args.end(), {"--progress-bar", "-o", part, url});
  log << "downloading " << url << "\n         -> " << dest << "\n";
  CurlResult r = run_curl(args, &log);
  log << "\n";
  if (r.exit_code != 0) {
    std::remove(part.c_str());
    fail(
        "download of {} failed (curl exit code {}: {}). Check the network, or fetch it by "
        "hand: curl -L -o '{}' '{}'",
        url, r.exit_code, r.message.empty() ? "no message" : r.message, dest, url);
  }
  if (std::rename(part.c_str(), dest.c_str()) != 0) {
    fail("cannot move '{}' to '{}': {}", part, dest, std::strerror(errno));
  }
  const std::string hex = sha256_file(dest);
  write_checksum_file(dest, hex);
  log << "sha256 " << hex << "  " << dest << "\n  (stored in " << dest << ".sha256; verified "
      << "on every load)\n";
  return hex;
}

std::string fetch_text(const std::string& url, std::ostream& log) {
  char tmpl[] = "/tmp/qsearch-fetch-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) fail("cannot create a temporary file: {}", std::strerror(errno));
  close(fd);
  std::vector<std::string> args = curl_common();
  args.insert(args.end(), {"--silent", "--show-error", "-o", tmpl, url});
  CurlResult r = run_curl(args, &log);
  if (r.exit_code != 0) {
    std::remove(tmpl);
    fail("fetching {} failed (curl exit code {}: {}); check the network", url, r.exit_code,
         r.message.empty() ? "no message" : r.message);
  }
  std::string text;
  try {
    text = read_file(tmpl, "");
  } catch (...) {
    std::remove(tmpl);
    throw;
  }
  std::remove(tmpl);
  return text;
}

std::vector<DownloadSource> jsc_download_sources() {
  return {
      {"MASE/LogicNets HDF5 file (dataset t_allpar_new)",
       "https://cernbox.cern.ch/index.php/s/jvFd5MoWhGs1l5v/download",
       "processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z", ""},
      {"OpenML CSV hls4ml_lhc_jets_hlf (data id 42468)",
       "https://www.openml.org/data/get_csv/{file_id}", "hls4ml_lhc_jets_hlf.csv",
       "https://www.openml.org/api/v1/json/data/42468"},
  };
}

namespace {

std::string resolve_url(const DownloadSource& s, std::ostream& log) {
  if (s.file_id_url.empty()) return s.url;
  const std::string json = fetch_text(s.file_id_url, log);
  size_t k = json.find("\"file_id\"");
  if (k != std::string::npos) k = json.find_first_of("0123456789", k + 9);
  if (k == std::string::npos) {
    fail("{} does not name a \"file_id\"; the OpenML API may have changed", s.file_id_url);
  }
  const std::string id = json.substr(k, json.find_first_not_of("0123456789", k) - k);
  std::string url = s.url;
  url.replace(url.find("{file_id}"), 9, id);
  return url;
}

}  // namespace

int download_sources(const std::vector<DownloadSource>& sources, const std::string& dir,
                     std::ostream& log) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create directory '{}': {}", dir, ec.message());
  int have = 0;
  std::vector<std::string> errors;
  for (const auto& s : sources) {
    const std::string dest = join_path(dir, s.file);
    if (file_exists(dest) && !read_checksum_file(dest).empty()) {
      try {
        verify_checksum_if_present(dest, "");
        log << s.what << ": already present and matches its checksum: " << dest << "\n";
        ++have;
        continue;
      } catch (const Error& e) {
        log << s.what << ": " << e.what() << "\n  downloading it again\n";
      }
    }
    log << s.what << "\n";
    try {
      download_file(resolve_url(s, log), dest, log);
      ++have;
    } catch (const Error& e) {
      log << "  failed: " << e.what() << "\n";
      errors.push_back(e.what());
    }
  }
  if (have == 0) {
    std::string all;
    for (const auto& e : errors) all += "\n  " + e;
    fail("no file could be downloaded into '{}':{}", dir, all);
  }
  return have;
}

}  // namespace qsearch::data
