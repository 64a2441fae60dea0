// Opsets 18-21 (issue 14; src/onnx/import_newer_opsets.cc): models in the newer node forms
// (tools/make_opset18_fixtures.py, tests/fixtures/newer_opsets/) import and reproduce PyTorch's
// outputs; what qsearch cannot run is refused naming the node, the opset and the fix; the ONNX
// checker still checks the rest of a newer model.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/json_file.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

namespace pb = ::onnx;
using ::testing::HasSubstr;
using testing::ModelBuilder;
using testing::set_int;
using testing::set_ints;
using testing::set_string;

const std::string kDir = std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/newer_opsets/";

const nlohmann::json& ref() {
  static const nlohmann::json j = test::read_json(kDir + "newer_ref.json");
  return j;
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& [name, m] : ref().at("models").items()) out.push_back(name);
  return out;
}

class NewerOpsetFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(NewerOpsetFixture, FloatMatchesPyTorch) {
  const auto& m = ref().at("models").at(GetParam());
  const ir::Graph g = import_model(kDir + m.at("file").get<std::string>());
  Tensor x(m.at("input_shape").get<Shape>(), DType::kFloat32);
  const std::vector<float> in = m.at("input").get<std::vector<float>>();
  ASSERT_EQ(static_cast<int64_t>(in.size()), x.numel());
  std::copy(in.begin(), in.end(), x.data<float>());
  const std::vector<double> want = m.at("float").get<std::vector<double>>();
  double scale = 1;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (bool reference : {false, true}) {
    runtime::PlanOptions o;
    o.mode = runtime::Mode::kFloat;
    o.max_batch = x.dim(0);
    o.use_reference_kernels = reference;
    runtime::Executor e(runtime::make_plan(g, o));
    const Tensor y = e.run(x).clone();
    ASSERT_EQ(y.shape(), m.at("output_shape").get<Shape>());
    double worst = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      worst = std::max(worst, std::fabs(y.data<float>()[i] - want[i]) / scale);
    }
    std::cout << fmt::format("[ newer ] {} float{}: worst |ours - torch| / scale {:.2e}\n",
                             GetParam(), reference ? " (ref kernels)" : "", worst);
    EXPECT_LE(worst, 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, NewerOpsetFixture, ::testing::ValuesIn(model_names()));

TEST(NewerOpsets, OnnxGeluIsTheIrGeluNamedAfterItsModule) {
  const ir::Graph g = import_model(kDir + "opset20_gelu.onnx");
  std::vector<std::string> gelus;
  for (const ir::Node& n : g.nodes()) {
    if (n.kind != ir::OpKind::kGelu) continue;
    gelus.push_back(fmt::format("{}:{}", n.config_name,
                                std::get<ir::GeluAttrs>(n.attrs).tanh ? "tanh" : "exact"));
  }
  EXPECT_EQ(gelus, (std::vector<std::string>{"act0:exact", "act1:tanh"}));
}

std::string import_error(const ModelBuilder& b) {
  try {
    import_model_bytes(b.bytes(), "m.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  return "(imported)";
}

// A [batch, 2, 4, 4] model whose one node is `op` on x, at `opset`.
ModelBuilder one_node(int opset, const std::string& op, std::vector<std::string> inputs,
                      pb::NodeProto** node) {
  ModelBuilder b(opset, {-1, 2, 4, 4});
  inputs.insert(inputs.begin(), "x");
  *node = &b.node(op, inputs, {"y"}, "/n/" + op);
  b.output("y", 4);
  return b;
}

TEST(NewerOpsets, WhatOpset17CannotExpressIsRefusedNamingTheNodeOpsetAndFix) {
  pb::NodeProto* n = nullptr;
  {
    ModelBuilder b = one_node(19, "Pad", {"pads"}, &n);
    b.init<int64_t>("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
    set_string(*n, "mode", "wrap");
    EXPECT_THAT(import_error(b), HasSubstr("node '/n/Pad' (Pad): mode 'wrap' (circular padding, "
                                           "new in opset 19) (opset 19), which qsearch does not "
                                           "run; re-export the model without it, or with "
                                           "opset_version=17"));
  }
  {
    ModelBuilder b = one_node(18, "Resize", {"", "scales"}, &n);
    b.init<float>("scales", {4}, {1, 1, 0.5f, 0.5f});
    set_string(*n, "mode", "linear");
    set_int(*n, "antialias", 1);
    EXPECT_THAT(import_error(b), HasSubstr("(Resize): antialias=1 (new in opset 18) (opset 18)"));
  }
  {
    ModelBuilder b = one_node(18, "Resize", {"", "", "sizes"}, &n);
    b.init<int64_t>("sizes", {2}, {8, 6});
    set_ints(*n, "axes", {2, 3});
    set_string(*n, "keep_aspect_ratio_policy", "not_larger");
    EXPECT_THAT(import_error(b), HasSubstr("keep_aspect_ratio_policy 'not_larger' with sizes"));
  }
  {
    ModelBuilder b = one_node(19, "Resize", {"", "scales"}, &n);
    b.init<float>("scales", {4}, {1, 1, 2, 2});
    set_string(*n, "coordinate_transformation_mode", "half_pixel_symmetric");
    EXPECT_THAT(import_error(b), HasSubstr("'half_pixel_symmetric' (new in opset 19) (opset 19)"));
  }
  {
    ModelBuilder b = one_node(21, "Cast", {}, &n);
    set_int(*n, "to", 22);  // INT4
    EXPECT_THAT(import_error(b), HasSubstr("has element type INT4 (ONNX IR 9+)"));
  }
  {
    ModelBuilder b = one_node(19, "Mul", {"s"}, &n);
    auto* t = b.model().mutable_graph()->add_initializer();
    t->set_name("s");
    t->set_data_type(17);  // FLOAT8E4M3FN
    t->set_raw_data(std::string(1, '\x38'));
    EXPECT_THAT(import_error(b),
                HasSubstr("'m.onnx' uses opset 19: initializer 's' has element type "
                          "FLOAT8E4M3FN (ONNX IR 9+), which qsearch does not run"));
  }
  {
    ModelBuilder b(18, {-1, 6});
    b.node("Split", {"x"}, {"a", "b"}, "/Split").add_attribute()->CopyFrom([] {
      pb::AttributeProto a;
      a.set_name("num_outputs");
      a.set_type(pb::AttributeProto::INT);
      a.set_i(3);
      return a;
    }());
    b.output("a");
    b.output("b");
    EXPECT_THAT(import_error(b), HasSubstr("num_outputs=3 but the node has 2 outputs"));
  }
  {
    ModelBuilder b = one_node(22, "Relu", {}, &n);
    EXPECT_THAT(import_error(b), HasSubstr("uses opset 22; qsearch reads opsets 11 to 17 (and "
                                           "converts 6 to 10 and 18 to 21)"));
  }
}

TEST(NewerOpsets, TheCheckerStillChecksANewerModel) {
  pb::NodeProto* n = nullptr;
  {  // a Gelu stand-in reading a value nothing defines
    ModelBuilder b = one_node(20, "Gelu", {}, &n);
    n->set_input(0, "nowhere");
    EXPECT_THAT(import_error(b), HasSubstr("the ONNX checker rejects the model"));
  }
  {  // Gelu is no operator before opset 20
    ModelBuilder b = one_node(17, "Gelu", {}, &n);
    EXPECT_THAT(import_error(b), HasSubstr("the ONNX checker rejects the model"));
  }
  {  // AveragePool's dilations are new in opset 19: refused at 18 by the checker
    ModelBuilder b = one_node(18, "AveragePool", {}, &n);
    set_ints(*n, "kernel_shape", {2, 2});
    set_ints(*n, "dilations", {2, 2});
    EXPECT_THAT(import_error(b), HasSubstr("the ONNX checker rejects the model"));
  }
}

TEST(NewerOpsets, AxesInputsSpreadOverTheirDims) {
  pb::NodeProto* n = nullptr;
  {  // Pad's axes (opset 18): pads only for W, negative axis
    ModelBuilder b = one_node(18, "Pad", {"pads", "", "axes"}, &n);
    b.init<int64_t>("pads", {2}, {1, 2});
    b.init<int64_t>("axes", {1}, {-1});
    const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
    ASSERT_EQ(g.nodes().size(), 1u);
    EXPECT_EQ(std::get<ir::PadAttrs>(g.nodes()[0].attrs).pads,
              (std::vector<int64_t>{0, 0, 0, 1, 0, 0, 0, 2}));
  }
  {  // a repeated axis
    ModelBuilder b = one_node(18, "Pad", {"pads", "", "axes"}, &n);
    b.init<int64_t>("pads", {4}, {1, 1, 1, 1});
    b.init<int64_t>("axes", {2}, {3, -1});
    EXPECT_THAT(import_error(b), HasSubstr("Pad names axis 3 twice"));
  }
  {  // ReduceMax's axes input (opset 18), and noop_with_empty_axes without axes refused
    ModelBuilder b = one_node(18, "ReduceMax", {"axes"}, &n);
    b.init<int64_t>("axes", {2}, {2, 3});
    const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
    ASSERT_EQ(g.nodes().size(), 1u);
    EXPECT_EQ(std::get<ir::ReduceAttrs>(g.nodes()[0].attrs).axes, (std::vector<int64_t>{2, 3}));
    ModelBuilder c = one_node(18, "ReduceMean", {}, &n);
    set_int(*n, "noop_with_empty_axes", 1);
    EXPECT_THAT(import_error(c), HasSubstr("noop_with_empty_axes is not supported"));
  }
  {  // Resize's axes (opset 18) with sizes: the other dims keep their size
    ModelBuilder b = one_node(18, "Resize", {"", "", "sizes"}, &n);
    b.init<int64_t>("sizes", {2}, {8, 2});
    set_ints(*n, "axes", {-2, -1});
    const ir::Graph g = import_model_bytes(b.bytes(), "m.onnx");
    ASSERT_EQ(g.nodes().size(), 1u);
    const auto& a = std::get<ir::ResizeAttrs>(g.nodes()[0].attrs);
    EXPECT_EQ(a.sizes, (std::array<int64_t, 2>{8, 2}));
    ModelBuilder c = one_node(18, "Resize", {"", "", "sizes"}, &n);
    c.init<int64_t>("sizes", {2}, {3, 8});
    set_ints(*n, "axes", {1, 2});
    EXPECT_THAT(import_error(c), HasSubstr("resize N or C"));
  }
}

}  // namespace
}  // namespace qsearch::onnx
