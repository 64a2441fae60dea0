// End to end: `qsearch train` fine-tunes ONNX models with several graph inputs (one npz array per
// input, named after it) and models with a symbolic sequence length (bound from the data, as eval
// and search bind it), and refuses a model with an op it has no backward for (a BERT's embedding
// Gather) in one line naming the op and the file. Fixtures: tools/make_train_inputs_fixtures.py
// (tests/fixtures/train_inputs), tools/make_seqlen_fixtures.py, tools/make_bert_mask_fixtures.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kDir = "tests/fixtures/train_inputs/";

nlohmann::json train_json(const std::string& args) {
  Result r = run("train " + args + " --json");
  EXPECT_EQ(r.code, 0) << r.err;
  if (r.code != 0) return nlohmann::json::object();
  return nlohmann::json::parse(r.out);
}

double eval_accuracy(const std::string& model, const std::string& data) {
  Result r = run("eval --model " + model + " --dataset " + data + " --mode float --json");
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out).value("accuracy", -1.0) : -1.0;
}

// The label is argmax(b) and `a` is noise: a trained model that did not read `b` (or read the
// wrong array, or rows of `b` that do not belong to the sample's label) stays near a third.
TEST(TrainInputsE2E, SeveralInputModelTrainsFromNamedNpzArrays) {
  ScratchDir dir("train_two_inputs");
  const std::string out = dir / "two.onnx";
  const std::string data = "npz:" + kDir + "two_inputs.npz";
  const auto j = train_json("--model " + kDir + "two_inputs.onnx --dataset " + data +
                            " --epochs 12 --batch-size 32 --lr 0.02 --seed 1 --out " + out);
  ASSERT_TRUE(j.contains("val_accuracy")) << j.dump();
  EXPECT_GT(j["val_accuracy"].get<double>(), 0.85) << j.dump();
  // The written model still takes both inputs and evaluates to the same quality.
  EXPECT_GT(eval_accuracy(out, data), 0.85);
  // The same seed gives the same model (the inputs' rows are shuffled together).
  const std::string again = dir / "again.onnx";
  train_json("--model " + kDir + "two_inputs.onnx --dataset " + data +
             " --epochs 12 --batch-size 32 --lr 0.02 --seed 1 --out " + again);
  EXPECT_EQ(read_file(out), read_file(again));
  // An archive without one of the model's arrays is refused naming it.
  Result missing =
      run("train --model " + kDir + "two_inputs.onnx --dataset npz:" + kDir + "seq_mean6.npz");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("'a'"), std::string::npos) << missing.err;
}

// seq is symbolic in the file; the data give 6 or 10. Before, the import failed on the unbound
// dim.
TEST(TrainInputsE2E, SymbolicSequenceLengthIsBoundFromTheData) {
  ScratchDir dir("train_seq");
  for (const std::string seq : {"6", "10"}) {
    SCOPED_TRACE(seq);
    const std::string out = dir / ("seq" + seq + ".onnx");
    const std::string data = "npz:" + kDir + "seq_mean" + seq + ".npz";
    Result r = run("train --model " + kDir + "seq_mean.onnx --dataset " + data +
                   " --epochs 10 --batch-size 32 --lr 0.02 --json --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("seq = " + seq), std::string::npos) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["val_accuracy"].get<double>(), 0.7) << j.dump();
    // The output has the bound length as a fixed dim, and runs on the same data.
    Result ins = run("inspect --model " + out);
    ASSERT_EQ(ins.code, 0) << ins.err;
    EXPECT_NE(ins.out.find(", " + seq + ", 4]"), std::string::npos) << ins.out;
    EXPECT_NEAR(eval_accuracy(out, data), j["val_accuracy"].get<double>(), 0.1);
  }
}

// A BERT reads token ids through an embedding Gather, which has no backward here: one line naming
// the op and the file, before any epoch; with one input and a symbolic seq, and with several.
TEST(TrainInputsE2E, ModelWithAnOpWithoutBackwardIsRefusedNamingTheOpAndTheFile) {
  ScratchDir dir("train_bert");
  struct Case {
    std::string model, data;
  };
  for (const Case& c : {Case{"tests/fixtures/seqlen/bert_seq_opset17.onnx",
                             "npz:tests/fixtures/seqlen/bert_seq_eval8.npz"},
                        Case{"tests/fixtures/transformer/bert_mask_opset17.onnx",
                             "npz:tests/fixtures/transformer/bert_mask_eval.npz"}}) {
    SCOPED_TRACE(c.model);
    const std::string out = dir / "bert.onnx";
    Result r = run("train --model " + c.model + " --dataset " + c.data + " --out " + out);
    EXPECT_EQ(r.code, 1) << r.err;
    const std::string last = r.err.substr(r.err.rfind("qsearch: error"));
    EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << r.err;
    EXPECT_NE(last.find(c.model), std::string::npos) << r.err;
    EXPECT_NE(last.find("(Gather)"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("training " + c.model), std::string::npos) << r.err;  // no epoch ran
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace qsearch::e2e
