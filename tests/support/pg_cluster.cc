#include "support/pg_cluster.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "support/source_dir.h"

namespace qsearch::test {
namespace {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

PgCluster* g_cluster = nullptr;

void stop_at_exit() {
  if (g_cluster) g_cluster->stop();
}

}  // namespace

std::string run_capture(const std::string& command, int* status) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, k);
  const int st = ::pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

PgCluster& PgCluster::shared() {
  if (!g_cluster) {
    g_cluster = new PgCluster();
    std::atexit(stop_at_exit);
  }
  return *g_cluster;
}

PgCluster::PgCluster() {
  script_ = (fs::path(QSEARCH_SOURCE_DIR) / "tests" / "support" / "pg_cluster.sh").string();
  owner_pid_ = static_cast<int>(::getpid());
  // Short: a Unix socket path has at most 107 bytes.
  dir_ = (fs::temp_directory_path() / ("qsearch_pg_" + std::to_string(owner_pid_))).string();
  const std::string log = dir_ + ".log";
  int status = 0;
  url_ = run_capture("bash " + shell_quote(script_) + " start " + shell_quote(dir_) + " " +
                         std::to_string(owner_pid_) + " 2>" + shell_quote(log),
                     &status);
  std::ifstream in(log);
  std::stringstream messages;
  messages << in.rdbuf();
  std::error_code ec;
  fs::remove(log, ec);
  if (status == 77) {
    skip_reason_ =
        "PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin/initdb); "
        "scripts/setup.sh installs them (Debian package postgresql)";
    url_.clear();
  } else if (status != 0 || url_.empty()) {
    error_ = "could not start a throwaway PostgreSQL cluster in " + dir_ + " (status " +
             std::to_string(status) + "): " + messages.str();
    url_.clear();
  }
}

PgCluster::~PgCluster() { stop(); }

std::string PgCluster::url_of(const std::string& db) const {
  const std::string base = url_;
  const size_t slash = base.find("@/");
  const size_t q = base.find('?');
  if (slash == std::string::npos || q == std::string::npos) return base;
  return base.substr(0, slash + 2) + db + base.substr(q);
}

std::string PgCluster::create_database() {
  if (!ok()) return "";
  const std::string name = "qs_" + std::to_string(++databases_);
  int status = 0;
  std::string url = run_capture(
      "bash " + shell_quote(script_) + " createdb " + shell_quote(dir_) + " " + name + " 2>&1",
      &status);
  if (status != 0) {
    error_ = "createdb " + name + " failed: " + url;
    return "";
  }
  return url;
}

void PgCluster::stop() {
  if (static_cast<int>(::getpid()) != owner_pid_) return;  // a forked child: not ours to stop
  if (url_.empty()) return;
  int status = 0;
  run_capture("bash " + shell_quote(script_) + " stop " + shell_quote(dir_) + " >/dev/null 2>&1",
              &status);
  url_.clear();
}

}  // namespace qsearch::test
