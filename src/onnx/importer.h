// Internal to src/onnx: the state of one import (import.h is the public API).
//
// Every ONNX name maps to an Entry: an activation (an ir::Value computed by the graph), a float32
// constant (initializer, Constant node or folded value; it becomes an ir constant Value only when
// an ir::Node reads it), a symbolic int64 tensor of a shape computation, or an output qsearch does
// not compute (BatchNormalization's running statistics, Dropout's mask, ...).
//
// Shape computations are folded at import: an int64 element is a known integer, k * N (N = the
// batch size, the one thing not known until run time) or unknown (arithmetic that left these
// forms). The batch multiple of a dim is found by inferring the concrete shapes of the graph built
// so far at batch sizes 1, 2 and 3 (shapes_), node by node as nodes are added.
#pragma once

#include <onnx/onnx_pb.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "onnx/import.h"
#include "quant/assignment.h"

namespace qsearch::onnx::detail {

namespace pb = ::onnx;

// One element of an int64 shape computation.
struct SymDim {
  enum class Kind : uint8_t { kKnown, kBatch, kUnknown };
  Kind kind = Kind::kKnown;
  int64_t value = 0;  // the integer (kKnown) or the multiplier of N (kBatch)

  static SymDim known(int64_t v) { return {Kind::kKnown, v}; }
  static SymDim batch(int64_t k = 1) { return {Kind::kBatch, k}; }
  static SymDim unknown() { return {Kind::kUnknown, 0}; }
  bool is_known() const { return kind == Kind::kKnown; }
  std::string str() const;  // "3", "N", "2N", "?"
};

// An int64 tensor of a shape computation: concrete shape, row-major elements.
struct SymTensor {
  Shape shape;
  std::vector<SymDim> elems;
  bool all_known() const;
  std::string str() const;  // "[N, 784]"
};

struct Entry {
  enum class Kind : uint8_t { kActivation, kFloatConst, kSym, kUnavailable };
  Kind kind = Kind::kActivation;
  ir::ValueId value = ir::kNoValue;  // the activation, or the float constant once materialized
  Tensor data;                       // kFloatConst
  SymTensor sym;                     // kSym
  std::string why;                   // kUnavailable: what the output was
  // kActivation only: the output of a constant zero Pad of `value`'s spatial dims (top, left,
  // bottom, right), not yet an ir node: the Conv or AveragePool reading it adds the pads to its
  // own; any other reader is an error (op_pad).
  std::optional<std::array<int64_t, 4>> zero_pad;
  // kUnavailable only: zeros of a batch-dependent shape (PyTorch's default GRU / LSTM state, a
  // ConstantOfShape and its Slices); a GRU / LSTM reads it as an omitted initial state
  // (import_rnn.cc).
  bool batch_zeros = false;
  // batch_zeros made by the ConstantOfShape itself (not a Slice of it): its shape, e.g. [N, 7, 8]
  // for torch's zeros_like of a [N, 7, 8] activation (batch_zeros_as_scalar).
  std::vector<SymDim> fill_shape;
};

// ---- proto helpers (proto.cc) -------------------------------------------------------------------
// "FLOAT", "INT64", ... for messages.
std::string dtype_str(int32_t onnx_type);
// Elements of a TensorProto's dims, checked: dims >= 0 and at most `max_elems` elements.
int64_t tensor_numel(const pb::TensorProto& t, int64_t max_elems);
// A float32 tensor from a FLOAT TensorProto. `what` names it in errors ("initializer 'w'").
Tensor float_tensor(const pb::TensorProto& t, const std::string& what);
// Frees the tensor's element data (raw_data and the typed fields; name, dtype and dims stay),
// once it has been converted.
void release_data(pb::TensorProto& t);
// Large initializers read from a model file straight into Tensors (import_lift.cc): the parsed
// proto keeps a short marker as their raw_data, and float_tensor / int_tensor read the Tensor.
struct LiftedData {
  std::unordered_map<std::string, Tensor> tensors;  // by marker
};
// Parses the model file `fd` (`size` bytes) into `model`, each initializer's raw_data of 64 KiB
// and more read into `lifted` instead of the proto. False if the bytes are not a well-formed
// message (nothing lifted; the caller parses the file with protobuf to report it).
bool parse_lifting(int fd, uint64_t size, const std::string& path, pb::ModelProto& model,
                   LiftedData& lifted);
// Makes `lifted` the data that the proto helpers on this thread resolve markers with.
class LiftScope {
 public:
  explicit LiftScope(LiftedData& lifted);
  ~LiftScope();
  LiftScope(const LiftScope&) = delete;
  LiftScope& operator=(const LiftScope&) = delete;

 private:
  LiftedData* previous_;
};
// The lifted data of `t` (a view of its raw_data's bytes as float32), or null.
const Tensor* lifted_data(const pb::TensorProto& t);
// Drops the scope's reference to `t`'s lifted data (release_data).
void forget_lifted(const pb::TensorProto& t);
// Puts the lifted data back into the initializers' raw_data (before ONNX's version converter).
void restore_lifted(pb::ModelProto& model);
// True for INT64/INT32/BOOL tensors (shape-computation data and flags).
bool is_int_tensor(const pb::TensorProto& t);
// The elements of an INT64/INT32/BOOL TensorProto as known SymDims.
SymTensor int_tensor(const pb::TensorProto& t, const std::string& what);
// Throws Error if any tensor of the model (initializers, attributes, subgraphs, functions) keeps
// its data in an external file or is sparse.
void check_self_contained(const pb::ModelProto& m, const std::string& source);

// Converts a model of opset kMinConvertibleOpset..kMinOpset-1 to kConvertOpset in place (ONNX's
// version converter); other models are left alone. A failed conversion is an Error naming the file.
void upgrade_old_opset(pb::ModelProto& model, const std::string& source);

// Opsets kMaxOpset+1..kMaxNewerOpset (import_newer_opsets.cc): the model is relabelled kMaxOpset
// after every change of those opsets to an imported operator is checked (what qsearch cannot run
// is an Error naming the node, the opset and the fix). The importer reads the few newer node
// forms itself (Gelu, Split's num_outputs, ...); `stand_ins` are their opset-17 forms for the
// ONNX checker (node index, node), swapped in by a CheckerView while it runs.
struct NewerOpset {
  int file_opset = 0;  // 0: not a newer opset
  std::vector<std::pair<int, pb::NodeProto>> stand_ins;
};
NewerOpset downgrade_newer_opset(pb::ModelProto& model, const std::string& source);
// Opset 18's Pad `axes` input: the pads of those axes spread over all `rank` dims (zeros
// elsewhere). Throws Error for an axis out of range, a repeated one, or a pads count that does
// not match.
std::vector<int64_t> pads_of_axes(const std::vector<int64_t>& pads, std::vector<int64_t> axes,
                                  size_t rank);
// Opset 18's Resize `axes` attribute, normalized to 0..rank-1 (absent: every dim); a repeated or
// out-of-range axis is an Error.
std::vector<int64_t> resize_axes(std::vector<int64_t> axes, bool given, size_t rank);
class CheckerView {
 public:
  CheckerView(pb::ModelProto& model, NewerOpset& newer);
  ~CheckerView();
  CheckerView(const CheckerView&) = delete;
  CheckerView& operator=(const CheckerView&) = delete;

 private:
  void swap();
  pb::ModelProto& model_;
  NewerOpset& newer_;
};

// ---- folding (fold.cc) --------------------------------------------------------------------------
// Numpy broadcasting of two shapes; throws Error if they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Element-wise a (op) b with broadcasting, op in "+-*/".
Tensor fold_binary(char op, const Tensor& a, const Tensor& b);
SymTensor fold_binary(char op, const SymTensor& a, const SymTensor& b);
// out[i] = f(x[i]).
template <typename F>
Tensor fold_unary(const Tensor& x, F f) {
  Tensor out(x.shape(), DType::kFloat32);
  const float* p = x.data<float>();
  float* q = out.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) q[i] = f(p[i]);
  return out;
}
// Equal / Where of shape computations (booleans are known 0 / 1; a batch multiple k*N, k > 0,
// differs from every known value below 1, which is how PyTorch's expand(-1) export tests it).
SymTensor fold_equal(const SymTensor& a, const SymTensor& b);
SymTensor fold_where(const SymTensor& cond, const SymTensor& a, const SymTensor& b);
Tensor fold_transpose(const Tensor& x, const std::vector<int64_t>& perm);
Tensor fold_concat(const std::vector<Tensor>& xs, int64_t axis);
SymTensor fold_concat(const std::vector<SymTensor>& xs, int64_t axis);
// Output shape of Unsqueeze (axes index the output) / Squeeze (empty axes: every 1-dim).
Shape unsqueeze_shape(const Shape& in, std::vector<int64_t> axes);
Shape squeeze_shape(const Shape& in, std::vector<int64_t> axes);
// Reshape target with ONNX semantics (0 copies, -1 inferred) applied to a concrete shape.
Shape reshape_shape(const Shape& in, const std::vector<int64_t>& target, bool allowzero);

// ---- the importer (import.cc, import_ops.cc) ---------------------------------------------------
class Importer {
 public:
  // `model` is the caller's to give: as each float initializer becomes a Tensor, its data in the
  // proto is freed, so that an import holds one copy of the weights, not two.
  Importer(pb::ModelProto& model, std::string source, const ImportOptions& options = {});
  ir::Graph run();

 private:
  // import.cc: model level.
  void read_initializers();
  void read_input();
  void read_graph_input(const pb::ValueInfoProto& in);
  void read_outputs();
  void import_node(const pb::NodeProto& node, int index);
  void apply_config_names();

  // Entries.
  Entry& entry(const std::string& name);
  bool present(int k) const;  // input k of the current node is given (not omitted)
  Entry& in(int k);
  bool is_const(const Entry& e) const {
    return e.kind == Entry::Kind::kFloatConst || e.kind == Entry::Kind::kSym;
  }
  // Input k as an ir value (activation, or a float constant materialized on first use).
  ir::ValueId ir_input(int k);
  // Input k as an ir value; a folded int64 tensor (all known) becomes an ir constant of `dtype`
  // (int64 / int32, bool as uint8 0 / 1, or float32).
  ir::ValueId ir_input_as(int k, DType dtype);
  // The element type input k has (or would have) as an ir value: an activation's own, int64 for
  // a folded shape computation, float32 for a float constant.
  DType dtype_of_entry(int k);
  // The dtype inputs [from, to) share as ir values (see op_equal / op_where).
  DType common_dtype(int from, int to);
  // Input k as a float constant / a folded int64 tensor; fails naming `role` otherwise.
  const Tensor& const_float(int k, const char* role);
  const SymTensor& const_sym(int k, const char* role);
  std::vector<int64_t> const_ints(int k, const char* role);
  void define(const std::string& name, Entry e);
  void define_output(int k, Entry e);
  // Marks outputs k.. of the current node as not computed by qsearch.
  void mark_unavailable(int from, const std::string& why);

  // The graph and its shapes.
  ir::ValueId add_value(const std::string& name);
  // Adds an ir node writing output `out` (default 0) of the current ONNX node; with `step`, an
  // intermediate value named `<output>~<step>` of a node that imports as several (not defined).
  ir::ValueId add_ir_node(ir::OpKind kind, ir::Attrs attrs, std::vector<ir::ValueId> inputs,
                          int out = 0, const char* step = nullptr);
  // Concrete shape of an ir value at batch 1 and its symbolic form.
  const Shape& shape1(ir::ValueId v) const { return shapes_[0][v]; }
  std::vector<SymDim> sym_shape(ir::ValueId v) const;

  // Attributes of the current node.
  const pb::AttributeProto* attr(const char* name) const;
  int64_t attr_int(const char* name, int64_t def) const;
  float attr_float(const char* name, float def) const;
  std::string attr_string(const char* name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const char* name) const;
  bool has_attr(const char* name) const { return attr(name) != nullptr; }

  template <typename... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) const {
    fail("node '{}' ({}): {}", node_name_, node_->op_type(),
         fmt::format(format, std::forward<Args>(args)...));
  }

 public:
  // import_ops.cc: one function per ONNX op; each reads node_ and defines its outputs.
  void op_gemm_matmul();
  void op_binary();
  void op_unary();
  void op_clip();
  void op_softmax();
  void op_conv();
  void op_conv1d();
  void op_cnn_unary();          // GlobalMaxPool, HardSigmoid, HardSwish (import_cnn.cc)
  void op_resize();             // import_cnn.cc
  void op_conv_transpose();     // import_cnn.cc
  void op_conv_transpose_1d();  // import_conv_transpose_nd.cc
  void op_conv_transpose_3d();  // import_conv_transpose_nd.cc
  // True when value is read only by Conv / AveragePool nodes, directly or through at most 4
  // Pads, and is no graph output.
  bool only_window_readers(const std::string& value, int depth = 0) const;
  void op_batchnorm();
  void op_pool();
  void op_pool_nd(int spatial);  // 1-D and 3-D MaxPool / AveragePool (import_pool_nd.cc)
  void op_conv3d();              // import_conv3d.cc
  // Output size of a window over `in` (kernel k, stride s, dilation d, pads pb / pe).
  int64_t window_rows(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) const;
  void op_global_average_pool();
  void op_flatten();
  void op_reshape();
  void op_transpose();
  void op_concat();
  void op_identity_dropout();
  void op_constant();
  void op_shape();
  void op_gather();
  void op_unsqueeze_squeeze();
  void op_slice();
  void op_cast();
  void op_constant_of_shape();
  void op_pad();
  void op_reduce();
  void op_layer_norm();
  void op_split();
  void op_equal();
  void op_where();
  void op_expand();
  void op_not_and();
  void op_rnn();   // GRU, LSTM (import_rnn.cc)
  void op_gelu();  // opset 20 (import_newer_opsets.cc)
  // Input k is a batch_zeros entry (see Entry).
  bool batch_zeros_input(int k) const;
  // ConstantOfShape of zeros whose shape depends on the batch: defines output 0 as batch_zeros
  // and returns true; false for anything else.
  bool batch_zero_fill();
  // Defines output 0 as batch_zeros.
  void mark_batch_zeros();
  // Input k of an elementwise op of n inputs (Where, Add, Sub, Mul, Div) is batch_zeros made by
  // a ConstantOfShape (torch's zeros_like(x)) and the numpy broadcast of the other inputs has
  // exactly its shape: the zeros change no shape, so they are the scalar 0 of `dtype`, returned
  // as a constant; ir::kNoValue otherwise (the input stays refused).
  ir::ValueId batch_zeros_as_scalar(int k, int n, DType dtype);

 private:
  // Pads for auto_pad SAME_UPPER/SAME_LOWER/VALID, or the pads attribute (NOTSET).
  std::array<int64_t, 4> window_pads(ir::ValueId x, const std::array<int64_t, 2>& kernel,
                                     const std::array<int64_t, 2>& strides,
                                     const std::array<int64_t, 2>& dilations);
  std::array<int64_t, 2> pair_attr(const char* name, int64_t def, int64_t lo) const;
  // Input 0 of a Conv / AveragePool as an ir value, with the pads of a zero Pad folded into it
  // added to `pads` (nothing when input 0 is no such Pad's output).
  ir::ValueId window_input(std::array<int64_t, 4>& pads);

  const pb::ModelProto& model_;
  const pb::GraphProto& graph_;
  std::string source_;
  ImportOptions options_;
  int opset_ = 0;
  ir::Graph g_;
  std::unordered_map<std::string, Entry> env_;
  std::unordered_map<std::string, pb::TensorProto*> initializers_;
  std::map<std::string, int> node_names_;     // ir node names in use
  std::array<std::vector<Shape>, 3> shapes_;  // every ir value at batch 1, 2, 3
  int64_t file_batch_ = 0;                    // > 0: the file fixed the batch size
  const pb::NodeProto* node_ = nullptr;       // the node being imported
  std::string node_name_;
};

// Import-time fusions (import_fuse.cc), run on the whole graph after the nodes are imported:
// PyTorch's LayerNorm decomposition (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, then
// Mul scale and Add bias) becomes one LayerNorm node; the exact GELU (Div sqrt 2 / Mul 1/sqrt 2,
// Erf, Add 1, Mul x, Mul 0.5) and the tanh GELU (x^3 by Pow 3 or Mul x x, Mul 0.044715, Add x,
// Mul sqrt(2/pi), Tanh, Add 1, Mul x, Mul 0.5) become one Gelu node. A chain is fused only when
// every intermediate is read by the chain alone and is no graph output, and every constant is the
// expected value (within 1e-6 relative); anything else keeps its nodes. Returns the number of
// fusions.
int fuse_patterns(ir::Graph& g);

// ---- QONNX (import_qonnx.cc) --------------------------------------------------------------------
// One QONNX Quant node of a model, as strip_qonnx() found it.
struct QonnxRecord {
  std::string node;           // its name
  std::string input, output;  // x and y (input: after earlier QONNX nodes were removed)
  quant::FixedFormat format;  // width, frac = -log2(scale), signed
  quant::Rounding rounding = quant::Rounding::kHalfToEven;
  bool on_constant = false;  // x is an initializer or a Constant node's output
  std::string producer;      // the node writing x ("" for the graph input or a constant)
  bool producer_is_qonnx = false;
  bool sole_reader = false;      // nothing else reads x (in the file)
  bool graph_output = false;     // y is a graph output
  bool feeds_qonnx = false;      // y is read by another QONNX node
  bool marked_data_out = false;  // listed under kQonnxDataOutKey by qsearch's export
  std::vector<std::pair<std::string, int>> consumers;  // (node, input index) reading y
};
struct QonnxRecords {
  std::vector<QonnxRecord> records;
};
// Metadata key where qsearch's QONNX export lists the Quant nodes that are a data_out.
inline constexpr const char* kQonnxDataOutKey = "qsearch.qonnx_data_out";
// Removes the QONNX nodes (domains qonnx.custom_op.general, onnx.brevitas, finn.custom_op.general)
// and their opset imports from `model`, rewiring their readers to their inputs; unnamed nodes get
// node_label() names first. Errors name the node (scales that are not powers of two, ...).
QonnxRecords strip_qonnx(pb::ModelProto& model);
// The formats the records give the nodes of the imported graph, keyed by config name.
quant::QuantAssignment qonnx_assignment(const ir::Graph& g, const QonnxRecords& records);
// import_model_bytes / import_model, filling `qonnx` (may be null) with the QONNX nodes they
// removed. A file is parsed straight from disk (no copy of its bytes).
ir::Graph import_bytes(std::string_view bytes, const std::string& source, QonnxRecords* qonnx,
                       const ImportOptions& options);
ir::Graph import_file(const std::string& path, QonnxRecords* qonnx, const ImportOptions& options);
// read_graph_inputs' walk of the file (import_lift.cc): the graph's inputs and initializer names.
bool read_declared_inputs(int fd, uint64_t size, const std::string& path,
                          std::vector<pb::ValueInfoProto>& inputs,
                          std::vector<std::string>& initializers);

// Ops the importer accepts (ir ops plus those of shape computations), for messages.
const std::vector<std::string>& supported_ops();

}  // namespace qsearch::onnx::detail
