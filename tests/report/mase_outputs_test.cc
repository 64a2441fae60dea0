// best.json, log.json and the "Best trial(s)" table byte for byte against outputs made by the
// real Optuna + pandas + tabulate (tools/make_report_fixtures.py -> tests/fixtures/report/), and
// the number/string formatting they rest on against a few thousand doubles.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "report/pandas_json.h"
#include "report/python_format.h"
#include "report/search_report.h"
#include "report/tabulate.h"
#include "support/source_dir.h"

namespace qsearch::report {
namespace {

using search::FrozenTrial;
using search::StudyInfo;
using Json = nlohmann::ordered_json;

const std::string kFixtures = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/report/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double parse_number(const Json& j) {
  if (j.is_number()) return j.get<double>();
  return std::strtod(j.get<std::string>().c_str(), nullptr);  // "inf", "-inf", "nan"
}

struct Case {
  StudyInfo info;
  std::vector<FrozenTrial> trials;
};

Case load_case(const std::string& name) {
  Json in = Json::parse(read_file(kFixtures + name + "/input.json"));
  Case c;
  c.info.id = 0;
  c.info.name = in["study"]["name"];
  for (const auto& d : in["study"]["directions"]) {
    c.info.directions.push_back(search::parse_direction(d.get<std::string>()));
  }
  for (const auto& t : in["trials"]) {
    FrozenTrial f;
    f.id = t["number"];
    f.number = t["number"];
    const std::string state = t["state"];
    f.state = state == "COMPLETE" ? search::TrialState::kComplete
              : state == "FAIL"   ? search::TrialState::kFail
                                  : search::TrialState::kRunning;
    for (const auto& v : t["values"]) f.values.push_back(parse_number(v));
    for (auto it = t["user_attrs"].begin(); it != t["user_attrs"].end(); ++it) {
      f.user_attrs[it.key()] = it.value().get<std::string>();
    }
    for (auto it = t["system_attrs"].begin(); it != t["system_attrs"].end(); ++it) {
      f.system_attrs[it.key()] = it.value().get<std::string>();
    }
    f.datetime_start_ms = t["datetime_start_ms"];
    f.datetime_complete_ms = t["datetime_complete_ms"];
    c.trials.push_back(f);
  }
  return c;
}

// The first differing line, instead of gtest's dump of two long texts.
std::string first_difference(const std::string& ours, const std::string& expected) {
  std::istringstream a(ours), b(expected);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool more_a = static_cast<bool>(std::getline(a, la));
    bool more_b = static_cast<bool>(std::getline(b, lb));
    if (!more_a && !more_b) return ours == expected ? "" : "(difference in trailing newline)";
    if (la != lb || more_a != more_b) {
      return "line " + std::to_string(line) + ":\n  ours:     " + (more_a ? la : "<end>") +
             "\n  expected: " + (more_b ? lb : "<end>");
    }
  }
}

#define EXPECT_SAME_TEXT(ours, expected)                                   \
  do {                                                                     \
    const std::string ours_ = (ours), expected_ = (expected);              \
    EXPECT_TRUE(ours_ == expected_) << first_difference(ours_, expected_); \
  } while (0)

class MaseOutputs : public ::testing::TestWithParam<std::string> {};

TEST_P(MaseOutputs, LogJsonIsByteEqualToPandas) {
  Case c = load_case(GetParam());
  EXPECT_SAME_TEXT(log_json(c.info, c.trials), read_file(kFixtures + GetParam() + "/log.json"));
}

TEST_P(MaseOutputs, BestJsonIsByteEqualToPandas) {
  Case c = load_case(GetParam());
  EXPECT_SAME_TEXT(best_json(c.info, c.trials), read_file(kFixtures + GetParam() + "/best.json"));
}

TEST_P(MaseOutputs, BestTableIsByteEqualToTabulate) {
  Case c = load_case(GetParam());
  EXPECT_SAME_TEXT(best_trials_table(c.info, c.trials),
                   read_file(kFixtures + GetParam() + "/best_table.txt"));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MaseOutputs,
                         ::testing::Values("mase_multi", "single_sum", "edge_values",
                                           "many_objectives", "empty", "all_failed"));

TEST(MaseOutputs, FixturesHaveTheShapesTheyAreMeantToTest) {
  // Guards against a regenerated fixture silently losing what it covers.
  Case multi = load_case("mase_multi");
  EXPECT_GE(best_trials(multi.info, multi.trials).size(), 3u);
  Case edge = load_case("edge_values");
  EXPECT_EQ(best_trials(edge.info, edge.trials).size(), 3u);  // ties of a single objective
  EXPECT_NE(read_file(kFixtures + "edge_values/log.json").find("\"user_attrs_seed\":3.0"),
            std::string::npos);
  Case many = load_case("many_objectives");
  EXPECT_EQ(many.info.directions.size(), 11u);
}

// Each line: repr(x) <TAB> pandas' to_json text of x <TAB> repr(round(x, 3)).
TEST(NumberFormatting, MatchesPandasAndPythonOnThousandsOfDoubles) {
  std::istringstream lines(read_file(kFixtures + "doubles.tsv"));
  std::string line;
  int n = 0, bad_pandas = 0, bad_repr = 0, bad_round = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string repr, pandas, rounded;
    std::getline(fields, repr, '\t');
    std::getline(fields, pandas, '\t');
    std::getline(fields, rounded, '\t');
    double v = std::strtod(repr.c_str(), nullptr);
    ++n;
    if (pandas_double(v) != pandas && bad_pandas++ < 5) {
      ADD_FAILURE() << repr << ": pandas " << pandas << ", ours " << pandas_double(v);
    }
    if (python_float_repr(v) != repr && bad_repr++ < 5) {
      ADD_FAILURE() << repr << ": ours " << python_float_repr(v);
    }
    if (python_float_repr(python_round(v, 3)) != rounded && bad_round++ < 5) {
      ADD_FAILURE() << "round(" << repr << ", 3): python " << rounded << ", ours "
                    << python_float_repr(python_round(v, 3));
    }
  }
  EXPECT_GT(n, 2500);
  EXPECT_EQ(bad_pandas + bad_repr + bad_round, 0);
}

TEST(NumberFormatting, PandasSpecialCases) {
  EXPECT_EQ(pandas_double(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(pandas_double(std::nan("")), "null");
  EXPECT_EQ(pandas_double(-0.0), "0.0");
  EXPECT_EQ(pandas_double(-2.5), "-2.5");
  EXPECT_EQ(pandas_double(1.5e16), "1.5e+16");
  EXPECT_EQ(python_float_repr(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(python_float_repr(1e22), "1e+22");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
}

TEST(PandasJson, EscapesAndIndentsLikeUjson) {
  Json j =
      Json::parse(R"({"a/b": ["\u00e9\u20ac\ud83d\ude00", "\t\n\u0001\"\\"], "e": {}, "l": []})");
  EXPECT_EQ(to_pandas_json(j, 0),
            R"({"a\/b":["\u00e9\u20ac\ud83d\ude00","\t\n\u0001\"\\"],"e":{},"l":[]})");
  EXPECT_EQ(to_pandas_json(Json::parse(R"({"e": {}, "n": [1, 2.0, true, null]})"), 2),
            "{\n  \"e\":{\n\n  },\n  \"n\":[\n    1,\n    2.0,\n    true,\n    null\n  ]\n}");
}

TEST(PythonRepr, ContainersStringsAndQuotes) {
  Json j = Json::parse(R"({"a": [1, 2.5, null, true, false], "it's": "say \"hi\"", "b": "x'y",
                           "c": "tab\there\u00a0\u00e9"})");
  EXPECT_EQ(python_repr(j),
            "{'a': [1, 2.5, None, True, False], \"it's\": 'say \"hi\"', 'b': \"x'y\", "
            "'c': 'tab\\there\\xa0\xc3\xa9'}");
  EXPECT_EQ(python_str(Json("text")), "text");
  EXPECT_EQ(python_str(Json(nullptr)), "None");
  EXPECT_EQ(utf8_length("pr\xc3\xa9"
                        "cision"),
            9u);
  EXPECT_EQ(utf8_prefix("pr\xc3\xa9"
                        "cision",
                        3),
            "pr\xc3\xa9");
}

TEST(Tabulate, OrgtblAlignsNumbersRightAndTextLeft) {
  std::string t = orgtbl({{"", true}, {"number", true}, {"metrics", false}},
                         {{"0", "4", "{'loss': 0.5}"}, {"1", "123456789", "{}"}});
  EXPECT_EQ(t,
            "|    |    number | metrics       |\n"
            "|----+-----------+---------------|\n"
            "|  0 |         4 | {'loss': 0.5} |\n"
            "|  1 | 123456789 | {}            |");
}

}  // namespace
}  // namespace qsearch::report
