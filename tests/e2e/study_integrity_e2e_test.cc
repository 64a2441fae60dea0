// End to end: a study remembers what produced it (resume/join/compare refuse other settings),
// output and storage path problems are one-line errors, storage URLs read like SQLAlchemy's, and
// trials.csv carries the values parameters stand for (issue 8, items 2, 3, 11, 19).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "e2e/e2e_util.h"
#include "storage/storage_url.h"

namespace qsearch::e2e {
namespace {

// A small by-type search of the MNIST MLP (6 configurations, 256 samples per trial).
std::string config(const std::string& model = "tests/fixtures/torch/mlp_opset13.onnx",
                   double bitwidth_scale = 0.2) {
  return "model = \"" + model + R"("
dataset = "mnist"
batch_size = 256
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = ["NA"]
weight_width = [2, 4, 8]
weight_frac_width = ["NA"]
bias_width = [4, 8]
bias_frac_width = ["NA"]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 256
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
sampler = "bruteforce"
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = )" +
         std::to_string(bitwidth_scale) + R"(
average_bitwidth.direction = "minimize"
)";
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The error line of a failed run: exactly one line, "qsearch: error: ...", never an internal
// error.
void expect_one_line_error(const Result& r, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("qsearch: error: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << p << " in: " << r.err;
}

size_t trial_count(const std::string& db) {
  auto s = storage::open_storage("sqlite:///" + db, storage::Access::kExisting);
  size_t n = 0;
  for (const auto& name : s->study_names()) n += s->get_trials(*s->find_study(name)).size();
  return n;
}

TEST(StudyIntegrityE2E, ResumingWithOtherSettingsIsRefusedNamingTheSettingAndTheFix) {
  ScratchDir dir("study_resume");
  const std::string cfg = write(dir, "c.toml", config());
  const std::string out = dir / "out";
  Result first = run("search --config " + cfg + " --out " + out + " --trials 2 --quiet");
  ASSERT_EQ(first.code, 0) << first.err;
  ASSERT_EQ(trial_count(out + "/study.db"), 2u);

  struct Case {
    std::string args, expect;
  };
  const std::string other_scale =
      write(dir, "scale.toml", config("tests/fixtures/torch/mlp_opset13.onnx", 0.5));
  const std::string other_model =
      write(dir, "model.toml", config("tests/fixtures/torch/mlp_opset11.onnx"));
  const std::vector<Case> cases = {
      {"--config " + other_model, "model: tests/fixtures/torch/mlp_opset13.onnx (sha256 "},
      {"--config " + cfg + " --mode fake", "mode: int in the study, fake in this run"},
      {"--config " + cfg + " --num-samples 512", "num_samples: 256 in the study, 512 in this run"},
      {"--config " + other_scale, "average_bitwidth x0.2 (minimize)] in the study"},
  };
  for (const Case& c : cases) {
    Result r = run("search " + c.args + " --study c --out " + out + " --trials 4 --quiet");
    expect_one_line_error(r, {"study 'c' in '" + out + "/study.db' was made with other settings",
                              c.expect, "--study NEW_NAME", "--out NEW_DIR"});
    EXPECT_EQ(trial_count(out + "/study.db"), 2u) << "a refused run added trials: " << c.args;
  }

  // The same settings resume; a copy of the model elsewhere is the same model (same bytes).
  fs::copy_file(source_dir() + "/tests/fixtures/torch/mlp_opset13.onnx", dir / "copy.onnx");
  Result again = run("search --config " + cfg + " --model " + (dir / "copy.onnx") + " --out " +
                     out + " --trials 3 --quiet");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(trial_count(out + "/study.db"), 3u);
  // The fix the message gives works: another study beside it.
  Result other = run("search --config " + cfg + " --mode fake --study fake --out " + out +
                     " --trials 1 --quiet");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_EQ(trial_count(out + "/study.db"), 4u);

  // The settings are study user attrs an Optuna user would recognise.
  auto s = storage::open_storage("sqlite:///" + out + "/study.db", storage::Access::kExisting);
  auto attrs = s->get_study(*s->find_study("c")).user_attrs;
  EXPECT_EQ(attrs.at("dataset"), "\"mnist\"");
  EXPECT_EQ(attrs.at("mode"), "\"int\"");
  EXPECT_EQ(attrs.at("num_samples"), "256");
  EXPECT_EQ(attrs.at("model_sha256").size(), 66u);
  EXPECT_EQ(nlohmann::json::parse(attrs.at("param_choices"))["linear/config/weight_width"],
            nlohmann::json::parse("[2, 4, 8]"));
}

// A study made before settings were recorded resumes, saying what it could not check.
TEST(StudyIntegrityE2E, AStudyWithoutRecordedSettingsResumesWithANote) {
  ScratchDir dir("study_old");
  const std::string cfg = write(dir, "c.toml", config());
  ASSERT_EQ(run("search --config " + cfg + " --out " + (dir / "new") + " --trials 1 --quiet").code,
            0);
  search::StudyInfo info;
  {
    auto made =
        storage::open_storage("sqlite:///" + (dir / "new/study.db"), storage::Access::kExisting);
    info = made->get_study(*made->find_study("c"));
  }
  fs::create_directories(dir / "old");
  storage::open_storage("sqlite:///" + (dir / "old/study.db"), storage::Access::kCreate)
      ->create_study("c", info.directions, info.space, false);  // no user attrs: an old study
  Result r = run("search --config " + cfg + " --out " + (dir / "old") + " --trials 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("note: study 'c' in '" + (dir / "old/study.db") +
                       "' records no settings (model, dataset, split, num_samples, mode, "
                       "objectives, param_choices)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(trial_count(dir / "old/study.db"), 2u);
}

// Several processes joining one study with different settings: whoever creates the study
// records its settings, and every other process is refused or joins, never mixing trials.
TEST(StudyIntegrityE2E, ProcessesJoiningOneStudyWithOtherSettingsAreRefused) {
  ScratchDir dir("study_join");
  const std::string cfg = write(dir, "c.toml", config());
  const std::string out = dir / "out";
  Result a, b;
  std::thread ta(
      [&] { a = run("search --config " + cfg + " --out " + out + " --trials 3 --quiet"); });
  std::thread tb([&] {
    b = run("search --config " + cfg + " --mode fake --out " + out + " --trials 3 --quiet");
  });
  ta.join();
  tb.join();
  ASSERT_NE(a.code == 0, b.code == 0) << "exactly one may run\n" << a.err << "\n" << b.err;
  const Result& refused = a.code == 0 ? b : a;
  expect_one_line_error(refused, {"was made with other settings", "mode: "});
  EXPECT_EQ(trial_count(out + "/study.db"), 3u);
}

TEST(StudyIntegrityE2E, OutputPathProblemsAreOneLineErrorsBeforeTheModelLoads) {
  ScratchDir dir("study_paths");
  const std::string cfg = write(dir, "c.toml", config());
  const std::string file = write(dir, "a_file", "x");
  // A model that does not exist: the path error must come first (checked before loading).
  const std::string base = "search --config " + cfg + " --model " + (dir / "missing.onnx");
  expect_one_line_error(run(base + " --out " + file),
                        {"--out '" + file + "' is a file, not a directory"});
  expect_one_line_error(run(base + " --out /dev/null"),
                        {"--out '/dev/null' is a device, not a directory"});
  expect_one_line_error(run(base + " --out ''"), {"--out is empty"});
  expect_one_line_error(run(base + " --out " + file + "/sub"),
                        {"--out '" + file + "/sub' cannot be created: '" + file + "' is a file"});
  expect_one_line_error(run(base + " --out " + (dir / "o") + " --storage postgresql://u:pw@h"),
                        {"postgresql://u:***@h", "names no database"});
  expect_one_line_error(run(base + " --out " + (dir / "o") + " --storage sqlite:////dev/null"),
                        {"'/dev/null' is a device"});
  expect_one_line_error(run(base + " --out " + (dir / "o") + " --storage 'sqlite:///x.db?bad=1'"),
                        {"unknown query parameter 'bad'"});
  // Not writable whoever runs the test, root included: a virtual file system.
  expect_one_line_error(
      run(base + " --out /proc/qsearch_e2e_out"),
      {"--out '/proc/qsearch_e2e_out' cannot be created: '/proc' is not writable"});
  if (::geteuid() != 0) {  // root writes into mode-0555 directories anyway
    fs::create_directories(dir / "ro");
    ::chmod((dir / "ro").c_str(), 0555);
    expect_one_line_error(run(base + " --out " + (dir / "ro")), {"is not writable"});
    expect_one_line_error(run(base + " --out " + (dir / "ro/sub")),
                          {"cannot be created", "is not writable"});
    ::chmod((dir / "ro").c_str(), 0755);
  }
  EXPECT_FALSE(fs::exists(dir / "o")) << "nothing is created before the checks pass";
}

TEST(StudyIntegrityE2E, StorageUrlsReadLikeSqlalchemyAndReportNeverCreatesADatabase) {
  ScratchDir dir("study_urls");
  const std::string cfg = write(dir, "c.toml", config());
  // An absolute path (four slashes) with a query parameter.
  const std::string url = "'sqlite:///" + (dir / "dbs/s.db") + "?timeout=5'";
  Result r = run("search --config " + cfg + " --out " + (dir / "out") + " --storage " + url +
                 " --trials 1 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "dbs/s.db"));
  EXPECT_FALSE(fs::exists(dir / "dbs/s.db?timeout=5"));
  Result rep = run("report --out " + (dir / "out") + " --storage " + url);
  EXPECT_EQ(rep.code, 0) << rep.err;

  const std::string missing = dir / "nowhere.db";
  expect_one_line_error(run("report --out " + (dir / "out") + " --storage sqlite:///" + missing),
                        {"'" + missing + "' does not exist"});
  EXPECT_FALSE(fs::exists(missing)) << "report created an empty database";
}

TEST(StudyIntegrityE2E, CompareRefusesOtherProblemsAndPicksStudiesWithStudy) {
  ScratchDir dir("study_compare");
  const std::string cfg = write(dir, "c.toml", config());
  const std::string a = dir / "a", b = dir / "b";
  ASSERT_EQ(run("search --config " + cfg + " --out " + a + " --trials 6 --quiet").code, 0);
  ASSERT_EQ(
      run("search --config " + cfg + " --out " + b + " --trials 3 --sampler random --quiet").code,
      0);
  Result same = run("compare " + a + " " + b);
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_NE(same.out.find("Best known Pareto front"), std::string::npos);

  // Another engine mode in b: refused, naming it.
  ASSERT_EQ(run("search --config " + cfg + " --out " + b +
                " --study fake --mode fake --trials 2 "
                "--quiet")
                .code,
            0);
  expect_one_line_error(
      run("compare " + b + " --study c --study fake"),
      {"cannot be compared", "mode: int in '" + b + ":c', fake in '" + b + ":fake'"});
  // --study picks one study of each directory; without it b's two studies both take part.
  Result picked = run("compare --study c " + a + " " + b);
  ASSERT_EQ(picked.code, 0) << picked.err;
  EXPECT_EQ(picked.out.find(":fake"), std::string::npos) << picked.out;
  expect_one_line_error(run("compare " + a + " " + b), {"cannot be compared", "mode: "});
  expect_one_line_error(run("compare " + a + " --study nope"), {"has no study 'nope'", "c"});
  // Another objective scale: refused.
  const std::string scaled =
      write(dir, "s.toml", config("tests/fixtures/torch/mlp_opset13.onnx", 0.5));
  ASSERT_EQ(run("search --config " + scaled + " --out " + (dir / "s") + " --trials 1 --quiet").code,
            0);
  expect_one_line_error(run("compare " + a + " " + (dir / "s")),
                        {"objectives: ", "average_bitwidth x0.5 (minimize)] in '" + (dir / "s")});
}

TEST(StudyIntegrityE2E, TrialsCsvCarriesTheDecodedValueOfEachParameter) {
  ScratchDir dir("study_csv");
  const std::string cfg = write(dir, "c.toml", config());
  ASSERT_EQ(run("search --config " + cfg + " --out " + (dir / "out") + " --quiet").code, 0);
  std::istringstream csv(read_file(dir.path() / "out" / "trials.csv"));
  std::string header;
  std::getline(csv, header);
  EXPECT_NE(header.find("linear/config/weight_width,linear/config/weight_width:value,"),
            std::string::npos)
      << header;
  // Split the header to find the columns.
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    return cells;
  };
  const auto names = split(header);
  size_t index = 0, value = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "linear/config/weight_width") index = i;
    if (names[i] == "linear/config/weight_width:value") value = i;
  }
  ASSERT_GT(value, index);
  std::set<std::string> seen;
  const std::vector<std::string> choices = {"2", "4", "8"};
  std::string line;
  while (std::getline(csv, line)) {
    auto cells = split(line);
    ASSERT_GT(cells.size(), value) << line;
    const int i = std::stoi(cells[index]);
    EXPECT_EQ(cells[value], choices.at(i)) << line;
    seen.insert(cells[value]);
  }
  EXPECT_EQ(seen, std::set<std::string>(choices.begin(), choices.end()));
}

}  // namespace
}  // namespace qsearch::e2e
