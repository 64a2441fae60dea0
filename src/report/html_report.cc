#include "report/html_report.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/error.h"
#include "report/html_assets.h"
#include "report/search_report.h"
#include "report/study_settings.h"
#include "search/multi_objective.h"

namespace qsearch::report {

namespace {

using Json = nlohmann::ordered_json;

constexpr double kW = 440, kH = 300;                                // plot size (px)
constexpr double kLeft = 70, kRight = 14, kTop = 30, kBottom = 46;  // margins

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

std::string num(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  return fmt::format("{:.5g}", v);
}
std::string px(double v) { return fmt::format("{:.1f}", v); }

// 4-6 "nice" tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

struct Axis {
  double lo = 0, hi = 1, from = 0, to = 1;  // data range -> pixel range
  double operator()(double v) const { return from + (v - lo) / (hi - lo) * (to - from); }
};

Axis make_axis(std::vector<double> values, double from, double to) {
  Axis a;
  a.from = from;
  a.to = to;
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return a;
  auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  a.lo = *mn;
  a.hi = *mx;
  if (a.hi == a.lo) {
    const double d = a.lo == 0 ? 1 : std::abs(a.lo) * 0.05;
    a.lo -= d;
    a.hi += d;
  } else {
    const double pad = (a.hi - a.lo) * 0.04;
    a.lo -= pad;
    a.hi += pad;
  }
  return a;
}

void write_axes(std::string& s, const Axis& ax, const Axis& ay, const std::string& x_label,
                const std::string& y_label) {
  s += fmt::format(R"(<rect class="frame" x="{}" y="{}" width="{}" height="{}"/>)", px(kLeft),
                   px(kTop), px(kW - kLeft - kRight), px(kH - kTop - kBottom));
  for (double v : ticks(ax.lo, ax.hi)) {
    const double x = ax(v);
    s += fmt::format(R"(<line class="tick" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>)", px(x),
                     px(kH - kBottom), px(kH - kBottom + 4));
    s += fmt::format(R"(<text class="tl" x="{}" y="{}" text-anchor="middle">{}</text>)", px(x),
                     px(kH - kBottom + 16), num(v));
  }
  for (double v : ticks(ay.lo, ay.hi)) {
    const double y = ay(v);
    s += fmt::format(R"(<line class="tick" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", px(kLeft - 4),
                     px(kLeft), px(y));
    s += fmt::format(R"(<text class="tl" x="{}" y="{}" text-anchor="end">{}</text>)", px(kLeft - 6),
                     px(y + 4), num(v));
  }
  s += fmt::format(R"(<text class="al" x="{}" y="{}" text-anchor="middle">{}</text>)",
                   px((kLeft + kW - kRight) / 2), px(kH - 8), html_escape(x_label));
  s += fmt::format(
      R"X(<text class="al" x="14" y="{0}" text-anchor="middle" transform="rotate(-90 14 {0})">{1}</text>)X",
      px((kTop + kH - kBottom) / 2), html_escape(y_label));
}

std::string straight_path(std::vector<std::pair<double, double>> pts) {
  std::string d;
  for (size_t i = 0; i < pts.size(); ++i) {
    d += fmt::format("{}{} {}", i == 0 ? "M" : " L", px(pts[i].first), px(pts[i].second));
  }
  return d;
}

Json parse_attr(const std::map<std::string, std::string>& attrs, const std::string& key) {
  auto it = attrs.find(key);
  if (it == attrs.end()) return Json();
  return Json::parse(it->second, nullptr, false);
}

std::string attr_text(const std::map<std::string, std::string>& attrs, const std::string& key) {
  Json j = parse_attr(attrs, key);
  if (j.is_discarded() || j.is_null()) return "?";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

// Objective names from the recorded settings ("accuracy", "sum of ..."), else "objective k".
std::vector<std::string> objective_names(const search::StudyInfo& info) {
  std::vector<std::string> names;
  Json obj = parse_attr(info.user_attrs, setting::kObjectives);
  if (obj.is_array()) {
    for (const auto& o : obj) {
      if (o.contains("metric") && o["metric"].is_string()) {
        const double scale = o.value("scale", 1.0);
        names.push_back(scale == 1.0 ? o["metric"].get<std::string>()
                                     : fmt::format("{}*{}", scale, o["metric"].get<std::string>()));
      } else if (o.contains("sum_of") && o["sum_of"].is_array()) {
        std::string s;
        for (const auto& m : o["sum_of"]) {
          s += (s.empty() ? "" : " + ") +
               fmt::format("{}*{}", m.value("scale", 1.0), m.value("metric", std::string("?")));
        }
        names.push_back(s);
      }
    }
  }
  if (names.size() != info.directions.size()) {
    names.clear();
    for (size_t i = 0; i < info.directions.size(); ++i) {
      names.push_back(fmt::format("objective {}", i));
    }
  }
  return names;
}

// The raw metric each objective is (empty for a sum of scaled metrics or an unrecorded one).
std::vector<std::string> objective_metrics(const search::StudyInfo& info) {
  std::vector<std::string> out(info.directions.size());
  Json obj = parse_attr(info.user_attrs, setting::kObjectives);
  if (obj.is_array() && obj.size() == out.size()) {
    for (size_t i = 0; i < out.size(); ++i) {
      if (obj[i].contains("metric") && obj[i]["metric"].is_string()) {
        out[i] = obj[i]["metric"].get<std::string>();
      }
    }
  }
  return out;
}

// Metrics whose direction is known to be "higher is better" (they are never drawn as costs).
bool higher_is_better(const std::string& metric) {
  return metric == "accuracy" || metric == "macro_accuracy" || metric == "top5_accuracy" ||
         metric == "memory_density";
}

// 7 significant digits: the page shows 6, and 10,000 trials' numbers at 17 digits would double
// the file.
Json short_number(double v) {
  if (!std::isfinite(v)) return Json();
  return std::stod(fmt::format("{:.7g}", v));
}

std::string escape_json_for_script(const std::string& json) {
  std::string s;
  s.reserve(json.size());
  for (char c : json) {
    if (c == '<') {
      s += "\\u003c";
    } else {
      s += c;
    }
  }
  return s;
}

std::string page(const std::string& title, const std::string& body, const Json& data,
                 int refresh_s) {
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  if (refresh_s > 0) {
    s += fmt::format("<meta http-equiv=\"refresh\" content=\"{}\">", refresh_s);
  }
  s += "<title>" + html_escape(title) + "</title><style>" + std::string(kHtmlCss) +
       "</style></head><body>\n";
  s += body;
  s += "<div id=\"tip\" hidden></div>\n<script type=\"application/json\" id=\"qs-data\">";
  s += escape_json_for_script(data.dump());
  s += "</script>\n<script>" + std::string(kHtmlJs) + "</script>\n</body></html>\n";
  return s;
}

// COMPLETE trials that are configurations of the space (no probes), in number order.
std::vector<const search::FrozenTrial*> plotted_trials(
    const std::vector<search::FrozenTrial>& trials, size_t n_objectives) {
  std::vector<const search::FrozenTrial*> out;
  for (const auto& t : trials) {
    if (t.state == search::TrialState::kComplete && !search::is_probe(t) &&
        t.values.size() == n_objectives) {
      out.push_back(&t);
    }
  }
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->number < b->number; });
  return out;
}

// Hypervolume of the front of the first k points, k = 1..n (losses, minimised).
std::vector<double> hypervolume_curve(const std::vector<std::vector<double>>& losses,
                                      const std::vector<double>& ref) {
  const int dim = static_cast<int>(ref.size());
  std::vector<double> curve;
  search::Points front(dim);
  double hv = 0;
  for (const auto& p : losses) {
    bool dominated = false;
    for (int i = 0; i < front.size() && !dominated; ++i) {
      auto f = front[i];
      dominated = search::dominates(f, p) || std::equal(f.begin(), f.end(), p.begin());
    }
    if (!dominated) {
      search::Points next(dim);
      for (int i = 0; i < front.size(); ++i) {
        if (!search::dominates(p, front[i])) next.push_back(front[i]);
      }
      next.push_back(p);
      front = std::move(next);
      hv = search::hypervolume(front, ref);
    }
    curve.push_back(hv);
  }
  return curve;
}

std::string heat_color(double bits) {
  if (!std::isfinite(bits)) return "#e8e8e8";
  // 1 bit: deep blue ... 16+ bits: yellow (log2 scale).
  const double t = std::clamp(std::log2(std::max(1.0, bits)) / 4.0, 0.0, 1.0);
  const int r = static_cast<int>(40 + t * 215), g = static_cast<int>(60 + t * 170),
            b = static_cast<int>(160 - t * 120);
  return fmt::format("#{:02x}{:02x}{:02x}", r, g, b);
}

double field_number(const Json& cfg, const char* field) {
  if (cfg.is_object() && cfg.contains(field) && cfg[field].is_number()) {
    return cfg[field].get<double>();
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// The "config" object of one sampled_config key, or null.
Json layer_config(const Json& sampled, const std::string& key) {
  if (!sampled.is_object() || !sampled.contains(key)) return Json();
  const Json& e = sampled[key];
  if (e.is_object() && e.contains("config")) return e["config"];
  return e;
}

std::string section(const std::string& id, const std::string& title, const std::string& inner,
                    const std::string& note = "") {
  std::string s = fmt::format("<section id=\"{}\"><h2>{}</h2>", id, html_escape(title));
  if (!note.empty()) s += "<p class=\"note\">" + html_escape(note) + "</p>";
  return s + inner + "</section>\n";
}

std::string bars_svg(const std::string& id, const std::string& title,
                     const std::vector<std::pair<std::string, double>>& rows) {
  const double row_h = 20, label_w = 220, bar_w = 260;
  const double h = 30 + row_h * static_cast<double>(rows.size()) + 8;
  std::string s = fmt::format(
      R"(<svg id="{}" class="bars" viewBox="0 0 {} {}" width="{}" height="{}"><text class="title" x="4" y="18">{}</text>)",
      id, px(label_w + bar_w + 70), px(h), px(label_w + bar_w + 70), px(h), html_escape(title));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = 30 + row_h * static_cast<double>(i);
    s += fmt::format(R"(<text class="tl" x="{}" y="{}" text-anchor="end">{}</text>)",
                     px(label_w - 6), px(y + 14), html_escape(rows[i].first));
    s += fmt::format(
        R"(<rect class="imp-bar" x="{}" y="{}" width="{}" height="{}"/><text class="tl" x="{}" y="{}">{}</text>)",
        px(label_w), px(y + 3), px(std::max(0.0, rows[i].second) * bar_w), px(row_h - 6),
        px(label_w + std::max(0.0, rows[i].second) * bar_w + 4), px(y + 14),
        fmt::format("{:.3f}", rows[i].second));
  }
  return s + "</svg>";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string step_path(std::vector<std::pair<double, double>> front) {
  std::sort(front.begin(), front.end());
  std::string d;
  for (size_t i = 0; i < front.size(); ++i) {
    if (i == 0) {
      d += fmt::format("M{} {}", px(front[i].first), px(front[i].second));
    } else {
      d += fmt::format(" H{} V{}", px(front[i].first), px(front[i].second));
    }
  }
  return d;
}

std::vector<int> front_2d(const std::vector<PlotPoint>& pts, bool x_maximize, bool y_maximize) {
  search::Points p(2);
  std::vector<int> idx;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (!std::isfinite(pts[i].x) || !std::isfinite(pts[i].y)) continue;
    p.push_back({x_maximize ? -pts[i].x : pts[i].x, y_maximize ? -pts[i].y : pts[i].y});
    idx.push_back(static_cast<int>(i));
  }
  std::vector<int> out;
  for (int i : search::pareto_front(p)) out.push_back(idx[i]);
  return out;
}

std::string svg_scatter(const ScatterSpec& spec) {
  std::vector<double> xs, ys;
  for (const auto& p : spec.points) {
    xs.push_back(p.x);
    ys.push_back(p.y);
  }
  for (const auto& [cls, line] : spec.lines) {
    for (const auto& p : line) {
      xs.push_back(p.x);
      ys.push_back(p.y);
    }
  }
  const Axis ax = make_axis(xs, kLeft, kW - kRight);
  const Axis ay = make_axis(ys, kH - kBottom, kTop);
  std::string s = fmt::format(
      R"(<svg id="{}" class="plot" viewBox="0 0 {} {}" width="{}" height="{}" data-points="{}">)",
      html_escape(spec.id), px(kW), px(kH), px(kW), px(kH), spec.points.size());
  s += fmt::format(R"(<text class="title" x="{}" y="18">{}</text>)", px(kLeft),
                   html_escape(spec.title));
  write_axes(s, ax, ay, spec.x_label, spec.y_label);
  for (const auto& [cls, line] : spec.lines) {
    std::vector<std::pair<double, double>> pix;
    for (const auto& p : line) {
      if (std::isfinite(p.x) && std::isfinite(p.y)) pix.emplace_back(ax(p.x), ay(p.y));
    }
    if (pix.empty()) continue;
    // The staircase goes horizontally first from the point of the smallest data x; the pixel
    // y axis is flipped, which does not change the order of x.
    s += fmt::format(R"(<path class="{}" d="{}"/>)", html_escape(cls),
                     spec.lines_are_steps ? step_path(pix) : straight_path(pix));
  }
  s += "<g class=\"pts\">";
  for (const auto& p : spec.points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) continue;
    // Whole pixels and no per-circle class keep 10,000 trials' plots small (docs/outputs.md).
    s += fmt::format(R"(<circle{} cx="{:.0f}" cy="{:.0f}" r="3" data-t="{}"/>)",
                     p.group < 0 ? std::string() : fmt::format(" class=\"s{}\"", p.group), ax(p.x),
                     ay(p.y), p.trial);
  }
  return s + "</g></svg>";
}

std::vector<double> ped_anova_importance(const std::vector<std::vector<double>>& params,
                                         const std::vector<double>& values, bool maximize) {
  const size_t n = values.size();
  if (n < 20 || params.size() != n) return {};
  const size_t n_params = params[0].size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return maximize ? values[a] > values[b] : values[a] < values[b];
  });
  const size_t n_top = std::max<size_t>(2, static_cast<size_t>(std::ceil(0.1 * n)));
  std::vector<double> out(n_params, 0.0);
  for (size_t p = 0; p < n_params; ++p) {
    std::map<double, double> all, top;
    for (size_t t = 0; t < n; ++t) all[params[t][p]] += 1;
    for (size_t k = 0; k < n_top; ++k) top[params[order[k]][p]] += 1;
    const double cats = static_cast<double>(all.size());
    if (cats < 2) continue;
    double div = 0;
    for (const auto& [v, c] : all) {
      // Each distribution: counts plus a prior of total weight 1 spread over the categories.
      const double p_all = (c + 1 / cats) / (static_cast<double>(n) + 1);
      const double p_top = (top[v] + 1 / cats) / (static_cast<double>(n_top) + 1);
      const double r = p_top / p_all - 1;
      div += p_all * r * r;
    }
    out[p] = div;
  }
  const double sum = std::accumulate(out.begin(), out.end(), 0.0);
  if (sum > 0) {
    for (double& v : out) v /= sum;
  }
  return out;
}

std::string study_html(const search::StudyInfo& info,
                       const std::vector<search::FrozenTrial>& trials, const HtmlOptions& options) {
  const auto& attrs = info.user_attrs;
  const size_t n_obj = info.directions.size();
  const std::vector<std::string> obj_names = objective_names(info);
  const auto plotted = plotted_trials(trials, n_obj);

  // ---- header ----
  int complete = 0, failed = 0, running = 0, pruned = 0, probes = 0;
  int64_t first_start = std::numeric_limits<int64_t>::max(), last_end = 0;
  for (const auto& t : trials) {
    if (search::is_probe(t)) ++probes;
    switch (t.state) {
      case search::TrialState::kComplete:
        ++complete;
        break;
      case search::TrialState::kFail:
        ++failed;
        break;
      case search::TrialState::kRunning:
        ++running;
        break;
      case search::TrialState::kPruned:
        ++pruned;
        break;
    }
    if (t.datetime_start_ms > 0) first_start = std::min(first_start, t.datetime_start_ms);
    last_end = std::max(last_end, t.datetime_complete_ms);
  }
  double space_size = 1;
  for (const auto& p : info.space) {
    const int64_t c = p.dist.cardinality();
    space_size = c < 0 ? std::numeric_limits<double>::infinity() : space_size * double(c);
  }
  std::string command = attr_text(attrs, "command");
  if (command == "?" && !options.command.empty()) command = options.command;
  std::string objectives;
  for (size_t i = 0; i < n_obj; ++i) {
    objectives +=
        (i ? ", " : "") + obj_names[i] + " (" + search::to_string(info.directions[i]) + ")";
  }
  const double wall_s =
      last_end > first_start ? static_cast<double>(last_end - first_start) / 1000.0 : 0.0;
  const std::vector<std::pair<std::string, std::string>> header = {
      {"study", info.name},
      {"model", attr_text(attrs, setting::kModel)},
      {"data set",
       attr_text(attrs, setting::kDataset) + " (" + attr_text(attrs, setting::kSplit) + " split)"},
      {"samples per trial", attr_text(attrs, setting::kNumSamples)},
      {"mode", attr_text(attrs, setting::kMode)},
      {"objectives", objectives},
      {"space size",
       std::isfinite(space_size) ? fmt::format("{:.0f}", space_size) : std::string("continuous")},
      {"sampler", attr_text(attrs, "sampler")},
      {"seed", attr_text(attrs, "seed")},
      {"trials",
       fmt::format("{} complete, {} failed, {} running, {} pruned{}", complete, failed, running,
                   pruned, probes ? fmt::format(" ({} probes)", probes) : std::string())},
      {"wall time", fmt::format("{:.1f} s (first start to last finish)", wall_s)},
      {"qsearch", attr_text(attrs, setting::kQsearchVersion)},
      {"command", command},
  };
  std::string body = "<header><h1>qsearch study " + html_escape(info.name) +
                     "</h1><table id=\"header\" class=\"kv\">";
  for (const auto& [k, v] : header) {
    body += fmt::format("<tr><th>{}</th><td data-k=\"{}\">{}</td></tr>", html_escape(k),
                        html_escape(k), html_escape(v));
  }
  body += "</table></header>\n";

  // ---- metrics of each plotted trial ----
  std::vector<std::string> metric_names, hardware_names;
  std::vector<std::map<std::string, double>> metric_values(plotted.size());
  std::vector<Json> sampled(plotted.size());
  for (size_t i = 0; i < plotted.size(); ++i) {
    for (const char* key : {kSoftwareMetrics, kHardwareMetrics}) {
      Json m = parse_attr(plotted[i]->user_attrs, key);
      if (!m.is_object()) continue;
      for (const auto& [name, v] : m.items()) {
        if (!v.is_number()) continue;
        if (!metric_values[i].count(name) &&
            std::find(metric_names.begin(), metric_names.end(), name) == metric_names.end()) {
          metric_names.push_back(name);
        }
        if (std::string(key) == kHardwareMetrics &&
            std::find(hardware_names.begin(), hardware_names.end(), name) == hardware_names.end()) {
          hardware_names.push_back(name);
        }
        metric_values[i].emplace(name, v.get<double>());
      }
    }
    sampled[i] = parse_attr(plotted[i]->user_attrs, kSampledConfig);
  }

  // ---- objective space ----
  std::string plots;
  if (n_obj >= 1 && !plotted.empty()) {
    const bool y_max = info.directions[0] == search::Direction::kMaximize;
    // Axes show the raw metrics (an objective's value may be scaled): the objectives' own,
    // then every hardware metric that varies (FPGA resources included, whatever their names).
    const std::vector<std::string> obj_metric = objective_metrics(info);
    auto raw = [&](size_t i, const std::string& metric, int objective) {
      if (!metric.empty()) {
        if (auto it = metric_values[i].find(metric); it != metric_values[i].end()) {
          return it->second;
        }
      }
      return objective >= 0 ? plotted[i]->values[objective]
                            : std::numeric_limits<double>::quiet_NaN();
    };
    struct XAxis {
      std::string name, metric;
      int objective = -1;  // else a metric
      bool maximize = false;
    };
    std::vector<XAxis> xs;
    for (size_t k = 1; k < n_obj; ++k) {
      xs.push_back({obj_metric[k].empty() ? obj_names[k] : obj_metric[k], obj_metric[k],
                    static_cast<int>(k), info.directions[k] == search::Direction::kMaximize});
    }
    for (const auto& m : hardware_names) {
      if (higher_is_better(m) || m == obj_metric[0]) continue;
      if (std::any_of(xs.begin(), xs.end(), [&](const XAxis& x) { return x.metric == m; })) {
        continue;
      }
      // Only metrics that vary (a model's MACs do not).
      std::set<double> distinct;
      for (const auto& mv : metric_values) {
        if (auto it = mv.find(m); it != mv.end()) distinct.insert(it->second);
      }
      if (distinct.size() < 2) continue;
      xs.push_back({m, m, -1, false});
    }
    const std::string y_name = obj_metric[0].empty() ? obj_names[0] : obj_metric[0];
    for (size_t a = 0; a < xs.size(); ++a) {
      ScatterSpec sp;
      sp.id = fmt::format("space-{}", a);
      sp.title = y_name + " vs " + xs[a].name;
      sp.x_label = xs[a].name;
      sp.y_label = y_name;
      sp.y_maximize = y_max;
      for (size_t i = 0; i < plotted.size(); ++i) {
        sp.points.push_back(
            {raw(i, xs[a].metric, xs[a].objective), raw(i, obj_metric[0], 0), plotted[i]->number});
      }
      std::vector<PlotPoint> front;
      for (int i : front_2d(sp.points, xs[a].maximize, y_max)) front.push_back(sp.points[i]);
      sp.lines.push_back({"front", front});
      plots += "<figure>" + svg_scatter(sp) + "</figure>";
    }
    if (xs.empty()) {
      // One objective and no varying metric: the value of each trial.
      ScatterSpec sp;
      sp.id = "space-0";
      sp.title = obj_names[0] + " per trial";
      sp.x_label = "trial";
      sp.y_label = obj_names[0];
      for (const auto* t : plotted)
        sp.points.push_back({double(t->number), t->values[0], t->number});
      plots += "<figure>" + svg_scatter(sp) + "</figure>";
    }
  }
  body += section(
      "space", "Objective space",
      plots.empty() ? "<p>No complete trial yet.</p>" : "<div class=\"grid\">" + plots + "</div>",
      "Every complete trial is a point; the line is the Pareto front of the pair. "
      "Hover for a trial's metrics and formats, click to select it.");

  // ---- history ----
  std::string hist;
  for (size_t k = 0; k < n_obj && !plotted.empty(); ++k) {
    const bool maximize = info.directions[k] == search::Direction::kMaximize;
    ScatterSpec sp;
    sp.id = fmt::format("history-{}", k);
    sp.title = obj_names[k] + " by trial (line: best so far)";
    sp.x_label = "trial";
    sp.y_label = obj_names[k];
    std::vector<PlotPoint> best;
    double b = maximize ? -std::numeric_limits<double>::infinity()
                        : std::numeric_limits<double>::infinity();
    for (const auto* t : plotted) {
      sp.points.push_back({double(t->number), t->values[k], t->number});
      if (maximize ? t->values[k] > b : t->values[k] < b) {
        b = t->values[k];
        best.push_back({double(t->number), b, t->number});
      }
    }
    if (!best.empty()) best.push_back({double(plotted.back()->number), b, -1});
    sp.lines.push_back({"best", best});
    hist += "<figure>" + svg_scatter(sp) + "</figure>";
  }
  std::string hv_note;
  if (!plotted.empty() && n_obj >= 1) {
    std::vector<std::vector<double>> losses;
    for (const auto* t : plotted) losses.push_back(search::to_loss(t->values, info.directions));
    std::vector<double> ref;
    Json rp = parse_attr(attrs, setting::kReferencePoint);
    if (rp.is_object() && rp.contains("values") && rp["values"].is_array() &&
        rp["values"].size() == n_obj) {
      std::vector<double> v;
      for (const auto& x : rp["values"]) v.push_back(x.is_number() ? x.get<double>() : NAN);
      ref = search::to_loss(v, info.directions);
      hv_note = "w.r.t. the reference point the search recorded (" + rp["values"].dump() + ")";
    }
    if (ref.size() != n_obj ||
        !std::all_of(ref.begin(), ref.end(), [](double v) { return std::isfinite(v); })) {
      ref.assign(n_obj, -std::numeric_limits<double>::infinity());
      std::vector<double> lo(n_obj, std::numeric_limits<double>::infinity());
      for (const auto& l : losses) {
        for (size_t j = 0; j < n_obj; ++j) {
          ref[j] = std::max(ref[j], l[j]);
          lo[j] = std::min(lo[j], l[j]);
        }
      }
      for (size_t j = 0; j < n_obj; ++j) ref[j] += std::max(1e-12, 0.1 * (ref[j] - lo[j]));
      hv_note =
          "w.r.t. the worst values seen plus 10 % of their range (no recorded reference "
          "point)";
    }
    const std::vector<double> curve = hypervolume_curve(losses, ref);
    ScatterSpec sp;
    sp.id = "history-hv";
    sp.title = "hypervolume of the front of the first trials";
    sp.x_label = "trial";
    sp.y_label = "hypervolume";
    std::vector<PlotPoint> line;
    for (size_t i = 0; i < plotted.size(); ++i) {
      line.push_back({double(plotted[i]->number), curve[i], plotted[i]->number});
    }
    sp.lines.push_back({"hv", line});
    hist += "<figure>" + svg_scatter(sp) + "</figure>";
    hv_note = fmt::format("Final hypervolume {} ", num(curve.back())) + hv_note + ".";
  }
  body += section(
      "history", "History",
      hist.empty() ? "<p>No complete trial yet.</p>" : "<div class=\"grid\">" + hist + "</div>",
      hv_note);

  // ---- per-layer bits ----
  const std::vector<search::FrozenTrial> best = best_trials(info, trials);
  std::vector<std::string> layers;  // sampled_config keys, "default" left out
  for (const auto& j : sampled) {
    if (!j.is_object()) continue;
    for (const auto& [k, v] : j.items()) {
      const Json c = layer_config(j, k);
      const bool unquantized = !c.is_object() || !c.contains("name") || c["name"].is_null();
      if (k != "default" && !unquantized &&
          std::find(layers.begin(), layers.end(), k) == layers.end()) {
        layers.push_back(k);
      }
    }
  }
  std::vector<const search::FrozenTrial*> rows;
  for (const auto& b : best) {
    for (const auto* t : plotted) {
      if (t->number == b.number) rows.push_back(t);
    }
  }
  const size_t cost_k = n_obj >= 2 ? 1 : 0;
  std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) {
    const double va = a->values[cost_k], vb = b->values[cost_k];
    return info.directions[cost_k] == search::Direction::kMaximize ? va > vb : va < vb;
  });
  std::map<int, size_t> index_of;
  for (size_t i = 0; i < plotted.size(); ++i) index_of[plotted[i]->number] = i;
  std::string heat;
  if (!rows.empty() && !layers.empty()) {
    const double cw = 64, ch = 20, lw = 70, top = 40;
    const double w = std::max(560.0, lw + cw * double(layers.size()) + 10),
                 h = top + ch * double(rows.size()) + 6;
    heat = fmt::format(
        R"(<svg id="heatmap" class="heat" viewBox="0 0 {0} {1}" width="{0}" height="{1}" data-rows="{2}"><text class="title" x="4" y="14">weight / input bits of the Pareto front, sorted by {3}</text>)",
        px(w), px(h), rows.size(), html_escape(obj_names[cost_k]));
    for (size_t c = 0; c < layers.size(); ++c) {
      heat += fmt::format(R"(<text class="tl" x="{}" y="{}" text-anchor="middle">{}</text>)",
                          px(lw + cw * double(c) + cw / 2), px(top - 6), html_escape(layers[c]));
    }
    for (size_t r = 0; r < rows.size(); ++r) {
      const double y = top + ch * double(r);
      heat += fmt::format(R"(<g class="row" data-t="{}"><text class="tl" x="4" y="{}">#{}</text>)",
                          rows[r]->number, px(y + 14), rows[r]->number);
      const Json& sc = sampled[index_of[rows[r]->number]];
      for (size_t c = 0; c < layers.size(); ++c) {
        const Json cfg = layer_config(sc, layers[c]);
        const double wb = field_number(cfg, "weight_width");
        const double ib = field_number(cfg, "data_in_width");
        auto bits = [](double v) { return std::isfinite(v) ? fmt::format("{:g}", v) : "-"; };
        heat += fmt::format(
            R"(<rect class="cell" x="{}" y="{}" width="{}" height="{}" fill="{}"/><text class="ct" x="{}" y="{}" text-anchor="middle">{}/{}</text>)",
            px(lw + cw * double(c) + 1), px(y + 1), px(cw - 2), px(ch - 2), heat_color(wb),
            px(lw + cw * double(c) + cw / 2), px(y + 14), bits(wb), bits(ib));
      }
      heat += "</g>";
    }
    heat += "</svg>";
  }
  std::string layer_inner =
      (heat.empty() ? std::string("<p>No Pareto-front configuration to show.</p>")
                    : "<figure>" + heat + "</figure>") +
      "<h3>Selected trial: <span id=\"sel-title\">none</span></h3>"
      "<table id=\"layer-table\" class=\"grid-table\"><thead></thead><tbody></tbody></table>";
  body += section("layers", "Per-layer bits", layer_inner,
                  "Cells: weight width / input (data_in) width. " + options.layer_numbers_note);

  // ---- parameter importance ----
  std::string imp;
  {
    std::vector<std::vector<double>> params;
    for (const auto* t : plotted) {
      if (t->params.size() == info.space.size()) params.push_back(t->params);
    }
    if (params.size() == plotted.size()) {
      for (size_t k = 0; k < n_obj; ++k) {
        std::vector<double> values;
        for (const auto* t : plotted) values.push_back(t->values[k]);
        const auto w = ped_anova_importance(params, values,
                                            info.directions[k] == search::Direction::kMaximize);
        if (w.empty()) continue;
        std::vector<std::pair<std::string, double>> r;
        for (size_t p = 0; p < w.size(); ++p) {
          // A parameter with one choice cannot matter: not listed.
          if (info.space[p].dist.cardinality() != 1) r.emplace_back(info.space[p].name, w[p]);
        }
        std::stable_sort(r.begin(), r.end(),
                         [](const auto& a, const auto& b) { return a.second > b.second; });
        imp +=
            "<figure>" + bars_svg(fmt::format("importance-{}", k), obj_names[k], r) + "</figure>";
      }
    }
  }
  body += section("importance", "Parameter importance",
                  imp.empty() ? "<p>Needs at least 20 complete trials.</p>"
                              : "<div class=\"grid\">" + imp + "</div>",
                  "PED-ANOVA (Optuna's definition: the Pearson divergence between a parameter's "
                  "distribution over the best 10 % of the trials and over all of them, values "
                  "taken as categories), normalised to sum 1, per objective.");

  // ---- data for the script ----
  Json data;
  data["objectives"] = obj_names;
  Json dirs = Json::array();
  for (auto d : info.directions) dirs.push_back(search::to_string(d));
  data["directions"] = dirs;
  data["metrics"] = metric_names;
  data["layers"] = layers;
  // Distinct per-layer configurations, each as "field=value ..." text.
  std::map<std::string, int> cfg_index;
  Json cfgs = Json::array();
  Json jtrials = Json::array();
  for (size_t i = 0; i < plotted.size(); ++i) {
    Json values = Json::array();
    for (double v : plotted[i]->values) values.push_back(short_number(v));
    Json mets = Json::array();
    for (const auto& m : metric_names) {
      auto it = metric_values[i].find(m);
      mets.push_back(it == metric_values[i].end() ? Json() : short_number(it->second));
    }
    Json cfg_ids = Json::array();
    for (const auto& l : layers) {
      const Json c = layer_config(sampled[i], l);
      std::string text;
      if (c.is_object()) {
        for (const auto& [f, v] : c.items()) {
          text += (text.empty() ? "" : " ") + f + "=" +
                  (v.is_string() ? v.get<std::string>()
                   : v.is_null() ? "NA"
                                 : v.dump());
        }
      }
      auto [it, inserted] = cfg_index.emplace(text, static_cast<int>(cfgs.size()));
      if (inserted) cfgs.push_back(text);
      cfg_ids.push_back(it->second);
    }
    jtrials.push_back(Json::array({plotted[i]->number, values, mets, cfg_ids}));
  }
  data["cfgs"] = cfgs;
  data["trials"] = jtrials;
  Json numbers = Json::object();
  if (options.layer_numbers) {
    // Every trial while that stays small, else the front's (the heatmap's rows).
    std::vector<const search::FrozenTrial*> with;
    if (plotted.size() <= 2000) {
      with = plotted;
    } else {
      with = rows;
    }
    for (const auto* t : with) {
      Json ls = Json::array();
      for (const auto& l : options.layer_numbers(*t)) {
        ls.push_back(Json::array({l.layer, l.formats, l.params, l.packed_bytes, l.macs, l.bitops}));
      }
      if (!ls.empty()) numbers[std::to_string(t->number)] = ls;
    }
  }
  data["layer_numbers"] = numbers;
  data["initial"] = rows.empty() ? (plotted.empty() ? Json() : Json(plotted.front()->number))
                                 : Json(rows.front()->number);
  return page("qsearch: " + info.name, body, data, options.refresh_s);
}

std::string compare_html(const std::vector<StudyRun>& runs, const Comparison& c,
                         const HtmlOptions& options) {
  std::string body = "<header><h1>qsearch compare</h1><table id=\"header\" class=\"kv\">";
  body += fmt::format("<tr><th>studies</th><td>{}</td></tr>", runs.size());
  body += fmt::format("<tr><th>reference point</th><td>{} ({})</td></tr>",
                      html_escape(Json(c.ref_point).dump()), html_escape(c.ref_point_source));
  body += fmt::format("<tr><th>best known front</th><td>{} points, hypervolume {}</td></tr>",
                      c.reference_front_size, num(c.reference_hv));
  if (!options.command.empty()) {
    body += "<tr><th>command</th><td>" + html_escape(options.command) + "</td></tr>";
  }
  body += "</table>";
  for (const auto& n : c.notes) body += "<p class=\"note\">note: " + html_escape(n) + "</p>";
  body += "</header>\n";

  // Table of the comparison's numbers.
  std::string table =
      "<table id=\"efficiency\" class=\"grid-table\"><thead><tr><th>study</th><th>trials</th>"
      "<th>complete</th><th>hypervolume</th><th>HV / HV(best known)</th><th>trials to 90 %</th>"
      "<th>to 99 %</th><th>to 100 %</th><th>front points found</th></tr></thead><tbody>";
  auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string("-"); };
  for (size_t i = 0; i < c.studies.size(); ++i) {
    const auto& s = c.studies[i];
    table += fmt::format(
        "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{:.4f}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td>"
        "</tr>",
        kPalette[i % 8], html_escape(s.label), s.trials, s.complete, num(s.hv), s.hv_ratio,
        opt(s.trials_to_90), opt(s.trials_to_99), opt(s.trials_to_100), s.front_found,
        c.reference_front_size);
  }
  table += "</tbody></table>";
  body += section("efficiency", "Sample efficiency", table);

  std::string plots;
  std::string style;
  for (size_t i = 0; i < runs.size(); ++i) {
    style += fmt::format("circle.s{0}{{fill:{1}}} path.s{0}{{stroke:{1}}} ", i, kPalette[i % 8]);
  }
  const size_t n_obj = runs.empty() ? 0 : runs[0].info.directions.size();
  if (n_obj >= 2) {
    const auto names = objective_names(runs[0].info);
    const auto& dirs = runs[0].info.directions;
    for (size_t k = 1; k < n_obj; ++k) {
      // All studies' complete trials: the reference front of this pair (over every study).
      ScatterSpec all;
      std::vector<std::vector<PlotPoint>> per(runs.size());
      for (size_t r = 0; r < runs.size(); ++r) {
        for (const auto* t : plotted_trials(runs[r].trials, n_obj)) {
          PlotPoint p{t->values[k], t->values[0], t->number};
          per[r].push_back(p);
          all.points.push_back(p);
        }
      }
      const bool xm = dirs[k] == search::Direction::kMaximize;
      const bool ym = dirs[0] == search::Direction::kMaximize;
      ScatterSpec sp;
      sp.id = fmt::format("fronts-{}", k);
      sp.title = "Pareto fronts: " + names[0] + " vs " + names[k];
      sp.x_label = names[k];
      sp.y_label = names[0];
      std::vector<PlotPoint> ref;
      for (int i : front_2d(all.points, xm, ym)) ref.push_back(all.points[i]);
      sp.lines.push_back({"ref-front", ref});
      for (size_t r = 0; r < runs.size(); ++r) {
        std::vector<PlotPoint> f;
        for (int i : front_2d(per[r], xm, ym)) f.push_back(per[r][i]);
        sp.lines.push_back({fmt::format("front s{}", r), f});
      }
      // Points: each study's front (the cloud of every trial would hide the fronts).
      for (size_t r = 0; r < runs.size(); ++r) {
        for (auto p : sp.lines[r + 1].second) {
          p.group = static_cast<int>(r);
          sp.points.push_back(p);
        }
      }
      plots += "<figure>" + svg_scatter(sp) + "</figure>";
    }
  }
  {
    ScatterSpec sp;
    sp.id = "hv-curves";
    sp.title = "hypervolume / best known, against trials";
    sp.x_label = "trials";
    sp.y_label = "HV(k) / HV(best known)";
    sp.lines_are_steps = false;
    for (size_t r = 0; r < c.studies.size(); ++r) {
      std::vector<PlotPoint> line;
      const auto& curve = c.studies[r].hv_curve;
      for (size_t k = 0; k < curve.size(); ++k) line.push_back({double(k + 1), curve[k], -1});
      sp.lines.push_back({fmt::format("curve s{}", r), line});
    }
    plots += "<figure>" + svg_scatter(sp) + "</figure>";
  }
  body += "<style>" + style + "</style>";
  body += section("fronts", "Fronts and hypervolume", "<div class=\"grid\">" + plots + "</div>",
                  "Black dashed: the best known front (all studies' trials). Coloured: each "
                  "study's front, in the colours of the table.");
  Json data;
  data["trials"] = Json::array();
  data["compare"] = true;
  return page("qsearch compare", body, data, options.refresh_s);
}

void write_html_file(const std::filesystem::path& path, const std::string& text) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  write_atomically(path, text);
}

}  // namespace qsearch::report
