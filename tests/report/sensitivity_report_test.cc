// Probe trials (the sensitivity strategy's) are left out of every report and compare front, and
// sensitivity.json / the table describe them.
#include "report/sensitivity_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "report/compare.h"
#include "report/search_report.h"
#include "search/sampler.h"

namespace qsearch::report {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::TrialState;

FrozenTrial trial(int number, std::vector<double> params, std::vector<double> values,
                  const char* probe = nullptr) {
  FrozenTrial t;
  t.id = t.number = number;
  t.state = TrialState::kComplete;
  t.params = std::move(params);
  t.values = std::move(values);
  t.user_attrs[kScaledMetrics] =
      nlohmann::json{{"accuracy", t.values[0]}, {"cost", t.values[1]}}.dump();
  if (probe) t.system_attrs[search::kAttrProbe] = probe;
  return t;
}

StudyRun study() {
  StudyRun r;
  r.label = "s";
  r.info.name = "s";
  r.info.directions = {Direction::kMaximize, Direction::kMinimize};
  r.info.space = {{"a/config/x", Distribution::int_range(0, 1)},
                  {"b/config/y", Distribution::int_range(0, 1)}};
  r.info.user_attrs["param_choices"] = R"({"a/config/x": [4, 8], "b/config/y": [2, "NA"]})";
  // The float base would dominate the front (best accuracy) if it counted as a configuration.
  r.trials = {trial(0, {0, 0}, {1.0, 32}, "base"), trial(1, {1, 1}, {0.9, 4}),
              trial(2, {0, 0}, {0.8, 2}), trial(3, {1, 0}, {0.97, 18}, "a")};
  return r;
}

TEST(SensitivityReport, ProbesAreLeftOutOfEveryOutputAndFront) {
  const StudyRun r = study();
  std::vector<int> best;
  for (const FrozenTrial& t : best_trials(r.info, r.trials)) best.push_back(t.number);
  EXPECT_EQ(best, (std::vector<int>{1, 2}));
  EXPECT_EQ(nlohmann::json::parse(log_json(r.info, r.trials)).size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(best_json(r.info, r.trials)).size(), 2u);
  const std::string csv = trials_csv(r.info, r.trials);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  EXPECT_EQ(csv.find("\n0,"), std::string::npos) << csv;
  EXPECT_EQ(configuration_trials(r.trials).size(), 2u);
  EXPECT_TRUE(has_probes(r.trials));

  // A reference point the float base (cost 32) lies inside, so counting it would change the HV.
  const Comparison c = compare_studies({r}, {.ref_point = std::vector<double>{0, 40}});
  EXPECT_EQ(c.reference_front_size, 2);
  ASSERT_EQ(c.studies.size(), 1u);
  EXPECT_EQ(c.studies[0].trials, 4);    // probes are evaluations
  EXPECT_EQ(c.studies[0].complete, 2);  // but no configurations
  ASSERT_EQ(c.studies[0].hv_curve.size(), 4u);
  EXPECT_EQ(c.studies[0].hv_curve[0], 0.0);
  EXPECT_DOUBLE_EQ(c.studies[0].hv_curve[3], 1.0);
}

TEST(SensitivityReport, JsonAndTableDescribeEachProbeAndItsDrop) {
  const StudyRun r = study();
  const auto j = nlohmann::json::parse(sensitivity_json(r.info, r.trials));
  EXPECT_EQ(j["objectives"], nlohmann::json({"accuracy", "cost"}));
  EXPECT_EQ(j["base"]["trial"], 0);
  ASSERT_EQ(j["probes"].size(), 1u);
  const auto& p = j["probes"][0];
  EXPECT_EQ(p["group"], "a");
  EXPECT_EQ(p["option"], nlohmann::json({{"x", 8}}));  // decoded from param_choices
  EXPECT_EQ(p["trial"], 3);
  EXPECT_NEAR(p["drop"][0].get<double>(), 0.03, 1e-12);
  EXPECT_EQ(p["drop"][1].get<double>(), 14.0);
  const std::string table = sensitivity_table(r.info, r.trials);
  EXPECT_NE(table.find("(all float)"), std::string::npos) << table;
  EXPECT_NE(table.find("| a "), std::string::npos) << table;
  EXPECT_NE(table.find("x=8"), std::string::npos) << table;
  EXPECT_NE(table.find("drop cost"), std::string::npos) << table;
}

}  // namespace
}  // namespace qsearch::report
