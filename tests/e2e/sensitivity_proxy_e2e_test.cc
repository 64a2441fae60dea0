// End to end: the gradient proxies of the sensitivity strategy (eval/sensitivity_proxy.h) through
// `qsearch sensitivity --proxy` and `qsearch search --sampler sensitivity --proxy` on the MLP
// fixture (fc1..fc3, each data_in [4, 8] x weight [2, 4, 8]: 6 options per layer).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "e2e/e2e_util.h"
#include "search/sampler.h"

namespace qsearch::e2e {
namespace {

std::string config(const std::string& setup = "") {
  return mlp_by_name_config(256, "project = \"proxy\"\n", setup);
}

TEST(SensitivityProxyE2E, ProxyNextToTheProbesWithTheRankCorrelation) {
  ScratchDir dir("proxy_cmd");
  const std::string cfg = write(dir, "c.toml", config());
  Result r = run("sensitivity --config " + cfg + " --proxy fisher --jobs 2 --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(all float)"), std::string::npos) << r.out;  // the probes' table
  EXPECT_NE(r.out.find("fisher proxy (256 samples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("measured accuracy drop"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Spearman rank correlation, predicted dL vs measured accuracy drop: "),
            std::string::npos)
      << r.out;
  const auto j = nlohmann::json::parse(read_file(dir.path() / "out" / "sensitivity.json"));
  ASSERT_EQ(j["probes"].size(), 18u);  // the probes' part as without --proxy
  const auto& p = j["proxy"];
  EXPECT_EQ(p["method"], "fisher");
  EXPECT_EQ(p["num_samples"], 256);
  ASSERT_EQ(p["options"].size(), 18u);  // 3 layers x 6 options
  int measured = 0;
  for (const auto& o : p["options"]) {
    EXPECT_GE(o["delta_loss"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(o["delta_loss"].get<double>(),
                     o["weight_term"].get<double>() + o["activation_term"].get<double>());
    measured += o.contains("measured_drop");
  }
  EXPECT_EQ(measured, 18);  // every option was probed (exhaustively: 6 <= 16)
  EXPECT_EQ(p["spearman"]["accuracy"]["n"], 18);
  const double rho = p["spearman"]["accuracy"]["rho"].get<double>();
  // 2-bit weights and 4-bit inputs hurt most in both: the ranks agree clearly.
  EXPECT_GT(rho, 0.5) << r.out;
}

TEST(SensitivityProxyE2E, ProxyOnlyRunsNoProbe) {
  ScratchDir dir("proxy_only");
  const std::string cfg = write(dir, "c.toml", config());
  Result r =
      run("sensitivity --config " + cfg + " --proxy hessian --proxy-only --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("(all float)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hessian proxy"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_file(dir.path() / "out" / "sensitivity.json"));
  EXPECT_FALSE(j.contains("probes"));
  EXPECT_EQ(j["proxy"]["options"].size(), 18u);
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "study.db"));  // nothing evaluated
  Result bad = run("sensitivity --config " + cfg + " --proxy-only --out " + (dir / "o2"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("--proxy-only needs --proxy"), std::string::npos) << bad.err;
}

TEST(SensitivityProxyE2E, SearchWithAProxyMakesNoProbeTrialAndResumes) {
  ScratchDir dir("proxy_search");
  const std::string cfg = write(dir, "c.toml", config("proxy = \"fisher\"\n"));
  Result r = run("search --config " + cfg + " --sampler sensitivity --trials 12 --jobs 2 --out " +
                 (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("sensitivity proxy fisher: 256 samples"), std::string::npos) << r.err;
  // Resume in a second process with the flag (same table, recomputed): still no probe.
  Result again = run("search --config " + cfg +
                     " --sampler sensitivity --proxy fisher --trials 20 "
                     "--out " +
                     (dir / "out"));
  ASSERT_EQ(again.code, 0) << again.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 20u);
  std::set<std::vector<double>> configs;
  for (const auto& t : trials) {
    EXPECT_FALSE(search::is_probe(t)) << "trial " << t.number;
    EXPECT_TRUE(configs.insert(t.params).second) << "trial " << t.number;
    EXPECT_EQ(t.state, search::TrialState::kComplete);
  }
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "sensitivity.json"));  // no probes, no table
}

TEST(SensitivityProxyE2E, AnUnknownProxyNamesTheFileAndLine) {
  ScratchDir dir("proxy_bad");
  const std::string text = config("proxy = \"fishr\"\n");
  const std::string cfg = write(dir, "c.toml", text);
  // The line of `proxy = ...` in the file.
  int line = 1;
  for (size_t i = 0; i < text.find("proxy = \"fishr\""); ++i) line += text[i] == '\n';
  Result r =
      run("search --config " + cfg + " --sampler sensitivity --trials 3 --out " + (dir / "out"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("c.toml:" + std::to_string(line) + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"fisher\""), std::string::npos) << r.err;
  Result flag = run("search --config " + write(dir, "ok.toml", config()) +
                    " --sampler sensitivity --proxy hesian --trials 3 --out " + (dir / "o2"));
  EXPECT_EQ(flag.code, 1);
  EXPECT_NE(flag.err.find("--proxy = \"hesian\""), std::string::npos) << flag.err;
}

}  // namespace
}  // namespace qsearch::e2e
