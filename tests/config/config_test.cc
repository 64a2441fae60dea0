#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/search_settings.h"
#include "core/error.h"
#include "support/source_dir.h"

namespace qsearch::config {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

// Writes `text` to a fresh temporary .toml file and returns its path.
std::string write_toml(const std::string& text) {
  static int n = 0;
  fs::path p = fs::temp_directory_path() / ("qsearch_config_test_" + std::to_string(::getpid()) +
                                            "_" + std::to_string(n++) + ".toml");
  std::ofstream(p) << text;
  return p.string();
}

std::string error_of(const std::string& text) {
  try {
    load_config(write_toml(text));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ReadsMaseExampleVerbatim) {
  RunConfig c = load_config(fixture("jsc_toy_by_type.toml"));
  EXPECT_EQ(c.model, "jsc-tiny");
  EXPECT_EQ(c.dataset, "jsc");
  EXPECT_EQ(c.batch_size, 512);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.project, "jsc-tiny");
  ASSERT_TRUE(c.quantize);
  EXPECT_EQ(c.quantize->by, "type");
  ASSERT_EQ(c.quantize->entries.size(), 2u);
  EXPECT_EQ(c.quantize->entries[0].key, "default");
  EXPECT_TRUE(c.quantize->entries[0].fields[0].second.is_na());
  EXPECT_EQ(c.quantize->entries[1].fields[1].first, "data_in_width");
  EXPECT_EQ(c.quantize->entries[1].fields[1].second.i, 8);

  ASSERT_TRUE(c.search);
  const SearchSection& s = *c.search;
  EXPECT_EQ(s.by, "name");
  ASSERT_EQ(s.seeds.size(), 3u);
  EXPECT_EQ(s.seeds[2].key, "seq_blocks_2");
  EXPECT_EQ(s.seeds[2].fields[3].first, "weight_width");
  EXPECT_EQ(s.seeds[2].fields[3].second.size(), 3u);
  EXPECT_TRUE(s.seeds[2].fields[2].second[0].is_na());
  EXPECT_EQ(s.n_trials, 5);
  EXPECT_EQ(s.sampler, "tpe");
  EXPECT_EQ(s.sum_scaled_metrics, false);
  ASSERT_EQ(s.metrics.size(), 2u);  // sorted by name
  EXPECT_EQ(s.metrics[0].name, "accuracy");
  EXPECT_EQ(s.metrics[1].name, "average_bitwidth");
  EXPECT_DOUBLE_EQ(s.metrics[1].scale, 0.2);
  EXPECT_EQ(s.metrics[1].direction, search::Direction::kMinimize);
  ASSERT_NE(s.hw_runner("average_bitwidth"), nullptr);
  EXPECT_EQ(s.hw_runner("average_bitwidth")->find("compare_to")->i, 32);
  // MASE keys without effect are reported, not rejected.
  EXPECT_NE(std::find(c.ignored_keys.begin(), c.ignored_keys.end(), "accelerator"),
            c.ignored_keys.end());
}

TEST(Config, UnknownKeyNamesLineAndNearestKey) {
  std::string e = error_of("model = \"m.onnx\"\n[search.strategy.setup]\nn_trails = 5\n");
  EXPECT_NE(e.find(":3:1: unknown key 'n_trails' in [search.strategy.setup]"), std::string::npos)
      << e;
  EXPECT_NE(e.find("did you mean 'n_trials'?"), std::string::npos) << e;
  e = error_of("modle = \"m.onnx\"\n");
  EXPECT_NE(e.find("did you mean 'model'?"), std::string::npos) << e;
}

TEST(Config, SyntaxAndTypeErrorsNameTheLine) {
  std::string e = error_of("model = \n");
  EXPECT_NE(e.find(":1:"), std::string::npos) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
  e = error_of("[search.strategy.setup]\nn_jobs = \"two\"\n");
  EXPECT_NE(e.find(":2:10: search.strategy.setup.n_jobs must be an integer"), std::string::npos)
      << e;
  e = error_of("[search.search_space.seed.default.config]\nweight_width = []\n");
  EXPECT_NE(e.find("has no choices"), std::string::npos) << e;
  e = error_of("[search.strategy.metrics]\naccuracy.direction = \"up\"\n");
  EXPECT_NE(e.find("must be \"maximize\" or \"minimize\""), std::string::npos) << e;
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_config("/nonexistent/x.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'/nonexistent/x.toml' does not exist"),
              std::string::npos);
  }
}

TEST(SearchSettings, PrecedenceDefaultTomlFlags) {
  const std::string path = write_toml(R"(
model = "m.onnx"
dataset = "mnist"
seed = 7
[search.search_space.seed.default.config]
name = ["integer"]
data_in_width = [8]
weight_width = [4, 8]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 1000
[search.strategy.setup]
n_trials = 30
sampler = "random"
sum_scaled_metrics = false
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
)");
  RunConfig c = load_config(path);
  SearchFlags f;
  f.trials = 12;
  SearchSettings s = resolve_search_settings(c, f);
  EXPECT_EQ(s.n_trials, 12);       // flag beats TOML
  EXPECT_EQ(s.sampler, "random");  // TOML beats default
  EXPECT_EQ(s.n_jobs, 1);          // default
  EXPECT_EQ(s.seed, 7u);           // top-level seed when setup.seed is absent
  EXPECT_EQ(s.objective.num_samples, 1000);
  EXPECT_EQ(s.objective.batch_size, 128);  // MASE's CLI default
  EXPECT_EQ(s.objective.mode, runtime::Mode::kInt);
  ASSERT_EQ(s.directions.size(), 1u);
  EXPECT_EQ(s.directions[0], search::Direction::kMaximize);
  EXPECT_NE(s.storage.find("study.db"), std::string::npos);
}

TEST(SearchSettings, RejectsBadSetupsBeforeAnyTrial) {
  auto err = [](const std::string& text, SearchFlags f = {}) {
    try {
      resolve_search_settings(load_config(write_toml(text)), f);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string space =
      "[search.search_space.seed.default.config]\nname = [\"integer\"]\n"
      "[search.strategy.metrics]\naccuracy.scale = 1.0\naccuracy.direction = \"maximize\"\n";
  // An architecture name without trained weights: the lab report's first lesson.
  std::string e = err("model = \"mlp\"\ndataset = \"mnist\"\n" + space);
  EXPECT_NE(e.find("names an architecture, not trained weights"), std::string::npos) << e;
  SearchFlags f;
  f.sampler = "annealing";
  e = err("model = \"m.onnx\"\ndataset = \"mnist\"\n" + space, f);
  EXPECT_NE(e.find("unknown sampler 'annealing'"), std::string::npos) << e;
  e =
      err("model = \"m.onnx\"\ndataset = \"mnist\"\n[search.strategy.setup]\nsum_scaled_metrics = "
          "true\n" +
          space);
  EXPECT_NE(e.find("needs [search.strategy.setup] direction"), std::string::npos) << e;
  e = err("model = \"m.onnx\"\ndataset = \"mnist\"\n[search.strategy.hw_runner.latncy]\n" + space);
  EXPECT_NE(e.find("did you mean 'latency'"), std::string::npos) << e;
  e =
      err("model = \"m.onnx\"\ndataset = \"mnist\"\n[search.strategy.metrics]\nloss.scale = 1\n"
          "[search.search_space.seed.default.config]\nname = [\"integer\"]\n");
  EXPECT_NE(e.find("metric 'loss' needs a direction"), std::string::npos) << e;
  e = err("model = \"m.onnx\"\ndataset = \"mnist\"\n");
  EXPECT_NE(e.find("no [search] section"), std::string::npos) << e;
}

// Every number a config file holds is range-checked when read, and the error names the file,
// line and column of the value and the key with its bound.
TEST(Config, EveryNumberIsRangeCheckedWithItsLine) {
  struct Case {
    std::string toml, expect;
  };
  const std::vector<Case> cases = {
      {"batch_size = 0\n", ":1:14: batch_size must be at least 1 (got 0)"},
      {"seed = -1\n", ":1:8: seed must be at least 0 (got -1)"},
      {"[search.strategy.setup]\nn_trials = 0\n",
       ":2:12: search.strategy.setup.n_trials must be at least 1 (got 0)"},
      {"[search.strategy.setup]\nn_trials = -3\n",
       ":2:12: search.strategy.setup.n_trials must be at least 1 (got -3)"},
      {"[search.strategy.setup]\nn_trials = 4294967297\n",  // would wrap to 1 in an int
       ":2:12: search.strategy.setup.n_trials must be at most 2147483647 (got 4294967297)"},
      {"[search.strategy.setup]\nn_jobs = 0\n",
       ":2:10: search.strategy.setup.n_jobs must be at least 1 (got 0)"},
      {"[search.strategy.setup]\ntimeout = -5\n",
       ":2:11: search.strategy.setup.timeout must be a positive number (got -5)"},
      {"[search.strategy.setup]\ntimeout = 0\n",
       ":2:11: search.strategy.setup.timeout must be a positive number (got 0)"},
      {"[search.strategy.setup]\ntimeout = inf\n",
       ":2:11: search.strategy.setup.timeout must be a positive number (got inf)"},
      {"[search.strategy.setup]\nseed = -2\n",
       ":2:8: search.strategy.setup.seed must be at least 0 (got -2)"},
      {"[search.strategy.setup]\nsave_every_n_trials = 0\n",
       ":2:23: search.strategy.setup.save_every_n_trials must be at least 1 (got 0)"},
      {"[search.strategy.setup]\nn_startup_trials = -1\n",
       ":2:20: search.strategy.setup.n_startup_trials must be at least 0 (got -1)"},
      {"[search.strategy.setup]\nn_ei_candidates = 0\n",
       ":2:19: search.strategy.setup.n_ei_candidates must be at least 1 (got 0)"},
      {"[search.strategy.setup]\ngamma = 0\n",
       ":2:9: search.strategy.setup.gamma (the fraction in gamma(n) = min(ceil(gamma n), "
       "gamma_max)) must be in (0, 1] (got 0)"},
      {"[search.strategy.setup]\ngamma = 1.5\n", ":2:9: search.strategy.setup.gamma (the"},
      {"[search.strategy.setup]\ngamma_max = 0\n",
       ":2:13: search.strategy.setup.gamma_max must be at least 1 (got 0)"},
      {"[search.strategy.setup]\nstall_window = -2\n",
       ":2:16: search.strategy.setup.stall_window must be at least 0 (got -2)"},
      {"[search.strategy.setup]\nmultivariate = 1\n",
       ":2:16: search.strategy.setup.multivariate must be true or false"},
      {"[search.strategy.setup]\nconstant_lier = true\n", "did you mean 'constant_liar'"},
      {"[search.strategy.metrics]\naccuracy.scale = nan\n",
       ":2:18: search.strategy.metrics.accuracy.scale must be a finite number (got nan)"},
      {"[search.strategy.metrics]\naccuracy.scale = -inf\n",
       ":2:18: search.strategy.metrics.accuracy.scale must be a finite number (got -inf)"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.toml);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.toml << " -> " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;  // one line
  }
}

std::string settings_error(const std::string& text, const SearchFlags& f = {}) {
  try {
    resolve_search_settings(load_config(write_toml(text)), f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kSearchTables =
    "[search.search_space.seed.default.config]\nname = [\"integer\"]\n"
    "[search.strategy.metrics]\naccuracy.scale = 1.0\naccuracy.direction = \"maximize\"\n";
const std::string kMinimalSearch = "model = \"m.onnx\"\ndataset = \"mnist\"\n" + kSearchTables;

TEST(SearchSettings, RunnerNumbersAreRangeCheckedWithTheirLine) {
  struct Case {
    std::string toml, expect;
  };
  // Appended to kMinimalSearch (7 lines): the runner table is on line 8, its key on line 9.
  const std::vector<Case> cases = {
      {"[search.strategy.sw_runner.basic_evaluation]\nnum_samples = 0\n",
       ":9:15: num_samples must be at least 1 (got 0)"},
      {"[search.strategy.sw_runner.basic_evaluation]\nnum_samples = -1\n",
       ":9:15: num_samples must be at least 1 (got -1)"},
      {"[search.strategy.hw_runner.average_bitwidth]\ncompare_to = 0\n",
       ":9:14: compare_to must be a positive number (got 0)"},
      {"[search.strategy.hw_runner.average_bitwidth]\ncompare_to = -32\n",
       ":9:14: compare_to must be a positive number (got -32)"},
      {"[search.strategy.hw_runner.average_bitwidth]\ncompare_to = nan\n",
       ":9:14: compare_to must be a positive number (got nan)"},
      {"[search.strategy.hw_runner.latency]\nbatch_size = 0\n",
       ":9:14: batch_size must be at least 1 (got 0)"},
      {"[search.strategy.hw_runner.latency]\nrepeats = -4\n",
       ":9:11: repeats must be at least 1 (got -4)"},
      {"[search.strategy.hw_runner.latency]\nrepeats = 4294967296\n",
       ":9:11: repeats must be at most 2147483647 (got 4294967296)"},
      {"[search.strategy.hw_runner.fpga]\nreuse_factor = 0\n",
       ":9:16: reuse_factor must be at least 1 (got 0)"},
      {"[search.strategy.hw_runner.fpga]\naccum_width = 65\n",
       ":9:15: accum_width must be at most 64 (got 65)"},
      {"[search.strategy.hw_runner.fpga]\nclock_mhz = 0\n",
       ":9:13: clock_mhz must be a positive number (got 0)"},
      {"[search.strategy.hw_runner.fpga]\ndevice = \"xc7z020\"\n",
       ":9:10: unknown FPGA device 'xc7z020'; known devices: xcu250"},
      {"[search.strategy.hw_runner.fpga]\nmax_dsp = -1\n", ":9:11: max_dsp must be >= 0"},
      {"[search.strategy.hw_runner.fpga]\nmax_dps = 10\n", "did you mean 'max_dsp'?"},
  };
  for (const Case& c : cases) {
    const std::string e = settings_error(kMinimalSearch + c.toml);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.toml << " -> " << e;
  }
}

TEST(SearchSettings, FpgaRunnerGivesItsOptionsAndConstraints) {
  const SearchSettings s = resolve_search_settings(
      load_config(write_toml(kMinimalSearch +
                             "[search.strategy.hw_runner.fpga]\ndevice = \"XCZU7EV\"\n"
                             "clock_mhz = 250\nreuse_factor = 4\nmax_latency_cycles = 40\n"
                             "max_dsp = 1000\n")),
      {});
  ASSERT_TRUE(s.objective.fpga.has_value());
  EXPECT_EQ(s.objective.fpga->device, "xczu7ev");
  EXPECT_EQ(s.objective.fpga->clock_mhz, 250);
  EXPECT_EQ(s.objective.fpga->reuse_factor, 4);
  EXPECT_EQ(s.objective.fpga->accum_width, 0);
  // In the fixed max_* order, whatever the order in the file.
  ASSERT_EQ(s.objective.constraints.size(), 2u);
  EXPECT_EQ(s.objective.constraints[0].metric, "fpga_dsp");
  EXPECT_EQ(s.objective.constraints[0].max, 1000);
  EXPECT_EQ(s.objective.constraints[1].metric, "fpga_latency_cycles");
  EXPECT_EQ(s.objective.constraints[1].max, 40);
  const auto m = eval::available_metrics(s.objective);
  EXPECT_NE(std::find(m.begin(), m.end(), "fpga_latency_ns"), m.end());
}

TEST(SearchSettings, OverridesAreRangeCheckedByFlagName) {
  struct Case {
    SearchFlags flags;
    std::string expect;
  };
  const auto with = [](auto set) {
    SearchFlags f;
    set(f);
    return f;
  };
  const std::vector<Case> cases = {
      {with([](SearchFlags& f) { f.trials = -3; }), "--trials must be at least 1 (got -3)"},
      {with([](SearchFlags& f) { f.trials = 0; }), "--trials must be at least 1 (got 0)"},
      {with([](SearchFlags& f) { f.trials = int64_t{1} << 32; }),
       "--trials must be at most 2147483647 (got 4294967296)"},
      {with([](SearchFlags& f) { f.timeout = -1; }),
       "--timeout must be a positive number (got -1)"},
      {with([](SearchFlags& f) { f.timeout = std::nan(""); }),
       "--timeout must be a positive number (got nan)"},
      {with([](SearchFlags& f) { f.jobs = 0; }), "--jobs must be at least 1 (got 0)"},
      {with([](SearchFlags& f) { f.seed = -1; }), "--seed must be at least 0 (got -1)"},
      {with([](SearchFlags& f) { f.num_samples = 0; }), "--num-samples must be at least 1 (got 0)"},
  };
  for (const Case& c : cases) {
    const std::string e = settings_error(kMinimalSearch, c.flags);
    EXPECT_EQ(e, c.expect);
  }
  // In range, they win over the config.
  SearchFlags f;
  f.seed = 5;
  f.timeout = 0.5;
  SearchSettings s = resolve_search_settings(load_config(write_toml(kMinimalSearch)), f);
  EXPECT_EQ(s.seed, 5u);
  EXPECT_EQ(s.timeout_s, 0.5);
}

// Issue 9 item 2: TPE's options from [search.strategy.setup], flags winning, reach the sampler.
TEST(SearchSettings, TpeOptionsReachTheSamplerOptions) {
  const std::string text = kMinimalSearch +
                           "[search.strategy.setup]\nmultivariate = true\ngroup = true\n"
                           "constant_liar = true\nn_startup_trials = 20\nn_ei_candidates = 48\n"
                           "gamma = 0.25\ngamma_max = 40\nstall_window = 7\nseed = 9\n";
  SearchSettings s = resolve_search_settings(load_config(write_toml(text)), {});
  const search::SamplerOptions& o = s.sampler_options;
  EXPECT_EQ(o.seed, 9u);
  EXPECT_TRUE(o.multivariate);
  EXPECT_TRUE(o.group);
  EXPECT_TRUE(o.constant_liar);
  EXPECT_EQ(o.n_startup_trials, 20);
  EXPECT_EQ(o.n_ei_candidates, 48);
  EXPECT_EQ(o.gamma_fraction, 0.25);
  EXPECT_EQ(o.gamma_max, 40);
  EXPECT_EQ(o.stall_window, 7);
  SearchFlags f;
  f.multivariate = false;
  f.group = false;
  f.n_ei_candidates = 12;
  f.gamma = 0.5;
  f.stall_window = 0;
  s = resolve_search_settings(load_config(write_toml(text)), f);
  EXPECT_FALSE(s.sampler_options.multivariate);
  EXPECT_EQ(s.sampler_options.n_ei_candidates, 12);
  EXPECT_EQ(s.sampler_options.gamma_fraction, 0.5);
  EXPECT_EQ(s.sampler_options.stall_window, 0);
  EXPECT_EQ(s.sampler_options.n_startup_trials, 20);  // the config's, no flag
  // Defaults: the library's.
  s = resolve_search_settings(load_config(write_toml(kMinimalSearch)), {});
  const search::SamplerOptions d;
  EXPECT_EQ(s.sampler_options.multivariate, d.multivariate);
  EXPECT_EQ(s.sampler_options.constant_liar, d.constant_liar);
  EXPECT_EQ(s.sampler_options.stall_window, d.stall_window);
  EXPECT_EQ(s.sampler_options.n_startup_trials, 10);
  EXPECT_EQ(s.sampler_options.n_ei_candidates, 24);
  EXPECT_EQ(s.sampler_options.gamma_fraction, 0.1);
  EXPECT_EQ(s.sampler_options.gamma_max, 25);

  // Bad combinations and flags: one line naming the file or the flag.
  std::string e = settings_error(kMinimalSearch +
                                 "[search.strategy.setup]\ngroup = true\nmultivariate = false\n");
  EXPECT_NE(e.find(".toml: group = true needs multivariate = true"), std::string::npos) << e;
  const auto flag_error = [](auto set) {
    SearchFlags fl;
    set(fl);
    return settings_error(kMinimalSearch, fl);
  };
  EXPECT_EQ(flag_error([](SearchFlags& fl) { fl.n_ei_candidates = 0; }),
            "--n-ei-candidates must be at least 1 (got 0)");
  EXPECT_EQ(flag_error([](SearchFlags& fl) { fl.n_startup_trials = -1; }),
            "--n-startup-trials must be at least 0 (got -1)");
  EXPECT_EQ(flag_error([](SearchFlags& fl) { fl.gamma_max = 0; }),
            "--gamma-max must be at least 1 (got 0)");
  EXPECT_EQ(flag_error([](SearchFlags& fl) { fl.stall_window = -1; }),
            "--stall-window must be at least 0 (got -1)");
  EXPECT_NE(flag_error([](SearchFlags& fl) { fl.gamma = 0; }).find("--gamma (the fraction"),
            std::string::npos);
}

TEST(SearchSettings, CsvColumnsFromTheConfigOrFlags) {
  const fs::path dir =
      fs::temp_directory_path() / ("qsearch_config_csv_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "d.csv") << "a,b,y\n1,2,0\n";
  const std::string path = (dir / "c.toml").string();
  std::ofstream(path) << "model = \"m.onnx\"\ndataset = \"csv:d.csv\"\nlabel_column = \"y\"\n"
                         "feature_columns = [\"b\", \"a\"]\n"
                      << kSearchTables;
  RunConfig c = load_config(path);
  EXPECT_EQ(c.label_column, "y");
  EXPECT_EQ(c.feature_columns, (std::vector<std::string>{"b", "a"}));
  SearchSettings s = resolve_search_settings(c, {});
  // A relative CSV path in a config is found beside the config, like the model.
  EXPECT_EQ(s.dataset, "csv:" + (dir / "d.csv").string());
  EXPECT_EQ(s.label_column, "y");
  EXPECT_EQ(s.feature_columns, (std::vector<std::string>{"b", "a"}));
  // Flags override both.
  SearchFlags f;
  f.label_column = "a";
  f.feature_columns = std::vector<std::string>{"b"};
  s = resolve_search_settings(c, f);
  EXPECT_EQ(s.label_column, "a");
  EXPECT_EQ(s.feature_columns, (std::vector<std::string>{"b"}));
  fs::remove_all(dir);

  std::string e = error_of("feature_columns = []\n");
  EXPECT_NE(e.find(":1:19: feature_columns must be a non-empty list"), std::string::npos) << e;
  e = error_of("feature_columns = \"a,b\"\n");
  EXPECT_NE(e.find(":1:19: feature_columns must be a non-empty list"), std::string::npos) << e;
  e = error_of("feature_columns = [\"a\", 2]\n");
  EXPECT_NE(e.find(":1:25: a feature column must be a string"), std::string::npos) << e;
  e = error_of("label_column = 3\n");
  EXPECT_NE(e.find(":1:16: label_column must be a string"), std::string::npos) << e;
}

TEST(Config, MaseSpellingsWeRefuseSayWhy) {
  // A directory: say so (toml++ reads it as an empty file: "no [search] section").
  const fs::path dir =
      fs::temp_directory_path() / ("qsearch_config_dir_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "b.toml") << "";
  std::ofstream(dir / "a.toml") << "";
  try {
    load_config(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("is a directory, not a TOML file"), std::string::npos) << w;
    EXPECT_NE(w.find((dir / "a.toml").string() + ", " + (dir / "b.toml").string()),
              std::string::npos)
        << w;
  }
  fs::remove_all(dir);
  // MASE's manual_hf space puts the fields directly under the seed.
  std::string e = error_of("[search.search_space.seed.default]\ndata_in_width = [8]\n");
  EXPECT_NE(
      e.find(":2:1: 'data_in_width' must be inside [search.search_space.seed.default.config]"),
      std::string::npos)
      << e;
  // MASE's nsgaiii sampler, its stub hardware runners.
  SearchFlags f;
  f.sampler = "nsgaiii";
  e = settings_error(kMinimalSearch, f);
  EXPECT_NE(e.find("MASE's NSGA-III is not implemented"), std::string::npos) << e;
  for (const char* stub : {"hw_dummy", "resource_usage"}) {
    e = settings_error(kMinimalSearch + "[search.strategy.hw_runner." + stub + "]\n");
    EXPECT_NE(e.find(std::string("hw_runner '") + stub + "' is one of MASE's stubs"),
              std::string::npos)
        << e;
  }
}

}  // namespace
}  // namespace qsearch::config
