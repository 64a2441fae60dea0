// Import-time fusion of PyTorch's LayerNorm and GELU exports into single ir ops (importer.h).
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {

using ir::Node;
using ir::OpKind;
using ir::ValueId;

class Fuser {
 public:
  explicit Fuser(ir::Graph& g) : g_(g), shapes_(g.infer_shapes(1)) {
    consumers_.resize(g.values().size());
    for (size_t i = 0; i < g.nodes().size(); ++i) {
      for (ValueId v : g.nodes()[i].inputs) {
        if (v >= 0) consumers_[v].push_back(static_cast<int>(i));
      }
    }
    for (ValueId o : g.outputs()) outputs_.insert(o);
    for (const Node& n : g.nodes()) names_.insert(n.name);
    drop_.assign(g.nodes().size(), false);
  }

  int run() {
    int fused = 0;
    for (size_t i = 0; i < g_.nodes().size(); ++i) {
      if (drop_[i]) continue;
      const OpKind k = g_.nodes()[i].kind;
      if (k == OpKind::kDiv && fuse_layer_norm(static_cast<int>(i))) ++fused;
      if (k == OpKind::kErf && fuse_gelu(static_cast<int>(i), false)) ++fused;
      if (k == OpKind::kTanh && fuse_gelu(static_cast<int>(i), true)) ++fused;
    }
    if (fused > 0) ir::remove_nodes(g_, drop_);
    return fused;
  }

 private:
  const Node& node(int i) const { return g_.nodes()[i]; }
  int producer(ValueId v) const {
    if (v < 0) return -1;
    const int p = g_.value(v).producer;
    return p >= 0 && !drop_[p] ? p : -1;
  }
  // The node producing v if it has kind k and v is read only by `reader` (once) and is no output.
  int private_producer(ValueId v, OpKind k, int reader) const {
    const int p = producer(v);
    if (p < 0 || node(p).kind != k || outputs_.count(v)) return -1;
    if (consumers_[v].size() != 1 || consumers_[v][0] != reader) return -1;
    return p;
  }
  // The single reader of v (v no graph output), or -1.
  int sole_reader(ValueId v) const {
    if (outputs_.count(v) || consumers_[v].size() != 1) return -1;
    return consumers_[v][0];
  }
  bool is_scalar(ValueId v, double want) const {
    if (v < 0 || !g_.value(v).is_constant()) return false;
    const Tensor& t = g_.value(v).data;
    if (t.dtype() != DType::kFloat32 || t.numel() != 1) return false;
    const double got = t.data<float>()[0];
    return std::fabs(got - want) <= 1e-6 * std::fabs(want);
  }
  // For a binary node reading `x` and a constant: the other operand, or -1.
  static ValueId other(const Node& n, ValueId x) {
    if (n.inputs.size() != 2) return -1;
    if (n.inputs[0] == x) return n.inputs[1];
    if (n.inputs[1] == x) return n.inputs[0];
    return -1;
  }
  std::string fused_name(const std::string& like, const char* op) {
    const size_t slash = like.rfind('/');
    const std::string base =
        (slash == std::string::npos ? std::string() : like.substr(0, slash + 1)) + op;
    std::string name = base;
    for (int k = 1; names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    names_.insert(name);
    return name;
  }
  void replace(int last, const std::vector<int>& chain, Node fused) {
    for (int i : chain) drop_[i] = i != last;
    fused.outputs = node(last).outputs;
    g_.nodes()[last] = std::move(fused);
  }

  // n = Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), eps))), d = Sub(x, ReduceMean(x)); then
  // optionally Mul(n, scale) and Add(., bias).
  bool fuse_layer_norm(int div) {
    const Node& dv = node(div);
    const ValueId d = dv.inputs[0];
    const int sq = private_producer(dv.inputs[1], OpKind::kSqrt, div);
    if (sq < 0) return false;
    const int add = private_producer(node(sq).inputs[0], OpKind::kAdd, sq);
    if (add < 0) return false;
    ValueId var = -1, eps = -1;
    for (int k = 0; k < 2; ++k) {
      const int p = producer(node(add).inputs[k]);
      if (p >= 0 && node(p).kind == OpKind::kReduceMean) {
        var = node(add).inputs[k];
        eps = node(add).inputs[1 - k];
      }
    }
    if (var < 0 || eps < 0 || !g_.value(eps).is_constant() || g_.value(eps).data.numel() != 1) {
      return false;
    }
    const float epsilon = g_.value(eps).data.data<float>()[0];
    if (!(epsilon >= 0.0f)) return false;
    const int rm2 = private_producer(var, OpKind::kReduceMean, add);
    if (rm2 < 0) return false;
    const ValueId p2 = node(rm2).inputs[0];
    int pw = private_producer(p2, OpKind::kPow, rm2);
    if (pw >= 0 && !(node(pw).inputs[0] == d && is_scalar(node(pw).inputs[1], 2.0))) return false;
    if (pw < 0) {
      pw = private_producer(p2, OpKind::kMul, rm2);
      if (pw < 0 || node(pw).inputs[0] != d || node(pw).inputs[1] != d) return false;
    }
    const int sub = producer(d);
    if (sub < 0 || node(sub).kind != OpKind::kSub || outputs_.count(d)) return false;
    const std::set<int> d_readers(consumers_[d].begin(), consumers_[d].end());
    if (d_readers != std::set<int>{pw, div}) return false;
    const ValueId x = node(sub).inputs[0];
    const int rm1 = private_producer(node(sub).inputs[1], OpKind::kReduceMean, sub);
    if (rm1 < 0 || node(rm1).inputs[0] != x) return false;
    const auto& a1 = std::get<ir::ReduceAttrs>(node(rm1).attrs);
    const auto& a2 = std::get<ir::ReduceAttrs>(node(rm2).attrs);
    if (!a1.keepdims || !a2.keepdims) return false;
    const int rank = static_cast<int>(shapes_[x].size());
    ir::ReduceRange r1, r2;
    try {
      r1 = ir::reduce_range(node(rm1), a1, rank);
      r2 = ir::reduce_range(node(rm2), a2, rank);
    } catch (const Error&) {
      return false;
    }
    if (r1.begin != r2.begin || r1.end != r2.end || r1.end != rank || r1.begin >= rank) {
      return false;
    }
    const Shape norm(shapes_[x].begin() + r1.begin, shapes_[x].end());
    auto fits = [&](ValueId c) {
      if (c < 0 || !g_.value(c).is_constant()) return false;
      Shape s = g_.value(c).data.shape();
      while (s.size() > norm.size() && s.front() == 1) s.erase(s.begin());
      return s == norm;
    };
    std::vector<int> chain = {rm1, sub, pw, rm2, add, sq, div};
    int last = div;
    ValueId scale = -1, bias = -1;
    if (const int mul = sole_reader(dv.outputs[0]); mul >= 0 && node(mul).kind == OpKind::kMul) {
      const ValueId c = other(node(mul), dv.outputs[0]);
      if (fits(c)) {
        scale = c;
        chain.push_back(mul);
        last = mul;
        if (const int ad = sole_reader(node(mul).outputs[0]);
            ad >= 0 && node(ad).kind == OpKind::kAdd) {
          const ValueId b = other(node(ad), node(mul).outputs[0]);
          if (fits(b)) {
            bias = b;
            chain.push_back(ad);
            last = ad;
          }
        }
      }
    }
    const std::string name = fused_name(node(rm1).name, "LayerNormalization");
    if (scale < 0) {
      Tensor ones(norm, DType::kFloat32);
      for (float& v : ones.span<float>()) v = 1.0f;
      scale = g_.add_constant(name + ".scale", std::move(ones));
    }
    Node fused{OpKind::kLayerNorm,
               name,
               {x, scale, bias},
               {},
               ir::LayerNormAttrs{r1.begin - rank, epsilon},
               ""};
    if (bias < 0) fused.inputs.pop_back();
    replace(last, chain, std::move(fused));
    return true;
  }

  // The shared tail: t = Add(core, 1); y = Mul(Mul(x, t), 0.5) or Mul(Mul(x, 0.5), t).
  bool gelu_tail(int core_node, ValueId x, std::vector<int>& chain, int& last) {
    const ValueId core = node(core_node).outputs[0];
    const int add = sole_reader(core);
    if (add < 0 || node(add).kind != OpKind::kAdd || !is_scalar(other(node(add), core), 1.0)) {
      return false;
    }
    const ValueId t = node(add).outputs[0];
    const int m1 = sole_reader(t);
    if (m1 < 0 || node(m1).kind != OpKind::kMul) return false;
    chain.push_back(add);
    chain.push_back(m1);
    const ValueId o = other(node(m1), t);
    if (o == x) {  // Mul(Mul(x, t), 0.5)
      const int m2 = sole_reader(node(m1).outputs[0]);
      if (m2 < 0 || node(m2).kind != OpKind::kMul ||
          !is_scalar(other(node(m2), node(m1).outputs[0]), 0.5)) {
        return false;
      }
      chain.push_back(m2);
      last = m2;
      return true;
    }
    // Mul(Mul(x, 0.5), t)
    const int h = private_producer(o, OpKind::kMul, m1);
    if (h < 0 || other(node(h), x) < 0 || !is_scalar(other(node(h), x), 0.5)) return false;
    chain.push_back(h);
    last = m1;
    return true;
  }

  bool fuse_gelu(int anchor, bool tanh) {
    const Node& an = node(anchor);
    std::vector<int> chain = {anchor};
    ValueId x = -1;
    if (!tanh) {
      // Erf(Div(x, sqrt 2)) or Erf(Mul(x, 1 / sqrt 2))
      const int sc = producer(an.inputs[0]);
      if (sc < 0 || sole_reader(an.inputs[0]) != anchor) return false;
      const Node& s = node(sc);
      if (s.kind == OpKind::kDiv && is_scalar(s.inputs[1], std::sqrt(2.0))) {
        x = s.inputs[0];
      } else if (s.kind == OpKind::kMul) {
        for (int k = 0; k < 2; ++k) {
          if (is_scalar(s.inputs[1 - k], std::sqrt(0.5))) x = s.inputs[k];
        }
      }
      if (x < 0 || g_.value(x).is_constant()) return false;
      chain.push_back(sc);
    } else {
      // Tanh(Mul(Add(x, Mul(x^3, 0.044715)), sqrt(2 / pi)))
      const int w = private_producer(an.inputs[0], OpKind::kMul, anchor);
      if (w < 0) return false;
      ValueId u = -1;
      for (int k = 0; k < 2; ++k) {
        if (is_scalar(node(w).inputs[1 - k], std::sqrt(2.0 / 3.14159265358979323846))) {
          u = node(w).inputs[k];
        }
      }
      const int ad = u < 0 ? -1 : private_producer(u, OpKind::kAdd, w);
      if (ad < 0) return false;
      int cm = -1;
      for (int k = 0; k < 2 && cm < 0; ++k) {
        const int p = private_producer(node(ad).inputs[1 - k], OpKind::kMul, ad);
        if (p >= 0 &&
            (is_scalar(node(p).inputs[0], 0.044715) || is_scalar(node(p).inputs[1], 0.044715))) {
          cm = p;
          x = node(ad).inputs[k];
        }
      }
      if (cm < 0 || x < 0 || g_.value(x).is_constant()) return false;
      const ValueId cube =
          is_scalar(node(cm).inputs[0], 0.044715) ? node(cm).inputs[1] : node(cm).inputs[0];
      chain.insert(chain.end(), {w, ad, cm});
      if (const int pw = private_producer(cube, OpKind::kPow, cm); pw >= 0) {
        if (node(pw).inputs[0] != x || !is_scalar(node(pw).inputs[1], 3.0)) return false;
        chain.push_back(pw);
      } else {
        const int m3 = private_producer(cube, OpKind::kMul, cm);
        if (m3 < 0) return false;
        const ValueId sqv = other(node(m3), x);
        const int m2 = sqv < 0 ? -1 : private_producer(sqv, OpKind::kMul, m3);
        if (m2 < 0 || node(m2).inputs[0] != x || node(m2).inputs[1] != x) return false;
        chain.insert(chain.end(), {m3, m2});
      }
    }
    int last = -1;
    if (!gelu_tail(anchor, x, chain, last)) return false;
    Node fused{OpKind::kGelu, fused_name(an.name, "Gelu"), {x}, {}, ir::GeluAttrs{tanh}, ""};
    replace(last, chain, std::move(fused));
    return true;
  }

  ir::Graph& g_;
  std::vector<Shape> shapes_;
  std::vector<std::vector<int>> consumers_;
  std::set<ValueId> outputs_;
  std::set<std::string> names_;
  std::vector<bool> drop_;
};

}  // namespace

int fuse_patterns(ir::Graph& g) { return Fuser(g).run(); }

}  // namespace qsearch::onnx::detail
