// End to end: a user's own CSV data set, trained and searched: `qsearch train` an MLP on
// csv:PATH, then `qsearch search` it, with the label and feature columns named in the config
// (label_column, feature_columns) or by flags (--label-column, --feature-columns).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>

#include "e2e/e2e_util.h"
#include "storage/sqlite_storage.h"

namespace qsearch::e2e {
namespace {

// 600 rows: a string id column (not a feature), features a, b (the signal) and c (noise), and a
// string label in the middle: the class is which third of [-2, 2] a + b falls in.
std::string make_csv() {
  uint64_t state = 12345;
  auto uniform = [&state] {  // [-1, 1), a 64-bit LCG (Knuth's MMIX constants)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
  };
  std::string s = "id,a,species,b,c\n";
  const char* names[] = {"iris", "lotus", "rose"};
  for (int i = 0; i < 600; ++i) {
    const double a = uniform(), b = uniform(), c = uniform();
    const int k = a + b < -0.3 ? 0 : (a + b < 0.3 ? 1 : 2);
    s += "row" + std::to_string(i) + "," + std::to_string(a) + "," + names[k] + "," +
         std::to_string(b) + "," + std::to_string(c) + "\n";
  }
  return s;
}

const char* kSearchTables = R"(
batch_size = 64
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [4, 8]
weight_width = [2, 4, 8]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 100
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.setup]
sampler = "bruteforce"
sum_scaled_metrics = false
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 1.0
average_bitwidth.direction = "minimize"
)";

double accuracy_of(const search::FrozenTrial& t) {
  return nlohmann::json::parse(t.user_attrs.at("software_metrics"))["accuracy"].get<double>();
}

TEST(CsvE2E, TrainThenSearchAUsersCsvDataSet) {
  ScratchDir dir("csv");
  std::ofstream(dir / "plants.csv") << make_csv();
  const std::string columns = " --label-column species --feature-columns b,a";

  // Train: the id column is not a number, so the feature columns must be named.
  Result t = run("train --model mlp --dataset csv:" + (dir / "plants.csv") + columns +
                 " --epochs 8 --batch-size 32 --out " + (dir / "plants.onnx"));
  ASSERT_EQ(t.code, 0) << t.err;
  ASSERT_TRUE(fs::exists(dir / "plants.onnx"));

  // Search with the columns in the config; the model and the CSV are found beside it.
  std::ofstream(dir / "search.toml") << "model = \"plants.onnx\"\ndataset = \"csv:plants.csv\"\n"
                                     << "label_column = \"species\"\n"
                                     << "feature_columns = [\"b\", \"a\"]\n"
                                     << kSearchTables;
  Result s = run("search --config " + (dir / "search.toml") + " --out " + (dir / "out"));
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("Best trial(s):"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "out/best.json"));
  auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 6u);  // the whole space: data_in 2 x weight 3
  double best = 0;
  for (const auto& tr : trials) {
    ASSERT_EQ(tr.state, search::TrialState::kComplete);
    best = std::max(best, accuracy_of(tr));
  }
  EXPECT_GT(best, 0.8);  // it learned the rule (chance is about 1/3)

  // The same with flags, in float mode: exactly what `qsearch eval` measures with the same
  // columns (the feature order must reach the model as it was trained).
  std::ofstream(dir / "flags.toml") << "model = \"plants.onnx\"\n" << kSearchTables;
  s = run("search --config " + (dir / "flags.toml") + " --out " + (dir / "out_flags") +
          " --dataset csv:" + (dir / "plants.csv") + columns + " --mode float --trials 1");
  ASSERT_EQ(s.code, 0) << s.err;
  trials = trials_of(dir / "out_flags");
  ASSERT_EQ(trials.size(), 1u);
  ASSERT_EQ(trials[0].state, search::TrialState::kComplete);
  Result e =
      run("eval --model " + (dir / "plants.onnx") + " --dataset csv:" + (dir / "plants.csv") +
          columns + " --split val --num-samples 100 --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j["samples"], 100);
  EXPECT_EQ(accuracy_of(trials[0]), j["accuracy"].get<double>());
  EXPECT_GT(j["accuracy"].get<double>(), 0.8);

  // Other feature columns than the model was trained with would fail every trial: refused first.
  s = run("search --config " + (dir / "search.toml") + " --out " + (dir / "out_a") +
          " --feature-columns a");
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find("[?, 2] takes 2 values per sample"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("samples of shape [1]"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("plants.csv"), std::string::npos) << s.err;
  EXPECT_FALSE(fs::exists(dir / "out_a"));

  // Without the label column, the error says how to give it.
  s = run("search --config " + (dir / "flags.toml") + " --out " + (dir / "out_none") +
          " --dataset csv:" + (dir / "plants.csv"));
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find("label_column = \"NAME\""), std::string::npos) << s.err;
}

}  // namespace
}  // namespace qsearch::e2e
