// Float steps and lowering of the modern-CNN operators (issue 11): HardSigmoid, HardSwish,
// GlobalMaxPool, general Pad, Resize. lower_float() hands these ops to lower_cnn_float(); the fake
// and int engines run them in float on their (dequantized) inputs: MASE quantizes none of them.
#pragma once

#include <string>

#include "ir/graph.h"
#include "kernels/fixed/zero_insert.h"
#include "kernels/ref/cnn_ops.h"
#include "runtime/step.h"

namespace qsearch::runtime {

class PlanBuilder;

// Lowers one of them for Mode::kFloat (and for the float parts of the other modes).
void lower_cnn_float(PlanBuilder& b, const ir::Node& n);

// inputs = {X}; HardSigmoid (swish = false) or HardSwish.
class HardSigmoidStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  float alpha = 0.2f, beta = 0.5f;
  bool swish = false;
  bool fast = true;
};

class GlobalMaxPoolStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  bool fast = true;
};

// inputs = {X}; the pads of every dim (the batch dim included: then the plan runs the batch
// whole).
class PadStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::PadParams params;  // in_shape filled per run from the batch
  bool fast = true;
};

// inputs = {X} (NCHW); H and W resized.
class ResizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::ResizeParams params;  // planes filled per run from the batch
  bool fast = true;
};

// inputs = {X}; a ConvTranspose's zero insertion (kernels/fixed/zero_insert.h) on float values
// (elem_size 4) or integer codes alike.
class ZeroInsertStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::fixed::ZeroInsertParams params;  // planes filled per run from the batch
  int elem_size = 4;
  bool reference = false;
};

// How a ConvTranspose node runs (ir::ConvTransposeAttrs): the zero insertion of its input
// [N, C, H, W], then a stride-1 convolution (`conv`) by the weight transform_conv_transpose_weight
// makes, of shape `weight_shape` = [M, C/group, kH, kW].
struct ConvTransposePlan {
  kernels::fixed::ZeroInsertParams zeros;
  ir::ConvAttrs conv;
  Shape weight_shape;
};
ConvTransposePlan conv_transpose_plan(const ir::ConvTransposeAttrs& a, int64_t in_h, int64_t in_w,
                                      const Shape& weight);
// W [C, M/group, kH, kW] -> W' [M, C/group, kH, kW], W'[g M/G + o, c, u, v] =
// W[g C/G + c, o, kH-1-u, kW-1-v]; elements of `elem_size` bytes (float or codes).
Tensor transform_conv_transpose_weight(const Tensor& w, int64_t group);

}  // namespace qsearch::runtime
