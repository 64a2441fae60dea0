// Helpers for end-to-end tests: run the real `qsearch` binary in a scratch directory and read
// what it leaves behind.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include "search/trial.h"
#include "storage/sqlite_storage.h"
#include "support/source_dir.h"

namespace qsearch::e2e {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string source_dir() { return QSEARCH_SOURCE_DIR; }
inline std::string bin() { return QSEARCH_BIN; }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory under the system temp dir, removed at destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    path_ = fs::temp_directory_path() / ("qsearch_e2e_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& s) const { return (path_ / s).string(); }

 private:
  fs::path path_;
};

// Runs `qsearch <args>` from the source directory (so relative paths in configs resolve) and
// captures both streams.
inline Result run(const std::string& args) {
  static int n = 0;
  fs::path err = fs::temp_directory_path() /
                 ("qsearch_e2e_stderr_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::string cmd =
      "cd '" + source_dir() + "' && '" + bin() + "' " + args + " 2>'" + err.string() + "'";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, k);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = read_file(err);
  fs::remove(err);
  return r;
}

// Writes `text` to dir/name and returns its path.
inline std::string write(const ScratchDir& dir, const std::string& name, const std::string& text) {
  std::string p = dir / name;
  std::ofstream(p) << text;
  return p;
}

// The MLP fixture (tests/fixtures/torch/mlp_opset13.onnx) searched by node name: fc1..fc3 each
// data_in_width [4, 8] x weight_width [2, 4, 8] (216 configurations; the ReLUs unquantized),
// accuracy (maximize) vs average_bitwidth (minimize) on num_samples MNIST test images. `top`
// goes before the first table (e.g. `project = "x"`), `setup` into [search.strategy.setup].
inline std::string mlp_by_name_config(int num_samples, const std::string& top = "",
                                      const std::string& setup = "") {
  std::string s = R"(
model = "tests/fixtures/torch/mlp_opset13.onnx"
dataset = "mnist"
batch_size = 256
)" + top + R"(
[search.search_space.setup]
by = "name"
[search.search_space.seed.default.config]
name = ["NA"]
)";
  for (const char* n : {"fc1", "fc2", "fc3"}) {
    s += std::string("[search.search_space.seed.") + n + ".config]\n" +
         "name = [\"integer\"]\ndata_in_width = [4, 8]\nweight_width = [2, 4, 8]\n";
  }
  s += R"(
[search.strategy.sw_runner.basic_evaluation]
num_samples = )" +
       std::to_string(num_samples) + R"(
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
)" + setup +
       R"(
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 1.0
average_bitwidth.direction = "minimize"
)";
  return s;
}

// The trials of the one study in <out_dir>/study.db (none if it holds several).
inline std::vector<search::FrozenTrial> trials_of(const std::string& out_dir) {
  auto storage = storage::open_storage("sqlite:///" + out_dir + "/study.db");
  auto names = storage->study_names();
  if (names.size() != 1) return {};
  return storage->get_trials(*storage->find_study(names[0]));
}

}  // namespace qsearch::e2e
