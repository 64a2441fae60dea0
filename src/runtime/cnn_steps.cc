#include "runtime/cnn_steps.h"

#include <fmt/format.h>

#include <cstring>

#include "kernels/cnn_ops.h"
#include "kernels/conv.h"
#include "kernels/fixed/ref/zero_insert_ref.h"
#include "runtime/float_steps.h"
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

void ZeroInsertStep::run(const RunContext& ctx) const {
  kernels::fixed::ZeroInsertParams p = params;
  p.planes = ctx.dim(inputs[0], 0) * ctx.dim(inputs[0], 1);
  reference ? kernels::fixed::ref::zero_insert(p, elem_size, ctx.slot_ptr(inputs[0]),
                                               ctx.slot_ptr(outputs[0]))
            : kernels::fixed::zero_insert(p, elem_size, ctx.slot_ptr(inputs[0]),
                                          ctx.slot_ptr(outputs[0]));
}

std::string ZeroInsertStep::describe() const {
  return fmt::format("zero_insert x{} {}B{}", params.stride_h, elem_size, reference ? " ref" : "");
}

ConvTransposePlan conv_transpose_plan(const ir::ConvTransposeAttrs& a, int64_t in_h, int64_t in_w,
                                      const Shape& weight) {
  ConvTransposePlan p;
  const int64_t span_h = (a.kernel[0] - 1) * a.dilations[0],
                span_w = (a.kernel[1] - 1) * a.dilations[1];
  p.zeros.in_h = in_h;
  p.zeros.in_w = in_w;
  p.zeros.stride_h = a.strides[0];
  p.zeros.stride_w = a.strides[1];
  p.zeros.begin_h = span_h - a.pads[0];
  p.zeros.begin_w = span_w - a.pads[1];
  p.zeros.end_h = span_h - a.pads[2] + a.output_padding[0];
  p.zeros.end_w = span_w - a.pads[3] + a.output_padding[1];
  p.conv.kernel = a.kernel;
  p.conv.dilations = a.dilations;
  p.conv.group = a.group;
  p.weight_shape = {weight[1] * a.group, weight[0] / a.group, weight[2], weight[3]};
  return p;
}

Tensor transform_conv_transpose_weight(const Tensor& w, int64_t group) {
  const Shape& s = w.shape();  // [C, M/G, kH, kW]
  const int64_t c = s[0], mg = s[1], kh = s[2], kw = s[3], cg = c / group;
  Tensor out({mg * group, cg, kh, kw}, w.dtype());
  const int64_t es = static_cast<int64_t>(dtype_size(w.dtype()));
  const auto* src = static_cast<const unsigned char*>(w.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t o = 0; o < mg; ++o) {
      for (int64_t ci = 0; ci < cg; ++ci) {
        for (int64_t u = 0; u < kh; ++u) {
          for (int64_t v = 0; v < kw; ++v) {
            const int64_t to = (((g * mg + o) * cg + ci) * kh + u) * kw + v;
            const int64_t from = (((g * cg + ci) * mg + o) * kh + (kh - 1 - u)) * kw + (kw - 1 - v);
            std::memcpy(dst + to * es, src + from * es, static_cast<size_t>(es));
          }
        }
      }
    }
  }
  return out;
}

namespace {

// ConvTranspose in float: ZeroInsertStep into a new slot, then the conv (packed, or the
// reference kernel on the transformed weight as a plan constant).
void lower_conv_transpose(PlanBuilder& b, const ir::Node& n) {
  const auto& a = std::get<ir::ConvTransposeAttrs>(n.attrs);
  const ir::ValueId x = n.inputs[0], w = n.inputs[1];
  const ir::ValueId bias_v = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const SymShape& xs = b.shape(x);
  if (xs.rank != 4 || xs.per_batch[2] || xs.per_batch[3]) {
    PlanBuilder::fail_node(n, "the input must be NCHW with H and W independent of the batch");
  }
  const ir::Value& wv = b.graph().value(w);
  if (!wv.is_constant() || (bias_v >= 0 && !b.graph().value(bias_v).is_constant())) {
    PlanBuilder::fail_node(n, "the weight and bias must be constants");
  }
  const ConvTransposePlan plan = conv_transpose_plan(a, xs.base[2], xs.base[3], wv.shape);
  SymShape us = xs;
  us.base[2] = plan.zeros.out_h();
  us.base[3] = plan.zeros.out_w();
  auto z = std::make_unique<ZeroInsertStep>();
  z->node = n.name;
  z->params = plan.zeros;
  z->reference = b.options().use_reference_kernels;
  z->inputs = {b.slot(x)};
  const SlotId u = b.new_slot(b.graph().value(x).name + "~zeros", DType::kFloat32, us);
  z->outputs = {u};
  b.add_step(std::move(z));
  const Tensor wt = transform_conv_transpose_weight(wv.data, a.group);
  const Shape& ws = plan.weight_shape;
  if (b.options().use_reference_kernels) {
    auto s = std::make_unique<ConvRefStep>();
    s->node = n.name;
    s->attrs = plan.conv;
    s->inputs = {u, b.constant_slot(wv.name + "~transposed", wt)};
    if (bias_v >= 0) s->inputs.push_back(b.slot(bias_v));
    s->outputs = {b.slot(n.outputs[0])};
    b.add_step(std::move(s));
    return;
  }
  auto s = std::make_unique<ConvPackedStep>();
  s->node = n.name;
  s->attrs = plan.conv;
  s->packed = kernels::pack_conv_weights(wt.data<float>(), ws[0], ws[1], ws[2], ws[3], a.group);
  if (bias_v >= 0) s->epilogue.bias = b.graph().value(bias_v).data.clone().reshaped({ws[0]});
  s->inputs = {u};
  s->outputs = {b.slot(n.outputs[0])};
  b.add_step(std::move(s));
}

}  // namespace

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
    case ir::OpKind::kConvTranspose:
      return lower_conv_transpose(b, n);
    default:
      PlanBuilder::fail_node(n, "not a modern-CNN operator");
  }
  step->node = n.name;
  step->inputs = {b.slot(n.inputs[0])};
  step->outputs = {b.slot(n.outputs[0])};
  b.add_step(std::move(step));
}

}  // namespace qsearch::runtime
