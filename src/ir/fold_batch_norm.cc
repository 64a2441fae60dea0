#include "ir/fold_batch_norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace qsearch::ir {

namespace {

bool float_const(const Graph& g, ValueId v) {
  return v >= 0 && g.value(v).is_constant() && g.value(v).data.dtype() == DType::kFloat32;
}

// The node producing BatchNorm `bn`'s input when the BatchNorm can be folded into it, else -1.
NodeId foldable_producer(const Graph& g, const Node& bn) {
  const ValueId x = bn.inputs[0];
  for (int k = 1; k < 5; ++k) {
    if (!float_const(g, bn.inputs[k])) return -1;
  }
  const NodeId p = g.value(x).producer;
  if (p < 0 || g.consumers(x).size() != 1) return -1;
  if (std::find(g.outputs().begin(), g.outputs().end(), x) != g.outputs().end()) return -1;
  const Node& n = g.node(p);
  if (n.outputs.size() != 1 || n.inputs.size() < 2 || !float_const(g, n.inputs[1])) return -1;
  const ValueId bias = n.inputs.size() > 2 ? n.inputs[2] : kNoValue;
  const int64_t channels = g.value(bn.inputs[1]).data.numel();
  const Shape& w = g.value(n.inputs[1]).shape;
  if (bias >= 0 && (!float_const(g, bias) || g.value(bias).data.numel() != channels)) return -1;
  if (n.kind == OpKind::kConv) {
    return (w.size() == 3 || w.size() == 4) && w[0] == channels ? p : -1;
  }
  if (n.kind == OpKind::kGemm) {
    const auto& a = std::get<GemmAttrs>(n.attrs);
    if (w.size() != 2 || (a.trans_b ? w[0] : w[1]) != channels) return -1;
    // C must be exactly [N] (a broadcast [1, N] or scalar C is left alone).
    if (bias >= 0 && g.value(bias).shape != Shape{channels}) return -1;
    return p;
  }
  return -1;
}

}  // namespace

BatchNormFold fold_batch_norm(const Graph& g) {
  BatchNormFold out{.graph = g};
  Graph& f = out.graph;
  std::vector<bool> drop(g.nodes().size(), false);
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& bn = g.nodes()[i];
    if (bn.kind != OpKind::kBatchNorm) continue;
    const NodeId p = foldable_producer(g, bn);
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
    bool rows = true;  // output channel o owns row o (Conv, Gemm with trans_b)
    double bias_scale = 1.0;
    if (prod.kind == OpKind::kGemm) {
      const auto& ga = std::get<GemmAttrs>(prod.attrs);
      rows = ga.trans_b;
      bias_scale = ga.beta;
    }
    const int64_t per = w.numel() / c;
    for (int64_t o = 0; o < c; ++o) {
      for (int64_t t = 0; t < per; ++t) {
        float& v = rows ? wd[o * per + t] : wd[t * c + o];
        v = static_cast<float>(v * a[o]);
      }
    }
    const ValueId old_bias = prod.inputs.size() > 2 ? prod.inputs[2] : kNoValue;
    Tensor b({c}, DType::kFloat32);
    for (int64_t o = 0; o < c; ++o) {
      const double b0 = old_bias >= 0 ? bias_scale * g.value(old_bias).data.data<float>()[o] : 0.0;
      b.data<float>()[o] = static_cast<float>((b0 - mean[o]) * a[o] + beta[o]);
    }
    const ValueId nw = f.add_constant(wv.name + "~bn_folded", std::move(w));
    const std::string bias_name = old_bias >= 0 ? g.value(old_bias).name + "~bn_folded"
                                                : fmt::format("{}.bias~bn_folded", prod.name);
    const ValueId nb = f.add_constant(bias_name, std::move(b));
    Node& fp = f.node(p);
    fp.inputs[1] = nw;
    if (fp.inputs.size() > 2) {
      fp.inputs[2] = nb;
    } else {
      fp.inputs.push_back(nb);
    }
    if (fp.kind == OpKind::kGemm) std::get<GemmAttrs>(fp.attrs).beta = 1.0f;
    fp.outputs[0] = bn.outputs[0];
    f.value(bn.inputs[0]).producer = -1;  // nothing writes the conv's old output any more
    drop[i] = true;
    out.folded.push_back(bn.config_name);
  }
  if (out.folded.empty()) return out;
  remove_nodes(f, drop);
  f.finalize();
  return out;
}

}  // namespace qsearch::ir
