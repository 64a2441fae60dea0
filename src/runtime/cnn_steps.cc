#include "runtime/cnn_steps.h"

#include <fmt/format.h>

#include "kernels/cnn_ops.h"
#include "runtime/lowering.h"

namespace qsearch::runtime {

void HardSigmoidStep::run(const RunContext& ctx) const {
  const float* x = ctx.data<float>(inputs[0]);
  float* y = ctx.data<float>(outputs[0]);
  const int64_t n = ctx.numel(outputs[0]);
  fast ? kernels::hard_sigmoid_f32(alpha, beta, swish, x, y, n)
       : kernels::ref::hard_sigmoid_f32(alpha, beta, swish, x, y, n);
}

std::string HardSigmoidStep::describe() const {
  return fmt::format("{}_f32{}", swish ? "hard_swish" : "hard_sigmoid", fast ? "" : " ref");
}

void GlobalMaxPoolStep::run(const RunContext& ctx) const {
  const kernels::Dims x = ctx.dims(inputs[0]);
  const int rank = ctx.shape(inputs[0]).rank;
  int64_t spatial = 1;
  for (int d = 2; d < rank; ++d) spatial *= x[d];
  const float* in = ctx.data<float>(inputs[0]);
  float* out = ctx.data<float>(outputs[0]);
  fast ? kernels::global_max_pool_f32(x[0] * x[1], spatial, in, out)
       : kernels::ref::global_max_pool_f32(x[0] * x[1], spatial, in, out);
}

std::string GlobalMaxPoolStep::describe() const {
  return fmt::format("global_max_pool_f32{}", fast ? "" : " ref");
}

void PadStep::run(const RunContext& ctx) const {
  kernels::PadParams p = params;
  p.in_shape = ctx.dims(inputs[0]);
  const float* x = ctx.data<float>(inputs[0]);
  float* y = ctx.data<float>(outputs[0]);
  fast ? kernels::pad_f32(p, x, y) : kernels::ref::pad_f32(p, x, y);
}

std::string PadStep::describe() const {
  static const char* modes[] = {"constant", "reflect", "edge"};
  return fmt::format("pad_f32 {}{}", modes[static_cast<int>(params.mode)], fast ? "" : " ref");
}

void ResizeStep::run(const RunContext& ctx) const {
  kernels::ResizeParams p = params;
  p.planes = ctx.dim(inputs[0], 0) * ctx.dim(inputs[0], 1);
  const float* x = ctx.data<float>(inputs[0]);
  float* y = ctx.data<float>(outputs[0]);
  fast ? kernels::resize_f32(p, x, y) : kernels::ref::resize_f32(p, x, y);
}

std::string ResizeStep::describe() const {
  return fmt::format("resize_f32 {}{}", params.linear ? "linear" : "nearest", fast ? "" : " ref");
}

void lower_cnn_float(PlanBuilder& b, const ir::Node& n) {
  const bool fast = !b.options().use_reference_kernels;
  std::unique_ptr<Step> step;
  switch (n.kind) {
    case ir::OpKind::kHardSigmoid:
    case ir::OpKind::kHardSwish: {
      auto s = std::make_unique<HardSigmoidStep>();
      if (n.kind == ir::OpKind::kHardSigmoid) {
        const auto& a = std::get<ir::HardSigmoidAttrs>(n.attrs);
        s->alpha = a.alpha;
        s->beta = a.beta;
      } else {
        s->alpha = 1.0f / 6.0f;
        s->beta = 0.5f;
        s->swish = true;
      }
      s->fast = fast;
      step = std::move(s);
      break;
    }
    case ir::OpKind::kGlobalMaxPool: {
      auto s = std::make_unique<GlobalMaxPoolStep>();
      s->fast = fast;
      step = std::move(s);
      break;
    }
    case ir::OpKind::kPad: {
      const auto& a = std::get<ir::PadAttrs>(n.attrs);
      auto s = std::make_unique<PadStep>();
      const int rank = b.shape(n.inputs[0]).rank;
      if (rank > kernels::kMaxRank) PlanBuilder::fail_node(n, "rank above 8");
      s->params.rank = rank;
      for (int d = 0; d < rank; ++d) {
        s->params.begin[d] = a.pads[d];
        s->params.end[d] = a.pads[d + rank];
      }
      s->params.mode = a.mode == ir::PadMode::kConstant  ? kernels::PadKind::kConstant
                       : a.mode == ir::PadMode::kReflect ? kernels::PadKind::kReflect
                                                         : kernels::PadKind::kEdge;
      s->params.value = a.value;
      s->fast = fast;
      if (rank > 0 && (a.pads[0] != 0 || a.pads[rank] != 0)) b.mixes_samples();
      step = std::move(s);
      break;
    }
    case ir::OpKind::kResize: {
      const auto& a = std::get<ir::ResizeAttrs>(n.attrs);
      auto s = std::make_unique<ResizeStep>();
      const SymShape &xs = b.shape(n.inputs[0]), &ys = b.shape(n.outputs[0]);
      kernels::ResizeParams& p = s->params;
      p.in_h = xs.base[2];
      p.in_w = xs.base[3];
      p.out_h = ys.base[2];
      p.out_w = ys.base[3];
      if (xs.per_batch[2] || xs.per_batch[3] || ys.per_batch[2] || ys.per_batch[3]) {
        PlanBuilder::fail_node(n, "H and W must not depend on the batch size");
      }
      const bool sized = a.sizes[0] > 0;
      p.scale_h = sized ? static_cast<double>(p.out_h) / static_cast<double>(p.in_h) : a.scales[0];
      p.scale_w = sized ? static_cast<double>(p.out_w) / static_cast<double>(p.in_w) : a.scales[1];
      p.linear = a.mode == ir::ResizeMode::kLinear;
      p.coord = static_cast<kernels::ResizeCoordKind>(a.coord);
      p.nearest = static_cast<kernels::ResizeNearestKind>(a.nearest);
      s->fast = fast;
      step = std::move(s);
      break;
    }
    default:
      PlanBuilder::fail_node(n, "not a modern-CNN operator");
  }
  step->node = n.name;
  step->inputs = {b.slot(n.inputs[0])};
  step->outputs = {b.slot(n.outputs[0])};
  b.add_step(std::move(step));
}

}  // namespace qsearch::runtime
