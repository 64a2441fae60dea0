// QONNX export (qonnx.h): the plain export of export.cc, then one QONNX Quant node in front of
// every input a node quantizes and behind every data_out.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "core/error.h"
#include "onnx/export.h"
#include "onnx/importer.h"
#include "onnx/qonnx.h"

namespace qsearch::onnx {

namespace {

namespace pb = ::onnx;
using ir::OpKind;

// ONNX nodes export.cc writes for ir node n: GELU always and LayerNorm below opset 17 in torch's
// decomposed form (export_decomposed), everything else as one node.
int onnx_node_count(const ir::Graph& g, const ir::Node& n, int opset) {
  if (conv3d_part_of(g, n) >= 0) return 0;  // a 3-D Conv's Im2Col3d / view: written as its Conv
  if (n.kind == OpKind::kGelu) return 5;    // Div, Erf, Add, Mul, Mul
  if (n.kind == OpKind::kLayerNorm && opset < 17) {
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue;
    return 8 + (has_bias ? 1 : 0);  // ReduceMean .. Mul [, Add]
  }
  (void)g;
  return 1;
}

class QonnxWriter {
 public:
  QonnxWriter(const ir::Graph& g, const std::vector<QonnxNodeFormats>& formats, int opset)
      : g_(g), formats_(formats), opset_(opset) {}

  std::string run() {
    if (formats_.size() != g_.nodes().size()) {
      fail("internal: {} QONNX node formats for {} nodes", formats_.size(), g_.nodes().size());
    }
    const std::string plain = export_model_bytes(g_, opset_);
    pb::ModelProto m;
    if (!m.ParseFromString(plain)) fail("internal: cannot re-read the exported model");
    for (const auto& i : m.graph().initializer()) used_.insert(i.name());
    for (const auto& n : m.graph().node()) {
      used_.insert(n.name());
      for (const auto& o : n.output()) used_.insert(o);
    }
    for (const auto& i : m.graph().input()) used_.insert(i.name());

    pb::GraphProto* graph = m.mutable_graph();
    std::vector<pb::NodeProto> old(graph->node().begin(), graph->node().end());
    graph->clear_node();
    graph_ = graph;
    size_t j = 0;
    for (size_t k = 0; k < g_.nodes().size(); ++k) {
      const ir::Node& n = g_.nodes()[k];
      const QonnxNodeFormats& f = formats_[k];
      const int count = onnx_node_count(g_, n, opset_);
      if (j + count > old.size() || (count == 1 && old[j].name() != n.name)) {
        fail("internal: the exported ONNX nodes do not follow the graph at node '{}'", n.name);
      }
      for (size_t i = 0; i < f.inputs.size() && i < n.inputs.size(); ++i) {
        if (f.inputs[i]) check_format(n, *f.inputs[i]);
      }
      if (f.data_out) check_format(n, *f.data_out);
      // The names the block reads for n's inputs: input i of the (first) node.
      for (int b = 0; b < count; ++b) {
        pb::NodeProto p = old[j + b];
        if (count == 1) {
          for (size_t i = 0; i < f.inputs.size() && i < static_cast<size_t>(p.input_size()); ++i) {
            if (f.inputs[i] && !p.input(i).empty()) {
              p.set_input(static_cast<int>(i), quant_of(p.input(i), *f.inputs[i], f.rounding));
            }
          }
        } else if (!f.inputs.empty() && f.inputs[0]) {
          // Decomposed GELU / LayerNorm: data_in is their input x, read by several nodes.
          const std::string x = old[j].input(0);
          for (int i = 0; i < p.input_size(); ++i) {
            if (p.input(i) == x) p.set_input(i, quant_of(x, *f.inputs[0], f.rounding));
          }
        }
        if (f.data_out && b == count - 1) {
          const std::string y = p.output(0);
          const std::string raw = fresh(y + "_float");
          p.set_output(0, raw);
          *graph_->add_node() = p;
          data_out_ +=
              add_quant(raw, y, *f.data_out, f.rounding, n.name + "/data_out_quant") + "\n";
        } else {
          *graph_->add_node() = p;
        }
      }
      j += count;
    }
    if (j != old.size()) fail("internal: {} exported ONNX nodes left over", old.size() - j);
    auto* op = m.add_opset_import();
    op->set_domain(kQonnxDomain);
    op->set_version(1);
    m.set_producer_name("qsearch (QONNX)");
    if (!data_out_.empty()) {
      // Which Quant nodes are a data_out, so that import gives them back to the same node.
      auto* prop = m.add_metadata_props();
      prop->set_key(detail::kQonnxDataOutKey);
      prop->set_value(data_out_);
    }
    try {
      pb::checker::check_model(m);
    } catch (const std::exception& e) {
      fail("the exported QONNX model fails the ONNX checker (a qsearch bug, please report): {}",
           e.what());
    }
    std::string out;
    if (!m.SerializeToString(&out)) fail("cannot serialize the ONNX model (larger than 2 GiB?)");
    return out;
  }

 private:
  void check_format(const ir::Node& n, const quant::FixedFormat& f) {
    if (f.width == 1 && f.is_signed) {
      fail(
          "cannot export node '{}' (config name '{}') to QONNX: its 1-bit signed format {} has "
          "the codes -1 and 0, but QONNX executes a 1-bit signed Quant as bipolar -1/+1; use a "
          "width of at least 2",
          n.name, n.config_name, quant::format_name(f));
    }
  }

  std::string fresh(const std::string& want) {
    std::string n = want;
    for (int k = 1; used_.count(n); ++k) n = fmt::format("{}_{}", want, k);
    used_.insert(n);
    return n;
  }

  // A float32 scalar initializer, one per distinct (what, value).
  std::string scalar(const std::string& what, float v) {
    const auto key = std::make_pair(what, v);
    if (auto it = scalars_.find(key); it != scalars_.end()) return it->second;
    const std::string name = fresh(what);
    pb::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(pb::TensorProto::FLOAT);
    t->add_float_data(v);
    scalars_.emplace(key, name);
    return name;
  }

  std::string add_quant(const std::string& x, const std::string& y, const quant::FixedFormat& f,
                        quant::Rounding r, const std::string& node_name) {
    pb::NodeProto* q = graph_->add_node();
    q->set_op_type("Quant");
    q->set_domain(kQonnxDomain);
    q->set_name(fresh(node_name));
    q->add_input(x);
    q->add_input(scalar(fmt::format("qonnx_scale_2^{}", -f.frac),
                        static_cast<float>(std::ldexp(1.0, -f.frac))));
    q->add_input(scalar("qonnx_zeropt_0", 0.0f));
    q->add_input(scalar(fmt::format("qonnx_bitwidth_{}", f.width), static_cast<float>(f.width)));
    q->add_output(y);
    auto attr_i = [&](const char* name, int64_t v) {
      auto* a = q->add_attribute();
      a->set_name(name);
      a->set_type(pb::AttributeProto::INT);
      a->set_i(v);
    };
    attr_i("signed", f.is_signed ? 1 : 0);
    attr_i("narrow", 0);
    auto* a = q->add_attribute();
    a->set_name("rounding_mode");
    a->set_type(pb::AttributeProto::STRING);
    a->set_s(qonnx_rounding_mode(r));
    return q->name();
  }

  // The name of x quantized with (f, r), adding its Quant node on first use.
  std::string quant_of(const std::string& x, const quant::FixedFormat& f, quant::Rounding r) {
    const auto key = std::make_tuple(x, f.width, f.frac, f.is_signed, static_cast<int>(r));
    if (auto it = quants_.find(key); it != quants_.end()) return it->second;
    const std::string tag = fmt::format("{}{}_{}{}", f.is_signed ? "s" : "u", f.width,
                                        f.frac < 0 ? "m" : "", std::abs(f.frac));
    const std::string y = fresh(x + "_quant_" + tag);
    add_quant(x, y, f, r, x + "/quant_" + tag);
    quants_.emplace(key, y);
    return y;
  }

  const ir::Graph& g_;
  const std::vector<QonnxNodeFormats>& formats_;
  int opset_;
  pb::GraphProto* graph_ = nullptr;
  std::set<std::string> used_;
  std::string data_out_;  // names of the data_out Quant nodes, one a line
  std::map<std::pair<std::string, float>, std::string> scalars_;
  std::map<std::tuple<std::string, int, int, bool, int>, std::string> quants_;
};

}  // namespace

const char* qonnx_rounding_mode(quant::Rounding r) {
  switch (r) {
    case quant::Rounding::kHalfToEven:
      return "ROUND";
    case quant::Rounding::kHalfAwayFromZero:
      return "HALF_UP";
    case quant::Rounding::kFloor:
      break;
  }
  return "FLOOR";
}

std::string export_qonnx_bytes(const ir::Graph& graph, const std::vector<QonnxNodeFormats>& formats,
                               int opset) {
  return QonnxWriter(graph, formats, opset).run();
}

}  // namespace qsearch::onnx
