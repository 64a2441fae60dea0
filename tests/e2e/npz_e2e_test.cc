// End to end: NumPy data (npz:PATH, npy:X,Y) in eval, quantize and search, the input check
// before the first trial, top-5 accuracy and regression's mean squared error. The fixtures were
// written by numpy (tools/make_npz_fixtures.py) from the MNIST IDX fixture's images.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kModel = "tests/fixtures/torch/mlp_opset13.onnx";
const std::string kNpz = "tests/fixtures/data/npz/";

nlohmann::json eval_json(const std::string& dataset, const std::string& extra = "") {
  Result r = run("eval --model " + kModel + " --dataset " + dataset + " --json " + extra);
  EXPECT_EQ(r.code, 0) << dataset << "\n" << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(NpzE2E, EvalOnNumpyFilesEqualsEvalOnTheIdxFilesTheyWereMadeFrom) {
  const auto want = eval_json("mnist", "--data-dir tests/fixtures/data/idx");
  ASSERT_EQ(want["samples"], 12);
  for (const std::string& ds :
       {"npz:" + kNpz + "mnist12.npz", "'npz:" + kNpz + "mnist12_flat.npz?x=inputs&y=labels'"}) {
    const auto got = eval_json(ds);
    for (const char* key : {"loss", "accuracy", "top5_accuracy", "macro_accuracy"}) {
      EXPECT_EQ(got[key], want[key]) << ds << " " << key;
    }
  }
  // Raw uint8 pixels (npy:) are converted to the model's float32 as they are, not scaled: the
  // model sees other inputs, but it runs, on every sample.
  const auto raw = eval_json("npy:" + kNpz + "mnist12_x.npy," + kNpz + "mnist12_y.npy");
  EXPECT_EQ(raw["samples"], 12);
  Result text = run("eval --model " + kModel + " --dataset npz:" + kNpz + "mnist12.npz");
  EXPECT_NE(text.out.find("top5_accuracy"), std::string::npos) << text.out;
}

TEST(NpzE2E, RegressionTargetsGiveMseAndNoAccuracy) {
  const auto j = eval_json("npz:" + kNpz + "regress.npz");
  ASSERT_TRUE(j.contains("mse")) << j.dump();
  EXPECT_GT(j["mse"].get<double>(), 0.0);
  EXPECT_EQ(j["mse"], j["loss"]);
  EXPECT_FALSE(j.contains("accuracy"));
  Result text = run("eval --model " + kModel + " --dataset npz:" + kNpz + "regress.npz");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("mse "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("accuracy"), std::string::npos) << text.out;
}

TEST(NpzE2E, AnInputShapeThatDoesNotFitIsRefusedBeforeAnythingRuns) {
  const std::string bad = kNpz + "bad_shape.npz";
  for (const std::string& cmd :
       {"eval --model " + kModel + " --dataset npz:" + bad,
        "quantize --model " + kModel +
            " --config configs/mnist_mlp_int8.toml --dataset npz:" + bad}) {
    Result r = run(cmd);
    EXPECT_EQ(r.code, 1) << cmd;
    for (const char* piece : {"[3, 5]", "bad_shape.npz", "784"}) {
      EXPECT_NE(r.err.find(piece), std::string::npos) << piece << " in:\n" << r.err;
    }
  }
}

std::string search_config(const std::string& data_lines, const std::string& metric) {
  std::string s = mlp_by_name_config(12);
  s.replace(s.find("dataset = \"mnist\"\n"), 18, data_lines);
  s.replace(s.find("accuracy.scale"), 14, metric + ".scale");
  s.replace(s.find("accuracy.direction = \"maximize\""), 31,
            metric + ".direction = \"" + (metric == "mse" ? "minimize" : "maximize") + "\"");
  return s;
}

TEST(NpzE2E, SearchReadsNumpyDataNamedInTheConfigAndOptimisesTop5OrMse) {
  ScratchDir dir("npz_search");
  const std::string root = source_dir() + "/";
  struct Case {
    std::string data, metric;
  } cases[] = {
      {"dataset = \"npz:" + root + kNpz +
           "mnist12_flat.npz\"\nx_array = \"inputs\"\n"
           "y_array = \"labels\"\n",
       "top5_accuracy"},
      {"dataset = \"npz:" + root + kNpz + "regress.npz\"\n", "mse"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.metric);
    const std::string cfg = write(dir, c.metric + ".toml", search_config(c.data, c.metric));
    const std::string out = dir / ("out_" + c.metric);
    Result r = run("search --config " + cfg + " --trials 2 --sampler random --out " + out);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto trials = trials_of(out);
    ASSERT_EQ(trials.size(), 2u);
    const auto sw = nlohmann::json::parse(trials[0].user_attrs.at("software_metrics"));
    EXPECT_TRUE(sw.contains(c.metric)) << sw.dump();
    EXPECT_EQ(sw.contains("accuracy"), c.metric != "mse") << sw.dump();
  }
  // accuracy on regression targets, and a data set that does not fit: refused before trial 0.
  const std::string acc =
      write(dir, "acc.toml",
            search_config("dataset = \"npz:" + root + kNpz + "regress.npz\"\n", "accuracy"));
  Result r = run("search --config " + acc + " --trials 1 --out " + (dir / "o1"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("needs class labels"), std::string::npos) << r.err;
  const std::string bad =
      write(dir, "bad.toml",
            search_config("dataset = \"npz:" + root + kNpz + "bad_shape.npz\"\n", "accuracy"));
  r = run("search --config " + bad + " --trials 1 --out " + (dir / "o2"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("[3, 5]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad_shape.npz"), std::string::npos) << r.err;
}

TEST(NpzE2E, TrainOnNpzWritesAModelNamedAfterTheKindOfDataSetNotItsPath) {
  // Without --out the file is <model>_<data set>.onnx in the working directory (the source
  // directory here): npz, not the path "npz:tests/fixtures/...", which names no file.
  const std::string out = source_dir() + "/mlp_npz.onnx";
  ASSERT_FALSE(fs::exists(out)) << "left over: " << out;
  Result r =
      run("train --model mlp --dataset npz:" + kNpz + "mnist12.npz --epochs 1 --batch-size 4");
  const bool written = fs::exists(out);
  fs::remove(out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(written) << r.out;
  // Regression targets are refused by the classifier trainer, naming the data set.
  r = run("train --model mlp --dataset npz:" + kNpz + "regress.npz --epochs 1 --out " +
          "/tmp/qsearch_npz_never_written.onnx");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("regress.npz"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/tmp/qsearch_npz_never_written.onnx"));
}

}  // namespace
}  // namespace qsearch::e2e

namespace qsearch::e2e {
namespace {

// A user's tokenized data set: int64 token ids in an .npz feed a BERT-style model (an int64 graph
// input, embeddings, attention mask from the ids) through eval and search, in every engine. The
// expected accuracies are PyTorch's (tests/fixtures/transformer/bert_ref.json: float 0.967, and
// 0.963 with MASE's quantizers at 8 bits on every linear and matmul).
TEST(NpzE2E, TokenIdsFromAnNpzRunABertModelInEveryEngine) {
  const std::string model = "tests/fixtures/transformer/bert_opset13.onnx";
  const std::string data = "npz:" + kNpz + "bert_ids.npz";
  ScratchDir dir("npz_bert");
  const std::string u8 = write(dir, "u8.toml",
                               "[passes.quantize]\nby = \"type\"\n"
                               "[passes.quantize.default.config]\nname = \"NA\"\n"
                               "[passes.quantize.linear.config]\nname = \"integer\"\n"
                               "data_in_width = 8\ndata_in_frac_width = 4\n"
                               "weight_width = 8\nweight_frac_width = 6\n"
                               "[passes.quantize.matmul.config]\nname = \"integer\"\n"
                               "data_in_width = 8\ndata_in_frac_width = 4\n"
                               "weight_width = 8\nweight_frac_width = 4\n");
  struct Case {
    std::string flags;
    int correct;
  };
  for (const Case& c : {Case{"--mode float", 967}, Case{"--quant " + u8 + " --mode fake", 963},
                        Case{"--quant " + u8 + " --mode int", 963}}) {
    Result r = run("eval --model " + model + " --dataset " + data + " --json " + c.flags);
    ASSERT_EQ(r.code, 0) << c.flags << "\n" << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["samples"], 1000) << c.flags;
    EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), c.correct / 1000.0) << c.flags;
  }
  // A search over the linears' widths on the same ids (int engine, the default).
  const std::string cfg = write(
      dir, "search.toml",
      "model = \"" + model + "\"\ndataset = \"" + data +
          "\"\n[search.search_space]\nname = \"graph/quantize/mixed_precision_ptq\"\n"
          "[search.search_space.setup]\nby = \"type\"\n"
          "[search.search_space.seed.default.config]\nname = [\"NA\"]\n"
          "[search.search_space.seed.linear.config]\nname = [\"integer\"]\n"
          "data_in_width = [6, 8]\ndata_in_frac_width = [\"NA\"]\n"
          "weight_width = [4, 8]\nweight_frac_width = [\"NA\"]\n"
          "[search.strategy]\nname = \"optuna\"\n"
          "[search.strategy.sw_runner.basic_evaluation]\nnum_samples = 200\n"
          "[search.strategy.setup]\nn_trials = 3\nsampler = \"random\"\nseed = 0\n"
          "[search.strategy.metrics]\naccuracy.scale = 1.0\naccuracy.direction = \"maximize\"\n");
  Result s = run("search --config " + cfg + " --out " + (dir / "out") + " --quiet");
  ASSERT_EQ(s.code, 0) << s.err;
  const auto best = nlohmann::json::parse(read_file(dir / "out/best.json"));
  EXPECT_FALSE(best.empty()) << best.dump();
}

// A model with several graph inputs (issue 11): a BERT exported as transformers exports it, with
// input_ids, attention_mask and token_type_ids (tools/make_bert_mask_fixtures.py), fed from an npz
// with one array per input, named after it, and the labels as y. Its padding holds random tokens,
// so a model fed without (or with a swapped) attention_mask loses a fifth of its accuracy.
const std::string kBert = "tests/fixtures/transformer/bert_mask_opset";
const std::string kBertData = "npz:tests/fixtures/transformer/bert_mask_eval.npz";

nlohmann::json bert_ref() {
  return nlohmann::json::parse(
      read_file(source_dir() + "/tests/fixtures/transformer/bert_mask_ref.json"));
}

TEST(NpzE2E, ABertWithAnAttentionMaskInputRunsInFloatFakeAndInt) {
  const auto ref = bert_ref();
  for (const char* opset : {"13", "17"}) {
    SCOPED_TRACE(opset);
    const std::string base =
        "eval --model " + kBert + opset + ".onnx --dataset " + kBertData + " --json";
    Result f = run(base + " --mode float");
    ASSERT_EQ(f.code, 0) << f.err;
    const auto fj = nlohmann::json::parse(f.out);
    EXPECT_EQ(fj["samples"], 1000);
    EXPECT_NEAR(fj["accuracy"].get<double>(), ref["float"]["accuracy"].get<double>(), 1e-6);
    for (const char* cfg : {"uniform8", "mixed"}) {
      SCOPED_TRACE(cfg);
      const std::string quant =
          " --quant tests/fixtures/transformer/bert_mask_" + std::string(cfg) + ".toml --mode ";
      Result fake = run(base + quant + "fake");
      Result integer = run(base + quant + "int");
      ASSERT_EQ(fake.code, 0) << fake.err;
      ASSERT_EQ(integer.code, 0) << integer.err;
      const double torch = ref["configs"][cfg]["accuracy"].get<double>();
      const double fa = nlohmann::json::parse(fake.out)["accuracy"].get<double>();
      const double ia = nlohmann::json::parse(integer.out)["accuracy"].get<double>();
      // At most 3 of 1000 predictions (tests/runtime/bert_mask_fixture_test.cc).
      EXPECT_NEAR(fa, torch, 0.003);
      EXPECT_NEAR(ia, fa, 0.003);
    }
  }
  // quantize: the data set's arrays, and without one synthetic inputs of each input's dtype.
  const std::string q = "quantize --model " + kBert +
                        "17.onnx --config tests/fixtures/transformer/bert_mask_uniform8.toml "
                        "--repeats 1 --json";
  Result with = run(q + " --dataset " + kBertData + " --num-samples 200");
  ASSERT_EQ(with.code, 0) << with.err;
  const auto wj = nlohmann::json::parse(with.out);
  EXPECT_NEAR(wj["software_metrics"]["accuracy"].get<double>(), 0.98, 0.05) << with.out;
  Result without = run(q);
  EXPECT_EQ(without.code, 0) << without.err;
}

TEST(NpzE2E, EachInputOfAMultiInputModelIsCheckedByNameShapeAndDtype) {
  const std::string model = " --model " + kBert + "17.onnx";
  const std::string dir = "tests/fixtures/transformer/";
  struct Case {
    std::string file;
    std::vector<std::string> pieces;
  } cases[] = {
      {"bert_mask_bad_name.npz",
       {"no array 'attention_mask' for model input 'attention_mask'", "bert_mask_bad_name.npz",
        "mask", "input_ids, attention_mask, token_type_ids"}},
      {"bert_mask_bad_shape.npz",
       {"model input 'attention_mask'", "[12]", "[10]", "bert_mask_bad_shape.npz"}},
      {"bert_mask_bad_dtype.npz",
       {"model input 'attention_mask'", "int64", "float32", "bert_mask_bad_dtype.npz"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    for (const std::string& cmd : {"eval" + model + " --dataset npz:" + dir + c.file,
                                   "quantize" + model + " --config " + dir +
                                       "bert_mask_uniform8.toml --dataset npz:" + dir + c.file}) {
      Result r = run(cmd);
      EXPECT_EQ(r.code, 1) << cmd;
      EXPECT_EQ(r.err.find("Assertion"), std::string::npos) << r.err;
      for (const std::string& piece : c.pieces) {
        EXPECT_NE(r.err.find(piece), std::string::npos) << piece << " in:\n" << r.err;
      }
    }
  }
  // A data set of one input (mnist, csv:, npy:) or a renamed x cannot feed three inputs.
  Result r = run("eval" + model + " --dataset mnist");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("only npz: data sets feed several inputs"), std::string::npos) << r.err;
  r = run("eval" + model + " --dataset '" + kBertData + "?x=input_ids'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("x_array / ?x="), std::string::npos) << r.err;
  // train feeds several inputs too (TrainInputsE2E), but a BERT's token ids go through an
  // embedding Gather, which has no backward: refused naming the file and the op.
  r = run("train" + model + " --dataset " + kBertData + " --epochs 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot train '" + kBert + "17.onnx'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(Gather)"), std::string::npos) << r.err;
}

std::string bert_search_config(const std::string& dataset_lines) {
  return std::string(R"(
model = ")") +
         kBert + R"(17.onnx"
)" + dataset_lines +
         R"(
batch_size = 100
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = [4]
weight_width = [4, 8]
weight_frac_width = [6]
[search.search_space.seed.matmul.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = [4]
weight_width = [8]
weight_frac_width = [4]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 300
mode = "int"
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.hw_runner.latency]
batch_size = 4
repeats = 1
[search.strategy.setup]
sampler = "random"
n_trials = 2
seed = 1
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
average_bitwidth.scale = 1.0
average_bitwidth.direction = "minimize"
)";
}

TEST(NpzE2E, SearchAndSensitivityRunAMultiInputModelFromATomlDataset) {
  ScratchDir dir("npz_bert_search");
  const std::string cfg =
      write(dir, "c.toml", bert_search_config("dataset = \"" + kBertData + "\""));
  Result r = run("search --config " + cfg + " --out " + (dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto trials = trials_of(dir / "out");
  ASSERT_EQ(trials.size(), 2u);
  for (const auto& t : trials) {
    EXPECT_EQ(t.state, search::TrialState::kComplete);
    const auto sw = nlohmann::json::parse(t.user_attrs.at("software_metrics"));
    EXPECT_GT(sw["accuracy"].get<double>(), 0.7) << sw.dump();  // 4-bit weights: 0.80
    const auto hw = nlohmann::json::parse(t.user_attrs.at("hardware_metrics"));
    EXPECT_GT(hw["latency_ms"].get<double>(), 0.0) << hw.dump();
  }
  Result s = run("sensitivity --config " + cfg + " --out " + (dir / "sens"));
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("(all float)"), std::string::npos) << s.out;
  // The float base on 300 sequences: PyTorch's 0.98 on the 1000 (0.78 without the mask).
  const auto sj = nlohmann::json::parse(read_file(dir.path() / "sens" / "sensitivity.json"));
  EXPECT_GT(sj["base"]["values"][0].get<double>(), 0.95) << sj["base"].dump();
  // A wrong array is refused before trial 0, naming the input and the file.
  const std::string bad = write(
      dir, "bad.toml",
      bert_search_config("dataset = \"npz:tests/fixtures/transformer/bert_mask_bad_shape.npz\""));
  r = run("search --config " + bad + " --out " + (dir / "bad"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("model input 'attention_mask'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bert_mask_bad_shape.npz"), std::string::npos) << r.err;
}

// A model exported with a symbolic sequence length (dynamic_axes {0: 'batch', 1: 'seq'};
// tools/make_seqlen_fixtures.py): 'seq' is bound from the data set, so one model file runs data of
// 12 and of 8 positions, each at PyTorch's accuracy; inputs disagreeing on 'seq' are refused in
// one line before anything runs; inspect takes --input-dim.
TEST(NpzE2E, ASymbolicSequenceLengthIsBoundFromTheData) {
  const std::string dir = "tests/fixtures/seqlen/";
  const auto ref = nlohmann::json::parse(read_file(source_dir() + "/" + dir + "seqlen_ref.json"));
  for (const char* seq : {"12", "8"}) {
    SCOPED_TRACE(seq);
    const std::string base = "eval --model " + dir + "bert_seq_opset17.onnx --dataset npz:" + dir +
                             "bert_seq_eval" + seq + ".npz --json";
    Result f = run(base + " --mode float");
    ASSERT_EQ(f.code, 0) << f.err;
    EXPECT_NE(f.err.find(std::string("seq = ") + seq), std::string::npos) << f.err;
    EXPECT_NEAR(nlohmann::json::parse(f.out)["accuracy"].get<double>(),
                ref["bert"][seq]["accuracy"].get<double>(), 1e-6);
    const std::string quant = " --quant tests/fixtures/transformer/bert_mask_uniform8.toml --mode ";
    Result fake = run(base + quant + "fake");
    Result integer = run(base + quant + "int");
    ASSERT_EQ(fake.code, 0) << fake.err;
    ASSERT_EQ(integer.code, 0) << integer.err;
    const double fa = nlohmann::json::parse(fake.out)["accuracy"].get<double>();
    EXPECT_NEAR(fa, ref["bert"][seq]["configs"]["uniform8"]["accuracy"].get<double>(), 0.0075);
    EXPECT_NEAR(nlohmann::json::parse(integer.out)["accuracy"].get<double>(), fa, 0.0075);
  }
  // The GRU over 28 and 14 steps.
  for (const char* seq : {"28", "14"}) {
    Result g = run("eval --model " + dir + "gru_seq_opset17.onnx --dataset npz:" + dir +
                   "gru_seq_eval" + seq + ".npz --json");
    ASSERT_EQ(g.code, 0) << g.err;
    EXPECT_NEAR(nlohmann::json::parse(g.out)["accuracy"].get<double>(),
                ref["gru"][seq]["accuracy"].get<double>(), 1e-6);
  }
  // Two inputs disagreeing on 'seq'.
  Result bad = run("eval --model " + dir + "bert_seq_opset17.onnx --dataset npz:" + dir +
                   "bert_seq_bad_seq.npz");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("symbolic dim 'seq' two sizes"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("bert_seq_bad_seq.npz"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  // inspect: --input-dim gives the size; without it, the error says how.
  Result ins = run("inspect --model " + dir + "bert_seq_opset17.onnx --input-dim seq=8");
  ASSERT_EQ(ins.code, 0) << ins.err;
  EXPECT_NE(ins.out.find("[?, 8]"), std::string::npos) << ins.out;
  Result none = run("inspect --model " + dir + "bert_seq_opset17.onnx");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("--input-dim seq=SIZE"), std::string::npos) << none.err;
  // quantize counts BitOPs at the bound length: more at 12 positions than at 8.
  double bitops[2] = {0, 0};
  int i = 0;
  for (const char* seq : {"12", "8"}) {
    Result q = run("quantize --model " + dir +
                   "bert_seq_opset17.onnx --config tests/fixtures/transformer/"
                   "bert_mask_uniform8.toml --repeats 1 --json --num-samples 50 --dataset npz:" +
                   dir + "bert_seq_eval" + seq + ".npz");
    ASSERT_EQ(q.code, 0) << q.err;
    bitops[i++] = nlohmann::json::parse(q.out)["hardware_metrics"]["bitops"].get<double>();
  }
  EXPECT_GT(bitops[0] * 8, bitops[1] * 12) << bitops[0] << " " << bitops[1];
}

}  // namespace
}  // namespace qsearch::e2e
