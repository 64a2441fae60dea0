#include "report/study_settings.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>

namespace qsearch::report {

namespace {

using Json = nlohmann::ordered_json;

std::optional<Json> parsed(const std::map<std::string, std::string>& attrs,
                           const std::string& key) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return std::nullopt;
  Json j = Json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Json(it->second);  // not JSON text: compare it as a string
  return j;
}

std::string text(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) return fmt::format("{}", j.get<double>());
  return j.dump();
}

std::string model_text(const std::map<std::string, std::string>& attrs, const Json& sha) {
  std::optional<Json> path = parsed(attrs, setting::kModel);
  std::string hash = text(sha).substr(0, 12);
  return path ? fmt::format("{} (sha256 {})", text(*path), hash) : "sha256 " + hash;
}

std::string metric_text(const Json& m) {
  std::string s = m.contains("metric") ? text(m["metric"]) : "?";
  if (m.contains("scale")) s += " x" + text(m["scale"]);
  return s;
}

std::string objectives_text(const Json& j) {
  if (!j.is_array()) return text(j);
  std::string out;
  for (const Json& o : j) {
    std::string one;
    if (o.is_object() && o.contains("sum_of") && o["sum_of"].is_array()) {
      for (const Json& m : o["sum_of"]) one += (one.empty() ? "sum of " : " + ") + metric_text(m);
    } else if (o.is_object()) {
      one = metric_text(o);
    } else {
      one = text(o);
    }
    if (o.is_object() && o.contains("direction")) one += " (" + text(o["direction"]) + ")";
    out += (out.empty() ? "" : ", ") + one;
  }
  return "[" + out + "]";
}

// The first parameter whose choices differ, or a count when the parameter lists differ.
SettingDifference space_difference(const Json& a, const Json& b) {
  SettingDifference d{"search space", "", ""};
  if (!a.is_object() || !b.is_object()) {
    d.stored = text(a);
    d.now = text(b);
    return d;
  }
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key())) {
      d.setting = fmt::format("search space (parameter '{}')", it.key());
      d.stored = "choices " + it.value().dump();
      d.now = "absent";
      return d;
    }
    if (b[it.key()] != it.value()) {
      d.setting = fmt::format("search space (parameter '{}')", it.key());
      d.stored = "choices " + it.value().dump();
      d.now = "choices " + b[it.key()].dump();
      return d;
    }
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!a.contains(it.key())) {
      d.setting = fmt::format("search space (parameter '{}')", it.key());
      d.stored = "absent";
      d.now = "choices " + it.value().dump();
      return d;
    }
  }
  // Same parameters and choices in another order.
  d.stored = fmt::format("{} parameters in one order", a.size());
  d.now = "another order";
  return d;
}

}  // namespace

const std::vector<std::string>& resume_settings() {
  static const std::vector<std::string> keys = {
      setting::kModelSha256, setting::kDataset,       setting::kSplit,      setting::kNumSamples,
      setting::kMode,        setting::kFoldBatchNorm, setting::kObjectives, setting::kParamChoices};
  return keys;
}

const std::vector<std::string>& compare_settings() {
  static const std::vector<std::string> keys = {
      setting::kModelSha256, setting::kDataset,       setting::kSplit,     setting::kNumSamples,
      setting::kMode,        setting::kFoldBatchNorm, setting::kObjectives};
  return keys;
}

std::vector<SettingDifference> diff_settings(const std::map<std::string, std::string>& stored,
                                             const std::map<std::string, std::string>& now,
                                             const std::vector<std::string>& keys,
                                             std::vector<std::string>* unchecked) {
  std::vector<SettingDifference> out;
  for (const std::string& key : keys) {
    std::optional<Json> a = parsed(stored, key), b = parsed(now, key);
    if (key == setting::kFoldBatchNorm) {
      // A study made before the option existed was searched with BatchNorm kept.
      if (!a) a = Json(false);
      if (!b) b = Json(false);
    }
    const std::string name = key == setting::kModelSha256 ? "model" : key;
    if (!a || !b) {
      if (unchecked) unchecked->push_back(name);
      continue;
    }
    if (*a == *b) continue;
    if (key == setting::kModelSha256) {
      out.push_back({name, model_text(stored, *a), model_text(now, *b)});
    } else if (key == setting::kObjectives) {
      out.push_back({name, objectives_text(*a), objectives_text(*b)});
    } else if (key == setting::kParamChoices) {
      out.push_back(space_difference(*a, *b));
    } else {
      out.push_back({name, text(*a), text(*b)});
    }
  }
  return out;
}

std::string describe(const std::vector<SettingDifference>& diffs, const std::string& first,
                     const std::string& second) {
  std::string out;
  for (const SettingDifference& d : diffs) {
    out += fmt::format("{}{}: {} in {}, {} in {}", out.empty() ? "" : "; ", d.setting, d.stored,
                       first, d.now, second);
  }
  return out;
}

}  // namespace qsearch::report
