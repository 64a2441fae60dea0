#include "runtime/conv3d_steps.h"

#include <fmt/format.h>

#include "ir/window.h"
#include "runtime/lowering.h"

namespace qsearch::runtime {

void Im2Col3dStep::run(const RunContext& ctx) const {
  kernels::Im2Col3dParams p = params;
  p.batch = ctx.dims(inputs[0])[0];
  kernels::im2col3d(p, 4, ctx.data<float>(inputs[0]), ctx.data<float>(outputs[0]));
}

std::string Im2Col3dStep::describe() const {
  return fmt::format("im2col3d{}_f32 k{}x{}", params.transposed ? "_transposed" : "",
                     params.kernel_d, params.kernel_h);
}

kernels::Im2Col3dParams im2col3d_params(const ir::Im2Col3dAttrs& a, const Shape& x) {
  kernels::Im2Col3dParams p;
  p.batch = x[0];
  p.channels = x[1];
  p.in_d = x[2];
  p.in_h = x[3];
  p.width = x[4];
  p.kernel_d = a.kernel[0];
  p.kernel_h = a.kernel[1];
  p.stride_d = a.strides[0];
  p.stride_h = a.strides[1];
  p.dilation_d = a.dilations[0];
  p.dilation_h = a.dilations[1];
  p.pad_d = a.pads[0];
  p.pad_h = a.pads[1];
  p.transposed = a.transposed;
  // Shape inference's window sizes (a 3-D Conv's, or a ConvTranspose's).
  auto out = [&](int d, int64_t in) {
    return ir::window_out(in, a.kernel[d], a.strides[d], a.dilations[d], a.pads[d], a.pads[d + 2],
                          a.transposed ? ir::WindowMode::kTransposed : ir::WindowMode::kFloor,
                          a.output_padding[d]);
  };
  p.out_d = out(0, p.in_d);
  p.out_h = out(1, p.in_h);
  return p;
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
  s->params = im2col3d_params(a, {0, xs.base[1], xs.base[2], xs.base[3], xs.base[4]});
  if (ys.base[2] != s->params.out_d * s->params.out_h) {
    PlanBuilder::fail_node(n, "the output's dim 2 is not the window's D' * H'");
  }
  s->node = n.name;
  s->inputs = {b.slot(n.inputs[0])};
  s->outputs = {b.slot(n.outputs[0])};
  b.add_step(std::move(s));
}

}  // namespace qsearch::runtime
