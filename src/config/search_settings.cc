#include "config/search_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "config/checks.h"
#include "core/error.h"
#include "search/sampler.h"

namespace qsearch::config {

namespace {

namespace fs = std::filesystem;

template <typename T>
T pick(const std::optional<T>& flag, const std::optional<T>& toml, T fallback, const char* key,
       std::vector<std::string>& prov) {
  if (flag) {
    prov.push_back(fmt::format("{} = {} (command line)", key, *flag));
    return *flag;
  }
  if (toml) {
    prov.push_back(fmt::format("{} = {} (config)", key, *toml));
    return *toml;
  }
  prov.push_back(fmt::format("{} = {} (default)", key, fallback));
  return fallback;
}

// A path from the config: as given when it exists relative to the working directory (MASE's
// convention), else relative to the config file.
std::string locate(const std::string& path, const std::string& config_path) {
  if (fs::exists(path) || fs::path(path).is_absolute()) return path;
  fs::path beside = fs::path(config_path).parent_path() / path;
  return fs::exists(beside) ? beside.string() : path;
}

bool looks_like_file(const std::string& s) {
  return s.ends_with(".onnx") || s.find('/') != std::string::npos;
}

runtime::Mode parse_mode(const std::string& m, const std::string& where) {
  if (m == "int") return runtime::Mode::kInt;
  if (m == "fake") return runtime::Mode::kFake;
  if (m == "float") return runtime::Mode::kFloat;
  fail(
      "{}mode = \"{}\": expected \"int\" (bit-accurate integer engine), \"fake\" (MASE's float "
      "fake quantization) or \"float\"",
      where, m);
}

// A runner's integer option, at least `min` when given.
int64_t int_option(const RunnerConfig& r, const char* key, int64_t fallback, int64_t min,
                   int64_t max = INT64_MAX) {
  const ConfigValue* v = r.find(key);
  if (!v) return fallback;
  if (v->kind != ConfigValue::Kind::kInt) fail("{}{} must be an integer", v->where(), key);
  check_at_least(v->where() + key, v->i, min, max);
  return v->i;
}

void check_options(const RunnerConfig& r, const std::vector<std::string>& valid,
                   const std::string& table) {
  for (const auto& [k, v] : r.options) {
    if (std::find(valid.begin(), valid.end(), k) != valid.end()) continue;
    std::string hint = nearest_key(k, valid);
    fail("{}unknown key '{}' in [{}.{}]{}", v.where(), k, table, r.name,
         hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint));
  }
}

}  // namespace

SearchSettings resolve_search_settings(const RunConfig& c, const SearchFlags& f) {
  // The overrides' ranges (the config's were checked when it was read).
  if (f.trials) check_at_least("--trials", *f.trials, 1, kMaxIntCount);
  if (f.timeout) check_positive("--timeout", *f.timeout);
  if (f.jobs) check_at_least("--jobs", *f.jobs, 1);
  if (f.seed) check_at_least("--seed", *f.seed, 0);
  if (f.num_samples) check_at_least("--num-samples", *f.num_samples, 1);
  if (f.n_startup_trials)
    check_at_least("--n-startup-trials", *f.n_startup_trials, 0, kMaxIntCount);
  if (f.n_ei_candidates) {
    check_at_least("--n-ei-candidates", *f.n_ei_candidates, 1, kMaxTpeCandidates);
  }
  if (f.gamma_max) check_at_least("--gamma-max", *f.gamma_max, 1, kMaxIntCount);
  if (f.stall_window) check_at_least("--stall-window", *f.stall_window, 0, kMaxIntCount);
  if (f.gamma && !(*f.gamma > 0 && *f.gamma <= 1)) {
    fail(
        "--gamma (the fraction in gamma(n) = min(ceil(gamma n), gamma_max)) must be in (0, 1] "
        "(got {})",
        *f.gamma);
  }
  if (!c.search) {
    fail(
        "{}: no [search] section: a search config needs [search.search_space] and "
        "[search.strategy] (see configs/mnist_mlp.toml)",
        c.path);
  }
  const SearchSection& s = *c.search;
  SearchSettings out;
  out.config_path = c.path;
  auto& prov = out.provenance;

  // Model: an ONNX path, or a zoo name whose trained weights are in load_name.
  out.model_name = pick<std::string>(f.model, c.model, "", "model", prov);
  if (out.model_name.empty()) {
    fail("{}: no model: set model = \"models/mlp_mnist.onnx\" in the config or pass --model",
         c.path);
  }
  if (c.load_type && *c.load_type != "onnx") {
    fail(
        "{}: load_type = \"{}\": qsearch reads ONNX models; export a PyTorch model with "
        "torch.onnx.export (dynamic batch axis) and set load_name to the .onnx file",
        c.path, *c.load_type);
  }
  if (looks_like_file(out.model_name)) {
    // A path on the command line is relative to the working directory only.
    out.model_path = f.model ? out.model_name : locate(out.model_name, c.path);
  } else if (c.load_name && !f.model) {
    out.model_path = locate(*c.load_name, c.path);
  } else {
    fail(
        "{}: model = \"{}\" names an architecture, not trained weights. Searching an untrained "
        "model measures noise (the lab report's first lesson): set load_name = \"path.onnx\" to "
        "a trained model, use a shipped one (models/*.onnx), or train one with `qsearch train "
        "--model {} --dataset ... --out path.onnx`",
        c.path, out.model_name, out.model_name);
  }

  out.dataset = pick<std::string>(f.dataset, c.dataset, "", "dataset", prov);
  if (out.dataset.empty())
    fail("{}: no dataset: set dataset = \"mnist\" or pass --dataset", c.path);
  if (out.dataset.starts_with("csv:") && !f.dataset) {
    out.dataset = "csv:" + locate(out.dataset.substr(4), c.path);
  }
  // npz:PATH[?x=..&y=..] and npy:X,Y: the files are located like the model.
  if (out.dataset.starts_with("npz:") && !f.dataset) {
    const std::string rest = out.dataset.substr(4);
    const size_t q = rest.rfind('?');
    out.dataset =
        "npz:" + locate(rest.substr(0, q), c.path) + (q == std::string::npos ? "" : rest.substr(q));
  }
  if (out.dataset.starts_with("npy:") && !f.dataset) {
    const std::string rest = out.dataset.substr(4);
    const size_t comma = rest.find(',');
    if (comma != std::string::npos) {
      out.dataset = "npy:" + locate(rest.substr(0, comma), c.path) + "," +
                    locate(rest.substr(comma + 1), c.path);
    }
  }
  out.x_array = c.x_array.value_or("");
  out.y_array = c.y_array.value_or("");
  // Listed in the start-up summary only when asked for (the default is MASE's semantics).
  if (f.fold_bn || c.fold_batch_norm) {
    out.fold_batch_norm = pick<bool>(f.fold_bn, c.fold_batch_norm, false, "fold_batch_norm", prov);
  }
  out.label_column = pick<std::string>(f.label_column, c.label_column, "", "label_column", prov);
  out.feature_columns = f.feature_columns.value_or(c.feature_columns);

  std::string stem = fs::path(c.path).stem().string();
  out.project = c.project.value_or(stem);
  out.sampler = pick<std::string>(f.sampler, s.sampler, "tpe", "sampler", prov);
  {
    std::string lower = out.sampler;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto names = search::sampler_names();
    bool ok = std::find(names.begin(), names.end(), lower) != names.end() || lower == "grid" ||
              lower == "brute_force";
    if (!ok) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      fail("unknown sampler '{}'{}; qsearch has: {}", out.sampler,
           lower == "nsgaiii" ? " (MASE's NSGA-III is not implemented; nsgaii is NSGA-II)" : "",
           list);
    }
  }
  out.n_trials = pick<int64_t>(f.trials, s.n_trials, -1, "n_trials", prov);
  out.timeout_s = pick<double>(f.timeout, s.timeout, -1.0, "timeout", prov);
  out.n_jobs = static_cast<int>(pick<int64_t>(f.jobs, s.n_jobs, 1, "n_jobs", prov));
  if (out.n_jobs < 1) fail("n_jobs must be >= 1, got {}", out.n_jobs);
  std::optional<uint64_t> toml_seed = s.seed ? s.seed : c.seed;
  std::optional<uint64_t> flag_seed;
  if (f.seed) flag_seed = static_cast<uint64_t>(*f.seed);
  out.seed = pick<uint64_t>(flag_seed, toml_seed, 0, "seed", prov);
  {
    search::SamplerOptions& so = out.sampler_options;
    const search::SamplerOptions d;
    so.seed = out.seed;
    so.multivariate =
        pick<bool>(f.multivariate, s.multivariate, d.multivariate, "multivariate", prov);
    so.group = pick<bool>(f.group, s.group, d.group, "group", prov);
    so.constant_liar =
        pick<bool>(f.constant_liar, s.constant_liar, d.constant_liar, "constant_liar", prov);
    so.n_startup_trials = static_cast<int>(pick<int64_t>(
        f.n_startup_trials, s.n_startup_trials, d.n_startup_trials, "n_startup_trials", prov));
    so.n_ei_candidates = static_cast<int>(pick<int64_t>(
        f.n_ei_candidates, s.n_ei_candidates, d.n_ei_candidates, "n_ei_candidates", prov));
    so.gamma_fraction = pick<double>(f.gamma, s.gamma, d.gamma_fraction, "gamma", prov);
    so.gamma_max =
        static_cast<int>(pick<int64_t>(f.gamma_max, s.gamma_max, d.gamma_max, "gamma_max", prov));
    so.stall_window = static_cast<int>(
        pick<int64_t>(f.stall_window, s.stall_window, d.stall_window, "stall_window", prov));
    if (so.group && !so.multivariate) {
      fail(
          "{}: group = true needs multivariate = true (as in Optuna; [search.strategy.setup] or "
          "--multivariate true)",
          c.path);
    }
  }
  out.study_name = pick<std::string>(f.study, s.study_name, out.project, "study_name", prov);
  out.out_dir = pick<std::string>(f.out, std::nullopt,
                                  (fs::path("qsearch_output") / out.project / "search").string(),
                                  "out", prov);
  out.storage = pick<std::string>(f.storage, s.storage,
                                  "sqlite:///" + (fs::path(out.out_dir) / "study.db").string(),
                                  "storage", prov);
  if (s.save_every_n_trials) out.save_every_n_trials = static_cast<int>(*s.save_every_n_trials);
  out.sampler_options.max_group_options =
      static_cast<int>(s.max_group_options.value_or(out.sampler_options.max_group_options));
  out.heartbeat_interval_s = s.heartbeat_interval.value_or(search::kDefaultHeartbeatIntervalS);
  out.grace_period_s = s.grace_period.value_or(search::kDefaultGracePeriodS);
  if (!(out.heartbeat_interval_s > 0) || !(out.grace_period_s > out.heartbeat_interval_s)) {
    fail(
        "{}: [search.strategy.setup] heartbeat_interval = {} and grace_period = {} (seconds): "
        "the interval must be > 0 and the grace period larger than it (defaults {} and {}), or "
        "live trials would be reclaimed",
        c.path, out.heartbeat_interval_s, out.grace_period_s, search::kDefaultHeartbeatIntervalS,
        search::kDefaultGracePeriodS);
  }

  out.by = eval::parse_match_by(s.by);
  out.seeds = s.seeds;
  if (out.seeds.empty()) {
    fail(
        "{}: [search.search_space.seed] is empty: give at least "
        "[search.search_space.seed.default.config] with choice lists",
        c.path);
  }

  // Runners.
  eval::ObjectiveOptions& o = out.objective;
  o.batch_size = c.batch_size.value_or(128);
  std::string mode = "int";
  for (const RunnerConfig& r : s.sw_runners) {
    if (r.name != "basic_evaluation") {
      fail(
          "{}: unknown sw_runner '{}'; qsearch has basic_evaluation (MASE's basic_train "
          "needs quantization-aware training, not yet available)",
          r.loc.str(), r.name);
    }
    check_options(r, {"num_samples", "data_loader", "dataloader", "mode"},
                  "search.strategy.sw_runner");
    o.num_samples = int_option(r, "num_samples", -1, 1);
    for (const char* key : {"dataloader", "data_loader"}) {
      if (const ConfigValue* v = r.find(key)) {
        if (v->s == "val_dataloader")
          out.split = "val";
        else if (v->s == "train_dataloader")
          out.split = "train";
        else if (v->s == "test_dataloader")
          out.split = "test";
        else
          fail("{}{} must be val_dataloader, train_dataloader or test_dataloader", v->where(), key);
      }
    }
    if (const ConfigValue* v = r.find("mode")) mode = v->s;
  }
  if (f.num_samples) o.num_samples = *f.num_samples;
  if (f.mode) mode = *f.mode;
  o.mode = parse_mode(mode, "");
  prov.push_back(fmt::format("mode = {}", mode));
  for (const RunnerConfig& r : s.hw_runners) {
    if (r.name == "average_bitwidth") {
      check_options(r, {"compare_to"}, "search.strategy.hw_runner");
      const ConfigValue* v = r.find("compare_to");
      if (!v || !v->is_number()) {
        fail(
            "{}: [search.strategy.hw_runner.average_bitwidth] needs compare_to = 32 (MASE "
            "asserts it)",
            r.loc.str());
      }
      check_positive(v->where() + "compare_to", v->number());
      o.compare_to = v->number();
    } else if (r.name == "model_size") {
      check_options(r, {}, "search.strategy.hw_runner");
      o.model_size = true;
    } else if (r.name == "bitops") {
      check_options(r, {}, "search.strategy.hw_runner");
      o.bitops = true;
    } else if (r.name == "latency") {
      check_options(r, {"batch_size", "repeats"}, "search.strategy.hw_runner");
      eval::LatencyOptions lo;
      lo.batch_size = int_option(r, "batch_size", 1, 1);
      lo.repeats = static_cast<int>(int_option(r, "repeats", 20, 1, kMaxIntCount));
      o.latency = lo;
    } else if (r.name == "fpga") {
      // docs/hardware.md: the hls4ml io_parallel cost model and its constraints.
      static const std::vector<std::pair<std::string, std::string>> kMax = {
          {"max_dsp", "fpga_dsp"},
          {"max_lut", "fpga_lut"},
          {"max_ff", "fpga_ff"},
          {"max_bram", "fpga_bram"},
          {"max_latency_cycles", "fpga_latency_cycles"},
          {"max_latency_ns", "fpga_latency_ns"},
          {"max_ii", "fpga_ii"}};
      std::vector<std::string> keys = {"device", "clock_mhz", "reuse_factor", "accum_width"};
      for (const auto& [k, m] : kMax) keys.push_back(k);
      check_options(r, keys, "search.strategy.hw_runner");
      eval::FpgaOptions fo;
      if (const ConfigValue* v = r.find("device")) {
        if (v->kind != ConfigValue::Kind::kString) {
          fail("{}device must be a string such as \"xcu250\"", v->where());
        }
        try {
          fo.device = eval::fpga_device(v->s).name;
        } catch (const Error& e) {
          fail("{}{}", v->where(), e.what());
        }
      }
      if (const ConfigValue* v = r.find("clock_mhz")) {
        if (!v->is_number()) fail("{}clock_mhz must be a number (MHz), e.g. 200", v->where());
        check_positive(v->where() + "clock_mhz", v->number());
        fo.clock_mhz = v->number();
      }
      fo.reuse_factor = static_cast<int>(int_option(r, "reuse_factor", 1, 1, 1 << 20));
      for (const auto& [k, list] : r.lists) {  // reuse_factor = [1, 2, 4]: searched per layer
        for (const ConfigValue& v : list) {
          if (v.kind != ConfigValue::Kind::kInt) {
            fail("{}reuse_factor choice {} must be an integer", v.where(), v.str());
          }
          check_at_least(v.where() + "reuse_factor", v.i, 1, 1 << 20);
        }
        fo.reuse_factor_choices = list;
      }
      fo.accum_width = static_cast<int>(int_option(r, "accum_width", 0, 0, 64));
      o.fpga = fo;
      for (const auto& [k, m] : kMax) {
        const ConfigValue* v = r.find(k);
        if (!v) continue;
        if (!v->is_number()) fail("{}{} must be a number", v->where(), k);
        if (!(v->number() >= 0)) fail("{}{} must be >= 0 (got {})", v->where(), k, v->number());
        o.constraints.push_back({m, v->number(), k});
      }
      std::string rf = std::to_string(fo.reuse_factor);
      if (!fo.reuse_factor_choices.empty()) {
        rf = "searched in [";
        for (size_t i = 0; i < fo.reuse_factor_choices.size(); ++i) {
          rf += (i ? ", " : "") + fo.reuse_factor_choices[i].str();
        }
        rf += "]";
      }
      prov.push_back(
          fmt::format("fpga = {} @ {} MHz, reuse_factor {}", fo.device, fo.clock_mhz, rf));
    } else if (r.name == "hw_dummy" || r.name == "resource_usage") {
      fail(
          "{}: hw_runner '{}' is one of MASE's stubs, which return no metrics: remove the table "
          "(qsearch has average_bitwidth, model_size, bitops, latency, fpga)",
          r.loc.str(), r.name);
    } else {
      std::string hint =
          nearest_key(r.name, {"average_bitwidth", "model_size", "bitops", "latency", "fpga"});
      fail(
          "{}: unknown hw_runner '{}'{}; qsearch has average_bitwidth, model_size, bitops, "
          "latency, fpga",
          r.loc.str(), r.name, hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint));
    }
  }

  // Objectives: metrics in sorted name order.
  o.sum_scaled_metrics = s.sum_scaled_metrics.value_or(false);
  for (const MetricConfig& m : s.metrics) {
    o.metrics.push_back({m.name, m.scale});
    if (!o.sum_scaled_metrics) {
      if (!m.direction) {
        fail(
            "{}: metric '{}' needs a direction (\"maximize\" or \"minimize\") in a "
            "multi-objective search",
            m.loc.str(), m.name);
      }
      out.directions.push_back(*m.direction);
    }
  }
  if (o.sum_scaled_metrics) {
    if (!s.direction) {
      fail(
          "{}: sum_scaled_metrics = true needs [search.strategy.setup] direction = \"maximize\" "
          "or \"minimize\"",
          c.path);
    }
    out.directions = {*s.direction};
  }
  if (o.metrics.empty()) {
    fail(
        "{}: [search.strategy.metrics] is empty: e.g. accuracy.scale = 1.0, "
        "accuracy.direction = \"maximize\"",
        c.path);
  }

  // Racing and the final evaluation (docs/search.md "Racing").
  o.racing = pick<bool>(f.racing, s.racing, false, "racing", prov);
  o.racing_slice = pick<double>(f.racing_slice, s.racing_slice, 0.25, "racing_slice", prov);
  o.racing_z = pick<double>(f.racing_z, s.racing_z, 2.5, "racing_z", prov);
  auto where = [&](bool flag, const char* name) {
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    return flag ? "--" + dashed : fmt::format("{}: [search.strategy.setup] {}", c.path, name);
  };
  if (!(o.racing_slice > 0 && o.racing_slice < 1)) {
    fail("{} = {}: must be the share of num_samples racing evaluates first, in (0, 1), e.g. 0.25",
         where(f.racing_slice.has_value(), "racing_slice"), o.racing_slice);
  }
  if (!(o.racing_z > 0) || !std::isfinite(o.racing_z)) {
    fail("{} = {}: must be a positive number of standard errors, e.g. 2.5",
         where(f.racing_z.has_value(), "racing_z"), o.racing_z);
  }
  out.proxy = pick<std::string>(f.proxy, s.proxy, "probe", "proxy", prov);
  if (out.proxy != "probe" && out.proxy != "fisher" && out.proxy != "hessian") {
    fail("{} = \"{}\": use \"probe\" (measured probe trials), \"fisher\" or \"hessian\"",
         where(f.proxy.has_value(), "proxy"), out.proxy);
  }
  // Only the sensitivity strategy reads a proxy; asking another for one would be silently
  // ignored. A --sampler flag overriding a config that names a proxy is not an error: the flag
  // chose another strategy for this run.
  std::string sampler = out.sampler;
  for (char& ch : sampler) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (out.proxy != "probe" && sampler != "sensitivity" && !(f.sampler && !f.proxy)) {
    fail(
        "{} = \"{}\" needs sampler = \"sensitivity\" (the only strategy that uses a proxy); the "
        "sampler is '{}': drop the proxy or use --sampler sensitivity",
        where(f.proxy.has_value(), "proxy"), out.proxy, out.sampler);
  }
  out.final_eval = pick<std::string>(f.final_eval, s.final_eval, "none", "final_eval", prov);
  if (out.final_eval != "none" && out.final_eval != "full") {
    fail(
        "{} = \"{}\": use \"full\" (evaluate the final front again on the whole split) or "
        "\"none\"",
        where(f.final_eval.has_value(), "final_eval"), out.final_eval);
  }
  return out;
}

}  // namespace qsearch::config
