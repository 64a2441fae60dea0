// The visual report: one self-contained HTML file (docs/outputs.md, "report.html").
//
// `qsearch report --html`, `qsearch search --html` and `qsearch compare --html` write it. Every
// plot is SVG drawn here (no plotting library, nothing fetched: the file opens offline); a small
// inline script adds the tooltip on hover, selection on click and the selected trial's per-layer
// table from a JSON block embedded in the page.
//
// A study's report shows:
//   - the header: model, data set, samples per trial, mode, space size, sampler, seed, trial
//     counts by state, wall time, qsearch version and command (study attrs the search records,
//     report/study_settings.h; "?" for what an older study does not record);
//   - the objective space: one scatter per pair (first objective, other objective or hardware
//     metric): every COMPLETE non-probe trial a point, the pair's 2-D Pareto front a step line;
//   - history: each objective against trial number (with the best so far), and the hypervolume
//     of the front of the first k trials (search::hypervolume, w.r.t. the recorded reference
//     point, else the worst values seen);
//   - per-layer bits: a heatmap of the Pareto front's configurations (rows sorted by the second
//     objective, columns the sampled_config keys, cells weight/input widths) and the selected
//     trial's per-layer table (its formats; params, packed bytes, MACs and BitOPs when the
//     caller supplies them: the report module knows no model);
//   - parameter importance: PED-ANOVA per objective (ped_anova_importance below).
//
//   HtmlOptions o;  o.command = "qsearch report --out d --html";
//   write_html_file("d/report.html", study_html(info, trials, o));
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report/compare.h"
#include "search/trial.h"

namespace qsearch::report {

// One layer of one trial, as eval/hardware_metrics.h counts it.
struct LayerNumbers {
  std::string layer;  // node config name
  std::string formats;
  int64_t params = 0;
  int64_t packed_bytes = 0;
  double macs = 0;
  double bitops = 0;
};

struct HtmlOptions {
  std::string command;  // shown in the header when the study records none
  // > 0: the page reloads itself every so many seconds (a search still running).
  int refresh_s = 0;
  // Per-layer numbers of a trial (empty: not known). Called for COMPLETE trials only.
  std::function<std::vector<LayerNumbers>(const search::FrozenTrial&)> layer_numbers;
  std::string layer_numbers_note;  // why there are none, or where they come from
};

// &, <, >, " and ' as character references.
std::string html_escape(const std::string& s);

// A point of a 2-D scatter: x, y and the trial number it stands for.
struct PlotPoint {
  double x = 0, y = 0;
  int trial = -1;
  int group = -1;  // >= 0: the circle also gets class "s<group>" (compare: the study)
};

struct ScatterSpec {
  std::string id;  // element id of the <svg>
  std::string title, x_label, y_label;
  std::vector<PlotPoint> points;
  // Step lines drawn over the points (e.g. Pareto fronts), each with a CSS class.
  std::vector<std::pair<std::string, std::vector<PlotPoint>>> lines;
  bool lines_are_steps = true;  // false: straight segments (curves against trial number)
  bool y_maximize = true;       // only orders step lines: see step_path
};

// An <svg> with axes, one <circle data-t="N"> (in <g class="pts">) per point, in input order,
// and one <path> per line. Points with a non-finite coordinate are left out.
std::string svg_scatter(const ScatterSpec& spec);

// SVG path data of the staircase through `front` (pixel coordinates, sorted by x here): from
// each point horizontally to the next one's x, then vertically to its y ("M x0 y0 H x1 V y1 ...").
std::string step_path(std::vector<std::pair<double, double>> front);

// Indices of the 2-D Pareto front of (x, y) under the given directions.
std::vector<int> front_2d(const std::vector<PlotPoint>& pts, bool x_maximize, bool y_maximize);

// PED-ANOVA importance of each parameter for one objective (Optuna's PedAnovaImportance-
// Evaluator: target_quantile 0.1, region_quantile 1, i.e. the Pearson divergence between the
// parameter's distribution over the top 10 % of the trials and over all of them,
// sum_x p_all(x) (p_top(x) / p_all(x) - 1)^2), with each parameter's values treated as
// categories (counts plus a uniform prior of weight 1; Optuna smooths integer parameters with a
// kernel instead). Normalised to sum 1 (all 0 when every divergence is 0). Empty when fewer than
// 20 trials (the top set would hold fewer than 2).
// params[t][p]: parameter p of trial t; values[t]: its objective value.
std::vector<double> ped_anova_importance(const std::vector<std::vector<double>>& params,
                                         const std::vector<double>& values, bool maximize);

std::string study_html(const search::StudyInfo& info,
                       const std::vector<search::FrozenTrial>& trials, const HtmlOptions& options);

// The studies' fronts overlaid on the best known front, and HV(k)/HV(F) against k per study.
std::string compare_html(const std::vector<StudyRun>& runs, const Comparison& c,
                         const HtmlOptions& options);

// Writes `text` to a temporary file beside `path` and renames it over `path` (a browser never
// reads half a report). Throws Error naming the file.
void write_html_file(const std::filesystem::path& path, const std::string& text);

}  // namespace qsearch::report
