#include "ir/graph.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "ir/rnn.h"

namespace qsearch::ir {

namespace {
constexpr std::string_view kOpNames[] = {
#define QSEARCH_X(kind, onnx, mase) onnx,
    QSEARCH_IR_OPS(QSEARCH_X)
#undef QSEARCH_X
};
constexpr std::string_view kMaseOps[] = {
#define QSEARCH_X(kind, onnx, mase) mase,
    QSEARCH_IR_OPS(QSEARCH_X)
#undef QSEARCH_X
};
}  // namespace

std::string_view op_name(OpKind kind) { return kOpNames[static_cast<int>(kind)]; }

const std::vector<OpKind>& all_ops() {
  static const std::vector<OpKind> ops = {
#define QSEARCH_X(kind, onnx, mase) OpKind::k##kind,
      QSEARCH_IR_OPS(QSEARCH_X)
#undef QSEARCH_X
  };
  return ops;
}

ValueId Graph::add_input(std::string name, Shape shape, DType dtype) {
  Value v;
  v.name = std::move(name);
  v.shape = std::move(shape);
  v.dtype = dtype;
  values_.push_back(std::move(v));
  inputs_.push_back(static_cast<ValueId>(values_.size() - 1));
  return inputs_.back();
}

ValueId Graph::add_constant(std::string name, Tensor data) {
  Value v;
  v.name = std::move(name);
  v.shape = data.shape();
  v.dtype = data.dtype();
  v.data = std::move(data);
  values_.push_back(std::move(v));
  return static_cast<ValueId>(values_.size() - 1);
}

ValueId Graph::add_value(std::string name) {
  Value v;
  v.name = std::move(name);
  values_.push_back(std::move(v));
  return static_cast<ValueId>(values_.size() - 1);
}

NodeId Graph::add_node(Node node) {
  NodeId id = static_cast<NodeId>(nodes_.size());
  for (ValueId o : node.outputs) {
    if (o < 0 || o >= static_cast<ValueId>(values_.size())) {
      fail("node '{}' ({}): output id {} is not a value of the graph", node.name,
           op_name(node.kind), o);
    }
    if (values_[o].producer != -1) {
      fail("node '{}' ({}): output '{}' is already produced by node '{}'", node.name,
           op_name(node.kind), values_[o].name, nodes_[values_[o].producer].name);
    }
    values_[o].producer = id;
  }
  nodes_.push_back(std::move(node));
  return id;
}

void Graph::mark_output(ValueId v) { outputs_.push_back(v); }

std::optional<ValueId> Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values_.size(); ++i) {
    if (values_[i].name == name) return static_cast<ValueId>(i);
  }
  return std::nullopt;
}

const Node* Graph::find_node(const std::string& name) const {
  for (const Node& n : nodes_) {
    if (n.config_name == name) return &n;
  }
  for (const Node& n : nodes_) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

std::vector<NodeId> Graph::consumers(ValueId v) const {
  std::vector<NodeId> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& ins = nodes_[i].inputs;
    if (std::find(ins.begin(), ins.end(), v) != ins.end()) out.push_back(static_cast<NodeId>(i));
  }
  return out;
}

void Graph::topo_sort() {
  const size_t n = nodes_.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<NodeId>> users(n);
  for (size_t i = 0; i < n; ++i) {
    for (ValueId in : nodes_[i].inputs) {
      if (in == kNoValue) continue;
      if (in < 0 || in >= static_cast<ValueId>(values_.size())) {
        fail("node '{}' ({}): input id {} is not a value of the graph", nodes_[i].name,
             op_name(nodes_[i].kind), in);
      }
      NodeId p = values_[in].producer;
      if (p >= 0) {
        ++pending[i];
        users[p].push_back(static_cast<NodeId>(i));
      }
    }
  }
  // Kahn's algorithm, taking ready nodes in their original order so that an already sorted
  // graph keeps its order.
  std::vector<NodeId> order;
  std::set<NodeId> ready;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.insert(static_cast<NodeId>(i));
  }
  while (!ready.empty()) {
    NodeId id = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(id);
    for (NodeId u : users[id]) {
      if (--pending[u] == 0) ready.insert(u);
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (pending[i] > 0) fail("graph has a cycle through node '{}'", nodes_[i].name);
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  std::vector<NodeId> new_id(n);
  for (size_t k = 0; k < n; ++k) new_id[order[k]] = static_cast<NodeId>(k);
  for (NodeId id : order) sorted.push_back(std::move(nodes_[id]));
  nodes_ = std::move(sorted);
  for (auto& v : values_) {
    if (v.producer >= 0) v.producer = new_id[v.producer];
  }
}

namespace {

// The PyTorch module a node was exported from, as its qualified name: torch.onnx writes node
// names as the module path, one segment per module, where a child of a container carries the
// container's name as prefix ("/layer1/layer1.0/conv1/Conv" is module "layer1.0.conv1",
// "/layer2/downsample/downsample.0/Conv" is "layer2.downsample.0"). "Gemm_3" (no scope) gives "".
std::string module_path(const std::string& name) {
  std::vector<std::string> segments;
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t slash = name.find('/', begin);
    if (slash == std::string::npos) slash = name.size();
    if (slash > begin) segments.push_back(name.substr(begin, slash - begin));
    begin = slash + 1;
  }
  if (segments.size() <= 1) return "";
  segments.pop_back();  // the op segment
  std::vector<std::string> parts;
  for (const std::string& seg : segments) {
    const std::string* last = parts.empty() ? nullptr : &parts.back();
    if (last && seg.size() > last->size() + 1 && seg.compare(0, last->size(), *last) == 0 &&
        seg[last->size()] == '.') {
      parts.back() = seg;  // "downsample" then "downsample.0": the container's child
    } else {
      parts.push_back(seg);
    }
  }
  std::string path;
  for (const std::string& p : parts) path += (path.empty() ? "" : ".") + p;
  return path;
}

// Config names are TOML keys: [A-Za-z0-9_], no leading or doubled underscores.
std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
    if (c == '_' && (out.empty() || out.back() == '_')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// The op part of a config name: MASE's op type, without the shape-dependent suffixes (shapes are
// not known yet when names are assigned).
std::string name_op(const Graph& g, const Node& n) {
  switch (n.kind) {
    case OpKind::kGemm:
    case OpKind::kMatMul:
      return weight_input(g, n) >= 0 ? "linear" : "matmul";
    case OpKind::kBatchNorm:
      return "batch_norm";
    default:
      return std::string(kMaseOps[static_cast<int>(n.kind)]);
  }
}

}  // namespace

void Graph::assign_config_names() {
  // Like torch.fx (which MASE uses): a leaf module that produced exactly one node names it
  // ("fc1", "seq_blocks_2", "layer1_0_conv1"); other nodes of a module get "<module>_<op>"
  // ("layer1_0_add" for the residual add in a block's forward); nodes outside any module get
  // "<op>" ("relu", "add"). Duplicates get "_1", "_2", ... in graph order. Names already set
  // (e.g. by a model builder or read back from a qsearch-written ONNX file) are kept.
  std::vector<std::string> scope(nodes_.size());
  std::map<std::string, int> per_scope;
  std::set<std::string> parents;  // modules with a submodule that produced a node
  for (size_t i = 0; i < nodes_.size(); ++i) {
    std::string path = module_path(nodes_[i].name);
    for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
      parents.insert(sanitize(path.substr(0, dot)));
    }
    scope[i] = sanitize(path);
    if (!scope[i].empty()) ++per_scope[scope[i]];
  }
  std::set<std::string> used;
  for (const Node& n : nodes_) {
    if (!n.config_name.empty()) used.insert(n.config_name);
  }
  std::map<std::string, int> next_suffix;  // per base: the last suffix tried
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.config_name.empty()) continue;
    std::string op = name_op(*this, n);
    std::string base;
    if (scope[i].empty()) {
      base = op;
    } else if (per_scope[scope[i]] == 1 && !parents.count(scope[i])) {
      base = scope[i];
    } else {
      base = scope[i] + "_" + op;
    }
    // The first free of base, base_1, base_2, ...: names are only ever added to `used`, so the
    // search for a base resumes where it last stopped (linear in the nodes, not quadratic).
    std::string name = base;
    int& k = next_suffix[base];
    while (used.count(name)) name = fmt::format("{}_{}", base, ++k);
    used.insert(name);
    n.config_name = name;
  }
}

void Graph::finalize() {
  topo_sort();
  assign_config_names();
  // Structure and attributes first, so that shape inference only sees well-formed nodes.
  verify();
  // Element types, in topological order (constants and inputs carry theirs).
  std::vector<DType> ins;
  for (const Node& n : nodes_) {
    ins.clear();
    for (ValueId v : n.inputs) ins.push_back(v >= 0 ? values_[v].dtype : DType::kFloat32);
    DType t;
    try {
      t = infer_node_dtype(n, ins);
    } catch (Error& e) {
      std::string what;
      for (ValueId v : n.inputs) {
        if (v < 0) continue;
        what += fmt::format("{}'{}' {}", what.empty() ? "" : ", ", values_[v].name,
                            dtype_name(values_[v].dtype));
      }
      e.add_context(fmt::format("its inputs: {}", what));
      throw;
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      values_[n.outputs[k]].dtype = t;
    }
  }
  // Symbolic shapes: dims that change between batch 1 and batch 2 scale with the batch.
  std::vector<Shape> s1 = infer_shapes(1);
  std::vector<Shape> s2 = infer_shapes(2);
  for (size_t i = 0; i < values_.size(); ++i) {
    if (values_[i].is_constant()) continue;
    Shape s = s1[i];
    if (s1[i].size() == s2[i].size()) {
      for (size_t d = 0; d < s.size(); ++d) {
        if (s1[i][d] != s2[i][d]) s[d] = kDynamic;
      }
    }
    values_[i].shape = s;
  }
}

Graph Graph::clone() const {
  Graph g = *this;
  for (auto& v : g.values_) {
    if (v.is_constant()) v.data = v.data.clone();
  }
  return g;
}

void remove_nodes(Graph& g, const std::vector<bool>& drop) {
  std::vector<Node>& nodes = g.nodes();
  std::vector<Node> kept;
  kept.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (i < drop.size() && drop[i]) {
      for (ValueId o : nodes[i].outputs) g.value(o).producer = -1;
    } else {
      kept.push_back(std::move(nodes[i]));
    }
  }
  nodes = std::move(kept);
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (ValueId o : nodes[i].outputs) g.value(o).producer = static_cast<NodeId>(i);
  }
}

std::string mase_op(const Graph& g, const Node& n) {
  switch (n.kind) {
    case OpKind::kAdd:
      return bias_add_owner(g, n) >= 0 ? "linear_bias" : "add";
    case OpKind::kGemm:
    case OpKind::kMatMul:
      return weight_input(g, n) >= 0 ? "linear" : "matmul";
    case OpKind::kBatchNorm: {
      const Shape& s = g.value(n.inputs[0]).shape;
      return s.size() == 4 ? "batch_norm2d" : "batch_norm1d";
    }
    case OpKind::kGather:
      // A constant table read at run-time indices is nn.Embedding (MASE does not quantize it).
      return n.inputs.size() > 1 && g.value(n.inputs[0]).is_constant() ? "embedding" : "getitem";
    case OpKind::kConv: {  // MASE's nn.Conv1d: an NCL input, weight [M, C/group, k]
      // A 3-D convolution is the Conv reading an Im2Col3d (ops.h); MASE has no conv3d type, so
      // its entries are conv2d's (quant/node_config.cc).
      const NodeId p = g.value(n.inputs[0]).producer;
      if (p >= 0 && g.nodes()[p].kind == OpKind::kIm2Col3d) return "conv3d";
      return g.value(n.inputs[1]).shape.size() == 3 ? "conv1d" : "conv2d";
    }
    case OpKind::kConvTranspose: {  // a 3-D one reads a transposed Im2Col3d (ops.h)
      const NodeId p = g.value(n.inputs[0]).producer;
      if (p >= 0 && g.nodes()[p].kind == OpKind::kIm2Col3d) return "convtranspose3d";
      return "convtranspose2d";
    }
    default:
      return std::string(kMaseOps[static_cast<int>(n.kind)]);
  }
}

int weight_input(const Graph& g, const Node& n) {
  switch (n.kind) {
    case OpKind::kConv:
    case OpKind::kConvTranspose:
      return 1;
    case OpKind::kGemm:
    case OpKind::kMatMul:
      return n.inputs.size() >= 2 && n.inputs[1] >= 0 && g.value(n.inputs[1]).is_constant() &&
                     g.value(n.inputs[1]).shape.size() == 2
                 ? 1
                 : -1;
    default:
      return -1;
  }
}

NodeId linear_bias_add(const Graph& g, const Node& n) {
  if (n.kind != OpKind::kMatMul || weight_input(g, n) < 0 || n.outputs.empty()) return -1;
  const ValueId y = n.outputs[0];
  for (ValueId o : g.outputs()) {
    if (o == y) return -1;
  }
  const std::vector<NodeId> users = g.consumers(y);
  if (users.size() != 1) return -1;
  const Node& add = g.node(users[0]);
  if (add.kind != OpKind::kAdd || add.inputs.size() != 2) return -1;
  const int k = add.inputs[0] == y ? 1 : 0;
  if (add.inputs[1 - k] != y || add.inputs[k] == y || add.inputs[k] < 0) return -1;
  const Value& b = g.value(add.inputs[k]);
  if (!b.is_constant() || b.data.dtype() != DType::kFloat32) return -1;
  const Shape& bs = b.data.shape();
  const int64_t cols = g.value(n.inputs[1]).shape[1];
  const size_t out_rank = std::max<size_t>(g.value(y).shape.size(), 1);
  if (bs.empty() || bs.size() > out_rank || bs.back() != cols) return -1;
  for (size_t d = 0; d + 1 < bs.size(); ++d) {
    if (bs[d] != 1) return -1;
  }
  return users[0];
}

NodeId bias_add_owner(const Graph& g, const Node& add) {
  if (add.kind != OpKind::kAdd || add.inputs.size() != 2) return -1;
  for (ValueId v : add.inputs) {
    if (v < 0) continue;
    const NodeId p = g.value(v).producer;
    if (p < 0 || g.node(p).kind != OpKind::kMatMul) continue;
    const NodeId a = linear_bias_add(g, g.node(p));
    if (a >= 0 && &g.node(a) == &add) return p;
  }
  return -1;
}

int bias_add_operand(const Graph& g, const Node& add) {
  return g.value(add.inputs[0]).is_constant() ? 0 : 1;
}

int64_t param_count(const Graph& g, const Node& n) {
  int64_t total = 0;
  for (ValueId in : n.inputs) {
    if (in >= 0 && g.value(in).is_constant() && g.value(in).dtype == DType::kFloat32) {
      total += g.value(in).data.numel();
    }
  }
  return total;
}

int64_t macs_per_sample(const Graph& g, const Node& n) {
  // Symbolic shapes at batch 1: kDynamic dims scale with the batch, so they count as 1.
  auto at_batch1 = [&](ValueId v) {
    Shape s = g.value(v).shape;
    for (int64_t& d : s) {
      if (d == kDynamic) d = 1;
    }
    return s;
  };
  switch (n.kind) {
    case OpKind::kGemm: {
      const auto& a = std::get<GemmAttrs>(n.attrs);
      const Shape sa = at_batch1(n.inputs[0]);
      const Shape y = at_batch1(n.outputs[0]);
      int64_t k = a.trans_a ? sa[0] : sa[1];
      return shape_numel(y) * k;
    }
    case OpKind::kMatMul: {
      const Shape sa = at_batch1(n.inputs[0]);
      const Shape y = at_batch1(n.outputs[0]);
      return shape_numel(y) * sa.back();
    }
    case OpKind::kConv: {
      const auto& a = std::get<ConvAttrs>(n.attrs);
      const Shape& w = g.value(n.inputs[1]).shape;
      return shape_numel(at_batch1(n.outputs[0])) * w[1] * a.kernel[0] * a.kernel[1];
    }
    case OpKind::kConvTranspose: {
      // Every input element times its group's M / group output channels x kH x kW taps (the
      // inserted zeros are not multiplied).
      const Shape& w = g.value(n.inputs[1]).shape;
      // A 3-D one (transposed Im2Col3d -> this): the 3-D input's elements times kD x kH x the
      // (M / group) x kW taps, not the gathered zeros.
      const NodeId p = g.value(n.inputs[0]).producer;
      if (p >= 0 && g.node(p).kind == OpKind::kIm2Col3d) {
        const auto& ia = std::get<Im2Col3dAttrs>(g.node(p).attrs);
        return shape_numel(at_batch1(g.node(p).inputs[0])) * ia.kernel[0] * ia.kernel[1] * w[1] *
               w[3];
      }
      return shape_numel(at_batch1(n.inputs[0])) * w[1] * w[2] * w[3];
    }
    case OpKind::kGru:
    case OpKind::kLstm:
      return rnn_macs_per_sample(g, n);
    default:
      return 0;
  }
}

std::string to_string(const Graph& g) {
  std::string out;
  for (ValueId in : g.inputs()) {
    out += fmt::format("input  {} {} {}\n", g.value(in).name, shape_str(g.value(in).shape),
                       dtype_name(g.value(in).dtype));
  }
  for (const Node& n : g.nodes()) {
    std::string ins, outs;
    for (ValueId v : n.inputs) {
      if (!ins.empty()) ins += ", ";
      ins += v < 0 ? std::string("<none>") : g.value(v).name + shape_str(g.value(v).shape);
    }
    for (ValueId v : n.outputs) {
      if (!outs.empty()) outs += ", ";
      outs += g.value(v).name + shape_str(g.value(v).shape);
    }
    out += fmt::format("{:<20} {:<18} ({}) -> {}\n", n.config_name, op_name(n.kind), ins, outs);
  }
  for (ValueId o : g.outputs()) {
    out += fmt::format("output {} {}\n", g.value(o).name, shape_str(g.value(o).shape));
  }
  return out;
}

}  // namespace qsearch::ir
