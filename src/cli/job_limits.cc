#include "cli/job_limits.h"

#include <fmt/format.h>

#include <algorithm>

namespace qsearch::cli {

JobLimit cap_jobs(int requested, int64_t trials_left, int64_t configurations,
                  int hardware_threads) {
  JobLimit out{requested, ""};
  auto cap = [&](int64_t limit, const std::string& why) {
    limit = std::max<int64_t>(1, limit);
    if (limit < out.jobs) {
      out.jobs = static_cast<int>(limit);
      out.note = fmt::format("n_jobs {} capped to {}: {}", requested, out.jobs, why);
    }
  };
  if (hardware_threads > 0) {
    const int64_t sensible = static_cast<int64_t>(kJobsPerHardwareThread) * hardware_threads;
    cap(sensible, fmt::format("{} per hardware thread ({} here); more concurrent trials only "
                              "compete for the cores",
                              kJobsPerHardwareThread, hardware_threads));
  }
  if (configurations >= 0) {
    cap(configurations, fmt::format("brute force has {} configuration(s) left", configurations));
  }
  if (trials_left >= 0)
    cap(trials_left, fmt::format("n_trials leaves {} trial(s) to run", trials_left));
  return out;
}

}  // namespace qsearch::cli
