#include "config/config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <filesystem>
#include <map>

#include "config/checks.h"
#include "core/error.h"

namespace qsearch::config {

const ConfigValue* RunnerConfig::find(const std::string& key) const {
  for (const auto& [k, v] : options) {
    if (k == key) return &v;
  }
  return nullptr;
}

const RunnerConfig* SearchSection::sw_runner(const std::string& name) const {
  for (const auto& r : sw_runners) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const RunnerConfig* SearchSection::hw_runner(const std::string& name) const {
  for (const auto& r : hw_runners) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::string nearest_key(const std::string& key, const std::vector<std::string>& valid) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& v : valid) {
    size_t d = distance(key, v);
    if (d < best_d) {
      best_d = d;
      best = v;
    }
  }
  // Suggest only when at most about a third of the key differs.
  if (best_d == std::string::npos || best_d > std::max<size_t>(2, key.size() / 3)) return "";
  return best;
}

namespace {

// toml++ keeps a table's keys sorted; MASE (a Python dict) keeps file order, which fixes the
// order of search parameters. Iterate in source order instead.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, &v);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& sa = a.first->source().begin;
    const auto& sb = b.first->source().begin;
    return sa.line != sb.line ? sa.line < sb.line : sa.column < sb.column;
  });
  return out;
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  SourceLoc loc(const toml::node& n) const {
    const auto& s = n.source();
    return {file_, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)};
  }
  SourceLoc loc(const toml::key& k) const {
    const auto& s = k.source();
    return {file_, static_cast<int>(s.begin.line), static_cast<int>(s.begin.column)};
  }

  [[noreturn]] void error(const SourceLoc& at, const std::string& msg) const {
    throw Error(fmt::format("{}: {}", at.str(), msg));
  }

  void unknown_key(const toml::key& k, const std::string& table,
                   const std::vector<std::string>& valid) const {
    std::string key(k.str());
    std::string hint = nearest_key(key, valid);
    std::string msg = fmt::format("unknown key '{}' in [{}]", key, table);
    if (!hint.empty()) {
      msg += fmt::format("; did you mean '{}'?", hint);
    } else {
      std::string list;
      for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
      msg += fmt::format(" (valid keys: {})", list);
    }
    error(loc(k), msg);
  }

  const toml::table& table(const toml::node& n, const std::string& name) const {
    if (!n.is_table()) error(loc(n), fmt::format("[{}] must be a table", name));
    return *n.as_table();
  }

  ConfigValue scalar(const toml::node& n, const std::string& what) const {
    ConfigValue v;
    v.loc = loc(n);
    if (auto s = n.value<std::string>(); s && n.is_string()) {
      if (*s == "NA") {
        v.kind = ConfigValue::Kind::kNA;
      } else {
        v.kind = ConfigValue::Kind::kString;
        v.s = *s;
      }
    } else if (n.is_integer()) {
      v.kind = ConfigValue::Kind::kInt;
      v.i = *n.value<int64_t>();
    } else if (n.is_floating_point()) {
      v.kind = ConfigValue::Kind::kFloat;
      v.f = *n.value<double>();
    } else if (n.is_boolean()) {
      v.kind = ConfigValue::Kind::kBool;
      v.b = *n.value<bool>();
    } else {
      error(loc(n), fmt::format("{} must be a number, string, boolean or \"NA\"", what));
    }
    return v;
  }

  std::string string(const toml::node& n, const std::string& what) const {
    if (!n.is_string()) error(loc(n), fmt::format("{} must be a string", what));
    return *n.value<std::string>();
  }
  int64_t integer(const toml::node& n, const std::string& what) const {
    if (!n.is_integer()) error(loc(n), fmt::format("{} must be an integer", what));
    return *n.value<int64_t>();
  }
  double number(const toml::node& n, const std::string& what) const {
    if (!n.is_integer() && !n.is_floating_point()) {
      error(loc(n), fmt::format("{} must be a number", what));
    }
    return *n.value<double>();
  }
  // Range-checked numbers: "file:line:col: what must be at least 1 (got 0)".
  int64_t integer_at_least(const toml::node& n, const std::string& what, int64_t min,
                           int64_t max = INT64_MAX) const {
    const int64_t v = integer(n, what);
    check_at_least(loc(n).str() + ": " + what, v, min, max);
    return v;
  }
  double positive(const toml::node& n, const std::string& what) const {
    const double v = number(n, what);
    check_positive(loc(n).str() + ": " + what, v);
    return v;
  }
  double finite(const toml::node& n, const std::string& what) const {
    const double v = number(n, what);
    check_finite(loc(n).str() + ": " + what, v);
    return v;
  }
  bool boolean(const toml::node& n, const std::string& what) const {
    if (!n.is_boolean()) error(loc(n), fmt::format("{} must be true or false", what));
    return *n.value<bool>();
  }
  search::Direction direction(const toml::node& n, const std::string& what) const {
    std::string s = string(n, what);
    try {
      return search::parse_direction(s);
    } catch (const Error&) {
      error(loc(n), fmt::format("{} must be \"maximize\" or \"minimize\", got \"{}\"", what, s));
    }
  }

 private:
  std::string file_;
};

// MASE CLI arguments (mase.md §1.1) that may appear at the top level of a config.
const std::vector<std::string> kUsedTopLevel = {
    "model", "dataset",      "batch_size",      "seed",    "project", "load_name",      "load_type",
    "task",  "label_column", "feature_columns", "x_array", "y_array", "fold_batch_norm"};
const std::vector<std::string> kIgnoredTopLevel = {"max_epochs",
                                                   "learning_rate",
                                                   "accelerator",
                                                   "log_every_n_steps",
                                                   "to_debug",
                                                   "log_level",
                                                   "report_to",
                                                   "quant_config",
                                                   "training_optimizer",
                                                   "trainer_precision",
                                                   "weight_decay",
                                                   "max_steps",
                                                   "accumulate_grad_batches",
                                                   "num_workers",
                                                   "num_devices",
                                                   "num_nodes",
                                                   "strategy",
                                                   "auto_requeue",
                                                   "github_ci",
                                                   "disable_dataset_cache",
                                                   "is_pretrained",
                                                   "target",
                                                   "num_targets",
                                                   "run_emit",
                                                   "skip_build",
                                                   "skip_test",
                                                   "max_token_len",
                                                   "project_dir",
                                                   "profile",
                                                   "no_warnings",
                                                   "t_max",
                                                   "eta_min"};
const std::vector<std::string> kTopLevelTables = {"passes", "transform", "search"};

QuantizePass read_quantize(const Reader& r, const toml::table& t) {
  QuantizePass pass;
  for (const auto& [k_ptr, v_ptr] : in_file_order(t)) {
    const toml::key& k = *k_ptr;
    const toml::node& v = *v_ptr;
    std::string key(k.str());
    if (key == "by") {
      pass.by = r.string(v, "passes.quantize.by");
      pass.loc = r.loc(v);
      if (pass.by != "name" && pass.by != "type" && pass.by != "regex_name") {
        r.error(r.loc(v),
                fmt::format("by = \"{}\": expected \"name\", \"type\" or \"regex_name\"", pass.by));
      }
      continue;
    }
    if (key == "report" || key == "summarize") continue;  // MASE's optional reporting switches
    const toml::table& entry = r.table(v, "passes.quantize." + key);
    QuantEntry q;
    q.key = key;
    q.loc = r.loc(k);
    for (const auto& [ek_ptr, ev_ptr] : in_file_order(entry)) {
      const toml::key& ek = *ek_ptr;
      const toml::node& ev = *ev_ptr;
      if (ek.str() != "config") {
        r.unknown_key(ek, "passes.quantize." + key, {"config"});
      }
      for (const auto& [fk_ptr, fv_ptr] :
           in_file_order(r.table(ev, "passes.quantize." + key + ".config"))) {
        const toml::key& fk = *fk_ptr;
        const toml::node& fv = *fv_ptr;
        q.fields.emplace_back(
            std::string(fk.str()),
            r.scalar(fv, "passes.quantize." + key + ".config." + std::string(fk.str())));
      }
    }
    pass.entries.push_back(std::move(q));
  }
  return pass;
}

void read_space(const Reader& r, const toml::table& t, SearchSection& s) {
  for (const auto& [k_ptr, v_ptr] : in_file_order(t)) {
    const toml::key& k = *k_ptr;
    const toml::node& v = *v_ptr;
    std::string key(k.str());
    if (key == "name") {
      s.space_name = r.string(v, "search.search_space.name");
      if (s.space_name != "graph/quantize/mixed_precision_ptq") {
        r.error(r.loc(v), fmt::format("search space \"{}\" is not supported; qsearch implements "
                                      "\"graph/quantize/mixed_precision_ptq\"",
                                      s.space_name));
      }
    } else if (key == "setup") {
      for (const auto& [sk_ptr, sv_ptr] : in_file_order(r.table(v, "search.search_space.setup"))) {
        const toml::key& sk = *sk_ptr;
        const toml::node& sv = *sv_ptr;
        if (sk.str() == "by") {
          s.by = r.string(sv, "search.search_space.setup.by");
          s.by_loc = r.loc(sv);
          if (s.by != "name" && s.by != "type") {
            r.error(r.loc(sv), fmt::format("by = \"{}\": expected \"name\" or \"type\"", s.by));
          }
        } else if (sk.str() != "model_parallel") {
          r.unknown_key(sk, "search.search_space.setup", {"by"});
        }
      }
    } else if (key == "seed") {
      for (const auto& [nk_ptr, nv_ptr] : in_file_order(r.table(v, "search.search_space.seed"))) {
        const toml::key& nk = *nk_ptr;
        const toml::node& nv = *nv_ptr;
        SeedEntry e;
        e.key = std::string(nk.str());
        e.loc = r.loc(nk);
        std::string tname = "search.search_space.seed." + e.key;
        for (const auto& [ck_ptr, cv_ptr] : in_file_order(r.table(nv, tname))) {
          const toml::key& ck = *ck_ptr;
          const toml::node& cv = *cv_ptr;
          if (ck.str() != "config" && !cv.is_table()) {
            // MASE's manual_hf space writes [search.search_space.seed.default] without .config.
            r.error(r.loc(ck),
                    fmt::format("'{}' must be inside [{}.config] (the graph space's seeds are "
                                "[search.search_space.seed.<key>.config]; fields directly under "
                                "the seed are MASE's manual_hf space, which qsearch does not have)",
                                std::string(ck.str()), tname));
          }
          if (ck.str() != "config") r.unknown_key(ck, tname, {"config"});
          for (const auto& [fk_ptr, fv_ptr] : in_file_order(r.table(cv, tname + ".config"))) {
            const toml::key& fk = *fk_ptr;
            const toml::node& fv = *fv_ptr;
            std::string field(fk.str());
            std::string what = tname + ".config." + field;
            std::vector<ConfigValue> choices;
            if (const toml::array* arr = fv.as_array()) {
              if (arr->empty()) r.error(r.loc(fv), fmt::format("{} has no choices", what));
              for (const toml::node& c : *arr) choices.push_back(r.scalar(c, what));
            } else {
              // A bare value is one choice (MASE needs lists; accepting scalars is kinder).
              choices.push_back(r.scalar(fv, what));
            }
            e.fields.emplace_back(field, std::move(choices));
          }
        }
        s.seeds.push_back(std::move(e));
      }
    } else {
      r.unknown_key(k, "search.search_space", {"name", "setup", "seed"});
    }
  }
}

void read_runners(const Reader& r, const toml::node& v, const std::string& tname,
                  std::vector<RunnerConfig>& out) {
  for (const auto& [rk_ptr, rv_ptr] : in_file_order(r.table(v, tname))) {
    const toml::key& rk = *rk_ptr;
    const toml::node& rv = *rv_ptr;
    RunnerConfig rc;
    rc.name = std::string(rk.str());
    rc.loc = r.loc(rk);
    for (const auto& [ok_ptr, ov_ptr] : in_file_order(r.table(rv, tname + "." + rc.name))) {
      const toml::key& ok = *ok_ptr;
      const toml::node& ov = *ov_ptr;
      const std::string what = tname + "." + rc.name + "." + std::string(ok.str());
      if (ov.is_array() && tname == "search.strategy.hw_runner" && rc.name == "fpga" &&
          ok.str() == "reuse_factor") {  // a search dimension (docs/hardware.md)
        std::vector<ConfigValue> list;
        for (const toml::node& e : *ov.as_array()) list.push_back(r.scalar(e, what));
        if (list.empty()) r.error(r.loc(ov), what + " = [] lists no ReuseFactor; give [1, 2, 4]");
        rc.lists.emplace_back(std::string(ok.str()), std::move(list));
        continue;
      }
      rc.options.emplace_back(std::string(ok.str()), r.scalar(ov, what));
    }
    out.push_back(std::move(rc));
  }
}

void read_strategy(const Reader& r, const toml::table& t, SearchSection& s) {
  for (const auto& [k_ptr, v_ptr] : in_file_order(t)) {
    const toml::key& k = *k_ptr;
    const toml::node& v = *v_ptr;
    std::string key(k.str());
    if (key == "name") {
      s.strategy_name = r.string(v, "search.strategy.name");
      if (s.strategy_name != "optuna") {
        r.error(r.loc(v), fmt::format("strategy \"{}\" is not supported; use name = \"optuna\" "
                                      "and choose the sampler in [search.strategy.setup]",
                                      s.strategy_name));
      }
    } else if (key == "eval_mode") {
      s.eval_mode = r.boolean(v, "search.strategy.eval_mode");
    } else if (key == "sw_runner") {
      read_runners(r, v, "search.strategy.sw_runner", s.sw_runners);
    } else if (key == "hw_runner") {
      read_runners(r, v, "search.strategy.hw_runner", s.hw_runners);
    } else if (key == "setup") {
      const std::string tn = "search.strategy.setup";
      for (const auto& [sk_ptr, sv_ptr] : in_file_order(r.table(v, tn))) {
        const toml::key& sk = *sk_ptr;
        const toml::node& sv = *sv_ptr;
        std::string f(sk.str());
        std::string what = tn + "." + f;
        if (f == "n_jobs") {
          s.n_jobs = r.integer_at_least(sv, what, 1);
        } else if (f == "n_trials") {
          s.n_trials = r.integer_at_least(sv, what, 1, kMaxIntCount);
        } else if (f == "timeout") {
          s.timeout = r.positive(sv, what);
        } else if (f == "sampler") {
          s.sampler = r.string(sv, what);
        } else if (f == "sum_scaled_metrics") {
          s.sum_scaled_metrics = r.boolean(sv, what);
        } else if (f == "direction") {
          s.direction = r.direction(sv, what);
        } else if (f == "seed") {
          s.seed = static_cast<uint64_t>(r.integer_at_least(sv, what, 0));
        } else if (f == "storage") {
          s.storage = r.string(sv, what);
        } else if (f == "study_name") {
          s.study_name = r.string(sv, what);
        } else if (f == "save_every_n_trials") {
          s.save_every_n_trials = r.integer_at_least(sv, what, 1, kMaxIntCount);
        } else if (f == "heartbeat_interval") {
          s.heartbeat_interval = r.positive(sv, what);
        } else if (f == "grace_period") {
          s.grace_period = r.positive(sv, what);
        } else if (f == "racing") {
          s.racing = r.boolean(sv, what);
        } else if (f == "racing_slice") {
          s.racing_slice = r.positive(sv, what);
        } else if (f == "racing_z") {
          s.racing_z = r.positive(sv, what);
        } else if (f == "final_eval") {
          s.final_eval = r.string(sv, what);
        } else if (f == "max_group_options") {
          s.max_group_options = r.integer_at_least(sv, what, 1, kMaxIntCount);
        } else if (f == "proxy") {
          s.proxy = r.string(sv, what);
          if (*s.proxy != "probe" && *s.proxy != "fisher" && *s.proxy != "hessian") {
            r.error(r.loc(sv), fmt::format("{} = \"{}\": use \"probe\" (measured probe trials), "
                                           "\"fisher\" or \"hessian\" (gradient proxies)",
                                           what, *s.proxy));
          }
        } else if (f == "multivariate") {
          s.multivariate = r.boolean(sv, what);
        } else if (f == "group") {
          s.group = r.boolean(sv, what);
        } else if (f == "constant_liar") {
          s.constant_liar = r.boolean(sv, what);
        } else if (f == "n_startup_trials") {
          s.n_startup_trials = r.integer_at_least(sv, what, 0, kMaxIntCount);
        } else if (f == "n_ei_candidates") {
          s.n_ei_candidates = r.integer_at_least(sv, what, 1, kMaxTpeCandidates);
        } else if (f == "gamma") {
          const double g = r.number(sv, what);
          if (!(g > 0 && g <= 1)) {
            r.error(r.loc(sv), fmt::format("{} (the fraction in gamma(n) = min(ceil(gamma n), "
                                           "gamma_max)) must be in (0, 1] (got {})",
                                           what, g));
          }
          s.gamma = g;
        } else if (f == "gamma_max") {
          s.gamma_max = r.integer_at_least(sv, what, 1, kMaxIntCount);
        } else if (f == "stall_window") {
          s.stall_window = r.integer_at_least(sv, what, 0, kMaxIntCount);
        } else if (f == "pkl_ckpt" || f == "model_parallel") {
          // MASE-only: pickled Optuna studies cannot be read; resuming uses the study database.
        } else {
          r.unknown_key(sk, tn,
                        {"n_jobs",
                         "n_trials",
                         "timeout",
                         "sampler",
                         "sum_scaled_metrics",
                         "direction",
                         "seed",
                         "storage",
                         "study_name",
                         "save_every_n_trials",
                         "heartbeat_interval",
                         "grace_period",
                         "racing",
                         "racing_slice",
                         "racing_z",
                         "final_eval",
                         "max_group_options",
                         "proxy",
                         "multivariate",
                         "group",
                         "constant_liar",
                         "n_startup_trials",
                         "n_ei_candidates",
                         "gamma",
                         "gamma_max",
                         "stall_window"});
        }
      }
    } else if (key == "metrics") {
      for (const auto& [mk_ptr, mv_ptr] : in_file_order(r.table(v, "search.strategy.metrics"))) {
        const toml::key& mk = *mk_ptr;
        const toml::node& mv = *mv_ptr;
        MetricConfig m;
        m.name = std::string(mk.str());
        m.loc = r.loc(mk);
        std::string tn = "search.strategy.metrics." + m.name;
        bool has_scale = false;
        for (const auto& [fk_ptr, fv_ptr] : in_file_order(r.table(mv, tn))) {
          const toml::key& fk = *fk_ptr;
          const toml::node& fv = *fv_ptr;
          std::string f(fk.str());
          if (f == "scale") {
            m.scale = r.finite(fv, tn + ".scale");
            has_scale = true;
          } else if (f == "direction") {
            m.direction = r.direction(fv, tn + ".direction");
          } else if (f == "lower_bound" || f == "upper_bound") {
            // RL-strategy bounds (mase.md §2.5): accepted, unused by the samplers.
          } else {
            r.unknown_key(fk, tn, {"scale", "direction", "lower_bound", "upper_bound"});
          }
        }
        if (!has_scale) r.error(m.loc, fmt::format("[{}] needs a scale (MASE requires it)", tn));
        s.metrics.push_back(std::move(m));
      }
      std::sort(s.metrics.begin(), s.metrics.end(),
                [](const MetricConfig& a, const MetricConfig& b) { return a.name < b.name; });
    } else if (key == "algorithm" || key == "env" || key == "device") {
      r.error(r.loc(k), "the RL search strategy's keys are not supported by qsearch");
    } else {
      r.unknown_key(k, "search.strategy",
                    {"name", "eval_mode", "sw_runner", "hw_runner", "setup", "metrics"});
    }
  }
}

}  // namespace

RunConfig load_config(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    fail("config file '{}' does not exist (configs/ holds examples, e.g. configs/mnist_mlp.toml)",
         path);
  }
  if (std::filesystem::is_directory(path)) {
    std::vector<std::string> tomls;
    for (const auto& e : std::filesystem::directory_iterator(path)) {
      if (e.path().extension() == ".toml") tomls.push_back(e.path().string());
    }
    std::sort(tomls.begin(), tomls.end());
    std::string list;
    for (size_t i = 0; i < std::min<size_t>(tomls.size(), 3); ++i) {
      list += (list.empty() ? "" : ", ") + tomls[i];
    }
    if (tomls.size() > 3) list += fmt::format(" (and {} more)", tomls.size() - 3);
    fail("config '{}' is a directory, not a TOML file: give one file{}", path,
         tomls.empty() ? std::string(" (it holds no .toml file)") : fmt::format(", e.g. {}", list));
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& s = e.source();
    fail("{}:{}:{}: TOML syntax error: {}", path, s.begin.line, s.begin.column, e.description());
  }
  Reader r(path);
  RunConfig c;
  c.path = path;
  for (const auto& [k_ptr, v_ptr] : in_file_order(root)) {
    const toml::key& k = *k_ptr;
    const toml::node& v = *v_ptr;
    std::string key(k.str());
    if (key == "model") {
      c.model = r.string(v, "model");
      c.model_loc = r.loc(v);
    } else if (key == "dataset") {
      c.dataset = r.string(v, "dataset");
      c.dataset_loc = r.loc(v);
    } else if (key == "label_column") {
      c.label_column = r.string(v, "label_column");
    } else if (key == "x_array") {
      c.x_array = r.string(v, "x_array");
    } else if (key == "y_array") {
      c.y_array = r.string(v, "y_array");
    } else if (key == "feature_columns") {
      const toml::array* arr = v.as_array();
      if (!arr || arr->empty()) {
        r.error(r.loc(v),
                "feature_columns must be a non-empty list of column names, e.g. [\"x1\", \"x2\"] "
                "(omit it to use every column but the label)");
      }
      for (const toml::node& col : *arr)
        c.feature_columns.push_back(r.string(col, "a feature column"));
    } else if (key == "project") {
      c.project = r.string(v, "project");
    } else if (key == "load_name") {
      c.load_name = r.string(v, "load_name");
    } else if (key == "load_type") {
      c.load_type = r.string(v, "load_type");
    } else if (key == "task") {
      c.task = r.string(v, "task");
    } else if (key == "fold_batch_norm") {
      c.fold_batch_norm = r.boolean(v, "fold_batch_norm");
    } else if (key == "batch_size") {
      c.batch_size = r.integer_at_least(v, "batch_size", 1);
    } else if (key == "seed") {
      c.seed = static_cast<uint64_t>(r.integer_at_least(v, "seed", 0));
    } else if (key == "passes") {
      for (const auto& [pk_ptr, pv_ptr] : in_file_order(r.table(v, "passes"))) {
        const toml::key& pk = *pk_ptr;
        const toml::node& pv = *pv_ptr;
        if (pk.str() == "quantize") {
          c.quantize = read_quantize(r, r.table(pv, "passes.quantize"));
        } else {
          c.ignored_keys.push_back("passes." + std::string(pk.str()));
        }
      }
    } else if (key == "transform") {
      c.ignored_keys.push_back("transform");
    } else if (key == "search") {
      SearchSection s;
      s.loc = r.loc(k);
      for (const auto& [sk_ptr, sv_ptr] : in_file_order(r.table(v, "search"))) {
        const toml::key& sk = *sk_ptr;
        const toml::node& sv = *sv_ptr;
        if (sk.str() == "search_space") {
          read_space(r, r.table(sv, "search.search_space"), s);
        } else if (sk.str() == "strategy") {
          read_strategy(r, r.table(sv, "search.strategy"), s);
        } else {
          r.unknown_key(sk, "search", {"search_space", "strategy"});
        }
      }
      c.search = std::move(s);
    } else if (std::find(kIgnoredTopLevel.begin(), kIgnoredTopLevel.end(), key) !=
               kIgnoredTopLevel.end()) {
      c.ignored_keys.push_back(key);
    } else {
      std::vector<std::string> valid = kUsedTopLevel;
      valid.insert(valid.end(), kTopLevelTables.begin(), kTopLevelTables.end());
      valid.insert(valid.end(), kIgnoredTopLevel.begin(), kIgnoredTopLevel.end());
      r.unknown_key(k, "top level", valid);
    }
  }
  return c;
}

}  // namespace qsearch::config
