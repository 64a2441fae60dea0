// A slow, obviously-correct evaluation of a quantized graph with exact arithmetic: the oracle the
// integer engine (Mode::kInt) must equal bit for bit.
//
// Semantics (runtime/node_quant.h, docs/numerics.md "Execution modes"): a quantized node
// quantizes its operands with quant::quantize (the scalar spec, for float values) or by an exact
// requantization written here from scratch (for exact values), then computes in exact dyadic
// arithmetic: a value is m * 2^-frac with m an __int128, sums and products are exact. A float op
// (batch norm, an unquantized add, a graph output) sees the exact value rounded once to float32.
// Float ops are computed as the spec states them, one float operation per element: batch norm is
// y = fma(x, s, t) with s = fl(gamma / sqrt(var + eps)) and t = fl(beta - mean * a) from doubles.
// Unquantized Gemm / Conv are not supported (their float sums have no exact oracle).
// The transformer float ops (Softmax, LayerNorm, Gelu, Erf, Exp, Sqrt, Sigmoid, Tanh, reductions,
// ...: never quantized, or quantized on their input only) have no one-rounding definition: their
// float kernels approximate exp / erf and sum in their own order. The reference runs each of them
// as a one-node float plan of the float engine on the exact value rounded once to float32
// (`float_kernel_op`, with the kernel set the int plan under test uses), so what it checks is
// the boundary: codes dequantized once, the float engine's op, the next quantizer; those float
// kernels are checked against PyTorch by the fixture tests.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "quant/assignment.h"
#include "quant/fixed_point.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace qsearch::runtime::testing {

using I128 = __int128_t;

struct RefValue {
  Shape shape;
  bool exact = false;
  std::vector<float> f;  // !exact
  std::vector<I128> m;   // exact: value = m * 2^-frac
  int frac = 0;
  int64_t numel() const { return shape_numel(shape); }
};

// round(m * 2^-s) with rule r, exactly, for |s| <= 100.
inline I128 ref_shift_round(I128 m, int s, quant::Rounding r) {
  if (s <= 0) return m * (I128{1} << -s);
  const I128 floor = m >> s;  // arithmetic shift: floor division by 2^s
  const I128 rem = m - floor * (I128{1} << s);
  if (r == quant::Rounding::kFloor) return floor;
  const I128 half = I128{1} << (s - 1);
  if (rem > half) return floor + 1;
  if (rem < half) return floor;
  if (r == quant::Rounding::kHalfToEven) return (floor & 1) ? floor + 1 : floor;
  return m >= 0 ? floor + 1 : floor;  // half away from zero
}

// The code of the exact value m * 2^-frac in format f.
inline int64_t ref_requantize(I128 m, int frac, const quant::FixedFormat& f, quant::Rounding r) {
  const int s = frac - f.frac;
  EXPECT_LE(std::abs(s), 100) << "test formats too far apart for the reference";
  I128 q;
  if (s < -33) {
    q = m == 0 ? 0 : (m > 0 ? I128{1} << 40 : -(I128{1} << 40));  // beyond every code range
  } else if (s < 0) {
    const I128 lim = I128{1} << 40;  // saturated already; keeps the shift inside int128
    q = ref_shift_round(m > lim ? lim : (m < -lim ? -lim : m), s, r);
  } else {
    q = ref_shift_round(m, s, r);
  }
  return static_cast<int64_t>(q < f.min_code() ? f.min_code()
                                               : (q > f.max_code() ? f.max_code() : q));
}

inline float ref_to_float(I128 m, int frac) {
  return std::ldexp(static_cast<float>(m), -frac);  // one rounding, then an exact scale
}

namespace detail {

class Reference {
 public:
  Reference(const ir::Graph& g, const quant::QuantAssignment& q, int64_t batch,
            bool reference_kernels = false)
      : g_(g),
        q_(q),
        reference_kernels_(reference_kernels),
        shapes_(g.infer_shapes(batch)),
        vals_(g.values().size()) {}

  Tensor run(const Tensor& x) {
    RefValue& in = vals_[g_.inputs()[0]];
    in.shape = shapes_[g_.inputs()[0]];
    if (x.dtype() == DType::kFloat32) {
      in.f.assign(x.data<float>(), x.data<float>() + x.numel());
    } else {  // int64 token ids (small: exact as float)
      for (int64_t v : x.span<int64_t>()) in.f.push_back(static_cast<float>(v));
    }
    for (const ir::Node& n : g_.nodes()) eval(n);
    const RefValue y = to_float(get(g_.outputs()[0]));
    Tensor out(y.shape, DType::kFloat32);
    std::copy(y.f.begin(), y.f.end(), out.data<float>());
    return out;
  }

 private:
  using F = quant::FixedFormat;

  const quant::NodeQuantConfig* config(const ir::Node& n) const {
    auto it = q_.find(n.config_name);
    if (it == q_.end() || !it->second.quantized || it->second.bypass) return nullptr;
    return &it->second;
  }

  RefValue get(ir::ValueId v) const {
    if (!g_.value(v).is_constant()) return vals_[v];
    const Tensor& t = g_.value(v).data;
    RefValue c;
    c.shape = t.shape();
    if (t.dtype() == DType::kFloat32) {
      c.f.assign(t.data<float>(), t.data<float>() + t.numel());
    } else if (t.dtype() == DType::kInt64) {
      for (int64_t v : t.span<int64_t>()) c.f.push_back(static_cast<float>(v));
    } else {
      for (uint8_t v : t.span<uint8_t>()) c.f.push_back(v != 0 ? 1.0f : 0.0f);
    }
    return c;
  }

  // Index into `in` (numpy-broadcast to `out`) of output element i.
  static int64_t bindex(const Shape& in, const Shape& out, int64_t i) {
    int64_t at = 0, stride = 1;
    for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
      const int64_t k = i % out[d];
      i /= out[d];
      const int di = d - static_cast<int>(out.size() - in.size());
      if (di < 0) continue;
      if (in[di] != 1) at += k * stride;
      stride *= in[di];
    }
    return at;
  }

  // The sequence ops of issue 11 (Gather, Slice, Cast, Equal, Not, And, Where, Expand): never
  // quantized, they run on the values as float (integers and bools are small, exact as float);
  // an exact operand is rounded once to float32 first, as the int engine dequantizes it.
  RefValue seq_op(const ir::Node& n, const Shape& ys) {
    std::vector<RefValue> in;
    for (ir::ValueId v : n.inputs) in.push_back(to_float(get(v)));
    RefValue y;
    const int64_t total = shape_numel(ys);
    auto at = [&](size_t k, int64_t i) { return in[k].f[bindex(in[k].shape, ys, i)]; };
    switch (n.kind) {
      case ir::OpKind::kCast: {
        const DType to = std::get<ir::CastAttrs>(n.attrs).to;
        for (float v : in[0].f) {
          y.f.push_back(to == DType::kFloat32 ? v
                        : to == DType::kUInt8 ? (v != 0.0f ? 1.0f : 0.0f)
                                              : std::trunc(v));
        }
        break;
      }
      case ir::OpKind::kNot:
        for (float v : in[0].f) y.f.push_back(v == 0.0f ? 1.0f : 0.0f);
        break;
      case ir::OpKind::kEqual:
      case ir::OpKind::kAnd:
        for (int64_t i = 0; i < total; ++i) {
          const bool r = n.kind == ir::OpKind::kEqual ? at(0, i) == at(1, i)
                                                      : at(0, i) != 0.0f && at(1, i) != 0.0f;
          y.f.push_back(r ? 1.0f : 0.0f);
        }
        break;
      case ir::OpKind::kWhere:
        for (int64_t i = 0; i < total; ++i) y.f.push_back(at(0, i) != 0.0f ? at(1, i) : at(2, i));
        break;
      case ir::OpKind::kExpand:
        for (int64_t i = 0; i < total; ++i) y.f.push_back(at(0, i));
        break;
      case ir::OpKind::kGather: {
        const auto& a = std::get<ir::GatherAttrs>(n.attrs);
        const Shape& xs = in[0].shape;
        const int r = static_cast<int>(xs.size());
        const int axis = static_cast<int>(a.axis < 0 ? a.axis + r : a.axis);
        std::vector<int64_t> idx = a.indices;
        if (n.inputs.size() > 1) {
          idx.clear();
          for (float v : in[1].f) idx.push_back(static_cast<int64_t>(v));
        }
        int64_t outer = 1, inner = 1;
        for (int d = 0; d < axis; ++d) outer *= xs[d];
        for (int d = axis + 1; d < r; ++d) inner *= xs[d];
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t j : idx) {
            const int64_t row = j < 0 ? j + xs[axis] : j;
            for (int64_t k = 0; k < inner; ++k) {
              y.f.push_back(in[0].f[(o * xs[axis] + row) * inner + k]);
            }
          }
        }
        break;
      }
      case ir::OpKind::kSlice: {
        const std::vector<ir::SliceDim> dims = ir::resolve_slice(n, in[0].shape);
        const Shape& xs = in[0].shape;
        for (int64_t i = 0; i < total; ++i) {
          int64_t rest = i, src = 0, stride = 1;
          for (int d = static_cast<int>(xs.size()) - 1; d >= 0; --d) {
            const int64_t k = rest % ys[d];
            rest /= ys[d];
            src += (dims[d].start + k * dims[d].step) * stride;
            stride *= xs[d];
          }
          y.f.push_back(in[0].f[src]);
        }
        break;
      }
      default:
        ADD_FAILURE() << "seq_op " << ir::op_name(n.kind);
    }
    return y;
  }

  // docs/numerics.md "An unquantized bias": s32 at the products' frac, one bit coarser at a time
  // until the largest finite |b| has a code of magnitude < 2^31 - 1 (computed with frexp here).
  static F float_bias(const RefValue& b, int fp) {
    int frac = std::clamp(fp, quant::kMinFrac, quant::kMaxFrac);
    for (float v : b.f) {
      if (!std::isfinite(v) || v == 0) continue;
      int e = 0;
      const double mant = std::frexp(std::fabs(static_cast<double>(v)), &e);  // v = mant * 2^e
      // |v| * 2^frac < 2^31 - 1 <=> mant * 2^(e + frac) < 2^31 - 1; e + frac <= 30 always holds
      // it, e + frac = 31 holds it when mant < (2^31 - 1) / 2^31.
      const int limit = mant < (2147483647.0 / 2147483648.0) ? 31 - e : 30 - e;
      frac = std::max(quant::kMinFrac, std::min(frac, limit));
    }
    return F{32, frac, true};
  }

  static RefValue to_float(const RefValue& v) {
    if (!v.exact) return v;
    RefValue out;
    out.shape = v.shape;
    for (I128 m : v.m) out.f.push_back(ref_to_float(m, v.frac));
    return out;
  }

  static RefValue codes(const RefValue& v, const F& f, quant::Rounding r) {
    RefValue out;
    out.shape = v.shape;
    out.exact = true;
    out.frac = f.frac;
    for (int64_t i = 0; i < v.numel(); ++i) {
      out.m.push_back(v.exact ? ref_requantize(v.m[i], v.frac, f, r)
                              : quant::quantize(v.f[i], f, r));
    }
    return out;
  }

  // Shifts an exact value onto binary point `frac` (>= its own).
  static I128 align(I128 m, int from, int to) { return m * (I128{1} << (to - from)); }

  void eval(const ir::Node& n) {
    const quant::NodeQuantConfig* c = config(n);
    RefValue& y = vals_[n.outputs[0]];
    const Shape& ys = shapes_[n.outputs[0]];
    // A quantized MatMul linear and its bias Add (torch's Linear on 3-D input) are one MASE
    // linear: q(x) @ q(W) + q(b, bias), then data_out, written to the Add's output; the Add is
    // then skipped.
    // Without bias keys the bias stays a float add (of the linear's exact result rounded once
    // to float32), then data_out.
    if (const ir::NodeId owner = ir::bias_add_owner(g_, n); owner >= 0) {
      const quant::NodeQuantConfig* lc = config(g_.node(owner));
      if (lc && lc->bias) return;
      if (lc) {
        y = binary(n, nullptr, ys);
        y.shape = ys;
        if (lc->data_out) y = codes(y, *lc->data_out, lc->rounding);
        return;
      }
    }
    if (n.kind == ir::OpKind::kMatMul && c && ir::weight_input(g_, n) >= 0 && !c->bias &&
        ir::linear_bias_add(g_, n) >= 0) {
      quant::NodeQuantConfig plain = *c;
      plain.data_out.reset();  // after the bias add
      y = linear(n, &plain);
      y.shape = ys;
      return;
    }
    if (n.kind == ir::OpKind::kMatMul && c && ir::weight_input(g_, n) >= 0) {
      if (const ir::NodeId add = ir::linear_bias_add(g_, n); add >= 0) {
        const ir::Node& a = g_.node(add);
        const ir::ValueId out = a.outputs[0];
        vals_[out] = linear(n, c, a.inputs[ir::bias_add_operand(g_, a)], out);
        vals_[out].shape = shapes_[out];
        return;
      }
    }
    switch (n.kind) {
      case ir::OpKind::kGemm:
        y = linear(n, c);
        break;
      case ir::OpKind::kMatMul:
        y = ir::weight_input(g_, n) >= 0 ? linear(n, c) : matmul(n, c);
        break;
      case ir::OpKind::kConv:
        y = conv(n, c);
        break;
      case ir::OpKind::kConvTranspose:
        y = conv_transpose(n, c);
        break;
      case ir::OpKind::kRelu:
        if (c) {
          y = codes(get(n.inputs[0]), *c->data_in, c->rounding);  // relu(q(x)) = q(x), unsigned
        } else {
          y = get(n.inputs[0]);
          for (I128& m : y.m) m = m < 0 ? 0 : m;
          for (float& f : y.f) f = f < 0.0f ? 0.0f : f;
        }
        break;
      case ir::OpKind::kMaxPool:
        y = max_pool(n);
        break;
      case ir::OpKind::kFlatten:
      case ir::OpKind::kReshape:
      case ir::OpKind::kIdentity:
      case ir::OpKind::kDropout:
        y = get(n.inputs[0]);
        break;
      case ir::OpKind::kAdd:
      case ir::OpKind::kSub:
      case ir::OpKind::kMul:
        y = binary(n, c, ys);
        break;
      case ir::OpKind::kBatchNorm:
        y = batch_norm(n, c);
        break;
      case ir::OpKind::kCast:
      case ir::OpKind::kNot:
      case ir::OpKind::kEqual:
      case ir::OpKind::kAnd:
      case ir::OpKind::kWhere:
      case ir::OpKind::kExpand:
      case ir::OpKind::kGather:
      case ir::OpKind::kSlice:
        y = seq_op(n, ys);
        break;
      case ir::OpKind::kClip:
      case ir::OpKind::kHardSigmoid:
      case ir::OpKind::kHardSwish:
      case ir::OpKind::kGlobalMaxPool:
      case ir::OpKind::kPad:
      case ir::OpKind::kResize:
      case ir::OpKind::kIm2Col3d:
        y = cnn_float_op(n, ys);
        break;
      case ir::OpKind::kSoftmax:
      case ir::OpKind::kLogSoftmax:
      case ir::OpKind::kLayerNorm:
      case ir::OpKind::kGelu:
      case ir::OpKind::kTanh:
      case ir::OpKind::kSigmoid:
      case ir::OpKind::kErf:
      case ir::OpKind::kExp:
      case ir::OpKind::kSqrt:
      case ir::OpKind::kNeg:
      case ir::OpKind::kPow:
      case ir::OpKind::kDiv:
      case ir::OpKind::kTranspose:
      case ir::OpKind::kConcat:
      case ir::OpKind::kReduceMean:
      case ir::OpKind::kReduceSum:
      case ir::OpKind::kReduceMax:
      case ir::OpKind::kGlobalAveragePool:
        y = float_kernel_op(n, c);
        break;
      default:
        ADD_FAILURE() << "the exact reference does not support " << ir::op_name(n.kind);
    }
    y.shape = ys;
    // layer_norm / gelu / softmax with qsearch's data_out: the float result quantized once.
    const bool input_only = n.kind == ir::OpKind::kLayerNorm || n.kind == ir::OpKind::kGelu ||
                            n.kind == ir::OpKind::kSoftmax;
    if (input_only && c && c->data_out) y = codes(y, *c->data_out, c->rounding);
  }

  // bias / out: the bias constant and the output value (default: the node's inputs[2], outputs[0]).
  RefValue linear(const ir::Node& n, const quant::NodeQuantConfig* c, ir::ValueId bias = -1,
                  ir::ValueId out = -1) {
    if (bias < 0 && n.inputs.size() > 2) bias = n.inputs[2];
    if (out < 0) out = n.outputs[0];
    if (!c) {
      ADD_FAILURE() << "exact reference: an unquantized " << ir::op_name(n.kind)
                    << " has no oracle";
      return {};
    }
    bool trans_b = false;
    if (n.kind == ir::OpKind::kGemm) trans_b = std::get<ir::GemmAttrs>(n.attrs).trans_b;
    const RefValue x = codes(get(n.inputs[0]), *c->data_in, c->rounding);
    const RefValue w = codes(get(n.inputs[1]), *c->weight, c->rounding);
    const int64_t k = trans_b ? w.shape[1] : w.shape[0], nn = trans_b ? w.shape[0] : w.shape[1];
    const int64_t rows = x.numel() / k;
    const int fp = c->data_in->frac + c->weight->frac;
    int frac = fp;
    RefValue b;
    const bool has_bias = bias >= 0;
    if (has_bias) {
      const RefValue raw = get(bias);
      b = c->bias ? codes(raw, *c->bias, c->rounding)
                  : codes(raw, float_bias(raw, fp), quant::Rounding::kHalfToEven);
      frac = std::max(fp, b.frac);
    }
    RefValue y;
    y.exact = true;
    y.frac = frac;
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < nn; ++j) {
        I128 sum = 0;
        for (int64_t t = 0; t < k; ++t)
          sum += x.m[i * k + t] * w.m[trans_b ? j * k + t : t * nn + j];
        sum = align(sum, fp, frac);
        if (has_bias) sum += align(b.m[b.numel() == 1 ? 0 : j], b.frac, frac);
        y.m.push_back(sum);
      }
    }
    y.shape = shapes_[out];
    if (c->data_out) return codes(y, *c->data_out, c->rounding);
    return y;
  }

  // MASE's matmul of two activations: q(a, data_in) @ q(b, weight), numpy broadcasting of the
  // batch dims (both operands of rank >= 2), summed exactly at frac data_in + weight.
  RefValue matmul(const ir::Node& n, const quant::NodeQuantConfig* c) {
    if (!c) {
      ADD_FAILURE() << "exact reference: an unquantized MatMul has no oracle";
      return {};
    }
    const RefValue a = codes(get(n.inputs[0]), *c->data_in, c->rounding);
    const RefValue b = codes(get(n.inputs[1]), *c->weight, c->rounding);
    const Shape& ys = shapes_[n.outputs[0]];
    const size_t r = ys.size(), ra = a.shape.size(), rb = b.shape.size();
    const int64_t m = ys[r - 2], nn = ys[r - 1], k = a.shape[ra - 1];
    RefValue y;
    y.exact = true;
    y.frac = c->data_in->frac + c->weight->frac;
    int64_t batches = 1;
    for (size_t d = 0; d + 2 < r; ++d) batches *= ys[d];
    for (int64_t bi = 0; bi < batches; ++bi) {
      // The batch index of each operand: its own dims, 1-dims broadcast, missing dims dropped.
      int64_t rem = bi, off_a = 0, off_b = 0, stride_a = 1, stride_b = 1;
      for (size_t d = r - 2; d-- > 0;) {
        const int64_t idx = rem % ys[d];
        rem /= ys[d];
        const int64_t da = static_cast<int64_t>(d) - static_cast<int64_t>(r - ra);
        const int64_t db = static_cast<int64_t>(d) - static_cast<int64_t>(r - rb);
        if (da >= 0) {
          off_a += (a.shape[da] == 1 ? 0 : idx) * stride_a;
          stride_a *= a.shape[da];
        }
        if (db >= 0) {
          off_b += (b.shape[db] == 1 ? 0 : idx) * stride_b;
          stride_b *= b.shape[db];
        }
      }
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < nn; ++j) {
          I128 sum = 0;
          for (int64_t t = 0; t < k; ++t) {
            sum += a.m[(off_a * m + i) * k + t] * b.m[(off_b * k + t) * nn + j];
          }
          y.m.push_back(sum);
        }
      }
    }
    return y;
  }

  RefValue conv(const ir::Node& n, const quant::NodeQuantConfig* c) {
    if (!c) {
      ADD_FAILURE() << "exact reference: an unquantized Conv has no oracle";
      return {};
    }
    const auto& a = std::get<ir::ConvAttrs>(n.attrs);
    const RefValue x = codes(get(n.inputs[0]), *c->data_in, c->rounding);
    const RefValue w = codes(get(n.inputs[1]), *c->weight, c->rounding);
    // Conv1d (rank 3): height 1.
    Shape ys = shapes_[n.outputs[0]], xs = x.shape, wsh = w.shape;
    if (xs.size() == 3) {
      ys = Shape{ys[0], ys[1], 1, ys[2]};
      xs = Shape{xs[0], xs[1], 1, xs[2]};
      wsh = Shape{wsh[0], wsh[1], 1, wsh[2]};
    }
    const int64_t nb = xs[0], ci = xs[1], h = xs[2], wd = xs[3];
    const int64_t co = ys[1], oh = ys[2], ow = ys[3], cg = wsh[1], kh = wsh[2], kw = wsh[3];
    const int64_t ocg = co / a.group;
    const int fp = c->data_in->frac + c->weight->frac;
    int frac = fp;
    RefValue b;
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
    if (has_bias) {
      const RefValue raw = get(n.inputs[2]);
      b = c->bias ? codes(raw, *c->bias, c->rounding)
                  : codes(raw, float_bias(raw, fp), quant::Rounding::kHalfToEven);
      frac = std::max(fp, b.frac);
    }
    RefValue y;
    y.exact = true;
    y.frac = frac;
    y.m.assign(nb * co * oh * ow, 0);
    for (int64_t i = 0; i < nb; ++i) {
      for (int64_t o = 0; o < co; ++o) {
        const int64_t grp = o / ocg;
        for (int64_t py = 0; py < oh; ++py) {
          for (int64_t px = 0; px < ow; ++px) {
            I128 sum = 0;
            for (int64_t cc = 0; cc < cg; ++cc) {
              for (int64_t u = 0; u < kh; ++u) {
                for (int64_t v = 0; v < kw; ++v) {
                  const int64_t iy = py * a.strides[0] - a.pads[0] + u * a.dilations[0];
                  const int64_t ix = px * a.strides[1] - a.pads[1] + v * a.dilations[1];
                  if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                  sum += x.m[((i * ci + grp * cg + cc) * h + iy) * wd + ix] *
                         w.m[((o * cg + cc) * kh + u) * kw + v];
                }
              }
            }
            sum = align(sum, fp, frac);
            if (has_bias) sum += align(b.m[o], b.frac, frac);
            y.m[((i * co + o) * oh + py) * ow + px] = sum;
          }
        }
      }
    }
    y.shape = shapes_[n.outputs[0]];
    if (c->data_out) return codes(y, *c->data_out, c->rounding);
    return y;
  }

  // ConvTranspose by its definition (a scatter): input element (c, iy, ix) times weight
  // (c, o, u, v) adds to output (g M/G + o, iy s - p + u d, ix s - p + v d), exactly.
  RefValue conv_transpose(const ir::Node& n, const quant::NodeQuantConfig* c) {
    if (!c) {
      ADD_FAILURE() << "exact reference: an unquantized ConvTranspose has no oracle";
      return {};
    }
    const auto& a = std::get<ir::ConvTransposeAttrs>(n.attrs);
    const RefValue x = codes(get(n.inputs[0]), *c->data_in, c->rounding);
    const RefValue w = codes(get(n.inputs[1]), *c->weight, c->rounding);
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t nb = x.shape[0], ci = x.shape[1], h = x.shape[2], wd = x.shape[3];
    const int64_t co = ys[1], oh = ys[2], ow = ys[3], mg = w.shape[1], kh = w.shape[2],
                  kw = w.shape[3], cg = ci / a.group;
    const int fp = c->data_in->frac + c->weight->frac;
    int frac = fp;
    RefValue b;
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
    if (has_bias) {
      const RefValue raw = get(n.inputs[2]);
      b = c->bias ? codes(raw, *c->bias, c->rounding)
                  : codes(raw, float_bias(raw, fp), quant::Rounding::kHalfToEven);
      frac = std::max(fp, b.frac);
    }
    std::vector<I128> acc(nb * co * oh * ow, 0);
    for (int64_t i = 0; i < nb; ++i) {
      for (int64_t cc = 0; cc < ci; ++cc) {
        const int64_t grp = cc / cg;
        for (int64_t iy = 0; iy < h; ++iy) {
          for (int64_t ix = 0; ix < wd; ++ix) {
            const I128 xv = x.m[((i * ci + cc) * h + iy) * wd + ix];
            for (int64_t o = 0; o < mg; ++o) {
              for (int64_t u = 0; u < kh; ++u) {
                for (int64_t v = 0; v < kw; ++v) {
                  const int64_t oy = iy * a.strides[0] - a.pads[0] + u * a.dilations[0];
                  const int64_t ox = ix * a.strides[1] - a.pads[1] + v * a.dilations[1];
                  if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                  acc[((i * co + grp * mg + o) * oh + oy) * ow + ox] +=
                      xv * w.m[((cc * mg + o) * kh + u) * kw + v];
                }
              }
            }
          }
        }
      }
    }
    RefValue y;
    y.exact = true;
    y.frac = frac;
    for (int64_t k = 0; k < static_cast<int64_t>(acc.size()); ++k) {
      I128 sum = align(acc[k], fp, frac);
      if (has_bias) sum += align(b.m[(k / (oh * ow)) % co], b.frac, frac);
      y.m.push_back(sum);
    }
    y.shape = ys;
    if (c->data_out) return codes(y, *c->data_out, c->rounding);
    return y;
  }

  RefValue max_pool(const ir::Node& n) {
    const auto& a = std::get<ir::PoolAttrs>(n.attrs);
    const RefValue x = get(n.inputs[0]);
    const Shape& ys = shapes_[n.outputs[0]];
    const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
    RefValue y;
    y.exact = x.exact;
    y.frac = x.frac;
    for (int64_t p = 0; p < planes; ++p) {
      for (int64_t py = 0; py < ys[2]; ++py) {
        for (int64_t px = 0; px < ys[3]; ++px) {
          bool any = false;
          I128 bm = 0;
          float bf = 0;
          for (int64_t u = 0; u < a.kernel[0]; ++u) {
            for (int64_t v = 0; v < a.kernel[1]; ++v) {
              const int64_t iy = py * a.strides[0] - a.pads[0] + u * a.dilations[0];
              const int64_t ix = px * a.strides[1] - a.pads[1] + v * a.dilations[1];
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const int64_t at = (p * h + iy) * w + ix;
              if (x.exact) {
                bm = any ? std::max(bm, x.m[at]) : x.m[at];
              } else {
                bf = any ? std::max(bf, x.f[at]) : x.f[at];
              }
              any = true;
            }
          }
          if (x.exact) {
            y.m.push_back(bm);
          } else {
            y.f.push_back(bf);
          }
        }
      }
    }
    return y;
  }

  RefValue binary(const ir::Node& n, const quant::NodeQuantConfig* c, const Shape& ys) {
    RefValue a = get(n.inputs[0]), b = get(n.inputs[1]);
    if (c) {
      a = codes(a, *c->data_in, c->rounding);
      b = codes(b, *c->data_in, c->rounding);
    } else {
      a = to_float(a);
      b = to_float(b);
    }
    const int rank = static_cast<int>(ys.size());
    auto index = [&](const Shape& s, int64_t flat) {  // numpy broadcasting
      int64_t at = 0, stride = 1;
      for (int d = rank - 1; d >= 0; --d) {
        const int64_t i = flat % ys[d];
        flat /= ys[d];
        const int ds = d - (rank - static_cast<int>(s.size()));
        if (ds >= 0) {
          if (s[ds] != 1) at += i * stride;
          stride *= s[ds];
        }
      }
      return at;
    };
    RefValue y;
    y.exact = c != nullptr;
    const int64_t total = shape_numel(ys);
    if (c) {
      const bool mul = n.kind == ir::OpKind::kMul;
      y.frac = mul ? a.frac + b.frac : std::max(a.frac, b.frac);
      for (int64_t i = 0; i < total; ++i) {
        const I128 x = a.m[index(a.shape, i)], z = b.m[index(b.shape, i)];
        if (mul) {
          y.m.push_back(x * z);
        } else {
          const I128 xa = align(x, a.frac, y.frac), za = align(z, b.frac, y.frac);
          y.m.push_back(n.kind == ir::OpKind::kAdd ? xa + za : xa - za);
        }
      }
    } else {
      for (int64_t i = 0; i < total; ++i) {
        const float x = a.f[index(a.shape, i)], z = b.f[index(b.shape, i)];
        y.f.push_back(n.kind == ir::OpKind::kAdd   ? x + z
                      : n.kind == ir::OpKind::kSub ? x - z
                                                   : x * z);
      }
    }
    return y;
  }

  // Issue 11's unquantized CNN ops, in float on the input rounded once to float32 (MASE
  // quantizes none of them), written from their ONNX definitions:
  //   HardSigmoid clamp(fl(alpha x + beta), 0, 1) (one rounding); HardSwish x * that, alpha 1/6;
  //   GlobalMaxPool the max over the spatial dims; Pad by index arithmetic (reflect / edge).
  RefValue cnn_float_op(const ir::Node& n, const Shape& ys) {
    const RefValue x = to_float(get(n.inputs[0]));
    RefValue y;
    if (n.kind == ir::OpKind::kHardSigmoid || n.kind == ir::OpKind::kHardSwish) {
      const bool swish = n.kind == ir::OpKind::kHardSwish;
      const float alpha = swish ? 1.0f / 6.0f : std::get<ir::HardSigmoidAttrs>(n.attrs).alpha;
      const float beta = swish ? 0.5f : std::get<ir::HardSigmoidAttrs>(n.attrs).beta;
      for (float v : x.f) {
        const float h = std::fma(alpha, v, beta);  // the exact alpha v + beta, rounded once
        const float c = std::isnan(h) ? h : std::min(1.0f, std::max(0.0f, h));
        y.f.push_back(swish ? v * c : c);
      }
    } else if (n.kind == ir::OpKind::kClip) {
      // An unquantized Clip (ReLU6) in float, as ONNX states it: min then max.
      const auto& a = std::get<ir::ClipAttrs>(n.attrs);
      for (float v : x.f) {
        const float c = v < a.min ? a.min : v;
        y.f.push_back(c > a.max ? a.max : c);
      }
    } else if (n.kind == ir::OpKind::kIm2Col3d) {
      // ir/ops.h: y[n, (c kD + i) kH + r, od H' + oh, w] = x[n, c, od sD - pD + i dD,
      // oh sH - pH + r dH, w], 0 outside; visited in y's order.
      const auto& a = std::get<ir::Im2Col3dAttrs>(n.attrs);
      const Shape& s = x.shape;
      const int64_t oh =
          (s[3] + a.pads[1] + a.pads[3] - a.dilations[1] * (a.kernel[1] - 1) - 1) / a.strides[1] +
          1;
      const int64_t od = ys[2] / oh;
      for (int64_t b = 0; b < s[0]; ++b)
        for (int64_t c = 0; c < s[1]; ++c)
          for (int64_t i = 0; i < a.kernel[0]; ++i)
            for (int64_t r = 0; r < a.kernel[1]; ++r)
              for (int64_t zd = 0; zd < od; ++zd)
                for (int64_t zh = 0; zh < oh; ++zh)
                  for (int64_t w = 0; w < s[4]; ++w) {
                    const int64_t d = zd * a.strides[0] - a.pads[0] + i * a.dilations[0];
                    const int64_t h = zh * a.strides[1] - a.pads[1] + r * a.dilations[1];
                    const bool in = d >= 0 && d < s[2] && h >= 0 && h < s[3];
                    y.f.push_back(in ? x.f[(((b * s[1] + c) * s[2] + d) * s[3] + h) * s[4] + w]
                                     : 0.0f);
                  }
    } else if (n.kind == ir::OpKind::kGlobalMaxPool) {
      const int64_t rows = x.shape[0] * x.shape[1], sp = x.numel() / std::max<int64_t>(1, rows);
      for (int64_t r = 0; r < rows; ++r) {
        float m = x.f[r * sp];
        for (int64_t k = 1; k < sp; ++k)
          m = std::isnan(m)
                  ? m
                  : (x.f[r * sp + k] > m || std::isnan(x.f[r * sp + k]) ? x.f[r * sp + k] : m);
        y.f.push_back(m);
      }
    } else if (n.kind == ir::OpKind::kResize) {
      // ONNX Resize of H, W written out: the source coordinate, then nearest rounding or the
      // bilinear mix of the 4 neighbours, in double, rounded once.
      const auto& a = std::get<ir::ResizeAttrs>(n.attrs);
      const int64_t ih = x.shape[2], iw = x.shape[3], oh = ys[2], ow = ys[3];
      auto src = [&](int64_t o, int64_t in, int64_t out, int d) {
        const double s = a.sizes[0] > 0 ? static_cast<double>(out) / in : a.scales[d];
        switch (a.coord) {
          case ir::ResizeCoord::kAsymmetric:
            return o / s;
          case ir::ResizeCoord::kHalfPixel:
            return (o + 0.5) / s - 0.5;
          case ir::ResizeCoord::kPytorchHalfPixel:
            return out > 1 ? (o + 0.5) / s - 0.5 : 0.0;
          default:
            return out > 1 ? static_cast<double>(o) * (in - 1) / (out - 1) : 0.0;
        }
      };
      auto near = [&](double c, int64_t in) {
        const double f = std::floor(c);
        double r = c - f > 0.5 ? f + 1 : (c - f < 0.5 ? f : 0);
        if (c - f == 0.5) {
          r = a.nearest == ir::ResizeNearest::kRoundPreferCeil ? f + 1 : f;
        }
        if (a.nearest == ir::ResizeNearest::kFloor) r = f;
        if (a.nearest == ir::ResizeNearest::kCeil) r = std::ceil(c);
        return static_cast<int64_t>(std::clamp(r, 0.0, static_cast<double>(in - 1)));
      };
      for (int64_t pl = 0; pl < x.shape[0] * x.shape[1]; ++pl) {
        const float* xp = x.f.data() + pl * ih * iw;
        for (int64_t oy = 0; oy < oh; ++oy) {
          for (int64_t ox = 0; ox < ow; ++ox) {
            const double cy = src(oy, ih, oh, 0), cx = src(ox, iw, ow, 1);
            if (a.mode == ir::ResizeMode::kNearest) {
              y.f.push_back(xp[near(cy, ih) * iw + near(cx, iw)]);
              continue;
            }
            const double yy = std::clamp(cy, 0.0, ih - 1.0), xx = std::clamp(cx, 0.0, iw - 1.0);
            const int64_t y0 = static_cast<int64_t>(std::floor(yy)),
                          x0 = static_cast<int64_t>(std::floor(xx));
            const int64_t y1 = std::min(y0 + 1, ih - 1), x1 = std::min(x0 + 1, iw - 1);
            const double wy = yy - y0, wx = xx - x0;
            const double v00 = xp[y0 * iw + x0], v01 = xp[y0 * iw + x1], v10 = xp[y1 * iw + x0],
                         v11 = xp[y1 * iw + x1];
            if (wy == 0 && wx == 0) {
              y.f.push_back(static_cast<float>(v00));
              continue;
            }
            const double top = (1 - wx) * v00 + wx * v01, bottom = (1 - wx) * v10 + wx * v11;
            y.f.push_back(static_cast<float>((1 - wy) * top + wy * bottom));
          }
        }
      }
    } else {
      const auto& a = std::get<ir::PadAttrs>(n.attrs);
      const size_t r = ys.size();
      for (int64_t flat = 0; flat < shape_numel(ys); ++flat) {
        int64_t rem = flat, src = 0, stride = 1;
        bool inside = true;
        for (size_t d = r; d-- > 0;) {
          const int64_t o = rem % ys[d], len = x.shape[d];
          rem /= ys[d];
          int64_t i = o - a.pads[d];
          if (i < 0 || i >= len) {
            if (a.mode == ir::PadMode::kConstant) {
              inside = false;
            } else if (a.mode == ir::PadMode::kEdge) {
              i = i < 0 ? 0 : len - 1;
            } else {
              while (i < 0 || i >= len) i = i < 0 ? -i : 2 * (len - 1) - i;  // mirror
            }
          }
          src += i * stride;
          stride *= len;
        }
        y.f.push_back(inside ? x.f[src] : a.value);
      }
    }
    return y;
  }

  // n as a one-node graph in the float engine (see the top of the file): activation inputs
  // rounded once to float32 (input 0 first quantized at data_in when n is quantized: layer_norm,
  // gelu, tanh), constants as they are.
  RefValue float_kernel_op(const ir::Node& n, const quant::NodeQuantConfig* c) {
    ir::Graph mini;
    std::vector<Tensor> feeds;
    std::vector<ir::ValueId> ins;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::ValueId v = n.inputs[k];
      if (v < 0) {
        ins.push_back(v);
        continue;
      }
      if (g_.value(v).is_constant()) {
        ins.push_back(mini.add_constant(fmt::format("c{}", k), g_.value(v).data.clone()));
        continue;
      }
      RefValue x = get(v);
      if (k == 0 && c && c->data_in) x = codes(x, *c->data_in, c->rounding);
      x = to_float(x);
      Shape s = x.shape;
      s[0] = kDynamic;
      ins.push_back(mini.add_input(fmt::format("x{}", k), s));
      Tensor t(x.shape, DType::kFloat32);
      std::copy(x.f.begin(), x.f.end(), t.data<float>());
      feeds.push_back(std::move(t));
    }
    const ir::ValueId out = mini.add_value("y");
    mini.add_node({n.kind, "op", ins, {out}, n.attrs, ""});
    mini.mark_output(out);
    mini.finalize();
    Executor ex(make_plan(mini, {.mode = Mode::kFloat,
                                 .max_batch = feeds.at(0).dim(0),
                                 .use_reference_kernels = reference_kernels_}));
    const Tensor& r = ex.run(std::span<const Tensor>(feeds));
    RefValue y;
    y.f.assign(r.data<float>(), r.data<float>() + r.numel());
    return y;
  }

  RefValue batch_norm(const ir::Node& n, const quant::NodeQuantConfig* c) {
    RefValue x = get(n.inputs[0]);
    x = to_float(c ? codes(x, *c->data_in, c->rounding) : x);
    const float eps = std::get<ir::BatchNormAttrs>(n.attrs).epsilon;
    const RefValue gamma = get(n.inputs[1]), beta = get(n.inputs[2]), mean = get(n.inputs[3]),
                   var = get(n.inputs[4]);
    const int64_t ch = x.shape[1], spatial = x.numel() / (x.shape[0] * ch);
    RefValue y;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = (i / spatial) % ch;
      const double a = gamma.f[k] / std::sqrt(static_cast<double>(var.f[k]) + eps);
      const float s = static_cast<float>(a), t = static_cast<float>(beta.f[k] - mean.f[k] * a);
      y.f.push_back(std::fma(x.f[i], s, t));
    }
    return y;
  }

  const ir::Graph& g_;
  const quant::QuantAssignment& q_;
  bool reference_kernels_;
  std::vector<Shape> shapes_;
  std::vector<RefValue> vals_;
};

}  // namespace detail

// Evaluates `g` under `q` on input x (float32 or int64 [B, ...]); returns the first output as
// float32. `reference_kernels`: the kernel set of the float engine's ops that have no one-rounding
// definition (float_kernel_op), as the int plan under test uses it.
inline Tensor exact_reference(const ir::Graph& g, const quant::QuantAssignment& q, const Tensor& x,
                              bool reference_kernels = false) {
  return detail::Reference(g, q, x.dim(0), reference_kernels).run(x);
}

}  // namespace qsearch::runtime::testing
