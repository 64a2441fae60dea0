// End to end (issue 9 item 4): racing prunes trials without changing any COMPLETE result or the
// true Pareto front; --final-eval full re-evaluates the front on the whole split exactly as
// `qsearch quantize` does; every accuracy carries its standard error; compare's hypervolume is
// the same whoever a study is compared with (item 5).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

using Json = nlohmann::json;

// The shipped MNIST MLP, every linear layer its own data_in_width {4, 8} x weight_width {2, 4, 8}:
// 6^3 = 216 configurations, small enough for brute force to give the true front.
std::string space_config(const std::string& setup = "") {
  std::string layers;
  for (const char* fc : {"fc1", "fc2", "fc3"}) {
    layers += std::string("[search.search_space.seed.") + fc + R"(.config]
name = ["integer"]
data_in_width = [4, 8]
data_in_frac_width = ["NA"]
weight_width = [2, 4, 8]
weight_frac_width = [6]
bias_width = [16]
bias_frac_width = [8]
)";
  }
  return R"(model = "models/mlp_mnist.onnx"
dataset = "mnist"
batch_size = 128
[search.search_space.setup]
by = "name"
[search.search_space.seed.default.config]
name = ["NA"]
)" + layers +
         R"([search.strategy.sw_runner.basic_evaluation]
num_samples = 512
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
sampler = "bruteforce"
sum_scaled_metrics = false
)" + setup +
         R"(
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 0.2
average_bitwidth.direction = "minimize"
)";
}

std::set<std::vector<double>> front_values(const std::string& out) {
  std::set<std::vector<double>> front;
  const Json best = Json::parse(read_file(fs::path(out) / "best.json"));
  for (const auto& [row, t] : best.items()) front.insert(t["value"].get<std::vector<double>>());
  return front;
}

TEST(RacingE2E, PrunesWithoutChangingCompleteResultsOrTheTrueFront) {
  ScratchDir dir("racing");
  const std::string cfg = write(dir, "c.toml", space_config());
  const std::string plain = dir / "plain", raced = dir / "raced";
  Result p = run("search --config " + cfg + " --out " + plain + " --quiet");
  ASSERT_EQ(p.code, 0) << p.err;
  Result r = run("search --config " + cfg + " --out " + raced + " --racing");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("pruned by racing"), std::string::npos) << r.err;

  const auto plain_trials = trials_of(plain), raced_trials = trials_of(raced);
  ASSERT_EQ(plain_trials.size(), 216u);
  ASSERT_EQ(raced_trials.size(), 216u);  // PRUNED trials count toward n_trials / the space
  std::map<std::vector<double>, const search::FrozenTrial*> by_config;
  for (const auto& t : plain_trials) by_config[t.params] = &t;
  int pruned = 0, complete = 0;
  for (const auto& t : raced_trials) {
    const search::FrozenTrial& same = *by_config.at(t.params);
    if (t.state == search::TrialState::kPruned) {
      ++pruned;
      const Json racing = Json::parse(t.user_attrs.at("racing"));
      EXPECT_EQ(racing["slice_samples"], 128);  // 0.25 x 512
      EXPECT_EQ(Json::parse(t.user_attrs.at("software_metrics"))["num_samples"], 128);
      continue;
    }
    ASSERT_EQ(t.state, search::TrialState::kComplete);
    ++complete;
    // Exactly the configuration's result without racing.
    EXPECT_EQ(t.values, same.values) << t.number;
    EXPECT_EQ(t.user_attrs, same.user_attrs) << t.number;
  }
  EXPECT_GT(pruned, 20) << "racing pruned (almost) nothing";
  EXPECT_GT(complete, 0);
  // The true front (brute force) is found with racing too: no front configuration was pruned.
  EXPECT_EQ(front_values(raced), front_values(plain));
  // PRUNED in the outputs, never in best.json.
  const std::string csv = read_file(fs::path(raced) / "trials.csv");
  EXPECT_NE(csv.find(",PRUNED,"), std::string::npos);
  EXPECT_NE(read_file(fs::path(raced) / "log.json").find("\"state\":\"PRUNED\""),
            std::string::npos);
  const Json best = Json::parse(read_file(fs::path(raced) / "best.json"));
  for (const auto& [row, t] : best.items()) {
    EXPECT_EQ(raced_trials[t["number"].get<int>()].state, search::TrialState::kComplete);
    // Standard errors beside the accuracy.
    const Json& sw = t["software_metrics"];
    const double a = sw["accuracy"].get<double>();
    EXPECT_NEAR(sw["accuracy_se"].get<double>(), std::sqrt(a * (1 - a) / 512), 1e-10);
    EXPECT_EQ(sw["num_samples"], 512);
  }
  EXPECT_NE(csv.find(",accuracy_se,"), std::string::npos);
}

// A [passes.quantize] config of a trial's sampled_config (null = "NA").
std::string quantize_config(const Json& sampled) {
  std::string s =
      "[passes.quantize]\nby = \"name\"\n[passes.quantize.default.config]\nname = "
      "\"NA\"\n";
  for (const auto& [key, node] : sampled.items()) {
    if (key == "default") continue;
    s += "[passes.quantize." + key + ".config]\n";
    for (const auto& [field, v] : node["config"].items()) {
      s += field + " = " + (v.is_null() ? std::string("\"NA\"") : v.dump()) + "\n";
    }
  }
  return s;
}

TEST(RacingE2E, FinalEvalEqualsQuantizeOnTheWholeSplit) {
  ScratchDir dir("final_eval");
  const std::string cfg = write(dir, "c.toml", space_config("n_trials = 12"));
  const std::string out = dir / "out";
  Result s = run("search --config " + cfg + " --out " + out +
                 " --sampler random --num-samples 200 --final-eval full");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("final_eval"), std::string::npos) << s.out;  // the printed table
  const Json best = Json::parse(read_file(fs::path(out) / "best.json"));
  ASSERT_FALSE(best.empty());
  for (const auto& [row, t] : best.items()) {
    ASSERT_TRUE(t.contains("final_eval")) << t.dump();
    const Json& f = t["final_eval"];
    EXPECT_EQ(f["num_samples"], 10000);  // the whole validation split, not num_samples
    EXPECT_EQ(t["software_metrics"]["num_samples"], 200);
    const std::string q = write(dir, "q" + row + ".toml", quantize_config(t["sampled_config"]));
    Result qr = run("quantize --model models/mlp_mnist.onnx --config " + q +
                    " --dataset mnist --split val --json");
    ASSERT_EQ(qr.code, 0) << qr.err;
    const Json sw = Json::parse(qr.out)["software_metrics"];
    EXPECT_EQ(sw["samples"], 10000);
    // best.json prints 10 decimals (pandas); the numbers are the same evaluation.
    EXPECT_NEAR(f["accuracy"].get<double>(), sw["accuracy"].get<double>(), 1e-10);
    EXPECT_NEAR(f["loss"].get<double>(), sw["loss"].get<double>(), 1e-10);
    EXPECT_NEAR(f["accuracy_se"].get<double>(), sw["accuracy_se"].get<double>(), 1e-10);
  }
  // `qsearch report` shows it again (it lives in the study), and trials.csv has its columns.
  Result rep = run("report --out " + out);
  ASSERT_EQ(rep.code, 0) << rep.err;
  EXPECT_NE(rep.out.find("final_eval"), std::string::npos) << rep.out;
  const std::string csv = read_file(fs::path(out) / "trials.csv");
  EXPECT_NE(csv.find(",final_accuracy,"), std::string::npos);
  EXPECT_NE(csv.find(",final_accuracy_se,"), std::string::npos);
  // Without the flag, best.json keeps MASE's columns only.
  Result plain =
      run("search --config " + cfg + " --out " + (dir / "plain") + " --sampler random --quiet");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(read_file(fs::path(dir / "plain") / "best.json").find("final_eval"), std::string::npos);
}

// The hypervolume column of `qsearch compare` for the study labelled `label`.
std::string hv_of(const std::string& out, const std::string& label) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(label + " ", 0) != 0) continue;
    std::istringstream cells(line);
    std::string c[5];
    for (auto& x : c) cells >> x;
    return c[4];  // study, trials, complete, front found, HV
  }
  return "";
}

TEST(CompareE2E, AStudysHypervolumeIsTheSameWhateverItIsComparedWith) {
  ScratchDir dir("compare_ref");
  const std::string cfg = write(dir, "c.toml", space_config());
  const std::string a = dir / "a", b = dir / "b", c = dir / "c";
  ASSERT_EQ(run("search --config " + cfg + " --out " + a +
                " --sampler random --trials 15 --seed 1 --quiet")
                .code,
            0);
  ASSERT_EQ(run("search --config " + cfg + " --out " + b + " --trials 60 --quiet").code, 0);
  ASSERT_EQ(run("search --config " + cfg + " --out " + c +
                " --sampler random --trials 5 --seed 9 --quiet")
                .code,
            0);
  Result ab = run("compare " + a + " " + b), ac = run("compare " + a + " " + c);
  ASSERT_EQ(ab.code, 0) << ab.err;
  ASSERT_EQ(ac.code, 0) << ac.err;
  // The recorded reference point: accuracy 0, 0.2 x the largest average bitwidth (8 bits).
  EXPECT_NE(ab.out.find("Reference point: [0, 1.6]"), std::string::npos) << ab.out;
  EXPECT_NE(ab.out.find("points each study found: " + a + ": "), std::string::npos) << ab.out;
  const std::string hv = hv_of(ab.out, a);
  ASSERT_FALSE(hv.empty()) << ab.out;
  EXPECT_EQ(hv_of(ac.out, a), hv) << ab.out << ac.out;
  // A given reference point replaces it, for every study alike.
  Result given = run("compare " + a + " " + b + " --ref-point 0.5,1.2");
  ASSERT_EQ(given.code, 0) << given.err;
  EXPECT_NE(given.out.find("Reference point: [0.5, 1.2] (--ref-point)"), std::string::npos);
  EXPECT_NE(hv_of(given.out, a), hv);
  Result bad = run("compare " + a + " " + b + " --ref-point 0.5");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--ref-point has 1 values but the studies have 2 objectives"),
            std::string::npos)
      << bad.err;
}

}  // namespace
}  // namespace qsearch::e2e
