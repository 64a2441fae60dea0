#include "train/network.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "train/grad_kernels.h"
#include "train/network_internal.h"
#include "train/params.h"

namespace qsearch::train {

using ir::OpKind;
using ir::ValueId;

namespace {

[[noreturn]] void unsupported(const ir::Node& n, const std::string& why) {
  fail("node '{}' ({}) cannot be trained: {}", n.name, ir::op_name(n.kind), why);
}

void add_into(float* dst, const float* src, int64_t n) {
  parallel_for(0, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  });
}

}  // namespace

Network::Network(ir::Graph& graph, const NetworkOptions& options)
    : graph_(graph), max_batch_(options.max_batch), input_grad_(options.input_grad) {
  if (max_batch_ < 1) fail("batch size must be >= 1, got {}", max_batch_);
  if (graph.inputs().empty() || graph.outputs().size() != 1) {
    fail("training needs a graph with inputs and one output, this one has {} and {}",
         graph.inputs().size(), graph.outputs().size());
  }
  if (graph.nodes().empty()) fail("training needs a graph with at least one node");
  const size_t nv = graph.values().size();
  const ValueId input = graph.inputs()[0];
  // Every graph input is fed float32 samples (a model with several inputs: one array each).
  for (ValueId in : graph.inputs()) {
    const ir::Value& v = graph.value(in);
    if (v.dtype == DType::kFloat32) continue;
    const std::vector<ir::NodeId> readers = graph.consumers(in);
    if (readers.empty()) {
      fail("training needs float32 inputs, but input '{}' is {}", v.name, dtype_name(v.dtype));
    }
    const ir::Node& r = graph.node(readers.front());
    fail(
        "training needs float32 inputs, but input '{}' is {} (read by node '{}' ({}), which has "
        "no backward here)",
        v.name, dtype_name(v.dtype), r.name, ir::op_name(r.kind));
  }
  const std::vector<Shape> s1 = graph.infer_shapes(1);
  shapes_ = graph.infer_shapes(max_batch_);
  batch_ = max_batch_;
  sample_size_ = shape_numel(s1[input]);
  for (ValueId in : graph.inputs()) sample_sizes_.push_back(shape_numel(s1[in]));
  const Shape& out1 = s1[graph.outputs()[0]];
  if (out1.size() != 2 || out1[0] != 1) {
    fail("training needs a [batch, classes] output, the graph's is {}", shape_str(out1));
  }
  classes_ = out1[1];

  requires_grad_.assign(nv, false);
  grad_root_.resize(nv);
  for (size_t v = 0; v < nv; ++v) grad_root_[v] = static_cast<ValueId>(v);
  requires_grad_[input] = input_grad_;
  for (ValueId p : trainable_values(graph)) requires_grad_[p] = true;
  act_store_.resize(nv);
  grad_store_.resize(nv);
  act_.assign(nv, nullptr);
  grad_.assign(nv, nullptr);
  std::vector<ValueId> act_root(nv);
  for (size_t v = 0; v < nv; ++v) act_root[v] = static_cast<ValueId>(v);

  int64_t largest = 0;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const ir::Node& n = graph.nodes()[i];
    Step s;
    s.node = &n;
    s.index = static_cast<int>(i);
    auto is_const = [&](size_t k) {
      return k < n.inputs.size() && n.inputs[k] >= 0 && graph.value(n.inputs[k]).is_constant();
    };
    // Add may read a constant first (torch.onnx writes a Linear's bias Add as Add(bias, x)).
    const bool const_first_ok = n.kind == OpKind::kAdd && n.inputs.size() == 2 && !is_const(1);
    if (n.inputs.empty() || (is_const(0) && !const_first_ok)) {
      unsupported(n, "its first input must be an activation");
    }
    for (size_t k = 1; k < n.outputs.size(); ++k) {
      if (!graph.consumers(n.outputs[k]).empty() ||
          std::count(graph.outputs().begin(), graph.outputs().end(), n.outputs[k])) {
        unsupported(n, "only its first output may be used");
      }
    }
    const Shape& x = shapes_[n.inputs[0]];
    switch (n.kind) {
      case OpKind::kGemm: {
        const auto& a = std::get<ir::GemmAttrs>(n.attrs);
        if (a.trans_a) unsupported(n, "transA = 1 is not supported");
        if (!is_const(1)) unsupported(n, "the weight (input B) must be a constant");
        s.trans_b = a.trans_b;
        s.alpha = a.alpha;
        s.beta = a.beta;
        if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
          if (!is_const(2)) unsupported(n, "the bias (input C) must be a constant");
          const Shape& c = graph.value(n.inputs[2]).shape;
          const int64_t nn = shapes_[n.outputs[0]][1];
          if (shape_numel(c) == 1) {
            s.scalar_bias = true;
          } else if (!(c == Shape{nn} || c == Shape{1, nn})) {
            unsupported(
                n, fmt::format("bias of shape {} (only [N], [1, N] or a scalar)", shape_str(c)));
          }
          s.bias_buf.resize(nn);
        }
        s.tmp = Tensor({std::max(x[0] * x[1], shapes_[n.outputs[0]][0] * shapes_[n.outputs[0]][1])},
                       DType::kFloat32);
        break;
      }
      case OpKind::kMatMul: {
        if (!is_const(1)) {
          // Two activations (attention): batched over the leading dims, numpy broadcasting.
          if (x.size() < 2 || shapes_[n.inputs[1]].size() < 2) {
            unsupported(n, "a MatMul of two activations needs operands of rank >= 2");
          }
          s.act_matmul = true;
          break;
        }
        if (graph.value(n.inputs[1]).shape.size() != 2) {
          unsupported(n, "only an activation times a constant [K, N] matrix is supported");
        }
        s.tmp = Tensor({shape_numel(x) + shape_numel(shapes_[n.outputs[0]])}, DType::kFloat32);
        break;
      }
      case OpKind::kTranspose: {
        const auto& a = std::get<ir::TransposeAttrs>(n.attrs);
        const int64_t rank = static_cast<int64_t>(x.size());
        s.perm = a.perm;
        if (s.perm.empty()) {
          for (int64_t d = rank - 1; d >= 0; --d) s.perm.push_back(d);
        }
        if (static_cast<int64_t>(s.perm.size()) != rank || s.perm[0] != 0) {
          unsupported(n, "only a permutation that keeps the batch dim first is supported");
        }
        s.inv_perm.resize(rank);
        for (int64_t d = 0; d < rank; ++d) s.inv_perm[s.perm[d]] = d;
        break;
      }
      case OpKind::kSoftmax: {
        const int64_t axis = std::get<ir::AxisAttrs>(n.attrs).axis;
        if (axis != -1 && axis != static_cast<int64_t>(x.size()) - 1) {
          unsupported(n, "only a softmax over the last axis is supported");
        }
        break;
      }
      case OpKind::kLayerNorm: {
        const auto& a = std::get<ir::LayerNormAttrs>(n.attrs);
        const int64_t rank = static_cast<int64_t>(x.size());
        const int64_t axis = a.axis < 0 ? a.axis + rank : a.axis;
        if (axis < 1 || axis >= rank) unsupported(n, "the normalised axes must exclude the batch");
        for (size_t k = 1; k < n.inputs.size(); ++k) {
          if (n.inputs[k] >= 0 && !is_const(k)) unsupported(n, "scale and bias must be constants");
        }
        if (!is_const(1)) unsupported(n, "the scale must be a constant");
        s.ln_n = 1;
        for (int64_t d = axis; d < rank; ++d) s.ln_n *= x[d];
        s.ln_mean.resize(shape_numel(x) / s.ln_n);
        s.ln_invstd.resize(shape_numel(x) / s.ln_n);
        break;
      }
      case OpKind::kGelu:
        if (std::get<ir::GeluAttrs>(n.attrs).tanh) {
          unsupported(n, "only the exact (erf) GELU is supported");
        }
        break;
      case OpKind::kMul:
      case OpKind::kDiv: {
        // An activation times (or divided by) a constant scalar.
        const int k = 1;  // input 0 is an activation (checked above)
        if (!is_const(1) || graph.value(n.inputs[k]).data.numel() != 1 ||
            graph.value(n.inputs[k]).dtype != DType::kFloat32) {
          unsupported(n, "only an activation times or divided by a constant float scalar");
        }
        s.scalar_input = k;
        s.scalar = graph.value(n.inputs[k]).data.data<float>()[0];
        s.divide = n.kind == OpKind::kDiv;
        break;
      }
      case OpKind::kReduceMean: {
        const auto& a = std::get<ir::ReduceAttrs>(n.attrs);
        const ir::ReduceRange r = ir::reduce_range(n, a, static_cast<int>(x.size()));
        if (r.begin < 1) unsupported(n, "a mean over the batch dim is not supported");
        break;
      }
      case OpKind::kIm2Col3d:  // a Conv3d's (ConvTranspose3d's) gather; its adjoint scatters back
        if (x.size() != 5) unsupported(n, "an Im2Col3d needs an NCDHW input");
        break;
      case OpKind::kConv:
        if (x.size() != 4 && x.size() != 3) {
          unsupported(n, "a Conv needs an NCL (1-D) or NCHW (2-D) input");
        }
        if (!is_const(1)) unsupported(n, "the weight must be a constant");
        if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !is_const(2)) {
          unsupported(n, "the bias must be a constant");
        }
        break;
      case OpKind::kConvTranspose: {
        // 2-D, or a 3-D one as imported (a transposed Im2Col3d before it, ir/ops.h); a 1-D one
        // is the 2-D one between views.
        if (x.size() != 4) unsupported(n, "a ConvTranspose needs an NCHW input");
        if (!is_const(1)) unsupported(n, "the weight must be a constant");
        if (n.inputs.size() > 2 && n.inputs[2] >= 0 && !is_const(2)) {
          unsupported(n, "the bias must be a constant");
        }
        s.ct = runtime::conv_transpose_plan(std::get<ir::ConvTransposeAttrs>(n.attrs), x[2], x[3],
                                            graph.value(n.inputs[1]).shape);
        s.ct_zeros.resize(x[0] * x[1] * s.ct.zeros.out_h() * s.ct.zeros.out_w());
        break;
      }
      case OpKind::kBatchNorm:
        for (size_t k = 1; k < 5; ++k) {
          if (!is_const(k)) unsupported(n, "scale, bias, mean and variance must be constants");
        }
        s.save_mean.resize(x[1]);
        s.save_invstd.resize(x[1]);
        break;
      case OpKind::kRelu:
      case OpKind::kGlobalAveragePool:
        break;
      case OpKind::kMaxPool:
      case OpKind::kAveragePool:
        break;
      case OpKind::kAdd:
        for (size_t k = 0; k < 2; ++k) {
          if (is_const(k) && graph.value(n.inputs[k]).dtype != DType::kFloat32) {
            unsupported(n, "a non-float constant operand");
          }
        }
        break;
      case OpKind::kFlatten:
      case OpKind::kReshape:
      case OpKind::kIdentity:
        s.alias = true;
        break;
      case OpKind::kDropout: {
        const float r = std::get<ir::DropoutAttrs>(n.attrs).ratio;
        if (!(r >= 0.0f && r < 1.0f)) unsupported(n, fmt::format("ratio {} not in [0, 1)", r));
        s.keep_scale = 1.0f / (1.0f - r);
        s.mask.resize(shape_numel(x));
        break;
      }
      default:
        unsupported(n,
                    "no backward pass for this op (supported: Gemm, MatMul, Conv and "
                    "ConvTranspose (1-D, 2-D, 3-D: Im2Col3d), "
                    "BatchNormalization, LayerNormalization, Relu, Gelu, Softmax, MaxPool, "
                    "AveragePool, GlobalAveragePool, ReduceMean, Add, Mul/Div by a constant, "
                    "Transpose, Flatten, Reshape, Identity, Dropout)");
    }
    const ValueId y = n.outputs[0];
    bool any_grad = false;
    for (ValueId in : n.inputs) any_grad |= in >= 0 && requires_grad_[in];
    requires_grad_[y] = any_grad;
    if (s.alias) {
      act_root[y] = act_root[n.inputs[0]];
      if (requires_grad_[n.inputs[0]]) grad_root_[y] = grad_root_[n.inputs[0]];
    }
    steps_.push_back(std::move(s));
  }

  // BatchNorm + ReLU pairs (the BatchNorm's output read by the ReLU only): one pass each way.
  for (Step& bn : steps_) {
    if (bn.node->kind != OpKind::kBatchNorm) continue;
    const ValueId y = bn.node->outputs[0];
    const std::vector<ir::NodeId> readers = graph.consumers(y);
    if (readers.size() != 1 || std::count(graph.outputs().begin(), graph.outputs().end(), y) != 0) {
      continue;
    }
    Step& relu = steps_[readers.front()];
    if (relu.node->kind != OpKind::kRelu || relu.node->inputs.size() != 1) continue;
    bn.relu_out = relu.node->outputs[0];
    relu.relu_fused = true;
  }

  for (size_t v = 0; v < nv; ++v) {
    const ir::Value& val = graph.value(static_cast<ValueId>(v));
    if (val.is_constant()) {
      if (requires_grad_[v]) grad_store_[v] = Tensor(val.data.shape(), DType::kFloat32);
      continue;
    }
    if (std::count(graph.inputs().begin(), graph.inputs().end(), static_cast<ValueId>(v))) {
      // Fed from outside (forward's pointers); only the first input's gradient is kept.
      if (static_cast<ValueId>(v) == input && input_grad_) {
        grad_store_[v] = Tensor({max_batch_, sample_size_}, DType::kFloat32);
      }
      continue;
    }
    const int64_t numel = shape_numel(shapes_[v]);
    largest = std::max(largest, numel);
    if (act_root[v] == static_cast<ValueId>(v)) {
      act_store_[v] = Tensor({max_batch_, numel / max_batch_}, DType::kFloat32);
    }
    if (requires_grad_[v] && grad_root_[v] == static_cast<ValueId>(v)) {
      grad_store_[v] = Tensor({max_batch_, numel / max_batch_}, DType::kFloat32);
    }
  }
  for (size_t v = 0; v < nv; ++v) {
    if (!act_store_[v].empty()) act_[v] = act_store_[v].data<float>();
    if (!grad_store_[v].empty()) grad_[v] = grad_store_[v].data<float>();
  }
  for (size_t v = 0; v < nv; ++v) {
    if (act_root[v] != static_cast<ValueId>(v)) act_[v] = act_[act_root[v]];
    if (grad_root_[v] != static_cast<ValueId>(v)) grad_[v] = grad_[grad_root_[v]];
  }
  for (ValueId p : trainable_values(graph)) {
    ir::Value& val = graph.value(p);
    params_.push_back({p, val.name, val.data.data<float>(), grad_[p], val.data.numel()});
    largest = std::max(largest, val.data.numel());
  }
  scratch_ = Tensor({std::max<int64_t>(largest, 1)}, DType::kFloat32);
  output_store_ = Tensor({max_batch_, classes_}, DType::kFloat32);
  grad_written_.assign(nv, false);
}

Network::~Network() = default;

int64_t Network::param_count() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.size;
  return n;
}

const float* Network::input_grad() const {
  QSEARCH_CHECK(input_grad_);
  return grad_[graph_.inputs()[0]];
}

void Network::prepare_shapes(int64_t batch) {
  if (batch == batch_) return;
  shapes_ = graph_.infer_shapes(batch);
  batch_ = batch;
}

const Tensor& Network::forward(const float* x, int64_t batch, const ForwardOptions& options) {
  QSEARCH_CHECK(graph_.inputs().size() == 1);
  return forward(std::vector<const float*>{x}, batch, options);
}

const Tensor& Network::forward(const std::vector<const float*>& xs, int64_t batch,
                               const ForwardOptions& options) {
  QSEARCH_CHECK(batch >= 1 && batch <= max_batch_);
  QSEARCH_CHECK(xs.size() == graph_.inputs().size());
  prepare_shapes(batch);
  for (size_t i = 0; i < xs.size(); ++i) act_[graph_.inputs()[i]] = const_cast<float*>(xs[i]);
  // Aliases of the input follow its (external) pointer.
  for (const Step& s : steps_) {
    if (s.alias) act_[s.node->outputs[0]] = act_[s.node->inputs[0]];
  }
  for (Step& s : steps_) forward_step(s, options);
  last_training_ = options.training;
  const ValueId out = graph_.outputs()[0];
  output_ = output_store_.rows(0, batch);
  std::memcpy(output_.data<float>(), act_[out], batch * classes_ * sizeof(float));
  return output_;
}

float* Network::grad_begin(ValueId v, int64_t numel, bool* accumulate) {
  const ValueId r = grad_root_[v];
  QSEARCH_DCHECK(grad_[r] != nullptr);
  *accumulate = grad_written_[r];
  if (!*accumulate) return grad_[r];
  QSEARCH_DCHECK(numel <= scratch_.numel());
  (void)numel;
  return scratch_.data<float>();
}

void Network::grad_end(ValueId v, int64_t numel, float* written, bool accumulate) {
  const ValueId r = grad_root_[v];
  if (accumulate) add_into(grad_[r], written, numel);
  grad_written_[r] = true;
}

void Network::backward(const float* dy) {
  QSEARCH_CHECK(last_training_);
  std::fill(grad_written_.begin(), grad_written_.end(), false);
  const ValueId out = graph_.outputs()[0];
  const int64_t n_out = batch_ * classes_;
  if (requires_grad_[out]) {
    bool acc;
    float* g = grad_begin(out, n_out, &acc);
    std::memcpy(g, dy, n_out * sizeof(float));
    grad_end(out, n_out, g, acc);
  }
  for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
    const ValueId y = it->node->outputs[0];
    if (!requires_grad_[y] || it->alias) continue;
    // A value nothing downstream depends on (grad never written) contributes zero.
    if (!grad_written_[grad_root_[y]]) {
      std::fill(grad_[y], grad_[y] + shape_numel(shapes_[y]), 0.0f);
      grad_written_[grad_root_[y]] = true;
    }
    backward_step(*it);
  }
  for (const Param& p : params_) {
    if (!grad_written_[grad_root_[p.value]]) std::fill(p.grad, p.grad + p.size, 0.0f);
  }
}

}  // namespace qsearch::train
