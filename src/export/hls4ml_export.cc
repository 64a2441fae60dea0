#include "export/hls4ml_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "quant/quantize.h"
#include "runtime/node_quant.h"

namespace qsearch::exporter {

using quant::FixedFormat;
using quant::Rounding;

std::string ap_fixed_type(const FixedFormat& f, Rounding r) {
  const char* q = r == Rounding::kHalfToEven         ? "AP_RND_CONV"
                  : r == Rounding::kHalfAwayFromZero ? "AP_RND_INF"
                                                     : "AP_TRN";
  return fmt::format("{}<{},{},{},AP_SAT>", f.is_signed ? "ap_fixed" : "ap_ufixed", f.width,
                     f.width - f.frac, q);
}

int signed_bits_for(long double bound) {
  if (!(bound > 0)) return 1;
  int e = 0;
  std::frexp(bound, &e);  // bound < 2^e
  // One more bit beyond 2^64, where long double may have rounded the bound down.
  return e + 1 + (bound >= 18446744073709551616.0L ? 1 : 0);
}

namespace {

// The bias of linear / conv node i: its input 2, or the constant of its bias Add (a MatMul + Add
// linear, runtime/node_quant.h), with the format it is quantized in (nullopt: a float bias).
struct BiasRef {
  ir::ValueId v = -1;
  std::optional<FixedFormat> format;
};
BiasRef bias_of(const ir::Graph& g, const std::vector<runtime::NodeQuant>& nq, size_t i) {
  const ir::Node& n = g.nodes()[i];
  const runtime::NodeQuant& q = nq[i];
  if (q.bias_add >= 0) {
    const ir::Node& add = g.nodes()[static_cast<size_t>(q.bias_add)];
    const int k = ir::bias_add_operand(g, add);
    return {add.inputs[k], nq[static_cast<size_t>(q.bias_add)].inputs[k]};
  }
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) return {n.inputs[2], q.inputs[2]};
  return {};
}

// Worst-case |accumulator| of a linear / conv at binary point F over the quantized weights.
long double accumulator_bound(const ir::Graph& g, const ir::Node& n, const runtime::NodeQuant& q,
                              const BiasRef& br, int& frac) {
  const FixedFormat& fa = *q.inputs[0];
  const FixedFormat& fb = *q.inputs[1];
  const ir::Value& w = g.value(n.inputs[1]);
  if (!w.is_constant() || w.data.dtype() != DType::kFloat32) {
    fail("node '{}': the weight is not a float32 constant", n.config_name);
  }
  const Tensor wc = quant::quantize(w.data, fb, q.rounding);
  const Shape& ws = wc.shape();
  bool trans_b = false;
  if (n.kind == ir::OpKind::kGemm) trans_b = std::get<ir::GemmAttrs>(n.attrs).trans_b;
  const bool conv = n.kind == ir::OpKind::kConv;
  // ConvTranspose: weight [C, M/g, kH, kW] (3-D as imported: [C*kD*kH, M/g, 1, kW]); output
  // channel (c / (C/g)) * M/g + j sums row c's column j. Every tap of the group is counted: the
  // exact worst case at stride 1, an upper bound at larger strides (fewer taps meet one output).
  const bool convt = n.kind == ir::OpKind::kConvTranspose;
  const int64_t group = convt ? std::get<ir::ConvTransposeAttrs>(n.attrs).group : 1;
  const int64_t taps = convt ? ws[2] * ws[3] : 1, mg = convt ? ws[1] : 1;
  const int64_t rows_per_group = convt ? ws[0] / group : 1;
  const int64_t outs = conv ? ws[0] : convt ? mg * group : (trans_b ? ws[0] : ws[1]);
  const int64_t k = wc.numel() / outs;
  std::vector<long double> sum(static_cast<size_t>(outs), 0.0L);
  for (int64_t i = 0; i < wc.numel(); ++i) {
    const int64_t o = convt             ? (i / (mg * taps)) / rows_per_group * mg + (i / taps) % mg
                      : conv || trans_b ? i / k
                                        : i % outs;
    sum[o] += std::fabs(static_cast<long double>(quant::load_code(wc.raw(), wc.dtype(), i)));
  }
  const int fp = fa.frac + fb.frac;
  frac = fp;
  std::vector<long double> bias(static_cast<size_t>(outs), 0.0L);
  if (br.v >= 0) {
    const ir::Value& b = g.value(br.v);
    const FixedFormat fc = br.format ? *br.format : runtime::float_bias_format(b.data, fp);
    const Tensor bc = quant::quantize(b.data, fc, br.format ? q.rounding : Rounding::kHalfToEven);
    frac = std::max(fp, fc.frac);
    for (int64_t o = 0; o < outs; ++o) {
      const int64_t at = bc.numel() == 1 ? 0 : o;
      bias[o] = std::ldexp(
          std::fabs(static_cast<long double>(quant::load_code(bc.raw(), bc.dtype(), at))),
          frac - fc.frac);
    }
  }
  const long double max_a = static_cast<long double>(std::max(-fa.min_code(), fa.max_code()));
  long double worst = 0;
  for (int64_t o = 0; o < outs; ++o) {
    worst = std::max(worst, std::ldexp(max_a * sum[o], frac - fp) + bias[o]);
  }
  return worst;
}

// The format the readers of value v quantize it with, looking through views, unquantized relus
// and max pools, when they all agree (the layer's result type in hls4ml); nullopt otherwise.
std::optional<std::pair<FixedFormat, Rounding>> reader_format(
    const ir::Graph& g, const std::vector<runtime::NodeQuant>& nq, ir::ValueId v) {
  std::optional<std::pair<FixedFormat, Rounding>> got;
  bool any = false;
  for (ir::NodeId id : g.consumers(v)) {
    const ir::Node& c = g.node(id);
    const runtime::NodeQuant& q = nq[id];
    std::optional<std::pair<FixedFormat, Rounding>> f;
    if (q.quantized() && !q.inputs.empty() && c.inputs[0] == v && q.inputs[0]) {
      f = std::make_pair(*q.inputs[0], q.rounding);
    } else if (!q.quantized() &&
               (c.kind == ir::OpKind::kRelu || c.kind == ir::OpKind::kMaxPool ||
                c.kind == ir::OpKind::kFlatten || c.kind == ir::OpKind::kReshape ||
                c.kind == ir::OpKind::kIdentity || c.kind == ir::OpKind::kDropout)) {
      f = reader_format(g, nq, c.outputs[0]);
    }
    if (!f) return std::nullopt;
    if (any && (f->first != got->first || f->second != got->second)) return std::nullopt;
    got = f;
    any = true;
  }
  return got;
}

}  // namespace

std::string hls4ml_config_yaml(const ir::Graph& graph, const quant::QuantAssignment& q,
                               const Hls4mlOptions& o) {
  const std::vector<runtime::NodeQuant> nq = runtime::resolve_node_quant(graph, q);
  std::string y;
  if (!o.comment.empty()) y += "# " + o.comment + "\n";
  y += fmt::format(
      "# hls4ml configuration (hls4ml.utils.config_from_onnx_model(model, granularity='name')\n"
      "# layout) written by qsearch {}; docs/export.md has the (width, frac) -> ap_fixed mapping.\n"
      "Model:\n  Precision:\n    default: ap_fixed<16,6>\n  ReuseFactor: {}\n  Strategy: {}\n"
      "  BramFactor: 1000000000\n  TraceOutput: false\nLayerName:\n",
      QSEARCH_VERSION, o.reuse_factor, o.strategy);
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const ir::Node& n = graph.nodes()[i];
    const runtime::NodeQuant& qn = nq[i];
    if (!qn.quantized()) continue;
    std::string prec;
    if (qn.kind == runtime::NodeQuant::Kind::kLinear ||
        qn.kind == runtime::NodeQuant::Kind::kConv) {
      int frac = 0;
      const BiasRef br = bias_of(graph, nq, i);
      const long double bound = accumulator_bound(graph, n, qn, br, frac);
      const int wbits = signed_bits_for(bound);
      const std::string accum = fmt::format("ap_fixed<{},{}>", wbits, wbits - frac);
      prec += fmt::format("      weight: {}\n", ap_fixed_type(*qn.inputs[1], qn.rounding));
      if (br.v >= 0) {
        const FixedFormat fc =
            br.format ? *br.format
                      : runtime::float_bias_format(graph.value(br.v).data,
                                                   qn.inputs[0]->frac + qn.inputs[1]->frac);
        prec += fmt::format("      bias: {}\n",
                            ap_fixed_type(fc, br.format ? qn.rounding : Rounding::kHalfToEven));
      }
      // A MatMul + Add linear's result is its bias Add's output, with the Add's data_out.
      const runtime::NodeQuant& qo = qn.bias_add >= 0 ? nq[static_cast<size_t>(qn.bias_add)] : qn;
      const ir::ValueId y = qn.bias_add >= 0
                                ? graph.nodes()[static_cast<size_t>(qn.bias_add)].outputs[0]
                                : n.outputs[0];
      std::string result = accum;
      if (qo.data_out) {
        result = ap_fixed_type(*qo.data_out, qn.rounding);
      } else if (auto r = reader_format(graph, nq, y)) {
        result = ap_fixed_type(r->first, r->second);
      }
      prec += fmt::format("      result: {}\n      accum: {}\n", result, accum);
    } else if (qn.kind == runtime::NodeQuant::Kind::kRelu) {
      prec += fmt::format("      result: {}\n", ap_fixed_type(*qn.inputs[0], qn.rounding));
    } else {
      continue;  // add / mul / ...: hls4ml's defaults (not a layer config_from_onnx_model sizes)
    }
    // A ReuseFactor the search chose for the layer, else --reuse-factor.
    const auto it = q.find(n.config_name);
    const int reuse =
        it != q.end() && it->second.reuse_factor > 0 ? it->second.reuse_factor : o.reuse_factor;
    y += fmt::format(
        "  {}:\n    # qsearch node '{}' ({})\n    Precision:\n{}    ReuseFactor: {}\n"
        "    Strategy: {}\n    Trace: false\n",
        n.name.find_first_of(":/ ") == std::string::npos ? n.name : "'" + n.name + "'",
        n.config_name, ir::mase_op(graph, n), prec, reuse, o.strategy);
  }
  return y;
}

}  // namespace qsearch::exporter
