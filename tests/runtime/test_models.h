// Hand-built models for the runtime tests (the shapes of the issue-2 benchmark models):
//   make_mlp({784, 256, 128, 10}): Flatten, then Gemm(transB) + Relu per hidden layer.
//   make_residual_cnn(): conv-bn-relu-maxpool, a residual block
//   (conv-bn-relu-conv-bn + skip, relu), maxpool, flatten, gemm; input [B, 1, 28, 28].
#pragma once

#include <cmath>
#include <vector>

#include "runtime/runtime_test_util.h"

namespace qsearch::runtime::testing {

inline ir::Graph make_mlp(const std::vector<int64_t>& sizes, uint64_t seed = 1) {
  GraphMaker m({kDynamic, 1, 28, 28});
  ir::ValueId h = m.op(ir::OpKind::kFlatten, {m.input()}, ir::AxisAttrs{1});
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const float r = 1.0f / std::sqrt(static_cast<float>(sizes[l]));
    ir::ValueId w = m.constant({sizes[l + 1], sizes[l]}, seed + 2 * l, -r, r);
    ir::ValueId b = m.constant({sizes[l + 1]}, seed + 2 * l + 1, -r, r);
    h = m.op(ir::OpKind::kGemm, {h, w, b}, ir::GemmAttrs{.trans_b = true});
    if (l + 2 < sizes.size()) h = m.op(ir::OpKind::kRelu, {h});
  }
  return m.finish(h);
}

inline ir::Graph make_residual_cnn(int64_t channels = 16, uint64_t seed = 1) {
  GraphMaker m({kDynamic, 1, 28, 28});
  auto conv_bn = [&](ir::ValueId x, int64_t cin) {
    const float r = 1.0f / std::sqrt(static_cast<float>(cin * 9));
    ir::ValueId w = m.constant({channels, cin, 3, 3}, seed++, -r, r);
    ir::ValueId b = m.constant({channels}, seed++, -r, r);
    ir::ValueId y =
        m.op(ir::OpKind::kConv, {x, w, b}, ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
    ir::ValueId gamma = m.constant({channels}, seed++, 0.5f, 1.5f);
    ir::ValueId beta = m.constant({channels}, seed++, -0.2f, 0.2f);
    ir::ValueId mean = m.constant({channels}, seed++, -0.2f, 0.2f);
    ir::ValueId var = m.constant({channels}, seed++, 0.5f, 2.0f);
    return m.op(ir::OpKind::kBatchNorm, {y, gamma, beta, mean, var}, ir::BatchNormAttrs{});
  };
  const ir::PoolAttrs pool{.kernel = {2, 2}, .strides = {2, 2}};
  ir::ValueId x1 = m.op(ir::OpKind::kMaxPool, {m.op(ir::OpKind::kRelu, {conv_bn(m.input(), 1)})},
                        pool);  // 14x14
  ir::ValueId y = m.op(ir::OpKind::kRelu, {conv_bn(x1, channels)});
  y = conv_bn(y, channels);
  y = m.op(ir::OpKind::kRelu, {m.op(ir::OpKind::kAdd, {y, x1})});
  y = m.op(ir::OpKind::kMaxPool, {y}, pool);  // 7x7
  y = m.op(ir::OpKind::kFlatten, {y}, ir::AxisAttrs{1});
  const int64_t feat = channels * 49;
  const float r = 1.0f / std::sqrt(static_cast<float>(feat));
  ir::ValueId w = m.constant({10, feat}, seed++, -r, r);
  ir::ValueId b = m.constant({10}, seed++, -r, r);
  return m.finish(m.op(ir::OpKind::kGemm, {y, w, b}, ir::GemmAttrs{.trans_b = true}));
}

}  // namespace qsearch::runtime::testing
