// infer_node_shape / Graph::infer_shapes: the shape contract of every op.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "ir/graph.h"

namespace qsearch::ir {
namespace {

Shape infer(OpKind kind, Attrs attrs, std::vector<Shape> ins) {
  Node n{kind, "/n", {}, {0}, std::move(attrs), ""};
  std::vector<const Shape*> ptrs;
  for (size_t i = 0; i < ins.size(); ++i) {
    n.inputs.push_back(static_cast<ValueId>(i));
    ptrs.push_back(&ins[i]);
  }
  return infer_node_shape(n, ptrs);
}

std::string error(OpKind kind, Attrs attrs, std::vector<Shape> ins) {
  try {
    infer(kind, std::move(attrs), std::move(ins));
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

#define EXPECT_HAS(text, part)                                                                     \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "missing '" << (part) << "' in:\n" \
                                                             << (text)

ConvAttrs conv(std::array<int64_t, 2> k, std::array<int64_t, 2> s = {1, 1},
               std::array<int64_t, 2> d = {1, 1}, std::array<int64_t, 4> p = {0, 0, 0, 0},
               int64_t group = 1) {
  return ConvAttrs{k, s, d, p, group};
}

PoolAttrs pool(std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 4> p,
               bool ceil_mode, std::array<int64_t, 2> d = {1, 1}) {
  return PoolAttrs{k, s, d, p, ceil_mode, false};
}

TEST(ShapeInference, ConvPaddingStridesDilationsGroups) {
  // out = floor((in + pb + pe - (d * (k - 1) + 1)) / s) + 1
  EXPECT_EQ(infer(OpKind::kConv, conv({3, 3}), {{2, 1, 28, 28}, {8, 1, 3, 3}}),
            (Shape{2, 8, 26, 26}));
  EXPECT_EQ(infer(OpKind::kConv, conv({3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}),
                  {{2, 1, 28, 28}, {8, 1, 3, 3}, {8}}),
            (Shape{2, 8, 28, 28}));
  EXPECT_EQ(infer(OpKind::kConv, conv({3, 3}, {2, 2}), {{1, 1, 28, 28}, {4, 1, 3, 3}}),
            (Shape{1, 4, 13, 13}));
  // Dilation 2: effective kernel 5 on H, asymmetric pads on W, stride 3 on W.
  EXPECT_EQ(infer(OpKind::kConv, conv({3, 2}, {1, 3}, {2, 1}, {0, 1, 0, 2}),
                  {{1, 2, 10, 10}, {6, 2, 3, 2}}),
            (Shape{1, 6, 6, 4}));
  // Depthwise: group = channels, weight [C, 1, k, k].
  EXPECT_EQ(infer(OpKind::kConv, conv({3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 4),
                  {{1, 4, 5, 5}, {4, 1, 3, 3}}),
            (Shape{1, 4, 5, 5}));
}

TEST(ShapeInference, ConvErrors) {
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}), {{1, 2, 8, 8}, {4, 1, 3, 3}}),
             "input has 2 channels");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 2),
                   {{1, 2, 8, 8}, {3, 1, 3, 3}}),
             "not divisible by group");
  EXPECT_HAS(error(OpKind::kConv, conv({5, 5}), {{1, 1, 8, 8}, {4, 1, 3, 3}}),
             "kernel_shape does not match");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}), {{1, 1, 8, 8, 8}, {4, 1, 3, 3, 3}}),
             "only 1-D (NCL) and 2-D (NCHW) convolution");
  // Conv1d: the height entries of the attrs must be trivial.
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}), {{1, 1, 8}, {4, 1, 3}}),
             "a 1-D convolution has height entries");
  EXPECT_EQ(
      infer(OpKind::kConv, conv({1, 3}, {1, 2}, {1, 1}, {0, 1, 0, 0}), {{2, 1, 8}, {4, 1, 3}}),
      (Shape{2, 4, 4}));
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}), {{1, 1, 2, 2}, {4, 1, 3, 3}}), "does not fit");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}, {0, 1}), {{1, 1, 8, 8}, {4, 1, 3, 3}}),
             "kernel, strides and dilations must be in 1..");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}, {1, 1}, {1, 1}, {-1, 0, 0, 0}),
                   {{1, 1, 8, 8}, {4, 1, 3, 3}}),
             "pads must be in 0..");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}), {{1, 1, 8, 8}, {4, 1, 3, 3}, {3}}),
             "bias has shape [3], expected [4]");
  EXPECT_HAS(error(OpKind::kConv, conv({3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0),
                   {{1, 1, 8, 8}, {4, 1, 3, 3}}),
             "group must be >= 1");
}

TEST(ShapeInference, PoolCeilModeAndPads) {
  EXPECT_EQ(infer(OpKind::kMaxPool, pool({2, 2}, {2, 2}, {0, 0, 0, 0}, false), {{1, 3, 7, 7}}),
            (Shape{1, 3, 3, 3}));
  EXPECT_EQ(infer(OpKind::kMaxPool, pool({2, 2}, {2, 2}, {0, 0, 0, 0}, true), {{1, 3, 7, 7}}),
            (Shape{1, 3, 4, 4}));
  // ceil_mode: a last window that would start in the end padding is dropped (PyTorch rule):
  // in 5, k 2, s 2, pads 1/1: span 5, ceil(5/2)+1 = 4, but window 3 starts at 6 >= 5+1 -> 3.
  EXPECT_EQ(infer(OpKind::kMaxPool, pool({2, 2}, {2, 2}, {1, 1, 1, 1}, true), {{1, 1, 5, 5}}),
            (Shape{1, 1, 3, 3}));
  EXPECT_EQ(infer(OpKind::kAveragePool, pool({3, 3}, {1, 1}, {1, 1, 1, 1}, false), {{2, 4, 6, 6}}),
            (Shape{2, 4, 6, 6}));
  // Dilated max pool: effective kernel 3.
  EXPECT_EQ(
      infer(OpKind::kMaxPool, pool({2, 2}, {1, 1}, {0, 0, 0, 0}, false, {2, 2}), {{1, 1, 6, 6}}),
      (Shape{1, 1, 4, 4}));
  EXPECT_HAS(error(OpKind::kMaxPool, pool({2, 2}, {1, 1}, {0, 0, 0, 0}, false), {{1, 6, 6}}),
             "only 2-D pooling");
  EXPECT_HAS(error(OpKind::kMaxPool, pool({4, 4}, {1, 1}, {0, 0, 0, 0}, false), {{1, 1, 3, 3}}),
             "window does not fit");
  EXPECT_EQ(infer(OpKind::kGlobalAveragePool, NoAttrs{}, {{2, 5, 7, 3}}), (Shape{2, 5, 1, 1}));
}

TEST(ShapeInference, Broadcast) {
  EXPECT_EQ(infer(OpKind::kAdd, NoAttrs{}, {{2, 3, 4}, {4}}), (Shape{2, 3, 4}));
  EXPECT_EQ(infer(OpKind::kMul, NoAttrs{}, {{2, 1, 4}, {3, 1}}), (Shape{2, 3, 4}));
  EXPECT_EQ(infer(OpKind::kDiv, NoAttrs{}, {{5}, {}}), (Shape{5}));
  EXPECT_EQ(infer(OpKind::kSub, NoAttrs{}, {{1}, {2, 6}}), (Shape{2, 6}));
  EXPECT_HAS(error(OpKind::kAdd, NoAttrs{}, {{2, 3}, {4}}), "do not broadcast");
}

TEST(ShapeInference, GemmAndMatMul) {
  EXPECT_EQ(infer(OpKind::kGemm, GemmAttrs{1, 1, false, true}, {{8, 784}, {32, 784}, {32}}),
            (Shape{8, 32}));
  EXPECT_EQ(infer(OpKind::kGemm, GemmAttrs{1, 1, true, false}, {{784, 8}, {784, 32}}),
            (Shape{8, 32}));
  EXPECT_HAS(error(OpKind::kGemm, GemmAttrs{}, {{8, 4}, {5, 3}}), "inner dimensions differ");
  EXPECT_HAS(error(OpKind::kGemm, GemmAttrs{}, {{8, 4}, {4, 3}, {2, 8, 3}}),
             "does not broadcast to the output");
  EXPECT_EQ(infer(OpKind::kMatMul, NoAttrs{}, {{2, 5, 3}, {3, 4}}), (Shape{2, 5, 4}));
  EXPECT_EQ(infer(OpKind::kMatMul, NoAttrs{}, {{3}, {3, 4}}), (Shape{4}));
  EXPECT_EQ(infer(OpKind::kMatMul, NoAttrs{}, {{2, 1, 5, 3}, {6, 3, 2}}), (Shape{2, 6, 5, 2}));
}

TEST(ShapeInference, ReshapeZeroAndMinusOne) {
  EXPECT_EQ(infer(OpKind::kReshape, ReshapeAttrs{{0, -1}, false}, {{4, 1, 28, 28}}),
            (Shape{4, 784}));
  EXPECT_EQ(infer(OpKind::kReshape, ReshapeAttrs{{-1, 7, 0}, false}, {{2, 14, 3}}),
            (Shape{4, 7, 3}));
  // allowzero: 0 is a literal zero-size dim.
  EXPECT_EQ(infer(OpKind::kReshape, ReshapeAttrs{{0, 5}, true}, {{0, 3}}), (Shape{0, 5}));
  EXPECT_HAS(error(OpKind::kReshape, ReshapeAttrs{{-1, -1}, false}, {{4, 4}}), "more than one -1");
  EXPECT_HAS(error(OpKind::kReshape, ReshapeAttrs{{5, -1}, false}, {{4, 4}}), "cannot reshape");
  EXPECT_HAS(error(OpKind::kReshape, ReshapeAttrs{{3, 3}, false}, {{4, 4}}), "cannot reshape");
  EXPECT_HAS(error(OpKind::kReshape, ReshapeAttrs{{-5, 4}, false}, {{4, 4}}), "below -1");
  EXPECT_HAS(error(OpKind::kReshape, ReshapeAttrs{{0, 0, 0}, false}, {{4, 4}}),
             "refers to a missing input dim");
  EXPECT_HAS(
      error(OpKind::kReshape, ReshapeAttrs{{int64_t{1} << 40, int64_t{1} << 40}, false}, {{4, 4}}),
      "too large");
}

TEST(ShapeInference, FlattenTransposeConcatSoftmaxBatchNorm) {
  EXPECT_EQ(infer(OpKind::kFlatten, AxisAttrs{1}, {{2, 3, 4}}), (Shape{2, 12}));
  EXPECT_EQ(infer(OpKind::kFlatten, AxisAttrs{0}, {{2, 3, 4}}), (Shape{1, 24}));
  EXPECT_EQ(infer(OpKind::kFlatten, AxisAttrs{-1}, {{2, 3, 4}}), (Shape{6, 4}));
  EXPECT_HAS(error(OpKind::kFlatten, AxisAttrs{4}, {{2, 3, 4}}), "axis out of range");
  EXPECT_EQ(infer(OpKind::kTranspose, TransposeAttrs{{0, 2, 1}}, {{2, 3, 4}}), (Shape{2, 4, 3}));
  EXPECT_EQ(infer(OpKind::kTranspose, TransposeAttrs{}, {{2, 3, 4}}), (Shape{4, 3, 2}));
  EXPECT_HAS(error(OpKind::kTranspose, TransposeAttrs{{0, 0, 1}}, {{2, 3, 4}}),
             "not a permutation");
  EXPECT_EQ(infer(OpKind::kConcat, AxisAttrs{1}, {{2, 3}, {2, 5}, {2, 1}}), (Shape{2, 9}));
  EXPECT_EQ(infer(OpKind::kConcat, AxisAttrs{-2}, {{2, 3}, {4, 3}}), (Shape{6, 3}));
  EXPECT_HAS(error(OpKind::kConcat, AxisAttrs{1}, {{2, 3}, {3, 3}}), "differ outside axis");
  EXPECT_EQ(infer(OpKind::kSoftmax, AxisAttrs{-1}, {{2, 10}}), (Shape{2, 10}));
  EXPECT_HAS(error(OpKind::kSoftmax, AxisAttrs{2}, {{2, 10}}), "out of range");
  EXPECT_EQ(infer(OpKind::kBatchNorm, BatchNormAttrs{}, {{2, 3, 4, 4}, {3}, {3}, {3}, {3}}),
            (Shape{2, 3, 4, 4}));
  EXPECT_HAS(error(OpKind::kBatchNorm, BatchNormAttrs{}, {{2, 3, 4, 4}, {3}, {3}, {4}, {3}}),
             "parameter 3 has shape [4], expected [3]");
}

// Issue 8 item 6: LogSoftmax keeps its input's shape, checks its axis like Softmax and needs
// AxisAttrs.
TEST(ShapeInference, LogSoftmaxKeepsTheShapeAndChecksTheAxis) {
  EXPECT_EQ(infer(OpKind::kLogSoftmax, AxisAttrs{-1}, {{2, 10}}), (Shape{2, 10}));
  EXPECT_EQ(infer(OpKind::kLogSoftmax, AxisAttrs{1}, {{2, 3, 4}}), (Shape{2, 3, 4}));
  EXPECT_HAS(error(OpKind::kLogSoftmax, AxisAttrs{2}, {{2, 10}}), "out of range");
  EXPECT_HAS(error(OpKind::kLogSoftmax, AxisAttrs{-3}, {{2, 10}}), "out of range");
  EXPECT_HAS(error(OpKind::kLogSoftmax, NoAttrs{}, {{2, 10}}), "attributes of the wrong kind");
}

TEST(ShapeInference, WrongAttributeKindIsAnErrorNotACrash) {
  EXPECT_HAS(error(OpKind::kConv, NoAttrs{}, {{1, 1, 4, 4}, {1, 1, 3, 3}}),
             "attributes of the wrong kind");
  EXPECT_HAS(error(OpKind::kRelu, NoAttrs{}, {}), "missing input 0");
}

TEST(ShapeInference, HugeShapesAreRejected) {
  EXPECT_HAS(error(OpKind::kGemm, GemmAttrs{}, {{int64_t{1} << 30, 4}, {4, int64_t{1} << 30}}),
             "more than 2^48 elements");
  EXPECT_HAS(error(OpKind::kConcat, AxisAttrs{0},
                   {{int64_t{1} << 62, 1}, {int64_t{1} << 62, 1}, {int64_t{1} << 62, 1}}),
             "overflows");
}

}  // namespace
}  // namespace qsearch::ir
