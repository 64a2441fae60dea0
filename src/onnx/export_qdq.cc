#include "onnx/export_qdq.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "core/error.h"
#include "onnx/export_proto.h"

namespace qsearch::onnx {

namespace {

namespace pb = ::onnx;

// TensorProto data types of ONNX 1.16+ that the protobuf of the linked ONNX (1.12) does not name.
constexpr int32_t kUInt4 = 21;
constexpr int32_t kInt4 = 22;

constexpr int kOpset8Bit = 13;
constexpr int kOpsetWide = 21;  // int4 / uint4 / int16 / uint16 in QuantizeLinear
constexpr int kCheckedOpset = 17;

// The Reduce ops whose `axes` became an input at opset 18.
const std::set<std::string> kReduceAxesInput18 = {
    "ReduceMean", "ReduceMax",    "ReduceMin",       "ReduceProd",     "ReduceL1",
    "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

bool is_constant(const ir::Graph& g, ir::ValueId v) { return g.value(v).is_constant(); }

// The storage type of a format, or 0 when QDQ cannot express it (then `why` says so).
int32_t storage_type(const QdqFormat& f, bool constant, std::string* why) {
  switch (f.width) {
    case 4:
      return f.is_signed ? kInt4 : kUInt4;
    case 8:
      return f.is_signed ? pb::TensorProto::INT8 : pb::TensorProto::UINT8;
    case 16:
      return f.is_signed ? pb::TensorProto::INT16 : pb::TensorProto::UINT16;
    case 32:
      if (constant && f.is_signed) return pb::TensorProto::INT32;
      *why = f.is_signed ? "QuantizeLinear has no int32 output, so a 32-bit format is written only "
                           "for a constant (int32 codes read by a DequantizeLinear)"
                         : "QDQ has no uint32 storage type";
      return 0;
    default:
      *why = fmt::format(
          "QuantizeLinear clamps only at its storage type's range (int4/uint4, int8/uint8, "
          "int16/uint16), so a {}-bit format cannot be expressed",
          f.width);
      return 0;
  }
}

std::string type_name(int32_t t) {
  switch (t) {
    case kInt4:
      return "int4";
    case kUInt4:
      return "uint4";
    case pb::TensorProto::INT8:
      return "int8";
    case pb::TensorProto::UINT8:
      return "uint8";
    case pb::TensorProto::INT16:
      return "int16";
    case pb::TensorProto::UINT16:
      return "uint16";
    default:
      return "int32";
  }
}

class QdqWriter {
 public:
  QdqWriter(const ir::Graph& g, const std::vector<QdqNode>& nodes) : g_(g), nodes_(nodes) {}

  QdqModel run() {
    if (nodes_.size() > g_.nodes().size()) {
      fail("internal: {} QDQ node entries for a graph of {} nodes", nodes_.size(),
           g_.nodes().size());
    }
    const int opset = choose_opset();
    std::vector<int> begin;
    pb::ModelProto m = export_model_proto(g_, std::min(opset, kCheckedOpset), &begin);
    begin.push_back(m.graph().node_size());
    pb::GraphProto* graph = m.mutable_graph();
    collect_names(*graph);
    std::vector<pb::NodeProto> old(graph->node().begin(), graph->node().end());
    graph->clear_node();
    graph_ = graph;
    for (size_t k = 0; k < g_.nodes().size(); ++k) {
      const ir::Node& n = g_.nodes()[k];
      const QdqNode* q = k < nodes_.size() ? &nodes_[k] : nullptr;
      const int b = begin[k], e = begin[k + 1];
      const bool single = e - b == 1;
      std::vector<pb::NodeProto> mine(old.begin() + b, old.begin() + e);
      if (mine.empty()) continue;  // a 3-D Conv's Im2Col3d / view: written with its Conv
      for (size_t i = 0; q && i < q->inputs.size() && i < n.inputs.size(); ++i) {
        if (!q->inputs[i] || n.inputs[i] == ir::kNoValue) continue;
        if (single) {
          std::string* in = mine[0].mutable_input(static_cast<int>(i));
          *in = quantized(*in, *q->inputs[i]);
        } else {  // a decomposed op reads x (its input 0) in several nodes
          if (i != 0) fail("internal: QDQ on input {} of the decomposed node '{}'", i, n.name);
          const std::string x = mine[0].input(0);
          const std::string xq = quantized(x, *q->inputs[i]);
          for (pb::NodeProto& p : mine) {
            for (std::string& in : *p.mutable_input()) {
              if (in == x) in = xq;
            }
          }
        }
      }
      std::string out_y, out_raw;
      if (q && q->output) {
        out_y = mine.back().output(0);
        out_raw = fresh(out_y + "_unquantized");
        for (pb::NodeProto& p : mine) {
          for (std::string& o : *p.mutable_output()) {
            if (o == out_y) o = out_raw;
          }
        }
      }
      for (pb::NodeProto& p : mine) *graph->add_node() = std::move(p);
      if (q && q->output) pair(out_raw, *q->output, out_y);
    }
    if (opset == kOpsetWide) {
      // onnx.checker of the linked ONNX knows opsets <= 17: check the structure at 17 (names,
      // topological order, node attributes and input counts, initializers), then relabel.
      check(m);
      m.mutable_opset_import(0)->set_version(kOpsetWide);
      m.set_ir_version(10);  // onnx/helper.py VERSION_TABLE: opset 21 <-> IR 10
      for (pb::NodeProto& p : *graph->mutable_node()) {
        if (kReduceAxesInput18.count(p.op_type())) axes_to_input(p);
      }
    } else {
      check(m);
    }
    QdqModel out{.opset = opset, .pairs = pairs_};
    if (!m.SerializeToString(&out.bytes)) {
      fail("cannot serialize the QDQ ONNX model (larger than 2 GiB?)");
    }
    return out;
  }

 private:
  // 13 when every format is 8 bits (or an int32 constant), 21 for 4 / 16 bits; widths QDQ cannot
  // express are an Error naming the node.
  int choose_opset() {
    int opset = kOpset8Bit;
    auto need = [&](const ir::Node& n, const QdqFormat& f, bool constant) {
      std::string why;
      if (storage_type(f, constant, &why) == 0) {
        fail(
            "layer '{}' (node '{}', {}): its {} format is {}{} (frac {}): {}; the qdq export "
            "cannot write it (use --format qonnx, which handles any width)",
            n.config_name.empty() ? n.name : n.config_name, n.name, ir::op_name(n.kind), f.role,
            f.is_signed ? "s" : "u", f.width, f.frac, why);
      }
      if (f.width == 4 || f.width == 16) opset = kOpsetWide;
    };
    for (size_t k = 0; k < nodes_.size(); ++k) {
      const ir::Node& n = g_.nodes()[k];
      for (size_t i = 0; i < nodes_[k].inputs.size() && i < n.inputs.size(); ++i) {
        if (nodes_[k].inputs[i] && n.inputs[i] != ir::kNoValue) {
          need(n, *nodes_[k].inputs[i], is_constant(g_, n.inputs[i]));
        }
      }
      if (nodes_[k].output) need(n, *nodes_[k].output, false);
    }
    return opset;
  }

  void collect_names(const pb::GraphProto& graph) {
    for (const auto& p : graph.node()) {
      used_.insert(p.name());
      for (const auto& s : p.input()) used_.insert(s);
      for (const auto& s : p.output()) used_.insert(s);
    }
    for (const auto& t : graph.initializer()) used_.insert(t.name());
    for (const auto& v : graph.input()) used_.insert(v.name());
    for (const auto& v : graph.output()) used_.insert(v.name());
  }

  std::string fresh(const std::string& want) {
    std::string n = want;
    for (int k = 1; used_.count(n); ++k) n = fmt::format("{}_{}", want, k);
    used_.insert(n);
    return n;
  }

  pb::TensorProto* initializer(const std::string& name, int32_t type) {
    pb::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    return t;
  }

  // The float32 scalar 2^-frac.
  const std::string& scale(int frac) {
    auto it = scales_.find(frac);
    if (it != scales_.end()) return it->second;
    const std::string nm =
        fresh(fmt::format("qdq_scale_frac{}{}", frac < 0 ? "m" : "", std::abs(frac)));
    const float s = std::ldexp(1.0f, -frac);
    char raw[4];
    std::memcpy(raw, &s, 4);
    initializer(nm, pb::TensorProto::FLOAT)->set_raw_data(std::string(raw, 4));
    return scales_[frac] = nm;
  }

  // The scalar zero point 0 of `type` (which makes it QuantizeLinear's output type).
  const std::string& zero(int32_t type) {
    auto it = zeros_.find(type);
    if (it != zeros_.end()) return it->second;
    const std::string nm = fresh("qdq_zero_" + type_name(type));
    const size_t bytes = type == pb::TensorProto::INT16 || type == pb::TensorProto::UINT16 ? 2
                         : type == pb::TensorProto::INT32                                  ? 4
                                                                                           : 1;
    initializer(nm, type)->set_raw_data(std::string(bytes, '\0'));  // int4: one packed byte
    return zeros_[type] = nm;
  }

  pb::NodeProto* node(const std::string& op, const std::string& name,
                      const std::vector<std::string>& inputs, const std::string& out) {
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type(op);
    p->set_name(fresh(name));
    for (const auto& in : inputs) p->add_input(in);
    p->add_output(out);
    return p;
  }

  // QuantizeLinear(x) -> DequantizeLinear -> y.
  void pair(const std::string& x, const QdqFormat& f, const std::string& y) {
    std::string unused;
    const int32_t type = storage_type(f, false, &unused);
    const std::string q = fresh(x + "_q" + type_name(type));
    node("QuantizeLinear", x + "/QuantizeLinear", {x, scale(f.frac), zero(type)}, q);
    node("DequantizeLinear", x + "/DequantizeLinear", {q, scale(f.frac), zero(type)}, y);
    ++pairs_;
  }

  // The name of x quantized at f (a new pair, or the one written before for the same x and f).
  std::string quantized(const std::string& x, const QdqFormat& f) {
    const auto key = std::make_tuple(x, f.width, f.frac, f.is_signed);
    auto it = done_.find(key);
    if (it != done_.end()) return it->second;
    const std::string y = fresh(fmt::format("{}_qdq_{}{}_{}{}", x, f.is_signed ? "s" : "u", f.width,
                                            f.frac < 0 ? "m" : "", std::abs(f.frac)));
    if (f.width == 32) {
      int32_codes(x, f, y);
    } else {
      pair(x, f, y);
    }
    return done_[key] = y;
  }

  // A 32-bit constant: its codes clamp(round_half_even(v * 2^f)) as an int32 initializer, then
  // DequantizeLinear.
  void int32_codes(const std::string& x, const QdqFormat& f, const std::string& y) {
    const pb::TensorProto* src = nullptr;
    for (const auto& t : graph_->initializer()) {
      if (t.name() == x) src = &t;
    }
    if (!src || src->data_type() != pb::TensorProto::FLOAT || !src->has_raw_data()) {
      fail("internal: the 32-bit QDQ constant '{}' is not a float32 initializer", x);
    }
    const std::string& raw = src->raw_data();
    std::string codes(raw.size(), '\0');
    for (size_t i = 0; i + 4 <= raw.size(); i += 4) {
      float v;
      std::memcpy(&v, raw.data() + i, 4);
      const double r = std::isnan(v) ? 0.0 : std::nearbyint(std::ldexp(double{v}, f.frac));
      const int32_t c = static_cast<int32_t>(std::clamp(r, -2147483648.0, 2147483647.0));
      std::memcpy(codes.data() + i, &c, 4);
    }
    const std::string nm = fresh(x + "_int32");
    pb::TensorProto* t = initializer(nm, pb::TensorProto::INT32);
    for (int64_t d : src->dims()) t->add_dims(d);
    t->set_raw_data(codes);
    const int32_t type = pb::TensorProto::INT32;
    node("DequantizeLinear", x + "/DequantizeLinear", {nm, scale(f.frac), zero(type)}, y);
    ++pairs_;
  }

  void axes_to_input(pb::NodeProto& p) {
    for (int a = 0; a < p.attribute_size(); ++a) {
      if (p.attribute(a).name() != "axes") continue;
      const auto axes = p.attribute(a).ints();
      const std::string nm = fresh(p.name() + "/axes");
      pb::TensorProto* t = initializer(nm, pb::TensorProto::INT64);
      t->add_dims(axes.size());
      std::string raw(8 * static_cast<size_t>(axes.size()), '\0');
      for (int i = 0; i < axes.size(); ++i) {
        const int64_t v = axes[i];
        std::memcpy(raw.data() + 8 * i, &v, 8);
      }
      t->set_raw_data(raw);
      p.mutable_attribute()->DeleteSubrange(a, 1);
      p.add_input(nm);
      return;
    }
  }

  static void check(const pb::ModelProto& m) {
    try {
      pb::checker::check_model(m);
    } catch (const std::exception& e) {
      fail("the QDQ model fails the ONNX checker (a qsearch bug, please report): {}", e.what());
    }
  }

  const ir::Graph& g_;
  const std::vector<QdqNode>& nodes_;
  pb::GraphProto* graph_ = nullptr;
  std::set<std::string> used_;
  std::map<int, std::string> scales_;
  std::map<int32_t, std::string> zeros_;
  std::map<std::tuple<std::string, int, int, bool>, std::string> done_;
  int pairs_ = 0;
};

}  // namespace

QdqModel export_qdq(const ir::Graph& graph, const std::vector<QdqNode>& nodes) {
  return QdqWriter(graph, nodes).run();
}

}  // namespace qsearch::onnx
