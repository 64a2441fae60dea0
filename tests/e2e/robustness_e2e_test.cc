// End to end: what a demanding user does to a search besides running it once (issue 8): several
// processes on one --out, absurd --jobs/--threads, signals, killed workers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "e2e/e2e_util.h"
#include "storage/sqlite_db.h"
#include "storage/sqlite_storage.h"

namespace qsearch::e2e {
namespace {

// Per node data_in [4, 8] x weight [2, 4, 8] for fc1..fc3 of the MNIST MLP: 216 points.
std::string mlp_config(int num_samples, const std::string& extra_setup = "") {
  return mlp_by_name_config(num_samples, "", extra_setup);
}

// Starts `qsearch <args>` from the source directory with stderr to err_path; returns its pid.
pid_t spawn(const std::string& args, const std::string& err_path) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(source_dir().c_str()) != 0) ::_exit(127);
    ::execl("/bin/sh", "sh", "-c",
            ("exec '" + bin() + "' " + args + " >/dev/null 2>'" + err_path + "'").c_str(),
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

// Every trial of study.db appears in log.json and trials.csv with the state it has in study.db.
void expect_outputs_match_study(const std::string& out) {
  auto trials = trials_of(out);
  ASSERT_FALSE(trials.empty());
  auto log = nlohmann::json::parse(read_file(out + "/log.json"));
  ASSERT_EQ(log.size(), trials.size());
  for (const auto& t : trials) {
    const auto& row = log[std::to_string(t.number)];
    EXPECT_EQ(row["state"].get<std::string>(), search::to_string(t.state))
        << "log.json trial " << t.number;
  }
  std::istringstream csv(read_file(out + "/trials.csv"));
  std::string line;
  std::getline(csv, line);  // the header
  int rows = 0, running_rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    running_rows += line.find(",RUNNING,") != std::string::npos;
  }
  EXPECT_EQ(rows, static_cast<int>(trials.size()));
  EXPECT_EQ(running_rows, 0);
  std::set<int> best_numbers;
  const auto best = nlohmann::json::parse(read_file(out + "/best.json"));
  for (const auto& [k, row] : best.items()) {
    best_numbers.insert(row["number"].get<int>());
    EXPECT_EQ(trials[row["number"].get<int>()].state, search::TrialState::kComplete);
  }
  EXPECT_FALSE(best_numbers.empty());
}

TEST(RobustnessE2E, ProcessesSharingOneOutDirLeaveOutputsWithEveryCommittedTrial) {
  ScratchDir dir("shared_out");
  const std::string cfg = write(dir, "c.toml", mlp_config(64));
  // Several rounds, each on a fresh --out: the race (a process renaming files it read before
  // another process's last commit) needs unlucky timing, so give it several chances.
  for (int round = 0; round < 4; ++round) {
    const std::string out = dir / ("out" + std::to_string(round));
    const int n_trials = 24 * (round + 1);
    std::vector<pid_t> pids;
    for (int p = 0; p < 4; ++p) {
      pids.push_back(spawn("search --config " + cfg + " --sampler bruteforce --trials " +
                               std::to_string(n_trials) + " --out " + out,
                           dir / ("err" + std::to_string(p))));
    }
    for (size_t p = 0; p < pids.size(); ++p) {
      EXPECT_EQ(wait_exit_code(pids[p]), 0) << read_file(dir / ("err" + std::to_string(p)));
    }
    auto trials = trials_of(out);
    ASSERT_EQ(trials.size(), static_cast<size_t>(n_trials));
    for (const auto& t : trials) ASSERT_EQ(t.state, search::TrialState::kComplete);
    expect_outputs_match_study(out);
    EXPECT_TRUE(fs::exists(out + "/.qsearch.lock"));
    // No temporary files left behind.
    for (const auto& e : fs::directory_iterator(out)) {
      EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    }
  }
}

TEST(RobustnessE2E, AbsurdJobsAreCappedWithANote) {
  ScratchDir dir("jobs_cap");
  const std::string cfg = write(dir, "c.toml", mlp_config(64));
  Result r = run("search --config " + cfg + " --sampler bruteforce --trials 3 --jobs 40000 --out " +
                 (dir / "a"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("note: n_jobs 40000 capped to 3: n_trials leaves 3 trial(s) to run"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(trials_of(dir / "a").size(), 3u);
  EXPECT_TRUE(fs::exists(dir.path() / "a" / "best.json"));

  // Without n_trials: capped per hardware thread (and by brute force's 216 configurations).
  r = run("search --config " + cfg + " --sampler bruteforce --timeout 0.001 --jobs 40000 --out " +
          (dir / "b"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("note: n_jobs 40000 capped to "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("per hardware thread"), std::string::npos) << r.err;
}

TEST(RobustnessE2E, ThreadsBeyondWhatTheSystemStartsIsAClearError) {
  ScratchDir dir("threads");
  const std::string cfg = write(dir, "c.toml", mlp_config(64));
  // A 2 GB address space holds a few hundred 8 MB thread stacks, not 100000.
  const std::string cmd = "cd '" + source_dir() + "' && ulimit -v 2000000 && '" + bin() +
                          "' --threads 100000 search --config " + cfg + " --trials 1 --out " +
                          (dir / "out") + " 2>'" + (dir / "err") + "'";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << read_file(dir / "err");
  EXPECT_EQ(WEXITSTATUS(status), 1) << read_file(dir / "err");
  const std::string err = read_file(dir / "err");
  EXPECT_NE(err.find("qsearch: error: --threads 100000: the system could start only "),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("terminate"), std::string::npos) << err;
}

// Slow trials (LeNet-5 on 10000 MNIST images in fake mode) so that signals arrive mid-trial.
std::string slow_config(const std::string& setup = "") {
  return R"(
model = "models/lenet5_mnist.onnx"
dataset = "mnist"
batch_size = 500
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["integer"]
data_in_width = [4, 6, 8]
weight_width = [2, 4, 8]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 10000
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
)" + setup +
         R"(
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
)";
}

// Polls until `pred` holds or the child exits; true when pred held while the child was alive.
template <class Pred>
bool wait_while_alive(pid_t pid, Pred pred) {
  for (int i = 0; i < 120000; ++i) {
    if (pred()) return true;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

int complete_trials(const std::string& out) {
  if (!fs::exists(out + "/study.db")) return 0;
  try {
    int n = 0;
    for (const auto& t : trials_of(out)) n += t.state == search::TrialState::kComplete;
    return n;
  } catch (const std::exception&) {
    return 0;  // the database may be mid-creation
  }
}

TEST(RobustnessE2E, SigtermStopsLikeTheFirstCtrlC) {
  ScratchDir dir("sigterm");
  const std::string cfg = write(dir, "c.toml", slow_config());
  const std::string out = dir / "out", err = dir / "err";
  pid_t pid = spawn("search --config " + cfg + " --mode fake --trials 200 --out " + out, err);
  ASSERT_TRUE(wait_while_alive(pid, [&] { return complete_trials(out) >= 1; })) << read_file(err);
  ::kill(pid, SIGTERM);
  // The message comes at once, while the running trial still runs.
  EXPECT_TRUE(wait_while_alive(pid, [&] {
    return read_file(err).find(
               "stopping after the running trial(s); press Ctrl-C again to "
               "abort") != std::string::npos;
  })) << read_file(err);
  const int code = wait_exit_code(pid);
  const std::string text = read_file(err);
  EXPECT_EQ(code, 128 + SIGTERM) << text;
  EXPECT_NE(text.find("stopped by SIGTERM"), std::string::npos) << text;
  // The running trial was finished and recorded, and the outputs were written.
  for (const auto& t : trials_of(out)) EXPECT_EQ(t.state, search::TrialState::kComplete);
  expect_outputs_match_study(out);
}

TEST(RobustnessE2E, SecondCtrlCAbortsAndSaysWhatWasKept) {
  ScratchDir dir("sigint2");
  const std::string cfg = write(dir, "c.toml", slow_config());
  const std::string out = dir / "out", err = dir / "err";
  pid_t pid = spawn("search --config " + cfg + " --mode fake --trials 200 --out " + out, err);
  ASSERT_TRUE(wait_while_alive(pid, [&] { return complete_trials(out) >= 1; })) << read_file(err);
  ::kill(pid, SIGINT);
  ASSERT_TRUE(wait_while_alive(pid, [&] {
    return read_file(err).find("press Ctrl-C again to abort") != std::string::npos;
  })) << read_file(err);
  ::kill(pid, SIGINT);
  const int code = wait_exit_code(pid);
  const std::string text = read_file(err);
  EXPECT_EQ(code, 128 + SIGINT) << text;
  const int kept = complete_trials(out);
  EXPECT_NE(text.find("qsearch: aborted. Kept: " + std::to_string(kept) + " finished trial(s)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("committed to sqlite:///" + out + "/study.db"), std::string::npos) << text;
}

// Stops `pid` (SIGSTOP) while it runs a trial and holds neither the database's write lock nor
// the output lock, so that it stands for a hung worker; returns the trial it was running.
std::optional<search::FrozenTrial> freeze_mid_trial(pid_t pid, const std::string& out) {
  for (int attempt = 0; attempt < 2000; ++attempt) {
    ::kill(pid, SIGSTOP);
    bool free = true;
    try {
      storage::SqliteConnection db(out + "/study.db", 0);
      db.exec("BEGIN IMMEDIATE");
      db.exec("ROLLBACK");
    } catch (const std::exception&) {
      free = false;
    }
    int fd = ::open((out + "/.qsearch.lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd >= 0) {
      free = free && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
      ::close(fd);
    }
    if (free) {
      for (const auto& t : trials_of(out)) {
        if (t.state == search::TrialState::kRunning) return t;
      }
    }
    ::kill(pid, SIGCONT);
    std::this_thread::sleep_for(std::chrono::milliseconds(7));
  }
  return std::nullopt;
}

TEST(RobustnessE2E, AHungWorkersTrialIsReclaimedAndRerunByAnotherProcess) {
  ScratchDir dir("reclaim");
  const std::string cfg =
      write(dir, "c.toml", slow_config("heartbeat_interval = 0.1\ngrace_period = 1.0\n"));
  const std::string out = dir / "out", err_a = dir / "err_a";
  const std::string args =
      "search --config " + cfg + " --mode fake --sampler bruteforce --trials 5 --out " + out;
  pid_t a = spawn(args, err_a);
  ASSERT_TRUE(wait_while_alive(a, [&] { return complete_trials(out) >= 1; })) << read_file(err_a);
  std::optional<search::FrozenTrial> hung = freeze_mid_trial(a, out);
  ASSERT_TRUE(hung) << read_file(err_a);

  // Another process on the same study: reclaims the silent trial, re-runs its configuration,
  // and only then reports n_trials reached.
  Result b = run(args);
  ::kill(a, SIGCONT);
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("n_trials reached"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("reclaimed 1 trial(s) of silent workers"), std::string::npos) << b.err;
  auto trials = trials_of(out);
  const auto& reclaimed = trials[hung->number];
  EXPECT_EQ(reclaimed.state, search::TrialState::kFail);
  EXPECT_TRUE(reclaimed.interrupted());
  EXPECT_NE(reclaimed.system_attrs.at(search::kAttrFailReason).find("no heartbeat"),
            std::string::npos);
  int complete = 0, rerun = 0;
  for (const auto& t : trials) {
    EXPECT_TRUE(t.state == search::TrialState::kComplete || t.interrupted()) << t.number;
    complete += t.state == search::TrialState::kComplete;
    rerun += t.number > hung->number && t.params == hung->params &&
             t.state == search::TrialState::kComplete;
  }
  EXPECT_EQ(complete, 5);
  EXPECT_EQ(rerun, 1);

  // The hung worker wakes up: its late result is dropped, it stops cleanly, and the outputs
  // left behind have every trial.
  EXPECT_EQ(wait_exit_code(a), 0) << read_file(err_a);
  EXPECT_NE(read_file(err_a).find("1 result(s) dropped"), std::string::npos) << read_file(err_a);
  EXPECT_EQ(trials_of(out).size(), trials.size());
  expect_outputs_match_study(out);
}

TEST(RobustnessE2E, HeartbeatSettingsThatWouldReclaimLiveTrialsAreRefused) {
  ScratchDir dir("heartbeat_cfg");
  const std::string cfg =
      write(dir, "c.toml", mlp_config(64, "heartbeat_interval = 5\ngrace_period = 2\n"));
  Result r = run("search --config " + cfg + " --trials 1 --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("c.toml: [search.strategy.setup] heartbeat_interval = 5 and grace_period = "
                       "2"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "study.db"));
}

}  // namespace
}  // namespace qsearch::e2e
