#include "ir/fold_batch_norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace qsearch::ir {

namespace {

bool float_const(const Graph& g, ValueId v) {
  return v >= 0 && g.value(v).is_constant() && g.value(v).data.dtype() == DType::kFloat32;
}

// How a BatchNorm folds into the node before it.
struct Fold {
  NodeId producer = -1;  // the conv / linear whose weight is scaled
  NodeId bias_add = -1;  // a MatMul's bias Add (ir::linear_bias_add), which then writes BN's output
  NodeId view = -1;      // a Reshape between the conv and BN (channel_view), which then writes it
};

// Whether Reshape `r` keeps every (sample, channel) block of its input as it is: input and output
// agree on dim 0 (the batch) and dim 1, and the dims after them hold the same static count. A
// per-channel affine map then commutes with it. The importer writes a 3-D Conv's output view and
// a 1-D ConvTranspose's so (import_conv3d.cc, import_conv_transpose_nd.cc).
bool channel_view(const Graph& g, const Node& r) {
  if (r.kind != OpKind::kReshape || r.inputs.empty() || r.outputs.size() != 1) return false;
  const Shape& in = g.value(r.inputs[0]).shape;
  const Shape& out = g.value(r.outputs[0]).shape;
  if (in.size() < 2 || out.size() < 2 || in[0] != out[0] || in[1] != out[1] || in[1] < 0) {
    return false;
  }
  auto rest = [](const Shape& s) {
    int64_t n = 1;
    for (size_t d = 2; d < s.size(); ++d) {
      if (s[d] < 0) return int64_t{-1};
      n *= s[d];
    }
    return n;
  };
  return rest(in) >= 0 && rest(in) == rest(out);
}

// The fold of BatchNorm `bn` into the node producing its input, producer -1 when it cannot be.
Fold foldable_producer(const Graph& g, const Node& bn) {
  ValueId x = bn.inputs[0];
  for (int k = 1; k < 5; ++k) {
    if (!float_const(g, bn.inputs[k])) return {};
  }
  auto sole_reader = [&](ValueId v) {
    return g.value(v).producer >= 0 && g.consumers(v).size() == 1 &&
           std::find(g.outputs().begin(), g.outputs().end(), v) == g.outputs().end();
  };
  if (!sole_reader(x)) return {};
  Fold f{.producer = g.value(x).producer};
  const int64_t channels = g.value(bn.inputs[1]).data.numel();
  if (channel_view(g, g.node(f.producer))) {  // a 3-D Conv / 1-D ConvTranspose, then its view
    f.view = f.producer;
    const ValueId v = g.node(f.view).inputs[0];
    if (!sole_reader(v)) return {};
    f.producer = g.value(v).producer;
    const OpKind k = g.node(f.producer).kind;
    if (k != OpKind::kConv && k != OpKind::kConvTranspose) return {};
  }
  if (g.node(f.producer).kind == OpKind::kAdd) {  // MatMul + bias Add: torch's Linear as x @ W + b
    const NodeId mm = bias_add_owner(g, g.node(f.producer));
    if (mm < 0) return {};
    f.bias_add = f.producer;
    f.producer = mm;
    const Node& add = g.node(f.bias_add);
    if (g.value(add.inputs[bias_add_operand(g, add)]).data.numel() != channels) return {};
  }
  const Node& n = g.node(f.producer);
  if (n.outputs.size() != 1 || n.inputs.size() < 2 || !float_const(g, n.inputs[1])) return {};
  const ValueId bias = n.inputs.size() > 2 ? n.inputs[2] : kNoValue;
  const Shape& w = g.value(n.inputs[1]).shape;
  if (bias >= 0 && (!float_const(g, bias) || g.value(bias).data.numel() != channels)) return {};
  switch (n.kind) {
    case OpKind::kConv:
      return (w.size() == 3 || w.size() == 4) && w[0] == channels ? f : Fold{};
    case OpKind::kConvTranspose: {
      const int64_t group = std::get<ConvTransposeAttrs>(n.attrs).group;
      return w.size() == 4 && w[1] * group == channels ? f : Fold{};
    }
    case OpKind::kGemm: {
      const auto& a = std::get<GemmAttrs>(n.attrs);
      if (w.size() != 2 || (a.trans_b ? w[0] : w[1]) != channels) return {};
      // C must be exactly [N] (a broadcast [1, N] or scalar C is left alone).
      if (bias >= 0 && g.value(bias).shape != Shape{channels}) return {};
      return f;
    }
    case OpKind::kMatMul:
      // BatchNorm normalizes dim 1, the weight's columns only when the output is [N, F] (a
      // transformer's [B, T, F] MatMul normalized over T is kept).
      return w.size() == 2 && w[1] == channels && g.value(n.outputs[0]).shape.size() == 2 ? f
                                                                                          : Fold{};
    default:
      return {};
  }
}

}  // namespace

BatchNormFold fold_batch_norm(const Graph& g) {
  BatchNormFold out{.graph = g};
  Graph& f = out.graph;
  std::vector<bool> drop(g.nodes().size(), false);
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& bn = g.nodes()[i];
    if (bn.kind != OpKind::kBatchNorm) continue;
    const Fold fold = foldable_producer(g, bn);
    const NodeId p = fold.producer;
    if (p < 0) {
      out.kept.push_back(bn.config_name);
      continue;
    }
    const Node& prod = g.node(p);
    const float eps = std::get<BatchNormAttrs>(bn.attrs).epsilon;
    const int64_t c = g.value(bn.inputs[1]).data.numel();
    const float* gamma = g.value(bn.inputs[1]).data.data<float>();
    const float* beta = g.value(bn.inputs[2]).data.data<float>();
    const float* mean = g.value(bn.inputs[3]).data.data<float>();
    const float* var = g.value(bn.inputs[4]).data.data<float>();
    std::vector<double> a(c);
    for (int64_t o = 0; o < c; ++o) a[o] = gamma[o] / std::sqrt(static_cast<double>(var[o]) + eps);

    const Value& wv = g.value(prod.inputs[1]);
    Tensor w = wv.data.clone();
    float* wd = w.data<float>();
    // The output channel of weight element e: Conv's row (weight [M, C/group, ...]), Gemm's row
    // (trans_b) or column, MatMul's column ([K, N]), ConvTranspose's (weight [C, M/group, kH,
    // kW]: element [ci, j, ..] feeds channel (ci / (C/group)) * (M/group) + j).
    const int64_t per = w.numel() / c;
    std::function<int64_t(int64_t)> channel = [per](int64_t e) { return e / per; };
    double bias_scale = 1.0;
    if (prod.kind == OpKind::kGemm) {
      const auto& ga = std::get<GemmAttrs>(prod.attrs);
      if (!ga.trans_b) channel = [c](int64_t e) { return e % c; };
      bias_scale = ga.beta;
    } else if (prod.kind == OpKind::kMatMul) {
      channel = [c](int64_t e) { return e % c; };
    } else if (prod.kind == OpKind::kConvTranspose) {
      const Shape& ws = wv.shape;
      const int64_t per_group_out = ws[1], spatial = ws[2] * ws[3];
      const int64_t per_group_in = ws[0] / std::get<ConvTransposeAttrs>(prod.attrs).group;
      channel = [=](int64_t e) {
        const int64_t ci = e / (per_group_out * spatial), j = e / spatial % per_group_out;
        return ci / per_group_in * per_group_out + j;
      };
    }
    for (int64_t e = 0; e < w.numel(); ++e) wd[e] = static_cast<float>(wd[e] * a[channel(e)]);
    // The old bias: the node's own input, or the MatMul's bias Add operand.
    int add_operand = -1;
    ValueId old_bias = prod.inputs.size() > 2 ? prod.inputs[2] : kNoValue;
    if (fold.bias_add >= 0) {
      add_operand = bias_add_operand(g, g.node(fold.bias_add));
      old_bias = g.node(fold.bias_add).inputs[add_operand];
    }
    Tensor b(old_bias >= 0 ? g.value(old_bias).data.shape() : Shape{c}, DType::kFloat32);
    for (int64_t o = 0; o < c; ++o) {
      const double b0 = old_bias >= 0 ? bias_scale * g.value(old_bias).data.data<float>()[o] : 0.0;
      b.data<float>()[o] = static_cast<float>((b0 - mean[o]) * a[o] + beta[o]);
    }
    // A 3-D conv's weight view `<name>~2d` becomes `<name>~bn_folded~2d` (export strips `~2d`).
    std::string w_name = wv.name + "~bn_folded";
    if (wv.name.ends_with("~2d")) w_name = wv.name.substr(0, wv.name.size() - 3) + "~bn_folded~2d";
    const ValueId nw = f.add_constant(w_name, std::move(w));
    const std::string bias_name = old_bias >= 0 ? g.value(old_bias).name + "~bn_folded"
                                                : fmt::format("{}.bias~bn_folded", prod.name);
    const ValueId nb = f.add_constant(bias_name, std::move(b));
    Node& fp = f.node(p);
    fp.inputs[1] = nw;
    if (fold.bias_add >= 0) {
      // MatMul + Add: the Add (the linear's bias) now adds b' and writes the BatchNorm's output.
      Node& add = f.node(fold.bias_add);
      add.inputs[add_operand] = nb;
      add.outputs[0] = bn.outputs[0];
      f.value(bn.inputs[0]).producer = -1;
      drop[i] = true;
      out.folded.push_back(bn.config_name);
      continue;
    }
    if (fp.kind == OpKind::kMatMul) {
      // A MatMul [N, K] x [K, M] without a bias: the same linear as a Gemm, which takes one.
      fp.kind = OpKind::kGemm;
      fp.attrs = GemmAttrs{};
    }
    if (fp.inputs.size() > 2) {
      fp.inputs[2] = nb;
    } else {
      fp.inputs.push_back(nb);
    }
    if (fp.kind == OpKind::kGemm) std::get<GemmAttrs>(fp.attrs).beta = 1.0f;
    // The conv (or the view after it, which keeps reading the conv) now writes BN's output.
    f.node(fold.view >= 0 ? fold.view : p).outputs[0] = bn.outputs[0];
    f.value(bn.inputs[0]).producer = -1;  // nothing writes BN's old input any more
    drop[i] = true;
    out.folded.push_back(bn.config_name);
  }
  if (out.folded.empty()) return out;
  remove_nodes(f, drop);
  f.finalize();
  return out;
}

}  // namespace qsearch::ir
