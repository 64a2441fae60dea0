// GRU / LSTM import (src/onnx/import_rnn.cc): the forms torch.onnx.export writes are accepted
// (tests/runtime/rnn_fixture_test.cc runs them); every unsupported attribute or input is a
// one-line error naming the node and the attribute.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "ir/graph.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;
using testing::set_float;
using testing::set_int;
using testing::set_string;

constexpr int64_t kT = 3, kI = 2, kH = 4;

// x [batch, T, I] -> Transpose -> GRU / LSTM (hidden 4) -> output `read` of the node ->
// Transpose to batch first -> "out".
ModelBuilder rnn_model(bool lstm, int read = 1,
                       const std::function<void(::onnx::NodeProto&)>& tweak = nullptr,
                       std::vector<std::string> extra_inputs = {}, int opset = 13) {
  ModelBuilder b(opset, {-1, kT, kI});
  const int64_t g = lstm ? 4 : 3;
  b.init<float>("W", {1, g * kH, kI}, std::vector<float>(g * kH * kI, 0.1f));
  b.init<float>("R", {1, g * kH, kH}, std::vector<float>(g * kH * kH, 0.1f));
  b.init<float>("B", {1, 2 * g * kH}, std::vector<float>(2 * g * kH, 0.1f));
  auto& t = b.node("Transpose", {"x"}, {"xt"}, "/Transpose");
  testing::set_ints(t, "perm", {1, 0, 2});
  std::vector<std::string> ins = {"xt", "W", "R", "B"};
  for (const auto& e : extra_inputs) ins.push_back(e);
  std::vector<std::string> outs = {"y", "y_h"};
  if (lstm) outs.push_back("y_c");
  auto& n = b.node(lstm ? "LSTM" : "GRU", ins, outs, lstm ? "/rnn/LSTM" : "/rnn/GRU");
  set_int(n, "hidden_size", kH);
  if (!lstm) set_int(n, "linear_before_reset", 1);
  if (tweak) tweak(n);
  auto& back = b.node("Transpose", {outs[read]}, {"out"}, "/Transpose_out");
  testing::set_ints(back, "perm",
                    read == 0 ? std::vector<int64_t>{2, 0, 1, 3} : std::vector<int64_t>{1, 0, 2});
  b.output("out", read == 0 ? 4 : 3);
  return b;
}

std::string error_of(const ModelBuilder& b) {
  try {
    import_model_bytes(b.bytes(), "m.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "import succeeded";
  return "";
}

#define EXPECT_HAS(text, part)                                                                     \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "missing '" << (part) << "' in:\n" \
                                                             << (text)

TEST(ImportRnn, OneNodePerOutputReadWithTheOutputsShape) {
  for (bool lstm : {false, true}) {
    for (int read = 0; read < (lstm ? 3 : 2); ++read) {
      const ir::Graph g = import_model_bytes(rnn_model(lstm, read).bytes(), "m.onnx");
      int rnn = 0;
      for (const ir::Node& n : g.nodes()) {
        if (n.kind != (lstm ? ir::OpKind::kLstm : ir::OpKind::kGru)) continue;
        ++rnn;
        EXPECT_EQ(std::get<ir::RnnAttrs>(n.attrs).output, read);
        EXPECT_EQ(ir::mase_op(g, n), lstm ? "lstm" : "gru");
        // T * D * G*H * (I + H) multiply-accumulates per sample.
        EXPECT_EQ(ir::macs_per_sample(g, n), kT * (lstm ? 4 : 3) * kH * (kI + kH));
      }
      EXPECT_EQ(rnn, 1);
      const Shape want = read == 0 ? Shape{kT, 1, kDynamic, kH} : Shape{1, kDynamic, kH};
      const ir::Node* t = g.find_node("/Transpose_out");
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(g.value(t->inputs[0]).shape, want);
    }
  }
}

TEST(ImportRnn, UnsupportedAttributesNameNodeAndAttribute) {
  EXPECT_HAS(error_of(rnn_model(false, 1, [](auto& n) { set_float(n, "clip", 3.0f); })),
             "node '/rnn/GRU' (GRU): attribute 'clip'");
  EXPECT_HAS(error_of(rnn_model(true, 1, [](auto& n) { set_int(n, "input_forget", 1); })),
             "node '/rnn/LSTM' (LSTM): attribute 'input_forget'");
  EXPECT_HAS(error_of(rnn_model(
                 false, 1, [](auto& n) { set_int(n, "layout", 1); }, {}, /*opset=*/14)),
             "node '/rnn/GRU' (GRU): attribute 'layout'");
  EXPECT_HAS(error_of(rnn_model(true, 1, [](auto& n) { set_string(n, "direction", "sideways"); })),
             "node '/rnn/LSTM' (LSTM): attribute 'direction'");
  EXPECT_HAS(error_of(rnn_model(true, 1,
                                [](auto& n) {
                                  auto& a = testing::add_attr(n, "activations",
                                                              ::onnx::AttributeProto::STRINGS);
                                  for (const char* s : {"Sigmoid", "Relu", "Tanh"})
                                    a.add_strings(s);
                                })),
             "node '/rnn/LSTM' (LSTM): attribute 'activations'");
  // linear_before_reset = 0 (the ONNX default): the model above sets 1, so build one without.
  ModelBuilder b(13, {-1, kT, kI});
  b.init<float>("W", {1, 3 * kH, kI}, std::vector<float>(3 * kH * kI, 0.1f));
  b.init<float>("R", {1, 3 * kH, kH}, std::vector<float>(3 * kH * kH, 0.1f));
  auto& t = b.node("Transpose", {"x"}, {"xt"}, "/Transpose");
  testing::set_ints(t, "perm", {1, 0, 2});
  auto& n = b.node("GRU", {"xt", "W", "R"}, {"y", "y_h"}, "/gru0");
  set_int(n, "hidden_size", kH);
  auto& back = b.node("Transpose", {"y_h"}, {"out"}, "/Transpose_out");
  testing::set_ints(back, "perm", {1, 0, 2});
  b.output("out", 3);
  EXPECT_HAS(error_of(b), "node '/gru0' (GRU): attribute 'linear_before_reset'");
}

TEST(ImportRnn, SequenceLensAndPeepholesAreRefused) {
  ModelBuilder b = rnn_model(false, 1, nullptr, {"lens"});
  b.init<int64_t>("lens", {1}, {kT});
  EXPECT_HAS(error_of(b), "node '/rnn/GRU' (GRU): input 'sequence_lens'");
  ModelBuilder c = rnn_model(true, 1, nullptr, {"", "", "", "P"});
  c.init<float>("P", {1, 3 * kH}, std::vector<float>(3 * kH, 0.0f));
  EXPECT_HAS(error_of(c), "node '/rnn/LSTM' (LSTM): input 'P' (peepholes)");
}

TEST(ImportRnn, BatchDependentZeroStateIsAnOmittedState) {
  // PyTorch's default state: ConstantOfShape([1, N, H]) of zeros, passed as initial_h.
  ModelBuilder b = rnn_model(false, 1, nullptr, {"", "h0"});
  b.node("Shape", {"x"}, {"shape"}, "/Shape");
  b.constant("zero", {}, {0});
  auto& gather = b.node("Gather", {"shape", "zero"}, {"n"}, "/Gather");
  set_int(gather, "axis", 0);
  b.constant("axes", {1}, {0});
  b.node("Unsqueeze", {"n", "axes"}, {"n1"}, "/Unsqueeze");
  b.constant("one", {1}, {1});
  b.constant("hid", {1}, {kH});
  auto& cat = b.node("Concat", {"one", "n1", "hid"}, {"dims"}, "/Concat");
  set_int(cat, "axis", 0);
  b.node("ConstantOfShape", {"dims"}, {"h0"}, "/ConstantOfShape");
  // The nodes above must come before the GRU: move the GRU and the Transpose after it (nodes 1
  // and 2) to the end.
  auto* nodes = b.model().mutable_graph()->mutable_node();
  for (int k = 0; k < 2; ++k) {
    for (int i = 1; i + 1 < nodes->size(); ++i) nodes->SwapElements(i, i + 1);
  }
  const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
  for (const ir::Node& n : g.nodes()) {
    if (n.kind == ir::OpKind::kGru) {
      ASSERT_EQ(n.inputs.size(), 5u);
      EXPECT_EQ(n.inputs[4], ir::kNoValue);
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
