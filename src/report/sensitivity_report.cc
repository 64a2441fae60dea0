#include "report/sensitivity_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "report/search_report.h"
#include "report/study_settings.h"
#include "report/tabulate.h"
#include "search/sampler.h"
#include "search/sensitivity_sampler.h"

namespace qsearch::report {

namespace {

using Json = nlohmann::ordered_json;
using search::FrozenTrial;

Json attr_json(const FrozenTrial& t, const char* key) {
  auto it = t.user_attrs.find(key);
  if (it == t.user_attrs.end()) return nullptr;
  Json j = Json::parse(it->second, nullptr, false);
  return j.is_discarded() ? Json(nullptr) : j;
}

// Objective names: the scaled metrics of a COMPLETE trial when they match the values.
std::vector<std::string> objective_names(const search::StudyInfo& info,
                                         const std::vector<FrozenTrial>& trials) {
  for (const FrozenTrial& t : trials) {
    if (t.state != search::TrialState::kComplete) continue;
    Json s = attr_json(t, kScaledMetrics);
    if (!s.is_object() || s.size() != info.directions.size()) continue;
    std::vector<std::string> names;
    for (auto it = s.begin(); it != s.end(); ++it) names.push_back(it.key());
    return names;
  }
  std::vector<std::string> names;
  for (size_t k = 0; k < info.directions.size(); ++k) names.push_back(fmt::format("value_{}", k));
  return names;
}

// What each parameter's internal value stands for (the study's recorded choices, else the value).
class Decoder {
 public:
  explicit Decoder(const search::StudyInfo& info) : info_(info) {
    auto it = info.user_attrs.find(setting::kParamChoices);
    if (it != info.user_attrs.end()) choices_ = Json::parse(it->second, nullptr, false);
  }
  Json value(size_t k, double internal) const {
    const std::string& name = info_.space[k].name;
    if (choices_.is_object() && choices_.contains(name) && choices_[name].is_array()) {
      const int64_t i = info_.space[k].dist.index_of(internal);
      if (i >= 0 && i < static_cast<int64_t>(choices_[name].size())) return choices_[name][i];
    }
    const auto& d = info_.space[k].dist;
    if (d.kind == search::Distribution::Kind::kCategorical) {
      return d.choices.at(static_cast<size_t>(internal));
    }
    return internal;
  }

 private:
  const search::StudyInfo& info_;
  Json choices_;
};

std::string field_of(const std::string& param) {
  const size_t c = param.rfind("/config/");
  if (c != std::string::npos) return param.substr(c + 8);
  const size_t s = param.rfind('/');
  return s == std::string::npos ? param : param.substr(s + 1);
}

std::string text(const Json& v) {
  if (v.is_null()) return "NA";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

struct Built {
  Json json;
  std::vector<std::string> names;
  std::vector<std::string> option_text;  // per probe: its multi-valued fields, "f=v f=v"
};

Built build(const search::StudyInfo& info, const std::vector<FrozenTrial>& trials) {
  Built b;
  b.names = objective_names(info, trials);
  const std::vector<search::ParamGroup> groups = search::param_groups(info.space);
  std::map<std::string, size_t> group_order;
  for (size_t g = 0; g < groups.size(); ++g) group_order.emplace(groups[g].name, g);
  const Decoder decoder(info);

  const FrozenTrial* base = nullptr;
  std::vector<const FrozenTrial*> probes;
  for (const FrozenTrial& t : trials) {
    auto it = t.system_attrs.find(search::kAttrProbe);
    if (it == t.system_attrs.end() || t.interrupted()) continue;
    if (it->second == search::kProbeBase) {
      if (!base || (base->state != search::TrialState::kComplete &&
                    t.state == search::TrialState::kComplete)) {
        base = &t;
      }
    } else if (group_order.count(it->second)) {
      probes.push_back(&t);
    }
  }
  // By group (space order), then option (params), then trial number.
  std::stable_sort(probes.begin(), probes.end(), [&](const FrozenTrial* a, const FrozenTrial* c) {
    const size_t ga = group_order.at(a->system_attrs.at(search::kAttrProbe));
    const size_t gc = group_order.at(c->system_attrs.at(search::kAttrProbe));
    return ga != gc ? ga < gc : a->params < c->params;
  });
  const bool base_ok = base && base->state == search::TrialState::kComplete &&
                       base->values.size() == info.directions.size();
  auto common = [&](Json& r, const FrozenTrial& t) {
    r["trial"] = t.number;
    r["state"] = search::to_string(t.state);
    r["values"] = t.state == search::TrialState::kComplete ? Json(t.values) : Json(nullptr);
  };
  Json& j = b.json;
  j = Json::object();
  j["objectives"] = b.names;
  Json dirs = Json::array();
  for (auto d : info.directions) dirs.push_back(search::to_string(d));
  j["directions"] = dirs;
  if (base) {
    Json r = Json::object();
    common(r, *base);
    r["software_metrics"] = attr_json(*base, kSoftwareMetrics);
    r["hardware_metrics"] = attr_json(*base, kHardwareMetrics);
    j["base"] = r;
  } else {
    j["base"] = nullptr;
  }
  Json list = Json::array();
  for (const FrozenTrial* t : probes) {
    const std::string& g = t->system_attrs.at(search::kAttrProbe);
    Json r = Json::object();
    r["group"] = g;
    Json option = Json::object();
    for (int k : groups[group_order.at(g)].params) {
      option[field_of(info.space[k].name)] = decoder.value(k, t->params[k]);
    }
    r["option"] = option;
    std::string text_option;
    for (int k : groups[group_order.at(g)].params) {
      if (info.space[k].dist.single()) continue;
      if (!text_option.empty()) text_option += ' ';
      text_option +=
          fmt::format("{}={}", field_of(info.space[k].name), text(decoder.value(k, t->params[k])));
    }
    b.option_text.push_back(text_option);
    common(r, *t);
    if (base_ok && t->state == search::TrialState::kComplete &&
        t->values.size() == base->values.size()) {
      std::vector<double> drop;
      for (size_t k = 0; k < t->values.size(); ++k) drop.push_back(base->values[k] - t->values[k]);
      r["drop"] = drop;
    } else {
      r["drop"] = nullptr;
    }
    r["software_metrics"] = attr_json(*t, kSoftwareMetrics);
    r["hardware_metrics"] = attr_json(*t, kHardwareMetrics);
    auto reason = t->system_attrs.find(search::kAttrFailReason);
    if (reason != t->system_attrs.end()) r["fail_reason"] = reason->second;
    list.push_back(r);
  }
  j["probes"] = list;
  return b;
}

}  // namespace

bool has_probes(const std::vector<FrozenTrial>& trials) {
  return std::any_of(trials.begin(), trials.end(), search::is_probe);
}

std::vector<FrozenTrial> configuration_trials(const std::vector<FrozenTrial>& trials) {
  std::vector<FrozenTrial> out;
  out.reserve(trials.size());
  for (const FrozenTrial& t : trials) {
    if (!search::is_probe(t)) out.push_back(t);
  }
  return out;
}

std::string sensitivity_json(const search::StudyInfo& info,
                             const std::vector<FrozenTrial>& trials) {
  return build(info, trials).json.dump(2) + "\n";
}

std::string sensitivity_table(const search::StudyInfo& info,
                              const std::vector<FrozenTrial>& trials) {
  const Built b = build(info, trials);
  std::vector<Column> columns = {{"group", false}, {"option", false}};
  for (const auto& n : b.names) {
    columns.push_back({n, true});
    columns.push_back({fmt::format("drop {}", n), true});
  }
  std::vector<std::vector<std::string>> rows;
  auto number = [](const Json& v) {
    return v.is_number() ? fmt::format("{:.4g}", v.get<double>()) : "";
  };
  auto add_row = [&](const std::string& group, const std::string& option, const Json& r) {
    std::vector<std::string> row = {group, option};
    for (size_t k = 0; k < b.names.size(); ++k) {
      row.push_back(r["values"].is_array() ? number(r["values"][k])
                                           : r["state"].get<std::string>());
      row.push_back(r.contains("drop") && r["drop"].is_array() ? number(r["drop"][k]) : "");
    }
    rows.push_back(std::move(row));
  };
  if (!b.json["base"].is_null()) add_row("(all float)", "", b.json["base"]);
  for (size_t i = 0; i < b.json["probes"].size(); ++i) {
    const Json& p = b.json["probes"][i];
    add_row(p["group"].get<std::string>(), b.option_text[i], p);
  }
  return orgtbl(columns, rows) + "\n";
}

}  // namespace qsearch::report
