#include "runtime/node_quant.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace qsearch::runtime {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

[[noreturn]] void fail_config(const ir::Node& n, const std::string& op, const std::string& msg) {
  fail("node '{}' ({}, config name '{}'): {}", n.name, op, n.config_name, msg);
}

}  // namespace

std::string format_str(const std::optional<quant::FixedFormat>& f) {
  return f ? quant::format_name(*f) : "float";
}

quant::FixedFormat float_bias_format(const Tensor& bias, int product_frac) {
  double largest = 0;
  const float* b = bias.data<float>();
  for (int64_t i = 0; i < bias.numel(); ++i) {
    if (std::isfinite(b[i])) largest = std::max(largest, std::fabs(static_cast<double>(b[i])));
  }
  int frac = std::clamp(product_frac, quant::kMinFrac, quant::kMaxFrac);
  // largest * 2^frac is exact in double; below 2^31 - 1 it rounds to at most 2^31 - 1.
  while (frac > quant::kMinFrac && std::ldexp(largest, frac) >= 2147483647.0) --frac;
  return quant::FixedFormat{32, frac, true};
}

std::vector<NodeQuant> resolve_node_quant(const ir::Graph& g, const quant::QuantAssignment& q) {
  for (const auto& [key, cfg] : q) {
    const bool found = std::any_of(g.nodes().begin(), g.nodes().end(),
                                   [&](const ir::Node& n) { return n.config_name == key; });
    if (found) continue;
    std::string best, names;
    size_t best_d = std::max<size_t>(2, key.size() / 3) + 1;
    for (const ir::Node& n : g.nodes()) {
      names += (names.empty() ? "" : ", ") + n.config_name;
      const size_t d = edit_distance(key, n.config_name);
      if (d < best_d) best_d = d, best = n.config_name;
    }
    fail("the quantization assignment names '{}', which is no node of the model{}; nodes: {}", key,
         best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best), names);
  }

  std::vector<NodeQuant> out;
  out.reserve(g.nodes().size());
  for (const ir::Node& n : g.nodes()) {
    NodeQuant nq;
    nq.inputs.assign(n.inputs.size(), std::nullopt);
    nq.mase_op = ir::mase_op(g, n);
    const auto it = q.find(n.config_name);
    if (const ir::NodeId owner = ir::bias_add_owner(g, n); owner >= 0) {
      if (it != q.end() && it->second.quantized && !it->second.bypass) {
        fail_config(
            n, nq.mase_op,
            fmt::format("this Add is the bias of linear '{}' (torch's Linear exports as "
                        "MatMul + Add): configure '{}' (its bias_* keys quantize the bias) "
                        "and leave '{}' out of the config",
                        g.node(owner).config_name, g.node(owner).config_name, n.config_name));
      }
      NodeQuant& lin = out[owner];
      if (lin.kind == NodeQuant::Kind::kLinear) {
        nq.kind = NodeQuant::Kind::kLinearBias;
        nq.config = lin.config;
        nq.rounding = lin.rounding;
        nq.linear = owner;
        // No bias_* keys: the bias stays float (nullopt), see float_bias_format().
        nq.inputs[ir::bias_add_operand(g, n)] = lin.config->bias;
        nq.data_out = lin.data_out;  // after the bias, as MASE's linear applies it
        lin.data_out.reset();
        lin.bias_add = static_cast<int>(out.size());
      }
      out.push_back(std::move(nq));
      continue;
    }
    if (it == q.end() || !it->second.quantized || it->second.bypass) {
      out.push_back(std::move(nq));
      continue;
    }
    const quant::NodeQuantConfig& c = it->second;
    nq.config = &c;
    nq.rounding = c.rounding;
    const std::string& op = nq.mase_op;
    if (!quant::is_quantizable_op(op)) {
      fail_config(n, op,
                  fmt::format("MASE cannot quantize op type '{}'; leave it out of the config", op));
    }
    if (!c.data_in) fail_config(n, op, "a quantized node needs data_in_width");
    auto need_weight = [&] {
      if (!c.weight) fail_config(n, op, fmt::format("a quantized {} needs weight_width", op));
      return *c.weight;
    };
    auto has = [&](size_t k) { return k < n.inputs.size() && n.inputs[k] >= 0; };
    // No bias_* keys: the bias stays float (nullopt), see float_bias_format().
    auto bias_format = [&] { return c.bias; };
    switch (n.kind) {
      case ir::OpKind::kGemm:
      case ir::OpKind::kMatMul:
        if (ir::weight_input(g, n) >= 0) {
          nq.kind = NodeQuant::Kind::kLinear;
          nq.inputs[0] = c.data_in;
          nq.inputs[1] = need_weight();
          if (has(2)) nq.inputs[2] = bias_format();
          nq.data_out = c.data_out;
        } else {
          if (n.kind == ir::OpKind::kGemm) {
            fail_config(n, op,
                        "a quantized Gemm of two activations is not supported; quantize the "
                        "MatMul form or leave the node unquantized");
          }
          nq.kind = NodeQuant::Kind::kMatMul;
          nq.inputs[0] = c.data_in;
          nq.inputs[1] = need_weight();
        }
        break;
      case ir::OpKind::kConv:
      case ir::OpKind::kConvTranspose:  // MASE's convtranspose2d: conv2d's keys
        nq.kind = NodeQuant::Kind::kConv;
        nq.inputs[0] = c.data_in;
        nq.inputs[1] = need_weight();
        if (has(2)) nq.inputs[2] = bias_format();
        nq.data_out = c.data_out;
        break;
      case ir::OpKind::kAdd:
      case ir::OpKind::kSub:
      case ir::OpKind::kMul:
        nq.kind = n.kind == ir::OpKind::kAdd   ? NodeQuant::Kind::kAdd
                  : n.kind == ir::OpKind::kSub ? NodeQuant::Kind::kSub
                                               : NodeQuant::Kind::kMul;
        nq.inputs[0] = c.data_in;
        nq.inputs[1] = c.data_in;
        break;
      case ir::OpKind::kRelu:
        nq.kind = NodeQuant::Kind::kRelu;
        nq.inputs[0] = c.data_in;
        break;
      case ir::OpKind::kBatchNorm:
      case ir::OpKind::kTanh:
      case ir::OpKind::kLayerNorm:
      case ir::OpKind::kGelu:
      case ir::OpKind::kSoftmax:  // qsearch's opt-in `softmax` key
        nq.kind = NodeQuant::Kind::kInputOnly;
        nq.inputs[0] = c.data_in;
        // layer_norm / gelu / softmax take qsearch's optional data_out (node_config.cc): the
        // float op's result quantized; the other ops' configs never carry one.
        nq.data_out = c.data_out;
        break;
      case ir::OpKind::kGru:
      case ir::OpKind::kLstm:
        nq.kind = NodeQuant::Kind::kRnn;
        nq.inputs[0] = c.data_in;
        nq.inputs[1] = need_weight();
        nq.inputs[2] = need_weight();
        if (has(3)) nq.inputs[3] = bias_format();
        break;
      default:
        fail_config(n, op, "quantization of this operator is not supported");
    }
    out.push_back(std::move(nq));
  }
  return out;
}

}  // namespace qsearch::runtime
