// End to end: `qsearch sensitivity` and `qsearch search --sampler sensitivity` on the MLP fixture.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "e2e/e2e_util.h"
#include "search/sampler.h"

namespace qsearch::e2e {
namespace {

// fc1..fc3, each data_in [4, 8] x weight [2, 4, 8]: 6 options per layer, 216 configurations;
// the ReLUs (name = NA only) have one option and are not probed: 1 + 3 x 6 = 19 probes.
std::string config() { return mlp_by_name_config(256, "project = \"sens\"\n"); }

using ProbeKey = std::tuple<std::string, std::string, std::vector<double>>;

// (group, option, values) of every probe in a sensitivity.json; checks each drop on the way.
std::set<ProbeKey> probes_of(const nlohmann::json& j) {
  std::set<ProbeKey> out;
  const std::vector<double> base = j["base"]["values"].get<std::vector<double>>();
  for (const auto& p : j["probes"]) {
    const auto values = p["values"].get<std::vector<double>>();
    const auto drop = p["drop"].get<std::vector<double>>();
    EXPECT_EQ(drop.size(), base.size());
    for (size_t k = 0; k < drop.size(); ++k) EXPECT_DOUBLE_EQ(drop[k], base[k] - values[k]);
    out.insert({p["group"].get<std::string>(), p["option"].dump(), values});
  }
  return out;
}

TEST(SensitivityE2E, CommandPrintsAndWritesThePerLayerTable) {
  ScratchDir dir("sensitivity_cmd");
  const std::string cfg = write(dir, "c.toml", config());
  Result r = run("sensitivity --config " + cfg + " --jobs 2 --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  // Header, separator, the float base and 18 probe rows.
  EXPECT_NE(r.out.find("| group"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("drop accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(all float)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("data_in_width=4 weight_width=2"), std::string::npos) << r.out;
  // Progress on stderr: each probe's layer, option and values.
  EXPECT_NE(r.err.find("probe base COMPLETE: accuracy "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("probe fc2 COMPLETE data_in_width="), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(", average_bitwidth "), std::string::npos) << r.err;
  std::istringstream lines(r.out);
  int rows = 0;
  for (std::string line; std::getline(lines, line);) rows += line.rfind("| fc", 0) == 0;
  EXPECT_EQ(rows, 18) << r.out;

  const auto j = nlohmann::json::parse(read_file(dir.path() / "out" / "sensitivity.json"));
  EXPECT_EQ(j["objectives"], nlohmann::json({"accuracy", "average_bitwidth"}));
  EXPECT_EQ(j["base"]["hardware_metrics"]["average_bitwidth"], 32.0);  // every layer float
  ASSERT_EQ(j["probes"].size(), 18u);
  std::set<std::string> groups;
  for (const auto& p : j["probes"]) {
    groups.insert(p["group"].get<std::string>());
    EXPECT_EQ(p["state"], "COMPLETE");
    EXPECT_EQ(p["option"].size(), 3u) << p["option"].dump();  // name, data_in, weight
  }
  EXPECT_EQ(groups, (std::set<std::string>{"fc1", "fc2", "fc3"}));
  EXPECT_EQ(probes_of(j).size(), 18u);

  // Run again: the probes are stored, nothing is evaluated twice, the same table comes out.
  Result again = run("sensitivity --config " + cfg + " --out " + (dir / "out"));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
  EXPECT_EQ(trials_of(dir / "out").size(), 19u);
}

TEST(SensitivityE2E, CommandRunsEveryProbeWhenASearchWouldInterleaveConfigurations) {
  // max_group_options = 4: each layer's 6 options are probed one field at a time (top, weight
  // width at 2 and 4, data_in_width at 4 with the weight width at its top and at 2: 5 probes per
  // layer, 16 with the base). A search interleaves full configurations with such probes; the
  // command runs the probes only, all of them.
  ScratchDir dir("sensitivity_cmd_wide");
  const std::string cfg = write(
      dir, "c.toml", mlp_by_name_config(256, "project = \"sensw\"\n", "max_group_options = 4\n"));
  Result r = run("sensitivity --config " + cfg + " --jobs 2 --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 16u);
  for (const auto& t : trials) EXPECT_TRUE(search::is_probe(t)) << "trial " << t.number;
  const auto j = nlohmann::json::parse(read_file(dir.path() / "out" / "sensitivity.json"));
  EXPECT_EQ(j["probes"].size(), 15u);
  // The same space searched: a configuration comes before the last probe.
  Result s = run("search --config " + cfg + " --sampler sensitivity --trials 16 --out " +
                 (dir / "search"));
  ASSERT_EQ(s.code, 0) << s.err;
  int configurations = 0;
  for (const auto& t : trials_of(dir / "search")) configurations += !search::is_probe(t);
  EXPECT_GT(configurations, 0);
}

TEST(SensitivityE2E, SearchLeavesProbesOutOfTheOutputsAndWritesSensitivityJson) {
  ScratchDir dir("sensitivity_search");
  const std::string cfg = write(dir, "c.toml", config());
  Result r = run("search --config " + cfg + " --sampler sensitivity --trials 30 --jobs 2 --out " +
                 (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 30u);
  std::set<int> probe_numbers;
  std::set<std::vector<double>> configs;
  for (const auto& t : trials) {
    if (search::is_probe(t)) {
      probe_numbers.insert(t.number);
    } else {
      EXPECT_TRUE(configs.insert(t.params).second) << "configuration evaluated twice";
    }
  }
  EXPECT_EQ(probe_numbers.size(), 19u);
  // trials.csv: a header and the 11 configurations, no probe.
  std::istringstream csv(read_file(dir.path() / "out" / "trials.csv"));
  std::string line;
  std::getline(csv, line);
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    EXPECT_EQ(probe_numbers.count(std::stoi(line.substr(0, line.find(',')))), 0u) << line;
  }
  EXPECT_EQ(rows, 11);
  const auto best = nlohmann::json::parse(read_file(dir.path() / "out" / "best.json"));
  ASSERT_FALSE(best.empty());
  for (const auto& [k, row] : best.items()) {
    EXPECT_EQ(probe_numbers.count(row["number"].get<int>()), 0u);
  }
  const auto log = nlohmann::json::parse(read_file(dir.path() / "out" / "log.json"));
  EXPECT_EQ(log.size(), 11u);
  // The same per-layer table as `qsearch sensitivity` (same probes, same values).
  const auto j = nlohmann::json::parse(read_file(dir.path() / "out" / "sensitivity.json"));
  Result s = run("sensitivity --config " + cfg + " --quiet --out " + (dir / "alone"));
  ASSERT_EQ(s.code, 0) << s.err;
  const auto alone = nlohmann::json::parse(read_file(dir.path() / "alone" / "sensitivity.json"));
  EXPECT_EQ(probes_of(j), probes_of(alone));
  EXPECT_EQ(probes_of(j).size(), 18u);
}

TEST(SensitivityE2E, TwoProcessesShareOneStudyWithoutRepeatingAProbeOrAConfiguration) {
  ScratchDir dir("sensitivity_procs");
  const std::string cfg = write(dir, "c.toml", config());
  const std::string cmd = "search --config " + cfg +
                          " --sampler sensitivity --trials 40 --quiet --out " + (dir / "out");
  // Both processes start together (the study is created by whichever comes first).
  Result a, b;
  std::thread other([&] { b = run(cmd); });
  a = run(cmd);
  other.join();
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 40u);
  std::set<std::pair<std::string, std::vector<double>>> seen;
  int probes = 0;
  for (const auto& t : trials) {
    auto it = t.system_attrs.find(search::kAttrProbe);
    probes += it != t.system_attrs.end();
    EXPECT_TRUE(seen.insert({it == t.system_attrs.end() ? "" : it->second, t.params}).second)
        << "trial " << t.number << " repeats an earlier one";
  }
  EXPECT_EQ(probes, 19);
}

}  // namespace
}  // namespace qsearch::e2e
