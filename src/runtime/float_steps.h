// Internal: the steps of Mode::kFloat, created by float_lowering.cc.
//
// Fast steps own what make_plan() prepared (packed weights, folded biases); reference steps
// (`fast == false` or *RefStep) read every operand from slots and call kernels/ref/. Kernel
// params are rebuilt for the batch of each run() from the slots' batch-affine shapes.
#pragma once

#include <array>

#include <limits>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/ops.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/params.h"
#include "kernels/winograd.h"
#include "runtime/plan.h"
#include "runtime/step.h"

namespace qsearch::runtime {

// What a fused epilogue adds after the sum, and its label for describe().
struct FusedEpilogue {
  Tensor bias;  // [N] (gemm) or [M] (conv); empty = none
  float alpha = 1.0f;
  SlotId residual = kNoSlot;  // same shape as the output
  bool residual_after_clamp = false;
  float clamp_min = -std::numeric_limits<float>::infinity();
  float clamp_max = std::numeric_limits<float>::infinity();
  bool silu = false;  // conv steps only: a Sigmoid and Mul fused as kernels::Epilogue::silu
  std::vector<std::string> fused;  // node names folded into the step, for describe()
  kernels::Epilogue make(const RunContext& ctx) const;
};

// inputs = {A [.., K]} (+ residual). Y = epilogue(A * packed B), M = numel(A) / K.
class GemmPackedStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::PackedB packed;
  FusedEpilogue epilogue;
};

// inputs = {A, B, C?}: ONNX Gemm on the reference kernel.
class GemmRefStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "gemm_f32 ref"; }
  ir::GemmAttrs attrs;
};

// inputs = {A, B}: numpy matmul (any ranks, broadcast batch), e.g. of two activations, on the
// fast kernel (kernels/matmul.h) or the reference.
class MatMulStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return fast ? "matmul_f32" : "matmul_f32 ref"; }
  bool fast = false;
};

// inputs = {X} (+ residual). Y = epilogue(conv(X, packed W)).
class ConvPackedStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  // Mode::kFloat only (fake quantization keeps the direct conv's bits, docs/numerics.md): sets
  // `winograd` when `algorithm` asks for kernels/winograd.h and it applies (kAuto: when its cost
  // model prefers it at max_batch). Once per plan: every run, at any batch, then takes that
  // kernel. x / y: the conv's shapes.
  void choose_winograd(const SymShape& x, const SymShape& y, int64_t max_batch,
                       ConvAlgorithm algorithm);
  ir::ConvAttrs attrs;
  kernels::PackedConvWeights packed;  // Winograd computes its filters from this packing too
  bool winograd = false;
  FusedEpilogue epilogue;
  // The graph's kernel size when lowering cut off taps that only read the padding (attrs and
  // packed have the cropped size); {0, 0} when not cropped.
  std::array<int64_t, 2> cropped_from{0, 0};
};

// inputs = {X, W, B?} on the reference kernel.
class ConvRefStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "conv2d_f32 ref"; }
  ir::ConvAttrs attrs;
};

// inputs = {X}; Y = X * scale[c] + shift[c] (scale, shift folded from the BN constants).
class BatchNormFastStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "channel_affine_f32"; }
  Tensor scale, shift;
};

// inputs = {X, scale, bias, mean, var} on the reference kernel.
class BatchNormRefStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "batch_norm_f32 ref"; }
  float epsilon = 1e-5f;
};

class PoolStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  ir::PoolAttrs attrs;
  bool max = true;
  bool fast = true;
};

class GlobalAvgPoolStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "global_avg_pool_f32"; }
};

class BinaryStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::BinaryOp op = kernels::BinaryOp::kAdd;
  bool fast = true;
  // A Relu of the result fused (the op's sole reader, an unquantized Relu): the same bits as a
  // UnaryStep after it.
  bool relu = false;
};

class UnaryStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::UnaryParams params;
  bool fast = true;
};

// Softmax, or LogSoftmax when `log` (ir::OpKind::kLogSoftmax), along `axis`. Softmax runs on
// the fast kernel (kernels/norm.h) when `fast`; LogSoftmax always on the reference.
class SoftmaxStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  int64_t axis = -1;
  bool log = false;
  bool fast = false;
};

// ReduceMean / ReduceSum / ReduceMax over the consecutive dims [begin, end) of the input.
class ReduceStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::ReduceOp op = kernels::ReduceOp::kMean;
  int begin = 0, end = 0;
  bool fast = true;
};

// inputs = {X}; layer normalisation over the last `norm_rank` dims with plan-owned scale and
// bias (the node's constants, flattened; bias empty = 0).
class LayerNormStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return fast ? "layer_norm_f32" : "layer_norm_f32 ref"; }
  int norm_rank = 1;
  float epsilon = 1e-5f;
  Tensor scale, bias;
  bool fast = true;
};

// Gather of X along `axis` with plan-time indices (negative ones count from the end of the dim
// at run time, which matters along the batch dim): Y[o, k, i] = X[o, indices[k], i]. Elements
// of `elem` bytes (float32, or int64 / int32 / bool token ids and masks).
class GatherStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return elem == 4 ? "gather_f32" : "gather"; }
  int axis = 0;
  std::vector<int64_t> indices;
  size_t elem = 4;
};

// Strided slice: per dim d of X, output index j reads input index start[d] + j * step[d].
// A sliced batch dim has its ONNX start in batch_start[d] (else kNotBatch), resolved against the
// run's dim (negative counts from the end, then clamped). Output dims come from the output slot.
class SliceStep : public Step {
 public:
  static constexpr int64_t kNotBatch = std::numeric_limits<int64_t>::min();
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return elem == 4 ? "slice_f32" : "slice"; }
  std::vector<int64_t> start, step, batch_start;
  size_t elem = 4;  // element bytes
};

class TransposeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "transpose_f32"; }
  std::vector<int64_t> perm;  // resolved (never empty)
};

// inputs = {X_0, ..., X_{n-1}}; copies each into its block of Y.
class ConcatStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "concat_f32"; }
  int64_t axis = 0;  // resolved (>= 0)
};

}  // namespace qsearch::runtime
