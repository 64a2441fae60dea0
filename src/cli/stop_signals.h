// SIGINT (Ctrl-C) and SIGTERM during a search: the first one stops the search gracefully, the
// second one aborts it.
//
// - First signal: prints at once "stopping after the running trial(s); press Ctrl-C again to
//   abort" and sets stop_flag(); the search starts no new trial, finishes the running ones and
//   writes its outputs. SIGTERM is handled exactly like the first Ctrl-C.
// - Second signal: prints what was kept (the trials finished before it, all committed to the
//   study database; the running ones are re-run by a resume) and exits at once with 128 + the
//   signal number, without writing the outputs.
//
// One StopSignals at a time per process (the handlers are process-wide); the destructor puts the
// previous handlers back.
#pragma once

#include <atomic>
#include <string>

namespace qsearch::cli {

class StopSignals {
 public:
  // finished_before: finished trials the study held when this run started; kept_where: where
  // they are (e.g. "sqlite:///out/study.db"); resume_hint: how to resume and rewrite outputs.
  StopSignals(int finished_before, const std::string& kept_where, const std::string& resume_hint);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  const std::atomic<bool>* stop_flag() const;
  // Call after each trial this run finished (committed); the second signal reports the count.
  void trial_finished();
  // 0 when no signal came, else the first signal's number (SIGINT or SIGTERM).
  int first_signal() const;
  // The exit status for a search stopped by a signal: 128 + signal (130 for Ctrl-C).
  int exit_code() const { return 128 + first_signal(); }
};

}  // namespace qsearch::cli
