// eval::bind_input_dims: a model's symbolic input dims besides the batch (a Hugging Face export's
// 'seq') take their sizes from the data set before the model is imported; a data set that cannot
// give one size per name is a one-line error naming the input, the dim, both shapes and the file.
// Hardware metrics then count the bound shapes (BitOPs of the BERT at 12 vs 8 positions).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/hardware_metrics.h"
#include "onnx/import.h"
#include "support/source_dir.h"

namespace qsearch::eval {
namespace {

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/seqlen/";
const std::vector<std::string> kInputs = {"input_ids", "attention_mask", "token_type_ids"};

data::Dataset bert_data(const std::string& file) {
  return data::load_dataset("npz:" + kDir + file, data::Split::kTest, {.input_names = kInputs});
}

std::vector<ir::InputDecl> bert_inputs() {
  auto in = onnx::read_graph_inputs(kDir + "bert_seq_opset17.onnx");
  EXPECT_TRUE(in.has_value());
  return in.value_or(std::vector<ir::InputDecl>{});
}

TEST(BindInputDims, TakesTheSequenceLengthFromTheData) {
  EXPECT_EQ(bind_input_dims(bert_inputs(), bert_data("bert_seq_eval12.npz")),
            (ir::DimBinding{{"seq", 12}}));
  EXPECT_EQ(bind_input_dims(bert_inputs(), bert_data("bert_seq_eval8.npz")),
            (ir::DimBinding{{"seq", 8}}));
  // One input (x [batch, seq, 28]).
  const auto gru = onnx::read_graph_inputs(kDir + "gru_seq_opset17.onnx");
  ASSERT_TRUE(gru.has_value());
  const data::Dataset d =
      data::load_dataset("npz:" + kDir + "gru_seq_eval14.npz", data::Split::kTest, {});
  EXPECT_EQ(bind_input_dims(*gru, d), (ir::DimBinding{{"seq", 14}}));
  // No symbolic dims: nothing to bind.
  const std::vector<ir::InputDecl> fixed = {{"x", {kDynamic, 14, 28}, {"batch", "", ""}}};
  EXPECT_TRUE(bind_input_dims(fixed, d).empty());
}

TEST(BindInputDims, InputsDisagreeingOnADimAreOneLineNamingBoth) {
  try {
    bind_input_dims(bert_inputs(), bert_data("bert_seq_bad_seq.npz"));
    ADD_FAILURE() << "bound";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    for (const char* part :
         {"symbolic dim 'seq' two sizes", "model input 'attention_mask' [batch, seq]", "seq = 8",
          "[8, 8]", "input 'input_ids' [batch, seq]", "seq = 12", "[8, 12]",
          "bert_seq_bad_seq.npz"}) {
      EXPECT_NE(m.find(part), std::string::npos) << part << " in: " << m;
    }
  }
}

TEST(BindInputDims, ArrayOfAnotherRankIsAnError) {
  const auto gru = onnx::read_graph_inputs(kDir + "gru_seq_opset17.onnx");
  ASSERT_TRUE(gru.has_value());
  data::Dataset d =
      data::load_dataset("npz:" + kDir + "gru_seq_eval14.npz", data::Split::kTest, {});
  d.x = d.x.clone().reshaped({d.x.dim(0), 14 * 28});
  try {
    bind_input_dims(*gru, d);
    ADD_FAILURE() << "bound";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model input 'x' [batch, seq, 28]"), std::string::npos) << m;
    EXPECT_NE(m.find("shape [500, 392]"), std::string::npos) << m;
    EXPECT_NE(m.find("gru_seq_eval14.npz"), std::string::npos) << m;
  }
}

TEST(BindInputDims, HardwareMetricsCountTheBoundShapes) {
  OpCounts c[2];
  int i = 0;
  for (const char* file : {"bert_seq_eval12.npz", "bert_seq_eval8.npz"}) {
    const ir::Graph g = onnx::import_model(
        kDir + "bert_seq_opset17.onnx", {.dims = bind_input_dims(bert_inputs(), bert_data(file))});
    c[i++] = op_counts(g, {});
  }
  // Linear layers scale with the length, attention's two MatMuls with its square.
  EXPECT_GT(c[0].macs * 8, c[1].macs * 12);
  EXPECT_LT(c[0].macs * 64, c[1].macs * 144);
  EXPECT_GT(c[0].bitops * 8, c[1].bitops * 12);
  EXPECT_LT(c[0].bitops * 64, c[1].bitops * 144);
}

}  // namespace
}  // namespace qsearch::eval
