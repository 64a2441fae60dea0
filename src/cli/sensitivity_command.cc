// qsearch sensitivity --config X.toml [--model M] [--dataset D] [--jobs J] [--out DIR]
//                     [--mode int|fake|float] [--num-samples N] [--seed S] [--quiet]
//
// The sensitivity strategy's phase a alone (search/sensitivity_sampler.h): every probe trial
// (the float base, then each layer key at each of its options with every other layer float),
// evaluated in parallel with --jobs, stored like a search (study.db in --out, default
// qsearch_output/<project>/sensitivity: resumable, several processes may share it), then the
// per-layer table on stdout and sensitivity.json in --out (report/sensitivity_report.h, the same
// file `qsearch search --sampler sensitivity` writes).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/job_limits.h"
#include "cli/search_problem.h"
#include "cli/search_study.h"
#include "config/config.h"
#include "config/search_settings.h"
#include "core/error.h"
#include "eval/objective.h"
#include "report/sensitivity_report.h"
#include "search/sensitivity_sampler.h"
#include "storage/storage_url.h"

namespace qsearch::cli {

namespace {

namespace fs = std::filesystem;

int run_sensitivity(const GlobalOptions& global, config::SearchFlags flags, bool quiet) {
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

  const search::SamplerOptions& sopts = s.sampler_options;
  const int64_t n_probes =
      static_cast<int64_t>(search::SensitivitySampler(sopts).probes(space->space()).size());
  std::vector<std::string> notes;
  search::Study study = open_search_study(
      s, space->space(),
      study_settings_attrs(s, objective.samples_per_trial(), space->param_choices()),
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
  const fs::path path = fs::path(s.out_dir) / "sensitivity.json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << report::sensitivity_json(study.info(), trials);
    if (!out) fail("cannot write '{}': check that the directory is writable", path.string());
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
  opt("--seed", flags->seed, "Seed (the order of the probes)");
  opt("--storage", flags->storage, "Study storage: sqlite:///path.db (default <out>/study.db)");
  opt("--study", flags->study, "Study name (default: the config's project)");
  opt("--out", flags->out, "Output directory (default qsearch_output/<project>/sensitivity)");
  cmd->add_flag("--quiet", *quiet, "Only print the table");
  cmd->callback([&global, &run, flags, quiet] {
    run = [&global, flags, quiet] { return run_sensitivity(global, *flags, *quiet); };
  });
}

}  // namespace qsearch::cli
