// How many trials `qsearch search` evaluates at once: --jobs / n_jobs, capped to what can be
// useful (issue 8). Each job is a thread evaluating one trial, so more jobs than trials left to
// run, than configurations left (brute force), or than a few per hardware thread only cost
// memory and start-up time; an absurd value (--jobs 40000) used to abort the process.
#pragma once

#include <cstdint>
#include <string>

namespace qsearch::cli {

// At most this many jobs per hardware thread (the trials are CPU bound).
inline constexpr int kJobsPerHardwareThread = 4;

struct JobLimit {
  int jobs = 1;      // what to use
  std::string note;  // why it was capped ("" when jobs == requested)
};

// requested >= 1. trials_left: trials n_trials still allows (< 0: no n_trials). configurations:
// configurations left for brute force (< 0: not brute force). hardware_threads <= 0: unknown.
JobLimit cap_jobs(int requested, int64_t trials_left, int64_t configurations, int hardware_threads);

}  // namespace qsearch::cli
