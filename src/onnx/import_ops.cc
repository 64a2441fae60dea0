// Per-operator conversion of ONNX nodes into ir nodes, folded constants or shape computations.
#include <algorithm>
#include <cmath>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
using ir::OpKind;
using K = Entry::Kind;

// Upper bound on kernel sizes, strides, dilations, pads and groups from a file.
constexpr int64_t kMaxWindow = int64_t{1} << 24;
// Largest constant ConstantOfShape may create.
constexpr int64_t kMaxFillElements = int64_t{1} << 24;

// Folded tensors obey the bound the ir puts on every shape (ir::infer_node_shape): at most 2^48
// elements, zero dims counted as 1.
void check_folded_shape(const Shape& s) {
  int64_t bound = 1;
  for (int64_t d : s) {
    if (d < 0 || __builtin_mul_overflow(bound, std::max<int64_t>(d, 1), &bound) ||
        bound > (int64_t{1} << 48)) {
      fail("folded tensor of shape {} is too large", shape_str(s));
    }
  }
}

Entry float_entry(Tensor t) {
  check_folded_shape(t.shape());
  Entry e;
  e.kind = K::kFloatConst;
  e.data = std::move(t);
  return e;
}

Entry sym_entry(SymTensor s) {
  check_folded_shape(s.shape);
  Entry e;
  e.kind = K::kSym;
  e.sym = std::move(s);
  return e;
}

bool flag(int64_t v) { return v == 0 || v == 1; }

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

std::array<int64_t, 2> Importer::pair_attr(const char* name, int64_t def, int64_t lo) const {
  std::vector<int64_t> v = attr_ints(name);
  if (v.empty() && !has_attr(name)) return {def, def};
  if (v.size() != 2) {
    bad("attribute '{}' has {} values; qsearch supports 2-D windows only", name, v.size());
  }
  for (int64_t x : v) {
    if (x < lo || x > kMaxWindow)
      bad("attribute '{}' = {} is out of range {}..{}", name, x, lo, kMaxWindow);
  }
  return {v[0], v[1]};
}

std::array<int64_t, 4> Importer::window_pads(ir::ValueId x, const std::array<int64_t, 2>& kernel,
                                             const std::array<int64_t, 2>& strides,
                                             const std::array<int64_t, 2>& dilations) {
  std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> pads = attr_ints("pads");
  if (auto_pad == "NOTSET") {
    if (pads.empty()) return {0, 0, 0, 0};
    if (pads.size() != 4) bad("attribute 'pads' has {} values, expected 4 (2-D)", pads.size());
    for (int64_t p : pads) {
      if (p < 0 || p > kMaxWindow) bad("pad {} is out of range 0..{}", p, kMaxWindow);
    }
    return {pads[0], pads[1], pads[2], pads[3]};
  }
  for (int64_t p : pads) {
    if (p != 0) bad("both auto_pad='{}' and explicit pads are given", auto_pad);
  }
  if (auto_pad == "VALID") return {0, 0, 0, 0};
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
    bad("auto_pad '{}' is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER)", auto_pad);
  }
  // SAME: output = ceil(input / stride); the total padding that needs is split evenly, the odd
  // element at the end (SAME_UPPER) or at the beginning (SAME_LOWER).
  const Shape& xs = shape1(x);
  std::vector<SymDim> sym = sym_shape(x);
  if (xs.size() != 4) bad("input has shape {}; qsearch supports 2-D (NCHW) windows", shape_str(xs));
  std::array<int64_t, 4> out{};
  for (int d = 0; d < 2; ++d) {
    if (!sym[2 + d].is_known()) bad("auto_pad needs spatial sizes that do not depend on the batch");
    int64_t in = xs[2 + d];
    int64_t o = (in + strides[d] - 1) / strides[d];
    int64_t eff = (kernel[d] - 1) * dilations[d] + 1;
    int64_t total = std::max<int64_t>(0, (o - 1) * strides[d] + eff - in);
    int64_t begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    out[d] = begin;
    out[2 + d] = total - begin;
  }
  return out;
}

ir::ValueId Importer::window_input(std::array<int64_t, 4>& pads) {
  Entry& e = in(0);
  if (e.kind != K::kActivation || !e.zero_pad) return ir_input(0);
  pads = *e.zero_pad;
  return e.value;
}

void Importer::op_gemm_matmul() {
  bool gemm = node_->op_type() == "Gemm";
  if (is_const(in(0)) && is_const(in(1))) {
    bad("both operands are constants; qsearch does not fold {} (export with "
        "do_constant_folding=True)",
        node_->op_type());
  }
  std::vector<ir::ValueId> ins = {ir_input(0), ir_input(1)};
  if (!gemm) {
    add_ir_node(OpKind::kMatMul, ir::NoAttrs{}, ins);
    return;
  }
  ir::GemmAttrs a;
  a.alpha = attr_float("alpha", 1.0f);
  a.beta = attr_float("beta", 1.0f);
  int64_t ta = attr_int("transA", 0), tb = attr_int("transB", 0);
  if (!flag(ta) || !flag(tb)) bad("transA and transB must be 0 or 1");
  a.trans_a = ta == 1;
  a.trans_b = tb == 1;
  if (present(2)) ins.push_back(ir_input(2));
  add_ir_node(OpKind::kGemm, a, ins);
}

void Importer::op_binary() {
  const std::string& t = node_->op_type();
  char op = t == "Add" ? '+' : t == "Sub" ? '-' : t == "Mul" ? '*' : t == "Pow" ? '^' : '/';
  OpKind kind = t == "Add"   ? OpKind::kAdd
                : t == "Sub" ? OpKind::kSub
                : t == "Mul" ? OpKind::kMul
                : t == "Pow" ? OpKind::kPow
                             : OpKind::kDiv;
  // x + zeros_like(x) and the like: the zeros are the scalar 0 (batch_zeros_as_scalar).
  for (int k : {0, 1}) {
    if (const ir::ValueId z = batch_zeros_as_scalar(k, 2, DType::kFloat32); z != ir::kNoValue) {
      add_ir_node(kind, ir::NoAttrs{},
                  k == 0 ? std::vector{z, ir_input(1)} : std::vector{ir_input(0), z});
      return;
    }
  }
  Entry& a = in(0);
  Entry& b = in(1);
  if (op == '^' && (a.kind == K::kSym || b.kind == K::kSym)) {
    bad("Pow of an int64 shape computation is not supported");
  }
  if (a.kind == K::kSym || b.kind == K::kSym) {
    if (a.kind != K::kSym || b.kind != K::kSym) {
      bad("mixes an int64 shape computation with a float32 tensor");
    }
    define_output(0, sym_entry(fold_binary(op, a.sym, b.sym)));
  } else if (a.kind == K::kFloatConst && b.kind == K::kFloatConst) {
    define_output(0, float_entry(fold_binary(op, a.data, b.data)));
  } else {
    add_ir_node(kind, ir::NoAttrs{}, {ir_input(0), ir_input(1)});
  }
}

void Importer::op_unary() {
  const std::string& t = node_->op_type();
  float alpha = t == "LeakyRelu" ? attr_float("alpha", 0.01f) : 0.0f;
  Entry& x = in(0);
  if (x.kind == K::kFloatConst) {
    Tensor out;
    if (t == "Relu") out = fold_unary(x.data, [](float v) { return v > 0.0f ? v : 0.0f; });
    if (t == "LeakyRelu") {
      out = fold_unary(x.data, [alpha](float v) { return v < 0.0f ? alpha * v : v; });
    }
    if (t == "Sigmoid") out = fold_unary(x.data, sigmoid);
    if (t == "Tanh") out = fold_unary(x.data, [](float v) { return std::tanh(v); });
    if (t == "Erf") out = fold_unary(x.data, [](float v) { return std::erf(v); });
    if (t == "Sqrt") out = fold_unary(x.data, [](float v) { return std::sqrt(v); });
    if (t == "Exp") out = fold_unary(x.data, [](float v) { return std::exp(v); });
    if (t == "Neg") out = fold_unary(x.data, [](float v) { return -v; });
    define_output(0, float_entry(std::move(out)));
    return;
  }
  if (x.kind == K::kSym) bad("{} of an int64 shape computation is not supported", t);
  if (t == "Erf") add_ir_node(OpKind::kErf, ir::NoAttrs{}, {ir_input(0)});
  if (t == "Sqrt") add_ir_node(OpKind::kSqrt, ir::NoAttrs{}, {ir_input(0)});
  if (t == "Exp") add_ir_node(OpKind::kExp, ir::NoAttrs{}, {ir_input(0)});
  if (t == "Neg") add_ir_node(OpKind::kNeg, ir::NoAttrs{}, {ir_input(0)});
  if (t == "Relu") add_ir_node(OpKind::kRelu, ir::NoAttrs{}, {ir_input(0)});
  if (t == "LeakyRelu") add_ir_node(OpKind::kLeakyRelu, ir::LeakyReluAttrs{alpha}, {ir_input(0)});
  if (t == "Sigmoid") add_ir_node(OpKind::kSigmoid, ir::NoAttrs{}, {ir_input(0)});
  if (t == "Tanh") add_ir_node(OpKind::kTanh, ir::NoAttrs{}, {ir_input(0)});
}

void Importer::op_clip() {
  ir::ClipAttrs a;
  auto bound = [&](int k, const char* role, float* out) {
    if (!present(k)) return;
    const Tensor& t = const_float(k, role);
    if (t.numel() != 1) bad("{} must be a scalar, got shape {}", role, shape_str(t.shape()));
    *out = t.data<float>()[0];
  };
  bound(1, "min", &a.min);
  bound(2, "max", &a.max);
  if (std::isnan(a.min) || std::isnan(a.max)) bad("min and max must not be NaN");
  Entry& x = in(0);
  if (x.kind == K::kFloatConst) {
    define_output(0, float_entry(fold_unary(
                         x.data, [a](float v) { return std::min(std::max(v, a.min), a.max); })));
    return;
  }
  add_ir_node(OpKind::kClip, a, {ir_input(0)});
}

// Softmax and LogSoftmax: the same attribute and the same opset rules.
void Importer::op_softmax() {
  const std::string& t = node_->op_type();
  const OpKind kind = t == "LogSoftmax" ? OpKind::kLogSoftmax : OpKind::kSoftmax;
  if (is_const(in(0))) bad("the input is a constant; qsearch does not fold {}", t);
  ir::ValueId x = ir_input(0);
  int64_t axis = attr_int("axis", opset_ < 13 ? 1 : -1);
  std::vector<SymDim> s = sym_shape(x);
  int64_t r = static_cast<int64_t>(s.size());
  if (axis < -r || axis >= r) bad("axis {} is out of range for rank {}", axis, r);
  if (opset_ < 13) {
    // Opsets < 13 flatten the input to 2-D at `axis` and normalise each row: the same as a
    // softmax along `axis` only when every later dim is 1.
    int64_t a = axis < 0 ? axis + r : axis;
    for (int64_t d = a + 1; d < r; ++d) {
      if (!(s[d].is_known() && s[d].value == 1)) {
        bad("at opset {} {} normalises over all dims from axis {} of an input of shape {}, "
            "which is not a softmax along one axis; qsearch supports this only when axis is the "
            "last non-1 dim (export with opset_version >= 13)",
            opset_, t, axis, SymTensor{{r}, s}.str());
      }
    }
  }
  add_ir_node(kind, ir::AxisAttrs{axis}, {x});
}

void Importer::op_conv() {
  if (is_const(in(0))) bad("the input is a constant; qsearch does not fold Conv");
  const Tensor& w = const_float(1, "weight");
  if (w.rank() == 3) return op_conv1d();
  if (w.rank() == 5) return op_conv3d();
  if (w.rank() != 4) {
    bad("weight has shape {}; qsearch supports 1-D, 2-D and 3-D convolution only",
        shape_str(w.shape()));
  }
  if (present(2)) const_float(2, "bias");
  ir::ConvAttrs a;
  a.kernel = {w.dim(2), w.dim(3)};
  std::vector<int64_t> ks = attr_ints("kernel_shape");
  if (has_attr("kernel_shape") &&
      (ks.size() != 2 || ks[0] != a.kernel[0] || ks[1] != a.kernel[1])) {
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  }
  a.strides = pair_attr("strides", 1, 1);
  a.dilations = pair_attr("dilations", 1, 1);
  a.group = attr_int("group", 1);
  if (a.group < 1 || a.group > kMaxWindow) bad("group {} is out of range", a.group);
  std::array<int64_t, 4> folded{};
  ir::ValueId x = window_input(folded);
  a.pads = window_pads(x, a.kernel, a.strides, a.dilations);
  for (int d = 0; d < 4; ++d) a.pads[d] += folded[d];  // zero padding: the Conv's own
  std::vector<ir::ValueId> ins = {x, ir_input(1)};
  if (present(2)) ins.push_back(ir_input(2));
  add_ir_node(OpKind::kConv, a, ins);
}

// Conv with one spatial dim (PyTorch's nn.Conv1d): the IR's Conv of height 1 (ir::ConvAttrs
// keeps kernel 1, stride 1, dilation 1 and no padding on the height).
void Importer::op_conv1d() {
  const Tensor& w = const_float(1, "weight");
  if (present(2)) const_float(2, "bias");
  auto one = [&](const char* name, int64_t def, int64_t lo) {
    const std::vector<int64_t> v = attr_ints(name);
    if (v.empty() && !has_attr(name)) return def;
    if (v.size() != 1) bad("attribute '{}' has {} values; a 1-D Conv needs 1", name, v.size());
    if (v[0] < lo || v[0] > kMaxWindow) {
      bad("attribute '{}' = {} is out of range {}..{}", name, v[0], lo, kMaxWindow);
    }
    return v[0];
  };
  ir::ConvAttrs a;
  a.kernel = {1, w.dim(2)};
  if (has_attr("kernel_shape") && one("kernel_shape", 1, 1) != w.dim(2)) {
    bad("kernel_shape does not match the weight {}", shape_str(w.shape()));
  }
  a.strides = {1, one("strides", 1, 1)};
  a.dilations = {1, one("dilations", 1, 1)};
  a.group = attr_int("group", 1);
  if (a.group < 1 || a.group > kMaxWindow) bad("group {} is out of range", a.group);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  const std::vector<int64_t> pads = attr_ints("pads");
  if (auto_pad == "NOTSET" && !pads.empty()) {
    if (pads.size() != 2) bad("attribute 'pads' has {} values, expected 2 (1-D)", pads.size());
    for (int64_t p : pads) {
      if (p < 0 || p > kMaxWindow) bad("pad {} is out of range 0..{}", p, kMaxWindow);
    }
    a.pads = {0, pads[0], 0, pads[1]};
  } else if (auto_pad != "NOTSET" && auto_pad != "VALID") {
    bad("auto_pad '{}' is not supported for a 1-D Conv (NOTSET with pads, or VALID)", auto_pad);
  }
  if (in(0).kind == K::kActivation && in(0).zero_pad) bad("a Pad before a 1-D Conv is not folded");
  std::vector<ir::ValueId> ins = {ir_input(0), ir_input(1)};
  if (present(2)) ins.push_back(ir_input(2));
  add_ir_node(OpKind::kConv, a, ins);
}

void Importer::op_batchnorm() {
  if (is_const(in(0))) bad("the input is a constant; qsearch does not fold BatchNormalization");
  if (attr_int("training_mode", 0) != 0) {
    bad("training_mode=1 is not supported; qsearch imports models for inference (export with "
        "the model in eval mode)");
  }
  const char* roles[] = {"", "scale", "bias", "mean", "var"};
  for (int k = 1; k < 5; ++k) const_float(k, roles[k]);
  ir::BatchNormAttrs a;
  a.epsilon = attr_float("epsilon", 1e-5f);
  a.momentum = attr_float("momentum", 0.9f);
  if (!(a.epsilon >= 0.0f) || !std::isfinite(a.epsilon)) bad("epsilon {} is invalid", a.epsilon);
  std::vector<ir::ValueId> ins;
  for (int k = 0; k < 5; ++k) ins.push_back(ir_input(k));
  add_ir_node(OpKind::kBatchNorm, a, ins);
  mark_unavailable(1, "a training statistic");
}

void Importer::op_pool() {
  bool max = node_->op_type() == "MaxPool";
  if (is_const(in(0))) bad("the input is a constant; qsearch does not fold pooling");
  if (!has_attr("kernel_shape")) bad("attribute 'kernel_shape' is required");
  if (const size_t k = attr_ints("kernel_shape").size(); k == 1 || k == 3) {
    return op_pool_nd(static_cast<int>(k));
  }
  ir::PoolAttrs a;
  a.kernel = pair_attr("kernel_shape", 1, 1);
  a.strides = pair_attr("strides", 1, 1);
  a.dilations = pair_attr("dilations", 1, 1);  // AveragePool: from opset 19
  int64_t ceil_mode = attr_int("ceil_mode", 0);
  if (!flag(ceil_mode)) bad("ceil_mode must be 0 or 1");
  a.ceil_mode = ceil_mode == 1;
  if (max) {
    if (attr_int("storage_order", 0) != 0) {
      bad("storage_order=1 (column-major indices) is not supported; qsearch supports "
          "storage_order=0");
    }
    if (node_->output_size() > 1 && !node_->output(1).empty()) {
      bad("the Indices output (output 1) is not supported");
    }
  } else {
    int64_t cip = attr_int("count_include_pad", 0);
    if (!flag(cip)) bad("count_include_pad must be 0 or 1");
    a.count_include_pad = cip == 1;
  }
  std::array<int64_t, 4> folded{};
  ir::ValueId x = max ? ir_input(0) : window_input(folded);  // MaxPool pads with -inf, not 0
  a.pads = window_pads(x, a.kernel, a.strides, a.dilations);
  if (folded != std::array<int64_t, 4>{}) {
    // Averaging a zero-padded input counts the zeros: count_include_pad=1 over the summed pads,
    // when the pool's own pads count too (or it has none) and no window is clipped (ceil_mode).
    const bool own_pads = a.pads != std::array<int64_t, 4>{};
    if (a.ceil_mode || (own_pads && !a.count_include_pad)) {
      bad("the zero Pad before it cannot fold into an AveragePool with {}; qsearch folds it when "
          "ceil_mode=0 and the pool has count_include_pad=1 or no pads of its own",
          a.ceil_mode ? "ceil_mode=1" : "count_include_pad=0 and pads of its own");
    }
    for (int d = 0; d < 4; ++d) a.pads[d] += folded[d];
    a.count_include_pad = true;
  }
  add_ir_node(max ? OpKind::kMaxPool : OpKind::kAveragePool, a, {x});
}

void Importer::op_global_average_pool() {
  if (is_const(in(0))) bad("the input is a constant; qsearch does not fold GlobalAveragePool");
  add_ir_node(OpKind::kGlobalAveragePool, ir::NoAttrs{}, {ir_input(0)});
}

void Importer::op_flatten() {
  int64_t axis = attr_int("axis", 1);
  Entry& x = in(0);
  if (x.kind == K::kSym) bad("Flatten of an int64 shape computation is not supported");
  if (x.kind == K::kFloatConst) {
    int64_t r = x.data.rank();
    int64_t a = axis < 0 ? axis + r : axis;
    if (a < 0 || a > r) bad("axis {} is out of range for rank {}", axis, r);
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.data.dim(static_cast<int>(d));
    int64_t inner = outer == 0 ? 0 : x.data.numel() / outer;
    define_output(0, float_entry(x.data.clone().reshaped({outer, inner})));
    return;
  }
  add_ir_node(OpKind::kFlatten, ir::AxisAttrs{axis}, {ir_input(0)});
}

void Importer::op_reshape() {
  const SymTensor& target = const_sym(1, "shape");
  if (target.shape.size() != 1) bad("shape input must be 1-D, got {}", shape_str(target.shape));
  int64_t allowzero = attr_int("allowzero", 0);
  if (!flag(allowzero)) bad("allowzero must be 0 or 1");
  Entry& x = in(0);
  if (x.kind != K::kActivation) {
    std::vector<int64_t> t = const_ints(1, "shape");
    if (x.kind == K::kSym) {
      SymTensor out = x.sym;
      out.shape = reshape_shape(x.sym.shape, t, allowzero == 1);
      define_output(0, sym_entry(std::move(out)));
    } else {
      define_output(
          0,
          float_entry(x.data.clone().reshaped(reshape_shape(x.data.shape(), t, allowzero == 1))));
    }
    return;
  }
  // Each element of the target becomes a literal, 0 (copy the input dim: the batch stays
  // dynamic) or -1 (inferred).
  ir::ValueId v = ir_input(0);  // (refuses a pending zero Pad)
  std::vector<SymDim> xs = sym_shape(v);
  ir::ReshapeAttrs a;
  a.allowzero = allowzero == 1;
  bool has_batch = false, has_minus1 = false, has_zero = false;
  for (const SymDim& d : target.elems) {
    has_batch = has_batch || d.kind == SymDim::Kind::kBatch;
    has_minus1 = has_minus1 || (d.is_known() && d.value == -1);
    has_zero = has_zero || (d.is_known() && d.value == 0);
  }
  if (has_batch && a.allowzero) {
    if (has_zero) bad("target {} mixes the batch size with literal zeros", target.str());
    a.allowzero = false;  // no literal zeros: 0 may then mean "copy"
  }
  for (size_t k = 0; k < target.elems.size(); ++k) {
    const SymDim& d = target.elems[k];
    if (d.kind == SymDim::Kind::kUnknown)
      bad("target shape {} is not known at import", target.str());
    if (d.is_known()) {
      if (d.value < -1) bad("target shape {} has a dimension below -1", target.str());
      a.shape.push_back(d.value);
    } else if (k < xs.size() && xs[k].kind == SymDim::Kind::kBatch && xs[k].value == d.value) {
      a.shape.push_back(0);
    } else if (!has_minus1) {
      a.shape.push_back(-1);
      has_minus1 = true;
    } else {
      bad("cannot express target shape {} (input shape {}) with one -1 and copied dims",
          target.str(), SymTensor{{static_cast<int64_t>(xs.size())}, xs}.str());
    }
  }
  add_ir_node(OpKind::kReshape, a, {v});
}

void Importer::op_transpose() {
  std::vector<int64_t> perm = attr_ints("perm");
  Entry& x = in(0);
  if (x.kind == K::kSym) {
    // Permute the elements' indices (as float32, exact below 2^24) and pick the elements so:
    // PyTorch's F.pad export transposes its [rank, 2] pads table.
    const int64_t n = static_cast<int64_t>(x.sym.elems.size());
    if (n > (int64_t{1} << 24)) bad("Transpose of an int64 tensor of {} elements is too large", n);
    Tensor index(x.sym.shape, DType::kFloat32);
    for (int64_t i = 0; i < n; ++i) index.data<float>()[i] = static_cast<float>(i);
    const Tensor moved = fold_transpose(index, perm);
    SymTensor out{moved.shape(), {}};
    for (int64_t i = 0; i < n; ++i) {
      out.elems.push_back(x.sym.elems[static_cast<size_t>(moved.data<float>()[i])]);
    }
    define_output(0, sym_entry(std::move(out)));
    return;
  }
  if (x.kind == K::kFloatConst) {
    define_output(0, float_entry(fold_transpose(x.data, perm)));
    return;
  }
  add_ir_node(OpKind::kTranspose, ir::TransposeAttrs{perm}, {ir_input(0)});
}

void Importer::op_concat() {
  if (!has_attr("axis")) bad("attribute 'axis' is required");
  int64_t axis = attr_int("axis", 0);
  int n = node_->input_size();
  if (n < 1) bad("has no inputs");
  int syms = 0, consts = 0;
  for (int k = 0; k < n; ++k) {
    Entry& e = in(k);
    syms += e.kind == K::kSym;
    consts += e.kind == K::kFloatConst;
  }
  if (syms > 0) {
    if (syms != n) bad("mixes int64 shape computations with float32 tensors");
    std::vector<SymTensor> xs;
    for (int k = 0; k < n; ++k) xs.push_back(in(k).sym);
    define_output(0, sym_entry(fold_concat(xs, axis)));
  } else if (consts == n) {
    std::vector<Tensor> xs;
    for (int k = 0; k < n; ++k) xs.push_back(in(k).data);
    define_output(0, float_entry(fold_concat(xs, axis)));
  } else {
    std::vector<ir::ValueId> ins;
    for (int k = 0; k < n; ++k) ins.push_back(ir_input(k));
    add_ir_node(OpKind::kConcat, ir::AxisAttrs{axis}, ins);
  }
}

void Importer::op_identity_dropout() {
  bool dropout = node_->op_type() == "Dropout";
  ir::DropoutAttrs a;
  if (dropout) {
    if (opset_ < 12) {
      a.ratio = attr_float("ratio", 0.5f);
    } else if (present(1)) {
      const Tensor& r = const_float(1, "ratio");
      if (r.numel() != 1) bad("ratio must be a scalar");
      a.ratio = r.data<float>()[0];
    }
    if (!(a.ratio >= 0.0f && a.ratio < 1.0f)) bad("ratio {} is outside [0, 1)", a.ratio);
    if (present(2)) {
      for (int64_t v : const_ints(2, "training_mode")) {
        if (v != 0) bad("training_mode=true is not supported; qsearch imports for inference");
      }
    }
  }
  Entry& x = in(0);
  if (x.kind == K::kActivation) {
    if (dropout) {
      add_ir_node(OpKind::kDropout, a, {ir_input(0)});
    } else {
      add_ir_node(OpKind::kIdentity, ir::NoAttrs{}, {ir_input(0)});
    }
  } else {
    // A copy, so that training one constant never changes another that was deduplicated
    // with it by the exporter.
    Entry copy = x;
    copy.value = ir::kNoValue;
    copy.data = x.data.clone();
    define_output(0, std::move(copy));
  }
  if (dropout) mark_unavailable(1, "the dropout mask");
}

void Importer::op_constant() {
  if (node_->attribute_size() != 1) bad("needs exactly one value attribute");
  const pb::AttributeProto& a = node_->attribute(0);
  const std::string& n = a.name();
  std::string what = fmt::format("node '{}' (Constant) value", node_name_);
  if (n == "value") {
    if (a.type() != pb::AttributeProto::TENSOR) bad("attribute 'value' must be a tensor");
    if (is_int_tensor(a.t())) {
      define_output(0, sym_entry(int_tensor(a.t(), what)));
    } else {
      define_output(0, float_entry(float_tensor(a.t(), what)));
    }
  } else if (n == "value_float" && a.type() == pb::AttributeProto::FLOAT) {
    define_output(0, float_entry(Tensor::from<float>({}, {a.f()})));
  } else if (n == "value_floats" && a.type() == pb::AttributeProto::FLOATS) {
    std::vector<float> v(a.floats().begin(), a.floats().end());
    define_output(0, float_entry(Tensor::from<float>({static_cast<int64_t>(v.size())}, v)));
  } else if (n == "value_int" && a.type() == pb::AttributeProto::INT) {
    define_output(0, sym_entry(SymTensor{{}, {SymDim::known(a.i())}}));
  } else if (n == "value_ints" && a.type() == pb::AttributeProto::INTS) {
    SymTensor s{{a.ints_size()}, {}};
    for (int64_t v : a.ints()) s.elems.push_back(SymDim::known(v));
    define_output(0, sym_entry(std::move(s)));
  } else {
    bad("attribute '{}' is not supported (value, value_float(s), value_int(s))", n);
  }
}

void Importer::op_shape() {
  Entry& x = in(0);
  std::vector<SymDim> dims;
  if (x.kind == K::kActivation) {
    dims = sym_shape(ir_input(0));
  } else {
    const Shape& s = x.kind == K::kSym ? x.sym.shape : x.data.shape();
    for (int64_t d : s) dims.push_back(SymDim::known(d));
  }
  int64_t r = static_cast<int64_t>(dims.size());
  int64_t start = attr_int("start", 0), end = attr_int("end", r);
  auto clamp = [r](int64_t i) { return std::clamp(i < 0 ? i + r : i, int64_t{0}, r); };
  start = clamp(start);
  end = std::max(start, clamp(end));
  SymTensor out{{end - start}, std::vector<SymDim>(dims.begin() + start, dims.begin() + end)};
  define_output(0, sym_entry(std::move(out)));
}

void Importer::op_gather() {
  if (in(1).kind == K::kActivation) {
    // Indices computed from the input (token ids into an embedding table: nn.Embedding's export),
    // read at run time.
    ir::GatherAttrs a;
    a.axis = attr_int("axis", 0);
    const ir::ValueId data = in(0).kind == K::kSym ? ir_input_as(0, DType::kInt64) : ir_input(0);
    add_ir_node(OpKind::kGather, std::move(a), {data, ir_input(1)});
    return;
  }
  if (in(0).kind == K::kFloatConst) {
    // A constant table at constant indices (a position embedding at positions 0..S-1): folded.
    const Tensor& x = in(0).data;
    const SymTensor& idx_t = const_sym(1, "indices");
    const std::vector<int64_t> idx = const_ints(1, "indices");
    const int64_t r = x.rank();
    int64_t axis = attr_int("axis", 0);
    if (axis < -r || axis >= r) bad("axis {} out of range for rank {}", axis, r);
    if (axis < 0) axis += r;
    const int64_t n = x.dim(static_cast<int>(axis));
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.dim(static_cast<int>(d));
    Shape out_shape(x.shape().begin(), x.shape().begin() + axis);
    out_shape.insert(out_shape.end(), idx_t.shape.begin(), idx_t.shape.end());
    out_shape.insert(out_shape.end(), x.shape().begin() + axis + 1, x.shape().end());
    check_folded_shape(out_shape);
    Tensor out(out_shape, DType::kFloat32);
    const int64_t k = static_cast<int64_t>(idx.size());
    for (int64_t j = 0; j < k; ++j) {
      if (idx[j] < -n || idx[j] >= n) bad("index {} is out of range for {} elements", idx[j], n);
    }
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t i = idx[j] < 0 ? idx[j] + n : idx[j];
        std::copy_n(x.data<float>() + (o * n + i) * inner, inner,
                    out.data<float>() + (o * k + j) * inner);
      }
    }
    define_output(0, float_entry(std::move(out)));
    return;
  }
  if (in(0).kind == K::kActivation) {
    // An activation indexed by constants (x[:, 0] exports as Gather(x, 0, axis=1)).
    if (!is_const(in(1))) bad("Gather of an activation needs constant indices");
    ir::GatherAttrs a;
    a.axis = attr_int("axis", 0);
    a.indices = const_ints(1, "indices");
    a.indices_shape = const_sym(1, "indices").shape;
    add_ir_node(OpKind::kGather, std::move(a), {ir_input(0)});
    return;
  }
  const SymTensor& data = in(0).sym;
  const SymTensor& idx_t = const_sym(1, "indices");
  std::vector<int64_t> idx = const_ints(1, "indices");
  int64_t axis = attr_int("axis", 0);
  if (data.shape.size() != 1 || (axis != 0 && axis != -1)) {
    bad("Gather is supported on 1-D shape tensors along axis 0 only");
  }
  int64_t n = data.shape[0];
  SymTensor out{idx_t.shape, {}};
  for (int64_t i : idx) {
    if (i < -n || i >= n) bad("index {} is out of range for {} elements", i, n);
    out.elems.push_back(data.elems[i < 0 ? i + n : i]);
  }
  define_output(0, sym_entry(std::move(out)));
}

void Importer::op_unsqueeze_squeeze() {
  bool unsqueeze = node_->op_type() == "Unsqueeze";
  std::vector<int64_t> axes;
  if (opset_ < 13) {
    axes = attr_ints("axes");
  } else if (present(1)) {
    axes = const_ints(1, "axes");
  }
  if (unsqueeze && axes.empty()) bad("Unsqueeze needs axes");
  Entry& x = in(0);
  if (x.kind == K::kActivation) {
    // A view: an ir Reshape to the new shape, the batch-dependent dim given as -1.
    std::vector<SymDim> dims = sym_shape(ir_input(0));
    const Shape s1 = shape1(ir_input(0));
    Shape out = unsqueeze ? unsqueeze_shape(s1, axes) : squeeze_shape(s1, axes);
    if (!unsqueeze && axes.empty()) {
      for (size_t d = 0; d < dims.size(); ++d) {
        if (s1[d] == 1 && !dims[d].is_known()) bad("Squeeze without axes of a batch dim");
      }
    }
    // Position of each output dim in the input (-1 for an inserted 1).
    ir::ReshapeAttrs a;
    std::vector<SymDim> od;
    if (unsqueeze) {
      std::vector<int64_t> ax = axes;
      const int64_t r = static_cast<int64_t>(out.size());
      for (int64_t& v : ax) v = v < 0 ? v + r : v;
      size_t k = 0;
      for (int64_t d = 0; d < r; ++d) {
        if (std::find(ax.begin(), ax.end(), d) != ax.end()) {
          od.push_back(SymDim::known(1));
        } else {
          od.push_back(dims[k++]);
        }
      }
    } else {
      std::vector<int64_t> ax = axes;
      const int64_t r = static_cast<int64_t>(dims.size());
      for (int64_t& v : ax) v = v < 0 ? v + r : v;
      for (int64_t d = 0; d < r; ++d) {
        const bool gone = ax.empty() ? (s1[d] == 1 && dims[d].is_known())
                                     : std::find(ax.begin(), ax.end(), d) != ax.end();
        if (gone && !(dims[d].is_known() && dims[d].value == 1)) {
          bad("cannot squeeze dim {} of shape {}", d, shape_str(s1));
        }
        if (!gone) od.push_back(dims[d]);
      }
    }
    bool minus1 = false;
    for (const SymDim& d : od) {
      if (d.is_known()) {
        a.shape.push_back(d.value);
      } else if (!minus1) {
        a.shape.push_back(-1);
        minus1 = true;
      } else {
        bad("more than one dim depends on the batch");
      }
    }
    a.allowzero = true;  // literal 0 dims stay 0
    add_ir_node(OpKind::kReshape, std::move(a), {ir_input(0)});
    return;
  }
  const Shape& s = x.kind == K::kSym ? x.sym.shape : x.data.shape();
  Shape out = unsqueeze ? unsqueeze_shape(s, axes) : squeeze_shape(s, axes);
  if (x.kind == K::kSym) {
    define_output(0, sym_entry(SymTensor{out, x.sym.elems}));
  } else {
    define_output(0, float_entry(x.data.clone().reshaped(out)));
  }
}

void Importer::op_slice() {
  if (batch_zeros_input(0)) return mark_batch_zeros();  // import_rnn.cc
  if (in(0).kind == K::kActivation) {
    if (opset_ < 10) bad("Slice with attributes (opset < 10) is not supported");
    ir::SliceAttrs a;
    a.starts = const_ints(1, "starts");
    a.ends = const_ints(2, "ends");
    if (present(3)) {
      a.axes = const_ints(3, "axes");
    } else {
      for (size_t k = 0; k < a.starts.size(); ++k) a.axes.push_back(static_cast<int64_t>(k));
    }
    a.steps = present(4) ? const_ints(4, "steps") : std::vector<int64_t>(a.starts.size(), 1);
    add_ir_node(OpKind::kSlice, std::move(a), {ir_input(0)});
    return;
  }
  if (in(0).kind != K::kSym) bad("Slice is supported only on activations and int64 shape tensors");
  const SymTensor& data = in(0).sym;
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  if (rank < 1) bad("Slice of a scalar");
  std::vector<int64_t> starts = const_ints(1, "starts"), ends = const_ints(2, "ends");
  std::vector<int64_t> axes = present(3) ? const_ints(3, "axes") : std::vector<int64_t>{0};
  std::vector<int64_t> steps = present(4) ? const_ints(4, "steps") : std::vector<int64_t>{1};
  if (starts.size() != 1 || ends.size() != 1 || axes.size() != 1 || steps.size() != 1 ||
      axes[0] < -rank || axes[0] >= rank) {
    bad("Slice of a shape tensor needs one start, end, axis (of its {} dims) and step", rank);
  }
  // One axis of any rank (PyTorch's F.pad export reverses the rows of a [rank, 2] table).
  const int64_t axis = axes[0] < 0 ? axes[0] + rank : axes[0];
  int64_t n = data.shape[axis], step = steps[0];
  if (step == 0) bad("step must not be 0");
  auto norm = [n](int64_t i) { return i < 0 ? (i < -n ? -1 : i + n) : i; };
  int64_t start = norm(starts[0]), end = norm(ends[0]);
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, 0, n);
  } else {
    start = std::clamp<int64_t>(start, -1, n - 1);
    end = std::clamp<int64_t>(end, -1, n - 1);
  }
  std::vector<int64_t> picked;
  for (int64_t i = start; step > 0 ? i < end : i > end;) {
    picked.push_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.shape[d];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= data.shape[d];
  SymTensor out{data.shape, {}};
  out.shape[axis] = static_cast<int64_t>(picked.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i : picked) {
      for (int64_t k = 0; k < inner; ++k) out.elems.push_back(data.elems[(o * n + i) * inner + k]);
    }
  }
  define_output(0, sym_entry(std::move(out)));
}

void Importer::op_cast() {
  int64_t to = attr_int("to", 0);
  bool to_float = to == pb::TensorProto::FLOAT;
  bool to_bool = to == pb::TensorProto::BOOL;
  bool to_int = to == pb::TensorProto::INT64 || to == pb::TensorProto::INT32;
  if (!to_float && !to_int && !to_bool) {
    bad("Cast to {} is not supported (FLOAT, INT64, INT32, BOOL)",
        dtype_str(static_cast<int32_t>(to)));
  }
  Entry& x = in(0);
  if (x.kind == K::kActivation) {
    const DType target = to_float                       ? DType::kFloat32
                         : to_bool                      ? DType::kUInt8
                         : to == pb::TensorProto::INT64 ? DType::kInt64
                                                        : DType::kInt32;
    if (g_.value(ir_input(0)).dtype == target) {
      define_output(0, x);  // to its own dtype: the same value
      return;
    }
    add_ir_node(OpKind::kCast, ir::CastAttrs{target}, {ir_input(0)});
    return;
  }
  if (to_bool) {
    // Shape computations and float constants: known 0 / 1.
    SymTensor out;
    if (x.kind == K::kSym) {
      if (!x.sym.all_known()) bad("Cast to bool of {}, which depends on the batch", x.sym.str());
      out.shape = x.sym.shape;
      for (const SymDim& d : x.sym.elems) out.elems.push_back(SymDim::known(d.value != 0));
    } else {
      if (x.data.numel() > (int64_t{1} << 16)) bad("Cast of a large constant to bool");
      out.shape = x.data.shape();
      for (float f : x.data.span<float>()) out.elems.push_back(SymDim::known(f != 0.0f));
    }
    define_output(0, sym_entry(std::move(out)));
    return;
  }
  if (x.kind == K::kSym) {
    if (to_int) {
      define_output(0, sym_entry(x.sym));
      return;
    }
    if (!x.sym.all_known()) bad("Cast to float of {}, which depends on the batch", x.sym.str());
    std::vector<float> v;
    for (const SymDim& d : x.sym.elems) v.push_back(static_cast<float>(d.value));
    define_output(0, float_entry(Tensor::from(x.sym.shape, v)));
    return;
  }
  if (to_float) {
    define_output(0, float_entry(x.data.clone()));
    return;
  }
  if (x.data.numel() > (int64_t{1} << 16)) bad("Cast of a large constant to int is not supported");
  SymTensor out{x.data.shape(), {}};
  for (float f : x.data.span<float>()) {
    if (!(std::fabs(f) < 9.2e18f)) bad("Cast of {} to an integer overflows", f);
    out.elems.push_back(SymDim::known(static_cast<int64_t>(f)));
  }
  define_output(0, sym_entry(std::move(out)));
}

void Importer::op_constant_of_shape() {
  if (batch_zero_fill()) return;  // import_rnn.cc
  std::vector<int64_t> dims = const_ints(0, "shape");
  if (const_sym(0, "shape").shape.size() != 1) bad("shape input must be 1-D");
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n) || n > kMaxFillElements) {
      bad("shape {} is invalid or larger than {} elements", shape_str(dims), kMaxFillElements);
    }
  }
  const pb::AttributeProto* value = attr("value");
  if (value == nullptr) {
    define_output(0, float_entry(Tensor(dims, DType::kFloat32)));
    return;
  }
  if (value->type() != pb::AttributeProto::TENSOR) bad("attribute 'value' must be a tensor");
  std::string what = fmt::format("node '{}' (ConstantOfShape) value", node_name_);
  if (is_int_tensor(value->t())) {
    SymTensor v = int_tensor(value->t(), what);
    if (v.elems.size() != 1) bad("value must have one element");
    if (n > (int64_t{1} << 16)) bad("an int64 fill of {} elements is too large", n);
    define_output(0, sym_entry(SymTensor{dims, std::vector<SymDim>(n, v.elems[0])}));
  } else {
    Tensor v = float_tensor(value->t(), what);
    if (v.numel() != 1) bad("value must have one element");
    Tensor out(dims, DType::kFloat32);
    std::fill_n(out.data<float>(), n, v.data<float>()[0]);
    define_output(0, float_entry(std::move(out)));
  }
}

}  // namespace qsearch::onnx::detail

namespace qsearch::onnx::detail {

// Pad (opsets 11+: pads and constant_value are inputs). All pads zero: the output is the input.
// A constant zero Pad of the spatial dims of an NCHW activation becomes pending on its output
// (Entry::zero_pad) and folds into the Conv or AveragePool that reads it (window_input), which is
// how PyTorch exports F.avg_pool2d (an all-zero Pad) and a padded convolution written as
// F.pad + conv, when only Conv / AveragePool nodes read it. Anything else (any axis, constant
// value, reflect or edge mode) becomes an ir Pad node (issue 11); wrap mode and negative pads
// are refused.
void Importer::op_pad() {
  const std::string mode = attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    bad("mode '{}' is not an ONNX Pad mode (constant, reflect, edge, wrap)", mode);
  }
  std::vector<int64_t> pads = present(1) ? const_ints(1, "pads") : std::vector<int64_t>{};
  float value = 0.0f;
  if (present(2)) {
    const Tensor& v = const_float(2, "constant_value");
    if (v.numel() != 1) bad("constant_value must be a scalar, got shape {}", shape_str(v.shape()));
    value = v.data<float>()[0];
  }
  Entry& x = in(0);
  const size_t rank = x.kind == K::kActivation ? shape1(x.value).size()
                      : x.kind == K::kSym      ? x.sym.shape.size()
                                               : x.data.shape().size();
  if (present(3)) pads = pads_of_axes(pads, const_ints(3, "axes"), rank);  // opset 18
  if (pads.size() != 2 * rank) {
    bad("pads has {} values; a rank-{} input needs {} (begins, then ends)", pads.size(), rank,
        2 * rank);
  }
  const bool all_zero = std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; });
  if (all_zero) {
    Entry copy = x;
    if (copy.kind == K::kFloatConst) copy.value = ir::kNoValue;  // a new name, its own constant
    define_output(0, std::move(copy));
    return;
  }
  if (x.kind != K::kActivation) bad("padding a constant is not supported (fold it at export)");
  for (int64_t p : pads) {
    if (p < 0 || p > kMaxWindow)
      bad("pad {} is out of range 0..{} (cropping is not supported)", p, kMaxWindow);
  }
  if (mode == "wrap") bad("mode 'wrap' is not supported (constant, reflect, edge)");
  // Constant zero padding of H/W that only Conv / AveragePool nodes read folds into them
  // (Entry::zero_pad, window_input): PyTorch's F.pad + conv and avg_pool2d exports.
  const bool hw_only = rank == 4 && pads[0] == 0 && pads[1] == 0 && pads[4] == 0 && pads[5] == 0;
  if (mode == "constant" && value == 0.0f && hw_only && !x.zero_pad &&
      only_window_readers(node_->output(0))) {
    Entry out = x;
    out.zero_pad = std::array<int64_t, 4>{pads[2], pads[3], pads[6], pads[7]};
    define_output(0, std::move(out));
    return;
  }
  ir::PadAttrs a;
  a.mode = mode == "constant"  ? ir::PadMode::kConstant
           : mode == "reflect" ? ir::PadMode::kReflect
                               : ir::PadMode::kEdge;
  a.pads = pads;
  a.value = value;
  add_ir_node(OpKind::kPad, std::move(a), {ir_input(0)});
}

bool Importer::only_window_readers(const std::string& value, int depth) const {
  if (depth > 4) return false;
  for (const auto& o : graph_.output()) {
    if (o.name() == value) return false;
  }
  bool any = false;
  for (const auto& n : graph_.node()) {
    for (const std::string& i : n.input()) {
      if (i != value) continue;
      // Through a Pad (PyTorch's avg_pool2d export puts an all-zero one before the pool).
      if (n.op_type() == "Pad" && n.output_size() > 0 &&
          only_window_readers(n.output(0), depth + 1)) {
        any = true;
        continue;
      }
      if (n.op_type() != "Conv" && n.op_type() != "AveragePool") return false;
      any = true;
    }
  }
  return any;
}

}  // namespace qsearch::onnx::detail

namespace qsearch::onnx::detail {

void Importer::op_reduce() {
  const std::string& t = node_->op_type();
  ir::ReduceAttrs a;
  a.keepdims = attr_int("keepdims", 1) != 0;
  // ReduceSum takes axes as an input from opset 13; ReduceMean / ReduceMax from opset 18 (read
  // after import_newer_opsets.cc relabelled the model 17; the checker refuses it in a real 17).
  if ((t == "ReduceSum" && opset_ >= 13) || present(1)) {
    if (present(1)) a.axes = const_ints(1, "axes");
  } else {
    a.axes = attr_ints("axes");
  }
  if (a.axes.empty() && attr_int("noop_with_empty_axes", 0) != 0) {
    bad("noop_with_empty_axes is not supported");
  }
  if (in(0).kind != K::kActivation) bad("{} of a constant is not supported (fold it at export)", t);
  const OpKind kind = t == "ReduceMean"  ? OpKind::kReduceMean
                      : t == "ReduceSum" ? OpKind::kReduceSum
                                         : OpKind::kReduceMax;
  add_ir_node(kind, std::move(a), {ir_input(0)});
}

void Importer::op_layer_norm() {
  ir::LayerNormAttrs a;
  a.axis = attr_int("axis", -1);
  a.epsilon = attr_float("epsilon", 1e-5f);
  if (attr_int("stash_type", 1) != 1) bad("stash_type must be 1 (float32)");
  if (in(0).kind != K::kActivation) bad("LayerNormalization of a constant is not supported");
  const_float(1, "scale");
  std::vector<ir::ValueId> ins = {ir_input(0), ir_input(1)};
  if (present(2)) {
    const_float(2, "bias");
    ins.push_back(ir_input(2));
  }
  add_ir_node(OpKind::kLayerNorm, a, ins);
  mark_unavailable(1, "the mean and inverse standard deviation");
}

void Importer::op_split() {
  if (in(0).kind != K::kActivation) bad("Split is supported only on activations");
  const ir::ValueId x = ir_input(0);
  const Shape s1 = shape1(x);  // a copy: add_ir_node below grows the shape tables
  const int64_t r = static_cast<int64_t>(s1.size());
  int64_t axis = attr_int("axis", 0);
  if (axis < -r || axis >= r) bad("axis {} out of range", axis);
  if (axis < 0) axis += r;
  if (!sym_shape(x)[axis].is_known()) bad("Split along the batch dimension is not supported");
  std::vector<int64_t> sizes;
  if (opset_ >= 13) {
    if (present(1)) sizes = const_ints(1, "split");
  } else {
    sizes = attr_ints("split");
  }
  const int n = node_->output_size();
  if (sizes.empty() && has_attr("num_outputs") && n > 0) {
    // Opset 18's num_outputs: parts of ceil(dim / n), the last one smaller.
    const int64_t part = (s1[axis] + n - 1) / n;
    for (int k = 0; k < n; ++k) sizes.push_back(std::clamp(s1[axis] - k * part, int64_t{0}, part));
  }
  if (sizes.empty()) {
    if (n < 1 || s1[axis] % n != 0)
      bad("dim {} of size {} does not split into {}", axis, s1[axis], n);
    sizes.assign(n, s1[axis] / n);
  }
  if (static_cast<int>(sizes.size()) != n) bad("{} split sizes for {} outputs", sizes.size(), n);
  int64_t start = 0;
  for (int k = 0; k < n; ++k) {
    if (sizes[k] < 0) bad("split size {} is negative", sizes[k]);
    ir::SliceAttrs a{{start}, {start + sizes[k]}, {axis}, {1}};
    add_ir_node(OpKind::kSlice, std::move(a), {x}, k);
    start += sizes[k];
  }
  if (start != s1[axis]) bad("split sizes add up to {}, not {}", start, s1[axis]);
}

// The dtype operands [from, to) of the current node share as ir values: the first activation's,
// else float32 when one is a float constant, else int64.
DType Importer::common_dtype(int from, int to) {
  DType t = DType::kInt64;
  for (int k = from; k < to; ++k) {
    if (in(k).kind == K::kActivation) return dtype_of_entry(k);
    if (in(k).kind == K::kFloatConst) t = DType::kFloat32;
  }
  return t;
}

void Importer::op_equal() {
  if (in(0).kind == K::kSym && in(1).kind == K::kSym) {
    define_output(0, sym_entry(fold_equal(in(0).sym, in(1).sym)));
    return;
  }
  if (in(0).kind != K::kActivation && in(1).kind != K::kActivation) {
    bad("Equal of two constants is not supported (fold it at export)");
  }
  // On activations (ids == pad, mask == 0): a bool (uint8) activation.
  const DType t = common_dtype(0, 2);
  add_ir_node(OpKind::kEqual, ir::NoAttrs{}, {ir_input_as(0, t), ir_input_as(1, t)});
}

void Importer::op_where() {
  // torch.where(mask, torch.zeros_like(x), x): the zeros are x's dtype's scalar 0
  // (batch_zeros_as_scalar).
  for (int k : {1, 2}) {
    if (!batch_zeros_input(k) || batch_zeros_input(3 - k)) continue;
    const DType t = dtype_of_entry(3 - k);
    const ir::ValueId z = batch_zeros_as_scalar(k, 3, t);
    if (z == ir::kNoValue) break;
    if (in(0).kind == K::kFloatConst) bad("the condition must be bool, not float32");
    std::vector<ir::ValueId> ins = {ir_input_as(0, DType::kUInt8), z, z};
    ins[3 - k] = ir_input_as(3 - k, t);
    add_ir_node(OpKind::kWhere, ir::NoAttrs{}, ins);
    return;
  }
  if (in(0).kind == K::kSym && in(1).kind == K::kSym && in(2).kind == K::kSym) {
    define_output(0, sym_entry(fold_where(in(0).sym, in(1).sym, in(2).sym)));
    return;
  }
  if (in(0).kind != K::kActivation && in(1).kind != K::kActivation &&
      in(2).kind != K::kActivation) {
    bad("Where of constants is not supported (fold it at export)");
  }
  if (in(0).kind == K::kFloatConst) bad("the condition must be bool, not float32");
  // On activations (masked_fill of attention scores): cond bool, branches of one dtype.
  const DType t = common_dtype(1, 3);
  add_ir_node(OpKind::kWhere, ir::NoAttrs{},
              {ir_input_as(0, DType::kUInt8), ir_input_as(1, t), ir_input_as(2, t)});
}

void Importer::op_not_and() {
  const bool is_not = node_->op_type() == "Not";
  const int n = is_not ? 1 : 2;
  bool all_sym = true;
  for (int k = 0; k < n; ++k) {
    if (in(k).kind == K::kFloatConst) bad("input {} must be bool, not float32", k);
    all_sym = all_sym && in(k).kind == K::kSym;
  }
  if (all_sym) {
    for (int k = 0; k < n; ++k) {
      if (!in(k).sym.all_known()) bad("input {} = {} is not known at import", k, in(k).sym.str());
    }
    if (is_not) {
      SymTensor out = in(0).sym;
      for (SymDim& d : out.elems) d = SymDim::known(d.value == 0);
      define_output(0, sym_entry(std::move(out)));
    } else {
      SymTensor out = fold_binary('*', in(0).sym, in(1).sym);
      for (SymDim& d : out.elems) d = SymDim::known(d.value != 0);
      define_output(0, sym_entry(std::move(out)));
    }
    return;
  }
  if (is_not) {
    add_ir_node(OpKind::kNot, ir::NoAttrs{}, {ir_input(0)});
  } else {
    add_ir_node(OpKind::kAnd, ir::NoAttrs{},
                {ir_input_as(0, DType::kUInt8), ir_input_as(1, DType::kUInt8)});
  }
}

void Importer::op_expand() {
  const SymTensor& target = const_sym(1, "shape");
  Entry& x = in(0);
  if (x.kind == K::kActivation) {
    // Expand to a shape the input already has (PyTorch's expand_as of an equal shape) is the
    // identity; a real broadcast of an activation is not supported.
    const std::vector<SymDim> xs = sym_shape(ir_input(0));
    bool same = target.elems.size() <= xs.size();
    for (size_t k = 0; same && k < target.elems.size(); ++k) {
      const SymDim& t = target.elems[target.elems.size() - 1 - k];
      const SymDim& d = xs[xs.size() - 1 - k];
      same = (t.is_known() && t.value == 1) ||
             (t.kind == d.kind && t.value == d.value && t.kind != SymDim::Kind::kUnknown);
    }
    if (same) {
      define_output(0, x);
      return;
    }
    // A broadcast (a mask [N, 1, 1, S] to the scores' [N, H, S, S]). A target dim that grows
    // with the batch must be the input's own dim (given as 1: broadcasting keeps it); a constant
    // target dim needs an input dim of 1 or of that size.
    const std::string what =
        fmt::format("Expand of an activation of shape {} to {}",
                    SymTensor{{static_cast<int64_t>(xs.size())}, xs}.str(), target.str());
    ir::ExpandAttrs a;
    const size_t r = std::max(target.elems.size(), xs.size());
    for (size_t k = 0; k < target.elems.size(); ++k) {
      const SymDim& t = target.elems[k];
      const size_t pos = r - target.elems.size() + k;  // output dim
      const bool has_in = pos >= r - xs.size();
      const SymDim d = has_in ? xs[pos - (r - xs.size())] : SymDim::known(1);
      if (t.kind == SymDim::Kind::kUnknown || d.kind == SymDim::Kind::kUnknown) {
        bad("{}: a dim is not known at import", what);
      }
      if (t.kind == SymDim::Kind::kBatch) {
        if (d.kind != SymDim::Kind::kBatch || d.value != t.value) {
          bad("{}: output dim {} grows with the batch but the input's does not; qsearch expands "
              "only dims that do not depend on the batch",
              what, pos);
        }
        a.shape.push_back(1);
      } else {
        if (d.kind == SymDim::Kind::kBatch && t.value != 1) {
          bad("{}: dim {} is the batch in the input and {} in the target", what, pos, t.value);
        }
        a.shape.push_back(t.value);
      }
    }
    add_ir_node(OpKind::kExpand, std::move(a), {ir_input(0)});
    return;
  }
  if (!target.all_known()) {
    bad("Expand of a constant to {}, which depends on the batch, is not supported", target.str());
  }
  std::vector<int64_t> dims;
  for (const SymDim& d : target.elems) dims.push_back(d.value);
  if (x.kind == K::kSym) {
    SymTensor ones{broadcast_shapes(x.sym.shape, dims), {}};
    ones.elems.assign(static_cast<size_t>(shape_numel(ones.shape)), SymDim::known(1));
    SymTensor out = fold_binary('*', x.sym, ones);
    define_output(0, sym_entry(std::move(out)));
    return;
  }
  const Shape out_shape = broadcast_shapes(x.data.shape(), dims);
  int64_t count = 1;
  bool too_large = false;
  for (int64_t d : out_shape) {
    too_large =
        too_large || d < 0 || __builtin_mul_overflow(count, d, &count) || count > kMaxFillElements;
  }
  if (too_large) {
    bad("Expand to {} is larger than {} elements", shape_str(out_shape), kMaxFillElements);
  }
  Tensor zeros(out_shape, DType::kFloat32);
  define_output(0, float_entry(fold_binary('+', x.data, zeros)));
}

}  // namespace qsearch::onnx::detail
