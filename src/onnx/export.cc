#include "onnx/export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"
#include "onnx/export_proto.h"
#include "onnx/import.h"

namespace qsearch::onnx {

namespace {

namespace pb = ::onnx;
using ir::OpKind;

int32_t onnx_dtype(DType t) {
  switch (t) {
    case DType::kFloat32:
      return pb::TensorProto::FLOAT;
    case DType::kFloat64:
      return pb::TensorProto::DOUBLE;
    case DType::kInt8:
      return pb::TensorProto::INT8;
    case DType::kUInt8:
      return pb::TensorProto::UINT8;
    case DType::kInt16:
      return pb::TensorProto::INT16;
    case DType::kInt32:
      return pb::TensorProto::INT32;
    case DType::kInt64:
      return pb::TensorProto::INT64;
  }
  return pb::TensorProto::UNDEFINED;
}

// The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE).
int64_t ir_version_for(int opset) { return opset <= 11 ? 6 : opset <= 14 ? 7 : 8; }

void fill_value_info(pb::ValueInfoProto* vi, const std::string& name, const ir::Value& v) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_dtype(v.dtype));
  auto* shape = tt->mutable_shape();
  for (int64_t d : v.shape) {
    if (d == kDynamic) {
      shape->add_dim()->set_dim_param("batch");
    } else {
      shape->add_dim()->set_dim_value(d);
    }
  }
}

void fill_tensor(pb::TensorProto* t, const std::string& name, const Tensor& data) {
  t->set_name(name);
  t->set_data_type(onnx_dtype(data.dtype()));
  for (int64_t d : data.shape()) t->add_dims(d);
  t->set_raw_data(std::string(static_cast<const char*>(data.raw()), data.nbytes()));
}

// The view reading Conv `conv` when it is the middle of an imported 3-D Conv, or ConvTranspose
// `conv` when it is the middle of an imported 3-D ConvTranspose (a transposed Im2Col3d before
// it), else -1.
ir::NodeId conv3d_view(const ir::Graph& g, const ir::Node& conv) {
  if (conv.kind != OpKind::kConv && conv.kind != OpKind::kConvTranspose) return -1;
  if (conv.inputs.empty() || conv.outputs.size() != 1) return -1;
  const ir::NodeId p = g.value(conv.inputs[0]).producer;
  if (p < 0 || g.node(p).kind != OpKind::kIm2Col3d) return -1;
  if (std::get<ir::Im2Col3dAttrs>(g.node(p).attrs).transposed !=
      (conv.kind == OpKind::kConvTranspose)) {
    return -1;
  }
  if (g.consumers(conv.inputs[0]).size() != 1 || g.value(conv.inputs[1]).shape.size() != 4) {
    return -1;
  }
  const ir::ValueId y = conv.outputs[0];
  const std::vector<ir::NodeId> users = g.consumers(y);
  if (users.size() != 1 || g.node(users[0]).kind != OpKind::kReshape) return -1;
  for (ir::ValueId o : g.outputs()) {
    if (o == y || o == conv.inputs[0]) return -1;
  }
  return g.value(g.node(users[0]).outputs[0]).shape.size() == 5 ? users[0] : -1;
}

}  // namespace

ir::NodeId conv3d_part_of(const ir::Graph& g, const ir::Node& n) {
  if (n.kind == OpKind::kIm2Col3d && n.outputs.size() == 1) {
    const std::vector<ir::NodeId> users = g.consumers(n.outputs[0]);
    if (users.size() == 1 && conv3d_view(g, g.node(users[0])) >= 0) return users[0];
  }
  if (n.kind == OpKind::kReshape && !n.inputs.empty()) {
    const ir::NodeId p = g.value(n.inputs[0]).producer;
    if (p >= 0 && conv3d_view(g, g.node(p)) >= 0 && &g.node(conv3d_view(g, g.node(p))) == &n) {
      return p;
    }
  }
  return -1;
}

namespace {

class Exporter {
 public:
  Exporter(const ir::Graph& g, int opset) : g_(g), opset_(opset) {}

  pb::ModelProto run() {
    if (opset_ < kMinOpset || opset_ > kMaxOpset) {
      fail("cannot export at opset {}; qsearch writes opsets {} to {}", opset_, kMinOpset,
           kMaxOpset);
    }
    pb::ModelProto m;
    m.set_ir_version(ir_version_for(opset_));
    m.set_producer_name("qsearch");
    m.set_producer_version(QSEARCH_VERSION);
    auto* op = m.add_opset_import();
    op->set_domain("");
    op->set_version(opset_);
    graph_ = m.mutable_graph();
    graph_->set_name("qsearch");
    names_.resize(g_.values().size());
    for (ir::ValueId in : g_.inputs()) fill_value_info(graph_->add_input(), name(in), g_.value(in));
    std::string config_names;
    for (const ir::Node& n : g_.nodes()) {
      node_begin_.push_back(graph_->node_size());
      export_node(n);
      config_names += n.name + "\t" + n.config_name + "\n";
    }
    for (ir::ValueId o : g_.outputs()) {
      ensure_constant(o);
      fill_value_info(graph_->add_output(), name(o), g_.value(o));
    }
    auto* prop = m.add_metadata_props();
    prop->set_key("qsearch.config_names");
    prop->set_value(config_names);
    try {
      pb::checker::check_model(m);
    } catch (const std::exception& e) {
      fail("the exported model fails the ONNX checker (a qsearch bug, please report): {}",
           e.what());
    }
    return m;
  }

  // Per ir node (graph order), the index of the first ONNX node written for it.
  const std::vector<int>& node_begin() const { return node_begin_; }

 private:
  // A unique, non-empty ONNX name for value v (its own name when that is free).
  const std::string& name(ir::ValueId v) {
    if (names_[v].empty()) names_[v] = fresh(g_.value(v).name, fmt::format("value_{}", v));
    return names_[v];
  }

  std::string fresh(const std::string& want, const std::string& fallback) {
    std::string base = want.empty() ? fallback : want;
    std::string n = base;
    for (int k = 1; used_.count(n); ++k) n = fmt::format("{}_{}", base, k);
    used_.insert(n);
    return n;
  }

  void ensure_constant(ir::ValueId v) {
    if (!g_.value(v).is_constant() || written_.count(v)) return;
    written_.insert(v);
    fill_tensor(graph_->add_initializer(), name(v), g_.value(v).data);
  }

  // An extra initializer holding an attribute that ONNX takes as an input.
  std::string extra(const ir::Node& n, const std::string& what, const Tensor& t) {
    std::string nm = fresh(n.name + "/" + what, what);
    fill_tensor(graph_->add_initializer(), nm, t);
    return nm;
  }

  pb::AttributeProto* attr(pb::NodeProto* p, const char* name,
                           pb::AttributeProto::AttributeType type) {
    auto* a = p->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  }
  void set_int(pb::NodeProto* p, const char* name, int64_t v) {
    attr(p, name, pb::AttributeProto::INT)->set_i(v);
  }
  void set_float(pb::NodeProto* p, const char* name, float v) {
    attr(p, name, pb::AttributeProto::FLOAT)->set_f(v);
  }
  template <typename C>
  void set_ints(pb::NodeProto* p, const char* name, const C& v) {
    auto* a = attr(p, name, pb::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  [[noreturn]] void bad(const ir::Node& n, const std::string& msg) {
    fail("cannot export node '{}' ({}) at opset {}: {}", n.name, ir::op_name(n.kind), opset_, msg);
  }

  // A node written as plain ONNX ops (the form torch.onnx.export writes, which the importer fuses
  // back into n, name included): inputs by name; returns the output's name (or `out`).
  std::string plain(const std::string& op, const std::string& name,
                    const std::vector<std::string>& inputs, const std::string& out = "") {
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type(op);
    p->set_name(fresh(name, op));
    for (const std::string& in : inputs) p->add_input(in);
    const std::string y = out.empty() ? fresh(p->name() + "_output_0", op) : out;
    p->add_output(y);
    return y;
  }

  // GELU (exact, any opset: ONNX has Gelu only from opset 20) and LayerNormalization below
  // opset 17, as torch.onnx.export (opset 13) writes nn.GELU and nn.LayerNorm:
  //   Div(x, sqrt 2), Erf, Add(1), Mul(x, .), Mul(., 0.5)
  //   ReduceMean, Sub, Pow(2), ReduceMean, Add(eps), Sqrt, Div, Mul(scale), Add(bias)
  void export_decomposed(const ir::Node& n) {
    const std::string tail = n.kind == OpKind::kGelu ? "/Gelu" : "/LayerNormalization";
    const std::string scope = n.name.size() > tail.size() && n.name.ends_with(tail)
                                  ? n.name.substr(0, n.name.size() - tail.size())
                                  : n.name;
    for (ir::ValueId in : n.inputs) {
      if (in != ir::kNoValue) ensure_constant(in);
    }
    const std::string x = name(n.inputs[0]);
    const std::string y = name(n.outputs[0]);
    auto scalar = [&](const std::string& what, float v) {
      return extra(n, what, Tensor::from<float>({}, {v}));
    };
    if (n.kind == OpKind::kGelu) {
      if (std::get<ir::GeluAttrs>(n.attrs).tanh) {
        bad(n, "the tanh GELU has no ONNX form qsearch writes (ONNX has Gelu from opset 20)");
      }
      const std::string d = plain("Div", scope + "/Div", {x, scalar("sqrt2", std::sqrt(2.0f))});
      const std::string e = plain("Erf", scope + "/Erf", {d});
      const std::string a = plain("Add", scope + "/Add", {e, scalar("one", 1.0f)});
      const std::string m = plain("Mul", scope + "/Mul", {x, a});
      plain("Mul", scope + "/Mul_1", {m, scalar("half", 0.5f)}, y);
      return;
    }
    const auto& at = std::get<ir::LayerNormAttrs>(n.attrs);
    std::vector<int64_t> axes;
    if (at.axis < 0) {
      for (int64_t d = at.axis; d < 0; ++d) axes.push_back(d);
    } else {
      const int64_t rank = static_cast<int64_t>(g_.infer_shapes(1)[n.inputs[0]].size());
      for (int64_t d = at.axis; d < rank; ++d) axes.push_back(d);
    }
    auto reduce_mean = [&](const std::string& nm, const std::string& in) {
      const std::string out = plain("ReduceMean", nm, {in});
      pb::NodeProto* p = graph_->mutable_node(graph_->node_size() - 1);
      set_ints(p, "axes", axes);
      set_int(p, "keepdims", 1);
      return out;
    };
    const std::string mean = reduce_mean(scope + "/ReduceMean", x);
    const std::string sub = plain("Sub", scope + "/Sub", {x, mean});
    const std::string pw = plain("Pow", scope + "/Pow", {sub, scalar("two", 2.0f)});
    const std::string var = reduce_mean(scope + "/ReduceMean_1", pw);
    const std::string ve = plain("Add", scope + "/Add", {var, scalar("epsilon", at.epsilon)});
    const std::string sd = plain("Sqrt", scope + "/Sqrt", {ve});
    const bool has_bias = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue;
    const std::string dv = plain("Div", scope + "/Div", {sub, sd});
    const std::string ml = plain("Mul", scope + "/Mul", {dv, name(n.inputs[1])}, has_bias ? "" : y);
    if (has_bias) plain("Add", scope + "/Add_1", {ml, name(n.inputs[2])}, y);
  }

  // The imported 3-D ConvTranspose whose middle node is `convt` (conv3d_part_of), as one ONNX
  // ConvTranspose: the importer's weight [C * kD * kH, M/g, 1, kW] (row (c * kD + i) * kH + r)
  // back to [C, M/g, kD, kH, kW], the attributes of D and H from the Im2Col3d, W's from the 2-D
  // ConvTranspose.
  void export_conv_transpose3d(const ir::Node& convt, const ir::Node& view) {
    const ir::Node& im = g_.node(g_.value(convt.inputs[0]).producer);
    const auto& ia = std::get<ir::Im2Col3dAttrs>(im.attrs);
    const auto& ca = std::get<ir::ConvTransposeAttrs>(convt.attrs);
    const ir::Value& wv = g_.value(convt.inputs[1]);
    const int64_t kd = ia.kernel[0], kh = ia.kernel[1];
    const Shape& ws = wv.shape;
    if (!wv.is_constant() || wv.data.dtype() != DType::kFloat32 || ws[0] % (kd * kh) != 0 ||
        ws[2] != 1 || ca.kernel[0] != 1 || ca.strides[0] != 1 || ca.dilations[0] != 1 ||
        ca.pads[0] != 0 || ca.pads[2] != 0 || ca.output_padding[0] != 0) {
      bad(convt,
          "a 3-D ConvTranspose's weight or height attributes are not the importer's (weight "
          "[C * kD * kH, M/g, 1, kW], kernel, stride, dilation 1 and no pads over the height)");
    }
    const int64_t c = ws[0] / (kd * kh), mg = ws[1], kw = ws[3];
    Tensor w5({c, mg, kd, kh, kw}, DType::kFloat32);
    const float* src = wv.data.data<float>();
    float* dst = w5.data<float>();
    for (int64_t ci = 0; ci < c; ++ci) {
      for (int64_t j = 0; j < mg; ++j) {
        for (int64_t i = 0; i < kd * kh; ++i) {
          for (int64_t t = 0; t < kw; ++t) {
            dst[((ci * mg + j) * kd * kh + i) * kw + t] =
                src[((ci * kd * kh + i) * mg + j) * kw + t];
          }
        }
      }
    }
    ensure_constant(im.inputs[0]);
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type("ConvTranspose");
    p->set_name(convt.name);
    p->add_input(name(im.inputs[0]));
    std::string wname = wv.name;
    if (wname.ends_with("~2d")) wname.resize(wname.size() - 3);
    const std::string w5n = fresh(wname, "weight");
    fill_tensor(graph_->add_initializer(), w5n, w5);
    p->add_input(w5n);
    if (convt.inputs.size() > 2 && convt.inputs[2] != ir::kNoValue) {
      ensure_constant(convt.inputs[2]);
      p->add_input(name(convt.inputs[2]));
    }
    p->add_output(name(view.outputs[0]));
    set_ints(p, "kernel_shape", std::array<int64_t, 3>{kd, kh, kw});
    set_ints(p, "strides", std::array<int64_t, 3>{ia.strides[0], ia.strides[1], ca.strides[1]});
    set_ints(p, "dilations",
             std::array<int64_t, 3>{ia.dilations[0], ia.dilations[1], ca.dilations[1]});
    set_ints(p, "pads",
             std::array<int64_t, 6>{ia.pads[0], ia.pads[1], ca.pads[1], ia.pads[2], ia.pads[3],
                                    ca.pads[3]});
    set_ints(
        p, "output_padding",
        std::array<int64_t, 3>{ia.output_padding[0], ia.output_padding[1], ca.output_padding[1]});
    set_int(p, "group", ca.group);
  }

  // The imported 3-D Conv whose middle node is `conv` (conv3d_part_of), as one ONNX Conv.
  void export_conv3d(const ir::Node& conv, const ir::Node& view) {
    const ir::Node& im = g_.node(g_.value(conv.inputs[0]).producer);
    const auto& ia = std::get<ir::Im2Col3dAttrs>(im.attrs);
    const auto& ca = std::get<ir::ConvAttrs>(conv.attrs);
    const ir::Value& wv = g_.value(conv.inputs[1]);  // [M, C/g * kD * kH, 1, kW]
    const int64_t kd = ia.kernel[0], kh = ia.kernel[1];
    const Shape& ws = wv.shape;
    if (!wv.is_constant() || ws[1] % (kd * kh) != 0 || ws[2] != 1) {
      bad(conv, "a 3-D convolution's weight is not the importer's [M, C/g * kD * kH, 1, kW]");
    }
    ensure_constant(im.inputs[0]);
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type("Conv");
    p->set_name(conv.name);
    p->add_input(name(im.inputs[0]));
    // The 5-D weight under the module's own name (the importer's view is `<name>~2d`).
    std::string wname = wv.name;
    if (wname.ends_with("~2d")) wname.resize(wname.size() - 3);
    const std::string w5 = fresh(wname, "weight");
    fill_tensor(graph_->add_initializer(), w5,
                wv.data.clone().reshaped({ws[0], ws[1] / (kd * kh), kd, kh, ws[3]}));
    p->add_input(w5);
    if (conv.inputs.size() > 2 && conv.inputs[2] != ir::kNoValue) {
      ensure_constant(conv.inputs[2]);
      p->add_input(name(conv.inputs[2]));
    }
    p->add_output(name(view.outputs[0]));
    set_ints(p, "kernel_shape", std::array<int64_t, 3>{kd, kh, ca.kernel[1]});
    set_ints(p, "strides", std::array<int64_t, 3>{ia.strides[0], ia.strides[1], ca.strides[1]});
    set_ints(p, "dilations",
             std::array<int64_t, 3>{ia.dilations[0], ia.dilations[1], ca.dilations[1]});
    set_ints(p, "pads",
             std::array<int64_t, 6>{ia.pads[0], ia.pads[1], ca.pads[1], ia.pads[2], ia.pads[3],
                                    ca.pads[3]});
    set_int(p, "group", ca.group);
  }

  // GRU / LSTM: one ONNX node per ir node, writing only the output the ir node computes (the
  // others' names empty), so that import gives back one ir node each. ONNX's inputs X, W, R, B,
  // sequence_lens (never given), initial_h, initial_c; absent ones empty, trailing ones dropped.
  void export_rnn(const ir::Node& n) {
    const auto& a = std::get<ir::RnnAttrs>(n.attrs);
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type(std::string(ir::op_name(n.kind)));
    p->set_name(n.name);
    std::vector<std::string> ins;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (i == 4) ins.emplace_back();  // sequence_lens
      const ir::ValueId v = n.inputs[i];
      if (v == ir::kNoValue) {
        ins.emplace_back();
        continue;
      }
      ensure_constant(v);
      ins.push_back(name(v));
    }
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
    for (const std::string& in : ins) p->add_input(in);
    for (int k = 0; k < a.output; ++k) p->add_output("");
    p->add_output(name(n.outputs[0]));
    set_int(p, "hidden_size", a.hidden_size);
    attr(p, "direction", pb::AttributeProto::STRING)
        ->set_s(a.directions == 2 ? "bidirectional"
                : a.reverse       ? "reverse"
                                  : "forward");
    if (n.kind == OpKind::kGru) set_int(p, "linear_before_reset", 1);
  }

  void export_node(const ir::Node& n) {
    if (const ir::NodeId v = conv3d_view(g_, n); v >= 0) {
      if (n.kind == OpKind::kConv) {
        export_conv3d(n, g_.node(v));
      } else {
        export_conv_transpose3d(n, g_.node(v));
      }
      return;
    }
    if (conv3d_part_of(g_, n) >= 0) return;  // written with its Conv / ConvTranspose
    if (n.kind == OpKind::kIm2Col3d) {
      bad(n,
          "an Im2Col3d that is not the start of an imported 3-D Conv or ConvTranspose (Im2Col3d "
          "-> Conv or ConvTranspose -> Reshape, each read only by the next) has no ONNX form");
    }
    if (n.kind == OpKind::kGelu || (n.kind == OpKind::kLayerNorm && opset_ < 17)) {
      export_decomposed(n);
      return;
    }
    if (n.kind == OpKind::kGru || n.kind == OpKind::kLstm) {
      export_rnn(n);
      return;
    }
    pb::NodeProto* p = graph_->add_node();
    p->set_op_type(std::string(ir::op_name(n.kind)));
    p->set_name(n.name);
    for (ir::ValueId in : n.inputs) {
      if (in == ir::kNoValue) {
        p->add_input("");
        continue;
      }
      ensure_constant(in);
      p->add_input(name(in));
    }
    for (ir::ValueId out : n.outputs) p->add_output(name(out));
    switch (n.kind) {
      case OpKind::kGemm: {
        const auto& a = std::get<ir::GemmAttrs>(n.attrs);
        set_float(p, "alpha", a.alpha);
        set_float(p, "beta", a.beta);
        set_int(p, "transA", a.trans_a);
        set_int(p, "transB", a.trans_b);
        break;
      }
      case OpKind::kConv: {
        const auto& a = std::get<ir::ConvAttrs>(n.attrs);
        if (g_.value(n.inputs[1]).shape.size() == 3) {  // Conv1d: the width entries only
          set_ints(p, "kernel_shape", std::array<int64_t, 1>{a.kernel[1]});
          set_ints(p, "strides", std::array<int64_t, 1>{a.strides[1]});
          set_ints(p, "dilations", std::array<int64_t, 1>{a.dilations[1]});
          set_ints(p, "pads", std::array<int64_t, 2>{a.pads[1], a.pads[3]});
          set_int(p, "group", a.group);
          break;
        }
        set_ints(p, "kernel_shape", a.kernel);
        set_ints(p, "strides", a.strides);
        set_ints(p, "dilations", a.dilations);
        set_ints(p, "pads", a.pads);
        set_int(p, "group", a.group);
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAveragePool: {
        const auto& a = std::get<ir::PoolAttrs>(n.attrs);
        set_ints(p, "kernel_shape", a.kernel);
        set_ints(p, "strides", a.strides);
        set_ints(p, "pads", a.pads);
        set_int(p, "ceil_mode", a.ceil_mode);
        if (n.kind == OpKind::kMaxPool) {
          set_ints(p, "dilations", a.dilations);
        } else {
          if (a.dilations != std::array<int64_t, 2>{1, 1}) {
            bad(n, "AveragePool has dilations only from opset 19");
          }
          set_int(p, "count_include_pad", a.count_include_pad);
        }
        break;
      }
      case OpKind::kBatchNorm: {
        const auto& a = std::get<ir::BatchNormAttrs>(n.attrs);
        set_float(p, "epsilon", a.epsilon);
        set_float(p, "momentum", a.momentum);
        break;
      }
      case OpKind::kLeakyRelu:
        set_float(p, "alpha", std::get<ir::LeakyReluAttrs>(n.attrs).alpha);
        break;
      case OpKind::kClip: {
        const auto& a = std::get<ir::ClipAttrs>(n.attrs);
        bool has_min = !std::isinf(a.min) || a.min > 0, has_max = !std::isinf(a.max) || a.max < 0;
        if (has_min || has_max) {
          p->add_input(has_min ? extra(n, "min", Tensor::from<float>({}, {a.min})) : "");
        }
        if (has_max) p->add_input(extra(n, "max", Tensor::from<float>({}, {a.max})));
        break;
      }
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax: {
        int64_t axis = std::get<ir::AxisAttrs>(n.attrs).axis;
        if (opset_ < 13) {
          const Shape& s = g_.value(n.inputs[0]).shape;
          int64_t r = static_cast<int64_t>(s.size());
          for (int64_t d = (axis < 0 ? axis + r : axis) + 1; d < r; ++d) {
            if (s[d] != 1) {
              bad(n, fmt::format("below opset 13 {} normalises all dims from its axis on",
                                 ir::op_name(n.kind)));
            }
          }
        }
        set_int(p, "axis", axis);
        break;
      }
      case OpKind::kFlatten:
      case OpKind::kConcat:
        set_int(p, "axis", std::get<ir::AxisAttrs>(n.attrs).axis);
        break;
      case OpKind::kReshape: {
        const auto& a = std::get<ir::ReshapeAttrs>(n.attrs);
        p->add_input(extra(n, "shape",
                           Tensor::from<int64_t>({static_cast<int64_t>(a.shape.size())}, a.shape)));
        bool has_zero = std::find(a.shape.begin(), a.shape.end(), 0) != a.shape.end();
        if (a.allowzero && opset_ >= 14) {
          set_int(p, "allowzero", 1);
        } else if (a.allowzero && has_zero) {
          bad(n, "allowzero needs opset 14");
        }
        break;
      }
      case OpKind::kTranspose: {
        const auto& a = std::get<ir::TransposeAttrs>(n.attrs);
        if (!a.perm.empty()) set_ints(p, "perm", a.perm);
        break;
      }
      case OpKind::kDropout: {
        float ratio = std::get<ir::DropoutAttrs>(n.attrs).ratio;
        if (opset_ >= 12) {
          p->add_input(extra(n, "ratio", Tensor::from<float>({}, {ratio})));
        } else {
          set_float(p, "ratio", ratio);
        }
        break;
      }
      case OpKind::kReduceMean:
      case OpKind::kReduceSum:
      case OpKind::kReduceMax: {
        const auto& a = std::get<ir::ReduceAttrs>(n.attrs);
        // ReduceSum takes axes as an input from opset 13, the others from opset 18.
        if (n.kind == OpKind::kReduceSum && opset_ >= 13) {
          if (!a.axes.empty()) {
            p->add_input(extra(
                n, "axes", Tensor::from<int64_t>({static_cast<int64_t>(a.axes.size())}, a.axes)));
          }
        } else if (!a.axes.empty()) {
          set_ints(p, "axes", a.axes);
        }
        set_int(p, "keepdims", a.keepdims);
        break;
      }
      case OpKind::kLayerNorm: {
        const auto& a = std::get<ir::LayerNormAttrs>(n.attrs);
        set_int(p, "axis", a.axis);
        set_float(p, "epsilon", a.epsilon);
        break;
      }
      case OpKind::kGather: {
        const auto& a = std::get<ir::GatherAttrs>(n.attrs);
        if (n.inputs.size() < 2) {  // else the indices are the node's input 1
          p->add_input(extra(n, "indices", Tensor::from<int64_t>(a.indices_shape, a.indices)));
        }
        set_int(p, "axis", a.axis);
        break;
      }
      case OpKind::kCast: {
        // Bool lives in the ir as uint8 0 / 1 (qsearch has no bool dtype).
        const DType to = std::get<ir::CastAttrs>(n.attrs).to;
        set_int(p, "to", to == DType::kUInt8 ? pb::TensorProto::BOOL : onnx_dtype(to));
        break;
      }
      case OpKind::kExpand: {
        const auto& a = std::get<ir::ExpandAttrs>(n.attrs);
        p->add_input(extra(n, "shape",
                           Tensor::from<int64_t>({static_cast<int64_t>(a.shape.size())}, a.shape)));
        break;
      }
      case OpKind::kHardSigmoid: {
        const auto& a = std::get<ir::HardSigmoidAttrs>(n.attrs);
        set_float(p, "alpha", a.alpha);
        set_float(p, "beta", a.beta);
        break;
      }
      case OpKind::kHardSwish:
        if (opset_ < 14) bad(n, "ONNX has HardSwish only from opset 14");
        break;
      case OpKind::kPad: {
        const auto& a = std::get<ir::PadAttrs>(n.attrs);
        const int64_t k = static_cast<int64_t>(a.pads.size());
        p->add_input(extra(n, "pads", Tensor::from<int64_t>({k}, a.pads)));
        p->add_input(extra(n, "value", Tensor::from<float>({}, {a.value})));
        attr(p, "mode", pb::AttributeProto::STRING)
            ->set_s(a.mode == ir::PadMode::kConstant  ? "constant"
                    : a.mode == ir::PadMode::kReflect ? "reflect"
                                                      : "edge");
        break;
      }
      case OpKind::kConvTranspose: {
        const auto& a = std::get<ir::ConvTransposeAttrs>(n.attrs);
        set_ints(p, "kernel_shape", a.kernel);
        set_ints(p, "strides", a.strides);
        set_ints(p, "dilations", a.dilations);
        set_ints(p, "pads", a.pads);
        set_ints(p, "output_padding", a.output_padding);
        set_int(p, "group", a.group);
        break;
      }
      case OpKind::kResize: {
        const auto& a = std::get<ir::ResizeAttrs>(n.attrs);
        if (a.sizes[0] > 0)
          bad(n, "a Resize to fixed sizes cannot be written with a dynamic batch");
        static const char* coords[] = {"asymmetric", "half_pixel", "pytorch_half_pixel",
                                       "align_corners"};
        static const char* nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        p->add_input(extra(n, "roi", Tensor::from<float>({0}, {})));
        p->add_input(
            extra(n, "scales", Tensor::from<float>({4}, {1.0f, 1.0f, a.scales[0], a.scales[1]})));
        attr(p, "mode", pb::AttributeProto::STRING)
            ->set_s(a.mode == ir::ResizeMode::kLinear ? "linear" : "nearest");
        attr(p, "coordinate_transformation_mode", pb::AttributeProto::STRING)
            ->set_s(coords[static_cast<int>(a.coord)]);
        attr(p, "nearest_mode", pb::AttributeProto::STRING)
            ->set_s(nearest[static_cast<int>(a.nearest)]);
        break;
      }
      case OpKind::kSlice: {
        const auto& a = std::get<ir::SliceAttrs>(n.attrs);
        const int64_t k = static_cast<int64_t>(a.starts.size());
        p->add_input(extra(n, "starts", Tensor::from<int64_t>({k}, a.starts)));
        p->add_input(extra(n, "ends", Tensor::from<int64_t>({k}, a.ends)));
        p->add_input(extra(n, "axes", Tensor::from<int64_t>({k}, a.axes)));
        p->add_input(extra(n, "steps", Tensor::from<int64_t>({k}, a.steps)));
        break;
      }
      default:
        break;
    }
  }

  const ir::Graph& g_;
  int opset_;
  pb::GraphProto* graph_ = nullptr;
  std::vector<std::string> names_;
  std::set<std::string> used_;
  std::set<ir::ValueId> written_;
  std::vector<int> node_begin_;
};

}  // namespace

pb::ModelProto export_model_proto(const ir::Graph& graph, int opset, std::vector<int>* node_begin) {
  Exporter e(graph, opset);
  pb::ModelProto m = e.run();
  if (node_begin) *node_begin = e.node_begin();
  return m;
}

std::string export_model_bytes(const ir::Graph& graph, int opset) {
  pb::ModelProto m = Exporter(graph, opset).run();
  std::string out;
  if (!m.SerializeToString(&out)) fail("cannot serialize the ONNX model (larger than 2 GiB?)");
  return out;
}

void export_model(const ir::Graph& graph, const std::string& path, int opset) {
  std::string bytes = export_model_bytes(graph, opset);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail("cannot write ONNX model '{}': {}", path, std::strerror(errno));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) fail("cannot write ONNX model '{}': {}", path, std::strerror(errno));
}

}  // namespace qsearch::onnx
