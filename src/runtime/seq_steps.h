// Internal: the steps of the sequence-model ops (issue 11: token ids, attention masks), created by
// float_lowering.cc in every mode (they never run on quantized codes: a quantized mode runs them
// on the real values at the boundary, as MASE does). Each reads and writes slots of their own
// dtype (float32, int64, int32, bool as uint8) and calls kernels/select.h, or kernels/ref/ when
// `fast` is false.
#pragma once

#include <string>

#include "core/dtype.h"
#include "kernels/select.h"
#include "runtime/step.h"

namespace qsearch::runtime {

// inputs = {A, B}: Y = (A == B) as bool, numpy broadcasting; A and B of dtype `dtype`.
class EqualStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType dtype = DType::kInt64;
  bool fast = true;
};

// inputs = {A, B} (bool): Y = A && B with broadcasting.
class AndStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return fast ? "and_u8" : "and_u8 ref"; }
  bool fast = true;
};

// inputs = {X} (bool): Y = !X.
class NotStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override { return "not_u8 ref"; }
};

// inputs = {X}: Y = X converted from `from` to `to` (kernels::ref::cast).
class CastStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType from = DType::kInt64, to = DType::kFloat32;
};

// inputs = {cond, A, B}: Y = cond ? A : B with broadcasting; A, B, Y of `dtype`.
class WhereStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType dtype = DType::kFloat32;
  bool fast = true;
};

// inputs = {X}: Y = X broadcast to Y's shape.
class ExpandStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  DType dtype = DType::kFloat32;
  bool fast = true;
};

// inputs = {data, indices}: Gather along `axis` (never a batch dim of data) at run-time int64 /
// int32 indices (kernels::GatherParams: an out-of-range index gives a NaN / zero row).
class GatherIndexedStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  int axis = 0;
  DType data = DType::kFloat32, index = DType::kInt64;
  bool fast = true;
};

}  // namespace qsearch::runtime
