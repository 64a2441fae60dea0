// End to end: `qsearch search` on MNIST with the PyTorch-exported MLP fixture, the way a user
// runs it (issue 5's "Done when").
#include <gtest/gtest.h>
#include <signal.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/e2e_util.h"
#include "search/multi_objective.h"
#include "storage/sqlite_storage.h"

namespace qsearch::e2e {
namespace {

// MASE's jsc_toy_by_type.toml search space on the MLP: one linear seed tied by type, 18 points.
std::string by_type_config(const std::string& extra_setup = "") {
  return std::string(R"(
model = "tests/fixtures/torch/mlp_opset13.onnx"
dataset = "mnist"
batch_size = 256
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [4, 8]
data_in_frac_width = ["NA"]
weight_width = [2, 4, 8]
weight_frac_width = ["NA"]
bias_width = [2, 4, 8]
bias_frac_width = ["NA"]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 512
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
sum_scaled_metrics = false
)") + extra_setup +
         R"(
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 0.2
average_bitwidth.direction = "minimize"
)";
}

// Per node data_in [4, 8] x weight [2, 4, 8] for fc1..fc3: 216 points.
std::string by_name_config() { return mlp_by_name_config(2048); }

std::set<std::vector<double>> distinct_params(const std::vector<search::FrozenTrial>& ts,
                                              search::TrialState state) {
  std::set<std::vector<double>> s;
  for (const auto& t : ts) {
    if (t.state == state) s.insert(t.params);
  }
  return s;
}

TEST(SearchE2E, BruteForceRunsEachConfigurationOnceAndReportsItsParetoFront) {
  ScratchDir dir("bruteforce");
  std::string cfg =
      write(dir, "c.toml", by_type_config("sampler = \"bruteforce\"\nn_trials = 100\n"));
  Result r = run("search --config " + cfg + " --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("search space exhausted"), std::string::npos) << r.err;
  auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 18u);  // stops by itself although n_trials = 100
  EXPECT_EQ(distinct_params(trials, search::TrialState::kComplete).size(), 18u);

  // best.json holds exactly the Pareto front of all 18 results.
  std::vector<search::Direction> dirs = {search::Direction::kMaximize,
                                         search::Direction::kMinimize};
  search::Points pts(2);
  for (const auto& t : trials) pts.push_back(search::to_loss(t.values, dirs));
  std::set<int> want;
  for (int i : search::pareto_front(pts)) want.insert(trials[i].number);
  auto best = nlohmann::json::parse(read_file(dir.path() / "out" / "best.json"));
  std::set<int> got;
  for (auto& [k, row] : best.items()) got.insert(row["number"].get<int>());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(want.empty());
  // The MASE table is printed and the other outputs exist.
  EXPECT_NE(r.out.find("Best trial(s):"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "log.json"));
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "trials.csv"));

  // `qsearch report` prints the same table again from the database.
  Result rep = run("report --out " + (dir / "out"));
  ASSERT_EQ(rep.code, 0) << rep.err;
  EXPECT_EQ(rep.out, r.out);
}

TEST(SearchE2E, ParallelJobsNeverDuplicateABruteForceConfiguration) {
  ScratchDir dir("jobs");
  std::string cfg = write(dir, "c.toml", by_type_config("sampler = \"bruteforce\"\n"));
  Result r = run("search --config " + cfg + " --jobs 3 --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  auto trials = trials_of(dir / "out");
  EXPECT_EQ(trials.size(), 18u);
  EXPECT_EQ(distinct_params(trials, search::TrialState::kComplete).size(), 18u);
}

// The configuration columns (node/config/field indices) of each trials.csv row.
std::vector<std::string> csv_configurations(const std::string& csv) {
  std::istringstream in(csv);
  std::string line;
  std::vector<std::string> rows;
  std::vector<bool> is_param;
  auto cells = [](const std::string& l) {
    std::vector<std::string> c(1);
    for (char ch : l) {
      if (ch == ',') {
        c.emplace_back();
      } else {
        c.back() += ch;
      }
    }
    return c;
  };
  while (std::getline(in, line)) {
    const std::vector<std::string> c = cells(line);
    if (is_param.empty()) {
      for (const std::string& h : c) {
        is_param.push_back(h.find("/config/") != std::string::npos &&
                           h.find(":value") == std::string::npos);
      }
      continue;
    }
    std::string key;
    for (size_t k = 0; k < c.size() && k < is_param.size(); ++k) {
      if (is_param[k]) key += c[k] + ";";
    }
    rows.push_back(key);
  }
  return rows;
}

// Issue 9 item 1: TPE on an 18-point space with more trials than points: every configuration
// once (trials.csv has no two rows with the same configuration), then the study is exhausted.
TEST(SearchE2E, TpeNeverEvaluatesAConfigurationTwice) {
  ScratchDir dir("tpe_dedup");
  std::string cfg = write(dir, "c.toml",
                          by_type_config("sampler = \"tpe\"\nn_trials = 40\nseed = 3\n"
                                         "n_startup_trials = 4\n"));
  Result r = run("search --config " + cfg + " --jobs 2 --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("search space exhausted"), std::string::npos) << r.err;
  const std::vector<std::string> rows =
      csv_configurations(read_file(dir.path() / "out" / "trials.csv"));
  EXPECT_EQ(rows.size(), 18u);
  EXPECT_EQ(std::set<std::string>(rows.begin(), rows.end()).size(), rows.size());
  EXPECT_FALSE(rows.empty() || rows[0].empty());
}

// Two processes sharing one study (and --out) never evaluate a configuration twice either: the
// check is inside the storage's atomic create_trial. Each asks for 40 trials of the 18.
TEST(SearchE2E, ProcessesSharingAStudyNeverEvaluateAConfigurationTwice) {
  ScratchDir dir("dedup_procs");
  std::string cfg = write(dir, "c.toml",
                          by_type_config("sampler = \"tpe\"\nn_trials = 40\n"
                                         "n_startup_trials = 3\n"));
  const std::string out = dir / "out";
  Result a, b;
  std::thread ta([&] { a = run("search --config " + cfg + " --jobs 2 --quiet --out " + out); });
  std::thread tb([&] { b = run("search --config " + cfg + " --jobs 2 --quiet --out " + out); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  auto trials = trials_of(out);
  EXPECT_EQ(trials.size(), 18u);
  std::set<std::vector<double>> configs;
  for (const auto& t : trials) configs.insert(t.params);
  EXPECT_EQ(configs.size(), 18u);
}

// Issue 9 item 2: TPE's options reach the sampler from the config and from flags. TPE's
// start-up trials are exactly random's draws with the same seed, so with n_startup_trials = 12
// its first 12 trials equal random's; with the default 10, trials 10 and 11 come from the model.
TEST(SearchE2E, TpeOptionsFromTheConfigAndFlagsReachTheSampler) {
  ScratchDir dir("tpe_options");
  auto params_of = [&](const std::string& name, const std::string& setup,
                       const std::string& flags) {
    std::string cfg =
        write(dir, name + ".toml", by_type_config("n_trials = 12\nseed = 4\n" + setup));
    Result r = run("search --config " + cfg + " " + flags + " --out " + (dir / name));
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<std::vector<double>> p;
    for (const auto& t : trials_of(dir / name)) p.push_back(t.params);
    EXPECT_EQ(p.size(), 12u);
    return p;
  };
  const auto random = params_of("random", "sampler = \"random\"\n", "");
  EXPECT_EQ(params_of("config", "sampler = \"tpe\"\nn_startup_trials = 12\n", ""), random);
  EXPECT_EQ(params_of("flag", "sampler = \"tpe\"\nn_startup_trials = 3\n",
                      "--n-startup-trials 12 --multivariate true"),
            random);
  EXPECT_NE(params_of("default", "sampler = \"tpe\"\n", ""), random);
  // A bad value names the file and line, or the flag.
  std::string cfg = write(dir, "bad.toml", by_type_config("n_ei_candidates = 0\n"));
  Result r = run("search --config " + cfg + " --out " + (dir / "bad"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("bad.toml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("n_ei_candidates must be at least 1 (got 0)"), std::string::npos) << r.err;
  r = run("search --config " + write(dir, "ok.toml", by_type_config("")) + " --gamma 2 --out " +
          (dir / "bad2"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--gamma (the fraction"), std::string::npos) << r.err;
}

TEST(SearchE2E, SameSeedGivesTheSameTrials) {
  ScratchDir dir("seed");
  std::string cfg = write(dir, "c.toml", by_name_config());
  for (const char* out : {"a", "b"}) {
    Result r =
        run("search --config " + cfg + " --sampler tpe --trials 14 --seed 3 --out " + (dir / out));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  auto a = trials_of(dir / "a"), b = trials_of(dir / "b");
  ASSERT_EQ(a.size(), 14u);
  ASSERT_EQ(b.size(), 14u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].params, b[i].params) << "trial " << i;
    EXPECT_EQ(a[i].values, b[i].values) << "trial " << i;
  }
  Result c =
      run("search --config " + cfg + " --sampler tpe --trials 14 --seed 4 --out " + (dir / "c"));
  ASSERT_EQ(c.code, 0) << c.err;
  auto other = trials_of(dir / "c");
  bool differs = false;
  for (size_t i = 0; i < other.size(); ++i) differs |= other[i].params != a[i].params;
  EXPECT_TRUE(differs);
}

TEST(SearchE2E, KilledSearchResumesWithoutLosingOrRepeatingWork) {
  ScratchDir dir("kill");
  std::string cfg = write(dir, "c.toml", by_name_config());
  const std::string out = dir / "out";
  const std::string args =
      "search --config " + cfg + " --sampler bruteforce --trials 40 --out " + out;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: the same command a user typed, with output silenced.
    if (::chdir(source_dir().c_str()) != 0) ::_exit(127);
    ::execl("/bin/sh", "sh", "-c", ("exec '" + bin() + "' " + args + " >/dev/null 2>&1").c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill it hard once a few trials are stored.
  int complete = 0;
  for (int i = 0; i < 6000 && complete < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!fs::exists(out + "/study.db")) continue;
    try {
      complete = 0;
      for (const auto& t : trials_of(out)) complete += t.state == search::TrialState::kComplete;
    } catch (const std::exception&) {
      // The database may be mid-creation.
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  auto before = trials_of(out);
  ASSERT_GE(before.size(), 4u);
  ASSERT_LT(before.size(), 40u) << "the search finished before it could be killed";

  Result r = run(args);  // the same command again resumes the study
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
  auto after = trials_of(out);
  int finished = 0, interrupted = 0;
  for (const auto& t : after) {
    if (t.interrupted()) {
      ++interrupted;
    } else if (t.finished()) {
      ++finished;
    }
  }
  EXPECT_EQ(finished, 40);  // the full trial count
  EXPECT_LE(interrupted, 1);
  EXPECT_EQ(distinct_params(after, search::TrialState::kComplete).size(), 40u);  // no duplicates
  // Every trial finished before the kill is still there, unchanged.
  for (const auto& t : before) {
    if (!t.finished()) continue;
    EXPECT_EQ(after[t.number].params, t.params);
    EXPECT_EQ(after[t.number].values, t.values);
  }
}

TEST(SearchE2E, ConfigErrorsNameFileLineAndExitNonZero) {
  ScratchDir dir("errors");
  std::string cfg = write(dir, "c.toml", by_type_config("n_trails = 5\n"));
  Result r = run("search --config " + cfg + " --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("c.toml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'n_trials'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "study.db"));  // rejected before any trial

  // A model path found neither from the working directory nor beside the config.
  std::string text = by_type_config();
  text.replace(text.find("tests/fixtures/torch/mlp_opset13.onnx"), 37, "no/such/model.onnx");
  r = run("search --config " + write(dir, "m.toml", text) + " --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("m.toml: model 'no/such/model.onnx' not found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--model PATH.onnx"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace qsearch::e2e
