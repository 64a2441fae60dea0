// qsearch search --config X.toml [--model M] [--dataset D] [--sampler S] [--trials N]
//                [--timeout SEC] [--jobs J] [--seed S] [--storage URL] [--study NAME] [--out DIR]
//                [--mode int|fake|float] [--racing [--racing-slice F] [--racing-z Z]]
//                [--final-eval none|full] [--quiet] [TPE: --multivariate B --group B
//                --constant-liar B --n-startup-trials N --n-ei-candidates N --gamma F
//                --gamma-max N --stall-window N]
//                [--html]
// qsearch report --out DIR [--storage URL] [--study NAME] [--html [PATH] [--model M]]
// qsearch compare DIR [DIR...] [--study NAME]... [--ref-point V1,V2,...] [--html [PATH]]
#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/html_layers.h"
#include "cli/job_limits.h"
#include "cli/proxy_table.h"
#include "cli/search_problem.h"
#include "cli/search_study.h"
#include "cli/stop_signals.h"
#include "config/search_settings.h"
#include "core/error.h"
#include "core/stopwatch.h"
#include "data/dataset.h"
#include "eval/objective.h"
#include "export/export.h"
#include "onnx/import.h"
#include "report/compare.h"
#include "report/html_report.h"
#include "report/output_lock.h"
#include "report/search_report.h"
#include "report/study_settings.h"
#include "search/study.h"
#include "storage/storage_url.h"

namespace qsearch::cli {

using config::load_config;
using config::resolve_search_settings;
using config::RunConfig;
using config::SearchFlags;
using config::SearchSettings;

namespace {

namespace fs = std::filesystem;

// " accuracy=0.9712 average_bitwidth=4" for a COMPLETE trial (the raw metrics that are
// objectives), the same on its slice for a PRUNED one, the failure reason otherwise.
std::string metric_summary(const search::FrozenTrial& t, const std::vector<eval::MetricSpec>& m) {
  std::string racing;
  if (t.state == search::TrialState::kPruned) {
    auto it = t.user_attrs.find("racing");
    const auto r = it == t.user_attrs.end() ? nlohmann::json()
                                            : nlohmann::json::parse(it->second, nullptr, false);
    if (r.is_object() && r.contains("slice_samples") && r.contains("dominated_by")) {
      racing = fmt::format("  (on {} samples; dominated by trial {})", r["slice_samples"].dump(),
                           r["dominated_by"].dump());
    }
  } else if (t.state != search::TrialState::kComplete) {
    auto r = t.system_attrs.find(search::kAttrFailReason);
    return r == t.system_attrs.end() ? "" : " " + r->second.substr(0, 160);
  }
  std::string s;
  for (const char* key : {report::kSoftwareMetrics, report::kHardwareMetrics}) {
    auto it = t.user_attrs.find(key);
    if (it == t.user_attrs.end()) continue;
    nlohmann::json metrics = nlohmann::json::parse(it->second);
    for (const auto& spec : m) {
      if (metrics.contains(spec.name)) {
        s += fmt::format(" {}={:.4g}", spec.name, metrics[spec.name].get<double>());
      }
    }
  }
  return s + racing;
}

// Rewrites the outputs from every trial committed so far, under the output directory's lock
// (with the study's current user attrs: the final evaluation adds one). With `html`, also
// <out_dir>/report.html from the same trials.
std::vector<search::FrozenTrial> write_outputs(const std::string& out_dir, search::Study& study,
                                               const report::HtmlOptions* html = nullptr) {
  const search::StudyInfo info = study.storage().get_study(study.info().id);
  auto trials = report::write_search_outputs_locked(out_dir, info, [&] { return study.trials(); });
  if (html) {
    report::write_html_file(fs::path(out_dir) / "report.html",
                            report::study_html(info, trials, *html));
  }
  return trials;
}

// --final-eval full: each Pareto-front trial without a final evaluation yet is evaluated on the
// whole split; the results go to the study user attr final_eval (trial number -> metrics),
// merged with what is there (finished trials never change, so they cannot carry it).
void final_evaluation(search::Study& study, const eval::QuantObjective& objective,
                      const eval::QuantSearchSpace& space, bool quiet) {
  const int64_t id = study.info().id;
  const auto best = report::best_trials(study.info(), study.trials());
  auto stored = study.storage().get_study(id).user_attrs;
  nlohmann::ordered_json finals = nlohmann::ordered_json::object();
  if (auto it = stored.find(report::kFinalEval); it != stored.end()) {
    finals = nlohmann::ordered_json::parse(it->second, nullptr, false);
    if (!finals.is_object()) finals = nlohmann::ordered_json::object();
  }
  int done = 0;
  for (const auto& t : best) {
    const std::string key = std::to_string(t.number);
    if (finals.contains(key)) continue;
    finals[key] = objective.evaluate_software(space.decode(t.params), -1);
    ++done;
  }
  if (done == 0) return;
  study.storage().set_study_user_attr(id, report::kFinalEval, finals.dump());
  if (!quiet) {
    std::cerr << fmt::format("final evaluation: {} front trial(s) on all samples of the split\n",
                             done);
  }
}

// `search --export F`: one export per Pareto-front trial into <out>/export/trial_<N>/, measured on
// the search's data (split, samples per trial, scored output); docs/export.md.
void export_front(const std::string& format, const SearchFlags& flags, const SearchSettings& s,
                  const SearchProblem& problem, const search::StudyInfo& info,
                  const std::vector<search::FrozenTrial>& trials, bool quiet) {
  for (const search::FrozenTrial& t : report::best_trials(info, trials)) {
    exporter::ExportJob job{
        .format = format,
        .out = (fs::path(s.out_dir) / "export" / fmt::format("trial_{}", t.number)).string(),
        .model_path = s.model_path,
        .command = fmt::format("qsearch search --config {} --export {} (trial {})", flags.config,
                               format, t.number),
        .source = fmt::format("search {}, trial {}", s.out_dir, t.number),
        .dataset = problem.dataset.get(),
        .split = s.split,
        .num_samples = problem.objective->samples_per_trial(),
        .output = problem.objective->model_output().name};
    try {
      const auto files = exporter::run_export(*problem.graph, problem.space->decode(t.params), job);
      if (!quiet) std::cerr << fmt::format("exported trial {} to {}\n", t.number, job.out);
    } catch (Error& e) {
      e.add_context(
          fmt::format("exporting Pareto-front trial {} (--export {}; the search's "
                      "outputs are written)",
                      t.number, format));
      throw;
    }
  }
}

int run_search(const GlobalOptions& global, const SearchFlags& flags, bool quiet, bool html,
               const std::string& export_format) {
  if (!export_format.empty()) exporter::check_format(export_format, "--export");
  RunConfig config = load_config(flags.config);
  SearchSettings s = resolve_search_settings(config, flags);
  for (const auto& k : config.ignored_keys) {
    if (!quiet) std::cerr << fmt::format("note: '{}' has no effect in qsearch search\n", k);
  }
  check_search_paths(s);  // before the model and data load

  // Without a final evaluation on the whole split, the trials' samples are all that is read.
  const SearchProblem problem = load_search_problem(global, flags, s, s.final_eval != "full");
  const auto& space = problem.space;
  eval::QuantObjective& objective = *problem.objective;
  if (!objective.model_output().note.empty()) {
    std::cerr << "qsearch: note: " << objective.model_output().note << "\n";
  }

  // The sensitivity sampler's proxy (instead of probe trials), recomputed by every process.
  attach_sensitivity_proxy(problem, s, quiet);
  const search::SamplerOptions& sopts = s.sampler_options;
  std::vector<std::string> notes;
  auto attrs = study_settings_attrs(s, objective.samples_per_trial(), space->param_choices(),
                                    problem.input_dims);
  // `qsearch compare`'s default reference point: derived from the space alone, recorded with the
  // study (a loss or latency objective has none: compare then needs --ref-point).
  if (auto ref = eval::space_reference_point(objective, *space, s.directions)) {
    attrs[report::setting::kReferencePoint] =
        nlohmann::ordered_json{{"values", ref->values}, {"rule", ref->rule}}.dump();
  }
  search::Study study =
      open_search_study(s, space->space(), attrs, search::make_sampler(s.sampler, sopts), &notes);
  for (const auto& n : notes) {
    if (!quiet) std::cerr << "note: " << n << "\n";
  }
  if (s.objective.racing) {
    // Racing compares each trial with the study's COMPLETE trials (all processes'), read as it
    // runs (eval/objective.h).
    objective.set_racing_incumbents(s.directions, [&study] {
      std::vector<std::pair<int, std::vector<double>>> complete;
      for (auto& t : study.trials()) {
        // A probe (sensitivity) is no configuration of the space: it cannot dominate one; an
        // infeasible trial (a constraint violated) is no incumbent either.
        if (t.state == search::TrialState::kComplete && !search::is_probe(t) &&
            search::is_feasible(t)) {
          complete.emplace_back(t.number, t.values);
        }
      }
      return complete;
    });
  }
  const auto existing = study.trials();
  int finished_before = 0;
  for (const auto& t : existing) finished_before += t.finished() && !t.interrupted();
  {
    // Trials n_trials still allows and configurations brute force has left, as create_trial
    // counts them (interrupted trials are re-run, so they do not count).
    int64_t taken = 0;
    for (const auto& t : existing) taken += !t.interrupted();
    const bool brute = search::make_sampler(s.sampler, sopts)->name() == "bruteforce";
    JobLimit limit =
        cap_jobs(s.n_jobs, s.n_trials < 0 ? -1 : std::max<int64_t>(0, s.n_trials - taken),
                 brute ? std::max<int64_t>(0, space->size() - taken) : -1,
                 static_cast<int>(std::thread::hardware_concurrency()));
    if (!limit.note.empty() && !quiet) std::cerr << "note: " << limit.note << "\n";
    s.n_jobs = limit.jobs;
  }

  if (!quiet) {
    std::cerr << fmt::format(
        "qsearch search: {} on {} ({} split, {} samples/trial, batch {}), mode {}\n", s.model_path,
        s.dataset, s.split, objective.samples_per_trial(), objective.options().batch_size,
        runtime::mode_name(s.objective.mode));
    // size() saturates at INT64_MAX: a larger space is not printed as that number.
    const int64_t n = space->size();
    std::cerr << fmt::format(
        "  space: {} parameters, {} configurations ({} by {})\n", space->space().size(),
        n == INT64_MAX ? std::string("> 9.2e18") : std::to_string(n), space->node_keys().size(),
        config.search->by == "type" ? "nodes tied by op type" : "nodes");
    std::cerr << fmt::format(
        "  sampler {} (seed {}), n_trials {}, timeout {}, n_jobs {}\n", s.sampler, s.seed,
        s.n_trials < 0 ? std::string("none") : std::to_string(s.n_trials),
        s.timeout_s < 0 ? std::string("none") : fmt::format("{}s", s.timeout_s), s.n_jobs);
    if (search::make_sampler(s.sampler, sopts)->name() == "tpe") {
      std::cerr << fmt::format(
          "  tpe: multivariate {}, group {}, constant_liar {}, n_startup_trials {}, "
          "n_ei_candidates {}, gamma min(ceil({} n), {}), stall_window {}\n",
          sopts.multivariate, sopts.group, sopts.constant_liar, sopts.n_startup_trials,
          sopts.n_ei_candidates, sopts.gamma_fraction, sopts.gamma_max, sopts.stall_window);
    }
    std::cerr << fmt::format(
        "  study '{}' in {}{}\n", s.study_name, storage::hide_password(s.storage),
        existing.empty() ? "" : fmt::format(" (resuming: {} finished trials)", finished_before));
  }

  // Ctrl-C / SIGTERM: stop after the running trials; a second one aborts (cli/stop_signals.h).
  StopSignals signals(finished_before, storage::hide_password(s.storage),
                      fmt::format("Resume with the same command; `qsearch report --out {}` "
                                  "rewrites the outputs.",
                                  s.out_dir));
  // --html: report.html with the other outputs; while the search runs it reloads itself.
  std::optional<report::HtmlOptions> html_options;
  if (html) {
    html_options.emplace();
    attach_layer_numbers(study.info(), s.model_path, &*html_options);
    html_options->refresh_s = 5;
  }
  std::mutex out_mu;
  int since_save = 0;
  Stopwatch clock;
  double last_save = 0;
  search::OptimizeOptions oo;
  oo.n_trials = static_cast<int>(s.n_trials);
  oo.timeout_s = s.timeout_s;
  oo.n_jobs = s.n_jobs;
  oo.stop = signals.stop_flag();
  oo.heartbeat_interval_s = s.heartbeat_interval_s;
  oo.grace_period_s = s.grace_period_s;
  oo.on_trial_finished = [&](const search::FrozenTrial& t) {
    std::lock_guard<std::mutex> lock(out_mu);
    signals.trial_finished();
    if (!quiet) {
      double dur = (t.datetime_complete_ms - t.datetime_start_ms) / 1000.0;
      auto probe = t.system_attrs.find(search::kAttrProbe);  // the sensitivity sampler's
      std::cerr << fmt::format(
          "[{:>4}{}] trial {:>4} {:<8} {:6.2f}s{}{}  (elapsed {:.1f}s)\n", t.number + 1,
          s.n_trials > 0 ? fmt::format("/{}", s.n_trials) : std::string(), t.number,
          search::to_string(t.state), dur,
          probe == t.system_attrs.end() ? std::string() : " probe " + probe->second,
          metric_summary(t, s.objective.metrics), clock.seconds());
    }
    // Rewriting the outputs costs O(trials); at most once a second it stays a small part of a
    // fast search (study.db has every finished trial at once; the end writes them all).
    if (++since_save >= std::max(1, s.save_every_n_trials) && clock.seconds() - last_save >= 1.0) {
      since_save = 0;
      write_outputs(s.out_dir, study, html_options ? &*html_options : nullptr);
      last_save = clock.seconds();
    }
  };
  search::OptimizeSummary sum = study.optimize(objective, oo);
  if (s.final_eval == "full" && signals.first_signal() == 0) {
    final_evaluation(study, objective, *space, quiet);
  }

  // After this process's last commit: under the output lock, so the last process sharing --out
  // to get there leaves files with every trial (report/output_lock.h).
  if (html_options) html_options->refresh_s = 0;
  const auto trials = write_outputs(s.out_dir, study, html_options ? &*html_options : nullptr);
  std::cout << report::best_trials_table(study.storage().get_study(study.info().id), trials)
            << "\n";
  if (!export_format.empty() && signals.first_signal() == 0) {
    export_front(export_format, flags, s, problem, study.storage().get_study(study.info().id),
                 trials, quiet);
  }
  if (!quiet) {
    std::string why = sum.exhausted                       ? "search space exhausted"
                      : sum.timed_out                     ? "timeout reached"
                      : signals.first_signal() == SIGTERM ? "stopped by SIGTERM"
                      : signals.first_signal() != 0       ? "interrupted"
                                                          : "n_trials reached";
    std::string others;
    if (sum.reclaimed > 0) {
      others += fmt::format("; reclaimed {} trial(s) of silent workers (re-run)", sum.reclaimed);
    }
    if (sum.lost > 0) {
      others += fmt::format("; {} result(s) dropped: their trials had been reclaimed", sum.lost);
    }
    std::cerr << fmt::format(
        "{} trials this run ({} complete, {} failed{}{}) in {:.1f}s: {}. Outputs in {}\n",
        sum.started, sum.completed, sum.failed,
        s.objective.racing ? fmt::format(", {} pruned by racing", sum.pruned) : std::string(),
        others, sum.elapsed_s, why, s.out_dir);
    if (html) {
      std::cerr << fmt::format("HTML report: {}\n", (fs::path(s.out_dir) / "report.html").string());
    }
  }
  return signals.first_signal() != 0 ? signals.exit_code() : 0;
}

// The study of a search output directory (its study.db), or of an explicit storage URL.
report::StudyRun load_study_run(const std::string& out_dir, const std::string& storage_url,
                                const std::string& study_name) {
  std::string url = storage_url;
  if (url.empty()) {
    fs::path db = fs::path(out_dir) / "study.db";
    if (!fs::exists(db)) {
      fail("'{}' has no study.db: pass the --out directory of a search, or --storage URL", out_dir);
    }
    url = "sqlite:///" + db.string();
  }
  auto storage = storage::open_storage(url, storage::Access::kExisting);
  std::string name = study_name;
  if (name.empty()) {
    auto names = storage->study_names();
    if (names.size() != 1) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      fail("{} holds {} studies ({}); choose one with --study", storage::hide_password(url),
           names.size(), list);
    }
    name = names[0];
  }
  auto id = storage->find_study(name);
  if (!id) fail("{} has no study '{}'", storage::hide_password(url), name);
  report::StudyRun run;
  run.label = out_dir.empty() ? name : out_dir;
  run.info = storage->get_study(*id);
  run.trials = storage->get_trials(*id);
  return run;
}

// --html [PATH]: whether given, and the path (empty: the default file).
struct HtmlFlag {
  bool on = false;
  std::string path;
};

int run_report(const std::string& out_dir, const std::string& storage_url,
               const std::string& study_name, const HtmlFlag& html, const std::string& model) {
  if (out_dir.empty()) fail("--out is empty: give the directory to write the outputs to");
  report::StudyRun run = load_study_run(out_dir, storage_url, study_name);
  // Re-read under the output lock, so a search still running on this directory cannot rename
  // older files over these.
  auto storage = storage::open_storage(
      storage_url.empty() ? "sqlite:///" + (fs::path(out_dir) / "study.db").string() : storage_url,
      storage::Access::kExisting);
  run.trials = report::write_search_outputs_locked(
      out_dir, run.info, [&] { return storage->get_trials(run.info.id); });
  std::cout << report::best_trials_table(run.info, run.trials) << "\n";
  if (html.on) {
    report::HtmlOptions options;
    options.command = this_command_line();
    attach_layer_numbers(run.info, model, &options);
    const fs::path path =
        html.path.empty() ? fs::path(out_dir) / "report.html" : fs::path(html.path);
    report::write_html_file(path, report::study_html(run.info, run.trials, options));
    std::cerr << fmt::format("HTML report: {}\n", path.string());
  }
  return 0;
}

// Every study of each directory's study.db, or only those named by --study (each must exist in
// every directory). A run is labelled with its directory, plus ":<study>" when the directory
// gives several.
int run_compare(const std::vector<std::string>& dirs, const std::vector<std::string>& studies,
                const std::optional<std::vector<double>>& ref_point, const HtmlFlag& html) {
  std::vector<report::StudyRun> runs;
  for (const auto& d : dirs) {
    fs::path db = fs::path(d) / "study.db";
    if (!fs::exists(db)) {
      fail("'{}' has no study.db: pass the --out directories of searches", d);
    }
    const std::string url = "sqlite:///" + db.string();
    auto storage = storage::open_storage(url, storage::Access::kExisting);
    const std::vector<std::string> held = storage->study_names();
    const std::vector<std::string>& names = studies.empty() ? held : studies;
    if (names.empty()) fail("'{}' holds no study", db.string());
    for (const auto& name : names) {
      auto id = storage->find_study(name);
      if (!id) {
        std::string list;
        for (const auto& n : held) list += (list.empty() ? "" : ", ") + n;
        fail("'{}' has no study '{}' (it holds: {}); check --study", db.string(), name, list);
      }
      report::StudyRun run;
      run.label = names.size() > 1 ? d + ":" + name : d;
      run.info = storage->get_study(*id);
      run.trials = storage->get_trials(*id);
      runs.push_back(std::move(run));
    }
  }
  const report::Comparison c = report::compare_studies(runs, {.ref_point = ref_point});
  for (const auto& n : c.notes) std::cerr << "note: " << n << "\n";
  std::cout << report::format_comparison(c);
  if (html.on) {
    report::HtmlOptions options;
    options.command = this_command_line();
    const fs::path path = html.path.empty() ? fs::path("compare.html") : fs::path(html.path);
    report::write_html_file(path, report::compare_html(runs, c, options));
    std::cerr << fmt::format("HTML report: {}\n", path.string());
  }
  return 0;
}

}  // namespace

void add_search_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto flags = std::make_shared<SearchFlags>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "search", "Search mixed-precision quantizations of a model (MASE's `ch search`)");
  add_problem_options(cmd, flags, "trial");
  auto opt = [&](const char* name, auto& target, const char* help) {
    cmd->add_option_function<std::decay_t<decltype(*target)>>(
        name, [&target](const auto& v) { target = v; }, help);
  };
  opt("--sampler", flags->sampler, "bruteforce | random | tpe | nsgaii | qmc | sensitivity");
  opt("--trials", flags->trials, "Finished trials the study should hold (n_trials)");
  opt("--timeout", flags->timeout, "Seconds after which no new trial starts");
  opt("--jobs", flags->jobs, "Trials evaluated concurrently (n_jobs)");
  opt("--seed", flags->seed, "Sampler seed");
  opt("--proxy", flags->proxy,
      "Sensitivity sampler: probe (measured probe trials, default) | fisher | hessian (gradient "
      "proxies instead of probes)");
  opt("--storage", flags->storage, "Study storage: sqlite:///path.db (default <out>/study.db)");
  opt("--study", flags->study, "Study name (default: the config's project)");
  opt("--out", flags->out, "Output directory (default qsearch_output/<project>/search)");
  opt("--multivariate", flags->multivariate, "TPE: one joint model of all parameters (true|false)");
  opt("--group", flags->group, "TPE: Optuna's group decomposition (needs --multivariate true)");
  opt("--constant-liar", flags->constant_liar,
      "TPE: running trials count as bad ones while they run (true|false)");
  opt("--n-startup-trials", flags->n_startup_trials, "TPE: random trials before the model");
  opt("--n-ei-candidates", flags->n_ei_candidates, "TPE: candidates scored per proposal");
  opt("--gamma", flags->gamma,
      "TPE: fraction in gamma(n) = min(ceil(gamma n), gamma_max), the best trials modelled");
  opt("--gamma-max", flags->gamma_max, "TPE: cap of gamma(n)");
  opt("--stall-window", flags->stall_window,
      "TPE: trials without a new best-set member before a frozen model is escaped (0: off)");
  cmd->add_flag_function(
      "--racing", [flags](int64_t) { flags->racing = true; },
      "Stop a trial after a first slice of its samples when a complete trial dominates it even "
      "optimistically (stored as PRUNED; [search.strategy.setup] racing)");
  opt("--racing-slice", flags->racing_slice,
      "Share of num_samples racing evaluates first (default 0.25)");
  opt("--racing-z", flags->racing_z,
      "Standard errors of optimism racing allows before pruning (default 2.5)");
  opt("--final-eval", flags->final_eval,
      "full: evaluate the final Pareto front again on the whole split (default none)");
  cmd->add_flag("--quiet", *quiet, "Only print the final table");
  auto export_format = std::make_shared<std::string>();
  cmd->add_option(
      "--export", *export_format,
      "After the search, export each Pareto-front trial in this format (c | hls4ml | qdq | "
      "qonnx) into "
      "<out>/export/trial_<N>/ (docs/export.md)");
  auto search_html = std::make_shared<bool>(false);
  cmd->add_flag("--html", *search_html,
                "Also write <out>/report.html (one self-contained page of plots), refreshed as "
                "the outputs are");
  cmd->callback([&global, &run, flags, quiet, search_html, export_format] {
    run = [&global, flags, quiet, search_html, export_format] {
      return run_search(global, *flags, *quiet, *search_html, *export_format);
    };
  });

  auto out = std::make_shared<std::string>();
  auto storage_url = std::make_shared<std::string>();
  auto study = std::make_shared<std::string>();
  CLI::App* rep = app.add_subcommand(
      "report", "Print a search's best trials again and rewrite best.json/log.json/trials.csv");
  rep->add_option("--out", *out, "The search's output directory")->required();
  rep->add_option("--storage", *storage_url, "Study storage URL (default <out>/study.db)");
  rep->add_option("--study", *study, "Study name (needed when the storage holds several)");
  auto rep_html = std::make_shared<HtmlFlag>();
  auto rep_model = std::make_shared<std::string>();
  CLI::Option* rep_html_opt =
      rep->add_option("--html", rep_html->path,
                      "Also write the HTML report (default <out>/report.html)")
          ->expected(0, 1);
  rep->add_option("--model", *rep_model,
                  "The searched model, for the per-layer numbers of --html (default: the path "
                  "the study records)");
  rep->callback([&run, out, storage_url, study, rep_html, rep_html_opt, rep_model] {
    rep_html->on = rep_html_opt->count() > 0;
    run = [out, storage_url, study, rep_html, rep_model] {
      return run_report(*out, *storage_url, *study, *rep_html, *rep_model);
    };
  });

  auto dirs = std::make_shared<std::vector<std::string>>();
  auto studies = std::make_shared<std::vector<std::string>>();
  CLI::App* cmp = app.add_subcommand(
      "compare", "Sample efficiency of searches of the same problem (e.g. brute force vs TPE)");
  cmp->add_option("dirs", *dirs, "Output directories of the searches")->required()->expected(1, -1);
  // One name per --study, so `compare --study tpe A B` keeps A and B as directories.
  cmp->add_option("--study", *studies,
                  "Study to compare from each directory (repeatable; default: every study)")
      ->allow_extra_args(false);
  auto ref_point = std::make_shared<std::optional<std::vector<double>>>();
  cmp->add_option_function<std::vector<double>>(
         "--ref-point", [ref_point](const std::vector<double>& v) { *ref_point = v; },
         "Hypervolume reference point V1,V2,... in objective order, as the studies' values are "
         "(default: the one the searches recorded: accuracy 0, the largest cost of the space)")
      ->delimiter(',');
  auto cmp_html = std::make_shared<HtmlFlag>();
  CLI::Option* cmp_html_opt =
      cmp->add_option("--html", cmp_html->path,
                      "Also write the HTML comparison (default ./compare.html)")
          ->expected(0, 1);
  cmp->callback([&run, dirs, studies, ref_point, cmp_html, cmp_html_opt] {
    cmp_html->on = cmp_html_opt->count() > 0;
    run = [dirs, studies, ref_point, cmp_html] {
      return run_compare(*dirs, *studies, *ref_point, *cmp_html);
    };
  });
}

}  // namespace qsearch::cli
