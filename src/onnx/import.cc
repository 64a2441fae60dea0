// Model-level import: parsing, checks, graph input/outputs, the node loop and the bookkeeping
// that the per-op conversions (import_ops.cc) share.
#include "onnx/import.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstring>

#include <filesystem>
#include <set>
#include <sstream>
#include <unordered_set>

#include "onnx/importer.h"

namespace qsearch::onnx {

namespace detail {

namespace {

using Fn = void (Importer::*)();

const std::map<std::string, Fn>& op_table() {
  static const std::map<std::string, Fn> table = {
      {"Gemm", &Importer::op_gemm_matmul},
      {"MatMul", &Importer::op_gemm_matmul},
      {"Add", &Importer::op_binary},
      {"Sub", &Importer::op_binary},
      {"Mul", &Importer::op_binary},
      {"Div", &Importer::op_binary},
      {"Relu", &Importer::op_unary},
      {"LeakyRelu", &Importer::op_unary},
      {"Sigmoid", &Importer::op_unary},
      {"Tanh", &Importer::op_unary},
      {"Clip", &Importer::op_clip},
      {"Softmax", &Importer::op_softmax},
      {"LogSoftmax", &Importer::op_softmax},
      {"Conv", &Importer::op_conv},
      {"BatchNormalization", &Importer::op_batchnorm},
      {"MaxPool", &Importer::op_pool},
      {"AveragePool", &Importer::op_pool},
      {"GlobalAveragePool", &Importer::op_global_average_pool},
      {"Flatten", &Importer::op_flatten},
      {"Reshape", &Importer::op_reshape},
      {"Transpose", &Importer::op_transpose},
      {"Concat", &Importer::op_concat},
      {"Identity", &Importer::op_identity_dropout},
      {"Dropout", &Importer::op_identity_dropout},
      {"Constant", &Importer::op_constant},
      {"Shape", &Importer::op_shape},
      {"Gather", &Importer::op_gather},
      {"Unsqueeze", &Importer::op_unsqueeze_squeeze},
      {"Squeeze", &Importer::op_unsqueeze_squeeze},
      {"Slice", &Importer::op_slice},
      {"Cast", &Importer::op_cast},
      {"ConstantOfShape", &Importer::op_constant_of_shape},
      {"Pad", &Importer::op_pad},
      {"Erf", &Importer::op_unary},
      {"Sqrt", &Importer::op_unary},
      {"Exp", &Importer::op_unary},
      {"Neg", &Importer::op_unary},
      {"Pow", &Importer::op_binary},
      {"ReduceMean", &Importer::op_reduce},
      {"ReduceSum", &Importer::op_reduce},
      {"ReduceMax", &Importer::op_reduce},
      {"LayerNormalization", &Importer::op_layer_norm},
      {"Split", &Importer::op_split},
      {"Equal", &Importer::op_equal},
      {"Where", &Importer::op_where},
      {"Expand", &Importer::op_expand},
      {"Not", &Importer::op_not_and},
      {"And", &Importer::op_not_and},
      {"GlobalMaxPool", &Importer::op_cnn_unary},
      {"HardSigmoid", &Importer::op_cnn_unary},
      {"HardSwish", &Importer::op_cnn_unary},
      {"Resize", &Importer::op_resize},
      {"ConvTranspose", &Importer::op_conv_transpose},
      {"GRU", &Importer::op_rnn},
      {"LSTM", &Importer::op_rnn},
      {"Gelu", &Importer::op_gelu},
  };
  return table;
}

bool default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string node_label(const pb::NodeProto& n, int index) {
  return n.name().empty() ? fmt::format("{}_{}", n.op_type(), index) : n.name();
}

std::string supported_list() {
  std::string s;
  for (const std::string& op : supported_ops()) s += (s.empty() ? "" : ", ") + op;
  return s;
}

std::string dynamic_axes_hint(int64_t batch) {
  return fmt::format(
      "the model was exported with a fixed batch size of {}, but qsearch runs it at any batch "
      "size: export it with a dynamic batch axis, e.g. torch.onnx.export(..., "
      "dynamic_axes={{'input': {{0: 'batch'}}, 'output': {{0: 'batch'}}}})",
      batch);
}

// Key of the model metadata where export_model() stores config names, one "node\tname" a line.
constexpr const char* kConfigNamesKey = "qsearch.config_names";

}  // namespace

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v;
    for (ir::OpKind k : ir::all_ops()) v.emplace_back(ir::op_name(k));
    v.emplace_back("Constant");
    for (const char* s : {"Shape", "ConstantOfShape"}) {
      v.push_back(std::string(s) + " (shape computations)");
    }
    for (const char* s : {"Unsqueeze", "Squeeze", "Split"}) {
      v.push_back(std::string(s) + " (rewritten or folded at import)");
    }
    return v;
  }();
  return ops;
}

Importer::Importer(pb::ModelProto& model, std::string source, const ImportOptions& options)
    : model_(model), graph_(model.graph()), source_(std::move(source)), options_(options) {
  for (const auto& op : model.opset_import()) {
    if (default_domain(op.domain())) {
      if (opset_ != 0 && opset_ != op.version()) {
        fail("'{}' imports the default ONNX domain twice (opsets {} and {})", source_, opset_,
             op.version());
      }
      opset_ = static_cast<int>(op.version());
    }
  }
  if (opset_ == 0) fail("'{}' does not import the default ONNX domain (no opset)", source_);
  if (opset_ < kMinOpset || opset_ > kMaxOpset) {
    fail(
        "'{}' uses opset {}; qsearch reads opsets {} to {} (and converts {} to {} and {} to {}): "
        "export with opset_version=17",
        source_, opset_, kMinOpset, kMaxOpset, kMinConvertibleOpset, kMinOpset - 1, kMaxOpset + 1,
        kMaxNewerOpset);
  }
}

ir::Graph Importer::run() {
  read_initializers();
  read_input();
  for (int i = 0; i < graph_.node_size(); ++i) import_node(graph_.node(i), i);
  node_ = nullptr;
  read_outputs();
  fuse_patterns(g_);
  apply_config_names();
  try {
    g_.finalize();
  } catch (Error& e) {
    if (file_batch_ > 0) e.add_context(dynamic_axes_hint(file_batch_));
    throw;
  }
  for (ir::ValueId o : g_.outputs()) {
    const ir::Value& v = g_.value(o);
    if (v.shape.empty() || v.shape[0] != kDynamic) {
      Error e(
          fmt::format("graph output '{}' has shape {}, which does not grow with the batch: "
                      "qsearch needs dim 0 of every output to be the batch",
                      v.name, shape_str(v.shape)));
      if (file_batch_ > 0) e.add_context(dynamic_axes_hint(file_batch_));
      throw e;
    }
  }
  return std::move(g_);
}

void Importer::read_initializers() {
  // graph_ is the const view of the model the constructor took mutable.
  for (auto& t : *const_cast<pb::GraphProto&>(graph_).mutable_initializer()) {
    if (t.name().empty()) fail("an initializer has no name");
    if (!initializers_.emplace(t.name(), &t).second) {
      fail("initializer '{}' is defined twice", t.name());
    }
  }
}

void Importer::read_input() {
  std::vector<const pb::ValueInfoProto*> real;
  for (const auto& vi : graph_.input()) {
    if (!initializers_.count(vi.name())) real.push_back(&vi);
  }
  if (real.empty()) {
    fail("the model has no graph input (every input is an initializer); qsearch needs one");
  }
  // Several inputs (a BERT's input_ids, attention_mask, token_type_ids): each is fed by its own
  // data array (docs/datasets.md), every one with the batch as dim 0.
  for (const auto* vi : real) read_graph_input(*vi);
}

void Importer::read_graph_input(const pb::ValueInfoProto& in) {
  if (!in.type().has_tensor_type()) fail("graph input '{}' is not a tensor", in.name());
  const auto& tt = in.type().tensor_type();
  DType dtype = DType::kFloat32;
  switch (tt.elem_type()) {
    case pb::TensorProto::FLOAT:
      break;
    case pb::TensorProto::INT64:  // token ids
      dtype = DType::kInt64;
      break;
    case pb::TensorProto::INT32:
      dtype = DType::kInt32;
      break;
    default:
      fail("graph input '{}' has dtype {}; qsearch supports float32, int64 and int32 inputs",
           in.name(), dtype_str(tt.elem_type()));
  }
  if (!tt.has_shape() || tt.shape().dim_size() == 0) {
    fail("graph input '{}' has no shape; export the model with its input shape", in.name());
  }
  Shape shape;
  int64_t per_sample = 1;
  for (int d = 0; d < tt.shape().dim_size(); ++d) {
    const auto& dim = tt.shape().dim(d);
    if (d == 0) {
      if (dim.has_dim_value()) {
        if (dim.dim_value() < 1) {
          fail("graph input '{}' has batch dimension {}", in.name(), dim.dim_value());
        }
        file_batch_ = dim.dim_value();
      }
      shape.push_back(kDynamic);
      continue;
    }
    // A symbolic dim other than the batch (a sequence length) takes the size the caller bound
    // its name to (from the data set): the model is imported as if exported at that size.
    int64_t size = dim.dim_value();
    if (!dim.has_dim_value()) {
      auto bound =
          dim.dim_param().empty() ? options_.dims.end() : options_.dims.find(dim.dim_param());
      if (bound == options_.dims.end()) {
        if (dim.dim_param().empty()) {
          fail(
              "graph input '{}': dimension {} has no size and no name; only the batch "
              "dimension (0) may be unnamed, export with a fixed size or a named dynamic axis",
              in.name(), d);
        }
        fail(
            "graph input '{}': dimension {} is symbolic ('{}'), and nothing gives it a size: "
            "qsearch takes it from the data set (eval, quantize --dataset, search, sensitivity, "
            "export bind it from their data; inspect: --input-dim {}=SIZE)",
            in.name(), d, dim.dim_param(), dim.dim_param());
      }
      size = bound->second;
    }
    constexpr int64_t kMaxPerSample = int64_t{1} << 32;
    if (size < 1 || size > kMaxPerSample || __builtin_mul_overflow(per_sample, size, &per_sample) ||
        per_sample > kMaxPerSample) {
      fail("graph input '{}': dimension {} = {}{} is out of range (1..2^32 elements per sample)",
           in.name(), d, size,
           dim.has_dim_value() ? "" : fmt::format(" (symbolic '{}', bound)", dim.dim_param()));
    }
    shape.push_back(size);
  }
  ir::ValueId v = g_.add_input(in.name(), shape, dtype);
  for (int b = 0; b < 3; ++b) {
    Shape s = shape;
    s[0] = b + 1;
    shapes_[b].resize(v + 1);
    shapes_[b][v] = s;
  }
  Entry e;
  e.value = v;
  env_[in.name()] = std::move(e);
}

void Importer::read_outputs() {
  if (graph_.output_size() == 0) fail("the graph has no outputs");
  for (const auto& out : graph_.output()) {
    auto it = env_.find(out.name());
    if (it == env_.end() && initializers_.count(out.name())) {
      fail("graph output '{}' is an initializer; qsearch needs outputs computed from the input",
           out.name());
    }
    if (it == env_.end()) fail("graph output '{}' is not produced by any node", out.name());
    const Entry& e = it->second;
    if (e.kind == Entry::Kind::kUnavailable) {
      fail("graph output '{}' is {}, which qsearch does not compute", out.name(), e.why);
    }
    if (e.kind != Entry::Kind::kActivation) {
      fail("graph output '{}' is a constant; qsearch needs outputs computed from the input",
           out.name());
    }
    if (e.zero_pad) {
      fail(
          "graph output '{}' is the output of a Pad; qsearch folds a Pad only into a following "
          "Conv or AveragePool",
          out.name());
    }
    g_.mark_output(e.value);
  }
}

void Importer::import_node(const pb::NodeProto& node, int index) {
  node_ = &node;
  node_name_ = node_label(node, index);
  try {
    if (!default_domain(node.domain())) {
      bad("unsupported operator (domain '{}'); qsearch supports: {}", node.domain(),
          supported_list());
    }
    auto it = op_table().find(node.op_type());
    if (it == op_table().end()) bad("unsupported operator; qsearch supports: {}", supported_list());
    (this->*(it->second))();
  } catch (Error& e) {
    if (e.message().rfind("node '", 0) != 0) {
      e.add_context(fmt::format("in node '{}' ({})", node_name_, node.op_type()));
    }
    throw;
  }
}

void Importer::apply_config_names() {
  for (const auto& prop : model_.metadata_props()) {
    if (prop.key() != kConfigNamesKey) continue;
    std::set<std::string> seen;
    std::unordered_map<std::string, size_t> by_name;  // ir node names are unique
    for (size_t i = 0; i < g_.nodes().size(); ++i) by_name.emplace(g_.nodes()[i].name, i);
    std::istringstream lines(prop.value());
    std::string line;
    while (std::getline(lines, line)) {
      size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      std::string node = line.substr(0, tab), name = line.substr(tab + 1);
      bool ok = !name.empty();
      for (char c : name) {
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_');
      }
      if (!ok || !seen.insert(name).second) {
        fail("metadata '{}': config name '{}' of node '{}' is not a unique [A-Za-z0-9_] name",
             kConfigNamesKey, name, node);
      }
      if (auto it = by_name.find(node); it != by_name.end())
        g_.nodes()[it->second].config_name = name;
    }
  }
}

// ---- entries ------------------------------------------------------------------------------------

Entry& Importer::entry(const std::string& name) {
  auto it = env_.find(name);
  if (it == env_.end()) {
    auto init = initializers_.find(name);
    if (init == initializers_.end()) {
      bad("input '{}' is not produced by any node, initializer or graph input", name);
    }
    Entry e;
    std::string what = fmt::format("initializer '{}'", name);
    if (is_int_tensor(*init->second)) {
      e.kind = Entry::Kind::kSym;
      e.sym = int_tensor(*init->second, what);
    } else {
      e.kind = Entry::Kind::kFloatConst;
      e.data = float_tensor(*init->second, what);
      // The Tensor holds the values now (an initializer is converted once: entries are kept in
      // env_); free the proto's copy.
      release_data(*init->second);
    }
    it = env_.emplace(name, std::move(e)).first;
  }
  if (it->second.kind == Entry::Kind::kUnavailable) {
    bad("input '{}' is {}, which qsearch does not compute", name, it->second.why);
  }
  return it->second;
}

bool Importer::present(int k) const { return k < node_->input_size() && !node_->input(k).empty(); }

Entry& Importer::in(int k) {
  if (!present(k)) bad("input {} is missing", k);
  return entry(node_->input(k));
}

ir::ValueId Importer::ir_input(int k) {
  Entry& e = in(k);
  switch (e.kind) {
    case Entry::Kind::kActivation:
      if (e.zero_pad) {
        bad("input '{}' is the output of a constant zero Pad, which qsearch folds only into a "
            "Conv or an AveragePool (count_include_pad=1 or no pads of its own, ceil_mode=0) "
            "reading it directly; put the padding into that node (e.g. Conv2d(padding=...))",
            node_->input(k));
      }
      return e.value;
    case Entry::Kind::kFloatConst:
      if (e.value == ir::kNoValue) {
        e.value = g_.add_constant(node_->input(k), e.data);
        for (auto& s : shapes_) s.push_back(e.data.shape());
      }
      return e.value;
    default:
      bad("input '{}' is an int64 shape computation; {} needs a float32 tensor", node_->input(k),
          node_->op_type());
  }
}

ir::ValueId Importer::ir_input_as(int k, DType dtype) {
  Entry& e = in(k);
  if (e.kind != Entry::Kind::kSym) return ir_input(k);
  const std::vector<int64_t> v = const_ints(k, "operand");
  Tensor t(e.sym.shape, dtype);
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dtype) {
      case DType::kInt64:
        t.data<int64_t>()[i] = v[i];
        break;
      case DType::kInt32:
        t.data<int32_t>()[i] = static_cast<int32_t>(v[i]);
        break;
      case DType::kUInt8:
        t.data<uint8_t>()[i] = v[i] != 0;
        break;
      default:
        t.data<float>()[i] = static_cast<float>(v[i]);
        break;
    }
  }
  const ir::ValueId c = g_.add_constant(node_->input(k), std::move(t));
  for (auto& s : shapes_) s.push_back(e.sym.shape);
  return c;
}

DType Importer::dtype_of_entry(int k) {
  Entry& e = in(k);
  if (e.kind == Entry::Kind::kActivation) return g_.value(ir_input(k)).dtype;
  return e.kind == Entry::Kind::kSym ? DType::kInt64 : DType::kFloat32;
}

const Tensor& Importer::const_float(int k, const char* role) {
  Entry& e = in(k);
  if (e.kind == Entry::Kind::kActivation) {
    bad("{} '{}' must be a constant (an initializer or a Constant node), not computed from the "
        "input",
        role, node_->input(k));
  }
  if (e.kind != Entry::Kind::kFloatConst) {
    bad("{} '{}' must be a float32 tensor, not int64", role, node_->input(k));
  }
  return e.data;
}

const SymTensor& Importer::const_sym(int k, const char* role) {
  Entry& e = in(k);
  if (e.kind == Entry::Kind::kActivation) {
    bad("{} '{}' is computed from the input's values, so it cannot be known at import", role,
        node_->input(k));
  }
  if (e.kind != Entry::Kind::kSym) {
    bad("{} '{}' must be an int64 tensor, not float32", role, node_->input(k));
  }
  return e.sym;
}

std::vector<int64_t> Importer::const_ints(int k, const char* role) {
  const SymTensor& s = const_sym(k, role);
  std::vector<int64_t> v;
  for (const SymDim& d : s.elems) {
    if (!d.is_known()) {
      bad("{} '{}' = {} depends on the batch size; qsearch needs it known at import", role,
          node_->input(k), s.str());
    }
    v.push_back(d.value);
  }
  return v;
}

void Importer::define(const std::string& name, Entry e) {
  if (name.empty()) return;
  if (env_.count(name) || initializers_.count(name)) bad("output '{}' is defined twice", name);
  env_.emplace(name, std::move(e));
}

void Importer::define_output(int k, Entry e) {
  if (k >= node_->output_size()) bad("has no output {}", k);
  define(node_->output(k), std::move(e));
}

void Importer::mark_unavailable(int from, const std::string& why) {
  for (int k = from; k < node_->output_size(); ++k) {
    Entry e;
    e.kind = Entry::Kind::kUnavailable;
    e.why = fmt::format("output {} of {} '{}' ({})", k, node_->op_type(), node_name_, why);
    define(node_->output(k), std::move(e));
  }
}

// ---- graph --------------------------------------------------------------------------------------

ir::ValueId Importer::add_value(const std::string& name) {
  ir::ValueId v = g_.add_value(name);
  for (auto& s : shapes_) s.resize(v + 1);
  return v;
}

ir::ValueId Importer::add_ir_node(ir::OpKind kind, ir::Attrs attrs, std::vector<ir::ValueId> inputs,
                                  int out_index, const char* step) {
  if (node_->output_size() <= out_index || node_->output(out_index).empty()) {
    bad("has no output {}", out_index);
  }
  // The first free of label, label_1, label_2, ...; node_names_[label] remembers the last suffix
  // tried so that many nodes with one label cost linear time.
  std::string name = node_name_;
  if (node_names_.count(name)) {
    int& k = node_names_[node_name_];
    while (node_names_.count(name)) name = fmt::format("{}_{}", node_name_, ++k);
  }
  node_names_[name] = 0;
  ir::Node n{kind, name, std::move(inputs), {}, std::move(attrs), ""};
  std::array<Shape, 3> out;
  for (int b = 0; b < 3; ++b) {
    std::vector<const Shape*> ins;
    for (ir::ValueId v : n.inputs) ins.push_back(v >= 0 ? &shapes_[b][v] : nullptr);
    try {
      out[b] = ir::infer_node_shape(n, ins);
    } catch (Error& e) {
      if (file_batch_ > 0) e.add_context(dynamic_axes_hint(file_batch_));
      throw;
    }
  }
  std::vector<DType> in_types;
  for (ir::ValueId i : n.inputs) in_types.push_back(i >= 0 ? g_.value(i).dtype : DType::kFloat32);
  const DType dtype = ir::infer_node_dtype(n, in_types);
  ir::ValueId v =
      add_value(step ? node_->output(out_index) + "~" + step : node_->output(out_index));
  g_.value(v).dtype = dtype;
  n.outputs = {v};
  g_.add_node(std::move(n));
  for (int b = 0; b < 3; ++b) shapes_[b][v] = std::move(out[b]);
  if (step) return v;
  Entry e;
  e.value = v;
  define_output(out_index, std::move(e));
  return v;
}

std::vector<SymDim> Importer::sym_shape(ir::ValueId v) const {
  const Shape &s1 = shapes_[0][v], &s2 = shapes_[1][v], &s3 = shapes_[2][v];
  std::vector<SymDim> out;
  for (size_t d = 0; d < s1.size(); ++d) {
    if (s2.size() != s1.size() || s3.size() != s1.size()) {
      out.push_back(SymDim::unknown());
    } else if (s1[d] == s2[d] && s1[d] == s3[d]) {
      out.push_back(SymDim::known(s1[d]));
    } else if (s2[d] == 2 * s1[d] && s3[d] == 3 * s1[d]) {
      out.push_back(SymDim::batch(s1[d]));
    } else {
      out.push_back(SymDim::unknown());
    }
  }
  return out;
}

// ---- attributes ---------------------------------------------------------------------------------

const pb::AttributeProto* Importer::attr(const char* name) const {
  for (const auto& a : node_->attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t Importer::attr_int(const char* name, int64_t def) const {
  const auto* a = attr(name);
  if (a == nullptr) return def;
  if (a->type() != pb::AttributeProto::INT) bad("attribute '{}' must be an int", name);
  return a->i();
}

float Importer::attr_float(const char* name, float def) const {
  const auto* a = attr(name);
  if (a == nullptr) return def;
  if (a->type() != pb::AttributeProto::FLOAT) bad("attribute '{}' must be a float", name);
  return a->f();
}

std::string Importer::attr_string(const char* name, const std::string& def) const {
  const auto* a = attr(name);
  if (a == nullptr) return def;
  if (a->type() != pb::AttributeProto::STRING) bad("attribute '{}' must be a string", name);
  return a->s();
}

std::vector<int64_t> Importer::attr_ints(const char* name) const {
  const auto* a = attr(name);
  if (a == nullptr) return {};
  if (a->type() != pb::AttributeProto::INTS) bad("attribute '{}' must be a list of ints", name);
  return {a->ints().begin(), a->ints().end()};
}

// Opsets 7 to 10 (what exporters wrote before 2020, and most of libonnx-testdata) are converted
// to kConvertOpset with the ONNX library's version converter, the same adapters as
// onnx.version_converter.convert_version in Python, before anything else reads the model.
static std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// ONNX's shape inference and version converter (libonnx) assume a well-formed graph: a graph
// output that names no value makes its graphProtoToGraph dereference a null pointer (found by
// the fuzzer). Every name is checked here, before they see the model.
static void check_names_before_conversion(const pb::ModelProto& model, const std::string& source,
                                          int opset) {
  const pb::GraphProto& g = model.graph();
  std::unordered_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  auto refuse = [&](const std::string& what) {
    fail("'{}' (opset {}, converted to {} on import) is malformed: {} (re-export the model)",
         source, opset, kConvertOpset, what);
  };
  for (int i = 0; i < g.node_size(); ++i) {
    const pb::NodeProto& n = g.node(i);
    for (const auto& in : n.input()) {
      if (!in.empty() && defined.count(in) == 0) {
        refuse(
            fmt::format("node '{}' ({}) reads '{}', which no earlier node, input or "
                        "initializer defines",
                        node_label(n, i), n.op_type(), in));
      }
    }
    for (const auto& out : n.output()) defined.insert(out);
  }
  for (const auto& v : g.output()) {
    if (defined.count(v.name()) == 0) {
      refuse(fmt::format("graph output '{}' is not defined by any node, input or initializer",
                         v.name()));
    }
  }
}

void upgrade_old_opset(pb::ModelProto& model, const std::string& source) {
  int opset = 0;
  for (const auto& op : model.opset_import()) {
    if (default_domain(op.domain())) opset = static_cast<int>(op.version());
  }
  if (opset < kMinConvertibleOpset || opset >= kMinOpset) return;
  check_names_before_conversion(model, source, opset);
  try {
    // Some adapters (Softmax 12->13, broadcasting Add 6->7) need the input shapes.
    restore_lifted(model);  // the converter rebuilds the initializers from their protos
    ::onnx::shape_inference::InferShapes(model);
    model = ::onnx::version_conversion::ConvertVersion(model, kConvertOpset);
    // The converter keeps the old IR version; opset 13 comes with IR 7, where initializers need
    // not be listed as graph inputs (the converter drops them from the inputs).
    if (model.ir_version() < 7) model.set_ir_version(7);
  } catch (const std::exception& e) {
    fail(
        "'{}' uses opset {}, which qsearch converts to opset {} with the ONNX version converter, "
        "and the conversion failed: {} (re-export the model with opset_version=13)",
        source, opset, kConvertOpset, one_line(e.what()));
  }
}

}  // namespace detail

// ---- public API ---------------------------------------------------------------------------------

namespace detail {

// Everything after parsing; `model` is consumed (its initializers' data is freed as it is
// converted). `qonnx` (may be null) gets the QONNX nodes removed.
ir::Graph import_parsed(::onnx::ModelProto& model, const std::string& source, QonnxRecords* qonnx,
                        const ImportOptions& options) {
  namespace pb = ::onnx;
  if (model.ir_version() <= 0 || !model.has_graph()) {
    fail("'{}' is not an ONNX model: it has no {}", source,
         model.ir_version() <= 0 ? "ir_version" : "graph");
  }
  detail::check_self_contained(model, source);
  try {
    detail::upgrade_old_opset(model, source);
    QonnxRecords q = strip_qonnx(model);  // QONNX Quant nodes: import_qonnx.cc
    if (qonnx) *qonnx = std::move(q);
    detail::NewerOpset newer = detail::downgrade_newer_opset(model, source);
    detail::Importer importer(model, source, options);  // checks the opset
    // Unsupported operators first: the checker's message for them is less helpful.
    for (int i = 0; i < model.graph().node_size(); ++i) {
      const auto& n = model.graph().node(i);
      bool known = detail::default_domain(n.domain()) && detail::op_table().count(n.op_type()) > 0;
      if (!known) {
        fail("node '{}' ({}{}): unsupported operator; qsearch supports: {}",
             detail::node_label(n, i), n.op_type(),
             detail::default_domain(n.domain()) ? "" : ", domain '" + n.domain() + "'",
             detail::supported_list());
      }
    }
    try {
      detail::CheckerView opset17(model, newer);  // opset 18+ nodes as opset-17 stand-ins
      pb::checker::check_model(model);
    } catch (const std::exception& e) {
      fail("the ONNX checker rejects the model: {}", e.what());
    }
    return importer.run();
  } catch (Error& e) {
    e.add_context(fmt::format("while importing ONNX model '{}'", source));
    throw;
  }
}

namespace {

// The CLI keeps freed blocks in the heap for reuse (cli/app.cc); the parsed proto is freed once
// per import, so hand its pages back to the kernel instead of carrying them as resident memory.
void release_freed_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void fail_not_onnx(const std::string& source) {
  fail(
      "'{}' is not an ONNX model: its bytes do not parse as an ONNX ModelProto (truncated or "
      "another format)",
      source);
}

void check_size(uint64_t bytes, const std::string& source) {
  if (bytes == 0) fail("'{}' is not an ONNX model: it is empty", source);
  if (bytes > static_cast<uint64_t>(INT_MAX)) {
    fail("'{}' is larger than 2 GiB; qsearch reads self-contained models up to protobuf's limit",
         source);
  }
}

}  // namespace

ir::Graph import_bytes(std::string_view bytes, const std::string& source, QonnxRecords* qonnx,
                       const ImportOptions& options) {
  check_size(bytes.size(), source);
  ::onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) fail_not_onnx(source);
  return import_parsed(model, source, qonnx, options);
}

ir::Graph import_file(const std::string& path, QonnxRecords* qonnx, const ImportOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    fail("cannot open ONNX model '{}': it is a directory", path);
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ONNX model '{}': {}", path, std::strerror(errno));
  ::onnx::ModelProto model;
  LiftedData lifted;
  {
    // Parsed straight from the file: no buffer holding a second copy of the bytes, and large
    // initializers read into their Tensors (import_lift.cc); only bytes that do not walk as a
    // model go to protobuf directly, for its error.
    google::protobuf::io::FileInputStream in(fd);
    in.SetCloseOnDelete(true);
    struct stat st {};
    if (::fstat(fd, &st) != 0) fail("cannot read ONNX model '{}': {}", path, std::strerror(errno));
    check_size(static_cast<uint64_t>(st.st_size), path);
    bool parsed = parse_lifting(fd, static_cast<uint64_t>(st.st_size), path, model, lifted);
    if (!parsed) {
      model.Clear();
      if (::lseek(fd, 0, SEEK_SET) != 0) {
        fail("cannot read ONNX model '{}': {}", path, std::strerror(errno));
      }
      parsed = model.ParseFromZeroCopyStream(&in);
    }
    if (in.GetErrno() != 0) {
      fail("cannot read ONNX model '{}': {}", path, std::strerror(in.GetErrno()));
    }
    if (!parsed) fail_not_onnx(path);
  }
  LiftScope scope(lifted);
  ir::Graph g = import_parsed(model, path, qonnx, options);
  model = ::onnx::ModelProto();
  lifted.tensors.clear();
  release_freed_memory();
  return g;
}

}  // namespace detail

ir::Graph import_model_bytes(std::string_view bytes, const std::string& source,
                             const ImportOptions& options) {
  return detail::import_bytes(bytes, source, nullptr, options);
}

ir::Graph import_model(const std::string& path, const ImportOptions& options) {
  return detail::import_file(path, nullptr, options);
}

std::optional<std::vector<ir::InputDecl>> read_graph_inputs(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::nullopt;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::vector<::onnx::ValueInfoProto> inputs;
  std::vector<std::string> initializers;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && st.st_size > 0;
  try {
    ok = ok && detail::read_declared_inputs(fd, static_cast<uint64_t>(st.st_size), path, inputs,
                                            initializers);
  } catch (const Error&) {
    ok = false;
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  const std::unordered_set<std::string> constant(initializers.begin(), initializers.end());
  std::vector<ir::InputDecl> out;
  for (const auto& vi : inputs) {
    if (constant.count(vi.name())) continue;  // old exporters list initializers as inputs
    ir::InputDecl decl{vi.name(), {}, {}};
    if (vi.type().has_tensor_type() && vi.type().tensor_type().has_shape()) {
      for (const auto& dim : vi.type().tensor_type().shape().dim()) {
        decl.dims.push_back(dim.has_dim_value() ? dim.dim_value() : kDynamic);
        decl.dim_names.push_back(dim.has_dim_value() ? "" : dim.dim_param());
      }
    }
    out.push_back(std::move(decl));
  }
  return out;
}

}  // namespace qsearch::onnx
