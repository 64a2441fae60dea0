// Internal to network*.cc: the per-node state of a Network and the kernel parameter structs
// built from IR attributes and concrete shapes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kernels/gemm.h"
#include "kernels/params.h"
#include "runtime/cnn_steps.h"
#include "train/grad_kernels.h"
#include "train/network.h"

namespace qsearch::train {

// A 1-D Conv (x [N, C, L]; the importer's ir::ConvAttrs of height 1: kernel, stride and
// dilation 1 and no padding on H) is the 2-D Conv of [N, C, 1, L]: same memory layout of input,
// output and weight ([Co, Ci/g, k] = [Co, Ci/g, 1, k]).
inline kernels::Conv2dParams conv_params(const ir::ConvAttrs& a, const Shape& x, const Shape& y) {
  const bool one_d = x.size() == 3;
  kernels::Conv2dParams p;
  p.batch = x[0];
  p.in_channels = x[1];
  p.in_h = one_d ? 1 : x[2];
  p.in_w = one_d ? x[2] : x[3];
  p.out_channels = y[1];
  p.out_h = one_d ? 1 : y[2];
  p.out_w = one_d ? y[2] : y[3];
  p.kernel_h = a.kernel[0];
  p.kernel_w = a.kernel[1];
  p.stride_h = a.strides[0];
  p.stride_w = a.strides[1];
  p.dilation_h = a.dilations[0];
  p.dilation_w = a.dilations[1];
  p.pad_top = a.pads[0];
  p.pad_left = a.pads[1];
  p.groups = a.group;
  return p;
}

inline kernels::Pool2dParams pool_params(const ir::PoolAttrs& a, const Shape& x, const Shape& y) {
  kernels::Pool2dParams p;
  p.batch = x[0];
  p.channels = x[1];
  p.in_h = x[2];
  p.in_w = x[3];
  p.out_h = y[2];
  p.out_w = y[3];
  p.kernel_h = a.kernel[0];
  p.kernel_w = a.kernel[1];
  p.stride_h = a.strides[0];
  p.stride_w = a.strides[1];
  p.dilation_h = a.dilations[0];
  p.dilation_w = a.dilations[1];
  p.pad_top = a.pads[0];
  p.pad_left = a.pads[1];
  p.pad_bottom = a.pads[2];
  p.pad_right = a.pads[3];
  p.count_include_pad = a.count_include_pad;
  return p;
}

inline kernels::BatchNormParams bn_params(const ir::BatchNormAttrs& a, const Shape& x) {
  kernels::BatchNormParams p;
  p.batch = x[0];
  p.channels = x[1];
  p.spatial = 1;
  for (size_t d = 2; d < x.size(); ++d) p.spatial *= x[d];
  p.epsilon = a.epsilon;
  return p;
}

// Strides of `in` broadcast to the output shape `out` (0 on broadcast dims), numpy rules.
inline kernels::BinaryParams broadcast_params(const Shape& a, const Shape& b, const Shape& out) {
  kernels::BinaryParams p;
  p.op = kernels::BinaryOp::kAdd;
  p.rank = static_cast<int>(out.size());
  auto strides = [&](const Shape& s, kernels::Dims& st) {
    int64_t stride = 1;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int k = d - (p.rank - static_cast<int>(s.size()));
      const int64_t dim = k >= 0 ? s[k] : 1;
      st[d] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  };
  for (int d = 0; d < p.rank; ++d) p.shape[d] = out[d];
  strides(a, p.a_stride);
  strides(b, p.b_stride);
  return p;
}

struct Network::Step {
  const ir::Node* node = nullptr;
  int index = 0;
  bool alias = false;  // output shares the input's buffer (Flatten, Reshape, Identity)
  // Gemm / MatMul
  bool trans_b = false;
  float alpha = 1.0f, beta = 1.0f;
  bool scalar_bias = false;
  std::vector<float> bias_buf;  // beta * C broadcast to [N]
  Tensor tmp;                   // transposes for the weight gradient
  kernels::PackedB packed;      // B operands, reused from step to step
  // BatchNorm
  std::vector<float> save_mean, save_invstd;
  // A BatchNorm whose output only a ReLU reads: in training, the BatchNorm step runs the ReLU's
  // forward and backward in its own passes (batch_norm_relu_*), and the ReLU step (relu_fused)
  // only accounts for them. relu_out: the ReLU's output value, on the BatchNorm step.
  ir::ValueId relu_out = -1;
  bool relu_fused = false;
  // Dropout
  std::vector<uint8_t> mask;
  float keep_scale = 1.0f;
  // MatMul of two activations (shapes resolved per batch size)
  bool act_matmul = false;
  int64_t mm_batch = -1;
  BatchedMatMul mm;
  // Transpose
  std::vector<int64_t> perm, inv_perm;
  // Mul / Div by a constant scalar: y = x * scalar, or x / scalar when divide
  float scalar = 1.0f;
  bool divide = false;
  int scalar_input = 1;  // which input is the constant
  // LayerNorm: normalised size, per-row statistics
  int64_t ln_n = 0;
  std::vector<float> ln_mean, ln_invstd;
  // ConvTranspose: the zero insertion and stride-1 conv it runs as (runtime/cnn_steps.h), the
  // last forward pass's zero-inserted input (for the weight gradient) and transformed weight.
  runtime::ConvTransposePlan ct;
  std::vector<float> ct_zeros;
  Tensor ct_weight;
};

}  // namespace qsearch::train
