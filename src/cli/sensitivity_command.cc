// qsearch sensitivity --config X.toml [--model M] [--dataset D] [--jobs J] [--out DIR]
//                     [--mode int|fake|float] [--num-samples N] [--seed S] [--quiet]
//
// The sensitivity strategy's phase a alone (search/sensitivity_sampler.h): every probe trial
// (the float base, then each layer key at each of its options with every other layer float),
// evaluated in parallel with --jobs, stored like a search (study.db in --out, default
// qsearch_output/<project>/sensitivity: resumable, several processes may share it), then the
// per-layer table on stdout and sensitivity.json in --out (report/sensitivity_report.h, the same
// file `qsearch search --sampler sensitivity` writes).
//
// --proxy fisher|hessian also computes the gradient proxy (eval/sensitivity_proxy.h) and prints
// its table next to the probes', with Spearman's rank correlation between the proxy's predicted
// loss increase and each measured software objective's drop over the probed options (both in
// sensitivity.json under "proxy"); --proxy-only runs no probe at all.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/job_limits.h"
#include "cli/proxy_table.h"
#include "cli/search_problem.h"
#include "cli/search_study.h"
#include "config/config.h"
#include "config/search_settings.h"
#include "core/error.h"
#include "eval/objective.h"
#include "report/sensitivity_report.h"
#include "search/multi_objective.h"
#include "search/sensitivity_sampler.h"
#include "storage/storage_url.h"

namespace qsearch::cli {

namespace {

namespace fs = std::filesystem;

using Json = nlohmann::ordered_json;

// The proxy's table and JSON, joined with the measured probes (when there are any): each
// probed option's measured drop per software objective, and Spearman's rho per objective.
struct ProxyReport {
  Json json;
  std::string text;
};

ProxyReport proxy_report(const eval::ProxyTable& proxy, const eval::QuantSearchSpace& space,
                         const config::SearchSettings& s, const search::StudyInfo* info,
                         const std::vector<search::FrozenTrial>& trials) {
  // Objectives a proxy predicts (the others, costs, are exact and need no comparison).
  std::vector<size_t> soft;
  std::vector<std::string> names;
  if (s.objective.sum_scaled_metrics) {
    soft.push_back(0);
    names.push_back("sum");
  } else {
    for (size_t k = 0; k < s.objective.metrics.size(); ++k) {
      const std::string& m = s.objective.metrics[k].name;
      if (m == "loss" || m == "accuracy" || m == "macro_accuracy" || m == "top5_accuracy" ||
          m == "mse") {
        soft.push_back(k);
        names.push_back(m);
      }
    }
  }
  // Measured loss-space drops of the COMPLETE probes, by (group, option number).
  std::map<std::pair<std::string, int64_t>, std::vector<double>> measured;
  if (info) {
    std::optional<std::vector<double>> base;
    for (const auto& t : trials) {
      auto p = t.system_attrs.find(search::kAttrProbe);
      if (p != t.system_attrs.end() && p->second == search::kProbeBase &&
          t.state == search::TrialState::kComplete) {
        base = search::to_loss(t.values, info->directions);
      }
    }
    for (const auto& t : trials) {
      auto p = t.system_attrs.find(search::kAttrProbe);
      if (!base || p == t.system_attrs.end() || p->second == search::kProbeBase ||
          t.state != search::TrialState::kComplete || t.values.size() != base->size()) {
        continue;
      }
      for (const eval::ProxyGroup& g : proxy.groups) {
        if (g.name != p->second) continue;
        int64_t o = 0;
        for (size_t q = g.params.size(); q-- > 0;) {
          const auto& d = info->space[g.params[q]].dist;
          o = o * d.cardinality() + d.index_of(t.params[g.params[q]]);
        }
        const std::vector<double> loss = search::to_loss(t.values, info->directions);
        std::vector<double> drop;
        for (size_t k : soft) drop.push_back(loss[k] - (*base)[k]);
        measured[{g.name, o}] = std::move(drop);
      }
    }
  }
  ProxyReport r;
  r.json = eval::proxy_json(proxy, space);
  std::vector<double> px;
  std::vector<std::vector<double>> mx(soft.size());
  std::string rows;
  size_t row = 0;
  for (const eval::ProxyGroup& g : proxy.groups) {
    if (g.options.size() < 2) continue;
    for (size_t o = 0; o < g.options.size(); ++o, ++row) {
      const eval::ProxyOption& opt = g.options[o];
      std::string option;
      const Json fields = eval::proxy_option_json(space, g, opt);
      for (const auto& [field, value] : fields.items()) {
        option += fmt::format("{}{}={}", option.empty() ? "" : " ", field, value.dump());
      }
      std::string cells;
      auto it = measured.find({g.name, static_cast<int64_t>(o)});
      if (it != measured.end()) {
        Json m = Json::object();
        px.push_back(opt.delta_loss);
        for (size_t k = 0; k < soft.size(); ++k) {
          m[names[k]] = it->second[k];
          mx[k].push_back(it->second[k]);
          cells += fmt::format(" | {:.4g}", it->second[k]);
        }
        r.json["options"][row]["measured_drop"] = m;
      } else if (info) {
        for (size_t k = 0; k < soft.size(); ++k) cells += " |";
      }
      rows += fmt::format("| {} | {} | {:.4g} | {:.4g} | {:.4g}{} |\n", g.name, option,
                          opt.delta_loss, opt.weight_term, opt.activation_term, cells);
    }
  }
  std::string head = "| group | option | predicted dL | weight term | activation term";
  if (info) {
    for (const auto& n : names) head += fmt::format(" | measured {} drop", n);
  }
  r.text = fmt::format("{} proxy ({} samples, {} forward passes, {:.2f} s):\n{} |\n{}",
                       eval::to_string(proxy.method), proxy.num_samples, proxy.passes,
                       proxy.seconds, head, rows);
  if (info) {
    Json sp = Json::object();
    for (size_t k = 0; k < soft.size(); ++k) {
      const double rho = eval::spearman(px, mx[k]);
      sp[names[k]] = {{"rho", std::isfinite(rho) ? Json(rho) : Json()}, {"n", px.size()}};
      r.text += fmt::format(
          "Spearman rank correlation, predicted dL vs measured {} drop: {} ({} "
          "probed options)\n",
          names[k], std::isfinite(rho) ? fmt::format("{:.3f}", rho) : "n/a", px.size());
    }
    r.json["spearman"] = sp;
  }
  return r;
}

void write_json(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) fail("cannot write '{}': check that the directory is writable", path.string());
}

int run_sensitivity(const GlobalOptions& global, config::SearchFlags flags, bool quiet,
                    bool proxy_only) {
  const config::RunConfig config = config::load_config(flags.config);
  flags.sampler = "sensitivity";
  if (!flags.out) {
    // Beside the search's default output directory, not in it.
    const config::SearchSettings first = config::resolve_search_settings(config, flags);
    flags.out = (fs::path(first.out_dir).parent_path() / "sensitivity").string();
  }
  config::SearchSettings s = config::resolve_search_settings(config, flags);
  check_search_paths(s);
  const SearchProblem problem = load_search_problem(global, flags, s);
  const auto& space = problem.space;
  const eval::QuantObjective& objective = *problem.objective;
  if (proxy_only && s.proxy == "probe") {
    fail("--proxy-only needs --proxy fisher|hessian (or proxy = ... in [search.strategy.setup])");
  }
  std::optional<eval::ProxyTable> proxy;
  if (s.proxy != "probe") proxy = compute_proxy_table(problem, s, quiet);
  const fs::path path = fs::path(s.out_dir) / "sensitivity.json";
  if (proxy_only) {
    const ProxyReport r = proxy_report(*proxy, *space, s, nullptr, {});
    std::cout << r.text;
    fs::create_directories(s.out_dir);
    write_json(path, Json{{"proxy", r.json}}.dump(2) + "\n");
    if (!quiet) std::cerr << "Table written to " << path.string() << "\n";
    return 0;
  }

  // Only the probes: none of the configurations the sampler interleaves with them in a search.
  search::SamplerOptions sopts = s.sampler_options;
  sopts.probes_first = true;
  const int64_t n_probes =
      static_cast<int64_t>(search::SensitivitySampler(sopts).probes(space->space()).size());
  std::vector<std::string> notes;
  search::Study study =
      open_search_study(s, space->space(),
                        study_settings_attrs(s, objective.samples_per_trial(),
                                             space->param_choices(), problem.input_dims),
                        search::make_sampler("sensitivity", sopts), &notes);
  for (const auto& n : notes) {
    if (!quiet) std::cerr << "note: " << n << "\n";
  }
  // The probes come first, so the study holds them all once it holds this many trials.
  int64_t others = 0;
  for (const auto& t : study.trials()) others += !search::is_probe(t) && !t.interrupted();
  const JobLimit limit =
      cap_jobs(s.n_jobs, n_probes, -1, static_cast<int>(std::thread::hardware_concurrency()));
  if (!quiet) {
    std::cerr << fmt::format(
        "qsearch sensitivity: {} on {} ({} samples/trial), {} probes, "
        "{} jobs; study '{}' in {}\n",
        s.model_path, s.dataset, objective.samples_per_trial(), n_probes, limit.jobs, s.study_name,
        storage::hide_password(s.storage));
  }
  std::mutex mu;
  search::OptimizeOptions oo;
  oo.n_trials = static_cast<int>(others + n_probes);
  oo.n_jobs = limit.jobs;
  oo.heartbeat_interval_s = s.heartbeat_interval_s;
  oo.grace_period_s = s.grace_period_s;
  oo.on_trial_finished = [&](const search::FrozenTrial& t) {
    if (quiet) return;
    std::lock_guard<std::mutex> lock(mu);
    auto p = t.system_attrs.find(search::kAttrProbe);
    const std::string group = p == t.system_attrs.end() ? "?" : p->second;
    // The option the probe measured (its group's searched fields in sampled_config) and the
    // objective values (scaled, as in the table).
    std::string what;
    if (auto sc = t.user_attrs.find("sampled_config"); sc != t.user_attrs.end()) {
      const auto j = nlohmann::json::parse(sc->second, nullptr, false);
      if (j.is_object() && j.contains(group) && j[group].contains("config")) {
        const auto& config = j[group]["config"];
        for (const search::Param& param : study.info().space) {  // only searched fields
          const std::string prefix = group + "/config/";
          const std::string field = param.name.substr(std::min(prefix.size(), param.name.size()));
          if (param.name.rfind(prefix, 0) == 0 && param.dist.cardinality() > 1 &&
              config.contains(field)) {
            what += fmt::format(" {}={}", field, config[field].dump());
          }
        }
      }
    }
    for (size_t i = 0; i < t.values.size() && i < s.objective.metrics.size(); ++i) {
      what +=
          fmt::format("{} {} {:.4g}", i == 0 ? ":" : ",", s.objective.metrics[i].name, t.values[i]);
    }
    std::cerr << fmt::format("[{:>4}/{}] probe {} {}{}\n", t.number + 1, n_probes, group,
                             search::to_string(t.state), what);
  };
  study.optimize(objective, oo);

  const auto trials = study.trials();
  std::cout << report::sensitivity_table(study.info(), trials);
  if (proxy) {
    const search::StudyInfo info = study.info();
    const ProxyReport r = proxy_report(*proxy, *space, s, &info, trials);
    std::cout << "\n" << r.text;
    Json j = Json::parse(report::sensitivity_json(info, trials));
    j["proxy"] = r.json;
    write_json(path, j.dump(2) + "\n");
  } else {
    write_json(path, report::sensitivity_json(study.info(), trials));
  }
  if (!quiet) std::cerr << "Table written to " << path.string() << "\n";
  return 0;
}

}  // namespace

void add_sensitivity_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto flags = std::make_shared<config::SearchFlags>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "sensitivity",
      "Per-layer sensitivity: each layer quantized alone at each option of the search space, "
      "the others float (the sensitivity strategy's probes)");
  add_problem_options(cmd, flags, "probe");
  auto opt = [&](const char* name, auto& target, const char* help) {
    cmd->add_option_function<std::decay_t<decltype(*target)>>(
        name, [&target](const auto& v) { target = v; }, help);
  };
  opt("--jobs", flags->jobs, "Probes evaluated concurrently");
  opt("--seed", flags->seed, "Seed (the order of the probes; the hessian proxy's vectors)");
  opt("--proxy", flags->proxy,
      "Also compute a gradient proxy (fisher | hessian) and compare it with the probes "
      "(default probe: none)");
  auto proxy_only = std::make_shared<bool>(false);
  cmd->add_flag("--proxy-only", *proxy_only, "Only the proxy's table: no probe trial");
  opt("--storage", flags->storage, "Study storage: sqlite:///path.db (default <out>/study.db)");
  opt("--study", flags->study, "Study name (default: the config's project)");
  opt("--out", flags->out, "Output directory (default qsearch_output/<project>/sensitivity)");
  cmd->add_flag("--quiet", *quiet, "Only print the table");
  cmd->callback([&global, &run, flags, quiet, proxy_only] {
    run = [&global, flags, quiet, proxy_only] {
      return run_sensitivity(global, *flags, *quiet, *proxy_only);
    };
  });
}

}  // namespace qsearch::cli
