// The pieces a Plan is made of: slots (where each value lives), steps (one kernel call each)
// and the context a step runs in. Read plan.h first; this header is for code that adds steps
// (a new op, a new execution mode) and for tests.
//
// A Slot is a value of the graph as the executor sees it: a dtype, a shape that is an affine
// function of the batch size, and a storage location (an executor buffer, the caller's input
// tensor, or a constant owned by the plan). A view (Reshape, Flatten, Identity, Dropout) is
// a second slot on the same storage with another shape: it costs nothing at run time.
//
// A Step reads input slots and writes output slots. Steps are created by make_plan() and are
// immutable afterwards: run() is const, keeps no state, allocates nothing and never throws;
// everything it needs (packed weights, kernel choice, folded constants) was decided at plan
// time. Per-call sizes come from the batch: ctx.dims(slot) gives a slot's concrete shape.
//
//   class ReluStep : public Step {
//     void run(const RunContext& ctx) const override {
//       kernels::relu_f32(ctx.data<float>(inputs[0]), ctx.data<float>(outputs[0]),
//                         ctx.numel(outputs[0]));
//     }
//   };
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/params.h"
#include "quant/fixed_point.h"

namespace qsearch::runtime {

using SlotId = int32_t;
inline constexpr SlotId kNoSlot = -1;

// A shape as a function of the batch size B: dim d = base[d] + per_batch[d] * B. Every shape
// the IR can produce is of this form (a dim is a constant or a multiple of the batch).
struct SymShape {
  int rank = 0;
  kernels::Dims base{};
  kernels::Dims per_batch{};

  int64_t dim(int d, int64_t batch) const { return base[d] + per_batch[d] * batch; }
  kernels::Dims at(int64_t batch) const {
    kernels::Dims out{};
    for (int d = 0; d < rank; ++d) out[d] = dim(d, batch);
    return out;
  }
  int64_t numel(int64_t batch) const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= dim(d, batch);
    return n;
  }
  Shape shape(int64_t batch) const {
    Shape s(rank);
    for (int d = 0; d < rank; ++d) s[d] = dim(d, batch);
    return s;
  }
};

enum class SlotKind : uint8_t {
  kBuffer,    // an executor-owned activation buffer (`buffer`), reused when dead
  kInput,     // a tensor passed to Executor::run (or a view of it)
  kConstant,  // plan-owned data (`constant`), e.g. a weight read by a reference kernel
};

struct Slot {
  std::string name;  // the graph value's name (views and fused values keep theirs)
  DType dtype = DType::kFloat32;
  SymShape shape;
  SlotKind kind = SlotKind::kBuffer;
  int32_t buffer = -1;    // kBuffer: index into Plan::buffer_bytes()
  int32_t constant = -1;  // kConstant: index into Plan::constants()
  int32_t input = -1;     // kInput: which graph input (index into Plan::input_slots())
  // Integer slots (Mode::kInt): the codes' format when they are codes of one, and their binary
  // point (value = code * 2^-frac; accumulators have a frac but no format). Read at plan time
  // and by to_string(), never at run time.
  std::optional<quant::FixedFormat> format;
  int frac = 0;
};

// What a step sees while running: the batch size and a pointer per slot.
class RunContext {
 public:
  RunContext(const std::vector<Slot>& slots, void* const* ptrs, int64_t batch)
      : slots_(slots), ptrs_(ptrs), batch_(batch) {}

  int64_t batch() const { return batch_; }
  template <typename T>
  T* data(SlotId s) const {
    QSEARCH_DCHECK(slots_[s].dtype == dtype_of<T>());
    return static_cast<T*>(ptrs_[s]);
  }
  // The slot's storage, untyped (integer steps dispatch on the dtype they were planned with).
  void* slot_ptr(SlotId s) const { return ptrs_[s]; }
  const SymShape& shape(SlotId s) const { return slots_[s].shape; }
  kernels::Dims dims(SlotId s) const { return slots_[s].shape.at(batch_); }
  int64_t dim(SlotId s, int d) const { return slots_[s].shape.dim(d, batch_); }
  int64_t numel(SlotId s) const { return slots_[s].shape.numel(batch_); }

 private:
  const std::vector<Slot>& slots_;
  void* const* ptrs_;
  int64_t batch_;
};

class Step {
 public:
  virtual ~Step() = default;
  // Computes the outputs from the inputs. Never throws, never allocates.
  virtual void run(const RunContext& ctx) const = 0;
  // One line for Plan::to_string(): the kernel and what was fused, e.g.
  // "conv2d_f32 avx512 [+batchnorm +add +relu]".
  virtual std::string describe() const = 0;

  std::string node;             // the (first) graph node this step computes
  std::vector<SlotId> inputs;   // slots read (activations; constants live inside the step)
  std::vector<SlotId> outputs;  // slots written
};

}  // namespace qsearch::runtime
