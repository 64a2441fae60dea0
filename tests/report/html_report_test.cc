// report.html's generation: escaping, point counts, the Pareto step line, PED-ANOVA, and that
// a study's page is self-contained.
#include "report/html_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "report/compare.h"
#include "report/search_report.h"
#include "report/study_settings.h"

namespace qsearch::report {
namespace {

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// The <svg id="..."> element's text.
std::string svg_by_id(const std::string& html, const std::string& id) {
  const size_t a = html.find("<svg id=\"" + id + "\"");
  if (a == std::string::npos) return "";
  return html.substr(a, html.find("</svg>", a) + 6 - a);
}

TEST(HtmlReport, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(HtmlReport, StepPathGoesHorizontallyThenVerticallyThroughTheSortedFront) {
  EXPECT_EQ(step_path({{30, 5}, {10, 20}, {20, 10}}), "M10.0 20.0 H20.0 V10.0 H30.0 V5.0");
  EXPECT_EQ(step_path({{1, 2}}), "M1.0 2.0");
  EXPECT_EQ(step_path({}), "");
}

TEST(HtmlReport, Front2dKeepsOnlyNonDominatedPointsUnderTheDirections) {
  // y maximised (accuracy), x minimised (bits).
  std::vector<PlotPoint> p = {{2, 0.9, 0}, {4, 0.95, 1}, {4, 0.93, 2}, {8, 0.94, 3}, {8, 0.97, 4}};
  EXPECT_EQ(front_2d(p, false, true), (std::vector<int>{0, 1, 4}));
  // Both minimised: only (2, 0.9).
  EXPECT_EQ(front_2d(p, false, false), (std::vector<int>{0}));
}

TEST(HtmlReport, ScatterDrawsOneCircleAndOneFrontPathAndEscapesLabels) {
  ScatterSpec s;
  s.id = "space-0";
  s.title = "acc vs <bits>";
  s.x_label = "fpga_dsp&lut";
  s.y_label = "acc";
  for (int i = 0; i < 7; ++i) s.points.push_back({double(i), double(i * i), 10 + i});
  s.points.push_back({std::nan(""), 1, 99});  // not drawn
  s.lines.push_back({"front", {{0, 0, 10}, {6, 36, 16}}});
  const std::string svg = svg_scatter(s);
  EXPECT_EQ(count(svg, "<circle cx="), 7);
  EXPECT_EQ(count(svg, "data-t=\"99\""), 0);
  EXPECT_EQ(count(svg, "data-t=\"13\""), 1);
  EXPECT_EQ(count(svg, "<path class=\"front\" d=\"M"), 1);
  EXPECT_NE(svg.find("acc vs &lt;bits&gt;"), std::string::npos);
  EXPECT_NE(svg.find("fpga_dsp&amp;lut"), std::string::npos);
  EXPECT_EQ(svg.find("<bits>"), std::string::npos);
}

TEST(HtmlReport, PedAnovaRanksTheParameterThatDecidesTheObjective) {
  // Parameter 0 decides the value, parameter 1 is noise-free but irrelevant (cycles).
  std::vector<std::vector<double>> params;
  std::vector<double> values;
  for (int i = 0; i < 60; ++i) {
    params.push_back({double(i % 3), double((i / 3) % 2)});
    values.push_back(i % 3 == 2 ? 1.0 + 0.001 * i : 0.0);
  }
  auto w = ped_anova_importance(params, values, true);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0] + w[1], 1.0, 1e-12);
  EXPECT_GT(w[0], 0.9);
  // Too few trials: none.
  params.resize(19);
  values.resize(19);
  EXPECT_TRUE(ped_anova_importance(params, values, true).empty());
}

search::FrozenTrial trial(int n, double acc, double bits, int w1, int w2) {
  search::FrozenTrial t;
  t.number = n;
  t.state = search::TrialState::kComplete;
  t.values = {acc, bits};
  t.params = {double(w1 == 8), double(w2 == 8)};
  t.datetime_start_ms = 1000 + n * 100;
  t.datetime_complete_ms = 1050 + n * 100;
  t.user_attrs[kSoftwareMetrics] = nlohmann::json{{"accuracy", acc}}.dump();
  t.user_attrs[kHardwareMetrics] =
      nlohmann::json{{"average_bitwidth", bits}, {"fpga_dsp", w1 + w2}, {"macs", 100}}.dump();
  t.user_attrs[kSampledConfig] = nlohmann::ordered_json{
      {"fc<1>", {{"config", {{"name", "integer"}, {"weight_width", w1}, {"data_in_width", 8}}}}},
      {"fc2", {{"config", {{"name", "integer"}, {"weight_width", w2}, {"data_in_width", 4}}}}},
      {"relu",
       {{"config",
         {{"name", nullptr}}}}}}.dump();
  return t;
}

search::StudyInfo info() {
  search::StudyInfo i;
  i.name = "study </script><b>";
  i.directions = {search::Direction::kMaximize, search::Direction::kMinimize};
  i.space = {{"fc1/config/weight_width", search::Distribution::int_range(0, 1)},
             {"fc2/config/weight_width", search::Distribution::int_range(0, 1)}};
  i.user_attrs[setting::kObjectives] =
      R"([{"metric":"accuracy","scale":1.0,"direction":"maximize"},)"
      R"({"metric":"average_bitwidth","scale":1.0,"direction":"minimize"}])";
  i.user_attrs[setting::kModel] = R"("m.onnx")";
  i.user_attrs[setting::kNumSamples] = "512";
  i.user_attrs["sampler"] = R"("tpe")";
  i.user_attrs["seed"] = "7";
  return i;
}

TEST(HtmlReport, StudyPageIsSelfContainedAndDrawsEveryCompleteTrial) {
  std::vector<search::FrozenTrial> ts = {trial(0, 0.90, 4, 4, 4), trial(1, 0.95, 6, 8, 4),
                                         trial(2, 0.93, 8, 8, 8), trial(3, 0.97, 8, 8, 8)};
  search::FrozenTrial failed;
  failed.number = 4;
  failed.state = search::TrialState::kFail;
  ts.push_back(failed);
  const std::string html = study_html(info(), ts, {});
  // No network: no external script, stylesheet or image.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  // The study name is escaped in the markup and cannot close the data script.
  EXPECT_NE(html.find("study &lt;/script&gt;&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(count(html, "</script>"), 2);
  // Objective space: accuracy vs average_bitwidth, and vs the FPGA metric (picked up by name
  // from hardware_metrics; macs does not vary and is not plotted).
  const std::string s0 = svg_by_id(html, "space-0"), s1 = svg_by_id(html, "space-1");
  EXPECT_EQ(count(s0, "<circle cx="), 4);
  EXPECT_NE(s0.find(">average_bitwidth<"), std::string::npos);
  EXPECT_NE(s1.find(">fpga_dsp<"), std::string::npos);
  EXPECT_EQ(svg_by_id(html, "space-2"), "");
  // Front of (acc max, bits min): trials 0, 1, 3 (2 is dominated by 3): three steps' points.
  const std::regex front_re("<path class=\"front\" d=\"(M[^\"]*)\"");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s0, m, front_re));
  EXPECT_EQ(count(m[1].str(), " H"), 2);
  // History: one plot per objective and the hypervolume.
  EXPECT_EQ(count(svg_by_id(html, "history-0"), "<circle cx="), 4);
  EXPECT_EQ(count(svg_by_id(html, "history-1"), "<circle cx="), 4);
  EXPECT_NE(svg_by_id(html, "history-hv").find("<path class=\"hv\""), std::string::npos);
  // Heatmap: one row per front trial (best_trials: 0, 1, 3), columns fc<1> and fc2 (the relu
  // is not quantized), cells weight/input.
  const std::string heat = svg_by_id(html, "heatmap");
  EXPECT_EQ(count(heat, "<g class=\"row\""), 3);
  EXPECT_NE(heat.find(">fc&lt;1&gt;<"), std::string::npos);
  EXPECT_EQ(heat.find(">relu<"), std::string::npos);
  EXPECT_NE(heat.find(">8/8<"), std::string::npos);
  EXPECT_NE(heat.find(">4/4<"), std::string::npos);
  // Header numbers.
  EXPECT_NE(html.find("4 complete, 1 failed, 0 running, 0 pruned"), std::string::npos);
  EXPECT_NE(html.find("<td data-k=\"sampler\">tpe</td>"), std::string::npos);
  EXPECT_NE(html.find("<td data-k=\"space size\">4</td>"), std::string::npos);
  // The embedded data: one row per drawn trial, the heatmap's first row selected first.
  const std::string tag = "<script type=\"application/json\" id=\"qs-data\">";
  const size_t a = html.find(tag);
  ASSERT_NE(a, std::string::npos);
  const size_t b = html.find("</script>", a);
  const std::string json = html.substr(a + tag.size(), b - a - tag.size());
  auto d = nlohmann::json::parse(json);
  EXPECT_EQ(d["trials"].size(), 4u);
  EXPECT_EQ(d["initial"], 0);
  EXPECT_EQ(d["layers"], (nlohmann::json{"fc<1>", "fc2"}));
  EXPECT_EQ(json.find('<'), std::string::npos);  // escaped as \u003c
}

// `search --html` rewrites the page while it runs: that page reloads itself, the final one does
// not. A study without a recorded reference point gets one from the values seen.
TEST(HtmlReport, ARunningSearchsPageReloadsItselfAndTheFinalOneDoesNot) {
  std::vector<search::FrozenTrial> ts = {trial(0, 0.90, 4, 4, 4), trial(1, 0.95, 6, 8, 4)};
  HtmlOptions o;
  o.refresh_s = 5;
  EXPECT_NE(study_html(info(), ts, o).find("<meta http-equiv=\"refresh\" content=\"5\">"),
            std::string::npos);
  o.refresh_s = 0;
  const std::string html = study_html(info(), ts, o);
  EXPECT_EQ(html.find("http-equiv=\"refresh\""), std::string::npos);
  EXPECT_NE(html.find("worst values seen"), std::string::npos);
}

TEST(HtmlReport, ComparePageOverlaysEachStudysFrontOnTheBestKnownFront) {
  StudyRun a, b;
  a.label = "bruteforce";
  b.label = "tpe";
  a.info = b.info = info();
  a.trials = {trial(0, 0.90, 4, 4, 4), trial(1, 0.95, 6, 8, 4), trial(2, 0.97, 8, 8, 8)};
  b.trials = {trial(0, 0.90, 4, 4, 4), trial(1, 0.93, 8, 8, 8)};
  Comparison c = compare_studies({a, b}, {.ref_point = std::vector<double>{0, 10}});
  const std::string html = compare_html({a, b}, c, {});
  const std::string f = svg_by_id(html, "fronts-1");
  EXPECT_EQ(count(f, "<path class=\"ref-front\""), 1);
  EXPECT_EQ(count(f, "<path class=\"front s0\""), 1);
  EXPECT_EQ(count(f, "<path class=\"front s1\""), 1);
  EXPECT_EQ(count(f, "<circle class=\"s0\""), 3);  // bruteforce's front: all three
  EXPECT_EQ(count(f, "<circle class=\"s1\""), 2);  // tpe's: both
  EXPECT_EQ(count(svg_by_id(html, "hv-curves"), "<path class=\"curve s"), 2);
  EXPECT_NE(html.find("<td><span class=\"swatch\" style=\"background:#1f77b4\"></span>bruteforce"),
            std::string::npos);
}

}  // namespace
}  // namespace qsearch::report

namespace qsearch::report {
namespace {

// Issue 13: "a few MB at most for 10,000 trials". A study like the demo's (three layers, the
// software and hardware metrics a search records, 18 parameters) with 10,000 complete trials.
TEST(HtmlReport, TenThousandTrialsStayUnderFourMegabytes) {
  search::StudyInfo i = info();
  i.space.clear();
  for (const char* l : {"fc1", "fc2", "fc3"}) {
    for (const char* f : {"name", "data_in_width", "data_in_frac_width", "weight_width",
                          "weight_frac_width", "bias_width"}) {
      i.space.push_back({std::string(l) + "/config/" + f, search::Distribution::int_range(0, 2)});
    }
  }
  std::vector<search::FrozenTrial> ts;
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((state >> 33) % 3);
  };
  for (int n = 0; n < 10000; ++n) {
    const int a = next(), b = next(), c = next();
    const int w1 = 2 << a, w2 = 2 << b, w3 = 2 << c;
    const double bits = (200704.0 * w1 + 32768.0 * w2 + 1280.0 * w3) / 234752.0;
    const double acc = 0.98 - 0.3 / (w1 * w2) - 0.0001 * (n % 97);
    search::FrozenTrial t;
    t.number = n;
    t.state = search::TrialState::kComplete;
    t.values = {acc, bits};
    for (int k = 0; k < 18; ++k) t.params.push_back(next());
    t.datetime_start_ms = 1000 + n * 100;
    t.datetime_complete_ms = 1090 + n * 100;
    t.user_attrs[kSoftwareMetrics] =
        nlohmann::json{{"loss", 1 - acc}, {"accuracy", acc},      {"macro_accuracy", acc - 0.001},
                       {"loss_se", 0.01}, {"accuracy_se", 0.005}, {"num_samples", 1024}}
            .dump();
    t.user_attrs[kHardwareMetrics] = nlohmann::json{
        {"average_bitwidth", bits},
        {"memory_density", 32 / bits},
        {"model_size_bytes", int(bits * 29344)},
        {"macs", 234752},
        {"bitops", bits * 234752 * 8}}.dump();
    nlohmann::ordered_json sc;
    for (auto [l, w] : {std::pair{"fc1", w1}, {"fc2", w2}, {"fc3", w3}}) {
      sc[l] = {{"config",
                {{"name", "integer"},
                 {"data_in_width", 8},
                 {"data_in_frac_width", nullptr},
                 {"weight_width", w},
                 {"weight_frac_width", 4},
                 {"bias_width", 16}}}};
    }
    t.user_attrs[kSampledConfig] = sc.dump();
    ts.push_back(std::move(t));
  }
  HtmlOptions o;
  // Per-layer numbers as the CLI supplies them (for the front only at this size).
  o.layer_numbers = [](const search::FrozenTrial& t) {
    return std::vector<LayerNumbers>{{"fc1", "in s8.4 w s8.4", 200960, 100000, 200704, 1e7},
                                     {"fc2", "in s8.4 w s8.4", 32896, 10000, 32768, 1e6},
                                     {"fc3", "in s8.4 w s8.4", 1290, 1000, 1280, 1e5 + t.number}};
  };
  const std::string html = study_html(i, ts, o);
  std::cout << "report.html for 10,000 trials: " << html.size() << " bytes\n";
  EXPECT_EQ(count(svg_by_id(html, "space-0"), "<circle cx="), 10000);
  EXPECT_LT(html.size(), 4u << 20);
}

}  // namespace
}  // namespace qsearch::report
