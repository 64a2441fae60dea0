#include "report/search_report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <tuple>

#include "core/error.h"
#include "report/pandas_json.h"
#include "report/python_format.h"
#include "report/sensitivity_report.h"
#include "report/study_settings.h"
#include "report/tabulate.h"
#include "search/multi_objective.h"
#include "search/sampler.h"

namespace qsearch::report {

using search::FrozenTrial;
using search::StudyInfo;
using search::TrialState;
using Json = nlohmann::ordered_json;

namespace {

std::optional<Json> user_attr(const FrozenTrial& t, const std::string& key) {
  auto it = t.user_attrs.find(key);
  if (it == t.user_attrs.end()) return std::nullopt;
  try {
    return Json::parse(it->second);
  } catch (const Json::exception& e) {
    fail("trial {}: user attr '{}' is not JSON text ({}): '{}'", t.number, key, e.what(),
         it->second.substr(0, 80));
  }
}

// The study's final evaluations (study user attr final_eval): trial number -> metrics object.
std::map<int, Json> final_evals(const StudyInfo& info) {
  std::map<int, Json> out;
  auto it = info.user_attrs.find(kFinalEval);
  if (it == info.user_attrs.end()) return out;
  Json j = Json::parse(it->second, nullptr, false);
  if (!j.is_object())
    fail("study '{}': user attr '{}' is not a JSON object", info.name, kFinalEval);
  for (auto e = j.begin(); e != j.end(); ++e) {
    char* end = nullptr;
    const long n = std::strtol(e.key().c_str(), &end, 10);
    if (end != e.key().c_str() && *end == '\0') out[static_cast<int>(n)] = e.value();
  }
  return out;
}

Json values_list(const FrozenTrial& t) {
  Json list = Json::array();
  for (double v : t.values) list.push_back(v);
  return list;
}

// pandas infers one dtype per DataFrame column, and the dtype decides how cells print: a column
// of integers with a missing cell becomes float64 (so 3 prints as 3.0); anything that is not all
// numbers stays "object" and prints each value as it is. Missing cells are NaN/None -> null.
std::vector<Json> as_pandas_column(const std::vector<std::optional<Json>>& cells) {
  bool all_numbers = true, any_missing = false, any_float = false;
  for (const auto& c : cells) {
    if (!c || c->is_null()) {
      any_missing = true;
    } else if (c->is_number()) {
      any_float |= c->is_number_float();
    } else {
      all_numbers = false;
    }
  }
  const bool to_float = all_numbers && (any_missing || any_float);
  std::vector<Json> out;
  out.reserve(cells.size());
  for (const auto& c : cells) {
    if (!c || c->is_null()) {
      out.emplace_back(nullptr);
    } else if (to_float) {
      out.emplace_back(c->get<double>());
    } else {
      out.push_back(*c);
    }
  }
  return out;
}

// MASE's beautify_metric: numbers rounded to 3 decimals, anything else as str() cut to 20
// characters (plus "..." when cut), then the dict's repr.
std::string beautified_repr(const std::optional<Json>& metrics) {
  if (!metrics || !metrics->is_object()) return "{}";
  Json out = Json::object();
  for (auto it = metrics->begin(); it != metrics->end(); ++it) {
    const Json& v = it.value();
    if (v.is_boolean()) {
      out[it.key()] = v.get<bool>() ? 1 : 0;  // round(True, 3) == 1
    } else if (v.is_number_float()) {
      out[it.key()] = python_round(v.get<double>(), 3);
    } else if (v.is_number()) {
      out[it.key()] = v;
    } else {
      std::string text = python_str(v);
      out[it.key()] = utf8_length(text) > 20 ? utf8_prefix(text, 20) + "..." : text;
    }
  }
  return python_repr(out);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  return python_float_repr(v);
}

std::string csv_value(const Json& v) {
  if (v.is_number_float()) return python_float_repr(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string external_value(const search::Distribution& d, double internal) {
  using Kind = search::Distribution::Kind;
  if (d.kind == Kind::kCategorical) {
    if (internal >= 0 && internal < static_cast<double>(d.choices.size()) &&
        internal == std::floor(internal)) {
      return d.choices[static_cast<size_t>(internal)];
    }
    return csv_number(internal);
  }
  if (d.kind == Kind::kInt) return csv_number(internal);
  return python_float_repr(internal);
}

// What index parameter values stand for: the study's recorded choices (study settings), else
// each trial's sampled_config (key/config/field -> sampled_config[key]["config"][field]).
class ParamDecoder {
 public:
  ParamDecoder(const StudyInfo& info, const std::vector<FrozenTrial>& trials) : info_(info) {
    auto it = info.user_attrs.find(setting::kParamChoices);
    if (it != info.user_attrs.end()) {
      Json j = Json::parse(it->second, nullptr, false);
      if (j.is_object()) choices_ = std::move(j);
    }
    for (const FrozenTrial& t : trials) {
      any_sampled_ = any_sampled_ || t.user_attrs.count(kSampledConfig) > 0;
    }
  }
  // Whether parameter k gets a decoded-value column: it has recorded choices, or it is a MASE
  // "key/config/field" parameter and some trial has a sampled_config.
  bool active(size_t k) const {
    const std::string& name = info_.space[k].name;
    if (choices_.is_object() && choices_.contains(name)) return true;
    return any_sampled_ && name.rfind("/config/") != std::string::npos;
  }

  std::optional<Json> decode(const FrozenTrial& t, size_t k) const {
    if (k >= t.params.size() || k >= info_.space.size()) return std::nullopt;
    const std::string& name = info_.space[k].name;
    const double p = t.params[k];
    if (choices_.is_object() && choices_.contains(name) && choices_[name].is_array()) {
      const Json& list = choices_[name];
      if (p >= 0 && p < static_cast<double>(list.size()) && p == std::floor(p)) {
        return list[static_cast<size_t>(p)];
      }
      return std::nullopt;
    }
    const size_t cut = name.rfind("/config/");
    if (cut == std::string::npos) return std::nullopt;
    std::optional<Json> sampled = user_attr(t, kSampledConfig);
    if (!sampled || !sampled->is_object()) return std::nullopt;
    const std::string key = name.substr(0, cut), field = name.substr(cut + 8);
    if (!sampled->contains(key) || !(*sampled)[key].is_object()) return std::nullopt;
    const Json& node = (*sampled)[key];
    if (!node.contains("config") || !node["config"].is_object()) return std::nullopt;
    if (!node["config"].contains(field)) return std::nullopt;
    return node["config"][field];
  }

 private:
  const StudyInfo& info_;
  Json choices_;
  bool any_sampled_ = false;
};

std::string decoded_text(const std::optional<Json>& v) {
  if (!v) return "";
  if (v->is_null()) return "NA";
  return csv_value(*v);
}

}  // namespace

void write_atomically(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp" + std::to_string(getpid());
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write '{}': check that the directory is writable", tmp.string());
    out << text;
    out.close();
    if (!out) {
      // A half-written temporary file must not stay behind (nor fill the disk further).
      std::filesystem::remove(tmp, ec);
      fail("writing '{}' failed (disk full?); '{}' is unchanged", tmp.string(), path.string());
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("cannot replace '{}': {}", path.string(), ec.message());
  }
}

std::vector<FrozenTrial> best_trials(const StudyInfo& info,
                                     const std::vector<FrozenTrial>& trials) {
  std::vector<const FrozenTrial*> complete;
  search::Points losses(static_cast<int>(info.directions.size()));
  for (const FrozenTrial& t : trials) {
    if (t.state != TrialState::kComplete || t.values.size() != info.directions.size()) continue;
    if (search::is_probe(t)) continue;      // not a configuration (sensitivity_report.h)
    if (!search::is_feasible(t)) continue;  // a constraint violated: never a best trial
    std::vector<double> loss = search::to_loss(t.values, info.directions);
    // NaN never happens in Optuna (it fails such trials); here it counts as the worst value.
    for (double& l : loss) {
      if (std::isnan(l)) l = std::numeric_limits<double>::infinity();
    }
    losses.push_back(loss);
    complete.push_back(&t);
  }
  std::vector<FrozenTrial> best;
  if (complete.empty()) return best;
  for (int i : search::pareto_front(losses)) best.push_back(*complete[i]);
  return best;
}

std::string best_json(const StudyInfo& info, const std::vector<FrozenTrial>& trials) {
  Json root = Json::object();
  int row = 0;
  const std::map<int, Json> finals = final_evals(info);
  for (const FrozenTrial& t : best_trials(info, trials)) {
    Json r = Json::object();
    r["number"] = t.number;
    r["value"] = values_list(t);
    for (const char* key : {kSoftwareMetrics, kHardwareMetrics, kScaledMetrics, kSampledConfig}) {
      r[key] = user_attr(t, key).value_or(Json(nullptr));
    }
    // Ours, only after `--final-eval full`: MASE's layout is untouched otherwise.
    if (!finals.empty()) {
      auto f = finals.find(t.number);
      r[kFinalEval] = f == finals.end() ? Json(nullptr) : f->second;
    }
    root[std::to_string(row++)] = std::move(r);
  }
  return to_pandas_json(root, 4);
}

std::string log_json(const StudyInfo& info, const std::vector<FrozenTrial>& all_trials) {
  // Probe trials are not configurations of the space (sensitivity_report.h).
  const std::vector<FrozenTrial> trials = configuration_trials(all_trials);
  if (trials.empty()) return to_pandas_json(Json::object(), 4);
  std::vector<std::pair<std::string, std::vector<Json>>> columns;
  auto add = [&](std::string name, const std::vector<std::optional<Json>>& cells) {
    columns.emplace_back(std::move(name), as_pandas_column(cells));
  };
  // datetime64/timedelta64 columns: missing cells are NaT, which does not turn the others into
  // floats.
  auto add_time = [&](std::string name, const std::vector<std::optional<Json>>& cells) {
    std::vector<Json> column;
    for (const auto& c : cells) column.push_back(c.value_or(Json(nullptr)));
    columns.emplace_back(std::move(name), std::move(column));
  };
  const size_t n = trials.size();
  const size_t n_objectives = info.directions.size();

  std::vector<std::optional<Json>> cells(n);
  for (size_t i = 0; i < n; ++i) cells[i] = trials[i].number;
  add("number", cells);
  for (size_t k = 0; k < n_objectives; ++k) {
    for (size_t i = 0; i < n; ++i) {
      const FrozenTrial& t = trials[i];
      cells[i] = t.state == TrialState::kComplete && k < t.values.size()
                     ? std::optional<Json>(t.values[k])
                     : std::nullopt;
    }
    add(n_objectives == 1 ? "value" : "values_" + std::to_string(k), cells);
  }
  std::set<std::string> user_keys, system_keys;  // sorted, as Optuna sorts the columns
  for (const FrozenTrial& t : trials) {
    for (const auto& [k, v] : t.user_attrs) user_keys.insert(k);
    for (const auto& [k, v] : t.system_attrs) system_keys.insert(k);
  }
  for (const std::string& key : user_keys) {
    for (size_t i = 0; i < n; ++i) cells[i] = user_attr(trials[i], key);
    add("user_attrs_" + key, cells);
  }
  for (const std::string& key : system_keys) {
    for (size_t i = 0; i < n; ++i) {
      auto it = trials[i].system_attrs.find(key);
      cells[i] =
          it == trials[i].system_attrs.end() ? std::nullopt : std::optional<Json>(Json(it->second));
    }
    add("system_attrs_" + key, cells);
  }
  for (size_t i = 0; i < n; ++i) cells[i] = search::to_string(trials[i].state);
  add("state", cells);
  for (size_t i = 0; i < n; ++i) cells[i] = trials[i].datetime_start_ms;
  add_time("datetime_start", cells);
  for (size_t i = 0; i < n; ++i) {
    const FrozenTrial& t = trials[i];
    cells[i] = t.finished() ? std::optional<Json>(t.datetime_complete_ms) : std::nullopt;
  }
  add_time("datetime_complete", cells);
  for (size_t i = 0; i < n; ++i) {
    const FrozenTrial& t = trials[i];
    cells[i] = t.finished() ? std::optional<Json>(t.datetime_complete_ms - t.datetime_start_ms)
                            : std::nullopt;
  }
  add_time("duration", cells);

  Json root = Json::object();
  for (size_t i = 0; i < n; ++i) {
    Json row = Json::object();
    for (const auto& [name, column] : columns) row[name] = column[i];
    root[std::to_string(i)] = std::move(row);
  }
  return to_pandas_json(root, 4);
}

std::string best_trials_table(const StudyInfo& info, const std::vector<FrozenTrial>& trials) {
  std::vector<Column> columns = {{"", true},
                                 {"number", true},
                                 {kSoftwareMetrics, false},
                                 {kHardwareMetrics, false},
                                 {kScaledMetrics, false}};
  std::vector<std::vector<std::string>> rows;
  const std::map<int, Json> finals = final_evals(info);
  const std::vector<FrozenTrial> best = best_trials(info, trials);
  bool any_final = false;
  for (const FrozenTrial& t : best) any_final = any_final || finals.count(t.number);
  if (any_final) columns.push_back({kFinalEval, false});  // ours, after MASE's columns
  for (const FrozenTrial& t : best) {
    rows.push_back({std::to_string(rows.size()), std::to_string(t.number),
                    beautified_repr(user_attr(t, kSoftwareMetrics)),
                    beautified_repr(user_attr(t, kHardwareMetrics)),
                    beautified_repr(user_attr(t, kScaledMetrics))});
    if (any_final) {
      auto f = finals.find(t.number);
      rows.back().push_back(
          beautified_repr(f == finals.end() ? std::nullopt : std::optional<Json>(f->second)));
    }
  }
  if (rows.empty()) {
    // tabulate shows no index column for an empty DataFrame, and with no values to look at it
    // takes every column for text.
    columns.erase(columns.begin());
    for (Column& c : columns) c.numeric = false;
  }
  return "Best trial(s):\n" + orgtbl(columns, rows);
}

std::string trials_csv(const StudyInfo& info, const std::vector<FrozenTrial>& all_trials) {
  // Probe trials are not configurations of the space (sensitivity_report.h).
  const std::vector<FrozenTrial> trials = configuration_trials(all_trials);
  // Metric columns: (source attr, metric key) -> header, in first-seen order.
  std::vector<std::tuple<std::string, std::string, std::string>> metric_columns;
  std::set<std::pair<std::string, std::string>> seen;
  std::set<std::string> headers;
  std::vector<std::map<std::string, Json>> parsed(trials.size());
  for (size_t i = 0; i < trials.size(); ++i) {
    for (const char* source : {kSoftwareMetrics, kHardwareMetrics, kScaledMetrics}) {
      std::optional<Json> m = user_attr(trials[i], source);
      if (!m || !m->is_object()) continue;
      parsed[i][source] = *m;
      for (auto it = m->begin(); it != m->end(); ++it) {
        if (!seen.insert({source, it.key()}).second) continue;
        std::string header = std::string(source) == kScaledMetrics ? "scaled_" + it.key()
                             : headers.count(it.key())             ? "hardware_" + it.key()
                                                                   : it.key();
        headers.insert(header);
        metric_columns.emplace_back(source, it.key(), header);
      }
    }
  }
  // Scaled columns after every unscaled one, whatever order trials revealed them in.
  std::stable_partition(metric_columns.begin(), metric_columns.end(),
                        [](const auto& c) { return std::get<0>(c) != kScaledMetrics; });
  // Then the final evaluation's metrics (study attr final_eval), as final_<metric>.
  const std::map<int, Json> finals = final_evals(info);
  for (size_t i = 0; i < trials.size(); ++i) {
    auto f = finals.find(trials[i].number);
    if (f == finals.end() || !f->second.is_object()) continue;
    parsed[i][kFinalEval] = f->second;
    for (auto it = f->second.begin(); it != f->second.end(); ++it) {
      if (seen.insert({kFinalEval, it.key()}).second) {
        metric_columns.emplace_back(kFinalEval, it.key(), "final_" + it.key());
      }
    }
  }

  std::vector<std::string> header = {"number", "state"};
  if (info.directions.size() == 1) {
    header.push_back("value");
  } else {
    for (size_t k = 0; k < info.directions.size(); ++k) {
      header.push_back("values_" + std::to_string(k));
    }
  }
  const ParamDecoder decoder(info, trials);
  for (size_t k = 0; k < info.space.size(); ++k) {
    header.push_back(info.space[k].name);
    if (decoder.active(k)) header.push_back(info.space[k].name + ":value");
  }
  for (const auto& c : metric_columns) header.push_back(std::get<2>(c));
  header.push_back("duration_ms");
  header.push_back("fail_reason");

  std::string out;
  auto emit = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i) out += ',';
      out += csv_field(fields[i]);
    }
    out += '\n';
  };
  emit(header);
  for (size_t i = 0; i < trials.size(); ++i) {
    const FrozenTrial& t = trials[i];
    std::vector<std::string> row = {std::to_string(t.number), search::to_string(t.state)};
    for (size_t k = 0; k < info.directions.size(); ++k) {
      row.push_back(t.state == TrialState::kComplete && k < t.values.size()
                        ? python_float_repr(t.values[k])
                        : "");
    }
    for (size_t k = 0; k < info.space.size(); ++k) {
      row.push_back(k < t.params.size() ? external_value(info.space[k].dist, t.params[k]) : "");
      if (decoder.active(k)) row.push_back(decoded_text(decoder.decode(t, k)));
    }
    for (const auto& [source, key, name] : metric_columns) {
      auto m = parsed[i].find(source);
      const Json* v = nullptr;
      if (m != parsed[i].end() && m->second.contains(key)) v = &m->second[key];
      row.push_back(v ? csv_value(*v) : "");
    }
    row.push_back(t.finished() ? std::to_string(t.datetime_complete_ms - t.datetime_start_ms) : "");
    auto reason = t.system_attrs.find(search::kAttrFailReason);
    row.push_back(reason == t.system_attrs.end() ? "" : reason->second);
    emit(row);
  }
  return out;
}

void write_search_outputs(const std::filesystem::path& out_dir, const StudyInfo& info,
                          const std::vector<FrozenTrial>& trials) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec || !std::filesystem::is_directory(out_dir)) {
    fail("cannot create output directory '{}': {}", out_dir.string(),
         ec ? ec.message() : "a file of that name exists");
  }
  write_atomically(out_dir / "best.json", best_json(info, trials));
  write_atomically(out_dir / "log.json", log_json(info, trials));
  write_atomically(out_dir / "trials.csv", trials_csv(info, trials));
  if (has_probes(trials)) {
    write_atomically(out_dir / "sensitivity.json", sensitivity_json(info, trials));
  }
}

}  // namespace qsearch::report
