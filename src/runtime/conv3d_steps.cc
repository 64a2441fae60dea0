#include "runtime/conv3d_steps.h"

#include <fmt/format.h>

#include "runtime/lowering.h"

namespace qsearch::runtime {

void Im2Col3dStep::run(const RunContext& ctx) const {
  kernels::Im2Col3dParams p = params;
  p.batch = ctx.dims(inputs[0])[0];
  kernels::im2col3d(p, 4, ctx.data<float>(inputs[0]), ctx.data<float>(outputs[0]));
}

std::string Im2Col3dStep::describe() const {
  return fmt::format("im2col3d_f32 k{}x{}", params.kernel_d, params.kernel_h);
}

void lower_im2col3d(PlanBuilder& b, const ir::Node& n) {
  const auto& a = std::get<ir::Im2Col3dAttrs>(n.attrs);
  const SymShape &xs = b.shape(n.inputs[0]), &ys = b.shape(n.outputs[0]);
  if (xs.rank != 5 || xs.base[0] != 0 || xs.per_batch[0] != 1) {
    PlanBuilder::fail_node(n, "Im2Col3d needs an NCDHW input whose first dim is the batch");
  }
  for (int d = 1; d < 5; ++d) {
    if (xs.per_batch[d] != 0)
      PlanBuilder::fail_node(n, "C, D, H and W must not depend on the batch");
  }
  auto s = std::make_unique<Im2Col3dStep>();
  kernels::Im2Col3dParams& p = s->params;
  p.channels = xs.base[1];
  p.in_d = xs.base[2];
  p.in_h = xs.base[3];
  p.width = xs.base[4];
  p.kernel_d = a.kernel[0];
  p.kernel_h = a.kernel[1];
  p.stride_d = a.strides[0];
  p.stride_h = a.strides[1];
  p.dilation_d = a.dilations[0];
  p.dilation_h = a.dilations[1];
  p.pad_d = a.pads[0];
  p.pad_h = a.pads[1];
  // out_d * out_h = dim 2 of the output; out_h from the window formula (ir/shape_inference.cc).
  p.out_h =
      (p.in_h + a.pads[1] + a.pads[3] - a.dilations[1] * (a.kernel[1] - 1) - 1) / a.strides[1] + 1;
  p.out_d = ys.base[2] / p.out_h;
  s->node = n.name;
  s->inputs = {b.slot(n.inputs[0])};
  s->outputs = {b.slot(n.outputs[0])};
  b.add_step(std::move(s));
}

}  // namespace qsearch::runtime
