// End to end: the HTML report of a real search, opened in a real browser (headless Chromium,
// Debian's `chromium`; scripts/setup.sh installs it), as a person would open it: the page loads
// without console errors, its script runs, the plots hold one point per trial, and the numbers
// it shows are the study's.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

struct Page {
  std::string dom;      // the DOM after the page's script ran
  std::string console;  // the browser's console lines (errors included)
};

// Renders file://<html> headless and returns the DOM after its scripts ran (--dump-dom) and the
// console lines Chromium logs with --enable-logging=stderr.
Page render(const std::string& browser, const ScratchDir& dir, const std::string& html) {
  const std::string err = dir / "chromium.err";
  const std::string cmd =
      "'" + browser + "' --headless --disable-gpu --no-sandbox --user-data-dir='" +
      (dir / "chromium-profile") + "' --enable-logging=stderr --v=0 --dump-dom 'file://" +
      fs::absolute(html).string() + "' 2>'" + err + "'";
  Page p;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return p;
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof buf, f)) > 0) p.dom.append(buf, k);
  ::pclose(f);
  std::istringstream lines(read_file(err));
  for (std::string line; std::getline(lines, line);) {
    if (line.find(":CONSOLE") != std::string::npos) p.console += line + "\n";
  }
  return p;
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

std::string element(const std::string& dom, const std::string& open, const std::string& close) {
  const size_t a = dom.find(open);
  if (a == std::string::npos) return "";
  return dom.substr(a, dom.find(close, a) + close.size() - a);
}

TEST(HtmlReportE2E, SearchReportRendersInChromiumWithTheStudysNumbers) {
  const std::string browser = chromium();
  if (browser.empty()) {
    GTEST_SKIP() << "chromium is not installed: apt-get install chromium (scripts/setup.sh)";
  }
  ScratchDir dir("html_report");
  // With the model size and BitOPs runners: the per-layer table must add up to both.
  std::string text = mlp_by_name_config(256);
  text.replace(text.find("[search.strategy.setup]"), 0,
               "[search.strategy.hw_runner.model_size]\n[search.strategy.hw_runner.bitops]\n");
  const std::string cfg = write(dir, "c.toml", text);
  const std::string out = dir / "out";
  Result r =
      run("search --config " + cfg + " --sampler tpe --trials 24 --seed 1 --html --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("HTML report: " + out + "/report.html"), std::string::npos) << r.err;
  ASSERT_TRUE(fs::exists(out + "/report.html"));
  const auto trials = trials_of(out);
  ASSERT_EQ(trials.size(), 24u);

  const Page page = render(browser, dir, out + "/report.html");
  ASSERT_FALSE(page.dom.empty()) << "chromium printed no DOM";
  EXPECT_EQ(page.console, "") << "the page logged to the console (errors?)";
  EXPECT_NE(page.dom.find("data-ready=\"1\""), std::string::npos) << "the script did not finish";
  // A finished search's page does not reload itself; a running one's does.
  EXPECT_EQ(page.dom.find("http-equiv=\"refresh\""), std::string::npos);

  // Objective space: one point per COMPLETE trial in each plot, and a Pareto step line.
  int complete = 0;
  for (const auto& t : trials) complete += t.state == search::TrialState::kComplete;
  for (const char* id : {"space-0", "space-1", "space-2", "history-0", "history-1"}) {
    const std::string svg = element(page.dom, std::string("<svg id=\"") + id + "\"", "</svg>");
    ASSERT_FALSE(svg.empty()) << id;
    EXPECT_EQ(count(svg, "<circle cx="), complete) << id;
  }
  EXPECT_NE(element(page.dom, "<svg id=\"space-0\"", "</svg>").find("<path class=\"front\" d=\"M"),
            std::string::npos);
  // The axes of the two objectives and of the varying hardware metrics (not of the MACs: the
  // same for every trial).
  EXPECT_NE(page.dom.find(">accuracy vs average_bitwidth<"), std::string::npos);
  EXPECT_NE(page.dom.find(">accuracy vs model_size_bytes<"), std::string::npos);
  EXPECT_NE(page.dom.find(">accuracy vs bitops<"), std::string::npos);
  EXPECT_EQ(page.dom.find(">accuracy vs macs<"), std::string::npos);

  // Header: the study's counts and settings.
  EXPECT_NE(page.dom.find(std::to_string(complete) + " complete, 0 failed, 0 running, 0 pruned"),
            std::string::npos);
  EXPECT_NE(page.dom.find("<td data-k=\"sampler\">tpe</td>"), std::string::npos);
  EXPECT_NE(page.dom.find("<td data-k=\"seed\">1</td>"), std::string::npos);
  EXPECT_NE(page.dom.find("<td data-k=\"space size\">216</td>"), std::string::npos);
  EXPECT_NE(page.dom.find("--html --out"), std::string::npos);  // the recorded command

  // Heatmap: one row per trial of best.json (the Pareto front).
  const auto best = nlohmann::json::parse(read_file(out + "/best.json"));
  const std::string heat = element(page.dom, "<svg id=\"heatmap\"", "</svg>");
  EXPECT_EQ(count(heat, "<g class=\"row"), static_cast<int>(best.size()));

  // The selected trial (the heatmap's first row, after the script ran): its per-layer table
  // adds up to the model_size_bytes the search recorded for it, and its formats are its own.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(page.dom, m, std::regex("data-selected=\"(\\d+)\"")));
  const int selected = std::stoi(m[1]);
  std::set<int> front;
  for (auto& [k, row] : best.items()) front.insert(row["number"].get<int>());
  EXPECT_TRUE(front.count(selected)) << selected;
  const search::FrozenTrial* t = nullptr;
  for (const auto& x : trials) {
    if (x.number == selected) t = &x;
  }
  ASSERT_NE(t, nullptr);
  const auto hw = nlohmann::json::parse(t->user_attrs.at("hardware_metrics"));
  const auto sampled = nlohmann::json::parse(t->user_attrs.at("sampled_config"));
  const std::string table = element(page.dom, "<table id=\"layer-table\"", "</table>");
  const std::regex row_re(
      "<tr data-layer=\"([^\"]+)\"><td>[^<]*</td><td class=\"fmt\">([^<]*)</td><td>(\\d+)</td>"
      "<td>(\\d+)</td><td>(\\d+)</td><td>(\\d+)</td></tr>");
  int64_t bytes = 0;
  double bitops = 0;
  int rows = 0;
  for (auto it = std::sregex_iterator(table.begin(), table.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    ++rows;
    bytes += std::stoll((*it)[4]);
    bitops += std::stod((*it)[6]);
    const std::string layer = (*it)[1];
    const int w = sampled[layer]["config"]["weight_width"].get<int>();
    const int in = sampled[layer]["config"]["data_in_width"].get<int>();
    EXPECT_NE((*it)[2].str().find("in s" + std::to_string(in) + "."), std::string::npos)
        << (*it)[2];
    EXPECT_NE((*it)[2].str().find("w s" + std::to_string(w) + "."), std::string::npos) << (*it)[2];
  }
  EXPECT_EQ(rows, 3) << table;  // fc1..fc3
  EXPECT_EQ(bytes, hw["model_size_bytes"].get<int64_t>());
  EXPECT_EQ(bitops, hw["bitops"].get<double>());

  // Parameter importance is drawn (24 >= 20 trials): one bar per searched parameter.
  const std::string imp = element(page.dom, "<svg id=\"importance-0\"", "</svg>");
  EXPECT_EQ(count(imp, "<rect class=\"imp-bar\""), 6);

  // `qsearch report --html PATH` writes the same plots from study.db.
  Result rep = run("report --out " + out + " --html " + (dir / "again.html"));
  ASSERT_EQ(rep.code, 0) << rep.err;
  const std::string again = read_file(dir / "again.html");
  EXPECT_EQ(count(element(again, "<svg id=\"space-0\"", "</svg>"), "<circle cx="), complete);
}

TEST(HtmlReportE2E, CompareReportOverlaysTheFrontsInChromium) {
  const std::string browser = chromium();
  if (browser.empty()) {
    GTEST_SKIP() << "chromium is not installed: apt-get install chromium (scripts/setup.sh)";
  }
  ScratchDir dir("html_compare");
  const std::string cfg = write(dir, "c.toml", mlp_by_name_config(128));
  for (const char* s : {"random", "tpe"}) {
    Result r = run("search --config " + cfg + " --sampler " + s + " --trials 8 --seed 2 --out " +
                   (dir / s) + " --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const std::string html = dir / "cmp.html";
  Result c = run("compare " + (dir / "random") + " " + (dir / "tpe") + " --html " + html);
  ASSERT_EQ(c.code, 0) << c.err;
  const Page page = render(browser, dir, html);
  ASSERT_FALSE(page.dom.empty());
  EXPECT_EQ(page.console, "");
  EXPECT_NE(page.dom.find("data-ready=\"1\""), std::string::npos);
  const std::string f = element(page.dom, "<svg id=\"fronts-1\"", "</svg>");
  EXPECT_EQ(count(f, "<path class=\"ref-front\""), 1);
  EXPECT_EQ(count(f, "<path class=\"front s0\""), 1);
  EXPECT_EQ(count(f, "<path class=\"front s1\""), 1);
  EXPECT_EQ(count(element(page.dom, "<svg id=\"hv-curves\"", "</svg>"), "<path class=\"curve s"),
            2);
  // The table's trial counts are the studies'.
  EXPECT_EQ(count(page.dom, "<td>8</td><td>8</td>"), 2);
}

}  // namespace
}  // namespace qsearch::e2e
