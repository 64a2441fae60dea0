// Mode::kInt: bit-accurate integer execution of MASE's fake-quant math (node_quant.h).
//
// Every value has a canonical representation, the one its producer naturally makes:
//   float  - graph input, float ops (unquantized nodes; batch_norm2d / tanh after their input is
//            quantized and converted back exactly);
//   exact  - the exact result of a quantized linear / conv2d / matmul / add / sub / mul: an
//            integer at a known binary point (the accumulator), never rounded;
//   codes  - a value that is itself quantized: a quantized relu's output relu(q(x)) = q(x)
//            (unsigned codes), a linear / conv2d output with data_out;
//   derived - an unquantized view, max pool or relu of a non-float value: computed on whatever
//            representation its consumers ask for (each commutes exactly with every monotone
//            requantization, so this is the same math), costing no conversion of its own.
// Consumers ask for a representation: the codes of a format (a quantized node's operand) or
// float (a float op, a graph output). Conversions are exact-or-one-rounding: exact -> codes is one
// requantization, exact -> float one rounding, codes -> codes a requantization (MASE quantizes a
// quantized value again the same way), float -> codes the quantizer itself. A producer whose
// consumers all ask for the same representation writes it directly (fused requantization or
// float output in the GEMM epilogue); otherwise it writes its exact accumulator once and the
// conversions follow. Nothing goes through float between integer nodes.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <sys/mman.h>

#include "core/tensor_storage.h"
#include "kernels/fixed/bitpack.h"
#include "kernels/fixed/winograd.h"
#include "quant/quantize.h"
#include "runtime/cnn_steps.h"
#include "runtime/lowering.h"
#include "runtime/node_quant.h"
#include "runtime/quant_steps.h"
#include "runtime/rnn_lowering.h"
#include "runtime/weight_file.h"

namespace qsearch::runtime {

namespace {

namespace fx = kernels::fixed;
using ir::Node;
using ir::OpKind;
using ir::ValueId;
using quant::FixedFormat;
using quant::Rounding;

// The bytes a packing keeps resident (what the PackCache counts): the packed GEMM panels (unless
// released) and, for a conv, the copies its paths read (the direct path's rows and lanes, the
// depthwise pairs, the Winograd filters; none of them in packed_bytes(), the model's parameter
// bytes).
size_t resident_bytes(const fx::PackedWeights& p) { return p.packed_bytes(); }
size_t resident_bytes(const fx::PackedConv2d& p) {
  size_t total = p.depthwise_pairs().nbytes();
  for (const fx::PackedWeights& g : p.groups()) total += g.panels().nbytes();
  for (const Tensor& t : p.weight_rows()) total += t.nbytes();
  for (const Tensor& t : p.weight_lanes()) total += t.nbytes();
  if (p.winograd() != nullptr) total += p.winograd()->u.nbytes();
  return total;
}

// A representation a consumer asks for.
struct Want {
  bool is_float = true;
  FixedFormat format;
  Rounding rounding = Rounding::kHalfToEven;

  static Want real() { return Want{}; }
  static Want codes(const FixedFormat& f, Rounding r) { return Want{false, f, r}; }
  bool operator==(const Want& o) const {
    return is_float == o.is_float && (is_float || (format == o.format && rounding == o.rounding));
  }
  std::string str() const {
    return is_float
               ? "float"
               : fmt::format("{} {}", quant::format_name(format), quant::rounding_name(rounding));
  }
};

enum class Canon { kFloat, kExact, kCodes, kDerived };

struct ValueInfo {
  Canon canon = Canon::kFloat;
  SlotId slot = kNoSlot;  // kExact / kCodes: the canonical slot, if it was written
  std::vector<Want> demands;
  std::vector<std::pair<Want, SlotId>> reprs;  // representations made so far
};

bool is_view(OpKind k) {
  return k == OpKind::kReshape || k == OpKind::kFlatten || k == OpKind::kIdentity ||
         k == OpKind::kDropout;
}

class IntLowering {
 public:
  explicit IntLowering(PlanBuilder& b)
      : b_(b), g_(b.graph()), nq_(resolve_node_quant(g_, b.options().quant)) {}

  void run() {
    classify();
    collect_demands();
    for (size_t i = 0; i < nq_.size(); ++i) {
      const Node& n = g_.nodes()[i];
      if (barrier(n)) b_.set_fusion_barrier(n);
    }
    for (size_t i = 0; i < nq_.size(); ++i) {
      const Node& n = g_.nodes()[i];
      if (!b_.is_fused(n) && info_[n.outputs[0]].canon != Canon::kDerived) lower(n, nq_[i]);
      b_.drop_consumed_constants(n);
    }
    for (ValueId v : g_.outputs()) get(v, Want::real());
    count_float_parameters();
  }

 private:
  const NodeQuant& nq(const Node& n) const { return nq_[b_.node_index(n)]; }
  bool is_constant(ValueId v) const { return v >= 0 && g_.value(v).is_constant(); }

  // A float op the float lowering may fuse: unquantized, and reading float values only.
  bool barrier(const Node& n) const {
    if (nq(n).quantized() || info_[n.outputs[0]].canon == Canon::kDerived) return true;
    for (ValueId v : n.inputs) {
      if (v >= 0 && !is_constant(v) && info_[v].canon != Canon::kFloat) return true;
    }
    return false;
  }

  void classify() {
    info_.assign(g_.values().size(), ValueInfo{});
    for (const Node& n : g_.nodes()) {
      const NodeQuant& q = nq(n);
      Canon c = Canon::kFloat;
      switch (q.kind) {
        case NodeQuant::Kind::kNone: {
          const bool transparent =
              is_view(n.kind) || n.kind == OpKind::kMaxPool || n.kind == OpKind::kRelu;
          if (transparent && info_[n.inputs[0]].canon != Canon::kFloat) c = Canon::kDerived;
          break;
        }
        case NodeQuant::Kind::kLinear:
          if (bias_in_gemm(q)) continue;  // its bias Add's output is the linear's (below)
          c = q.data_out ? Canon::kCodes : Canon::kExact;
          break;
        case NodeQuant::Kind::kLinearBias:
          c = q.data_out ? Canon::kCodes : (bias_in_gemm(q) ? Canon::kExact : Canon::kFloat);
          break;
        case NodeQuant::Kind::kConv:
          c = q.data_out ? Canon::kCodes : Canon::kExact;
          break;
        case NodeQuant::Kind::kMatMul:
        case NodeQuant::Kind::kAdd:
        case NodeQuant::Kind::kSub:
        case NodeQuant::Kind::kMul:
          c = Canon::kExact;
          break;
        case NodeQuant::Kind::kRelu:
          c = Canon::kCodes;
          break;
        case NodeQuant::Kind::kInputOnly:
          c = q.data_out ? Canon::kCodes : Canon::kFloat;
          break;
        case NodeQuant::Kind::kRnn:
          c = Canon::kFloat;
          break;
      }
      info_[n.outputs[0]].canon = c;
    }
  }

  static void add_demand(ValueInfo& vi, const Want& w) {
    if (std::find(vi.demands.begin(), vi.demands.end(), w) == vi.demands.end()) {
      vi.demands.push_back(w);
    }
  }

  // What each consumer will ask of its inputs: the same rules get() is called with below.
  void collect_demands() {
    for (ValueId v : g_.outputs()) add_demand(info_[v], Want::real());
    for (auto it = g_.nodes().rbegin(); it != g_.nodes().rend(); ++it) {
      const Node& n = *it;
      const NodeQuant& q = nq(n);
      if (q.kind == NodeQuant::Kind::kLinearBias && bias_in_gemm(q)) continue;  // with its linear
      if (info_[n.outputs[0]].canon == Canon::kDerived) {
        for (const Want& w : info_[n.outputs[0]].demands) add_demand(info_[n.inputs[0]], w);
        continue;
      }
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const ValueId v = n.inputs[k];
        if (v < 0 || is_constant(v)) continue;
        if (q.quantized()) {
          if (q.inputs[k]) {
            add_demand(info_[v], Want::codes(*q.inputs[k], q.rounding));
          } else if (q.kind == NodeQuant::Kind::kRnn || q.kind == NodeQuant::Kind::kLinearBias) {
            add_demand(info_[v], Want::real());  // an initial state / a float bias add: in float
          }
        } else {
          add_demand(info_[v], Want::real());
        }
      }
    }
  }

  std::string codes_name(ValueId v, const FixedFormat& f) const {
    return fmt::format("{}:{}", g_.value(v).name, quant::format_name(f));
  }

  template <typename T>
  std::unique_ptr<T> step(const Node& n) const {
    auto s = std::make_unique<T>();
    s->node = n.name;
    return s;
  }

  // ---- representations ------------------------------------------------------------------------

  SlotId get(ValueId v, const Want& w) {
    ValueInfo& vi = info_[v];
    for (const auto& [have, s] : vi.reprs) {
      if (have == w) return s;
    }
    SlotId s = kNoSlot;
    const std::string& name = g_.value(v).name;
    if (vi.canon == Canon::kDerived) {
      s = derived(v, w);
    } else if (vi.canon == Canon::kFloat) {
      if (w.is_float) {
        s = b_.slot(v);  // written by its producer (or the graph input)
      } else {
        auto st = std::make_unique<QuantizeStep>();
        st->node = fmt::format("quantize '{}'", name);
        st->format = w.format;
        st->rounding = w.rounding;
        st->inputs = {b_.slot(v)};
        s = b_.new_slot(codes_name(v, w.format), quant::storage_dtype(w.format), b_.shape(v),
                        w.format);
        st->outputs = {s};
        b_.add_step(std::move(st));
      }
    } else {
      QSEARCH_CHECK(vi.slot != kNoSlot && "a representation nobody demanded was asked for");
      const Slot& src = b_.slot_info(vi.slot);
      if (w.is_float) {
        auto st = std::make_unique<DequantizeStep>();
        st->node = fmt::format("dequantize '{}'", name);
        st->in_dtype = src.dtype;
        st->frac = src.frac;
        st->inputs = {vi.slot};
        s = b_.slot(v);
        st->outputs = {s};
        b_.add_step(std::move(st));
      } else if (src.format && *src.format == w.format) {
        s = vi.slot;  // requantizing codes to their own format is the identity
      } else {
        auto st = std::make_unique<RequantizeStep>();
        st->node = fmt::format("requantize '{}'", name);
        st->in_dtype = src.dtype;
        st->in_frac = src.frac;
        st->format = w.format;
        st->rounding = w.rounding;
        st->inputs = {vi.slot};
        s = b_.new_slot(codes_name(v, w.format), quant::storage_dtype(w.format), b_.shape(v),
                        w.format);
        st->outputs = {s};
        b_.add_step(std::move(st));
      }
    }
    info_[v].reprs.emplace_back(w, s);
    return s;
  }

  // An unquantized view / max pool / relu of a non-float value, in representation w.
  SlotId derived(ValueId v, const Want& w) {
    const Node& t = g_.node(g_.value(v).producer);
    const SlotId src = get(t.inputs[0], w);
    if (w.is_float) {
      lower_float(b_, t);  // reads the float input just made, writes slot(v)
      return b_.slot(v);
    }
    const std::string name = codes_name(v, w.format);
    if (is_view(t.kind)) return b_.view_slot(src, name, b_.shape(v));
    const DType dtype = b_.slot_info(src).dtype;
    if (t.kind == OpKind::kRelu) {
      if (!w.format.is_signed) return src;  // codes of an unsigned format are never negative
      auto st = step<IntReluStep>(t);
      st->dtype = dtype;
      st->inputs = {src};
      const SlotId out = b_.new_slot(name, dtype, b_.shape(v), w.format);
      st->outputs = {out};
      b_.add_step(std::move(st));
      return out;
    }
    QSEARCH_CHECK(t.kind == OpKind::kMaxPool);
    auto st = step<IntMaxPoolStep>(t);
    st->dtype = dtype;
    st->params = max_pool_params(t, b_.shape(t.inputs[0]), b_.shape(v));
    st->inputs = {src};
    const SlotId out = b_.new_slot(name, dtype, b_.shape(v), w.format);
    st->outputs = {out};
    b_.add_step(std::move(st));
    return out;
  }

  fx::MaxPool2dParams max_pool_params(const Node& t, const SymShape& x, const SymShape& y) const {
    const auto& a = std::get<ir::PoolAttrs>(t.attrs);
    fx::MaxPool2dParams p;
    p.kernel_h = a.kernel[0];
    p.kernel_w = a.kernel[1];
    p.stride_h = a.strides[0];
    p.stride_w = a.strides[1];
    p.dilation_h = a.dilations[0];
    p.dilation_w = a.dilations[1];
    p.pad_top = a.pads[0];
    p.pad_left = a.pads[1];
    p.pad_bottom = a.pads[2];
    p.pad_right = a.pads[3];
    const int64_t h = x.base[2], w = x.base[3];
    // ceil_mode: extra bottom/right padding makes the kernel's floor rule give the same windows
    // (padding never wins a max).
    p.pad_bottom += std::max<int64_t>(0, y.base[2] - p.out_h(h));
    p.pad_right += std::max<int64_t>(0, y.base[3] - p.out_w(w));
    for (int d = 0; d < 2; ++d) {
      const int64_t in = d == 0 ? h : w, out = y.base[2 + d];
      const int64_t stride = d == 0 ? p.stride_h : p.stride_w,
                    dil = d == 0 ? p.dilation_h : p.dilation_w;
      const int64_t pad = d == 0 ? p.pad_top : p.pad_left, k = d == 0 ? p.kernel_h : p.kernel_w;
      for (int64_t o = 0; o < out; ++o) {
        bool inside = false;
        for (int64_t u = 0; u < k && !inside; ++u) {
          const int64_t i = o * stride - pad + u * dil;
          inside = i >= 0 && i < in;
        }
        if (!inside) {
          PlanBuilder::fail_node(t, fmt::format("the pooling window of output {} {} covers only "
                                                "padding: make the padding smaller than the kernel",
                                                d == 0 ? "row" : "column", o));
        }
      }
    }
    return p;
  }

  // ---- quantized nodes ------------------------------------------------------------------------

  void lower(const Node& n, const NodeQuant& q) {
    switch (q.kind) {
      case NodeQuant::Kind::kNone:
        if (fuse_float_op_quantize(n)) return;
        for (ValueId v : n.inputs) {
          if (v >= 0 && !is_constant(v)) get(v, Want::real());
        }
        lower_float(b_, n);
        return;
      case NodeQuant::Kind::kLinear:
        return lower_linear(n, q);
      case NodeQuant::Kind::kLinearBias:
        if (!bias_in_gemm(q)) lower_float_bias(n, q);
        return;  // else lowered with its linear
      case NodeQuant::Kind::kConv:
        return lower_conv(n, q);
      case NodeQuant::Kind::kMatMul:
        return lower_matmul(n, q);
      case NodeQuant::Kind::kAdd:
      case NodeQuant::Kind::kSub:
      case NodeQuant::Kind::kMul:
        return lower_binary(n, q);
      case NodeQuant::Kind::kRelu: {
        // relu(q(x)) with an unsigned format is q(x) itself: the codes are the output.
        const SlotId s = get(n.inputs[0], Want::codes(*q.inputs[0], q.rounding));
        ValueInfo& out = info_[n.outputs[0]];
        out.slot = s;
        out.reprs.emplace_back(Want::codes(*q.inputs[0], q.rounding), s);
        return;
      }
      case NodeQuant::Kind::kRnn:
      case NodeQuant::Kind::kInputOnly: {
        // op(q(x)): the codes back to float exactly (|code| <= 2^24), then the float op.
        const ValueId x = n.inputs[0];
        const SlotId codes = get(x, Want::codes(*q.inputs[0], q.rounding));
        const Slot& cs = b_.slot_info(codes);
        auto st = step<DequantizeStep>(n);
        st->in_dtype = cs.dtype;
        st->frac = cs.frac;
        st->inputs = {codes};
        const SlotId real =
            b_.new_slot(fmt::format("{}~{}", g_.value(x).name, quant::format_name(*q.inputs[0])),
                        DType::kFloat32, b_.shape(x));
        st->outputs = {real};
        b_.add_step(std::move(st));
        b_.override_slot(x, real);
        if (q.kind == NodeQuant::Kind::kRnn) {
          // Initial states in float; W, R, B quantized at plan time (rnn_lowering.h).
          for (size_t k = 1; k < n.inputs.size(); ++k) {
            if (n.inputs[k] >= 0 && !is_constant(n.inputs[k])) get(n.inputs[k], Want::real());
          }
          lower_rnn(b_, n, &q);
        } else if (q.data_out) {
          return lower_float_quantized(n, q);  // q(op(q(x)), data_out): codes out
        } else {
          lower_float(b_, n);
        }
        b_.clear_overrides();
        return;
      }
    }
  }

  // An unquantized float Mul / Add whose output one format's codes are wanted of (its quantized
  // consumers' quantizer), and maybe float as well, not a graph output: one FloatOpQuantizeStep
  // writes the codes (and the float values) in one pass, instead of BinaryStep then
  // QuantizeStep: the same float op (IEEE float32, one rounding) and the same quantizer, so the
  // same bits. Both operands computed values (read as float); one has the output's shape, the other
  // one value per row (EfficientNet's squeeze-excitation x * s, [N, C, H, W] by [N, C, 1, 1]) or
  // the same shape (a residual Add). The codes become the value's representation for get().
  bool fuse_float_op_quantize(const Node& n) {
    if (b_.options().use_reference_kernels || n.inputs.size() != 2 ||
        (n.kind != OpKind::kMul && n.kind != OpKind::kAdd)) {
      return false;
    }
    const ValueId v = n.outputs[0];
    if (b_.is_graph_output(v) || g_.value(v).dtype != DType::kFloat32) return false;
    const ValueInfo& vi = info_[v];
    const Want* codes = nullptr;
    bool want_float = false;
    for (const Want& w : vi.demands) {
      if (w.is_float) {
        want_float = true;
      } else if (codes != nullptr) {
        return false;  // two formats
      } else {
        codes = &w;
      }
    }
    if (codes == nullptr) return false;
    for (ValueId in : n.inputs) {
      if (in < 0 || is_constant(in) || g_.value(in).dtype != DType::kFloat32) {
        return false;
      }
    }
    const SymShape& out = b_.shape(v);
    auto same = [&](const SymShape& a, int d) {
      return a.base[d] == out.base[d] && a.per_batch[d] == out.per_batch[d];
    };
    // x: the operand of the output's shape; s: equal dims, then 1s (row_rank: where the 1s start).
    int x_input = -1, row_rank = -1;
    for (int xi = 0; xi < 2 && x_input < 0; ++xi) {
      const SymShape& xs = b_.shape(n.inputs[xi]);
      const SymShape& ss = b_.shape(n.inputs[1 - xi]);
      if (xs.rank != out.rank || ss.rank != out.rank) return false;
      bool full = true;
      for (int d = 0; d < out.rank; ++d) full = full && same(xs, d);
      if (!full) continue;
      int p = 0;
      while (p < out.rank && same(ss, p)) ++p;
      bool ones = true;
      for (int d = p; d < out.rank; ++d) ones = ones && ss.base[d] == 1 && ss.per_batch[d] == 0;
      if (ones) x_input = xi, row_rank = p;
    }
    if (x_input < 0) return false;
    const Want w = *codes;
    auto st = step<FloatOpQuantizeStep>(n);
    st->op = n.kind == OpKind::kAdd ? fx::FloatOp::kAdd : fx::FloatOp::kMul;
    st->x_input = x_input;
    st->row_rank = row_rank;
    st->format = w.format;
    st->rounding = w.rounding;
    st->inputs = {get(n.inputs[0], Want::real()), get(n.inputs[1], Want::real())};
    const SlotId s =
        b_.new_slot(codes_name(v, w.format), quant::storage_dtype(w.format), out, w.format);
    st->outputs = {s};
    if (want_float) st->outputs.push_back(b_.slot(v));
    b_.add_step(std::move(st));
    info_[v].reprs.emplace_back(w, s);
    return true;
  }

  // How a node whose exact result is at binary point `frac` writes its output: requantized to the
  // one format every consumer wants, float when only float is wanted, else the accumulator.
  struct OutputPlan {
    fx::GemmOutput kind = fx::GemmOutput::kAccumulator;
    FixedFormat format;
    Rounding rounding = Rounding::kHalfToEven;
  };
  OutputPlan plan_output(const Node& n, const NodeQuant& q) const {
    OutputPlan p;
    const ValueInfo& vi = info_[n.outputs[0]];
    if (q.data_out) {
      p.kind = fx::GemmOutput::kRequantize;
      p.format = *q.data_out;
      p.rounding = q.rounding;
    } else if (vi.demands.size() == 1 && !vi.demands[0].is_float) {
      p.kind = fx::GemmOutput::kRequantize;
      p.format = vi.demands[0].format;
      p.rounding = vi.demands[0].rounding;
    } else if (vi.demands.size() <= 1) {
      p.kind = fx::GemmOutput::kFloat;
    }
    return p;
  }

  // Unquantized ReLU / max pool nodes fused into node n's requantizing store. Walking from n's
  // output: while the value is not a graph output and feeds exactly one node, an unquantized
  // ReLU (a derived value) or, with allow_pool (conv2d), a 2x2 stride-2 MaxPool without
  // padding whose output has the floor shape (conv2d's ConvPool::kMax2x2), and that node's
  // consumers all want exactly the codes n writes, the store makes it: max(codes, 0) =
  // relu(q(acc)) by the clamp's lower bound, the pool as the max of the window's sums (exact:
  // q and relu are non-decreasing, so they commute with max; relu(pool(.)) = pool(relu(.))).
  // Each at most once, in either order. `value` is the last fused node's output (-1: none), whose
  // one representation the store writes; the fused nodes cost no step.
  struct StoreFusion {
    ValueId value = -1;
    bool relu = false, pool = false;
  };
  StoreFusion fuse_store(const Node& n, const OutputPlan& p, bool allow_pool) const {
    StoreFusion f;
    if (p.kind != fx::GemmOutput::kRequantize) return f;
    const Want want = Want::codes(p.format, p.rounding);
    ValueId v = n.outputs[0];
    for (;;) {
      for (ValueId o : g_.outputs()) {
        if (o == v) return f;
      }
      const std::vector<ir::NodeId> users = g_.consumers(v);
      if (users.size() != 1) return f;
      const Node& t = g_.node(users[0]);
      const ValueId out = t.outputs[0];
      if (info_[out].canon != Canon::kDerived) return f;
      const ValueInfo& r = info_[out];
      if (r.demands.size() != 1 || !(r.demands[0] == want)) return f;
      if (t.kind == OpKind::kRelu && !f.relu) {
        f.relu = true;  // on an unsigned format the identity (the clamp's bound is 0 already)
      } else if (t.kind == OpKind::kMaxPool && allow_pool && !f.pool && pool_2x2(t)) {
        f.pool = true;
      } else {
        return f;
      }
      f.value = v = out;
    }
  }

  // MaxPool node t is conv2d's fusable pool: kernel 2x2, strides 2, dilations 1, no padding, one
  // output, and an output of [.., H / 2, W / 2] (floor; ceil_mode only where it is the same).
  bool pool_2x2(const Node& t) const {
    const auto& a = std::get<ir::PoolAttrs>(t.attrs);
    if (a.kernel != std::array<int64_t, 2>{2, 2} || a.strides != std::array<int64_t, 2>{2, 2} ||
        a.dilations != std::array<int64_t, 2>{1, 1} ||
        a.pads != std::array<int64_t, 4>{0, 0, 0, 0}) {
      return false;
    }
    for (size_t i = 1; i < t.outputs.size(); ++i) {
      if (t.outputs[i] >= 0) return false;  // Indices
    }
    const SymShape &x = b_.shape(t.inputs[0]), &y = b_.shape(t.outputs[0]);
    if (x.rank != 4 || y.rank != 4) return false;
    for (int d = 2; d < 4; ++d) {
      if (x.per_batch[d] != 0 || y.per_batch[d] != 0 || y.base[d] != x.base[d] / 2 ||
          y.base[d] < 1) {
        return false;
      }
    }
    return true;
  }

  // A float output whose one reader is an unquantized Clip (ReLU6) read only as the codes of one
  // format: node n's requantizing store writes those codes, with the Clip's bounds as codes
  // (GemmParams::clamp_lo / clamp_hi), and the Clip costs no step. The same values as the float
  // store, the float Clip and the quantizer: the accumulator bound is below 2^24, so the float
  // store rounds nothing (fl(acc) 2^-F = acc 2^-F) and quantize() of the float Clip's output
  // is q(clip(v, lo, hi)) of the exact value v, which equals clip(q(v), q(lo), q(hi)) because q
  // is non-decreasing (lo <= hi). Returns the Clip node, or null when this does not apply.
  const Node* fuse_clip(const Node& n, const OutputPlan& p, const fx::AccumulatorBound& bound,
                        OutputPlan* fused, fx::GemmParams* params) const {
    if (p.kind != fx::GemmOutput::kFloat || bound.max_abs >= 16777216.0) return nullptr;
    auto is_output = [&](ValueId v) {
      return std::find(g_.outputs().begin(), g_.outputs().end(), v) != g_.outputs().end();
    };
    const ValueId v = n.outputs[0];
    const std::vector<ir::NodeId> users = g_.consumers(v);
    if (is_output(v) || users.size() != 1) return nullptr;
    const Node& t = g_.node(users[0]);
    if (t.kind != OpKind::kClip || nq(t).quantized() || t.inputs[0] != v) return nullptr;
    const ValueInfo& r = info_[t.outputs[0]];
    if (is_output(t.outputs[0]) || r.canon != Canon::kFloat || r.demands.size() != 1 ||
        r.demands[0].is_float) {
      return nullptr;
    }
    const auto& a = std::get<ir::ClipAttrs>(t.attrs);
    if (!(a.min <= a.max)) return nullptr;  // NaN bounds, or min > max (not monotone)
    const Want& w = r.demands[0];
    fused->kind = fx::GemmOutput::kRequantize;
    fused->format = w.format;
    fused->rounding = w.rounding;
    params->clamp_lo = quant::quantize(a.min, w.format, w.rounding);
    params->clamp_hi = quant::quantize(a.max, w.format, w.rounding);
    return &t;
  }

  // A float output whose one reader is an unquantized BatchNormalization with constant
  // parameters, optionally followed by the one reader of its output, an unquantized Relu or Clip:
  // node n's float store applies them (GemmParams::post_scale), the same float operations the
  // separate steps do (lower_batch_norm's folded scale and shift and channel_affine_f32's fma,
  // then unary_f32's Relu / Clip comparisons), and they cost no step. Fast kernels only (the
  // reference plan keeps the separate steps). Returns the value the store writes, or -1.
  ValueId fuse_affine(const Node& n, const OutputPlan& p, int64_t channels, IntConvStep* s) const {
    if (p.kind != fx::GemmOutput::kFloat || b_.options().use_reference_kernels) return -1;
    auto is_output = [&](ValueId v) {
      return std::find(g_.outputs().begin(), g_.outputs().end(), v) != g_.outputs().end();
    };
    auto sole_reader = [&](ValueId v) -> const Node* {
      const std::vector<ir::NodeId> users = g_.consumers(v);
      if (is_output(v) || users.size() != 1) return nullptr;
      const Node& t = g_.node(users[0]);
      if (nq(t).quantized() || t.inputs.empty() || t.inputs[0] != v ||
          info_[t.outputs[0]].canon != Canon::kFloat) {
        return nullptr;
      }
      return &t;
    };
    const Node* bn = sole_reader(n.outputs[0]);
    if (bn == nullptr || bn->kind != OpKind::kBatchNorm || bn->inputs.size() < 5) {
      // A SiLU straight after the conv (BatchNorm folded into its weights, torch.onnx.export's
      // default): the store's affine is the identity, exact because fma(v, 1, +0) == v for every
      // v the store makes (never -0.0 or NaN: the int-to-float conversion of 0 is +0.0).
      const Node* mul = fuse_silu(n.outputs[0]);
      if (mul == nullptr) return -1;
      s->post_scale = Tensor({channels}, DType::kFloat32);
      s->post_shift = Tensor({channels}, DType::kFloat32);
      std::fill_n(s->post_scale.data<float>(), channels, 1.0f);
      std::fill_n(s->post_shift.data<float>(), channels, 0.0f);
      s->post_is_batch_norm = false;
      s->params.post_silu = true;
      return mul->outputs[0];
    }
    for (int k = 1; k < 5; ++k) {
      const ValueId v = bn->inputs[k];
      if (v < 0 || v == n.outputs[0] || !is_constant(v) ||
          g_.value(v).data.dtype() != DType::kFloat32 || g_.value(v).data.numel() != channels) {
        return -1;
      }
    }
    // lower_batch_norm's scale and shift, computed the same way.
    const float eps = std::get<ir::BatchNormAttrs>(bn->attrs).epsilon;
    const float *gamma = g_.value(bn->inputs[1]).data.data<float>(),
                *beta = g_.value(bn->inputs[2]).data.data<float>(),
                *mean = g_.value(bn->inputs[3]).data.data<float>(),
                *var = g_.value(bn->inputs[4]).data.data<float>();
    s->post_scale = Tensor({channels}, DType::kFloat32);
    s->post_shift = Tensor({channels}, DType::kFloat32);
    for (int64_t i = 0; i < channels; ++i) {
      const double a = gamma[i] / std::sqrt(static_cast<double>(var[i]) + eps);
      s->post_scale.data<float>()[i] = static_cast<float>(a);
      s->post_shift.data<float>()[i] = static_cast<float>(beta[i] - mean[i] * a);
    }
    b_.mark_fused(*bn);
    ValueId y = bn->outputs[0];
    if (const Node* act = sole_reader(y); act != nullptr && act->kind == OpKind::kRelu) {
      s->params.post_lo = 0.0f;
      b_.mark_fused(*act);
      y = act->outputs[0];
    } else if (act != nullptr && act->kind == OpKind::kClip) {
      const auto& a = std::get<ir::ClipAttrs>(act->attrs);
      s->params.post_lo = a.min;
      s->params.post_hi = a.max;
      b_.mark_fused(*act);
      y = act->outputs[0];
    }
    if (const Node* mul = fuse_silu(y)) {
      s->params.post_silu = true;
      y = mul->outputs[0];
    }
    return y;
  }

  // A SiLU of the float value y (EfficientNet's conv + BN + SiLU): y read by exactly an
  // unquantized Sigmoid s and an unquantized Mul m = y * s (either order), s read only by m
  // and not a graph output, y not a graph output (m may be). Marks both fused and returns m: the
  // store applies v * sigmoid(v) with the Sigmoid step's own sigmoid and the Mul's rounding
  // (GemmParams::post_silu), the same bits as the two steps. Null (nothing fused) otherwise.
  const Node* fuse_silu(ValueId y) const {
    auto is_output = [&](ValueId v) {
      return std::find(g_.outputs().begin(), g_.outputs().end(), v) != g_.outputs().end();
    };
    auto float_op = [&](const Node& t, OpKind kind, size_t inputs) {
      return t.kind == kind && t.inputs.size() == inputs && !nq(t).quantized() && !b_.is_fused(t) &&
             info_[t.outputs[0]].canon == Canon::kFloat;
    };
    const std::vector<ir::NodeId> users = g_.consumers(y);
    if (is_output(y) || users.size() != 2) return nullptr;
    const Node* sig = nullptr;
    const Node* mul = nullptr;
    for (ir::NodeId u : users) {
      const Node& t = g_.node(u);
      if (float_op(t, OpKind::kSigmoid, 1) && t.inputs[0] == y) sig = &t;
      if (float_op(t, OpKind::kMul, 2)) mul = &t;
    }
    if (sig == nullptr || mul == nullptr || is_output(sig->outputs[0]) ||
        g_.consumers(sig->outputs[0]).size() != 1) {
      return nullptr;
    }
    const ValueId sv = sig->outputs[0];
    if (!((mul->inputs[0] == y && mul->inputs[1] == sv) ||
          (mul->inputs[0] == sv && mul->inputs[1] == y))) {
      return nullptr;
    }
    b_.mark_fused(*sig);
    b_.mark_fused(*mul);
    return mul;
  }

  // The float value y that a fused float store (fuse_affine) writes, when every reader wants the
  // codes of one format and no one its float value (not a graph output, nothing float reads it):
  // the store quantizes each value itself (GemmParams::post_quantize), the same quant::quantize
  // on the same float, so the QuantizeStep and the float tensor go. Formats up to 24 bits (wider
  // codes keep the separate step). Returns whether it applies, setting the params.
  bool fuse_quantizer(ValueId y, fx::GemmParams* params) const {
    const ValueInfo& vi = info_[y];
    if (vi.canon != Canon::kFloat || vi.demands.size() != 1 || vi.demands[0].is_float ||
        vi.demands[0].format.width > 24) {
      return false;
    }
    params->post_quantize = true;
    params->post_format = vi.demands[0].format;
    params->post_rounding = vi.demands[0].rounding;
    return true;
  }

  // The slot of the fused store's output r (fuse_store), recorded as its one representation.
  SlotId fused_slot(ValueId r, const OutputPlan& p) {
    const SlotId s =
        b_.new_slot(codes_name(r, p.format), quant::storage_dtype(p.format), b_.shape(r), p.format);
    info_[r].reprs.emplace_back(Want::codes(p.format, p.rounding), s);
    return s;
  }

  // The output slot for plan p; records it as the canonical slot or as the one representation.
  SlotId output_slot(const Node& n, const OutputPlan& p, DType acc_dtype, int acc_frac) {
    const ValueId y = n.outputs[0];
    ValueInfo& vi = info_[y];
    switch (p.kind) {
      case fx::GemmOutput::kFloat: {
        const SlotId s = b_.slot(y);
        vi.reprs.emplace_back(Want::real(), s);
        return s;
      }
      case fx::GemmOutput::kRequantize: {
        const SlotId s = b_.new_slot(codes_name(y, p.format), quant::storage_dtype(p.format),
                                     b_.shape(y), p.format);
        if (vi.canon == Canon::kCodes) vi.slot = s;
        vi.reprs.emplace_back(Want::codes(p.format, p.rounding), s);
        return s;
      }
      case fx::GemmOutput::kAccumulator:
        break;
    }
    vi.slot = b_.new_slot(fmt::format("{}:acc", g_.value(y).name), acc_dtype, b_.shape(y),
                          std::nullopt, acc_frac);
    return vi.slot;
  }

  // The packed weights of GEMM / conv node n under q: from the plan options' PackCache when it
  // holds them (the packing depends only on the node's constants, q's formats and rounding, the
  // ISA and, for a conv, the plan's max_batch: its Winograd tile is chosen for that batch), else
  // made by `pack` and kept there.
  template <class Packed, class Pack>
  Packed cached_packing(const Node& n, const NodeQuant& q, Pack&& pack) {
    PackCache* cache = b_.options().pack_cache.get();
    if (cache == nullptr || b_.options().use_reference_kernels) return pack();
    constexpr bool kConv = std::is_same_v<Packed, fx::PackedConv2d>;
    const std::string key = fmt::format(
        "{}|{}|{}|{}|{}|{}|{}", n.name, format_str(q.inputs[0]), format_str(q.inputs[1]),
        q.inputs.size() > 2 ? format_str(q.inputs[2]) : "none", static_cast<int>(q.rounding),
        static_cast<int>(fx::max_isa()), kConv ? b_.options().max_batch : 0);
    if (auto hit = cache->find(g_, key)) return *static_cast<const Packed*>(hit.get());
    Packed p = pack();
    cache->put(g_, key, std::make_shared<const Packed>(p), resident_bytes(p));
    return p;
  }

  // Whether conv n's output may reach conv2d() as a fused 2x2 max pool (fuse_store's structure,
  // without its format conditions: a superset). Known before packing, so that the packing makes
  // the pooled path's weights only for such convs (Conv2dWeights::may_pool).
  bool may_fuse_pool(const Node& n) const {
    ValueId v = n.outputs[0];
    bool relu = false;
    for (;;) {
      const std::vector<ir::NodeId> users = g_.consumers(v);
      if (users.size() != 1) return false;
      const Node& t = g_.node(users[0]);
      if (t.kind == OpKind::kMaxPool) return pool_2x2(t);
      if (t.kind != OpKind::kRelu || relu) return false;
      relu = true;
      v = t.outputs[0];
    }
  }

  // Quantized weight codes of constant `v` with format f (an Error names the node if the data is
  // not float32).
  Tensor weight_codes(const Node& n, ValueId v, const FixedFormat& f, Rounding r) const {
    const ir::Value& val = g_.value(v);
    if (!val.is_constant()) {
      PlanBuilder::fail_node(n, fmt::format("the integer engine needs '{}' to be a constant to "
                                            "quantize it once at plan time",
                                            val.name));
    }
    return quant::quantize(val.data, f, r);
  }

  // weight_codes for a GEMM's or conv's weight about to be packed, quantized in slices, each
  // slice's float pages returned once quantized when nothing reads them again: a weight in a
  // weight file (runtime/weight_file.h: the file keeps it, a later plan re-reads it), or one of a
  // consumed graph that only this node reads (drop_consumed_constants would drop it after the
  // node anyway). The float weight and its codes then never coexist whole
  // (docs/architecture.md "Memory").
  Tensor packing_codes(const Node& n, ValueId v, const FixedFormat& f, Rounding r) const {
    const ir::Value& val = g_.value(v);
    if (!val.is_constant() || val.data.dtype() != DType::kFloat32) return weight_codes(n, v, f, r);
    const bool in_file = in_weight_file(val.data.raw(), val.data.nbytes());
    if (!in_file && !b_.owns_constant(v)) return weight_codes(n, v, f, r);
    // The codes' pages become resident as they are written, slice by slice (a Tensor's own
    // buffer is zeroed, all of it resident, before the first float page is returned).
    const DType dtype = quant::storage_dtype(f);
    const size_t len = std::max<size_t>(
        (static_cast<size_t>(val.data.numel()) * dtype_size(dtype) + 4095) / 4096 * 4096, 4096);
    void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return weight_codes(n, v, f, r);
    Tensor codes;
    {
      ScopedTensorStorage use(std::shared_ptr<std::byte[]>(
          static_cast<std::byte*>(mem), [len](std::byte* p) { munmap(p, len); }));
      codes = Tensor(val.data.shape(), dtype);
    }
    const float* x = val.data.data<float>();
    auto* out = static_cast<std::byte*>(codes.raw());
    const size_t code_bytes = dtype_size(codes.dtype());
    const int64_t total = val.data.numel(), slice = int64_t{1} << 18;  // 1 MB of floats
    for (int64_t i = 0; i < total; i += slice) {
      const auto m = static_cast<size_t>(std::min(slice, total - i));
      quant::quantize({x + i, m}, f, r, out + static_cast<size_t>(i) * code_bytes, codes.dtype());
      if (in_file) {
        release_file_pages(x + i, m * sizeof(float));
        continue;
      }
      const auto begin = reinterpret_cast<uintptr_t>(x + i), page = uintptr_t{4096};
      const uintptr_t first = (begin + page - 1) / page * page;
      const uintptr_t last = (begin + m * sizeof(float)) / page * page;
      if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    }
    return codes;
  }

  // The format node n's bias codes have: its bias_* format with the node's rounding, or, for a bias
  // kept in float (no bias_* keys), float_bias_format() rounding to nearest, ties to even.
  std::pair<FixedFormat, Rounding> bias_format(const Node& n, const NodeQuant& q, ValueId c) const {
    if (q.inputs[2]) return {*q.inputs[2], q.rounding};
    const ir::Value& val = g_.value(c);
    if (!val.is_constant() || val.data.dtype() != DType::kFloat32) {
      PlanBuilder::fail_node(n,
                             fmt::format("the integer engine needs the bias '{}' to be a float32 "
                                         "constant to add it exactly",
                                         val.name));
    }
    return {float_bias_format(val.data, q.inputs[0]->frac + q.inputs[1]->frac),
            Rounding::kHalfToEven};
  }

  // The bias codes broadcast to n outputs (the bias may be one value for all).
  Tensor bias_codes(const Node& n, ValueId c, int64_t outputs, const FixedFormat& f,
                    Rounding r) const {
    Tensor codes = weight_codes(n, c, f, r);
    const Shape& cs = codes.shape();
    const int64_t numel = codes.numel();
    if (numel == outputs && (cs.empty() || cs.back() == outputs)) {
      return codes.reshaped({outputs});
    }
    if (numel != 1) {
      PlanBuilder::fail_node(n, fmt::format("bias '{}' of shape {} is not one value per output "
                                            "({}); the integer engine adds a per-output bias",
                                            g_.value(c).name, shape_str(cs), outputs));
    }
    Tensor wide({outputs}, codes.dtype());
    for (int64_t i = 0; i < outputs; ++i) {
      quant::store_code(wide.raw(), wide.dtype(), i,
                        quant::load_code(codes.raw(), codes.dtype(), 0));
    }
    return wide;
  }

  void check_bound(const Node& n, const NodeQuant& q, const fx::AccumulatorBound& bound,
                   int64_t fan_in) const {
    if (bound.need != fx::AccNeed::kOverflowsInt64) return;
    PlanBuilder::fail_node(
        n, fmt::format("the exact accumulator could reach {:.3g} (data_in {}, weight {}, bias {}, "
                       "fan-in {}), beyond int64: the integer engine refuses this configuration "
                       "rather than wrap; narrow the formats or bring the binary points closer",
                       bound.max_abs, format_str(q.inputs[0]), format_str(q.inputs[1]),
                       q.inputs.size() > 2 ? format_str(q.inputs[2]) : "none", fan_in));
  }

  // A MatMul linear's bias Add (node_quant.h) is part of the integer GEMM when its bias is
  // quantized (bias_* keys). A float bias (no bias_* keys) stays a float Add on the linear's
  // result, exactly as `fake` computes it: rounding it onto the accumulator's grid, as a Gemm's
  // float bias is, moved up to 10 of 1000 BERT fixture predictions away from `fake`.
  bool bias_in_gemm(const NodeQuant& q) const {
    const NodeQuant& a =
        q.kind == NodeQuant::Kind::kLinear && q.bias_add >= 0 ? nq_[q.bias_add] : q;
    if (a.kind != NodeQuant::Kind::kLinearBias) return false;
    return std::any_of(a.inputs.begin(), a.inputs.end(),
                       [](const std::optional<FixedFormat>& f) { return f.has_value(); });
  }

  // The float bias Add of a MatMul linear: the float add of the linear's result (read as float)
  // and the float32 bias, then the linear's data_out, if any, quantizes the sum.
  void lower_float_bias(const Node& n, const NodeQuant& q) {
    for (ValueId v : n.inputs) {
      if (v >= 0 && !is_constant(v)) get(v, Want::real());
    }
    if (!q.data_out) return lower_float(b_, n);
    lower_float_quantized(n, q);
  }

  // Float node n (its input overrides already set) writing its output through q.data_out: the
  // float result to a slot of its own, then quantized once to codes, the output's canonical
  // representation. Clears the overrides.
  void lower_float_quantized(const Node& n, const NodeQuant& q) {
    const ValueId y = n.outputs[0];
    const SlotId real = b_.new_slot(g_.value(y).name + "~float", DType::kFloat32, b_.shape(y));
    b_.override_slot(y, real);
    lower_float(b_, n);
    b_.clear_overrides();
    auto st = step<QuantizeStep>(n);
    st->format = *q.data_out;
    st->rounding = q.rounding;
    st->inputs = {real};
    const SlotId codes = b_.new_slot(codes_name(y, *q.data_out), quant::storage_dtype(*q.data_out),
                                     b_.shape(y), *q.data_out);
    st->outputs = {codes};
    b_.add_step(std::move(st));
    info_[y].slot = codes;
    info_[y].reprs.emplace_back(Want::codes(*q.data_out, q.rounding), codes);
  }

  void lower_linear(const Node& node, const NodeQuant& node_q) {
    if (!bias_in_gemm(node_q)) return lower_linear_as(node, node, node_q);
    // A MatMul linear and its bias Add (node_quant.h): one integer GEMM with the Add's constant as
    // its bias and the Add's output as its output, exactly as a Gemm with a bias.
    const Node& add = g_.node(node_q.bias_add);
    const NodeQuant& add_q = nq_[node_q.bias_add];
    const int k = ir::bias_add_operand(g_, add);
    Node n = node;
    n.inputs = {node.inputs[0], node.inputs[1], add.inputs[k]};
    n.outputs = add.outputs;
    NodeQuant q = node_q;
    q.inputs = {node_q.inputs[0], node_q.inputs[1], add_q.inputs[k]};
    q.data_out = add_q.data_out;
    lower_linear_as(node, n, q);
  }

  // The integer GEMM of linear n (`node`: the graph node it stands for, for its parameter bytes).
  void lower_linear_as(const Node& node, const Node& n, const NodeQuant& q) {
    const ValueId x = n.inputs[0], w = n.inputs[1];
    const ValueId c = n.inputs.size() > 2 ? n.inputs[2] : -1;
    bool trans_b = false;
    if (n.kind == OpKind::kGemm) {
      const auto& at = std::get<ir::GemmAttrs>(n.attrs);
      if (at.trans_a || at.alpha != 1.0f || (c >= 0 && at.beta != 1.0f)) {
        PlanBuilder::fail_node(n,
                               "a quantized Gemm needs alpha = beta = 1 and transA = 0 (as "
                               "PyTorch exports Linear)");
      }
      trans_b = at.trans_b;
    }
    const Shape& ws = g_.value(w).data.shape();
    const int64_t k = trans_b ? ws[1] : ws[0], nn = trans_b ? ws[0] : ws[1];
    auto s = step<IntGemmStep>(n);
    s->packed = cached_packing<fx::PackedWeights>(n, q, [&] {
      s->weight_codes = packing_codes(n, w, *q.inputs[1], q.rounding);
      fx::GemmWeights& spec = s->spec;
      spec.b = s->weight_codes.raw();
      spec.b_dtype = s->weight_codes.dtype();
      spec.k = k;
      spec.n = nn;
      spec.stride_k = trans_b ? 1 : nn;
      spec.stride_n = trans_b ? k : 1;
      spec.b_format = *q.inputs[1];
      spec.a_format = *q.inputs[0];
      spec.a_dtype = quant::storage_dtype(*q.inputs[0]);
      spec.bit_pack = true;
      if (c >= 0) {
        const auto [bias_f, bias_r] = bias_format(n, q, c);
        s->bias_codes = bias_codes(n, c, nn, bias_f, bias_r);
        spec.bias = s->bias_codes.raw();
        spec.bias_dtype = s->bias_codes.dtype();
        spec.bias_format = bias_f;
      }
      return fx::pack_weights(spec);
    });
    const fx::AccumulatorBound bound = fx::accumulator_bound(s->packed);
    check_bound(n, q, bound, k);
    s->reference = b_.options().use_reference_kernels;
    OutputPlan op = plan_output(n, q);
    const Node* clip = fuse_clip(n, op, bound, &op, &s->params);
    s->params.acc = bound.acc();
    s->params.output = op.kind;
    s->params.out_format = op.format;
    s->params.rounding = op.rounding;
    StoreFusion fused = fuse_store(n, op, /*allow_pool=*/false);
    if (clip != nullptr) {
      b_.mark_fused(*clip);
      fused = StoreFusion{.value = clip->outputs[0]};
    }
    s->params.relu = fused.relu && op.format.is_signed;
    s->inputs = {get(x, Want::codes(*q.inputs[0], q.rounding))};
    s->outputs = {fused.value >= 0
                      ? fused_slot(fused.value, op)
                      : output_slot(n, op, fx::gemm_output_dtype(s->params), s->packed.acc_frac())};
    b_.add_parameter_bytes(node,
                           static_cast<int64_t>(s->packed.packed_bytes()) + (c >= 0 ? 8 * nn : 0));
    if (!s->reference) s->weight_codes = s->bias_codes = Tensor();  // the plan keeps the packing
    b_.add_step(std::move(s));
  }

  void lower_conv(const Node& n, const NodeQuant& q) {
    if (n.kind == OpKind::kConvTranspose) return lower_conv_transpose(n, q);
    lower_conv_as(n, q, std::get<ir::ConvAttrs>(n.attrs), nullptr);
  }

  // A quantized ConvTranspose: its input codes zero-inserted (q(0) is the code 0, so this is the
  // zero insertion of the quantized input, exactly), then the integer conv of those by the
  // transformed weight codes (runtime/cnn_steps.h), with the conv's bias, output and fusions.
  void lower_conv_transpose(const Node& n, const NodeQuant& q) {
    const auto& a = std::get<ir::ConvTransposeAttrs>(n.attrs);
    const ValueId x = n.inputs[0];
    const SymShape& xs = b_.shape(x);
    if (xs.rank != 4 || xs.base[0] != 0 || xs.per_batch[0] != 1 || xs.per_batch[2] ||
        xs.per_batch[3]) {
      PlanBuilder::fail_node(n,
                             "the integer ConvTranspose needs an NCHW input whose first dim "
                             "is the batch");
    }
    const ConvTransposePlan plan =
        conv_transpose_plan(a, xs.base[2], xs.base[3], g_.value(n.inputs[1]).shape);
    const SlotId codes = get(x, Want::codes(*q.inputs[0], q.rounding));
    const Slot& cs = b_.slot_info(codes);
    SymShape us = xs;
    us.base[2] = plan.zeros.out_h();
    us.base[3] = plan.zeros.out_w();
    auto z = step<ZeroInsertStep>(n);
    z->params = plan.zeros;
    z->elem_size = static_cast<int>(dtype_size(cs.dtype));
    z->reference = b_.options().use_reference_kernels;
    z->inputs = {codes};
    const SlotId u =
        b_.new_slot(codes_name(x, *q.inputs[0]) + "~zeros", cs.dtype, us, cs.format, cs.frac);
    z->outputs = {u};
    b_.add_step(std::move(z));
    ConvInput in{u, us, plan.weight_shape, a.group};
    lower_conv_as(n, q, plan.conv, &in);
  }

  // The integer conv of node n with attrs `at`; `zeros` (ConvTranspose) replaces its input by
  // the zero-inserted codes and its weight by the transformed one.
  struct ConvInput {
    SlotId slot;
    SymShape shape;
    Shape weight_shape;
    int64_t group;
  };
  void lower_conv_as(const Node& n, const NodeQuant& q, const ir::ConvAttrs& at,
                     const ConvInput* zeros) {
    const ValueId x = n.inputs[0], w = n.inputs[1];
    const ValueId c = n.inputs.size() > 2 ? n.inputs[2] : -1;
    const SymShape& xs = zeros ? zeros->shape : b_.shape(x);
    const bool conv1d = xs.rank == 3;  // NCL: NCHW with H = 1, the same memory layout
    if ((xs.rank != 4 && !conv1d) || xs.base[0] != 0 || xs.per_batch[0] != 1) {
      PlanBuilder::fail_node(n,
                             "the integer Conv needs an NCHW (or NCL) input whose first dim is "
                             "the batch");
    }
    Shape ws = zeros ? zeros->weight_shape : g_.value(w).data.shape();  // [M, C/G, kH, kW]
    if (conv1d) ws.insert(ws.begin() + 2, 1);
    auto s = step<IntConvStep>(n);
    fx::Conv2dGeometry& geo = s->geometry;
    geo.in_channels = xs.base[1];
    geo.in_h = conv1d ? 1 : xs.base[2];
    geo.in_w = conv1d ? xs.base[2] : xs.base[3];
    geo.out_channels = ws[0];
    geo.kernel_h = ws[2];
    geo.kernel_w = ws[3];
    geo.groups = at.group;
    geo.pad_top = at.pads[0];
    geo.pad_left = at.pads[1];
    geo.pad_bottom = at.pads[2];
    geo.pad_right = at.pads[3];
    geo.stride_h = at.strides[0];
    geo.stride_w = at.strides[1];
    geo.dilation_h = at.dilations[0];
    geo.dilation_w = at.dilations[1];
    s->packed = cached_packing<fx::PackedConv2d>(n, q, [&] {
      s->weight_codes = packing_codes(n, w, *q.inputs[1], q.rounding);
      if (zeros) s->weight_codes = transform_conv_transpose_weight(s->weight_codes, zeros->group);
      fx::Conv2dWeights& spec = s->spec;
      spec.w = s->weight_codes.raw();
      spec.w_dtype = s->weight_codes.dtype();
      spec.w_format = *q.inputs[1];
      spec.a_format = *q.inputs[0];
      spec.a_dtype = quant::storage_dtype(*q.inputs[0]);
      spec.bit_pack = true;
      spec.winograd_batch = b_.options().max_batch;  // the Winograd tile's cost estimate
      spec.may_pool = !conv1d && !zeros && may_fuse_pool(n);
      if (c >= 0) {
        const auto [bias_f, bias_r] = bias_format(n, q, c);
        s->bias_codes = bias_codes(n, c, ws[0], bias_f, bias_r);
        spec.bias = s->bias_codes.raw();
        spec.bias_dtype = s->bias_codes.dtype();
        spec.bias_format = bias_f;
      }
      return fx::pack_conv2d(geo, spec);
    });
    const fx::AccumulatorBound bound = fx::accumulator_bound(s->packed);
    check_bound(n, q, bound, ws[1] * ws[2] * ws[3]);
    s->reference = b_.options().use_reference_kernels;
    OutputPlan op = plan_output(n, q);
    const Node* clip = fuse_clip(n, op, bound, &op, &s->params);
    s->params.acc = bound.acc();
    s->params.output = op.kind;
    s->params.out_format = op.format;
    s->params.rounding = op.rounding;
    StoreFusion fused = fuse_store(n, op, /*allow_pool=*/!conv1d && !zeros);
    if (clip != nullptr) {
      b_.mark_fused(*clip);
      fused = StoreFusion{.value = clip->outputs[0]};
    }
    s->params.relu = fused.relu && op.format.is_signed;
    s->pool = fused.pool ? fx::ConvPool::kMax2x2 : fx::ConvPool::kNone;
    s->inputs = {zeros ? zeros->slot : get(x, Want::codes(*q.inputs[0], q.rounding))};
    const ValueId affine = clip == nullptr ? fuse_affine(n, op, ws[0], s.get()) : -1;
    if (affine >= 0 && fuse_quantizer(affine, &s->params)) {
      // The store writes the codes its one reader format wants; the float value never exists.
      const Want& w = info_[affine].demands[0];
      const SlotId codes = b_.new_slot(codes_name(affine, w.format), quant::storage_dtype(w.format),
                                       b_.shape(affine), w.format);
      info_[affine].reprs.emplace_back(w, codes);
      s->outputs = {codes};
    } else if (affine >= 0) {
      s->outputs = {b_.slot(affine)};
      info_[affine].reprs.emplace_back(Want::real(), s->outputs[0]);
    } else {
      s->outputs = {fused.value >= 0 ? fused_slot(fused.value, op)
                                     : output_slot(n, op, fx::gemm_output_dtype(s->params),
                                                   s->packed.acc_frac())};
    }
    b_.add_parameter_bytes(
        n, static_cast<int64_t>(s->packed.packed_bytes()) + (c >= 0 ? 8 * ws[0] : 0));
    if (!s->reference) s->weight_codes = s->bias_codes = Tensor();
    b_.add_step(std::move(s));
  }

  // An operand of an element-wise / matmul node as codes: an activation's representation, or a
  // constant quantized now into a plan constant.
  SlotId operand(const Node& n, size_t k, const NodeQuant& q) {
    const ValueId v = n.inputs[k];
    const FixedFormat& f = *q.inputs[k];
    if (!is_constant(v)) return get(v, Want::codes(f, q.rounding));
    Tensor codes = weight_codes(n, v, f, q.rounding);
    b_.add_parameter_bytes(n, static_cast<int64_t>(codes.nbytes()));
    return b_.constant_slot(codes_name(v, f), std::move(codes), f);
  }

  void lower_matmul(const Node& n, const NodeQuant& q) {
    const SymShape &as = b_.shape(n.inputs[0]), &bs = b_.shape(n.inputs[1]);
    if (as.rank < 2 || bs.rank < 2) {
      PlanBuilder::fail_node(n, "the integer MatMul needs operands of rank >= 2");
    }
    const FixedFormat &fa = *q.inputs[0], &fb = *q.inputs[1];
    const int64_t k = as.base[as.rank - 1] + as.per_batch[as.rank - 1];
    // K * max|A| * max|B| <= INT64_MAX, in integer division so nothing overflows.
    const int64_t limit = INT64_MAX / fa.max_abs_code() / fb.max_abs_code();
    if (as.per_batch[as.rank - 1] != 0 || k > limit) {
      PlanBuilder::fail_node(
          n, fmt::format("the exact MatMul sum could exceed int64 (data_in {}, weight {}, K {})",
                         quant::format_name(fa), quant::format_name(fb), k));
    }
    auto s = step<IntMatMulStep>(n);
    s->inputs = {operand(n, 0, q), operand(n, 1, q)};
    s->a_dtype = b_.slot_info(s->inputs[0]).dtype;
    s->b_dtype = b_.slot_info(s->inputs[1]).dtype;
    OutputPlan exact;  // accumulator: the conversions follow lazily
    s->outputs = {output_slot(n, exact, DType::kInt64, fa.frac + fb.frac)};
    b_.add_step(std::move(s));
  }

  void lower_binary(const Node& n, const NodeQuant& q) {
    const SlotId a = operand(n, 0, q), bb = operand(n, 1, q);
    const Slot &sa = b_.slot_info(a), &sb = b_.slot_info(bb);
    const bool mul = q.kind == NodeQuant::Kind::kMul;
    const int frac = mul ? sa.frac + sb.frac : std::max(sa.frac, sb.frac);
    if (!mul && !fx::add_fits_int64(*sa.format, *sb.format)) {
      PlanBuilder::fail_node(n,
                             "the operands' binary points are too far apart for an exact "
                             "int64 sum");
    }
    OutputPlan op = plan_output(n, q);
    if (op.kind == fx::GemmOutput::kFloat) op.kind = fx::GemmOutput::kAccumulator;
    const bool requant = op.kind == fx::GemmOutput::kRequantize;
    const ValueId y = n.outputs[0];
    auto same = [&](const SymShape& s) {
      const SymShape& ys = b_.shape(y);
      if (s.rank != ys.rank) return false;
      for (int d = 0; d < s.rank; ++d) {
        if (s.base[d] != ys.base[d] || s.per_batch[d] != ys.per_batch[d]) return false;
      }
      return true;
    };
    std::unique_ptr<Step> st;
    if (q.kind == NodeQuant::Kind::kAdd && same(sa.shape) && same(sb.shape)) {
      auto s = step<IntAddStep>(n);
      s->a_dtype = sa.dtype;
      s->b_dtype = sb.dtype;
      s->a_frac = sa.frac;
      s->b_frac = sb.frac;
      if (requant) s->format = op.format;
      s->rounding = op.rounding;
      st = std::move(s);
    } else {
      auto s = step<IntBinaryStep>(n);
      s->op = mul                               ? IntBinaryStep::Op::kMul
              : q.kind == NodeQuant::Kind::kAdd ? IntBinaryStep::Op::kAdd
                                                : IntBinaryStep::Op::kSub;
      s->a_dtype = sa.dtype;
      s->b_dtype = sb.dtype;
      s->a_frac = sa.frac;
      s->b_frac = sb.frac;
      if (requant) s->format = op.format;
      s->rounding = op.rounding;
      st = std::move(s);
    }
    st->inputs = {a, bb};
    st->outputs = {output_slot(n, op, DType::kInt64, frac)};
    b_.add_step(std::move(st));
  }

  // Float32 constants read by the nodes that run in float (each constant once).
  void count_float_parameters() {
    std::vector<bool> counted(g_.values().size(), false);
    for (const Node& n : g_.nodes()) {
      const NodeQuant& q = nq(n);
      const bool float_bias = q.kind == NodeQuant::Kind::kLinearBias && !bias_in_gemm(q);
      if (q.quantized() && q.kind != NodeQuant::Kind::kInputOnly &&
          q.kind != NodeQuant::Kind::kRnn && !float_bias) {
        continue;  // kRnn: float32 copies of its quantized weights, counted at 4 bytes
      }
      for (ValueId v : n.inputs) {
        if (v < 0 || counted[v] || !is_constant(v)) continue;
        if (g_.value(v).data.dtype() != DType::kFloat32) continue;
        counted[v] = true;
        b_.add_parameter_bytes(n, 4 * g_.value(v).data.numel());
      }
    }
  }

  PlanBuilder& b_;
  const ir::Graph& g_;
  std::vector<NodeQuant> nq_;
  std::vector<ValueInfo> info_;
};

}  // namespace

void lower_int(PlanBuilder& b) { IntLowering(b).run(); }

}  // namespace qsearch::runtime
