// TensorProto conversion and model-wide tensor checks.
#include <malloc.h>

#include <algorithm>
#include <cstring>

#include "onnx/importer.h"

namespace qsearch::onnx::detail {

namespace {
// Constants larger than this are certainly not part of a model qsearch can run; refusing them
// before allocating keeps a corrupt header from asking for terabytes.
constexpr int64_t kMaxConstElements = int64_t{1} << 31;
// Shape computations hold a few integers; this is generous.
constexpr int64_t kMaxSymElements = int64_t{1} << 16;
}  // namespace

std::string SymDim::str() const {
  switch (kind) {
    case Kind::kKnown:
      return std::to_string(value);
    case Kind::kBatch:
      return value == 1 ? "N" : fmt::format("{}N", value);
    case Kind::kUnknown:
      break;
  }
  return "?";
}

bool SymTensor::all_known() const {
  for (const SymDim& d : elems) {
    if (!d.is_known()) return false;
  }
  return true;
}

std::string SymTensor::str() const {
  std::string s = "[";
  for (size_t i = 0; i < elems.size(); ++i) {
    if (i) s += ", ";
    s += elems[i].str();
  }
  return s + "]";
}

std::string dtype_str(int32_t onnx_type) {
  if (pb::TensorProto_DataType_IsValid(onnx_type)) {
    return pb::TensorProto_DataType_Name(static_cast<pb::TensorProto_DataType>(onnx_type));
  }
  return fmt::format("dtype {}", onnx_type);
}

int64_t tensor_numel(const pb::TensorProto& t, int64_t max_elems) {
  // The bound also holds with zero dims counted as 1, so that a zero-size tensor cannot carry
  // dims whose products (strides, folded shapes) overflow.
  int64_t n = 1, bound = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) fail("tensor '{}' has a negative dimension {}", t.name(), d);
    if (__builtin_mul_overflow(bound, std::max<int64_t>(d, 1), &bound) || bound > max_elems) {
      fail("tensor '{}' has more than {} elements", t.name(), max_elems);
    }
    n *= d;
  }
  return n;
}

namespace {

Shape tensor_shape(const pb::TensorProto& t) { return Shape(t.dims().begin(), t.dims().end()); }

void check_plain(const pb::TensorProto& t, const std::string& what) {
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    fail(
        "{} keeps its data in an external file; qsearch reads self-contained models (save with "
        "onnx.save_model(model, path, save_as_external_data=False))",
        what);
  }
  if (t.has_segment()) fail("{} is a segmented tensor, which qsearch does not read", what);
}

// The bytes of raw_data: the proto's, or the lifted Tensor's (import_lift.cc).
std::string_view raw_bytes(const pb::TensorProto& t) {
  if (const Tensor* lifted = lifted_data(t)) {
    return {static_cast<const char*>(lifted->raw()), lifted->nbytes()};
  }
  return t.raw_data();
}

void check_raw_size(size_t bytes, int64_t n, size_t elem_bytes, const std::string& what) {
  if (bytes != static_cast<size_t>(n) * elem_bytes) {
    fail("{} has {} bytes of data, expected {} ({} elements of {} bytes)", what, bytes,
         static_cast<size_t>(n) * elem_bytes, n, elem_bytes);
  }
}

// Copies `n` little-endian elements of type T from raw_data or from the typed field.
template <typename T, typename Field>
std::vector<T> elements(const pb::TensorProto& t, int64_t n, const Field& field,
                        const std::string& what) {
  std::vector<T> out(static_cast<size_t>(n));
  if (t.has_raw_data()) {
    const std::string_view raw = raw_bytes(t);
    check_raw_size(raw.size(), n, sizeof(T), what);
    if (n > 0) std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  } else {
    if (field.size() != n) fail("{} has {} values, expected {}", what, field.size(), n);
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(field.Get(static_cast<int>(i)));
  }
  return out;
}

}  // namespace

Tensor float_tensor(const pb::TensorProto& t, const std::string& what) {
  check_plain(t, what);
  if (t.data_type() != pb::TensorProto::FLOAT) {
    fail("{} has dtype {}; qsearch supports float32 tensors (int64 only for shape inputs)", what,
         dtype_str(t.data_type()));
  }
  int64_t n = tensor_numel(t, kMaxConstElements);
  if (const Tensor* lifted = lifted_data(t)) {
    // Read from the file into this buffer (import_lift.cc): the weight exists once.
    check_raw_size(lifted->nbytes(), n, sizeof(float), what);
    return lifted->reshaped(tensor_shape(t));
  }
  Tensor out(tensor_shape(t), DType::kFloat32);
  if (t.has_raw_data()) {
    // Straight into the tensor: a weight is never held three times (proto, vector, tensor).
    check_raw_size(t.raw_data().size(), n, sizeof(float), what);
    if (n > 0) std::memcpy(out.raw(), t.raw_data().data(), static_cast<size_t>(n) * sizeof(float));
  } else {
    std::vector<float> v = elements<float>(t, n, t.float_data(), what);
    if (n > 0) std::memcpy(out.raw(), v.data(), v.size() * sizeof(float));
  }
  return out;
}

void release_data(pb::TensorProto& t) {
  forget_lifted(t);
  const size_t bytes = t.raw_data().capacity() + t.float_data().Capacity() * sizeof(float);
  std::string().swap(*t.mutable_raw_data());
  t.clear_raw_data();
  google::protobuf::RepeatedField<float>().Swap(t.mutable_float_data());
#ifdef __GLIBC__
  // The CLI keeps freed heap blocks for reuse (cli/app.cc), and a freed initializer in the middle
  // of the heap would stay resident next to the tensor that replaced it: return its pages, so
  // that an import holds about one copy of the weights (ResNet-18: 109 -> 75 MB peak RSS).
  if (bytes >= (size_t{1} << 20)) malloc_trim(0);
#endif
}

bool is_int_tensor(const pb::TensorProto& t) {
  return t.data_type() == pb::TensorProto::INT64 || t.data_type() == pb::TensorProto::INT32 ||
         t.data_type() == pb::TensorProto::BOOL;
}

SymTensor int_tensor(const pb::TensorProto& t, const std::string& what) {
  check_plain(t, what);
  if (!is_int_tensor(t)) {
    fail("{} has dtype {}; shape inputs must be int64", what, dtype_str(t.data_type()));
  }
  int64_t n = tensor_numel(t, kMaxSymElements);
  std::vector<int64_t> v;
  if (t.data_type() == pb::TensorProto::INT64) {
    v = elements<int64_t>(t, n, t.int64_data(), what);
  } else if (t.data_type() == pb::TensorProto::INT32) {
    std::vector<int32_t> w = elements<int32_t>(t, n, t.int32_data(), what);
    v.assign(w.begin(), w.end());
  } else {  // BOOL: one byte each in raw_data, else int32_data
    std::vector<uint8_t> w = elements<uint8_t>(t, n, t.int32_data(), what);
    v.assign(w.begin(), w.end());
  }
  SymTensor s;
  s.shape = tensor_shape(t);
  for (int64_t x : v) s.elems.push_back(SymDim::known(x));
  return s;
}

namespace {

void check_tensor_local(const pb::TensorProto& t, const std::string& source) {
  if (t.data_location() == pb::TensorProto::EXTERNAL) {
    fail(
        "'{}': tensor '{}' keeps its data in an external file; qsearch reads self-contained "
        "models (save with onnx.save_model(model, path, save_as_external_data=False))",
        source, t.name());
  }
}

void check_graph_local(const pb::GraphProto& g, const std::string& source, int depth);

void check_nodes_local(const google::protobuf::RepeatedPtrField<pb::NodeProto>& nodes,
                       const std::string& source, int depth) {
  for (const auto& n : nodes) {
    for (const auto& a : n.attribute()) {
      if (a.has_t()) check_tensor_local(a.t(), source);
      for (const auto& t : a.tensors()) check_tensor_local(t, source);
      if (a.has_sparse_tensor() || a.sparse_tensors_size() > 0) {
        fail("'{}': node '{}' has a sparse tensor attribute, which is not supported", source,
             n.name());
      }
      if (a.has_g()) check_graph_local(a.g(), source, depth + 1);
      for (const auto& sub : a.graphs()) check_graph_local(sub, source, depth + 1);
    }
  }
}

void check_graph_local(const pb::GraphProto& g, const std::string& source, int depth) {
  // Nested subgraphs (If/Loop bodies) are rejected later as unsupported ops; this walk only has
  // to keep the checker from opening external files named by them.
  if (depth > 64) fail("'{}': subgraphs are nested more than 64 deep", source);
  for (const auto& t : g.initializer()) check_tensor_local(t, source);
  if (g.sparse_initializer_size() > 0) {
    fail("'{}': sparse initializers are not supported", source);
  }
  check_nodes_local(g.node(), source, depth);
}

}  // namespace

void check_self_contained(const pb::ModelProto& m, const std::string& source) {
  check_graph_local(m.graph(), source, 0);
  for (const auto& f : m.functions()) check_nodes_local(f.node(), source, 1);
}

}  // namespace qsearch::onnx::detail
