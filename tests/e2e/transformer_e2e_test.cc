// Issue 11 end to end: the ViT-style encoder exported by torch.onnx.export at opsets 13 and 17
// (tests/fixtures/transformer, tools/make_transformer_fixtures.py) runs through `qsearch eval` in
// float, fake and int modes with PyTorch's accuracies, its matmuls quantize by name, type and
// regex, and `qsearch search` runs trials on it with the matmul formats in the space.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

const std::string kDir = "tests/fixtures/transformer/";

nlohmann::json eval_json(const std::string& args) {
  Result r = run("eval --dataset mnist --num-samples 2000 --json " + args);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(TransformerE2E, EvalInAllThreeModesAtOpsets13And17) {
  const auto ref = nlohmann::json::parse(read_file(source_dir() + "/" + kDir + "vit_ref.json"));
  for (const char* opset : {"13", "17"}) {
    SCOPED_TRACE(opset);
    const std::string model = "--model " + kDir + "vit_opset" + opset + ".onnx";
    auto f = eval_json(model + " --mode float");
    EXPECT_NEAR(f.value("accuracy", 0.0), ref["float"]["accuracy"].get<double>(), 1e-6);
    for (const char* cfg : {"uniform8", "mixed", "with_norms"}) {
      SCOPED_TRACE(cfg);
      const std::string quant = " --quant " + kDir + "vit_" + cfg + ".toml";
      const double torch = ref["configs"][cfg]["accuracy"].get<double>();
      auto fake = eval_json(model + quant + " --mode fake");
      auto integer = eval_json(model + quant + " --mode int");
      // 4 of 2000 predictions (see tests/runtime/transformer_fixture_test.cc).
      EXPECT_NEAR(fake.value("accuracy", 0.0), torch, 0.002);
      EXPECT_NEAR(integer.value("accuracy", 0.0), fake.value("accuracy", 0.0), 0.002);
    }
  }
}

// A BERT-style model takes int64 token ids (tests/fixtures/transformer/bert_*): `qsearch
// quantize` without a data set measures latency on synthetic ids of the model's dtype.
TEST(TransformerE2E, QuantizeABertOnTokenIdsWithoutADataset) {
  ScratchDir dir("bert_quantize");
  const std::string cfg = write(dir, "q.toml",
                                "[passes.quantize]\nby = \"type\"\n"
                                "[passes.quantize.default.config]\nname = \"NA\"\n"
                                "[passes.quantize.linear.config]\nname = \"integer\"\n"
                                "data_in_width = 8\ndata_in_frac_width = 4\n"
                                "weight_width = 8\nweight_frac_width = 6\n");
  for (const char* opset : {"13", "17"}) {
    SCOPED_TRACE(opset);
    Result r = run(std::string("quantize --model ") + kDir + "bert_opset" + opset +
                   ".onnx --config " + cfg + " --repeats 1 --json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_FALSE(j.empty());
  }
}

TEST(TransformerE2E, MatmulsAreResolvedByNameTypeAndRegex) {
  ScratchDir dir("vit_resolve");
  const std::string fmt =
      "name = \"integer\"\ndata_in_width = 4\ndata_in_frac_width = 1\n"
      "weight_width = 4\nweight_frac_width = 2\n";
  const std::string model = "--model " + kDir + "vit_opset13.onnx";
  const std::string by_name = write(dir, "name.toml",
                                    "[passes.quantize]\nby = \"name\"\n"
                                    "[passes.quantize.blocks_0_matmul.config]\n" +
                                        fmt + "[passes.quantize.blocks_0_matmul_1.config]\n" + fmt +
                                        "[passes.quantize.blocks_1_matmul.config]\n" + fmt +
                                        "[passes.quantize.blocks_1_matmul_1.config]\n" + fmt);
  const std::string by_type = write(dir, "type.toml",
                                    "[passes.quantize]\nby = \"type\"\n"
                                    "[passes.quantize.matmul.config]\n" +
                                        fmt);
  const std::string by_regex = write(dir, "regex.toml",
                                     "[passes.quantize]\nby = \"regex_name\"\n"
                                     "[passes.quantize.'blocks_[01]_matmul(_1)?'.config]\n" +
                                         fmt);
  auto a = eval_json(model + " --mode int --quant " + by_name);
  auto b = eval_json(model + " --mode int --quant " + by_type);
  auto c = eval_json(model + " --mode int --quant " + by_regex);
  auto f = eval_json(model + " --mode float");
  EXPECT_EQ(a.value("accuracy", -1.0), b.value("accuracy", -2.0));
  EXPECT_EQ(a.value("accuracy", -1.0), c.value("accuracy", -3.0));
  EXPECT_NE(a.value("accuracy", -1.0), f.value("accuracy", -4.0));  // 4-bit attention shows
}

TEST(TransformerE2E, SearchRunsTrialsOverLinearAndMatmulFormats) {
  for (const char* opset : {"13", "17"}) {
    SCOPED_TRACE(opset);
    ScratchDir dir(std::string("vit_search") + opset);
    const std::string cfg = write(dir, "c.toml",
                                  std::string(R"(
model = "tests/fixtures/transformer/vit_opset)") +
                                      opset + R"(.onnx"
dataset = "mnist"
batch_size = 250
[search.search_space.setup]
by = "type"
[search.search_space.seed.default.config]
name = ["NA"]
[search.search_space.seed.linear.config]
name = ["integer"]
data_in_width = [8]
data_in_frac_width = [4]
weight_width = [4, 8]
weight_frac_width = [3, 6]
[search.search_space.seed.matmul.config]
name = ["integer"]
data_in_width = [6, 8]
data_in_frac_width = [3, 4]
weight_width = [6, 8]
weight_frac_width = [3, 4]
[search.strategy.sw_runner.basic_evaluation]
num_samples = 500
mode = "int"
[search.strategy.hw_runner.average_bitwidth]
compare_to = 32
[search.strategy.hw_runner.bitops]
[search.strategy.setup]
sampler = "tpe"
n_trials = 4
seed = 1
[search.strategy.metrics]
accuracy.scale = 1.0
accuracy.direction = "maximize"
bitops.scale = 1.0
bitops.direction = "minimize"
)");
    Result r = run("search --config " + cfg + " --out " + (dir / "out"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto trials = trials_of(dir / "out");
    ASSERT_EQ(trials.size(), 4u);
    for (const auto& t : trials) {
      EXPECT_EQ(t.state, search::TrialState::kComplete);
      ASSERT_EQ(t.values.size(), 2u);
      EXPECT_GT(t.values[0], 0.5);  // accuracy of a working 8/4-bit transformer
    }
    EXPECT_TRUE(fs::exists(dir.path() / "out" / "best.json"));
  }
}

}  // namespace
}  // namespace qsearch::e2e
