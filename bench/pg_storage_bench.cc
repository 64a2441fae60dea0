// bench-deps: search storage
//
// The study storage's own ceiling (issue 10): trials per second one study sustains when worker
// processes do nothing but create a trial and finish it with a constant objective. Mirrors
// bench/optuna_storage_bench.py (Optuna's RDBStorage, ask/tell with a trivial objective);
// bench/pg_storage_bench.sh runs both on one throwaway PostgreSQL server with 1, 2, 4 and 8
// workers and prints the table for BENCHMARKS.md.
//
// Space: MASE's, as bench/sampler_overhead_bench.cc: 3 nodes x 6 fields with 2-4 choices = 18
// index params (suggest_int per key), one objective. Each trial's params are drawn at random
// (a trivial sampler: the storage is what is measured, not the sampler).
//
//   pg_storage_bench --url URL --study NAME --create            creates the study, then exits
//   pg_storage_bench --url URL --study NAME --trials N [--seed S]
//       opens the study, runs N create + finish cycles, prints one JSON line:
//       {"tool": "qsearch", "trials": N, "start": t0, "end": t1}   (epoch seconds, wall clock,
//       so the driver combines workers: throughput = all trials / (last end - first start))
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "mase_space.h"
#include "search/storage.h"
#include "storage/storage_url.h"

using namespace qsearch;
using namespace qsearch::search;

namespace {

using qsearch::bench::mase_space;

double wall_s() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

[[noreturn]] void usage() {
  std::fprintf(
      stderr,
      "usage: pg_storage_bench --url URL --study NAME (--create | --trials N [--seed S])\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, study;
  bool create = false;
  long trials = -1;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--url") {
      url = next();
    } else if (a == "--study") {
      study = next();
    } else if (a == "--create") {
      create = true;
    } else if (a == "--trials") {
      trials = std::strtol(next().c_str(), nullptr, 10);
    } else if (a == "--seed") {
      seed = static_cast<unsigned>(std::strtoul(next().c_str(), nullptr, 10));
    } else {
      usage();
    }
  }
  if (url.empty() || study.empty() || (!create && trials < 0)) usage();
  try {
    auto storage = storage::open_storage(url, storage::Access::kCreate);
    const SearchSpace space = mase_space();
    const int64_t id = storage->create_study(study, {Direction::kMaximize}, space, true);
    if (create) return 0;
    std::mt19937_64 rng(seed);
    auto decide = [&](const std::vector<FrozenTrial>&) -> std::optional<std::vector<double>> {
      std::vector<double> params;
      params.reserve(space.size());
      for (size_t k = 0; k < space.size(); ++k) {
        params.push_back(static_cast<double>(rng() % space[k].dist.cardinality()));
      }
      return params;
    };
    const double t0 = wall_s();
    for (long k = 0; k < trials; ++k) {
      auto trial = storage->create_trial(id, decide);
      if (!trial) return 3;
      storage->finish_trial(trial->id, TrialState::kComplete, {1.0}, {}, {});
    }
    const double t1 = wall_s();
    std::printf("{\"tool\": \"qsearch\", \"trials\": %ld, \"start\": %.6f, \"end\": %.6f}\n",
                trials, t0, t1);
  } catch (const Error& e) {
    std::fprintf(stderr, "pg_storage_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
