// trials.csv, best_trials and write_search_outputs (the MASE byte-equality tests are in
// mase_outputs_test.cc).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "report/search_report.h"

namespace qsearch::report {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::StudyInfo;
using search::TrialState;

StudyInfo two_objective_study() {
  StudyInfo info;
  info.id = 0;
  info.name = "csv";
  info.directions = {Direction::kMaximize, Direction::kMinimize};
  info.space = {{"fc1/config/weight_width", Distribution::int_range(2, 8, 2)},
                {"lr", Distribution::float_range(1e-5, 1e-1, true)},
                {"fc1/config/name", Distribution::categorical({"integer", "NA"})}};
  return info;
}

FrozenTrial trial(int number, TrialState state, std::vector<double> values,
                  std::vector<double> params) {
  FrozenTrial t;
  t.id = number;
  t.number = number;
  t.state = state;
  t.values = std::move(values);
  t.params = std::move(params);
  t.datetime_start_ms = 1000 * number;
  t.datetime_complete_ms = state == TrialState::kRunning ? 0 : 1000 * number + 250;
  return t;
}

TEST(TrialsCsv, OneRowPerTrialWithParamsMetricsAndQuoting) {
  StudyInfo info = two_objective_study();
  std::vector<FrozenTrial> trials;
  trials.push_back(trial(0, TrialState::kComplete, {0.5, 0.8}, {4, 1e-05, 0}));
  trials[0].user_attrs = {{"software_metrics", R"({"loss": 0.6922941208, "accuracy": 0.5})"},
                          {"hardware_metrics", R"({"average_bitwidth": 4, "memory_density": 8.0})"},
                          {"scaled_metrics", R"({"accuracy": 0.5, "average_bitwidth": 0.8})"},
                          {"sampled_config", R"({"fc1": {"config": {"name": "integer"}}})"}};
  trials.push_back(trial(1, TrialState::kFail, {}, {8, 0.5, 1}));
  trials[1].system_attrs = {{"fail_reason", "overflow, \"40 bits\"\nin fc1"}};
  trials.push_back(trial(2, TrialState::kComplete, {std::numeric_limits<double>::infinity(), 1.6},
                         {2, 0.001, 0}));
  trials[2].user_attrs = {{"software_metrics", R"({"loss": 1e-05, "perplexity": 6.13})"},
                          {"hardware_metrics", R"({"loss": 3})"}};  // a name in both
  trials.push_back(trial(3, TrialState::kRunning, {}, {6, 0.01, 1}));

  // A trial has a sampled_config, so the key/config/field parameters get ":value" columns
  // (decoded where that trial's sampled_config has the field; the study records no choices).
  EXPECT_EQ(trials_csv(info, trials),
            "number,state,values_0,values_1,fc1/config/weight_width,"
            "fc1/config/weight_width:value,lr,fc1/config/name,fc1/config/name:value,loss,"
            "accuracy,average_bitwidth,memory_density,perplexity,hardware_loss,scaled_accuracy,"
            "scaled_average_bitwidth,duration_ms,fail_reason\n"
            "0,COMPLETE,0.5,0.8,4,,1e-05,integer,integer,0.6922941208,0.5,4,8.0,,,0.5,0.8,250,\n"
            "1,FAIL,,,8,,0.5,NA,,,,,,,,,,250,\"overflow, \"\"40 bits\"\"\nin fc1\"\n"
            "2,COMPLETE,inf,1.6,2,,0.001,integer,,1e-05,,,,6.13,3,,,250,\n"
            "3,RUNNING,,,6,,0.01,NA,,,,,,,,,,,\n");
}

TEST(TrialsCsv, SingleObjectiveHasAValueColumnAndEmptyStudyAHeader) {
  StudyInfo info;
  info.directions = {Direction::kMinimize};
  info.space = {{"x", Distribution::float_range(0, 1)}};
  EXPECT_EQ(trials_csv(info, {}), "number,state,value,x,duration_ms,fail_reason\n");
  std::vector<FrozenTrial> trials = {trial(0, TrialState::kComplete, {0.25}, {0.1})};
  EXPECT_EQ(trials_csv(info, trials),
            "number,state,value,x,duration_ms,fail_reason\n0,COMPLETE,0.25,0.1,250,\n");
}

TEST(TrialsCsv, BadUserAttrJsonNamesTheTrialAndKey) {
  StudyInfo info = two_objective_study();
  std::vector<FrozenTrial> trials = {trial(7, TrialState::kComplete, {1, 1}, {2, 0.1, 0})};
  trials[0].user_attrs["software_metrics"] = "{not json";
  try {
    trials_csv(info, trials);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trial 7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("software_metrics"), std::string::npos) << e.what();
  }
}

TEST(BestTrials, ParetoFrontOfCompleteTrialsInNumberOrder) {
  StudyInfo info = two_objective_study();  // maximize, minimize
  std::vector<FrozenTrial> trials = {
      trial(0, TrialState::kComplete, {0.5, 0.4}, {2, 0.1, 0}),
      trial(1, TrialState::kComplete, {0.9, 1.6}, {8, 0.1, 0}),
      trial(2, TrialState::kComplete, {0.4, 0.8}, {4, 0.1, 0}),  // dominated by 0
      trial(3, TrialState::kFail, {}, {4, 0.1, 0}),              // never best
      trial(4, TrialState::kComplete, {0.9, 1.6}, {8, 0.2, 0}),  // duplicate of 1: kept
      trial(5, TrialState::kComplete, {0.7, 0.8}, {4, 0.1, 1}),
      trial(6, TrialState::kRunning, {}, {4, 0.1, 1}),
      trial(7, TrialState::kComplete, {std::nan(""), 0.1}, {4, 0.1, 1}),  // NaN counts as worst
  };
  std::vector<int> numbers;
  for (const FrozenTrial& t : best_trials(info, trials)) numbers.push_back(t.number);
  EXPECT_EQ(numbers, (std::vector<int>{0, 1, 4, 5, 7}));

  info.directions = {Direction::kMinimize};
  std::vector<FrozenTrial> single = {trial(0, TrialState::kComplete, {2.0}, {2, 0.1, 0}),
                                     trial(1, TrialState::kComplete, {1.0}, {2, 0.1, 0}),
                                     trial(2, TrialState::kComplete, {1.0}, {2, 0.1, 0})};
  numbers.clear();
  for (const FrozenTrial& t : best_trials(info, single)) numbers.push_back(t.number);
  EXPECT_EQ(numbers, (std::vector<int>{1, 2}));  // every trial tied for the best value
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(WriteSearchOutputs, WritesTheThreeFilesAtomicallyIntoANewDirectory) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("qsearch_report_test_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::path out = root / "mnist" / "search";
  StudyInfo info = two_objective_study();
  std::vector<FrozenTrial> trials = {trial(0, TrialState::kComplete, {0.5, 0.4}, {2, 0.1, 0})};
  trials[0].user_attrs = {{"software_metrics", R"({"accuracy": 0.5})"}};

  write_search_outputs(out, info, trials);
  EXPECT_EQ(slurp(out / "best.json"), best_json(info, trials));
  EXPECT_EQ(slurp(out / "log.json"), log_json(info, trials));
  EXPECT_EQ(slurp(out / "trials.csv"), trials_csv(info, trials));
  // Rewriting replaces the files and leaves no temporary files behind.
  trials.push_back(trial(1, TrialState::kComplete, {0.9, 0.8}, {4, 0.1, 0}));
  write_search_outputs(out, info, trials);
  EXPECT_EQ(slurp(out / "log.json"), log_json(info, trials));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(out)) {
    ++files;
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(files, 3);

  // An output "directory" that is a file is an Error naming it.
  std::ofstream(root / "file").put('x');
  try {
    write_search_outputs(root / "file", info, trials);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((root / "file").string()), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace qsearch::report
