// Mode::kFloat lowering: node -> steps, with the float fusions of plan.h.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "runtime/cnn_steps.h"
#include "runtime/conv3d_steps.h"
#include "runtime/float_steps.h"
#include "runtime/lowering.h"
#include "runtime/rnn_lowering.h"
#include "runtime/seq_steps.h"

namespace qsearch::runtime {

namespace {

using ir::Node;
using ir::OpKind;
using ir::ValueId;

bool same_shape(const SymShape& a, const SymShape& b) {
  if (a.rank != b.rank) return false;
  for (int d = 0; d < a.rank; ++d) {
    if (a.base[d] != b.base[d] || a.per_batch[d] != b.per_batch[d]) return false;
  }
  return true;
}

bool is_constant(const PlanBuilder& b, ValueId v) {
  return v >= 0 && b.graph().value(v).is_constant();
}

const float* const_data(const PlanBuilder& b, ValueId v) {
  return b.graph().value(v).data.data<float>();
}

template <typename T>
std::unique_ptr<T> make_step(PlanBuilder& b, const Node& n, std::vector<ValueId> ins) {
  auto s = std::make_unique<T>();
  s->node = n.name;
  for (ValueId v : ins) {
    if (v >= 0) s->inputs.push_back(b.slot(v));
  }
  return s;
}

template <typename T>
void finish(PlanBuilder& b, std::unique_ptr<T> s, ValueId out) {
  s->outputs = {b.slot(out)};
  b.add_step(std::move(s));
}

// Extends a GEMM / conv epilogue over the sole consumers of `y`: an Add of a same-shape value
// computed before `anchor` (or of a bias broadcast over rows when `bias_width` > 0 and there is
// no bias yet), then a Relu or Clip, then (if none came before) an Add of a same-shape value
// (relu(...) + x, the residual block of the PyTorch fixtures). Returns the value the step
// finally writes.
ValueId fuse_tail(PlanBuilder& b, const Node& anchor, ValueId y, FusedEpilogue& ep,
                  int64_t bias_width) {
  // Fuses `add` = y + other when `other` is a same-shape value computed before the anchor, or
  // (allow_bias) a constant row bias; returns false when it does not fit.
  auto try_add = [&](bool allow_bias) {
    const Node* add = b.sole_consumer(y);
    if (add == nullptr || add->kind != OpKind::kAdd) return false;
    const ValueId other = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
    if (other == y) return false;
    const SymShape& os = b.shape(other);
    if (same_shape(os, b.shape(y)) && b.producer_index(other) < b.node_index(anchor)) {
      ep.residual = b.slot(other);
      ep.fused.push_back("add");
    } else if (allow_bias && bias_width > 0 && ep.bias.empty() && is_constant(b, other) &&
               os.numel(0) == bias_width && os.shape(0).back() == bias_width &&
               os.rank <= b.shape(y).rank) {
      ep.bias = b.graph().value(other).data.clone().reshaped({bias_width});
      ep.fused.push_back("bias");
    } else {
      return false;
    }
    b.mark_fused(*add);
    y = add->outputs[0];
    return true;
  };
  try_add(/*allow_bias=*/true);
  if (const Node* act = b.sole_consumer(y); act != nullptr) {
    if (act->kind == OpKind::kRelu) {
      ep.clamp_min = 0.0f;
      ep.fused.push_back("relu");
    } else if (act->kind == OpKind::kClip) {
      const auto& c = std::get<ir::ClipAttrs>(act->attrs);
      ep.clamp_min = c.min;
      ep.clamp_max = c.max;
      ep.fused.push_back("clip");
    } else {
      return y;
    }
    b.mark_fused(*act);
    y = act->outputs[0];
    if (ep.residual == kNoSlot && try_add(/*allow_bias=*/false)) {
      ep.residual_after_clamp = ep.residual != kNoSlot;
    }
  }
  return y;
}

// SiLU of the value y a conv step writes (EfficientNet's conv + BN + SiLU): y read by exactly a
// Sigmoid s and a Mul m = y * s (either order), s read only by m. Marks both fused and sets
// ep.silu (applied last, to y); returns the value the step then writes (m's output), or y.
// Float mode only: the fused store has the same bits as the two steps (kernels::Epilogue::silu),
// but the quantized lowerings place quantizers between them.
ValueId fuse_silu(PlanBuilder& b, ValueId y, FusedEpilogue& ep) {
  if (b.uses(y) != 2 || b.is_graph_output(y)) return y;
  const Node* sig = nullptr;
  for (const Node& c : b.graph().nodes()) {
    if (c.kind == OpKind::kSigmoid && c.inputs.size() == 1 && c.inputs[0] == y) sig = &c;
  }
  if (sig == nullptr || b.is_fused(*sig)) return y;
  const Node* mul = b.sole_consumer(sig->outputs[0]);
  if (mul == nullptr || mul->kind != OpKind::kMul || mul->inputs.size() != 2 ||
      !((mul->inputs[0] == y && mul->inputs[1] == sig->outputs[0]) ||
        (mul->inputs[1] == y && mul->inputs[0] == sig->outputs[0]))) {
    return y;
  }
  b.mark_fused(*sig);
  b.mark_fused(*mul);
  ep.silu = true;
  ep.fused.push_back("silu");
  return mul->outputs[0];
}

// Gemm, or MatMul by a constant matrix, on the packed kernel. `w` is [K, N], or [N, K] when
// trans_b.
void lower_linear(PlanBuilder& b, const Node& n, ValueId a, ValueId w, bool trans_b, float alpha,
                  Tensor bias) {
  const Shape ws = b.graph().value(w).data.shape();
  const int64_t k = trans_b ? ws[1] : ws[0], nn = trans_b ? ws[0] : ws[1];
  auto s = make_step<GemmPackedStep>(b, n, {a});
  // A consumed graph's weight read by this node alone becomes the packed panels in place
  // (make_plan(ir::Graph&&): qsearch eval's 64 MB linear is not held twice while planning).
  bool in_place = false;
  if (b.owns_constant(w)) {
    Tensor owned = b.graph().value(w).data;  // shares the buffer
    in_place = kernels::pack_b_in_place(owned, k, nn, trans_b, kernels::best_isa(), &s->packed);
  }
  if (!in_place) s->packed = kernels::pack_b(const_data(b, w), k, nn, trans_b);
  s->epilogue.alpha = alpha;
  s->epilogue.bias = std::move(bias);
  const ValueId y = fuse_tail(b, n, n.outputs[0], s->epilogue, nn);
  if (s->epilogue.residual != kNoSlot) s->inputs.push_back(s->epilogue.residual);
  finish(b, std::move(s), y);
}

void lower_gemm(PlanBuilder& b, const Node& n) {
  const auto& at = std::get<ir::GemmAttrs>(n.attrs);
  const ValueId a = n.inputs[0], w = n.inputs[1];
  const ValueId c = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int64_t nn = b.shape(n.outputs[0]).base[1] + b.shape(n.outputs[0]).per_batch[1];
  // The packed path needs constant weights, A not transposed, and C (if any) a constant bias
  // broadcast over rows: shape [], [1], [N] or [1, N].
  bool fast = !b.options().use_reference_kernels && is_constant(b, w) && !at.trans_a;
  Tensor bias;
  if (fast && c >= 0) {
    const Shape cs = b.graph().value(c).is_constant() ? b.graph().value(c).data.shape() : Shape{};
    const bool row_bias = is_constant(b, c) && shape_numel(cs) >= 1 &&
                          (cs.empty() || cs.back() == shape_numel(cs)) &&
                          (shape_numel(cs) == 1 || shape_numel(cs) == nn);
    if (row_bias) {
      bias = Tensor({nn}, DType::kFloat32);
      const float* cv = const_data(b, c);
      for (int64_t j = 0; j < nn; ++j) {
        bias.data<float>()[j] =
            static_cast<float>(static_cast<double>(at.beta) * cv[shape_numel(cs) == 1 ? 0 : j]);
      }
    } else {
      fast = false;
    }
  }
  if (fast) return lower_linear(b, n, a, w, at.trans_b, at.alpha, std::move(bias));
  auto s = make_step<GemmRefStep>(b, n, {a, w, c});
  s->attrs = at;
  finish(b, std::move(s), n.outputs[0]);
}

void lower_matmul(PlanBuilder& b, const Node& n) {
  const ValueId a = n.inputs[0], w = n.inputs[1];
  if (!b.options().use_reference_kernels && is_constant(b, w) && b.shape(w).rank == 2 &&
      b.shape(a).rank >= 2) {
    return lower_linear(b, n, a, w, /*trans_b=*/false, 1.0f, Tensor());
  }
  auto s = make_step<MatMulStep>(b, n, {a, w});
  s->fast = !b.options().use_reference_kernels;
  finish(b, std::move(s), n.outputs[0]);
}

// Live kernel taps along one spatial axis: tap t reads input row out * stride - pad + t * dil
// for out < out_size; it is live when some of those rows is inside [0, in_size). Returns the
// first and last live tap (first > last when none is).
std::pair<int64_t, int64_t> live_taps(int64_t in_size, int64_t out_size, int64_t kernel,
                                      int64_t stride, int64_t pad, int64_t dil) {
  int64_t first = kernel, last = -1;
  for (int64_t t = 0; t < kernel; ++t) {
    const int64_t lo = -pad + t * dil, hi = (out_size - 1) * stride - pad + t * dil;
    // Rows lo, lo + stride, ..., hi: one inside [0, in_size)?
    const int64_t r = lo >= 0 ? lo : lo + (-lo + stride - 1) / stride * stride;
    if (r <= hi && r < in_size) {
      first = std::min(first, t);
      last = t;
    }
  }
  return {first, last};
}

// A conv whose kernel reaches past the image on every output pixel for some taps (a 3x3 conv
// with padding 1 on a 1x1 map: only the centre tap reads the image) is the same conv with those
// taps cut off: they only ever multiply the zero padding. Crops the weights `wt` ([M, C/G, kH,
// kW], `ws`) and the attributes to the live rectangle of taps when the input's spatial size is
// fixed. Same bits: dropping fma(w, 0, acc) leaves acc unchanged (acc starts at +0, never -0)
// as long as w is finite, so weights that are not stay (inf * 0 is NaN).
// Returns whether it cropped.
bool crop_dead_taps(const SymShape& xs, const SymShape& ys, Shape& ws, std::vector<float>& wt,
                    ir::ConvAttrs& at) {
  if (xs.rank != 4 || ys.rank != 4 || xs.per_batch[2] != 0 || xs.per_batch[3] != 0) return false;
  const auto [i0, i1] =
      live_taps(xs.base[2], ys.base[2], ws[2], at.strides[0], at.pads[0], at.dilations[0]);
  const auto [j0, j1] =
      live_taps(xs.base[3], ys.base[3], ws[3], at.strides[1], at.pads[1], at.dilations[1]);
  if (i0 > i1 || j0 > j1 || (i0 == 0 && j0 == 0 && i1 == ws[2] - 1 && j1 == ws[3] - 1)) {
    return false;
  }
  const int64_t top = at.pads[0] - i0 * at.dilations[0], left = at.pads[1] - j0 * at.dilations[1];
  if (top < 0 || left < 0) return false;  // the kernels take padding >= 0
  const int64_t kh = i1 - i0 + 1, kw = j1 - j0 + 1, rows = ws[0] * ws[1];
  std::vector<float> out(static_cast<size_t>(rows * kh * kw));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < ws[2]; ++i) {
      for (int64_t j = 0; j < ws[3]; ++j) {
        const float v = wt[(r * ws[2] + i) * ws[3] + j];
        if (i >= i0 && i <= i1 && j >= j0 && j <= j1) {
          out[(r * kh + i - i0) * kw + j - j0] = v;
        } else if (!std::isfinite(v)) {
          return false;
        }
      }
    }
  }
  wt = std::move(out);
  ws[2] = kh;
  ws[3] = kw;
  at.kernel = {kh, kw};
  at.pads[0] = top;
  at.pads[1] = left;
  // (The bottom / right pads are not read: the output size is the graph's.)
  return true;
}

void lower_conv(PlanBuilder& b, const Node& n) {
  const auto& at = std::get<ir::ConvAttrs>(n.attrs);
  const ValueId x = n.inputs[0], w = n.inputs[1];
  const ValueId bias_v = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const bool fast = !b.options().use_reference_kernels && is_constant(b, w) &&
                    (bias_v < 0 || is_constant(b, bias_v));
  if (!fast) {
    auto s = make_step<ConvRefStep>(b, n, {x, w, bias_v});
    s->attrs = at;
    return finish(b, std::move(s), n.outputs[0]);
  }
  Shape ws = b.graph().value(w).data.shape();        // [M, C/G, kH, kW]
  if (ws.size() == 3) ws.insert(ws.begin() + 2, 1);  // Conv1d: [M, C/G, k] is kH = 1
  const int64_t m = ws[0], taps = ws[1] * ws[2] * ws[3];
  std::vector<float> wt(const_data(b, w), const_data(b, w) + m * taps);
  std::vector<double> bias(m, 0.0);
  if (bias_v >= 0) {
    for (int64_t o = 0; o < m; ++o) bias[o] = const_data(b, bias_v)[o];
  }
  auto s = make_step<ConvPackedStep>(b, n, {x});
  s->attrs = at;
  bool has_bias = bias_v >= 0;
  ValueId y = n.outputs[0];
  // Fold a following inference BatchNormalization into the weights and bias:
  //   a = gamma / sqrt(var + eps);  W' = W * a;  b' = beta + (b - mean) * a   (in double)
  if (const Node* bn = b.sole_consumer(y);
      bn != nullptr && bn->kind == OpKind::kBatchNorm && bn->inputs[0] == y &&
      is_constant(b, bn->inputs[1]) && is_constant(b, bn->inputs[2]) &&
      is_constant(b, bn->inputs[3]) && is_constant(b, bn->inputs[4])) {
    const float eps = std::get<ir::BatchNormAttrs>(bn->attrs).epsilon;
    const float *gamma = const_data(b, bn->inputs[1]), *beta = const_data(b, bn->inputs[2]),
                *mean = const_data(b, bn->inputs[3]), *var = const_data(b, bn->inputs[4]);
    for (int64_t o = 0; o < m; ++o) {
      const double a = gamma[o] / std::sqrt(static_cast<double>(var[o]) + eps);
      for (int64_t t = 0; t < taps; ++t) {
        wt[o * taps + t] = static_cast<float>(wt[o * taps + t] * a);
      }
      bias[o] = beta[o] + (bias[o] - mean[o]) * a;
    }
    has_bias = true;
    s->epilogue.fused.push_back("batchnorm");
    b.mark_fused(*bn);
    y = bn->outputs[0];
  }
  const std::array<int64_t, 2> kernel{ws[2], ws[3]};
  if (crop_dead_taps(b.shape(x), b.shape(n.outputs[0]), ws, wt, s->attrs)) s->cropped_from = kernel;
  s->packed = kernels::pack_conv_weights(wt.data(), m, ws[1], ws[2], ws[3], at.group);
  // Winograd in the float engine only: fake quantization rounds the conv's outputs to grids and
  // must keep the direct conv's bits (docs/numerics.md "Float Winograd").
  if (b.options().mode == Mode::kFloat) {
    s->choose_winograd(b.shape(x), b.shape(n.outputs[0]), b.options().max_batch,
                       b.options().conv_algorithm);
  }
  if (has_bias) {
    s->epilogue.bias = Tensor({m}, DType::kFloat32);
    for (int64_t o = 0; o < m; ++o) s->epilogue.bias.data<float>()[o] = static_cast<float>(bias[o]);
  }
  y = fuse_tail(b, n, y, s->epilogue, 0);
  if (b.options().mode == Mode::kFloat) y = fuse_silu(b, y, s->epilogue);
  if (s->epilogue.residual != kNoSlot) s->inputs.push_back(s->epilogue.residual);
  finish(b, std::move(s), y);
}

void lower_batch_norm(PlanBuilder& b, const Node& n) {
  const float eps = std::get<ir::BatchNormAttrs>(n.attrs).epsilon;
  bool consts = true;
  for (int k = 1; k < 5; ++k) consts = consts && is_constant(b, n.inputs[k]);
  // In an int plan the folded fma below is the specification of batch norm (what the exact
  // reference in tests/runtime/quant_reference.h computes), not an approximation of the double
  // kernel: the reference-kernel int plan uses it too, or its one rounding in double would differ
  // from the spec's by an ulp and flip the codes of wide formats downstream (docs/numerics.md).
  const bool spec_is_folded = b.options().mode == Mode::kInt;
  if ((b.options().use_reference_kernels && !spec_is_folded) || !consts) {
    auto s = make_step<BatchNormRefStep>(b, n, n.inputs);
    s->epsilon = eps;
    return finish(b, std::move(s), n.outputs[0]);
  }
  const int64_t c = b.graph().value(n.inputs[1]).data.numel();
  auto s = make_step<BatchNormFastStep>(b, n, {n.inputs[0]});
  s->scale = Tensor({c}, DType::kFloat32);
  s->shift = Tensor({c}, DType::kFloat32);
  const float *gamma = const_data(b, n.inputs[1]), *beta = const_data(b, n.inputs[2]),
              *mean = const_data(b, n.inputs[3]), *var = const_data(b, n.inputs[4]);
  for (int64_t i = 0; i < c; ++i) {
    const double a = gamma[i] / std::sqrt(static_cast<double>(var[i]) + eps);
    s->scale.data<float>()[i] = static_cast<float>(a);
    s->shift.data<float>()[i] = static_cast<float>(beta[i] - mean[i] * a);
  }
  finish(b, std::move(s), n.outputs[0]);
}

// Every pooling window must see the image: a window of padding only has no max and (without
// count_include_pad) no average.
void check_pool_windows(const Node& n, const ir::PoolAttrs& a, const SymShape& x, const SymShape& y,
                        bool need_inside) {
  if (!need_inside) return;
  for (int d = 0; d < 2; ++d) {
    const int64_t in = x.base[2 + d], out = y.base[2 + d];
    for (int64_t o = 0; o < out; ++o) {
      bool any = false;
      for (int64_t t = 0; t < a.kernel[d] && !any; ++t) {
        const int64_t h = o * a.strides[d] - a.pads[d] + t * a.dilations[d];
        any = h >= 0 && h < in;
      }
      if (!any) {
        PlanBuilder::fail_node(
            n, fmt::format("the pooling window of output {} {} covers only padding (pads {} "
                           "with kernel {}): make the padding smaller than the kernel",
                           d == 0 ? "row" : "column", o, a.pads[d], a.kernel[d]));
      }
    }
  }
}

void lower_reduce(PlanBuilder& b, const Node& n) {
  const SymShape& xs = b.shape(n.inputs[0]);
  const std::vector<int> axes = ir::reduce_axes(n, std::get<ir::ReduceAttrs>(n.attrs), xs.rank);
  for (int d : axes) {
    if (xs.per_batch[d] != 0) b.mixes_samples();
  }
  ir::ReduceRange r{axes.empty() ? 0 : axes.front(), axes.empty() ? 0 : axes.back() + 1};
  auto s = make_step<ReduceStep>(b, n, {n.inputs[0]});
  if (r.end - r.begin != static_cast<int>(axes.size())) {
    // Axes that are not one run (ReduceSum over dims 1 and 3): a transpose moves them last, in
    // order, keeping the other dims' order, so that the reduced tensor's elements come out in
    // the output's order (keepdims' 1-dims take no room).
    auto t = std::make_unique<TransposeStep>();
    t->node = n.name;
    t->inputs = {b.slot(n.inputs[0])};
    SymShape moved;
    moved.rank = xs.rank;
    for (int pass = 0; pass < 2; ++pass) {
      for (int d = 0; d < xs.rank; ++d) {
        const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (reduced != (pass == 1)) continue;
        const int k = static_cast<int>(t->perm.size());
        t->perm.push_back(d);
        moved.base[k] = xs.base[d];
        moved.per_batch[k] = xs.per_batch[d];
      }
    }
    const SlotId tmp =
        b.new_slot(b.graph().value(n.inputs[0]).name + "~moved", DType::kFloat32, moved);
    t->outputs = {tmp};
    b.add_step(std::move(t));
    s->inputs = {tmp};
    r = {xs.rank - static_cast<int>(axes.size()), xs.rank};
  }
  s->op = n.kind == OpKind::kReduceMean  ? kernels::ReduceOp::kMean
          : n.kind == OpKind::kReduceSum ? kernels::ReduceOp::kSum
                                         : kernels::ReduceOp::kMax;
  s->begin = r.begin;
  s->end = r.end;
  s->fast = !b.options().use_reference_kernels;
  finish(b, std::move(s), n.outputs[0]);
}

void lower_layer_norm(PlanBuilder& b, const Node& n) {
  const auto& at = std::get<ir::LayerNormAttrs>(n.attrs);
  const SymShape& xs = b.shape(n.inputs[0]);
  const int64_t axis = at.axis < 0 ? at.axis + xs.rank : at.axis;
  for (int d = static_cast<int>(axis); d < xs.rank; ++d) {
    if (xs.per_batch[d] != 0) b.mixes_samples();
  }
  auto s = make_step<LayerNormStep>(b, n, {n.inputs[0]});
  s->norm_rank = xs.rank - static_cast<int>(axis);
  s->epsilon = at.epsilon;
  s->fast = !b.options().use_reference_kernels;
  for (size_t k = 1; k < n.inputs.size(); ++k) {
    if (n.inputs[k] < 0) continue;
    if (!is_constant(b, n.inputs[k])) {
      PlanBuilder::fail_node(n, "scale and bias must be constants");
    }
    const Tensor& t = b.graph().value(n.inputs[k]).data;
    (k == 1 ? s->scale : s->bias) = t.clone().reshaped({t.numel()});
  }
  finish(b, std::move(s), n.outputs[0]);
}

DType dtype_of(const PlanBuilder& b, ValueId v) {
  const ir::Value& val = b.graph().value(v);
  return val.is_constant() ? val.data.dtype() : val.dtype;
}

void lower_gather(PlanBuilder& b, const Node& n) {
  const auto& at = std::get<ir::GatherAttrs>(n.attrs);
  const SymShape& xs = b.shape(n.inputs[0]);
  const int axis = static_cast<int>(at.axis < 0 ? at.axis + xs.rank : at.axis);
  // Gathering samples (x[0] along the batch dim) mixes them: run() then takes the batch whole.
  if (xs.per_batch[axis] != 0) b.mixes_samples();
  if (n.inputs.size() > 1) {
    auto s = make_step<GatherIndexedStep>(b, n, {n.inputs[0], n.inputs[1]});
    s->axis = axis;
    s->data = dtype_of(b, n.inputs[0]);
    s->index = dtype_of(b, n.inputs[1]);
    s->fast = !b.options().use_reference_kernels;
    return finish(b, std::move(s), n.outputs[0]);
  }
  auto s = make_step<GatherStep>(b, n, {n.inputs[0]});
  s->axis = axis;
  s->elem = dtype_size(dtype_of(b, n.inputs[0]));
  for (int64_t i : at.indices) {
    s->indices.push_back(i < 0 && xs.per_batch[axis] == 0 ? i + xs.base[axis] : i);
  }
  finish(b, std::move(s), n.outputs[0]);
}

void lower_slice(PlanBuilder& b, const Node& n) {
  const SymShape& xs = b.shape(n.inputs[0]);
  const std::vector<ir::SliceDim> dims = ir::resolve_slice(n, xs.shape(1));
  const std::vector<ir::SliceDim> dims2 = ir::resolve_slice(n, xs.shape(2));
  auto s = make_step<SliceStep>(b, n, {n.inputs[0]});
  s->elem = dtype_size(dtype_of(b, n.inputs[0]));
  const auto& at = std::get<ir::SliceAttrs>(n.attrs);
  s->batch_start.assign(xs.rank, SliceStep::kNotBatch);
  for (int d = 0; d < xs.rank; ++d) {
    // (At batch 1 a slice of the batch dim may look whole, e.g. x[-1:]: look at batch 2 too.)
    const bool sliced = dims[d].start != 0 || dims[d].step != 1 || dims[d].count != xs.dim(d, 1) ||
                        dims2[d].start != 0 || dims2[d].step != 1 || dims2[d].count != xs.dim(d, 2);
    if (sliced && xs.per_batch[d] != 0) {
      // Slicing samples (x[-1:] along the batch): the start is resolved against each run's batch
      // and the plan mixes samples, so run() takes the batch whole.
      b.mixes_samples();
      for (size_t k = 0; k < at.axes.size(); ++k) {
        if ((at.axes[k] < 0 ? at.axes[k] + xs.rank : at.axes[k]) == d) {
          s->batch_start[d] = at.starts[k];
        }
      }
    }
    s->start.push_back(dims[d].start);
    s->step.push_back(dims[d].step);
  }
  finish(b, std::move(s), n.outputs[0]);
}

}  // namespace

void lower_float(PlanBuilder& b, const Node& n) {
  const bool fast = !b.options().use_reference_kernels;
  switch (n.kind) {
    case OpKind::kReshape:
    case OpKind::kFlatten:
    case OpKind::kIdentity:
      return b.alias(n.outputs[0], n.inputs[0]);
    case OpKind::kDropout:
      if (n.outputs.size() > 1 && (b.uses(n.outputs[1]) > 0 || b.is_graph_output(n.outputs[1]))) {
        PlanBuilder::fail_node(n, "the mask output of Dropout is not supported at inference");
      }
      return b.alias(n.outputs[0], n.inputs[0]);
    case OpKind::kGemm:
      return lower_gemm(b, n);
    case OpKind::kMatMul:
      return lower_matmul(b, n);
    case OpKind::kConv:
      return lower_conv(b, n);
    case OpKind::kBatchNorm:
      return lower_batch_norm(b, n);
    case OpKind::kMaxPool:
    case OpKind::kAveragePool: {
      const auto& at = std::get<ir::PoolAttrs>(n.attrs);
      const bool max = n.kind == OpKind::kMaxPool;
      check_pool_windows(n, at, b.shape(n.inputs[0]), b.shape(n.outputs[0]),
                         max || !at.count_include_pad);
      auto s = make_step<PoolStep>(b, n, {n.inputs[0]});
      s->attrs = at;
      s->max = max;
      s->fast = fast;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kGlobalAveragePool:
      return finish(b, make_step<GlobalAvgPoolStep>(b, n, {n.inputs[0]}), n.outputs[0]);
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kPow: {
      auto s = make_step<BinaryStep>(b, n, {n.inputs[0], n.inputs[1]});
      s->op = n.kind == OpKind::kAdd   ? kernels::BinaryOp::kAdd
              : n.kind == OpKind::kSub ? kernels::BinaryOp::kSub
              : n.kind == OpKind::kMul ? kernels::BinaryOp::kMul
              : n.kind == OpKind::kDiv ? kernels::BinaryOp::kDiv
                                       : kernels::BinaryOp::kPow;
      s->fast = fast;
      // Its sole reader an unquantized Relu (not a fusion barrier): applied in the same pass
      // (the int plan's residual Add + ReLU, which no conv epilogue takes there).
      if (const Node* act = b.sole_consumer(n.outputs[0]);
          act != nullptr && act->kind == OpKind::kRelu && act->inputs.size() == 1) {
        s->relu = true;
        b.mark_fused(*act);
        return finish(b, std::move(s), act->outputs[0]);
      }
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kRelu:
    case OpKind::kLeakyRelu:
    case OpKind::kClip:
    case OpKind::kSigmoid:
    case OpKind::kTanh:
    case OpKind::kErf:
    case OpKind::kSqrt:
    case OpKind::kExp:
    case OpKind::kNeg:
    case OpKind::kGelu: {
      auto s = make_step<UnaryStep>(b, n, {n.inputs[0]});
      s->fast = fast;
      switch (n.kind) {
        case OpKind::kRelu:
          s->params.op = kernels::UnaryOp::kRelu;
          break;
        case OpKind::kLeakyRelu:
          s->params.op = kernels::UnaryOp::kLeakyRelu;
          s->params.alpha = std::get<ir::LeakyReluAttrs>(n.attrs).alpha;
          break;
        case OpKind::kClip:
          s->params.op = kernels::UnaryOp::kClip;
          s->params.min = std::get<ir::ClipAttrs>(n.attrs).min;
          s->params.max = std::get<ir::ClipAttrs>(n.attrs).max;
          break;
        case OpKind::kSigmoid:
          s->params.op = kernels::UnaryOp::kSigmoid;
          break;
        case OpKind::kErf:
          s->params.op = kernels::UnaryOp::kErf;
          break;
        case OpKind::kSqrt:
          s->params.op = kernels::UnaryOp::kSqrt;
          break;
        case OpKind::kExp:
          s->params.op = kernels::UnaryOp::kExp;
          break;
        case OpKind::kNeg:
          s->params.op = kernels::UnaryOp::kNeg;
          break;
        case OpKind::kGelu:
          s->params.op = std::get<ir::GeluAttrs>(n.attrs).tanh ? kernels::UnaryOp::kGeluTanh
                                                               : kernels::UnaryOp::kGelu;
          break;
        default:
          s->params.op = kernels::UnaryOp::kTanh;
          break;
      }
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax: {
      auto s = make_step<SoftmaxStep>(b, n, {n.inputs[0]});
      s->axis = std::get<ir::AxisAttrs>(n.attrs).axis;
      s->log = n.kind == OpKind::kLogSoftmax;
      s->fast = fast;
      if (s->axis == 0 || s->axis == -b.shape(n.inputs[0]).rank) b.mixes_samples();
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kTranspose: {
      auto s = make_step<TransposeStep>(b, n, {n.inputs[0]});
      s->perm = std::get<ir::TransposeAttrs>(n.attrs).perm;
      const int rank = b.shape(n.inputs[0]).rank;
      if (s->perm.empty()) {
        for (int d = rank - 1; d >= 0; --d) s->perm.push_back(d);
      }
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kConcat: {
      auto s = make_step<ConcatStep>(b, n, n.inputs);
      const int64_t axis = std::get<ir::AxisAttrs>(n.attrs).axis;
      s->axis = axis < 0 ? axis + b.shape(n.outputs[0]).rank : axis;
      if (s->axis == 0) b.mixes_samples();
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kReduceMean:
    case OpKind::kReduceSum:
    case OpKind::kReduceMax:
      return lower_reduce(b, n);
    case OpKind::kLayerNorm:
      return lower_layer_norm(b, n);
    case OpKind::kGather:
      return lower_gather(b, n);
    case OpKind::kSlice:
      return lower_slice(b, n);
    case OpKind::kCast: {
      auto s = make_step<CastStep>(b, n, {n.inputs[0]});
      s->from = dtype_of(b, n.inputs[0]);
      s->to = std::get<ir::CastAttrs>(n.attrs).to;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kEqual: {
      auto s = make_step<EqualStep>(b, n, {n.inputs[0], n.inputs[1]});
      s->dtype = dtype_of(b, n.inputs[0]);
      s->fast = fast;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kNot:
      return finish(b, make_step<NotStep>(b, n, {n.inputs[0]}), n.outputs[0]);
    case OpKind::kAnd: {
      auto s = make_step<AndStep>(b, n, {n.inputs[0], n.inputs[1]});
      s->fast = fast;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kWhere: {
      auto s = make_step<WhereStep>(b, n, {n.inputs[0], n.inputs[1], n.inputs[2]});
      s->dtype = dtype_of(b, n.inputs[1]);
      s->fast = fast;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kExpand: {
      auto s = make_step<ExpandStep>(b, n, {n.inputs[0]});
      s->dtype = dtype_of(b, n.inputs[0]);
      s->fast = fast;
      return finish(b, std::move(s), n.outputs[0]);
    }
    case OpKind::kGlobalMaxPool:
    case OpKind::kHardSigmoid:
    case OpKind::kHardSwish:
    case OpKind::kPad:
    case OpKind::kResize:
    case OpKind::kConvTranspose:
      return lower_cnn_float(b, n);  // runtime/cnn_steps.cc
    case OpKind::kIm2Col3d:
      return lower_im2col3d(b, n);  // runtime/conv3d_steps.cc
    case OpKind::kGru:
    case OpKind::kLstm:
      return lower_rnn(b, n, nullptr);
  }
  PlanBuilder::fail_node(n, "operator not supported by the float engine");
}

}  // namespace qsearch::runtime
