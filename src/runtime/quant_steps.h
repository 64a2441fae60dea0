// Internal: the steps of Mode::kFake and Mode::kInt (created by fake_lowering.cc and
// int_lowering.cc; the float ops of those modes reuse float_steps.h).
//
// Integer slots hold codes: value = code * 2^-frac (Slot::frac), with the dtype the format needs
// (quant::storage_dtype) or an int32/int64 accumulator. Every integer step is exact: integer
// arithmetic only, and each rounding is one explicit requantization (docs/numerics.md).
#pragma once

#include <string>

#include "core/tensor.h"
#include "ir/ops.h"
#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/eltwise.h"
#include "kernels/fixed/gemm.h"
#include "quant/fixed_point.h"
#include "runtime/step.h"

namespace qsearch::runtime {

// float -> float: MASE's fake quantizer, y = clamp(round(x * 2^f), lo, hi) * 2^-f in float32.
class FakeQuantizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  quant::FixedFormat format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// float -> codes of `format` (the same codes FakeQuantizeStep's values have).
class QuantizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  quant::FixedFormat format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// inputs = {A, B} float: the unquantized float op A + B or A * B and QuantizeStep's quantizer
// after it in one pass (kernels::fixed::float_op_quantize): outputs = {codes of `format`} or
// {codes, the float result} (when float consumers read it too). Input `x_input` has the output's
// shape; the other is one value per row of the output's dims from `row_rank` on (1 there, equal
// before; row_rank = rank: the same shape). Values: BinaryStep's then QuantizeStep's, bit for bit.
class FloatOpQuantizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::fixed::FloatOp op = kernels::fixed::FloatOp::kMul;
  int x_input = 0;
  int row_rank = 0;
  quant::FixedFormat format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// codes (any integer dtype, binary point in_frac) -> codes of `format`: one exact rounding.
class RequantizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType in_dtype = DType::kInt32;
  int in_frac = 0;
  quant::FixedFormat format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// codes -> float32: fl32(code) * 2^-frac, one rounding (none for |code| <= 2^24).
class DequantizeStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType in_dtype = DType::kInt8;
  int frac = 0;
};

// inputs = {A codes [.., K]}: Y = gemm(A, packed W) with the output of `params` (accumulator,
// requantized codes or float). `reference` runs kernels/fixed/ref on `spec` instead.
class IntGemmStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::fixed::PackedWeights packed;
  kernels::fixed::GemmParams params;
  bool reference = false;
  kernels::fixed::GemmWeights spec;  // reference: points into weight_codes / bias_codes
  Tensor weight_codes, bias_codes;
};

// inputs = {X codes [B, C, H, W]}: integer Conv2d (NCHW), output as IntGemmStep, with `pool`
// fused into the store (kernels::fixed::ConvPool; the output is then the pooled shape).
class IntConvStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::fixed::PackedConv2d packed;
  kernels::fixed::GemmParams params;
  kernels::fixed::ConvPool pool = kernels::fixed::ConvPool::kNone;
  bool reference = false;
  kernels::fixed::Conv2dGeometry geometry;
  kernels::fixed::Conv2dWeights spec;
  Tensor weight_codes, bias_codes;
  // A float BatchNorm's channel affine (+ Relu / Clip in params.post_lo / post_hi) fused into the
  // float store: [out_channels] each, passed as params.post_scale / post_shift (empty: none).
  Tensor post_scale, post_shift;
  bool post_is_batch_norm = true;  // false: the identity affine of a fused SiLU alone
};

// inputs = {A, B} codes of equal shape: exact A + B (binary points aligned), requantized to
// `format` or (no format) written as int64 at max(a_frac, b_frac).
class IntAddStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType a_dtype = DType::kInt8, b_dtype = DType::kInt8;
  int a_frac = 0, b_frac = 0;
  std::optional<quant::FixedFormat> format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// inputs = {A, B} codes, numpy broadcasting: exact A + B, A - B (at max(fa, fb)) or A * B (at
// fa + fb) in int64, then requantized to `format` or written as int64.
class IntBinaryStep : public Step {
 public:
  enum class Op { kAdd, kSub, kMul };
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  Op op = Op::kAdd;
  DType a_dtype = DType::kInt8, b_dtype = DType::kInt8;
  int a_frac = 0, b_frac = 0;
  std::optional<quant::FixedFormat> format;
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
};

// inputs = {A [.., M, K], B [.., K, N]} codes (numpy matmul broadcasting): exact int64 sums at
// a_frac + b_frac (plan() checks K * max|A| * max|B| < 2^63).
class IntMatMulStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "matmul_int64 exact"; }
  DType a_dtype = DType::kInt8, b_dtype = DType::kInt8;
};

// Max pooling on codes (any integer dtype): exact, the max commutes with every requantization.
class IntMaxPoolStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType dtype = DType::kInt8;
  kernels::fixed::MaxPool2dParams params;
};

// max(code, 0) on codes of a signed format.
class IntReluStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType dtype = DType::kInt8;
};

}  // namespace qsearch::runtime
