// End to end: the report of a search on a model with a symbolic sequence length
// (tests/fixtures/seqlen, dynamic_axes {0: 'batch', 1: 'seq'}) shows per-layer figures counted at
// the length the search bound from its data set, which the study records (setting input_dims). A
// study made before that was recorded (the attribute deleted from its database) still opens and
// reports, with a note instead of the per-layer figures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"
#include "storage/sqlite_db.h"

namespace qsearch::e2e {
namespace {

const std::string kSeqDir = "tests/fixtures/seqlen/";

std::string seq_search_config(const ScratchDir& dir, const std::string& seq) {
  return write(
      dir, "search" + seq + ".toml",
      "model = \"" + kSeqDir + "bert_seq_opset17.onnx\"\ndataset = \"npz:" + kSeqDir +
          "bert_seq_eval" + seq +
          ".npz\"\n[search.search_space]\nname = \"graph/quantize/mixed_precision_ptq\"\n"
          "[search.search_space.setup]\nby = \"type\"\n"
          "[search.search_space.seed.default.config]\nname = [\"NA\"]\n"
          "[search.search_space.seed.linear.config]\nname = [\"integer\"]\n"
          "data_in_width = [8]\ndata_in_frac_width = [4]\n"
          "weight_width = [4, 8]\nweight_frac_width = [3]\n"
          "[search.strategy]\nname = \"optuna\"\n"
          "[search.strategy.sw_runner.basic_evaluation]\nnum_samples = 50\n"
          "[search.strategy.setup]\nn_trials = 2\nsampler = \"random\"\nseed = 0\n"
          "[search.strategy.metrics]\naccuracy.scale = 1.0\naccuracy.direction = \"maximize\"\n");
}

// The per-layer figures report.html embeds: trial number -> [[layer, formats, params, bytes,
// macs, bitops], ...] (empty when the report shows none).
nlohmann::json layer_numbers(const std::string& html) {
  const std::string key = "\"layer_numbers\":";
  const size_t at = html.find(key);
  if (at == std::string::npos) return nlohmann::json::object();
  // The value is one JSON object: parse from its brace to the matching one.
  int depth = 0;
  size_t end = at + key.size();
  for (; end < html.size(); ++end) {
    if (html[end] == '{') ++depth;
    if (html[end] == '}' && --depth == 0) break;
  }
  return nlohmann::json::parse(html.substr(at + key.size(), end + 1 - at - key.size()), nullptr,
                               false);
}

// Sum of one trial's per-layer MACs.
double total_macs(const nlohmann::json& numbers) {
  double macs = 0;
  for (const auto& [trial, layers] : numbers.items()) {
    for (const auto& l : layers) macs += l.at(4).get<double>();
    break;
  }
  return macs;
}

TEST(ReportE2E, PerLayerFiguresOfASymbolicSequenceLengthModelAtTheBoundLength) {
  ScratchDir dir("report_seq");
  double macs[2] = {0, 0};
  int i = 0;
  for (const std::string seq : {"12", "8"}) {
    SCOPED_TRACE(seq);
    const std::string out = dir / ("out" + seq);
    Result s = run("search --config " + seq_search_config(dir, seq) + " --out " + out + " --quiet");
    ASSERT_EQ(s.code, 0) << s.err;
    Result r = run("report --out " + out + " --html");
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string html = read_file(out + "/report.html");
    EXPECT_NE(html.find("Per-layer numbers counted on"), std::string::npos);
    EXPECT_NE(html.find("seq = " + seq), std::string::npos);
    EXPECT_EQ(html.find("symbolic input dims"), std::string::npos);
    const nlohmann::json numbers = layer_numbers(html);
    ASSERT_TRUE(numbers.is_object());
    EXPECT_EQ(numbers.size(), 2u) << numbers.dump();  // both trials
    macs[i++] = total_macs(numbers);
  }
  // Counted at the bound length: every layer sees 12 positions in one study, 8 in the other.
  EXPECT_GT(macs[1], 0);
  EXPECT_GT(macs[0], macs[1] * 1.4) << macs[0] << " " << macs[1];

  // A study of an older qsearch, without the attribute: it opens, and the report says why it
  // has no per-layer figures.
  const std::string old = dir / "out8";
  {
    storage::SqliteConnection db(old + "/study.db", 1000);
    db.exec("DELETE FROM study_user_attributes WHERE key = 'input_dims'");
  }
  Result r = run("report --out " + old + " --html");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = read_file(old + "/report.html");
  EXPECT_NE(html.find("does not record their sizes"), std::string::npos);
  EXPECT_TRUE(layer_numbers(html).empty());
  EXPECT_EQ(trials_of(old).size(), 2u);
}

}  // namespace
}  // namespace qsearch::e2e
