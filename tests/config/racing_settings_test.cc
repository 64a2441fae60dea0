// [search.strategy.setup] racing / racing_slice / racing_z / final_eval and their flags
// (docs/config.md): defaults < TOML < flags, and one-line errors naming the key or the flag.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/search_settings.h"
#include "core/error.h"

namespace qsearch::config {
namespace {

namespace fs = std::filesystem;

std::string write_toml(const std::string& setup) {
  static int n = 0;
  fs::path p =
      fs::temp_directory_path() / ("qsearch_racing_settings_" + std::to_string(::getpid()) + "_" +
                                   std::to_string(n++) + ".toml");
  std::ofstream(p) << R"(model = "m.onnx"
dataset = "mnist"
[search.search_space.seed.default.config]
name = ["integer"]
weight_width = [4, 8]
[search.strategy.setup]
sum_scaled_metrics = false
)" << setup << R"(
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
)";
  return p.string();
}

SearchSettings settings(const std::string& setup, SearchFlags f = {}) {
  return resolve_search_settings(load_config(write_toml(setup)), f);
}

std::string error_of(const std::string& setup, SearchFlags f = {}) {
  try {
    settings(setup, f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RacingSettings, DefaultsTomlAndFlags) {
  SearchSettings d = settings("");
  EXPECT_FALSE(d.objective.racing);
  EXPECT_EQ(d.objective.racing_slice, 0.25);
  EXPECT_EQ(d.objective.racing_z, 2.5);
  EXPECT_EQ(d.final_eval, "none");
  SearchSettings t =
      settings("racing = true\nracing_slice = 0.5\nracing_z = 3.0\nfinal_eval = \"full\"");
  EXPECT_TRUE(t.objective.racing);
  EXPECT_EQ(t.objective.racing_slice, 0.5);
  EXPECT_EQ(t.objective.racing_z, 3.0);
  EXPECT_EQ(t.final_eval, "full");
  SearchFlags f;
  f.racing = true;
  f.racing_slice = 0.1;
  f.final_eval = "none";
  SearchSettings o = settings("racing_slice = 0.5\nfinal_eval = \"full\"", f);
  EXPECT_TRUE(o.objective.racing);
  EXPECT_EQ(o.objective.racing_slice, 0.1);
  EXPECT_EQ(o.final_eval, "none");
}

TEST(RacingSettings, OutOfRangeIsAOneLineErrorNamingKeyOrFlag) {
  std::string e = error_of("racing_slice = 1.0");
  EXPECT_NE(e.find("[search.strategy.setup] racing_slice = 1: must be the share"),
            std::string::npos)
      << e;
  SearchFlags f;
  f.racing_slice = 0.0;
  e = error_of("", f);
  EXPECT_NE(e.find("--racing-slice = 0: must be"), std::string::npos) << e;
  e = error_of("racing_z = -1.0");
  EXPECT_NE(e.find("racing_z"), std::string::npos) << e;
  e = error_of("final_eval = \"all\"");
  EXPECT_NE(e.find("final_eval = \"all\": use \"full\""), std::string::npos) << e;
  e = error_of("racing = 1");
  EXPECT_NE(e.find("racing must be true or false"), std::string::npos) << e;
  for (const std::string& m : {error_of("racing_slice = 1.0"), error_of("final_eval = \"x\"")}) {
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

// A proxy only the sensitivity strategy reads: asked of another sampler it is an error, not
// silently ignored, unless a --sampler flag overrides the config's strategy for one run.
TEST(ProxySettings, AProxyNeedsTheSensitivitySampler) {
  EXPECT_EQ(settings("sampler = \"sensitivity\"\nproxy = \"fisher\"").proxy, "fisher");
  std::string e = error_of("sampler = \"tpe\"\nproxy = \"fisher\"");
  EXPECT_NE(e.find("[search.strategy.setup] proxy = \"fisher\" needs sampler = \"sensitivity\""),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  SearchFlags f;
  f.proxy = "hessian";
  e = error_of("sampler = \"random\"", f);
  EXPECT_NE(e.find("--proxy = \"hessian\" needs sampler"), std::string::npos) << e;
  SearchFlags g;
  g.sampler = "tpe";
  EXPECT_EQ(settings("sampler = \"sensitivity\"\nproxy = \"fisher\"", g).sampler, "tpe");
  EXPECT_EQ(settings("proxy = \"probe\"").proxy, "probe");
}

}  // namespace
}  // namespace qsearch::config
