// Opsets 18 to 21 (ONNX 1.13 to 1.16, what torch.onnx's dynamo exporter and current converters
// write). Debian's ONNX library (1.12) knows opsets up to 17: its checker has no schemas for
// what changed after, and its version converter does not go down. So the model is relabelled
// opset 17 here, after checking every change of opsets 18..21 to an operator qsearch imports:
//
//   opset 18  ReduceMean / ReduceMax: `axes` is an input      -> read by op_reduce
//             Pad: `axes` input                                -> read by op_pad
//             Resize: `axes`, `antialias`, `keep_aspect_ratio_policy`
//                                                              -> axes read by op_resize;
//                                                                 antialias=1 and a policy other
//                                                                 than stretch with sizes refused
//             Split: `num_outputs`                             -> read by op_split
//   opset 19  AveragePool: `dilations`                         -> read by op_pool
//             Cast: `saturate` (float8 only), float8 types     -> ignored / refused
//             Pad: mode `wrap`                                 -> refused
//             Resize: coordinate mode `half_pixel_symmetric`   -> refused
//             Constant, Identity, Reshape, Shape, Equal: types -> float8 / string refused
//   opset 20  Gelu (new), approximate none / tanh              -> the ir Gelu (op_gelu)
//             ConstantOfShape, ReduceMax: types                -> refused if used
//   opset 21  Cast, Constant, ConstantOfShape, Flatten, Identity, Pad, Reshape, Shape, Squeeze,
//             Transpose, Unsqueeze: int4 / uint4 / more float8 -> refused if used
//
// Every other change of those opsets is to an operator qsearch does not import (the
// unsupported-operator error names it). What opset 17 can express unchanged is left as is; for
// the rest the importer reads the newer form, and the ONNX checker is shown an opset-17 stand-in
// of those few nodes (the newer inputs and attributes dropped, Gelu as an Identity), so that it
// still checks the graph's wiring, names and every other node.
#include <algorithm>

#include "onnx/import.h"
#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {

bool default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string label(const pb::NodeProto& n, int index) {
  return n.name().empty() ? fmt::format("{}_{}", n.op_type(), index) : n.name();
}

// The element types ONNX added after opset 17 (IR 9 and 10), which ONNX 1.12 cannot name.
std::string newer_type_name(int32_t t) {
  switch (t) {
    case 17:
      return "FLOAT8E4M3FN";
    case 18:
      return "FLOAT8E4M3FNUZ";
    case 19:
      return "FLOAT8E5M2";
    case 20:
      return "FLOAT8E5M2FNUZ";
    case 21:
      return "UINT4";
    case 22:
      return "INT4";
    case 23:
      return "FLOAT4E2M1";
    default:
      return fmt::format("type {}", t);
  }
}
constexpr int32_t kLastOpset17Type = 16;  // BFLOAT16

const pb::AttributeProto* find_attr(const pb::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// Removes the attributes in `names` from `n`.
void drop_attrs(pb::NodeProto& n, std::initializer_list<const char*> names) {
  auto* attrs = n.mutable_attribute();
  for (int i = attrs->size() - 1; i >= 0; --i) {
    const std::string& a = attrs->Get(i).name();
    if (std::any_of(names.begin(), names.end(), [&](const char* s) { return a == s; })) {
      attrs->DeleteSubrange(i, 1);
    }
  }
}

// Keeps inputs [0, k).
void keep_inputs(pb::NodeProto& n, int k) {
  while (n.input_size() > k) n.mutable_input()->RemoveLast();
}

class Downgrader {
 public:
  Downgrader(pb::ModelProto& model, std::string source, int opset)
      : model_(model), source_(std::move(source)), opset_(opset) {}

  NewerOpset run() {
    NewerOpset out;
    out.file_opset = opset_;
    const pb::GraphProto& g = model_.graph();
    for (const auto& t : g.initializer())
      check_type(t.data_type(), "initializer '" + t.name() + "'");
    for (const auto* list : {&g.input(), &g.output(), &g.value_info()}) {
      for (const auto& vi : *list) {
        if (vi.type().has_tensor_type()) {
          check_type(vi.type().tensor_type().elem_type(), "value '" + vi.name() + "'");
        }
      }
    }
    for (int i = 0; i < g.node_size(); ++i) {
      const pb::NodeProto& n = g.node(i);
      if (!default_domain(n.domain())) continue;
      node_ = &n;
      index_ = i;
      for (const auto& a : n.attribute()) {
        if (a.has_t()) check_type(a.t().data_type(), "attribute '" + a.name() + "'");
        for (const auto& t : a.tensors()) check_type(t.data_type(), "attribute '" + a.name() + "'");
      }
      pb::NodeProto stand_in = n;
      if (convert(stand_in)) out.stand_ins.emplace_back(i, std::move(stand_in));
    }
    for (auto& op : *model_.mutable_opset_import()) {
      if (default_domain(op.domain())) op.set_version(kMaxOpset);
    }
    // Opset 17 comes with IR 8; IR 9 and 10 added the element types refused above, attribute
    // defaults in functions and metadata fields that IR 8 readers skip.
    if (model_.ir_version() > 8) model_.set_ir_version(8);
    return out;
  }

 private:
  template <typename... Args>
  [[noreturn]] void refuse(fmt::format_string<Args...> what, Args&&... args) const {
    fail("node '{}' ({}): {} (opset {}), which qsearch does not run; {}", label(*node_, index_),
         node_->op_type(), fmt::format(what, std::forward<Args>(args)...), opset_,
         "re-export the model without it, or with opset_version=17");
  }

  void check_type(int32_t t, const std::string& what) const {
    if (t <= kLastOpset17Type) return;
    fail(
        "'{}' uses opset {}: {} has element type {} (ONNX IR 9+), which qsearch does not run; "
        "keep float32 weights and activations (int64 / int32 / bool for shapes and ids) when "
        "exporting",
        source_, opset_, what, newer_type_name(t));
  }

  int64_t int_attr(const char* name, int64_t def) const {
    const pb::AttributeProto* a = find_attr(*node_, name);
    return a == nullptr ? def : a->i();
  }
  std::string string_attr(const char* name, const std::string& def) const {
    const pb::AttributeProto* a = find_attr(*node_, name);
    return a == nullptr ? def : a->s();
  }
  bool present(int k) const { return node_->input_size() > k && !node_->input(k).empty(); }

  // Checks the node and turns `s` (a copy) into what the opset-17 checker can read; true if `s`
  // differs from the node.
  bool convert(pb::NodeProto& s) const {
    const std::string& t = node_->op_type();
    if ((t == "ReduceMean" || t == "ReduceMax") && opset_ >= 18) {
      // Opset 18 made axes an input (ReduceSum's since 13) and added noop_with_empty_axes.
      if (!present(1) && find_attr(*node_, "noop_with_empty_axes") == nullptr) return false;
      keep_inputs(s, 1);
      drop_attrs(s, {"noop_with_empty_axes"});
      return true;
    }
    if (t == "Pad") {
      if (opset_ >= 19 && string_attr("mode", "constant") == "wrap") {
        refuse("mode 'wrap' (circular padding, new in opset 19)");
      }
      if (!present(3)) return false;
      keep_inputs(s, 3);  // axes (opset 18)
      return true;
    }
    if (t == "Resize") {
      if (int_attr("antialias", 0) != 0) refuse("antialias=1 (new in opset 18)");
      const std::string policy = string_attr("keep_aspect_ratio_policy", "stretch");
      if (policy != "stretch" && present(3)) {
        refuse("keep_aspect_ratio_policy '{}' with sizes (new in opset 18; stretch is supported)",
               policy);
      }
      if (string_attr("coordinate_transformation_mode", "") == "half_pixel_symmetric") {
        refuse("coordinate_transformation_mode 'half_pixel_symmetric' (new in opset 19)");
      }
      if (find_attr(*node_, "antialias") == nullptr && find_attr(*node_, "axes") == nullptr &&
          find_attr(*node_, "keep_aspect_ratio_policy") == nullptr) {
        return false;
      }
      drop_attrs(s, {"antialias", "axes", "keep_aspect_ratio_policy"});
      return true;
    }
    if (t == "Split") {
      const pb::AttributeProto* k = find_attr(*node_, "num_outputs");
      if (k == nullptr) return false;
      if (k->i() != node_->output_size()) {
        fail("node '{}' (Split): num_outputs={} but the node has {} outputs", label(*node_, index_),
             k->i(), node_->output_size());
      }
      drop_attrs(s, {"num_outputs"});
      return true;
    }
    if (t == "AveragePool" && opset_ >= 19) {
      if (find_attr(*node_, "dilations") == nullptr) return false;
      drop_attrs(s, {"dilations"});  // opset 19
      return true;
    }
    if (t == "Cast") {
      check_type(static_cast<int32_t>(int_attr("to", 1)),
                 fmt::format("the target of node '{}' (Cast)", label(*node_, index_)));
      if (find_attr(*node_, "saturate") == nullptr) return false;
      drop_attrs(s, {"saturate"});  // opset 19; it only affects float8 targets (refused)
      return true;
    }
    if (t == "Gelu") {
      if (opset_ < 20) return false;  // not an operator before 20: the checker says so
      const std::string approx = string_attr("approximate", "none");
      if (approx != "none" && approx != "tanh") {
        fail("node '{}' (Gelu): approximate '{}' is not an ONNX Gelu mode (none, tanh)",
             label(*node_, index_), approx);
      }
      s.set_op_type("Identity");  // one input, one output, like Gelu
      s.clear_attribute();
      return true;
    }
    return false;
  }

  pb::ModelProto& model_;
  std::string source_;
  int opset_;
  const pb::NodeProto* node_ = nullptr;
  int index_ = 0;
};

}  // namespace

NewerOpset downgrade_newer_opset(pb::ModelProto& model, const std::string& source) {
  int opset = 0;
  for (const auto& op : model.opset_import()) {
    if (default_domain(op.domain())) opset = static_cast<int>(op.version());
  }
  if (opset <= kMaxOpset || opset > kMaxNewerOpset) return {};
  return Downgrader(model, source, opset).run();
}

CheckerView::CheckerView(pb::ModelProto& model, NewerOpset& newer) : model_(model), newer_(newer) {
  swap();
}

CheckerView::~CheckerView() { swap(); }

void CheckerView::swap() {
  for (auto& [index, node] : newer_.stand_ins)
    model_.mutable_graph()->mutable_node(index)->Swap(&node);
}

}  // namespace qsearch::onnx::detail

namespace qsearch::onnx::detail {

// Gelu (opset 20): the ir Gelu that import_fuse.cc makes of PyTorch's decompositions.
void Importer::op_gelu() {
  if (in(0).kind != Entry::Kind::kActivation) {
    bad("the input is a constant; qsearch does not fold Gelu");
  }
  ir::GeluAttrs a;
  a.tanh = attr_string("approximate", "none") == "tanh";
  add_ir_node(ir::OpKind::kGelu, a, {ir_input(0)});
}

}  // namespace qsearch::onnx::detail

namespace qsearch::onnx::detail {

namespace {
std::vector<int64_t> normalized_axes(std::vector<int64_t> axes, size_t rank, const char* what) {
  const auto r = static_cast<int64_t>(rank);
  std::vector<bool> seen(rank, false);
  for (int64_t& a : axes) {
    if (a < -r || a >= r) fail("{} axis {} is out of range for rank {}", what, a, r);
    if (a < 0) a += r;
    if (seen[a]) fail("{} names axis {} twice", what, a);
    seen[a] = true;
  }
  return axes;
}
}  // namespace

std::vector<int64_t> pads_of_axes(const std::vector<int64_t>& pads, std::vector<int64_t> axes,
                                  size_t rank) {
  axes = normalized_axes(std::move(axes), rank, "Pad");
  if (pads.size() != 2 * axes.size()) {
    fail("pads has {} values; {} axes need {} (begins, then ends)", pads.size(), axes.size(),
         2 * axes.size());
  }
  std::vector<int64_t> full(2 * rank, 0);
  for (size_t k = 0; k < axes.size(); ++k) {
    full[axes[k]] = pads[k];
    full[rank + axes[k]] = pads[axes.size() + k];
  }
  return full;
}

std::vector<int64_t> resize_axes(std::vector<int64_t> axes, bool given, size_t rank) {
  if (!given) {
    axes.resize(rank);
    for (size_t d = 0; d < rank; ++d) axes[d] = static_cast<int64_t>(d);
    return axes;
  }
  return normalized_axes(std::move(axes), rank, "Resize");
}

}  // namespace qsearch::onnx::detail
