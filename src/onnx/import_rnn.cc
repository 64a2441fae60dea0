// GRU and LSTM as torch.onnx.export writes them (opsets 11-17): one node per layer, layout 0
// (a batch_first model transposes around it), PyTorch's default state as a batch-dependent
// ConstantOfShape of zeros (sliced per layer), default activations. One ir node per output the
// model reads (ir::RnnAttrs::output). Anything else is refused naming the node and attribute.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

using K = Entry::Kind;

bool Importer::batch_zeros_input(int k) const {
  if (!present(k)) return false;
  auto it = env_.find(node_->input(k));
  return it != env_.end() && it->second.kind == K::kUnavailable && it->second.batch_zeros;
}

void Importer::mark_batch_zeros() {
  Entry e;
  e.kind = K::kUnavailable;
  e.batch_zeros = true;
  e.why = fmt::format(
      "zeros of a batch-dependent shape made by {} '{}' (read only as a GRU / LSTM "
      "initial state)",
      node_->op_type(), node_name_);
  define_output(0, std::move(e));
}

bool Importer::batch_zero_fill() {
  if (!present(0) || in(0).kind != K::kSym) return false;
  const SymTensor& shape = in(0).sym;
  const bool batch = std::any_of(shape.elems.begin(), shape.elems.end(),
                                 [](const SymDim& d) { return d.kind == SymDim::Kind::kBatch; });
  if (!batch) return false;
  const pb::AttributeProto* value = attr("value");
  if (value != nullptr) {
    if (value->type() != pb::AttributeProto::TENSOR || is_int_tensor(value->t())) return false;
    const Tensor v = float_tensor(value->t(), "ConstantOfShape value");
    if (v.numel() != 1 || v.data<float>()[0] != 0.0f) return false;
  }
  mark_batch_zeros();
  if (shape.shape.size() == 1) env_.at(node_->output(0)).fill_shape = shape.elems;
  return true;
}

ir::ValueId Importer::batch_zeros_as_scalar(int k, int n, DType dtype) {
  if (!batch_zeros_input(k)) return ir::kNoValue;
  const std::vector<SymDim>& zeros = env_.at(node_->input(k)).fill_shape;
  if (zeros.empty()) return ir::kNoValue;
  auto same = [](const SymDim& a, const SymDim& b) {
    return a.kind != SymDim::Kind::kUnknown && a.kind == b.kind && a.value == b.value;
  };
  auto is_one = [&](const SymDim& d) { return same(d, SymDim::known(1)); };
  std::vector<SymDim> b;  // the broadcast of the other inputs, right-aligned
  for (int j = 0; j < n; ++j) {
    if (j == k) continue;
    if (batch_zeros_input(j)) return ir::kNoValue;
    Entry& e = in(j);
    std::vector<SymDim> s;
    if (e.kind == K::kActivation) {
      s = sym_shape(ir_input(j));
    } else {
      for (int64_t d : e.kind == K::kFloatConst ? e.data.shape() : e.sym.shape) {
        s.push_back(SymDim::known(d));
      }
    }
    if (s.size() > b.size()) b.insert(b.begin(), s.size() - b.size(), SymDim::known(1));
    for (size_t i = 0; i < s.size(); ++i) {
      SymDim& o = b[b.size() - s.size() + i];
      if (is_one(o)) {
        o = s[i];
      } else if (!is_one(s[i]) && !same(o, s[i])) {
        return ir::kNoValue;
      }
    }
  }
  if (b.size() != zeros.size()) return ir::kNoValue;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!same(b[i], zeros[i])) return ir::kNoValue;
  }
  Tensor zero(Shape{}, dtype);
  std::memset(zero.raw(), 0, zero.nbytes());
  const ir::ValueId c =
      g_.add_constant(fmt::format("{}:{}", node_->input(k), node_name_), std::move(zero));
  for (auto& s : shapes_) s.push_back(Shape{});
  return c;
}

void Importer::op_rnn() {
  const bool lstm = node_->op_type() == "LSTM";
  ir::RnnAttrs a;
  if (!has_attr("hidden_size")) bad("attribute 'hidden_size' is required");
  a.hidden_size = attr_int("hidden_size", 0);
  const std::string direction = attr_string("direction", "forward");
  if (direction == "bidirectional") {
    a.directions = 2;
  } else if (direction == "reverse") {
    a.reverse = true;
  } else if (direction != "forward") {
    bad("attribute 'direction' = '{}' is not forward, reverse or bidirectional", direction);
  }
  if (attr_int("layout", 0) != 0) {
    bad("attribute 'layout' = 1 (batch first) is not supported; qsearch imports layout 0, as "
        "torch.onnx.export writes it");
  }
  if (!lstm && attr_int("linear_before_reset", 0) != 1) {
    bad("attribute 'linear_before_reset' = 0 is not supported; qsearch imports PyTorch's GRU "
        "(linear_before_reset = 1)");
  }
  if (lstm && attr_int("input_forget", 0) != 0) {
    bad("attribute 'input_forget' (coupled input-forget gate) is not supported");
  }
  if (has_attr("clip")) bad("attribute 'clip' (cell clipping) is not supported");
  if (has_attr("activation_alpha") || has_attr("activation_beta")) {
    bad("attributes 'activation_alpha' / 'activation_beta' are not supported (default "
        "activations only)");
  }
  if (const pb::AttributeProto* acts = attr("activations")) {
    std::vector<std::string> want = {"Sigmoid", "Tanh"};
    if (lstm) want.push_back("Tanh");
    for (int k = 0; k < acts->strings_size(); ++k) {
      const std::string& got = acts->strings(k);
      const std::string& exp = want[static_cast<size_t>(k) % want.size()];
      if (got != exp || acts->strings_size() != static_cast<int>(want.size() * a.directions)) {
        bad("attribute 'activations' must be the defaults ({} per direction); got '{}' at {}",
            lstm ? "Sigmoid, Tanh, Tanh" : "Sigmoid, Tanh", got, k);
      }
    }
  }
  if (present(4)) {
    bad("input 'sequence_lens' is not supported (every sequence has the full length); export "
        "without packed sequences");
  }
  if (lstm && present(7)) bad("input 'P' (peepholes) is not supported");
  const int max_in = lstm ? 7 : 5;
  for (int k = max_in + 1; k < node_->input_size(); ++k) {
    if (present(k)) bad("has an input {} beyond the ONNX inputs", k);
  }
  const char* roles[] = {"X", "W", "R", "B"};
  for (int k = 1; k <= 3; ++k) {
    if (present(k)) (void)const_float(k, roles[k]);
  }
  std::vector<ir::ValueId> ins = {ir_input(0), ir_input(1), ir_input(2),
                                  present(3) ? ir_input(3) : ir::kNoValue};
  for (int k : lstm ? std::vector<int>{5, 6} : std::vector<int>{5}) {
    ins.push_back(present(k) && !batch_zeros_input(k) ? ir_input(k) : ir::kNoValue);
  }
  // The outputs the model reads (a node input or a graph output); the others are not computed.
  auto read = [&](const std::string& name) {
    if (name.empty()) return false;
    for (const auto& out : graph_.output()) {
      if (out.name() == name) return true;
    }
    for (const auto& n : graph_.node()) {
      for (const auto& i : n.input()) {
        if (i == name) return true;
      }
    }
    return false;
  };
  for (int k = 0; k < node_->output_size(); ++k) {
    if (k > (lstm ? 2 : 1))
      bad("has {} outputs, expected at most {}", node_->output_size(), lstm ? 3 : 2);
    if (!read(node_->output(k))) {
      if (!node_->output(k).empty()) {
        Entry e;
        e.kind = K::kUnavailable;
        e.why = fmt::format("output {} of {} '{}' (not computed: nothing reads it)", k,
                            node_->op_type(), node_name_);
        define_output(k, std::move(e));
      }
      continue;
    }
    ir::RnnAttrs ak = a;
    ak.output = k;
    add_ir_node(lstm ? ir::OpKind::kLstm : ir::OpKind::kGru, ak, ins, k);
  }
}

}  // namespace qsearch::onnx::detail
