#include "cli/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace qsearch::cli {

namespace {

// Everything the handler touches: lock-free atomics and fixed buffers filled before the
// handlers are installed (only async-signal-safe calls inside the handler).
std::atomic<bool> g_stop{false};
std::atomic<int> g_first_signal{0};
std::atomic<int> g_finished_this_run{0};
int g_finished_before = 0;
char g_kept_where[1024];
char g_resume_hint[1024];
struct sigaction g_old_int, g_old_term;

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

void put(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void put_int(int v) {
  char buf[16];
  int i = sizeof(buf) - 1;
  buf[i] = '\0';
  if (v < 0) v = 0;
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  put(buf + i);
}

void on_signal(int sig) {
  int expected = 0;
  if (g_first_signal.compare_exchange_strong(expected, sig)) {
    g_stop = true;
    put(sig == SIGTERM ? "\nqsearch: SIGTERM: " : "\nqsearch: ");
    put("stopping after the running trial(s); press Ctrl-C again to abort\n");
    return;
  }
  const int this_run = g_finished_this_run.load();
  put("\nqsearch: aborted. Kept: ");
  put_int(g_finished_before + this_run);
  put(" finished trial(s) (");
  put_int(this_run);
  put(" of them from this run), all committed to ");
  put(g_kept_where);
  put("; the running trial(s) were dropped and are re-run when the study resumes. ");
  put(g_resume_hint);
  put("\n");
  ::_exit(128 + sig);
}

void copy_into(char* dst, size_t cap, const std::string& s) {
  const size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

}  // namespace

StopSignals::StopSignals(int finished_before, const std::string& kept_where,
                         const std::string& resume_hint) {
  g_stop = false;
  g_first_signal = 0;
  g_finished_this_run = 0;
  g_finished_before = finished_before;
  copy_into(g_kept_where, sizeof(g_kept_where), kept_where);
  copy_into(g_resume_hint, sizeof(g_resume_hint), resume_hint);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &sa, &g_old_int) != 0 || sigaction(SIGTERM, &sa, &g_old_term) != 0) {
    fail("cannot install the SIGINT/SIGTERM handlers: {}", std::strerror(errno));
  }
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

const std::atomic<bool>* StopSignals::stop_flag() const { return &g_stop; }
void StopSignals::trial_finished() { ++g_finished_this_run; }
int StopSignals::first_signal() const { return g_first_signal.load(); }

}  // namespace qsearch::cli
