// bench-deps: search storage
//
// A trial's storage cost (issue 10): create_trial + finish_trial of SqliteStorage on a study.db
// file, per trial, with what a MASE-style search stores: 18 index parameters (3 nodes x 6
// fields, int[0, len - 1]), 2 objective values, the user attrs qsearch's objective writes
// (software / hardware / scaled metrics, the sampled configuration as JSON, ~1 KB) and the
// worker system attr. The sampler is trivial (the trial number spread over the indices), so
// the time is the storage's own: refresh of the cached history, the inserts, two commits.
//
//   build/bin/storage_commit_bench [--trials 2000] [--db /tmp/x/study.db] [--sqlite-memory]
//                                  [--memory]
// (--sqlite-memory: SqliteStorage on ":memory:", the SQL work without file I/O; --memory:
// InMemoryStorage, the floor.)
//
// Prints one JSON line: mean wall and CPU microseconds per trial over all trials, the first 100
// and the last 100 (a cost that grows with the history shows as last100 > first100). The file
// is created fresh (an existing one is removed first, with its -wal and -shm files).
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mase_space.h"
#include "search/memory_storage.h"
#include "storage/sqlite_storage.h"

using namespace qsearch;
using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::TrialState;

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 2000;
  std::string db = "/tmp/qsearch_storage_commit_bench/study.db";
  bool memory = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) {
      trials = std::atoi(argv[++i]);
    } else if (a == "--db" && i + 1 < argc) {
      db = argv[++i];
    } else if (a == "--memory") {
      memory = true;
    } else if (a == "--sqlite-memory") {
      db = ":memory:";
    } else {
      std::fprintf(stderr, "usage: %s [--trials N] [--db FILE] [--sqlite-memory] [--memory]\n",
                   argv[0]);
      return 2;
    }
  }
  std::shared_ptr<search::Storage> storage;
  if (memory) {
    storage = std::make_shared<search::InMemoryStorage>();
  } else {
    namespace fs = std::filesystem;
    if (db != ":memory:") {
      fs::create_directories(fs::path(db).parent_path());
      for (const char* tail : {"", "-wal", "-shm"}) fs::remove(db + tail);
    }
    storage = std::make_shared<storage::SqliteStorage>(db);
  }

  const search::SearchSpace space = qsearch::bench::mase_space();
  const int64_t study =
      storage->create_study("bench", {Direction::kMaximize, Direction::kMinimize}, space, false,
                            {{"search_config", "{\"sampler\": \"tpe\", \"n_trials\": 2000}"}});

  // The sampled configuration user attr, as qsearch's objective writes it: every field at 8.
  std::string sampled = "{", node;
  for (const auto& p : space) {
    const size_t cut = p.name.find("/config/");
    const std::string n = p.name.substr(0, cut), f = p.name.substr(cut + 8);
    if (n != node) {
      if (!node.empty()) sampled += "\"bypass\": false}, ";
      sampled += "\"" + n + "\": {\"name\": \"integer\", ";
      node = n;
    }
    sampled += "\"" + f + "\": 8, ";
  }
  sampled += "\"bypass\": false}, \"default\": {\"name\": \"NA\"}}";

  std::vector<double> wall(trials), cpu(trials);
  for (int i = 0; i < trials; ++i) {
    const double w0 = wall_seconds(), c0 = cpu_seconds();
    auto t = storage->create_trial(
        study,
        [&](const std::vector<FrozenTrial>& h) -> std::optional<std::vector<double>> {
          std::vector<double> p(space.size());
          size_t k = h.size();
          for (size_t j = 0; j < p.size(); ++j) {
            const auto card = static_cast<size_t>(space[j].dist.cardinality());
            p[j] = static_cast<double>(k % card);
            k /= card;
          }
          return p;
        },
        {{"worker", "benchhost:12345"}});
    const double acc = 0.9 + 1e-5 * i;
    storage->finish_trial(
        t->id, TrialState::kComplete, {acc, 6.5},
        {{"software_metrics", "{\"loss\": 0.31, \"accuracy\": " + std::to_string(acc) + "}"},
         {"hardware_metrics", "{\"average_bitwidth\": 6.5, \"memory_density\": 4.92}"},
         {"scaled_metrics", "{\"accuracy\": " + std::to_string(acc) +
                                ", \"average_bitwidth\": "
                                "1.3}"},
         {"sampled_config", sampled}},
        {});
    wall[i] = wall_seconds() - w0;
    cpu[i] = cpu_seconds() - c0;
  }
  auto mean_us = [&](const std::vector<double>& v, int from, int to) {
    double s = 0;
    for (int i = from; i < to; ++i) s += v[i];
    return 1e6 * s / std::max(1, to - from);
  };
  const int k = std::min(100, trials);
  std::printf(
      "{\"storage\": \"%s\", \"trials\": %d, \"params\": %zu, \"wall_us\": %.1f, \"cpu_us\": "
      "%.1f, \"first100_wall_us\": %.1f, \"last100_wall_us\": %.1f, \"first100_cpu_us\": %.1f, "
      "\"last100_cpu_us\": %.1f}\n",
      memory             ? "memory"
      : db == ":memory:" ? "sqlite-memory"
                         : "sqlite-file",
      trials, space.size(), mean_us(wall, 0, trials), mean_us(cpu, 0, trials), mean_us(wall, 0, k),
      mean_us(wall, trials - k, trials), mean_us(cpu, 0, k), mean_us(cpu, trials - k, trials));
  return 0;
}
