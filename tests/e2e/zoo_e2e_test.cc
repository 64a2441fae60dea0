// Issue 11, zoo: the shipped ViT (models/vit-tiny_mnist.onnx, trained by `qsearch train --model
// vit-tiny`) loads in all three engines, and configs/vit_mixed.toml runs a search trial on it
// that quantizes every attention projection, MLP linear and activation matmul it names.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "e2e/e2e_util.h"

namespace qsearch::e2e {
namespace {

TEST(ZooE2E, ShippedVitMixedConfigRunsASearchTrialOverEveryAttentionAndMlpLayer) {
  ScratchDir dir("vit_mixed");
  const std::string out = dir / "out";
  Result r = run("search --config configs/vit_mixed.toml --trials 1 --num-samples 64 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto best = nlohmann::json::parse(read_file(out + "/best.json"));
  ASSERT_EQ(best.size(), 1u);
  const auto& cfg = best.begin().value()["sampled_config"];
  int searched = 0;
  for (int b = 0; b < 2; ++b) {
    const std::string blk = "blocks_" + std::to_string(b) + "_";
    for (const char* layer : {"attn_q_proj", "attn_k_proj", "attn_v_proj", "attn_out_proj",
                              "mlp_fc1", "mlp_fc2", "attn_matmul", "attn_matmul_1"}) {
      SCOPED_TRACE(blk + layer);
      ASSERT_TRUE(cfg.contains(blk + layer));
      const auto& c = cfg[blk + layer]["config"];
      EXPECT_EQ(c.value("name", std::string()), "integer");
      EXPECT_TRUE(c.contains("data_in_width") && c.contains("weight_width"));
      ++searched;
    }
  }
  EXPECT_EQ(searched, 16);
  // Everything else stays float.
  EXPECT_TRUE(cfg["blocks_0_norm1"]["config"]["name"].is_null());
  EXPECT_TRUE(cfg["head"]["config"]["name"].is_null());
}

TEST(ZooE2E, ShippedZooModelsEvaluateInFloatFakeAndInt) {
  ScratchDir dir("zoo_eval");
  // 8 bits on every linear, conv and activation matmul.
  std::string fmt =
      "name = \"integer\"\ndata_in_width = 8\ndata_in_frac_width = 4\n"
      "weight_width = 8\nweight_frac_width = 6\n";
  const std::string quant = write(dir, "int8.toml",
                                  "[passes.quantize]\nby = \"type\"\n"
                                  "[passes.quantize.default.config]\nname = \"NA\"\n"
                                  "[passes.quantize.linear.config]\n" +
                                      fmt + "[passes.quantize.conv2d.config]\n" + fmt +
                                      "[passes.quantize.matmul.config]\n" + fmt);
  for (const char* model : {"vit-tiny_mnist", "vit-tiny_fashion-mnist", "mobilenet-s_mnist",
                            "mobilenet-s_fashion-mnist"}) {
    SCOPED_TRACE(model);
    const std::string path = "models/" + std::string(model) + ".onnx";
    if (!fs::exists(source_dir() + "/" + path)) {
      ADD_FAILURE() << path << " is not shipped";
      continue;
    }
    const std::string data =
        std::string(model).find("fashion") != std::string::npos ? "fashion-mnist" : "mnist";
    auto eval = [&](const std::string& mode) {
      Result r =
          run("eval --model " + path + " --dataset " + data + " --num-samples 500 --json --mode " +
              mode + (mode == "float" ? "" : " --quant " + quant));
      EXPECT_EQ(r.code, 0) << r.err;
      return r.code == 0 ? nlohmann::json::parse(r.out).value("accuracy", 0.0) : 0.0;
    };
    const double f = eval("float"), fake = eval("fake"), integer = eval("int");
    EXPECT_GT(f, data == "mnist" ? 0.95 : 0.8);
    // 8 bits everywhere stays close to float; the integer engine equals fake quantization up
    // to a few predictions (the runtime's float parts: softmax, LayerNorm, GELU).
    EXPECT_NEAR(fake, f, 0.05);
    EXPECT_NEAR(integer, fake, 0.01);
  }
}

}  // namespace
}  // namespace qsearch::e2e
