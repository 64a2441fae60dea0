// Graph: the intermediate representation every module after import works on.
//
// A Graph owns Values (tensors: graph inputs, constants, intermediates) and Nodes (ops) that
// refer to values by integer id. Nodes are kept in topological order. Constants (ONNX
// initializers and Constant nodes) are Values with data; they are never nodes.
//
//   Graph g;
//   ValueId x = g.add_input("x", {kDynamic, 784});
//   ValueId w = g.add_constant("fc1.weight", Tensor({256, 784}, DType::kFloat32));
//   ValueId y = g.add_value("y");
//   g.add_node(Node{OpKind::kGemm, "/fc1/Gemm", {x, w}, {y}, GemmAttrs{.trans_b = true}});
//   g.mark_output(y);
//   g.finalize();   // topological sort, config names, shape inference, verify()
//
// Shapes of non-constant values are symbolic in the batch: kDynamic marks dims that scale with
// the batch. infer_shapes(batch) gives concrete shapes for one batch size.
//
// A trial never mutates a Graph (see runtime/plan.h); training updates constants in place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/ops.h"

namespace qsearch::ir {

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr ValueId kNoValue = -1;

struct Value {
  std::string name;
  Shape shape;  // kDynamic where the dim scales with the batch
  DType dtype = DType::kFloat32;
  Tensor data;  // non-empty for constants
  NodeId producer = -1;
  bool is_constant() const { return !data.empty(); }
};

struct Node {
  OpKind kind;
  std::string name;  // unique; the ONNX node name when imported ("/fc1/Gemm")
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  Attrs attrs;
  // Readable unique key used by configs and reports ("fc1", "seq_blocks_2"); set by
  // finalize() from `name` when empty. See assign_config_names().
  std::string config_name;
};

class Graph {
 public:
  ValueId add_input(std::string name, Shape shape, DType dtype = DType::kFloat32);
  ValueId add_constant(std::string name, Tensor data);
  ValueId add_value(std::string name);  // an intermediate; shape filled by inference
  NodeId add_node(Node node);
  void mark_output(ValueId v);

  // Topologically sorts nodes, assigns config names, infers symbolic shapes, then verify().
  // Throws Error on cycles, dangling inputs, or shapes that do not fit an op.
  void finalize();

  const Value& value(ValueId id) const { return values_.at(id); }
  Value& value(ValueId id) { return values_.at(id); }
  const Node& node(NodeId id) const { return nodes_.at(id); }
  Node& node(NodeId id) { return nodes_.at(id); }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<ValueId>& inputs() const { return inputs_; }
  const std::vector<ValueId>& outputs() const { return outputs_; }

  std::optional<ValueId> find_value(const std::string& name) const;
  // By config name, else by node name.
  const Node* find_node(const std::string& name) const;
  // Nodes that read value v, in graph order.
  std::vector<NodeId> consumers(ValueId v) const;

  // Concrete shape of every value for a batch size (index = ValueId). Throws Error if an op's
  // inputs do not fit it.
  std::vector<Shape> infer_shapes(int64_t batch) const;

  // Structural checks: ids in range, one producer per value, topological order, input counts
  // and attribute sanity per op. Throws Error naming the node.
  void verify() const;

  // Deep copy (constants cloned), for training a copy without touching the original.
  Graph clone() const;

 private:
  void topo_sort();
  void assign_config_names();
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<ValueId> inputs_;
  std::vector<ValueId> outputs_;
};

// Concrete output shape of one node from the concrete shapes of its inputs: inputs[k] is the
// shape of n.inputs[k], nullptr for an omitted optional input. Checks the op's shape contract and
// its window attributes, and that the output has at most 2^48 elements; throws Error naming the
// node otherwise. infer_shapes() applies it to every node in order; the ONNX importer calls it
// while it builds a graph.
Shape infer_node_shape(const Node& n, const std::vector<const Shape*>& inputs);

// Element type of one node's output from its inputs' (an omitted optional input is passed as
// float32): float32 for arithmetic, which needs float32 inputs; Cast gives its `to`; Equal, Not
// and And give bool (uint8); Where, Gather, views, Slice, Expand, Transpose and Concat keep their
// data's dtype. Throws Error naming the node for an input of the wrong dtype (e.g. int64 ids into
// a MatMul: "Cast them to float").
DType infer_node_dtype(const Node& n, const std::vector<DType>& inputs);

// ReduceMean / ReduceSum / ReduceMax: the reduced dims [begin, end) of a rank-`rank` input
// (axes normalised; no axes = every dim). Throws Error naming the node when an axis is out of
// range or the axes are not consecutive.
struct ReduceRange {
  int begin = 0, end = 0;
};
ReduceRange reduce_range(const Node& n, const ReduceAttrs& attrs, int rank);
// The reduced dims of a rank-`rank` input, normalised and sorted, any set of them (no axes =
// every dim). Throws Error naming the node for an axis out of range or listed twice.
std::vector<int> reduce_axes(const Node& n, const ReduceAttrs& attrs, int rank);

// Slice: per input dim, the first index, the step and the number of elements taken (ONNX
// clamping of starts/ends applied to the concrete shape `x`). Throws Error naming the node for
// a bad axis or a zero step.
struct SliceDim {
  int64_t start = 0, step = 1, count = 0;
};
std::vector<SliceDim> resolve_slice(const Node& n, const Shape& x);

// Removes the nodes with drop[i] (indices into nodes()); their outputs become values nothing
// produces. For import-time fusions that replace a chain of nodes by one.
void remove_nodes(Graph& g, const std::vector<bool>& drop);

// MASE's op type for a node: "linear" for Gemm/MatMul whose weight operand is a constant,
// "conv1d"/"conv2d" (by weight rank), "relu", "add", "batch_norm1d"/"batch_norm2d" (by input
// rank), ...
std::string mase_op(const Graph& g, const Node& n);

// Index of the weight input for linear/conv nodes (1), or -1 when the node has none.
int weight_input(const Graph& g, const Node& n);

// PyTorch exports an nn.Linear on an input of rank > 2 (a transformer's projections) as
// MatMul(x, W^T) then Add(., b). The bias Add of MatMul node n, which MASE's `linear` owns (its
// bias_* keys quantize b): n is a linear (weight_input >= 0) whose output is no graph output and
// is read only by one Add, whose other operand is a float32 constant of shape [N] or
// [1, .., 1, N] (N = W's columns, rank at most the output's). -1 for any other node.
NodeId linear_bias_add(const Graph& g, const Node& n);
// For an Add: the MatMul whose linear_bias_add() it is, else -1. mase_op() calls such an Add
// "linear_bias" (no quantizable op of its own: it is part of the linear).
NodeId bias_add_owner(const Graph& g, const Node& add);
// For the bias Add `add` of a linear: the index (0 or 1) of its input holding the bias.
int bias_add_operand(const Graph& g, const Node& add);

// Number of elements in the node's constant inputs (weights, biases, BN statistics).
int64_t param_count(const Graph& g, const Node& n);

// Multiply-accumulates of one sample through the node (0 for ops without products).
// Conv: out_elems * (C_in / group) * kH * kW; ConvTranspose: in_elems * (C_out / group) * kH *
// kW; Gemm/MatMul: M * N * K per sample.
int64_t macs_per_sample(const Graph& g, const Node& n);

// Human-readable listing (one line per node), used by `qsearch inspect`.
std::string to_string(const Graph& g);

}  // namespace qsearch::ir
