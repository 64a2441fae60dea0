// Network: an ir::Graph prepared for training — a forward pass that keeps every activation
// (training mode: batch-statistics BatchNorm, Dropout masks) and the backward pass that turns
// dL/d(output) into the gradients of the trainable parameters (train/params.h).
//
//   ir::Graph g = build_model("lenet5");
//   Network net(g, {.max_batch = 256});
//   const Tensor& logits = net.forward(x, /*batch=*/256, {.training = true, .dropout_seed = s});
//   softmax_cross_entropy(..., dlogits);            // train/grad_kernels.h
//   net.backward(dlogits);
//   for (const Network::Param& p : net.params()) optimizer.update(p.data, p.grad, ...);
//
// Ownership: the graph must outlive the Network. Parameters are the graph's constant tensors
// themselves (Param::data points into them), so an optimizer step updates the graph in place,
// and training-mode forward passes update BatchNorm's running statistics in the graph. The
// input x must stay valid until backward() returns (the first layer's weight gradient reads
// it). Activations and gradients live in buffers sized for max_batch, allocated once.
//
// Inputs: one or more, each float32 (a non-float input is an Error naming the node that reads
// it). Supported ops (anything else is an Error naming the node): Gemm (trans_a = 0, constant
// weight, bias [N] / [1, N] / scalar), MatMul (activation x constant [K, N], or two activations
// batched over the leading dims with numpy broadcasting), Conv (2-D, any groups, pads, strides,
// dilations), BatchNormalization, LayerNormalization (scale and bias trainable), Relu, exact
// Gelu, Softmax (last axis), MaxPool, AveragePool, GlobalAveragePool, ReduceMean (not over the
// batch), Add (numpy broadcasting, constant operands trainable), Mul / Div by a constant scalar,
// Transpose (batch dim first), Flatten, Reshape, Identity, Dropout. The graph's output must be
// [batch, classes].
//
// Forward products use the fast float kernels (kernels/gemm.h, kernels/conv.h) with weights
// packed per pass (they change every step); backward products use the same GEMM with
// transposed operands: for Y = X W^T (+ b): dX = dY W, dW = dY^T X, db = column sums of dY; for
// a convolution per group, dW = sum over images of dY_n col_n^T and dX = col2im(W^T dY_n).
// Every reduction has a fixed order that depends only on the shapes (convolution weight
// gradients are summed over fixed chunks of images, then over chunks in order), so results are
// bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace qsearch::train {

struct NetworkOptions {
  int64_t max_batch = 256;
  bool input_grad = false;  // also compute dL/d(graph input) (gradient checks)
};

struct ForwardOptions {
  bool training = true;       // false: BatchNorm uses running statistics, Dropout is identity
  uint64_t dropout_seed = 0;  // masks of node k come from Rng(dropout_seed).fork(k)
};

class Network {
 public:
  struct Param {
    ir::ValueId value;
    std::string name;
    float* data;  // the graph constant's storage
    float* grad;  // dL/d(param) after backward()
    int64_t size;
  };

  // Throws Error naming the first node it cannot train.
  Network(ir::Graph& graph, const NetworkOptions& options);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // x: float [batch, sample shape...] contiguous, 1 <= batch <= max_batch. Returns the graph
  // output [batch, classes], valid until the next forward().
  const Tensor& forward(const float* x, int64_t batch, const ForwardOptions& options);
  // A graph with several inputs: xs[i] feeds graph input i ([batch, sample_sizes()[i]]
  // contiguous, valid until backward() returns). input_grad is the first input's.
  const Tensor& forward(const std::vector<const float*>& xs, int64_t batch,
                        const ForwardOptions& options);

  // dy: dL/d(output) [batch, classes] of the last forward(), which must have been a training
  // pass. Overwrites every Param::grad.
  void backward(const float* dy);

  const std::vector<Param>& params() const { return params_; }
  int64_t param_count() const;
  // dL/d(input) of the last backward() (only with NetworkOptions::input_grad).
  const float* input_grad() const;
  int64_t max_batch() const { return max_batch_; }
  int64_t classes() const { return classes_; }
  // Elements of one sample of the graph input.
  int64_t sample_size() const { return sample_size_; }
  // Elements of one sample of each graph input, in the graph's input order.
  const std::vector<int64_t>& sample_sizes() const { return sample_sizes_; }
  // Value v of the last forward() ([batch, ...] contiguous; nullptr for constants), and dL/dv of
  // the last backward() (nullptr when v needs no gradient: nothing trainable upstream, or the
  // graph input without input_grad). Read by the sensitivity proxies (eval/sensitivity_proxy.h).
  const float* activation(ir::ValueId v) const { return act_[v]; }
  const float* value_grad(ir::ValueId v) const { return requires_grad_[v] ? grad_[v] : nullptr; }

 private:
  struct Step;
  void prepare_shapes(int64_t batch);
  float* grad_begin(ir::ValueId v, int64_t numel, bool* accumulate);
  void grad_end(ir::ValueId v, int64_t numel, float* written, bool accumulate);
  void forward_step(Step& s, const ForwardOptions& options);
  void backward_step(Step& s);

  ir::Graph& graph_;
  int64_t max_batch_;
  bool input_grad_;
  int64_t classes_ = 0;
  int64_t sample_size_ = 0;
  std::vector<int64_t> sample_sizes_;
  std::vector<Step> steps_;
  std::vector<Param> params_;
  // Per value: storage for max_batch (empty for constants and aliases), the pointer the
  // current pass uses, and the same for gradients.
  std::vector<Tensor> act_store_, grad_store_;
  std::vector<float*> act_, grad_;
  std::vector<ir::ValueId> grad_root_;  // the value whose grad buffer v's gradient lives in
  std::vector<bool> requires_grad_;
  std::vector<bool> grad_written_;  // per grad root, during backward()
  Tensor scratch_;                  // gradient contributions that must be added
  std::vector<Shape> shapes_;
  int64_t batch_ = 0;
  bool last_training_ = false;
  Tensor output_store_, output_;
};

}  // namespace qsearch::train
