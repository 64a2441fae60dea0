#include "runtime/seq_steps.h"

#include <fmt/format.h>

#include "kernels/ref/select.h"

namespace qsearch::runtime {

namespace {

// The output's shape and, per input slot, its numpy broadcast strides against it.
kernels::SelectParams select_params(const RunContext& ctx, const std::vector<SlotId>& ins,
                                    SlotId out) {
  kernels::SelectParams p;
  p.rank = ctx.shape(out).rank;
  p.shape = ctx.dims(out);
  for (size_t k = 0; k < ins.size() && k < 3; ++k) {
    const kernels::Dims in = ctx.dims(ins[k]);
    const int r_in = ctx.shape(ins[k]).rank;
    int64_t s = 1;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int di = d - (p.rank - r_in);
      if (di < 0) {
        p.stride[k][d] = 0;
      } else {
        p.stride[k][d] = in[di] == 1 ? 0 : s;
        s *= in[di];
      }
    }
  }
  return p;
}

std::string suffix(bool fast) { return fast ? "" : " ref"; }

}  // namespace

void EqualStep::run(const RunContext& ctx) const {
  const kernels::SelectParams p = select_params(ctx, inputs, outputs[0]);
  const void* a = ctx.slot_ptr(inputs[0]);
  const void* b = ctx.slot_ptr(inputs[1]);
  uint8_t* y = ctx.data<uint8_t>(outputs[0]);
  fast ? kernels::equal(dtype, p, a, b, y) : kernels::ref::equal(dtype, p, a, b, y);
}

std::string EqualStep::describe() const {
  return fmt::format("equal_{}{}", dtype_name(dtype), suffix(fast));
}

void AndStep::run(const RunContext& ctx) const {
  const kernels::SelectParams p = select_params(ctx, inputs, outputs[0]);
  const uint8_t* a = ctx.data<uint8_t>(inputs[0]);
  const uint8_t* b = ctx.data<uint8_t>(inputs[1]);
  uint8_t* y = ctx.data<uint8_t>(outputs[0]);
  fast ? kernels::logical_and(p, a, b, y) : kernels::ref::logical_and(p, a, b, y);
}

void NotStep::run(const RunContext& ctx) const {
  kernels::ref::logical_not(ctx.data<uint8_t>(inputs[0]), ctx.data<uint8_t>(outputs[0]),
                            ctx.numel(outputs[0]));
}

void CastStep::run(const RunContext& ctx) const {
  kernels::ref::cast(from, to, ctx.slot_ptr(inputs[0]), ctx.slot_ptr(outputs[0]),
                     ctx.numel(outputs[0]));
}

std::string CastStep::describe() const {
  return fmt::format("cast_{}_{} ref", dtype_name(from), dtype_name(to));
}

void WhereStep::run(const RunContext& ctx) const {
  const kernels::SelectParams p = select_params(ctx, inputs, outputs[0]);
  const uint8_t* c = ctx.data<uint8_t>(inputs[0]);
  const void* a = ctx.slot_ptr(inputs[1]);
  const void* b = ctx.slot_ptr(inputs[2]);
  void* y = ctx.slot_ptr(outputs[0]);
  const size_t elem = dtype_size(dtype);
  fast ? kernels::where(elem, p, c, a, b, y) : kernels::ref::where(elem, p, c, a, b, y);
}

std::string WhereStep::describe() const {
  return fmt::format("where_{}{}", dtype_name(dtype), suffix(fast));
}

void ExpandStep::run(const RunContext& ctx) const {
  const kernels::SelectParams p = select_params(ctx, inputs, outputs[0]);
  const size_t elem = dtype_size(dtype);
  const void* x = ctx.slot_ptr(inputs[0]);
  void* y = ctx.slot_ptr(outputs[0]);
  fast ? kernels::expand(elem, p, x, y) : kernels::ref::expand(elem, p, x, y);
}

std::string ExpandStep::describe() const {
  return fmt::format("expand_{}{}", dtype_name(dtype), suffix(fast));
}

void GatherIndexedStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  kernels::GatherParams p;
  for (int d = 0; d < axis; ++d) p.outer *= x[d];
  for (int d = axis + 1; d < rank; ++d) p.inner *= x[d];
  p.n = x[axis];
  p.count = ctx.numel(inputs[1]);
  p.elem = dtype_size(data);
  p.data = data;
  p.index = index;
  const void* xd = ctx.slot_ptr(inputs[0]);
  const void* idx = ctx.slot_ptr(inputs[1]);
  void* y = ctx.slot_ptr(outputs[0]);
  fast ? kernels::gather(p, xd, idx, y) : kernels::ref::gather(p, xd, idx, y);
}

std::string GatherIndexedStep::describe() const {
  return fmt::format("gather_{}_by_{}{}", dtype_name(data), dtype_name(index), suffix(fast));
}

}  // namespace qsearch::runtime
