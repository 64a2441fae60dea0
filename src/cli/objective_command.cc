// qsearch objective --config X.toml [--model M] [--dataset D] [--mode int|fake|float]
//                   [--num-samples N] [--output NAME] [--label-column C] [--feature-columns A,B]
//                   [--describe] [--quiet]
//
// The search's objective as a long-running evaluator that other programs drive (an Optuna loop,
// a benchmark, a notebook): the model, data and space are loaded once, exactly as `qsearch
// search` loads them (cli/search_problem.h), then every line read from stdin is one request and
// gets one JSON line on stdout, flushed at once:
//
//   {"params": {"conv1/config/weight_width": 3, ...}}   by parameter name, the choice VALUES;
//                                                       a parameter with one choice may be left out
//   {"index": [0, 1, 0, ...]}                           every parameter's choice INDEX, space order
//   {"describe": true}                                  the space (as --describe prints it)
//   -> {"values": [...], "index": [...], "software_metrics": {...}, "hardware_metrics": {...},
//       "scaled_metrics": {...}}
//   -> {"failed": "reason", "index": [...]}   the engine refused the configuration (a FAIL trial)
//   -> {"error": "reason"}                    a bad request; the evaluator goes on
// A request's "id" (any JSON) is echoed in its answer. Blank lines are skipped; end of input
// ends the process with status 0. The values are the ones `qsearch search` stores for the same
// configuration (same objective code, same order: scaled metrics sorted by name, or their sum).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/search_problem.h"
#include "config/config.h"
#include "config/search_settings.h"
#include "core/error.h"
#include "search/trial.h"

namespace qsearch::cli {

namespace {

using Json = nlohmann::ordered_json;

// The space, the objectives and what each evaluation runs on.
Json describe(const config::SearchSettings& s, const SearchProblem& p) {
  Json params = Json::array();
  const Json choices = p.space->param_choices();
  for (const auto& [name, list] : choices.items()) {
    params.push_back({{"name", name}, {"choices", list}});
  }
  Json objectives = Json::array();
  if (s.objective.sum_scaled_metrics) {
    std::string names;
    for (const auto& m : s.objective.metrics) names += (names.empty() ? "" : "+") + m.name;
    objectives.push_back({{"name", names}, {"direction", search::to_string(s.directions.at(0))}});
  } else {
    for (size_t i = 0; i < s.objective.metrics.size(); ++i) {
      objectives.push_back({{"name", s.objective.metrics[i].name},
                            {"scale", s.objective.metrics[i].scale},
                            {"direction", search::to_string(s.directions.at(i))}});
    }
  }
  return {{"parameters", params},
          {"objectives", objectives},
          {"size", p.space->size()},
          {"model", s.model_path},
          {"dataset", s.dataset},
          {"split", s.split},
          {"samples_per_trial", p.objective->samples_per_trial()},
          {"mode", runtime::mode_name(s.objective.mode)}};
}

bool same_choice(const nlohmann::json& v, const Json& choice) {
  if (v.is_number() && choice.is_number()) return v.get<double>() == choice.get<double>();
  if (choice.is_null()) return v.is_null() || v == "NA";
  return v.is_primitive() && v.dump() == choice.dump();
}

std::string choice_list(const Json& list) {
  std::string s;
  for (const auto& c : list) s += (s.empty() ? "" : ", ") + c.dump();
  return s;
}

// A request's configuration as the search's internal parameters (one index per parameter, as
// doubles). Throws Error naming what is wrong.
std::vector<double> request_params(const nlohmann::json& req, const Json& choices) {
  std::vector<std::string> names;
  std::vector<const Json*> lists;
  for (const auto& [name, list] : choices.items()) {
    names.push_back(name);
    lists.push_back(&list);
  }
  std::vector<double> params(names.size(), -1);
  const bool by_name = req.contains("params"), by_index = req.contains("index");
  if (by_name == by_index) {
    fail("a request holds exactly one of \"params\" (values by name) or \"index\" (indices)");
  }
  if (by_index) {
    const nlohmann::json& idx = req["index"];
    if (!idx.is_array() || idx.size() != names.size()) {
      fail(
          "\"index\" must be an array of {} choice indices (one per parameter, in the order "
          "--describe lists them)",
          names.size());
    }
    for (size_t i = 0; i < names.size(); ++i) {
      const int64_t n = static_cast<int64_t>(lists[i]->size());
      if (!idx[i].is_number_integer() || idx[i].get<int64_t>() < 0 || idx[i].get<int64_t>() >= n) {
        fail("\"index\"[{}] ({}) = {} is not a choice index in 0..{}", i, names[i], idx[i].dump(),
             n - 1);
      }
      params[i] = static_cast<double>(idx[i].get<int64_t>());
    }
    return params;
  }
  const nlohmann::json& given = req["params"];
  if (!given.is_object()) fail("\"params\" must be an object {{\"<parameter>\": <value>, ...}}");
  for (const auto& [name, value] : given.items()) {
    size_t i = 0;
    while (i < names.size() && names[i] != name) ++i;
    if (i == names.size()) {
      const std::string near = config::nearest_key(name, names);
      fail("unknown parameter '{}'{}; `qsearch objective --describe` lists them", name,
           near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near));
    }
    for (size_t c = 0; c < lists[i]->size() && params[i] < 0; ++c) {
      if (same_choice(value, (*lists[i])[c])) params[i] = static_cast<double>(c);
    }
    if (params[i] < 0) {
      fail("parameter '{}' = {} is not one of its choices: {}", name, value.dump(),
           choice_list(*lists[i]));
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (params[i] >= 0) continue;
    if (lists[i]->size() != 1) {
      fail("parameter '{}' is missing (choices: {})", names[i], choice_list(*lists[i]));
    }
    params[i] = 0;
  }
  return params;
}

// The answer to one request line.
Json answer(const std::string& line, const config::SearchSettings& s, const SearchProblem& p,
            const Json& choices) {
  nlohmann::json req;
  try {
    req = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    return {{"error", fmt::format("not a JSON object: {}", e.what())}};
  }
  if (!req.is_object()) return {{"error", "a request is one JSON object per line"}};
  Json out;
  if (req.contains("id")) out["id"] = req["id"];
  if (req.contains("describe")) {
    const Json d = describe(s, p);
    for (const auto& [k, v] : d.items()) out[k] = v;
    return out;
  }
  std::vector<double> params;
  try {
    params = request_params(req, choices);
  } catch (const Error& e) {
    out["error"] = e.what();
    return out;
  }
  Json index = Json::array();
  for (double v : params) index.push_back(static_cast<int64_t>(v));
  search::FrozenTrial trial;
  trial.number = 0;
  trial.params = params;
  search::ObjectiveResult r;
  try {
    r = (*p.objective)(trial);
  } catch (const std::exception& e) {  // what Study::optimize records as a FAIL trial
    out["failed"] = e.what();
    out["index"] = index;
    return out;
  }
  for (double v : r.values) {
    if (std::isnan(v)) {
      out["failed"] = "an objective value is NaN";
      out["index"] = index;
      return out;
    }
  }
  out["values"] = r.values;
  out["index"] = index;
  for (const char* key : {"software_metrics", "hardware_metrics", "scaled_metrics"}) {
    auto it = r.user_attrs.find(key);
    if (it != r.user_attrs.end()) out[key] = Json::parse(it->second);
  }
  return out;
}

int run_objective(const GlobalOptions& global, const config::SearchFlags& flags, bool describe_only,
                  bool quiet) {
  config::RunConfig config = config::load_config(flags.config);
  config::SearchSettings s = config::resolve_search_settings(config, flags);
  const SearchProblem p = load_search_problem(global, flags, s);
  if (!quiet && !p.objective->model_output().note.empty()) {
    std::cerr << "qsearch: note: " << p.objective->model_output().note << "\n";
  }
  if (describe_only) {
    std::cout << describe(s, p).dump() << std::endl;
    return 0;
  }
  if (!quiet) {
    std::cerr << fmt::format(
        "qsearch objective: {} on {} ({} split, {} samples), mode {}, {} parameters; one JSON "
        "request per line on stdin\n",
        s.model_path, s.dataset, s.split, p.objective->samples_per_trial(),
        runtime::mode_name(s.objective.mode), p.space->space().size());
  }
  const Json choices = p.space->param_choices();
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::cout << answer(line, s, p, choices).dump() << std::endl;  // endl: flushed per answer
  }
  return 0;
}

}  // namespace

void add_objective_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto flags = std::make_shared<config::SearchFlags>();
  auto describe_only = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "objective",
      "Evaluate configurations of a search space read as JSON lines on stdin (for scripts)");
  add_problem_options(cmd, flags, "evaluation");
  cmd->add_flag("--describe", *describe_only,
                "Print the space (parameters and choices, objectives and directions) as one JSON "
                "line and exit");
  cmd->add_flag("--quiet", *quiet, "No start-up line on stderr");
  cmd->callback([&global, &run, flags, describe_only, quiet] {
    run = [&global, flags, describe_only, quiet] {
      return run_objective(global, *flags, *describe_only, *quiet);
    };
  });
}

}  // namespace qsearch::cli
