// QONNX import (qonnx.h): strip_qonnx() removes the QONNX nodes from the ModelProto before the
// importer runs, remembering where each one stood; qonnx_assignment() turns those records into
// the formats of the imported graph's nodes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "onnx/importer.h"
#include "onnx/qonnx.h"

namespace qsearch::onnx {

namespace detail {

namespace {

bool qonnx_domain(const std::string& d) {
  return d == kQonnxDomain || d == "onnx.brevitas" || d == "finn.custom_op.general";
}

// The float32 value of a constant input `name` of a QONNX node: an initializer or a Constant
// node's `value`.
Tensor qonnx_constant(const pb::GraphProto& g, const std::string& name, const std::string& node,
                      const char* role) {
  const std::string what = fmt::format("QONNX node '{}': its {} '{}'", node, role, name);
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return float_tensor(t, what);
  }
  for (const auto& n : g.node()) {
    if (n.op_type() != "Constant" || n.output_size() != 1 || n.output(0) != name) continue;
    for (const auto& a : n.attribute()) {
      if (a.name() == "value" && a.has_t()) return float_tensor(a.t(), what);
      if (a.name() == "value_float") return Tensor::from<float>({}, {a.f()});
    }
  }
  fail(
      "{} is not a constant; qsearch reads QONNX scales, zero points and bit widths that are "
      "initializers or Constant nodes",
      what);
}

// The single value of a tensor whose elements are all equal (QONNX allows per-channel scales;
// MASE's formats are per tensor).
float uniform_value(const Tensor& t, const std::string& node, const char* role) {
  if (t.numel() == 0) fail("QONNX node '{}': its {} is empty", node, role);
  const float* p = t.data<float>();
  for (int64_t i = 1; i < t.numel(); ++i) {
    if (p[i] != p[0]) {
      fail(
          "QONNX node '{}': its {} differs between channels ({} and {}); qsearch's fixed-point "
          "formats are per tensor",
          node, role, p[0], p[i]);
    }
  }
  return p[0];
}

int64_t attr_i(const pb::NodeProto& n, const char* name, int64_t def) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  return def;
}

std::string attr_s(const pb::NodeProto& n, const char* name, const std::string& def) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.s();
  }
  return def;
}

// frac with scale = 2^-frac, or an Error naming the node.
int power_of_two_frac(float scale, const std::string& node, const char* role) {
  int e = 0;
  const double m = std::frexp(static_cast<double>(scale), &e);  // scale = m * 2^e, m in [0.5, 1)
  if (!(scale > 0) || !std::isfinite(scale) || m != 0.5) {
    fail(
        "QONNX node '{}': {} {} is not a power of two; qsearch imports Quant nodes whose scale "
        "is 2^-frac (fixed point), as hls4ml and MASE use them",
        node, role, scale);
  }
  const int frac = 1 - e;  // scale = 2^(e-1)
  if (frac < quant::kMinFrac || frac > quant::kMaxFrac) {
    fail("QONNX node '{}': {} 2^{} is outside qsearch's fractional widths {}..{}", node, role,
         -frac, quant::kMinFrac, quant::kMaxFrac);
  }
  return frac;
}

quant::Rounding parse_rounding(const std::string& mode, const std::string& node) {
  std::string m;
  for (char c : mode) m += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (m == "ROUND" || m == "HALF_EVEN") return quant::Rounding::kHalfToEven;
  if (m == "HALF_UP") return quant::Rounding::kHalfAwayFromZero;
  if (m == "FLOOR") return quant::Rounding::kFloor;
  fail(
      "QONNX node '{}': rounding_mode '{}' has no MASE equivalent; qsearch reads ROUND / "
      "HALF_EVEN (half to even), HALF_UP (half away from zero) and FLOOR",
      node, mode);
}

QonnxRecord read_quant(const pb::GraphProto& g, const pb::NodeProto& n) {
  const std::string& name = n.name();
  QonnxRecord r;
  r.node = name;
  if (n.op_type() == "BipolarQuant") {
    fail(
        "QONNX node '{}' (BipolarQuant): bipolar values +-scale have no fixed-point format in "
        "MASE (a 1-bit signed format has the codes -1 and 0); qsearch cannot import it",
        name);
  }
  if (n.op_type() == "Trunc") {
    fail(
        "QONNX node '{}' (Trunc): a Trunc re-rounds a value already on its input grid (Brevitas "
        "puts it after an accumulator, e.g. QuantAvgPool2d); MASE's formats quantize each node "
        "input once from float, so qsearch cannot import it",
        name);
  }
  if (n.op_type() != "Quant") {
    fail("node '{}' ({}, domain '{}'): unsupported QONNX operator; qsearch reads Quant", name,
         n.op_type(), n.domain());
  }
  if (n.input_size() != 4 || n.output_size() != 1) {
    fail("QONNX node '{}' (Quant): expected 4 inputs (x, scale, zeropt, bitwidth) and 1 output",
         name);
  }
  for (const auto& a : n.attribute()) {
    const std::string& k = a.name();
    if (k != "signed" && k != "narrow" && k != "rounding_mode") {
      fail("QONNX node '{}' ({}): unknown attribute '{}'", name, n.op_type(), k);
    }
  }
  const int64_t is_signed = attr_i(n, "signed", 1), narrow = attr_i(n, "narrow", 0);
  if (narrow != 0) {
    fail(
        "QONNX node '{}': narrow range (narrow=1) drops one code of the range, which no MASE "
        "fixed-point format does; re-export with narrow_range=False",
        name);
  }
  r.input = n.input(0);
  r.output = n.output(0);
  const int scale_k = 1, zero_k = 2, bits_k = 3;
  const float scale =
      uniform_value(qonnx_constant(g, n.input(scale_k), name, "scale"), name, "scale");
  const float zero =
      uniform_value(qonnx_constant(g, n.input(zero_k), name, "zero point"), name, "zero point");
  const float bits =
      uniform_value(qonnx_constant(g, n.input(bits_k), name, "bit width"), name, "bit width");
  if (zero != 0.0f) {
    fail("QONNX node '{}': zero point {} is not 0; qsearch's fixed-point formats are symmetric",
         name, zero);
  }
  if (bits != std::floor(bits) || bits < quant::kMinWidth || bits > quant::kMaxWidth) {
    fail("QONNX node '{}': bit width {} is not an integer in {}..{}", name, bits, quant::kMinWidth,
         quant::kMaxWidth);
  }
  r.format.width = static_cast<int>(bits);
  r.format.is_signed = is_signed != 0;
  r.format.frac = power_of_two_frac(scale, name, "scale");
  if (r.format.width == 1 && r.format.is_signed) {
    fail(
        "QONNX node '{}': a 1-bit signed Quant is executed as bipolar +-scale, which has no "
        "fixed-point format in MASE (its 1-bit signed codes are -1 and 0)",
        name);
  }
  r.rounding = parse_rounding(attr_s(n, "rounding_mode", "ROUND"), name);
  return r;
}

// True when MASE has a format for input `input` of node n (runtime/node_quant.h).
bool quantizable_input(const ir::Graph& g, const ir::Node& n, int input) {
  using ir::OpKind;
  switch (n.kind) {
    case OpKind::kGemm:
    case OpKind::kMatMul:
      return input <= 1 || (input == 2 && ir::weight_input(g, n) >= 0);
    case OpKind::kConv:
    case OpKind::kConvTranspose:
      return input <= 2;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
      return input <= 1;
    case OpKind::kGru:
    case OpKind::kLstm:
      return input <= 3;  // X, W, R, B
    case OpKind::kRelu:
    case OpKind::kBatchNorm:
    case OpKind::kTanh:
    case OpKind::kLayerNorm:
    case OpKind::kGelu:
      return input == 0;
    default:
      return false;
  }
}

}  // namespace

QonnxRecords strip_qonnx(pb::ModelProto& model) {
  QonnxRecords out;
  pb::GraphProto* g = model.mutable_graph();
  bool any = false;
  for (const auto& n : g->node()) any = any || qonnx_domain(n.domain());
  if (!any) return out;
  // Names for unnamed nodes now, while their indices are those of the file.
  for (int i = 0; i < g->node_size(); ++i) {
    pb::NodeProto* n = g->mutable_node(i);
    if (n->name().empty()) n->set_name(fmt::format("{}_{}", n->op_type(), i));
  }
  {
    // QONNX nodes are found again by name below: names must be unique.
    std::map<std::string, int> seen;
    for (const auto& n : g->node()) ++seen[n.name()];
    for (const auto& n : g->node()) {
      if (qonnx_domain(n.domain()) && seen[n.name()] > 1) {
        fail("QONNX node '{}': {} nodes have this name; QONNX nodes need unique names", n.name(),
             seen[n.name()]);
      }
    }
  }
  std::set<std::string> constants, graph_outputs;
  for (const auto& t : g->initializer()) constants.insert(t.name());
  for (const auto& n : g->node()) {
    if (n.op_type() == "Constant" && n.output_size() == 1) constants.insert(n.output(0));
  }
  for (const auto& o : g->output()) graph_outputs.insert(o.name());
  std::set<std::string> marked;  // Quant nodes qsearch's export wrote as a data_out
  for (const auto& p : model.metadata_props()) {
    if (p.key() != kQonnxDataOutKey) continue;
    size_t start = 0;
    while (start <= p.value().size()) {
      size_t end = p.value().find('\n', start);
      if (end == std::string::npos) end = p.value().size();
      if (end > start) marked.insert(p.value().substr(start, end - start));
      start = end + 1;
    }
  }
  // Facts of the file as written (before any Quant is removed).
  std::map<std::string, const pb::NodeProto*> producer;
  std::map<std::string, int> readers;
  for (const auto& n : g->node()) {
    for (const auto& o : n.output()) producer[o] = &n;
    for (const auto& i : n.input()) ++readers[i];
  }
  for (const auto& o : graph_outputs) ++readers[o];
  std::set<std::string> quant_nodes;
  for (const auto& n : g->node()) {
    if (!qonnx_domain(n.domain())) continue;
    QonnxRecord r = read_quant(*g, n);
    r.on_constant = constants.count(r.input) > 0;
    if (auto it = producer.find(r.input); it != producer.end()) {
      r.producer = it->second->name();
      r.producer_is_qonnx = qonnx_domain(it->second->domain());
    }
    r.sole_reader = readers[r.input] == 1;
    r.graph_output = graph_outputs.count(r.output) > 0;
    r.marked_data_out = marked.count(n.name()) > 0;
    quant_nodes.insert(n.name());
    out.records.push_back(std::move(r));
  }
  // Remove them in file order: readers of a Quant's output read its input instead (a Quant on a
  // graph output keeps the output's name: its input is renamed).
  for (QonnxRecord& r : out.records) {
    std::string from = r.output, to = r.input;
    if (r.graph_output) {
      if (r.on_constant || !producer.count(r.input)) {
        fail(
            "QONNX node '{}' quantizes '{}' straight into a graph output; qsearch needs an "
            "operator between the graph input and each output",
            r.node, r.input);
      }
      std::swap(from, to);  // rename the input to the output's name everywhere
    }
    for (auto& n : *g->mutable_node()) {
      if (n.name() == r.node) continue;
      for (int i = 0; i < n.input_size(); ++i) {
        if (r.graph_output ? n.input(i) == r.output : n.input(i) == from) {
          if (!quant_nodes.count(n.name())) {
            r.consumers.emplace_back(n.name(), i);
          } else {
            r.feeds_qonnx = true;
          }
        }
        if (n.input(i) == from) n.set_input(i, to);
      }
      if (r.graph_output) {
        for (int o = 0; o < n.output_size(); ++o) {
          if (n.output(o) == from) n.set_output(o, to);
        }
      }
    }
    // Later records that named the renamed value follow it.
    for (QonnxRecord& s : out.records) {
      if (&s == &r) continue;
      if (s.input == from) s.input = to;
    }
  }
  auto* nodes = g->mutable_node();
  for (int i = nodes->size() - 1; i >= 0; --i) {
    if (quant_nodes.count(nodes->Get(i).name())) nodes->DeleteSubrange(i, 1);
  }
  // Drop the QONNX opset imports; the rest is a plain ONNX model.
  auto* ops = model.mutable_opset_import();
  for (int i = ops->size() - 1; i >= 0; --i) {
    if (qonnx_domain(ops->Get(i).domain())) ops->DeleteSubrange(i, 1);
  }
  return out;
}

quant::QuantAssignment qonnx_assignment(const ir::Graph& g, const QonnxRecords& records) {
  using ir::OpKind;
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < g.nodes().size(); ++i) by_name.emplace(g.nodes()[i].name, i);
  struct Slots {
    std::map<int, quant::FixedFormat> in;  // node input -> format
    std::optional<quant::FixedFormat> data_out;
    std::optional<quant::Rounding> rounding;
    std::string first_quant;  // for messages
  };
  std::map<size_t, Slots> slots;
  // The ir node of a reader (its ONNX name), and the input it reads the Quant's value at. A
  // reader fused at import into a LayerNorm / Gelu (torch's decompositions, which qsearch's own
  // export writes below opset 17) is that node's input 0 when the fused node reads the value there.
  auto find_node = [&](const QonnxRecord& r, const std::string& onnx_name,
                       int& input) -> std::optional<size_t> {
    if (auto it = by_name.find(onnx_name); it != by_name.end()) return it->second;
    if (const auto v = g.find_value(r.input)) {
      for (size_t k = 0; k < g.nodes().size(); ++k) {
        const ir::Node& n = g.nodes()[k];
        if ((n.kind == OpKind::kLayerNorm || n.kind == OpKind::kGelu) && !n.inputs.empty() &&
            n.inputs[0] == *v) {
          input = 0;
          return k;
        }
      }
    }
    return std::nullopt;
  };
  auto node_of = [&](const QonnxRecord& r, const std::string& onnx_name, int& input) -> size_t {
    const auto k = find_node(r, onnx_name, input);
    if (!k) {
      fail(
          "QONNX node '{}': the node reading it, '{}', is not a node of the imported graph (it "
          "was folded or fused at import); qsearch attaches a Quant's format to the node that "
          "reads it",
          r.node, onnx_name);
    }
    return *k;
  };
  auto set_slot = [&](const QonnxRecord& r, size_t k, std::optional<quant::FixedFormat>& slot,
                      const char* role) {
    const ir::Node& n = g.nodes()[k];
    Slots& s = slots[k];
    if (s.first_quant.empty()) s.first_quant = r.node;
    if (slot && *slot != r.format) {
      fail(
          "QONNX node '{}': node '{}' already has the {} format {} from another Quant; MASE has "
          "one {} format per node",
          r.node, n.name, role, quant::format_name(*slot), role);
    }
    if (s.rounding && *s.rounding != r.rounding) {
      fail(
          "QONNX node '{}': node '{}' reads Quant nodes with different rounding modes; MASE has "
          "one rounding per node",
          r.node, n.name);
    }
    slot = r.format;
    s.rounding = r.rounding;
  };
  auto attach_input = [&](const QonnxRecord& r, size_t k, int input) {
    const ir::Node& n = g.nodes()[k];
    if (!quantizable_input(g, n, input)) {
      fail(
          "QONNX node '{}' quantizes input {} of node '{}' ({}), where MASE has no format (it "
          "quantizes data_in, weight and bias of linear / conv2d / matmul, the inputs of add / "
          "sub / mul, and data_in of relu, batch_norm2d, tanh, layer_norm, gelu)",
          r.node, input, n.name, ir::mase_op(g, n));
    }
    Slots& s = slots[k];
    std::optional<quant::FixedFormat> slot;
    if (auto it = s.in.find(input); it != s.in.end()) slot = it->second;
    const bool rnn = n.kind == OpKind::kGru || n.kind == OpKind::kLstm;  // W, R: weight; B: bias
    set_slot(r, k, slot,
             input == 0                          ? "data_in"
             : input == 1 || (rnn && input == 2) ? "weight"
                                                 : "bias");
    s.in[input] = *slot;
  };
  // MASE's quantizer is monotone, so it commutes with max pooling and views: a Quant in front of
  // a MaxPool / Flatten / Reshape / Transpose (Brevitas's QuantReLU before a MaxPool) is the
  // format of the nodes reading that node's output.
  std::function<void(const QonnxRecord&, size_t, int)> attach_through = [&](const QonnxRecord& r,
                                                                            size_t k, int input) {
    const ir::Node& n = g.nodes()[k];
    const bool passes =
        input == 0 &&
        (n.kind == OpKind::kMaxPool || n.kind == OpKind::kGlobalMaxPool ||
         n.kind == OpKind::kFlatten || n.kind == OpKind::kReshape || n.kind == OpKind::kTranspose);
    if (!passes) {
      attach_input(r, k, input);
      return;
    }
    const ir::ValueId out = n.outputs[0];
    const auto readers = g.consumers(out);
    const bool is_output =
        std::find(g.outputs().begin(), g.outputs().end(), out) != g.outputs().end();
    if (readers.empty() || is_output) {
      fail(
          "QONNX node '{}' quantizes the input of '{}' ({}), whose output is a graph output; MASE "
          "has no format there",
          r.node, n.name, ir::mase_op(g, n));
    }
    for (const ir::NodeId c : readers) {
      const ir::Node& cn = g.nodes()[static_cast<size_t>(c)];
      for (size_t i = 0; i < cn.inputs.size(); ++i) {
        if (cn.inputs[i] == out) attach_through(r, static_cast<size_t>(c), static_cast<int>(i));
      }
    }
  };
  for (const QonnxRecord& r : records.records) {
    if (r.on_constant) {
      if (r.consumers.empty()) {
        fail("QONNX node '{}' quantizes the constant '{}', which no node reads", r.node, r.input);
      }
      for (const auto& [name, at] : r.consumers) {
        int input = at;
        size_t k = node_of(r, name, input);
        // The bias of a linear exported as MatMul + Add (ir::linear_bias_add) is the MatMul's.
        if (const ir::Node& a = g.nodes()[k]; a.kind == OpKind::kAdd) {
          const ir::NodeId owner = ir::bias_add_owner(g, a);
          if (owner >= 0 && input == ir::bias_add_operand(g, a)) {
            k = static_cast<size_t>(owner);
            input = 2;
          }
        }
        attach_input(r, k, input);
      }
      continue;
    }
    bool as_data_out = false;
    if (!r.producer.empty() && !r.producer_is_qonnx && r.sole_reader) {
      if (auto it = by_name.find(r.producer); it != by_name.end()) {
        size_t target = it->second;
        // A MatMul + Add linear's data_out follows its bias Add (runtime/node_quant.h).
        if (const ir::Node& a = g.nodes()[target]; a.kind == OpKind::kAdd) {
          if (const ir::NodeId owner = ir::bias_add_owner(g, a); owner >= 0) {
            target = static_cast<size_t>(owner);
          }
        }
        const ir::Node& p = g.nodes()[target];
        const bool linear_or_conv =
            p.kind == OpKind::kConv || p.kind == OpKind::kConvTranspose ||
            ((p.kind == OpKind::kGemm || p.kind == OpKind::kMatMul) && ir::weight_input(g, p) >= 0);
        // Read by nothing MASE quantizes (or marked so by qsearch's export): the producer's
        // data_out; else the readers' data_in (the same values in fake mode).
        bool readers_take_it = !r.consumers.empty() && !r.graph_output && !r.feeds_qonnx;
        for (const auto& [name, at] : r.consumers) {
          int input = at;
          const auto c = find_node(r, name, input);  // a fused LayerNorm / GELU reads it too
          readers_take_it = readers_take_it && c && quantizable_input(g, g.nodes()[*c], input);
        }
        as_data_out = linear_or_conv && (r.marked_data_out || !readers_take_it);
        if (as_data_out) {
          set_slot(r, target, slots[target].data_out, "data_out");
        }
      }
    }
    if (as_data_out) continue;
    if (r.consumers.empty()) {
      fail(
          "QONNX node '{}' quantizes '{}', but neither a node reading it nor the node writing it "
          "has a MASE format for it (data_out exists only for a linear / conv2d whose output "
          "nothing else reads)",
          r.node, r.input);
    }
    for (const auto& [name, at] : r.consumers) {
      int input = at;
      const size_t k = node_of(r, name, input);
      attach_through(r, k, input);
    }
  }

  quant::QuantAssignment q;
  for (auto& slot : slots) {
    // Not a structured binding: the lambdas below use it, which clang before 16 rejects (the
    // fuzz build, `make fuzz`, is clang 14).
    const size_t k = slot.first;
    auto& s = slot.second;
    const ir::Node& n = g.nodes()[k];
    const std::string op = ir::mase_op(g, n);
    auto missing = [&](const char* what) {
      fail(
          "QONNX node '{}': node '{}' ({}) gets some of its formats from Quant nodes but not its "
          "{}; MASE quantizes a {} only as a whole, so give it a Quant there too (or none at all)",
          s.first_quant, n.name, op, what, op);
    };
    quant::NodeQuantConfig c;
    c.quantized = true;
    c.rounding = s.rounding.value_or(quant::Rounding::kHalfToEven);
    auto get = [&](int i) -> std::optional<quant::FixedFormat> {
      auto it = s.in.find(i);
      return it == s.in.end() ? std::nullopt : std::optional(it->second);
    };
    c.data_in = get(0);
    if (!c.data_in) missing("data_in (input 0)");
    switch (n.kind) {
      case OpKind::kGemm:
      case OpKind::kMatMul:
      case OpKind::kConv:
      case OpKind::kConvTranspose:
        c.weight = get(1);
        if (!c.weight) missing("weight (input 1)");
        c.bias = get(2);
        c.data_out = s.data_out;
        break;
      case OpKind::kGru:
      case OpKind::kLstm: {
        // MASE's one weight format covers both the input (W) and recurrent (R) weights.
        c.weight = get(1);
        if (!c.weight) missing("weight (input W)");
        const auto r = get(2);
        if (!r) missing("recurrent weight (input R, quantized with the weight format)");
        if (*r != *c.weight) {
          fail(
              "QONNX node '{}': node '{}' ({}) quantizes W as {} and R as {}; MASE quantizes "
              "both with one weight format",
              s.first_quant, n.name, op, quant::format_name(*c.weight), quant::format_name(*r));
        }
        c.bias = get(3);
        break;
      }
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul: {
        const auto b = get(1);
        if (!b) missing("second input (MASE quantizes both inputs with data_in)");
        if (*b != *c.data_in) {
          fail(
              "QONNX node '{}': node '{}' ({}) reads its inputs in two formats ({} and {}); MASE "
              "quantizes both with one data_in format",
              s.first_quant, n.name, op, quant::format_name(*c.data_in), quant::format_name(*b));
        }
        break;
      }
      default:
        break;
    }
    q[n.config_name] = c;
  }
  return q;
}

}  // namespace detail

namespace {

QonnxModel with_formats(ir::Graph graph, const detail::QonnxRecords& records,
                        const std::string& source) {
  QonnxModel m{.graph = std::move(graph)};
  try {
    m.formats = detail::qonnx_assignment(m.graph, records);
  } catch (Error& e) {
    e.add_context(fmt::format("while importing ONNX model '{}'", source));
    throw;
  }
  m.quant_nodes = static_cast<int>(records.records.size());
  return m;
}

}  // namespace

QonnxModel import_qonnx_bytes(std::string_view bytes, const std::string& source,
                              const ImportOptions& options) {
  detail::QonnxRecords records;
  ir::Graph g = detail::import_bytes(bytes, source, &records, options);
  return with_formats(std::move(g), records, source);
}

QonnxModel import_qonnx(const std::string& path, const ImportOptions& options) {
  detail::QonnxRecords records;
  ir::Graph g = detail::import_file(path, &records, options);
  return with_formats(std::move(g), records, path);
}

}  // namespace qsearch::onnx
