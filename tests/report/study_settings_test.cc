// Study settings (what produced a study), the differences they name, the refusal of `compare`
// for studies of different problems, and trials.csv's decoded parameter values.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "core/error.h"
#include "report/compare.h"
#include "report/search_report.h"
#include "report/study_settings.h"

namespace qsearch::report {
namespace {

using search::Direction;
using search::Distribution;
using search::FrozenTrial;
using search::StudyInfo;
using search::TrialState;

std::map<std::string, std::string> settings() {
  return {{"model", R"("models/a.onnx")"},
          {"model_sha256", R"("1111111111111111aaaa")"},
          {"dataset", R"("mnist")"},
          {"split", R"("val")"},
          {"num_samples", "1024"},
          {"mode", R"("int")"},
          {"objectives", R"([{"metric":"accuracy","scale":1.0,"direction":"maximize"},)"
                         R"({"metric":"average_bitwidth","scale":0.2,"direction":"minimize"}])"},
          {"param_choices", R"({"fc1/config/weight_width":[4,8],"fc1/config/name":["integer"]})"},
          {"qsearch_version", R"("0.1.0")"},
          {"reference_point", R"({"values":[0.0,1.6],"rule":"test"})"}};
}

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(StudySettings, EqualSettingsDifferInNothingWhateverTheVersionOrModelPath) {
  auto now = settings();
  now["model"] = R"("elsewhere/a_copy.onnx")";  // same bytes, other path: the same model
  now["qsearch_version"] = R"("9.9.9")";
  now["fold_batch_norm"] = "false";  // recorded now; absent in the older study means false
  std::vector<std::string> unchecked;
  EXPECT_TRUE(diff_settings(settings(), now, resume_settings(), &unchecked).empty());
  EXPECT_TRUE(unchecked.empty());
}

// Every resume setting, changed alone, is named with both values.
TEST(StudySettings, EachDifferenceIsNamedWithBothValues) {
  struct Case {
    std::string key, value, setting, old_text, new_text;
  };
  const std::vector<Case> cases = {
      {"model_sha256", R"("2222222222222222bbbb")", "model", "models/a.onnx (sha256 111111111111)",
       "(sha256 222222222222)"},
      {"dataset", R"("fashion-mnist")", "dataset", "mnist", "fashion-mnist"},
      {"split", R"("test")", "split", "val", "test"},
      {"num_samples", "512", "num_samples", "1024", "512"},
      {"mode", R"("fake")", "mode", "int", "fake"},
      // Absent in the stored study (made before the option existed): BatchNorm was kept.
      {"fold_batch_norm", "true", "fold_batch_norm", "false", "true"},
      {"objectives",
       R"([{"metric":"accuracy","scale":1.0,"direction":"maximize"},)"
       R"({"metric":"average_bitwidth","scale":0.5,"direction":"minimize"}])",
       "objectives", "average_bitwidth x0.2 (minimize)]", "average_bitwidth x0.5 (minimize)]"},
      {"objectives",
       R"([{"metric":"accuracy","scale":1.0,"direction":"maximize"},)"
       R"({"metric":"average_bitwidth","scale":0.2,"direction":"maximize"}])",
       "objectives", "(minimize)]", "average_bitwidth x0.2 (maximize)]"},
      {"objectives", R"([{"sum_of":[{"metric":"accuracy","scale":1.0}],"direction":"maximize"}])",
       "objectives", "average_bitwidth x0.2 (minimize)]", "[sum of accuracy x1 (maximize)]"},
      {"param_choices", R"({"fc1/config/weight_width":[2,16],"fc1/config/name":["integer"]})",
       "search space (parameter 'fc1/config/weight_width')", "choices [4,8]", "choices [2,16]"},
  };
  for (const Case& c : cases) {
    auto now = settings();
    now[c.key] = c.value;
    auto diffs = diff_settings(settings(), now, resume_settings());
    ASSERT_EQ(diffs.size(), 1u) << c.key;
    EXPECT_EQ(diffs[0].setting, c.setting);
    const std::string text = describe(diffs, "the study", "this run");
    EXPECT_NE(text.find(c.old_text + " in the study"), std::string::npos) << text;
    EXPECT_NE(text.find(c.new_text + " in this run"), std::string::npos) << text;
  }
  // Several at once: all named, in one line.
  auto now = settings();
  now["mode"] = R"("float")";
  now["dataset"] = R"("jsc")";
  const std::string text =
      describe(diff_settings(settings(), now, resume_settings()), "the study", "this run");
  EXPECT_NE(text.find("dataset: mnist in the study, jsc in this run"), std::string::npos) << text;
  EXPECT_NE(text.find("mode: int in the study, float in this run"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos);
}

TEST(StudySettings, AStudyWithoutSettingsIsUncheckedNotDifferent) {
  std::vector<std::string> unchecked;
  EXPECT_TRUE(diff_settings({}, settings(), resume_settings(), &unchecked).empty());
  // All but fold_batch_norm, which an older study (made before the option) did not use.
  EXPECT_EQ(unchecked.size(), resume_settings().size() - 1);
  EXPECT_EQ(unchecked[0], "model");
  EXPECT_EQ(std::count(unchecked.begin(), unchecked.end(), "fold_batch_norm"), 0);
}

// --- compare ---------------------------------------------------------------------------------

StudyRun run(const std::string& label, std::map<std::string, std::string> attrs,
             std::vector<Direction> dirs = {Direction::kMaximize, Direction::kMinimize}) {
  StudyRun r;
  r.label = label;
  r.info.name = label;
  r.info.directions = dirs;
  r.info.space = {{"fc1/config/weight_width", Distribution::int_range(0, 1)}};
  r.info.user_attrs = std::move(attrs);
  FrozenTrial t;
  t.number = 0;
  t.state = TrialState::kComplete;
  t.values = std::vector<double>(dirs.size(), 0.5);
  t.params = {0};
  t.user_attrs["scaled_metrics"] = R"({"accuracy": 0.5, "average_bitwidth": 0.8})";
  r.trials = {t};
  return r;
}

TEST(Compare, RefusesStudiesOfAnotherModelDataOrObjectivesNamingTheDifference) {
  struct Case {
    std::string key, value, expect;
  };
  const std::vector<Case> cases = {
      {"model_sha256", R"("2222222222222222bbbb")", "model: models/a.onnx (sha256 111111111111)"},
      {"dataset", R"("jsc")", "dataset: mnist in 'bf', jsc in 'tpe'"},
      {"split", R"("train")", "split: val in 'bf', train in 'tpe'"},
      {"num_samples", "64", "num_samples: 1024 in 'bf', 64 in 'tpe'"},
      {"mode", R"("fake")", "mode: int in 'bf', fake in 'tpe'"},
      {"objectives",
       R"([{"metric":"accuracy","scale":1.0,"direction":"maximize"},)"
       R"({"metric":"model_size_bytes","scale":0.2,"direction":"minimize"}])",
       "model_size_bytes x0.2 (minimize)] in 'tpe'"},
  };
  for (const Case& c : cases) {
    auto other = settings();
    other[c.key] = c.value;
    std::string e = error_of([&] { compare_studies({run("bf", settings()), run("tpe", other)}); });
    EXPECT_NE(e.find("'bf' and 'tpe' cannot be compared"), std::string::npos) << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.key << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  std::string e = error_of([&] {
    compare_studies({run("bf", settings()), run("one", settings(), {Direction::kMaximize})});
  });
  EXPECT_NE(e.find("directions: [maximize, minimize] in 'bf', [maximize] in 'one'"),
            std::string::npos)
      << e;
}

TEST(Compare, SameProblemComparesAndADifferentSpaceIsOnlyANote) {
  auto other = settings();
  other["param_choices"] = R"({"fc1/config/weight_width":[2,4],"fc1/config/name":["integer"]})";
  other["model"] = R"("copy/a.onnx")";
  Comparison c = compare_studies({run("bf", settings()), run("tpe", other)});
  ASSERT_EQ(c.studies.size(), 2u);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("different spaces"), std::string::npos) << c.notes[0];
  EXPECT_TRUE(compare_studies({run("a", settings()), run("b", settings())}).notes.empty());
}

// An infeasible trial (Optuna's "constraints" attr with a value > 0) is no point of the
// reference front and adds no hypervolume, however good its values.
TEST(Compare, InfeasibleTrialsAreNoPointsOfTheFront) {
  StudyRun a = run("a", settings());
  StudyRun b = run("b", settings());
  FrozenTrial best = b.trials[0];
  best.number = 1;
  best.values = {0.9, 0.1};  // dominates (0.5, 0.5)
  best.system_attrs[search::kAttrConstraints] = "[12.0]";
  b.trials.push_back(best);
  Comparison c = compare_studies({a, b}, {.ref_point = std::vector<double>{0, 1}});
  EXPECT_EQ(c.reference_front_size, 1);
  ASSERT_EQ(c.studies.size(), 2u);
  EXPECT_DOUBLE_EQ(c.studies[0].hv, c.studies[1].hv);  // (0.5, 0.5) each: 0.25
  EXPECT_DOUBLE_EQ(c.studies[1].hv, 0.25);
  EXPECT_EQ(c.studies[1].hv_curve.size(), 2u);
  best.system_attrs[search::kAttrConstraints] = "[0.0]";  // feasible: now it is the front
  b.trials[1] = best;
  c = compare_studies({a, b}, {.ref_point = std::vector<double>{0, 1}});
  EXPECT_NEAR(c.studies[1].hv, 0.81, 1e-12);
}

TEST(Compare, OldStudiesCompareWhatTheyCanAndSayWhatWasNotChecked) {
  // No recorded settings: metric names still come from the trials.
  StudyRun old = run("old", {});
  // Nor a reference point: compare asks for one, then compares.
  std::string no_ref = error_of([&] { compare_studies({run("new", settings()), old}); });
  EXPECT_NE(no_ref.find("'old' records no reference point"), std::string::npos) << no_ref;
  EXPECT_NE(no_ref.find("--ref-point"), std::string::npos) << no_ref;
  const CompareOptions ref{.ref_point = std::vector<double>{0.0, 1.6}};
  Comparison c = compare_studies({run("new", settings()), old}, ref);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("model, dataset, split, num_samples, mode, objective scales"),
            std::string::npos)
      << c.notes[0];
  StudyRun other_metrics = run("old2", {});
  other_metrics.trials[0].user_attrs["scaled_metrics"] = R"({"accuracy": 1, "latency_ms": 2})";
  std::string e = error_of([&] { compare_studies({old, other_metrics}, ref); });
  EXPECT_NE(e.find("objective metrics: [accuracy, average_bitwidth] in 'old', [accuracy, "
                   "latency_ms] in 'old2'"),
            std::string::npos)
      << e;
}

// A study of 2 objectives (maximize accuracy, minimize 0.2 x bits) whose trials have `points`.
StudyRun run_with(const std::string& label, const std::vector<std::vector<double>>& points) {
  StudyRun r = run(label, settings());
  r.trials.clear();
  for (const auto& p : points) {
    FrozenTrial t;
    t.number = static_cast<int>(r.trials.size());
    t.state = TrialState::kComplete;
    t.values = p;
    t.params = {0};
    r.trials.push_back(t);
  }
  return r;
}

TEST(Compare, AStudysHypervolumeDoesNotDependOnItsCompany) {
  // The issue: with the reference point taken from the union's front, the same run scored .935
  // or .858 depending on the studies it was compared with.
  const StudyRun a = run_with("a", {{0.90, 0.8}, {0.95, 1.2}, {0.60, 0.4}});
  const StudyRun b = run_with("b", {{0.91, 0.8}, {0.97, 1.6}});
  const StudyRun c = run_with("c", {{0.20, 0.3}, {0.99, 1.5}, {0.50, 0.35}});
  const Comparison ab = compare_studies({a, b}), ac = compare_studies({a, c});
  EXPECT_EQ(ab.ref_point, (std::vector<double>{0.0, 1.6}));
  EXPECT_NE(ab.ref_point_source.find("recorded by the searches: test"), std::string::npos);
  ASSERT_EQ(ab.studies.size(), 2u);
  ASSERT_EQ(ac.studies.size(), 2u);
  // By hand, w.r.t. (accuracy 0, 1.6): 0.6 x 1.2 + (0.9 - 0.6) x 0.8 + (0.95 - 0.9) x 0.4.
  const double hv_a = 0.6 * 1.2 + 0.3 * 0.8 + 0.05 * 0.4;
  EXPECT_NEAR(ab.studies[0].hv, hv_a, 1e-12);
  EXPECT_EQ(ab.studies[0].hv, ac.studies[0].hv);
  // The ratio to the best known front depends on the company, and says so.
  EXPECT_NE(ab.studies[0].hv_ratio, ac.studies[0].hv_ratio);
  EXPECT_NEAR(ab.studies[0].hv_ratio, hv_a / ab.reference_hv, 1e-12);
  // A point at the reference point's cost encloses nothing: b's (0.97, 1.6).
  EXPECT_NEAR(ab.studies[1].hv, 0.91 * 0.8, 1e-12);
  // --ref-point overrides, in the values' scale and objective order.
  const Comparison given = compare_studies({a, b}, {.ref_point = std::vector<double>{0.5, 1.0}});
  // (0.9, 0.8) and (0.6, 0.4) count; (0.95, 1.2) costs more than the reference point.
  EXPECT_NEAR(given.studies[0].hv, 0.4 * 0.2 + 0.1 * 0.4, 1e-12);
  EXPECT_EQ(given.ref_point_source, "--ref-point");
  const std::string text = format_comparison(ab);
  EXPECT_NE(text.find("Reference point: [0, 1.6]"), std::string::npos) << text;
  EXPECT_NE(text.find("Best known Pareto front: 4 points"), std::string::npos) << text;
  EXPECT_NE(text.find("points each study found: a: 2, b: 2"), std::string::npos) << text;
}

TEST(Compare, ReferencePointsMustAgreeAndFitTheObjectives) {
  StudyRun a = run_with("a", {{0.9, 0.8}});
  StudyRun b = run_with("b", {{0.9, 0.8}});
  b.info.user_attrs["reference_point"] = R"({"values":[0.0,2.0],"rule":"wider space"})";
  std::string e = error_of([&] { compare_studies({a, b}); });
  EXPECT_NE(e.find("record different reference points ([0, 1.6] and [0, 2]: their spaces differ)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("--ref-point 0,1.6"), std::string::npos) << e;
  EXPECT_EQ(compare_studies({a, b}, {.ref_point = std::vector<double>{0.0, 2.0}}).studies.size(),
            2u);
  e = error_of([&] { compare_studies({a}, {.ref_point = std::vector<double>{0.0}}); });
  EXPECT_NE(e.find("--ref-point has 1 values but the studies have 2 objectives"), std::string::npos)
      << e;
}

// --- trials.csv decoded values ----------------------------------------------------------------

TEST(TrialsCsv, DecodedParameterValuesSitBesideTheIndexColumns) {
  StudyInfo info;
  info.directions = {Direction::kMaximize};
  info.space = {{"fc1/config/weight_width", Distribution::int_range(0, 2)},
                {"fc1/config/name", Distribution::int_range(0, 1)}};
  info.user_attrs["param_choices"] =
      R"({"fc1/config/weight_width":[2,4,8],"fc1/config/name":["integer",null]})";
  FrozenTrial t;
  t.number = 0;
  t.state = TrialState::kFail;  // a failed trial has no sampled_config: still decoded
  t.params = {2, 1};
  t.datetime_start_ms = 0;
  t.datetime_complete_ms = 5;
  EXPECT_EQ(trials_csv(info, {t}),
            "number,state,value,fc1/config/weight_width,fc1/config/weight_width:value,"
            "fc1/config/name,fc1/config/name:value,duration_ms,fail_reason\n"
            "0,FAIL,,2,8,1,NA,5,\n");
  // A study without recorded choices (older qsearch): decoded from the trial's sampled_config.
  info.user_attrs.clear();
  t.state = TrialState::kComplete;
  t.values = {0.5};
  t.params = {1, 0};
  t.user_attrs["sampled_config"] =
      R"({"fc1": {"config": {"name": "integer", "weight_width": 4}}, "default": {}})";
  EXPECT_EQ(trials_csv(info, {t}),
            "number,state,value,fc1/config/weight_width,fc1/config/weight_width:value,"
            "fc1/config/name,fc1/config/name:value,duration_ms,fail_reason\n"
            "0,COMPLETE,0.5,1,4,0,integer,5,\n");
}

}  // namespace
}  // namespace qsearch::report
