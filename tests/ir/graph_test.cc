// Graph: building, finalize() (topological order, config names, symbolic shapes), verify(),
// mase_op, param_count, macs_per_sample, clone.
#include "ir/graph.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace qsearch::ir {
namespace {

#define EXPECT_HAS(text, part)                                                                     \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "missing '" << (part) << "' in:\n" \
                                                             << (text)

Tensor filled(Shape s, float v = 0.5f) {
  Tensor t(std::move(s), DType::kFloat32);
  for (float& x : t.span<float>()) x = v;
  return t;
}

// A small MLP built by hand: x [N, 784] -> fc1 -> relu -> fc2 -> y [N, 10].
struct Mlp {
  Graph g;
  ValueId x, h, r, y;
  Mlp() {
    x = g.add_input("x", {kDynamic, 784});
    ValueId w1 = g.add_constant("fc1.weight", filled({256, 784}));
    ValueId b1 = g.add_constant("fc1.bias", filled({256}));
    ValueId w2 = g.add_constant("fc2.weight", filled({10, 256}));
    h = g.add_value("h");
    r = g.add_value("r");
    y = g.add_value("y");
    g.add_node(Node{OpKind::kGemm, "/fc1/Gemm", {x, w1, b1}, {h}, GemmAttrs{.trans_b = true}, ""});
    g.add_node(Node{OpKind::kRelu, "/relu/Relu", {h}, {r}, NoAttrs{}, ""});
    g.add_node(Node{OpKind::kGemm, "/fc2/Gemm", {r, w2}, {y}, GemmAttrs{.trans_b = true}, ""});
    g.mark_output(y);
  }
};

std::string finalize_error(Graph& g) {
  try {
    g.finalize();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "finalize succeeded";
  return "";
}

TEST(Graph, FinalizeGivesSymbolicShapesAndConfigNames) {
  Mlp m;
  m.g.finalize();
  EXPECT_EQ(m.g.value(m.h).shape, (Shape{kDynamic, 256}));
  EXPECT_EQ(m.g.value(m.y).shape, (Shape{kDynamic, 10}));
  EXPECT_EQ(m.g.nodes()[0].config_name, "fc1");
  EXPECT_EQ(m.g.nodes()[1].config_name, "relu");
  EXPECT_EQ(m.g.nodes()[2].config_name, "fc2");
  EXPECT_EQ(m.g.find_node("fc2")->name, "/fc2/Gemm");
  EXPECT_EQ(m.g.find_node("/fc1/Gemm")->config_name, "fc1");
  EXPECT_EQ(m.g.find_node("nope"), nullptr);
  EXPECT_EQ(m.g.infer_shapes(32)[m.y], (Shape{32, 10}));
  EXPECT_EQ(m.g.consumers(m.h), (std::vector<NodeId>{1}));
}

TEST(Graph, MaseOpParamCountAndMacs) {
  Mlp m;
  m.g.finalize();
  const auto& n = m.g.nodes();
  EXPECT_EQ(mase_op(m.g, n[0]), "linear");
  EXPECT_EQ(mase_op(m.g, n[1]), "relu");
  EXPECT_EQ(weight_input(m.g, n[0]), 1);
  EXPECT_EQ(weight_input(m.g, n[1]), -1);
  EXPECT_EQ(param_count(m.g, n[0]), 256 * 784 + 256);
  EXPECT_EQ(param_count(m.g, n[2]), 10 * 256);
  EXPECT_EQ(param_count(m.g, n[1]), 0);
  EXPECT_EQ(macs_per_sample(m.g, n[0]), 256 * 784);
  EXPECT_EQ(macs_per_sample(m.g, n[2]), 10 * 256);
  EXPECT_EQ(macs_per_sample(m.g, n[1]), 0);
}

TEST(Graph, MaseOpOfConvBatchNormAndActivationMatMul) {
  Graph g;
  ValueId x = g.add_input("x", {kDynamic, 3, 8, 8});
  ValueId c = g.add_value("c"), b = g.add_value("b"), t = g.add_value("t"), y = g.add_value("y");
  g.add_node(Node{OpKind::kConv,
                  "/conv/Conv",
                  {x, g.add_constant("w", filled({4, 3, 3, 3}))},
                  {c},
                  ConvAttrs{{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1},
                  ""});
  std::vector<ValueId> bn_in = {c};
  for (const char* p : {"s", "bb", "m", "v"}) bn_in.push_back(g.add_constant(p, filled({4}, 1)));
  g.add_node(Node{OpKind::kBatchNorm, "/bn/BatchNormalization", bn_in, {b}, BatchNormAttrs{}, ""});
  g.add_node(Node{OpKind::kTranspose, "/Transpose", {b}, {t}, TransposeAttrs{{0, 1, 3, 2}}, ""});
  g.add_node(Node{OpKind::kMatMul, "/MatMul", {b, t}, {y}, NoAttrs{}, ""});
  g.mark_output(y);
  g.finalize();
  EXPECT_EQ(mase_op(g, g.nodes()[0]), "conv2d");
  EXPECT_EQ(mase_op(g, g.nodes()[1]), "batch_norm2d");
  EXPECT_EQ(mase_op(g, g.nodes()[2]), "permute");
  EXPECT_EQ(mase_op(g, g.nodes()[3]), "matmul");
  EXPECT_EQ(param_count(g, g.nodes()[0]), 4 * 3 * 3 * 3);
  EXPECT_EQ(param_count(g, g.nodes()[1]), 16);
  EXPECT_EQ(macs_per_sample(g, g.nodes()[0]), 4 * 8 * 8 * 3 * 3 * 3);
  EXPECT_EQ(macs_per_sample(g, g.nodes()[3]), 4 * 8 * 8 * 8);
  EXPECT_EQ(g.nodes()[3].config_name, "matmul");
  EXPECT_EQ(g.nodes()[1].config_name, "bn");
}

TEST(Graph, TopologicalSortKeepsSortedOrderAndFixesUnsorted) {
  Graph g;
  ValueId x = g.add_input("x", {kDynamic, 4});
  ValueId a = g.add_value("a"), b = g.add_value("b"), y = g.add_value("y");
  // Added consumer-first.
  g.add_node(Node{OpKind::kAdd, "/Add", {a, b}, {y}, NoAttrs{}, ""});
  g.add_node(Node{OpKind::kRelu, "/r1/Relu", {x}, {a}, NoAttrs{}, ""});
  g.add_node(Node{OpKind::kSigmoid, "/s/Sigmoid", {a}, {b}, NoAttrs{}, ""});
  g.mark_output(y);
  g.finalize();
  EXPECT_EQ(g.nodes()[0].name, "/r1/Relu");
  EXPECT_EQ(g.nodes()[1].name, "/s/Sigmoid");
  EXPECT_EQ(g.nodes()[2].name, "/Add");
  EXPECT_EQ(g.value(y).producer, 2);
  EXPECT_EQ(g.value(a).producer, 0);
}

TEST(Graph, CycleAndDanglingInputAreErrors) {
  Graph g;
  ValueId x = g.add_input("x", {kDynamic, 4});
  ValueId a = g.add_value("a"), b = g.add_value("b");
  g.add_node(Node{OpKind::kAdd, "/a/Add", {x, b}, {a}, NoAttrs{}, ""});
  g.add_node(Node{OpKind::kRelu, "/b/Relu", {a}, {b}, NoAttrs{}, ""});
  g.mark_output(b);
  EXPECT_HAS(finalize_error(g), "graph has a cycle through node '/a/Add'");

  Graph d;
  ValueId dx = d.add_input("x", {kDynamic, 4});
  ValueId ghost = d.add_value("ghost"), y = d.add_value("y");
  d.add_node(Node{OpKind::kAdd, "/Add", {dx, ghost}, {y}, NoAttrs{}, ""});
  d.mark_output(y);
  EXPECT_HAS(finalize_error(d), "node '/Add' (Add): input 'ghost' is not computed before the node");
}

TEST(Graph, VerifyErrors) {
  {
    Graph g;
    g.add_input("x", {kDynamic, 4});
    EXPECT_HAS(finalize_error(g), "graph has no outputs");
  }
  {
    Graph g;
    ValueId x = g.add_input("x", {kDynamic, 4});
    ValueId y = g.add_value("y");
    g.add_node(Node{OpKind::kAdd, "/Add", {x}, {y}, NoAttrs{}, ""});
    g.mark_output(y);
    EXPECT_HAS(finalize_error(g), "node '/Add' (Add): has 1 inputs, expected 2..2");
  }
  {
    Graph g;
    ValueId x = g.add_input("x", {kDynamic, 4});
    ValueId y = g.add_value("y");
    g.add_node(Node{OpKind::kFlatten, "/Flatten", {x}, {y}, GemmAttrs{}, ""});
    g.mark_output(y);
    EXPECT_HAS(finalize_error(g), "attributes of the wrong kind");
  }
  {
    // Stride 0 is caught by verify() before shape inference could divide by it.
    Graph g;
    ValueId x = g.add_input("x", {kDynamic, 1, 4, 4});
    ValueId y = g.add_value("y");
    g.add_node(Node{OpKind::kMaxPool,
                    "/MaxPool",
                    {x},
                    {y},
                    PoolAttrs{{2, 2}, {0, 1}, {1, 1}, {0, 0, 0, 0}, false, false},
                    ""});
    g.mark_output(y);
    EXPECT_HAS(finalize_error(g), "kernel, strides and dilations must be >= 1");
  }
  {
    Graph g;
    g.add_input("x", {kDynamic, 4});
    ValueId never = g.add_value("never");
    g.mark_output(never);
    EXPECT_HAS(finalize_error(g), "graph output 'never' is never computed");
  }
  {
    Graph g;
    ValueId x = g.add_input("x", {kDynamic, 4});
    ValueId y = g.add_value("y");
    g.add_node(Node{OpKind::kRelu, "/r", {x}, {y}, NoAttrs{}, ""});
    EXPECT_THROW(g.add_node(Node{OpKind::kRelu, "/r2", {x}, {y}, NoAttrs{}, ""}), Error);
    EXPECT_THROW(g.add_node(Node{OpKind::kRelu, "/r3", {x}, {42}, NoAttrs{}, ""}), Error);
  }
}

TEST(Graph, ConfigNamesFollowTorchModulePaths) {
  Graph g;
  ValueId v = g.add_input("x", {kDynamic, 4});
  auto add = [&](OpKind k, const std::string& name) {
    ValueId y = g.add_value(name + "_out");
    g.add_node(Node{k, name, {v}, {y}, NoAttrs{}, ""});
    v = y;
  };
  add(OpKind::kRelu, "/seq_blocks/seq_blocks.2/Relu");         // Sequential child, leaf
  add(OpKind::kRelu, "/layer1/layer1.0/conv1/Relu");           // nested module, leaf
  add(OpKind::kRelu, "/layer2/downsample/downsample.0/Relu");  // container inside a module
  add(OpKind::kSigmoid, "/layer1/layer1.0/Sigmoid");           // op in a non-leaf module
  add(OpKind::kTanh, "/head/Tanh");                            // a module with two nodes ...
  add(OpKind::kRelu, "/head/Relu");                            // ... gets <module>_<op>
  add(OpKind::kRelu, "/Relu");                                 // top level
  add(OpKind::kRelu, "/Relu_1");                               // top level again: deduplicated
  add(OpKind::kSigmoid, "Sigmoid_7");                          // no scope at all
  add(OpKind::kRelu, "/0/Relu");                               // nn.Sequential at the top
  g.mark_output(v);
  g.nodes()[9].config_name = "kept";  // set by a builder: kept
  g.finalize();
  std::vector<std::string> names;
  for (const Node& n : g.nodes()) names.push_back(n.config_name);
  EXPECT_EQ(names, (std::vector<std::string>{"seq_blocks_2", "layer1_0_conv1",
                                             "layer2_downsample_0", "layer1_0_sigmoid", "head_tanh",
                                             "head_relu", "relu", "relu_1", "sigmoid", "kept"}));
}

TEST(Graph, CloneDeepCopiesConstants) {
  Mlp m;
  m.g.finalize();
  Graph c = m.g.clone();
  ValueId w = m.g.nodes()[0].inputs[1];
  c.value(w).data.data<float>()[0] = 42.0f;
  EXPECT_EQ(m.g.value(w).data.data<float>()[0], 0.5f);
  EXPECT_EQ(c.nodes().size(), m.g.nodes().size());
}

TEST(Graph, ToStringListsNodes) {
  Mlp m;
  m.g.finalize();
  std::string s = to_string(m.g);
  EXPECT_HAS(s, "input  x [?, 784] float32");
  EXPECT_HAS(s, "fc1");
  EXPECT_HAS(s, "output y [?, 10]");
}

TEST(Ops, NamesAndAttrEquality) {
  EXPECT_EQ(op_name(OpKind::kBatchNorm), "BatchNormalization");
  EXPECT_EQ(all_ops().size(),
            51u);  // issue 11: Cast, Equal, Not, And, Where, Expand; GlobalMaxPool,
  // HardSigmoid, HardSwish, Pad, Resize, ConvTranspose; GRU, LSTM; issue 14: Im2Col3d
  EXPECT_EQ(op_name(OpKind::kGru), "GRU");
  EXPECT_EQ(op_name(OpKind::kLstm), "LSTM");
  EXPECT_EQ(op_name(OpKind::kLayerNorm), "LayerNormalization");
  EXPECT_EQ(op_name(OpKind::kLogSoftmax), "LogSoftmax");
  Attrs a = ConvAttrs{{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
  Attrs b = a;
  EXPECT_TRUE(a == b);
  std::get<ConvAttrs>(b).group = 2;
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a == Attrs{NoAttrs{}});
}

}  // namespace
}  // namespace qsearch::ir
