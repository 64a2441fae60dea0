// bench-deps: search
//
// Sampler overhead per trial (issue 5): qsearch's samplers on MASE's kind of space, in memory,
// with a trivial objective. Mirrors bench/optuna_sampler.py; bench/run_sampler_overhead.sh runs
// both and writes the table for BENCHMARKS.md.
//
// Space: one index parameter int[0, len - 1] per flattened node/config/field key, 3 nodes x 6
// fields with 2-4 choices = 18 params (MASE's suggest_int per key); objectives (accuracy max,
// average bitwidth min) as trivial arithmetic on the indices.
//
// Modes (one JSON line per measurement):
//   full run:  --trials N --samplers random,tpe [--objectives 2] [--history-out FILE]
//              [--qsearch-tpe-defaults] (TPE with qsearch's defaults instead of Optuna's)
//              overhead_ms = (wall - objective time) / N; last100_overhead_ms = the same over
//              the last 100 trials (from trial completion times); cpu_overhead_ms uses process
//              CPU time instead of wall time (less sensitive to other load on the machine).
//   prefilled: --prefill FILE --prefill-count M --timed K --samplers tpe
//              loads the first M trials of FILE (written by --history-out) into a new study and
//              times K more trials: the per-trial cost at a history of M trials.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mase_space.h"
#include "search/memory_storage.h"
#include "search/study.h"

using namespace qsearch::search;

namespace {

using qsearch::bench::mase_space;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

std::vector<double> trivial(const std::vector<double>& idx, int n_objectives) {
  double acc = 0, bits = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    acc += (i + 1) * idx[i];
    bits += idx[i];
  }
  std::vector<double> v{acc / 100.0, bits / idx.size()};
  v.resize(n_objectives);
  return v;
}

std::vector<Direction> directions(int n) {
  std::vector<Direction> d{Direction::kMaximize, Direction::kMinimize};
  d.resize(n);
  return d;
}

struct Measurement {
  double total_s = 0, objective_s = 0, cpu_s = 0;
  std::vector<double> finished_at, objective_at;
};

Measurement run_trials(Study& study, int trials, int n_objectives) {
  Measurement m;
  const double t0 = now_s(), c0 = cpu_s();
  study.optimize(
      [&](const FrozenTrial& t) {
        const double s = now_s();
        ObjectiveResult r{trivial(t.params, n_objectives), {}};
        const double dt = now_s() - s;
        m.objective_s += dt;
        m.objective_at.push_back(dt);
        return r;
      },
      {.n_trials = static_cast<int>(study.trials().size()) + trials,
       .on_trial_finished = [&](const FrozenTrial&) { m.finished_at.push_back(now_s()); }});
  m.total_s = now_s() - t0;
  m.cpu_s = cpu_s() - c0;
  return m;
}

void print(const char* mode, const std::string& sampler, int n_objectives, int history, int trials,
           const Measurement& m) {
  const int last = std::min(100, trials - 1);
  double last_obj = 0;
  for (int i = trials - last; i < trials; ++i) last_obj += m.objective_at[i];
  const double last_span = m.finished_at[trials - 1] - m.finished_at[trials - 1 - last];
  std::printf(
      "{\"impl\": \"qsearch\", \"mode\": \"%s\", \"sampler\": \"%s\", \"objectives\": %d, "
      "\"history\": %d, \"trials\": %d, \"total_s\": %.6f, \"objective_s\": %.6f, "
      "\"overhead_ms\": %.6f, \"cpu_overhead_ms\": %.6f, \"last100_overhead_ms\": %.6f}\n",
      mode, sampler.c_str(), n_objectives, history, trials, m.total_s, m.objective_s,
      (m.total_s - m.objective_s) / trials * 1e3, (m.cpu_s - m.objective_s) / trials * 1e3,
      (last_span - last_obj) / last * 1e3);
  std::fflush(stdout);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 1000, n_objectives = 2, prefill_count = 990, timed = 10;
  uint64_t seed = 0;
  std::string samplers = "random,tpe", history_out, prefill;
  bool qsearch_defaults = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--trials")
      trials = std::stoi(next());
    else if (a == "--samplers")
      samplers = next();
    else if (a == "--objectives")
      n_objectives = std::stoi(next());
    else if (a == "--seed")
      seed = std::stoull(next());
    else if (a == "--history-out")
      history_out = next();
    else if (a == "--prefill")
      prefill = next();
    else if (a == "--prefill-count")
      prefill_count = std::stoi(next());
    else if (a == "--timed")
      timed = std::stoi(next());
    else if (a == "--qsearch-tpe-defaults")
      qsearch_defaults = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--trials N] [--samplers random,tpe] [--objectives 1|2] [--seed S]\n"
                   "          [--history-out FILE] | --prefill FILE [--prefill-count M] "
                   "[--timed K] [--qsearch-tpe-defaults]\n",
                   argv[0]);
      return 2;
    }
  }
  const SearchSpace space = mase_space();
  // Optuna's TPESampler() defaults (univariate, no constant liar; and no frozen-model escape),
  // which is what the Optuna side of this benchmark runs; --qsearch-tpe-defaults: qsearch's own
  // (multivariate, constant liar, escape), what `qsearch search` uses.
  const SamplerOptions options =
      qsearch_defaults
          ? SamplerOptions{.seed = seed}
          : SamplerOptions{
                .seed = seed, .multivariate = false, .constant_liar = false, .stall_window = 0};
  for (const std::string& name : split(samplers)) {
    auto storage = std::make_shared<InMemoryStorage>();
    if (prefill.empty()) {
      Study study = Study::create(storage, "bench", directions(n_objectives), space,
                                  make_sampler(name, options));
      const Measurement m = run_trials(study, trials, n_objectives);
      print("full", name, n_objectives, 0, trials, m);
      if (!history_out.empty() && name == "tpe") {
        std::ofstream out(history_out);
        for (const FrozenTrial& t : study.trials()) {
          for (size_t i = 0; i < t.params.size(); ++i) out << (i ? " " : "") << t.params[i];
          out << "\n";
        }
      }
      continue;
    }
    // Prefilled: the first M configurations of FILE, with their (recomputed) values.
    Study study = Study::create(storage, "bench", directions(n_objectives), space,
                                make_sampler(name, options));
    std::ifstream in(prefill);
    std::string line;
    int loaded = 0;
    while (loaded < prefill_count && std::getline(in, line)) {
      std::istringstream ls(line);
      std::vector<double> params;
      for (double x; ls >> x;) params.push_back(x);
      auto t = storage->create_trial(study.info().id, [&](const std::vector<FrozenTrial>&) {
        return std::optional<std::vector<double>>(params);
      });
      storage->finish_trial(t->id, TrialState::kComplete, trivial(params, n_objectives), {}, {});
      ++loaded;
    }
    if (loaded < prefill_count) {
      std::fprintf(stderr, "%s has only %d trials\n", prefill.c_str(), loaded);
      return 1;
    }
    const Measurement m = run_trials(study, timed, n_objectives);
    print("prefilled", name, n_objectives, loaded, timed, m);
  }
  return 0;
}
