#include "train/zoo.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "support/source_dir.h"
#include "train/params.h"

namespace qsearch::train {
namespace {

TEST(Zoo, ParameterCountsMatchMaseAndHls4ml) {
  // mase.md §7.1 and anchors.md §3.3 (PyTorch's sum of parameters().numel()).
  EXPECT_EQ(trainable_param_count(build_model("jsc-tiny")), 117);
  EXPECT_EQ(trainable_param_count(build_model("jsc-toy")), 327);
  EXPECT_EQ(trainable_param_count(build_model("jsc-trt")), 3231);
  EXPECT_EQ(trainable_param_count(build_model("jsc-s")), 5615);
  EXPECT_EQ(trainable_param_count(build_model("jsc-hls4ml")), 4389);
  EXPECT_EQ(trainable_param_count(build_model("mlp")), 784 * 256 + 256 + 256 * 128 + 128 + 1290);
  EXPECT_EQ(trainable_param_count(build_model("lenet5")), 61706);
  EXPECT_EQ(trainable_param_count(build_model("toy")), 784 * 8 + 8 + 72 + 90);
  // conv1 144 + bn 32, layer1 2 * (2304 + 32), layer2 512 + 32 + 4608 + 64 + 9216 + 64, fc 330.
  EXPECT_EQ(trainable_param_count(build_model("resnet-s")), 19706);
}

TEST(Zoo, NodeNamesAreTorchOnnxNamesAndConfigNamesAreMaseFxNames) {
  ir::Graph g = build_model("jsc-tiny");
  ASSERT_EQ(g.nodes().size(), 4u);
  EXPECT_EQ(g.nodes()[0].name, "/seq_blocks/seq_blocks.0/BatchNormalization");
  EXPECT_EQ(g.nodes()[2].name, "/seq_blocks/seq_blocks.2/Gemm");
  EXPECT_EQ(g.nodes()[2].config_name, "seq_blocks_2");
  EXPECT_EQ(g.nodes()[3].config_name, "seq_blocks_3");
  EXPECT_TRUE(g.find_value("seq_blocks.2.weight").has_value());
  EXPECT_TRUE(g.find_value("seq_blocks.0.running_var").has_value());
  EXPECT_EQ(g.value(g.outputs()[0]).name, "output");
  EXPECT_EQ(g.value(g.inputs()[0]).name, "input");
  EXPECT_EQ(g.value(g.inputs()[0]).shape, (Shape{kDynamic, 16}));

  ir::Graph s = build_model("jsc-s");
  EXPECT_EQ(s.nodes()[2].name, "/module_list.2/Gemm");
  EXPECT_EQ(s.nodes()[2].config_name, "module_list_2");
  EXPECT_EQ(s.nodes().back().name, "/module_list.13/Relu");

  ir::Graph l = build_model("lenet5");
  EXPECT_NE(l.find_node("fc1"), nullptr);
  EXPECT_EQ(l.find_node("fc1")->name, "/fc1/Gemm");
  EXPECT_EQ(l.find_node("conv2")->name, "/conv2/Conv");
  EXPECT_EQ(l.value(l.outputs()[0]).shape, (Shape{kDynamic, 10}));

  ir::Graph r = build_model("resnet-s");
  EXPECT_NE(r.find_node("/layer2/downsample/downsample.0/Conv"), nullptr);
  EXPECT_NE(r.find_node("/layer1/Add"), nullptr);
  EXPECT_NE(r.find_node("/layer2/bn2/BatchNormalization"), nullptr);
}

TEST(Zoo, MatchesTheNodesTorchOnnxExportsForTheSameModules) {
  // Written by bench/torch_train.py --dump-names (torch.onnx.export, opset 13, training mode
  // preserved so BatchNorm and Dropout nodes stay).
  const std::string path =
      std::string(QSEARCH_SOURCE_DIR) + "/tests/train/data/torch_node_names.txt";
  FILE* f = std::fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr) << path;
  char line[512];
  std::string model;
  std::vector<std::string> expected;
  auto check = [&] {
    if (model.empty()) return;
    ir::Graph g = build_model(model);
    std::vector<std::string> got;
    for (const ir::Node& n : g.nodes()) got.push_back(n.name);
    EXPECT_EQ(got, expected) << model;
  };
  int models = 0;
  while (std::fgets(line, sizeof line, f)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.empty()) continue;
    if (s.rfind("model ", 0) == 0) {
      check();
      model = s.substr(6);
      expected.clear();
      ++models;
    } else {
      expected.push_back(s);
    }
  }
  check();
  std::fclose(f);
  EXPECT_EQ(models, static_cast<int>(zoo().size()));
}

TEST(Zoo, InitialisationIsPyTorchDefaultAndSeeded) {
  ir::Graph a = build_model("mlp", {.seed = 3});
  ir::Graph b = build_model("mlp", {.seed = 3});
  ir::Graph c = build_model("mlp", {.seed = 4});
  const Tensor& wa = a.value(*a.find_value("fc1.weight")).data;
  const Tensor& wb = b.value(*b.find_value("fc1.weight")).data;
  const Tensor& wc = c.value(*c.find_value("fc1.weight")).data;
  const float bound = 1.0f / std::sqrt(784.0f);
  double sum_sq = 0;
  float max_abs = 0;
  bool differs = false;
  for (int64_t i = 0; i < wa.numel(); ++i) {
    EXPECT_EQ(wa.data<float>()[i], wb.data<float>()[i]);
    differs |= wa.data<float>()[i] != wc.data<float>()[i];
    max_abs = std::max(max_abs, std::abs(wa.data<float>()[i]));
    sum_sq += wa.data<float>()[i] * wa.data<float>()[i];
  }
  EXPECT_TRUE(differs);
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.99f * bound);
  // U(-b, b) has variance b^2 / 3.
  EXPECT_NEAR(sum_sq / wa.numel(), bound * bound / 3, 0.02 * bound * bound);
  const Tensor& bias = a.value(*a.find_value("fc3.bias")).data;
  for (float v : bias.span<float>()) EXPECT_LE(std::abs(v), 1.0f / std::sqrt(128.0f));

  ir::Graph j = build_model("jsc-toy");
  for (float v : j.value(*j.find_value("seq_blocks.3.weight")).data.span<float>()) EXPECT_EQ(v, 1);
  for (float v : j.value(*j.find_value("seq_blocks.3.bias")).data.span<float>()) EXPECT_EQ(v, 0);
  for (float v : j.value(*j.find_value("seq_blocks.3.running_var")).data.span<float>()) {
    EXPECT_EQ(v, 1);
  }
  const ir::Node* bn = j.find_node("seq_blocks_3");
  ASSERT_NE(bn, nullptr);
  EXPECT_FLOAT_EQ(std::get<ir::BatchNormAttrs>(bn->attrs).momentum, 0.9f);
  EXPECT_FLOAT_EQ(std::get<ir::BatchNormAttrs>(bn->attrs).epsilon, 1e-5f);
}

TEST(Zoo, AdaptsToTheDataSetAndRejectsWhatItCannotTake) {
  ir::Graph g = build_model("jsc-hls4ml", {.input_shape = {10}, .num_classes = 3});
  EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, 3}));
  EXPECT_EQ(trainable_param_count(g), 10 * 64 + 64 + 64 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3);
  ir::Graph m = build_model("mlp", {.input_shape = {16}, .num_classes = 5});
  EXPECT_EQ(m.value(m.outputs()[0]).shape, (Shape{kDynamic, 5}));
  EXPECT_THROW(build_model("lenet5", {.input_shape = {16}}), Error);
  EXPECT_THROW(build_model("jsc-tiny", {.input_shape = {1, 28, 28}}), Error);
  try {
    build_model("lenet7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lenet5"), std::string::npos);
  }
}

TEST(Zoo, TrainableParamsExcludeRunningStatistics) {
  ir::Graph g = build_model("jsc-tiny");
  std::vector<ir::ValueId> p = trainable_values(g);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(g.value(p[0]).name, "seq_blocks.0.weight");
  EXPECT_EQ(g.value(p[1]).name, "seq_blocks.0.bias");
  EXPECT_EQ(g.value(p[2]).name, "seq_blocks.2.weight");
  EXPECT_EQ(g.value(p[3]).name, "seq_blocks.2.bias");
  std::vector<ir::ValueId> st = batchnorm_state_values(g);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(g.value(st[0]).name, "seq_blocks.0.running_mean");
}

}  // namespace
}  // namespace qsearch::train
