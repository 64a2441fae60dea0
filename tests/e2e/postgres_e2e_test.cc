// End to end on PostgreSQL (issue 10, part 2): many `qsearch search` processes sharing one study
// through `--storage postgresql://...` on a throwaway cluster (tests/support/pg_cluster.h).
// Eight workers, two of them SIGKILLed mid-trial: the study ends with exactly the requested
// COMPLETE trials, dense numbers, no configuration evaluated twice under brute force, and every
// killed trial reclaimed by heartbeat and re-run. A search resumes and `qsearch report` reads
// the study; Optuna's Python API reads it and adds a trial qsearch reads back; connection errors
// are one line with the password hidden. Skipped only when the PostgreSQL server binaries are
// absent (the Optuna test also when /usr/bin/python3 lacks optuna or psycopg2).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "e2e/e2e_util.h"
#include "search/trial.h"
#include "storage/storage_url.h"
#include "support/pg_cluster.h"

namespace qsearch::e2e {
namespace {

using search::FrozenTrial;
using search::TrialState;

// Starts `[prefix] qsearch <args>` from the source directory with stderr to err_path; returns
// its pid (the prefix must exec, so the pid stays qsearch's).
pid_t spawn(const std::string& prefix, const std::string& args, const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(source_dir().c_str()) != 0) ::_exit(127);
    ::execl(
        "/bin/sh", "sh", "-c",
        ("exec " + prefix + "'" + bin() + "' " + args + " >/dev/null 2>'" + err_path + "'").c_str(),
        static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// The trials of the one study at `url` (none while it does not exist yet).
std::vector<FrozenTrial> trials_at(search::Storage& s) {
  auto names = s.study_names();
  if (names.size() != 1) return {};
  return s.get_trials(*s.find_study(names[0]));
}

// Python's repr() of a float (the shortest text that reads back exactly, "1.0" not "1").
std::string py_repr(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".ein") == std::string::npos) s += ".0";
  return s;
}

class PostgresE2E : public test::PgDatabaseTest {};

// fc1..fc3 of the MNIST MLP, data_in [4, 8] x weight [2, 4, 8] each: 216 configurations.
std::string mlp_config(int num_samples, const std::string& setup) {
  return mlp_by_name_config(num_samples, "", setup);
}

TEST_F(PostgresE2E, EightWorkersTwoKilledMidTrialEndWithExactlyTheRequestedTrials) {
  ScratchDir dir("pg_kill");
  const std::string cfg =
      write(dir, "c.toml", mlp_config(10000, "heartbeat_interval = 0.1\ngrace_period = 1.0\n"));
  constexpr int kWorkers = 8, kTrials = 80;
  const std::string args = "search --config " + cfg + " --sampler bruteforce --trials " +
                           std::to_string(kTrials) + " --storage '" + url_ + "' --study shared";
  // Workers 0 and 1 (the ones killed) run under another host name (a UTS namespace, when we may
  // make one: root) so that, as on a separate machine, only their missing heartbeats can tell
  // the others that they died; the same-host dead-pid check cannot.
  const std::string wrap =
      write(dir, "as_host.sh", "#!/bin/sh\nhostname \"$1\" || exit 97\nshift\nexec \"$@\"\n");
  fs::permissions(wrap, fs::perms::owner_all);
  int unshare_status = -1;
  test::run_capture("unshare --uts " + wrap + " qsearch-probe true 2>/dev/null", &unshare_status);
  const bool remote = unshare_status == 0;
  const std::string remote_host = "qsearch-e2e-remote";
  std::vector<pid_t> pids;
  for (int w = 0; w < kWorkers; ++w) {
    const std::string prefix =
        remote && w < 2 ? "unshare --uts " + wrap + " " + remote_host + " " : "";
    pids.push_back(spawn(prefix, args + " --out " + (dir / ("out" + std::to_string(w))),
                         dir / ("err" + std::to_string(w))));
  }
  auto err_of = [&](int w) { return read_file(dir / ("err" + std::to_string(w))); };

  // Every worker has opened the study and started a trial: the killed workers' trials can then
  // only be reclaimed by heartbeat (the same-host dead-pid check runs when a study is opened),
  // as on separate machines.
  auto storage = storage::open_storage(url_, storage::Access::kCreate);
  auto started = [&] {
    std::set<std::string> workers;
    for (const FrozenTrial& t : trials_at(*storage)) {
      auto it = t.system_attrs.find(search::kAttrWorker);
      if (it != t.system_attrs.end()) workers.insert(it->second);
    }
    return workers;
  };
  for (int attempt = 0; attempt < 60000 && started().size() < kWorkers; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(started().size(), static_cast<size_t>(kWorkers))
      << "not every worker started a trial: " << err_of(0);

  // Kill workers 0 and 1 while each runs a trial: stop it, check that it has a RUNNING trial,
  // then SIGKILL (else let it go on and look again).
  std::map<int, FrozenTrial> killed;  // worker -> the trial it was running
  for (int w = 0; w < 2; ++w) {
    const std::string me = (remote ? remote_host : hostname()) + ":" + std::to_string(pids[w]);
    for (int attempt = 0; attempt < 20000 && !killed.count(w); ++attempt) {
      ::kill(pids[w], SIGSTOP);
      for (const FrozenTrial& t : trials_at(*storage)) {
        auto it = t.system_attrs.find(search::kAttrWorker);
        if (t.state == TrialState::kRunning && it != t.system_attrs.end() && it->second == me) {
          ::kill(pids[w], SIGKILL);
          killed.emplace(w, t);
          break;
        }
      }
      if (!killed.count(w)) {
        ::kill(pids[w], SIGCONT);
        int status = 0;
        ASSERT_NE(::waitpid(pids[w], &status, WNOHANG), pids[w])
            << "worker " << w << " ended before it could be killed mid-trial: " << err_of(w);
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
      }
    }
    ASSERT_TRUE(killed.count(w)) << "worker " << w << " never seen mid-trial";
  }
  EXPECT_EQ(wait_exit_code(pids[0]), 128 + SIGKILL);
  EXPECT_EQ(wait_exit_code(pids[1]), 128 + SIGKILL);
  for (int w = 2; w < kWorkers; ++w) EXPECT_EQ(wait_exit_code(pids[w]), 0) << err_of(w);

  const std::vector<FrozenTrial> trials = trials_at(*storage);
  ASSERT_FALSE(trials.empty());
  int complete = 0;
  std::set<std::vector<double>> complete_params;
  for (size_t i = 0; i < trials.size(); ++i) {
    const FrozenTrial& t = trials[i];
    EXPECT_EQ(t.number, static_cast<int64_t>(i)) << "numbers must be dense and unique";
    EXPECT_TRUE(t.state == TrialState::kComplete || t.interrupted())
        << "trial " << t.number << " is " << search::to_string(t.state);
    if (t.state == TrialState::kComplete) {
      ++complete;
      EXPECT_TRUE(complete_params.insert(t.params).second)
          << "brute force evaluated a configuration twice (trial " << t.number << ")";
    }
  }
  EXPECT_EQ(complete, kTrials);
  for (const auto& [w, running] : killed) {
    const FrozenTrial& t = trials.at(running.number);
    EXPECT_EQ(t.state, TrialState::kFail) << "worker " << w << "'s trial " << t.number;
    EXPECT_TRUE(t.interrupted());
    // Not root: the killed workers shared our host name, so the dead-pid check may be first.
    const std::string reason = t.system_attrs.at(search::kAttrFailReason);
    if (remote || reason.find("no longer exists") == std::string::npos) {
      EXPECT_NE(reason.find("no heartbeat"), std::string::npos) << reason;
    }
    int reruns = 0;
    for (const FrozenTrial& u : trials) {
      reruns += u.number > t.number && u.params == t.params && u.state == TrialState::kComplete;
    }
    EXPECT_EQ(reruns, 1) << "the killed trial " << t.number << " must be re-run exactly once";
  }
}

TEST_F(PostgresE2E, ASearchResumesWithoutRepeatingAConfiguration) {
  ScratchDir dir("pg_resume");
  const std::string cfg = write(dir, "c.toml", mlp_config(64, ""));
  const std::string base = "search --config " + cfg + " --sampler bruteforce --storage '" + url_ +
                           "' --study s --quiet --out ";
  Result first =
      run(base.substr(0, base.find(" --quiet")) + " --out " + (dir / "a") + " --trials 3");
  ASSERT_EQ(first.code, 0) << first.err;
  // What a search prints names the study's URL with the password hidden.
  EXPECT_NE(first.err.find(storage::hide_password(url_)), std::string::npos) << first.err;
  EXPECT_EQ(first.err.find("qs%20p%40ss"), std::string::npos) << first.err;
  // Resumed with the URL in the config instead of --storage (setup.storage, setup.study_name).
  const std::string in_config = write(
      dir, "in_config.toml",
      mlp_config(64, "storage = \"" + url_ + "\"\nstudy_name = \"s\"\nsampler = \"bruteforce\"\n"));
  Result second = run("search --config " + in_config + " --quiet --trials 7 --out " + (dir / "b"));
  ASSERT_EQ(second.code, 0) << second.err;
  auto storage = storage::open_storage(url_, storage::Access::kExisting);
  const std::vector<FrozenTrial> trials = trials_at(*storage);
  ASSERT_EQ(trials.size(), 7u);
  std::set<std::vector<double>> distinct;
  for (const FrozenTrial& t : trials) {
    EXPECT_EQ(t.state, TrialState::kComplete);
    distinct.insert(t.params);
  }
  EXPECT_EQ(distinct.size(), 7u) << "the resumed brute force repeated a configuration";

  // qsearch report reads the study from the server too.
  Result report = run("report --out " + (dir / "r") + " --storage '" + url_ + "'");
  EXPECT_EQ(report.code, 0) << report.err;
  EXPECT_NE(report.out.find("Best trial"), std::string::npos) << report.out;
}

// Optuna's Python API (SQLAlchemy + psycopg2) on the same URL reads the study qsearch wrote on
// the server, and a trial Optuna adds there is one qsearch reads back.
TEST_F(PostgresE2E, OptunaReadsAndExtendsTheStudyOnTheServer) {
  if (std::system("/usr/bin/python3 -c 'import optuna, psycopg2' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 lacks optuna or psycopg2 (scripts/setup.sh --bench)";
  }
  ScratchDir dir("pg_optuna");
  const std::string cfg = write(dir, "c.toml", mlp_config(64, ""));
  Result r = run("search --config " + cfg + " --sampler bruteforce --storage '" + url_ +
                 "' --study s --quiet --trials 5 --out " + (dir / "a"));
  ASSERT_EQ(r.code, 0) << r.err;
  auto storage = storage::open_storage(url_, storage::Access::kExisting);
  const std::vector<FrozenTrial> trials = trials_at(*storage);
  ASSERT_EQ(trials.size(), 5u);

  const std::string probe = write(dir, "probe.py", R"py(
import sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="s", storage=sys.argv[1])
print(" ".join(d.name for d in study.directions))
for t in study.trials:
    print(t.number, t.state.name, " ".join(repr(float(v)) for v in t.values),
          "|", " ".join("%s=%r" % (k, float(t.params[k])) for k in sorted(t.params)),
          "|", " ".join(sorted(type(d).__name__ for d in t.distributions.values())))
print("best", " ".join(str(n) for n in sorted(t.number for t in study.best_trials)))
print("dataframe", len(study.trials_dataframe()))
# Optuna adds a trial: the first trial's configuration again, with values of its own.
first = study.trials[0]
study.enqueue_trial(first.params)
trial = study.ask(fixed_distributions=first.distributions)
study.tell(trial, [0.5, 2.0])
)py");
  int status = -1;
  const std::string py =
      test::run_capture("/usr/bin/python3 '" + probe + "' '" + url_ + "' 2>&1", &status);
  ASSERT_EQ(status, 0) << py;
  std::istringstream lines(py);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "MAXIMIZE MINIMIZE") << py;
  const search::StudyInfo info = storage->get_study(*storage->find_study("s"));
  for (const FrozenTrial& t : trials) {
    ASSERT_TRUE(std::getline(lines, line)) << py;
    std::string want = fmt::format("{} COMPLETE", t.number);
    for (double v : t.values) want += fmt::format(" {}", py_repr(v));
    std::vector<std::pair<std::string, double>> params;
    for (size_t k = 0; k < info.space.size(); ++k)
      params.emplace_back(info.space[k].name, t.params[k]);
    std::sort(params.begin(), params.end());
    want += " |";
    for (const auto& [name, value] : params) want += fmt::format(" {}={}", name, py_repr(value));
    EXPECT_EQ(line.substr(0, want.size()), want) << py;
    EXPECT_NE(line.find("| IntDistribution"), std::string::npos) << line;
  }
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line.rfind("best ", 0), 0u) << line;
  EXPECT_NE(line, "best ") << "Optuna sees no best trials";
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line, "dataframe 5");

  // qsearch reads the trial Optuna added, on a fresh connection.
  auto again = storage::open_storage(url_, storage::Access::kExisting);
  const std::vector<FrozenTrial> after = trials_at(*again);
  ASSERT_EQ(after.size(), 6u);
  EXPECT_EQ(after[5].state, TrialState::kComplete);
  EXPECT_EQ(after[5].values, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(after[5].params, trials[0].params);
}

TEST_F(PostgresE2E, ConnectionProblemsAreOneLineErrorsWithThePasswordHidden) {
  ScratchDir dir("pg_errors");
  const std::string cfg = write(dir, "c.toml", mlp_config(64, ""));
  std::string wrong = url_;
  wrong.replace(wrong.find("qs%20p%40ss"), 11, "not%20it%40");
  const std::string down = "postgresql://qsearch:hush@/studies?host=/nonexistent_qsearch_dir";
  struct Case {
    std::string url, says;
  };
  for (const Case& c :
       {Case{wrong, "wrong user name or password"}, Case{down, "not running or not reachable"},
        Case{cluster().url_of("no_such_db"), "createdb"}}) {
    Result r = run("search --config " + cfg + " --trials 1 --out " + (dir / "o") + " --storage '" +
                   c.url + "'");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("qsearch: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(storage::hide_password(c.url)), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not%20it"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("hush"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("qs%20p%40ss"), std::string::npos) << r.err;
    int newlines = 0;
    for (char ch : r.err) newlines += ch == '\n';
    EXPECT_EQ(newlines, 1) << r.err;
  }
  // report never creates study tables in a database that holds none.
  const std::string empty = cluster().create_database();
  Result r = run("report --out " + (dir / "r") + " --storage '" + empty + "'");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("holds no study"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(storage::hide_password(empty)), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qsearch::e2e
