// Float steps and lowering of the modern-CNN operators (issue 11): HardSigmoid, HardSwish,
// GlobalMaxPool, general Pad, Resize. lower_float() hands these ops to lower_cnn_float(); the fake
// and int engines run them in float on their (dequantized) inputs: MASE quantizes none of them.
#pragma once

#include <string>

#include "ir/graph.h"
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

}  // namespace qsearch::runtime
