// Builds small ONNX models in memory for the importer tests (onnx_test links the ONNX library).
//
//   ModelBuilder b;                          // opset 13, input "x" of shape [batch, 4]
//   b.init("w", {4, 4}, std::vector<float>(16, 0.5f));
//   auto& n = b.node("Gemm", {"x", "w"}, {"y"}, "/fc/Gemm");
//   set_int(n, "transB", 1);
//   b.output("y");
//   ir::Graph g = onnx::import_model_bytes(b.bytes(), "test.onnx");
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace qsearch::onnx::testing {

namespace pb = ::onnx;

inline pb::AttributeProto& add_attr(pb::NodeProto& n, const std::string& name,
                                    pb::AttributeProto::AttributeType type) {
  pb::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return *a;
}
inline void set_int(pb::NodeProto& n, const std::string& name, int64_t v) {
  add_attr(n, name, pb::AttributeProto::INT).set_i(v);
}
inline void set_float(pb::NodeProto& n, const std::string& name, float v) {
  add_attr(n, name, pb::AttributeProto::FLOAT).set_f(v);
}
inline void set_string(pb::NodeProto& n, const std::string& name, const std::string& v) {
  add_attr(n, name, pb::AttributeProto::STRING).set_s(v);
}
inline void set_ints(pb::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  auto& a = add_attr(n, name, pb::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
}

inline void fill_tensor(pb::TensorProto* t, const std::string& name,
                        const std::vector<int64_t>& dims, const std::vector<float>& v) {
  t->set_name(name);
  t->set_data_type(pb::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float x : v) t->add_float_data(x);
}
inline void fill_tensor(pb::TensorProto* t, const std::string& name,
                        const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  t->set_name(name);
  t->set_data_type(pb::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t x : v) t->add_int64_data(x);
}

class ModelBuilder {
 public:
  // dims: -1 = the symbolic batch ("batch"), else a fixed size.
  explicit ModelBuilder(int opset = 13, std::vector<int64_t> input_dims = {-1, 4},
                        const std::string& input = "x") {
    m_.set_ir_version(opset >= 15 ? 8 : 7);
    m_.set_producer_name("qsearch-test");
    auto* op = m_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    m_.mutable_graph()->set_name("test");
    add_input(input, input_dims);
  }

  void add_input(const std::string& name, const std::vector<int64_t>& dims,
                 int32_t dtype = pb::TensorProto::FLOAT) {
    auto* vi = m_.mutable_graph()->add_input();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(dtype);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      if (d < 0) {
        shape->add_dim()->set_dim_param("batch");
      } else {
        shape->add_dim()->set_dim_value(d);
      }
    }
  }

  template <typename T>
  void init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<T>& v) {
    fill_tensor(m_.mutable_graph()->add_initializer(), name, dims, v);
  }

  pb::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& outputs, const std::string& name = "") {
    pb::NodeProto* n = m_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }

  // A Constant node producing an int64 tensor.
  void constant(const std::string& out, const std::vector<int64_t>& dims,
                const std::vector<int64_t>& v) {
    auto& n = node("Constant", {}, {out}, "/Constant_" + out);
    auto& a = add_attr(n, "value", pb::AttributeProto::TENSOR);
    fill_tensor(a.mutable_t(), out, dims, v);
  }

  // A float graph output of `rank` dims of unknown size (the checker wants a shape field).
  void output(const std::string& name, int rank = 2) {
    auto* vi = m_.mutable_graph()->add_output();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(pb::TensorProto::FLOAT);
    auto* shape = tt->mutable_shape();
    for (int i = 0; i < rank; ++i) shape->add_dim();
  }

  pb::ModelProto& model() { return m_; }
  std::string bytes() const { return m_.SerializeAsString(); }

 private:
  pb::ModelProto m_;
};

}  // namespace qsearch::onnx::testing
