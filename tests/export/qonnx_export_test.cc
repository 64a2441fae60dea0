// `qsearch export --format qonnx` (src/onnx/export_qonnx.cc, src/export/qonnx_export.cc):
//   - export then import (src/onnx/import_qonnx.cc) gives back the same formats on every node and
//     bit-identical fake and int outputs, for the shipped MNIST models under mixed configs (every
//     rounding, data_out, unsigned relu inputs, float biases);
//   - an independent ONNX interpreter over PyTorch with QONNX's Quant semantics
//     (tools/onnx_torch_exec.py) predicts every MNIST test image as qsearch's fake mode does
//     (skipped when /usr/bin/python3 lacks torch or onnx);
//   - a Conv3d model (tests/fixtures/nd/conv3d_net, imported as Im2Col3d -> Conv -> view) is
//     written back as 3-D ONNX Convs: the float, QONNX and QDQ exports hold no Im2Col3d, and the
//     float and QONNX ones import to the same graph, formats and bit-identical outputs.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <onnx/onnx_pb.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"
#include "export/qdq_export.h"
#include "export/qonnx_export.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/qonnx.h"
#include "runtime/executor.h"
#include "runtime/node_quant.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::exporter {
namespace {

namespace fs = std::filesystem;
using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::Rounding;

std::string source_path(const std::string& rel) {
  return (fs::path(QSEARCH_SOURCE_DIR) / rel).string();
}

NodeQuantConfig weighted(FixedFormat in, FixedFormat w, std::optional<FixedFormat> b,
                         std::optional<FixedFormat> out, Rounding r) {
  return {.quantized = true, .data_in = in, .weight = w, .bias = b, .data_out = out, .rounding = r};
}
NodeQuantConfig relu(int w, int f, Rounding r) {
  return {.quantized = true, .data_in = FixedFormat{w, f, false}, .rounding = r};
}
FixedFormat s(int w, int f) { return {w, f, true}; }

struct Case {
  std::string model, name;
  quant::QuantAssignment q;
  int64_t samples = 10000;  // for the interpreter
};

// Every quantizable node of `g` by its MASE op, widths and fracs varying from node to node,
// roundings in turn, some data_out (float biases: the MLP / LeNet-5 configs).
quant::QuantAssignment every_op(const ir::Graph& g) {
  quant::QuantAssignment q;
  int i = 0;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    const Rounding r = static_cast<Rounding>(i % 3);
    const int w = 6 + i % 5, f = 2 + i % 4;
    std::optional<FixedFormat> bias = std::optional(s(w + 4, f + 3));
    std::optional<FixedFormat> out = i % 3 == 1 ? std::optional(s(w + 2, f)) : std::nullopt;
    if (op == "linear" || op == "conv2d") {
      q[n.config_name] = weighted(s(w, f), s(w - 1, f + 2), bias, out, r);
    } else if (op == "matmul") {
      q[n.config_name] = weighted(s(w + 2, f), s(w + 2, f + 1), std::nullopt, std::nullopt, r);
    } else if (op == "relu") {
      q[n.config_name] = relu(w, f - 1, r);
    } else if (op == "add" || op == "mul" || op == "layer_norm" || op == "gelu" ||
               op == "batch_norm2d") {
      q[n.config_name] = {.quantized = true, .data_in = s(w + 4, f + 2), .rounding = r};
    } else {
      continue;
    }
    ++i;
  }
  return q;
}

// Mixed configs for the shipped MLP and LeNet-5: every rounding, data_out, float biases,
// unsigned relu inputs, relus left float, negative and large fracs.
std::vector<Case> cases() {
  using enum Rounding;
  std::vector<Case> c;
  c.push_back({"mlp_mnist.onnx",
               "mixed half-to-even",
               {{"fc1", weighted(s(8, 7), s(4, 6), s(8, 5), std::nullopt, kHalfToEven)},
                {"relu1", relu(6, 3, kHalfToEven)},
                {"fc2", weighted(s(5, 2), s(3, 4), s(12, 8), s(7, 2), kHalfToEven)},
                {"fc3", weighted(s(10, 4), s(8, 7), std::nullopt, std::nullopt, kHalfToEven)}}});
  c.push_back({"mlp_mnist.onnx",
               "mixed roundings",
               {{"fc1", weighted(s(6, 5), s(5, 7), s(10, 9), s(9, 3), kFloor)},
                {"relu1", relu(4, 1, kHalfAwayFromZero)},
                {"fc2", weighted(s(7, -1), s(2, 3), std::nullopt, std::nullopt, kHalfAwayFromZero)},
                {"relu2", relu(8, 4, kFloor)},
                {"fc3", weighted(s(16, 8), s(32, 20), s(3, 1), s(12, 6), kHalfToEven)}}});
  c.push_back({"lenet5_mnist.onnx",
               "mixed half-to-even",
               {{"conv1", weighted(s(8, 7), s(5, 4), s(8, 6), std::nullopt, kHalfToEven)},
                {"relu1", relu(8, 4, kHalfToEven)},
                {"conv2", weighted(s(6, 3), s(4, 5), s(8, 5), s(8, 3), kHalfToEven)},
                {"fc1", weighted(s(7, 3), s(6, 7), s(10, 7), std::nullopt, kHalfToEven)},
                {"relu3", relu(4, 1, kHalfToEven)},
                {"fc2", weighted(s(5, 2), s(4, 5), std::nullopt, std::nullopt, kHalfToEven)},
                {"fc3", weighted(s(8, 3), s(8, 6), s(8, 4), std::nullopt, kHalfToEven)}}});
  c.push_back({"lenet5_mnist.onnx",
               "mixed roundings",
               {{"conv1", weighted(s(7, 6), s(6, 6), s(9, 7), s(10, 5), kFloor)},
                {"relu2", relu(5, 2, kHalfAwayFromZero)},
                {"conv2", weighted(s(8, 4), s(5, 6), std::nullopt, std::nullopt, kHalfToEven)},
                {"fc1", weighted(s(6, 2), s(4, 6), s(8, 6), std::nullopt, kHalfAwayFromZero)},
                {"relu4", relu(6, 2, kFloor)},
                {"fc3", weighted(s(9, 4), s(7, 6), std::nullopt, s(8, 2), kFloor)}}});
  for (const char* m : {"vit-tiny_mnist.onnx", "mobilenet-s_mnist.onnx"}) {
    const ir::Graph g = onnx::import_model(source_path(std::string("models/") + m));
    c.push_back({m, "every quantizable op", every_op(g), 2000});
  }
  return c;
}

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

std::vector<float> run(const ir::Graph& g, const quant::QuantAssignment& q, runtime::Mode mode,
                       const Tensor& x) {
  const int64_t batch = std::min<int64_t>(x.dim(0), 1000);
  auto plan = runtime::make_plan(g, {.mode = mode, .max_batch = batch, .quant = q});
  runtime::Executor ex(plan);
  std::vector<float> y;
  for (int64_t b = 0; b < x.dim(0); b += batch) {
    const Tensor out = ex.run(x.rows(b, std::min(x.dim(0), b + batch)));
    y.insert(y.end(), out.data<float>(), out.data<float>() + out.numel());
  }
  return y;
}

std::vector<int64_t> argmax(const std::vector<float>& y, int64_t classes) {
  std::vector<int64_t> p(y.size() / classes);
  for (size_t i = 0; i < p.size(); ++i) {
    const float* r = y.data() + i * classes;
    p[i] = std::max_element(r, r + classes) - r;
  }
  return p;
}

// Bit-identical outputs of two graphs in each mode (under their own formats).
void expect_same_outputs(const ir::Graph& g, const quant::QuantAssignment& q, const ir::Graph& h,
                         const quant::QuantAssignment& hq, std::vector<runtime::Mode> modes,
                         const Tensor& x) {
  for (runtime::Mode mode : modes) {
    const std::vector<float> a = run(g, q, mode, x), b = run(h, hq, mode, x);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << runtime::mode_name(mode);
  }
}

// A QONNX re-import m of g under q: the same formats on every node (what each node quantizes),
// and bit-identical fake and int outputs.
void expect_same_formats_and_outputs(const ir::Graph& g, const quant::QuantAssignment& q,
                                     const onnx::QonnxModel& m, const Tensor& x) {
  const auto want = runtime::resolve_node_quant(g, q);
  const auto got = runtime::resolve_node_quant(m.graph, m.formats);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    SCOPED_TRACE(g.nodes()[k].name);
    EXPECT_EQ(got[k].inputs, want[k].inputs);
    EXPECT_EQ(got[k].data_out, want[k].data_out);
  }
  expect_same_outputs(g, q, m.graph, m.formats, {runtime::Mode::kFake, runtime::Mode::kInt}, x);
}

// q with 8-bit formats rounded half to even, as a QDQ export takes them (an unsigned input to
// the Relus).
quant::QuantAssignment eight_bit(const quant::QuantAssignment& q) {
  quant::QuantAssignment q8;
  for (const auto& [name, c] : q) {
    NodeQuantConfig c8 = c;
    c8.rounding = Rounding::kHalfToEven;
    c8.data_in = s(8, 4);
    if (c8.weight) c8.weight = s(8, 6);
    if (c8.bias) c8.bias = quant::FixedFormat{32, 10, true};
    if (c8.data_out) c8.data_out = s(8, 3);
    if (name.find("relu") != std::string::npos) c8.data_in = quant::FixedFormat{8, 4, false};
    q8[name] = c8;
  }
  return q8;
}

TEST(QonnxExport, RoundTripGivesTheSameFormatsAndBitIdenticalOutputs) {
  const Tensor x = mnist_test().x.rows(0, 1000);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.model + " " + c.name);
    const ir::Graph g = onnx::import_model(source_path("models/" + c.model));
    const std::string bytes = qonnx_model_bytes(g, c.q);
    const onnx::QonnxModel m = onnx::import_qonnx_bytes(bytes, "exported");
    EXPECT_GT(m.quant_nodes, 0);
    // The same node formats (what each node quantizes, with which rounding).
    const auto want = runtime::resolve_node_quant(g, c.q);
    const auto got = runtime::resolve_node_quant(m.graph, m.formats);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      SCOPED_TRACE(g.nodes()[k].name);
      EXPECT_EQ(m.graph.nodes()[k].config_name, g.nodes()[k].config_name);
      EXPECT_EQ(got[k].kind, want[k].kind);
      EXPECT_EQ(got[k].inputs, want[k].inputs);
      EXPECT_EQ(got[k].data_out, want[k].data_out);
      if (want[k].quantized()) {
        EXPECT_EQ(got[k].rounding, want[k].rounding);
      }
    }
    expect_same_outputs(g, c.q, m.graph, m.formats, {runtime::Mode::kFake, runtime::Mode::kInt}, x);
  }
}

TEST(QonnxExport, Conv3dIsWrittenBackAsThreeDimensionalConvs) {
  const ir::Graph g = onnx::import_model(source_path("tests/fixtures/nd/conv3d_net_opset13.onnx"));
  std::ifstream in(source_path("tests/fixtures/nd/nd_ref.json"));
  const nlohmann::json ref = nlohmann::json::parse(in).at("models").at("conv3d_net");
  Tensor x(ref.at("input_shape").get<Shape>(), DType::kFloat32);
  const auto xv = ref.at("input").get<std::vector<float>>();
  std::copy(xv.begin(), xv.end(), x.data<float>());
  // Both conv3d (one with data_out), the relu, the linear.
  quant::QuantAssignment q;
  int convs = 0;
  for (const ir::Node& n : g.nodes()) {
    const std::string op = ir::mase_op(g, n);
    if (op == "conv3d") {
      const bool first = convs++ == 0;
      q[n.config_name] =
          weighted(s(8, 5), s(7, 6), s(12, 8), first ? std::nullopt : std::optional(s(10, 5)),
                   first ? Rounding::kFloor : Rounding::kHalfToEven);
    } else if (op == "linear") {
      q[n.config_name] = weighted(s(9, 4), s(6, 5), std::nullopt, std::nullopt, Rounding::kFloor);
    } else if (op == "relu") {
      q[n.config_name] = relu(7, 3, Rounding::kHalfAwayFromZero);
    }
  }
  ASSERT_EQ(convs, 2);
  auto conv3d_count = [](const std::string& bytes) {
    ::onnx::ModelProto m;
    EXPECT_TRUE(m.ParseFromString(bytes));
    int n3 = 0;
    for (const auto& node : m.graph().node()) {
      EXPECT_NE(node.op_type(), "Im2Col3d");
      if (node.op_type() != "Conv") continue;
      for (const auto& at : node.attribute()) {
        n3 += at.name() == "kernel_shape" && at.ints_size() == 3;
      }
    }
    return n3;
  };
  // Float: the same graph back, bit-identical outputs.
  const std::string plain = onnx::export_model_bytes(g, 13);
  EXPECT_EQ(conv3d_count(plain), 2);
  const ir::Graph back = onnx::import_model_bytes(plain, "conv3d.onnx");
  ASSERT_EQ(back.nodes().size(), g.nodes().size());
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    EXPECT_EQ(back.nodes()[k].kind, g.nodes()[k].kind) << k;
    EXPECT_EQ(back.nodes()[k].config_name, g.nodes()[k].config_name) << k;
  }
  expect_same_outputs(g, {}, back, {}, {runtime::Mode::kFloat}, x);
  // QONNX: the same formats on every node, bit-identical fake and int outputs.
  const std::string bytes = qonnx_model_bytes(g, q);
  EXPECT_EQ(conv3d_count(bytes), 2);
  expect_same_formats_and_outputs(g, q, onnx::import_qonnx_bytes(bytes, "conv3d_qonnx"), x);
  // QDQ (8-bit formats): written, checked by onnx.checker, with the two 3-D Convs.
  EXPECT_EQ(conv3d_count(exporter::export_qdq(g, eight_bit(q)).bytes), 2);
}

// The same for 3-D ConvTranspose (tests/fixtures/nd/convt3d_net at every opset: one plain and one
// grouped, dilated ConvTranspose3d with output_padding and asymmetric attributes, imported as a
// transposed Im2Col3d -> ConvTranspose (1, kW) -> view): each is written back as one ONNX
// ConvTranspose whose 5-D weight is the source model's, bit for bit, and whose attributes are the
// source's; float, QONNX (fake, int) and QDQ exports re-import to bit-identical outputs, and
// Python's onnx.checker (full_check) accepts all three when /usr/bin/python3 has onnx.
TEST(QonnxExport, ConvTranspose3dIsWrittenBackAsThreeDimensionalConvTransposes) {
  std::ifstream in(source_path("tests/fixtures/nd/nd_ref.json"));
  const nlohmann::json ref = nlohmann::json::parse(in).at("models").at("convt3d_net");
  Tensor x(ref.at("input_shape").get<Shape>(), DType::kFloat32);
  const auto xv = ref.at("input").get<std::vector<float>>();
  std::copy(xv.begin(), xv.end(), x.data<float>());
  const bool python = std::system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0;
  const fs::path dir = fs::temp_directory_path() / fmt::format("qsearch_convt3d_{}", getpid());
  fs::create_directories(dir);
  auto full_check = [&](const std::string& bytes, const std::string& file) {
    if (!python) return;
    const std::string path = (dir / file).string();
    std::ofstream(path, std::ios::binary) << bytes;
    const std::string cmd =
        "/usr/bin/python3 -c \"import onnx, sys; "
        "onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)\" " +
        path;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  };
  // Name -> (op, attributes, weight bytes) of each ConvTranspose in a model.
  struct Convt {
    std::map<std::string, std::vector<int64_t>> attrs;
    std::vector<int64_t> weight_shape;
    std::string weight;
  };
  auto convts = [](const std::string& bytes) {
    ::onnx::ModelProto m;
    EXPECT_TRUE(m.ParseFromString(bytes));
    std::map<std::string, const ::onnx::TensorProto*> inits;
    for (const auto& t : m.graph().initializer()) inits[t.name()] = &t;
    std::map<std::string, Convt> out;
    for (const auto& node : m.graph().node()) {
      EXPECT_NE(node.op_type(), "Im2Col3d");
      if (node.op_type() != "ConvTranspose") continue;
      Convt c;
      for (const auto& at : node.attribute()) {
        c.attrs[at.name()] = std::vector<int64_t>(at.ints().begin(), at.ints().end());
        if (at.type() == ::onnx::AttributeProto::INT) c.attrs[at.name()] = {at.i()};
      }
      // A QONNX weight is read through its Quant node: follow it back to the initializer.
      std::string w = node.input(1);
      for (const auto& q : m.graph().node()) {
        if (q.op_type() == "Quant" && q.output(0) == w) w = q.input(0);
      }
      const auto it = inits.find(w);  // a QDQ weight is a DequantizeLinear's output
      if (it == inits.end()) {
        out[node.name()] = c;
        continue;
      }
      const ::onnx::TensorProto* t = it->second;
      c.weight_shape.assign(t->dims().begin(), t->dims().end());
      c.weight = t->raw_data();
      if (c.weight.empty()) {
        c.weight.assign(reinterpret_cast<const char*>(t->float_data().data()),
                        t->float_data_size() * sizeof(float));
      }
      out[node.name()] = c;
    }
    return out;
  };
  auto same_convts = [](const std::map<std::string, Convt>& want,
                        const std::map<std::string, Convt>& got) {
    ASSERT_EQ(want.size(), 2u);
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [name, w] : want) {
      SCOPED_TRACE(name);
      ASSERT_TRUE(got.count(name));
      const Convt& g = got.at(name);
      EXPECT_EQ(g.weight_shape, w.weight_shape);
      EXPECT_TRUE(g.weight == w.weight) << "weight not the source's, bit for bit";
      for (const char* a : {"kernel_shape", "strides", "dilations", "pads", "output_padding"}) {
        EXPECT_EQ(g.attrs.at(a), w.attrs.count(a) ? w.attrs.at(a) : g.attrs.at(a)) << a;
        EXPECT_EQ(g.attrs.at(a).size(), a == std::string("pads") ? 6u : 3u) << a;
      }
      EXPECT_EQ(g.attrs.at("group"),
                w.attrs.count("group") ? w.attrs.at("group") : std::vector<int64_t>{1});
    }
  };
  for (int opset : {11, 13, 17}) {
    SCOPED_TRACE(opset);
    const std::string src =
        source_path(fmt::format("tests/fixtures/nd/convt3d_net_opset{}.onnx", opset));
    std::string src_bytes;
    {
      std::ifstream f(src, std::ios::binary);
      src_bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    const ir::Graph g = onnx::import_model(src);
    quant::QuantAssignment q;
    int n3 = 0;
    for (const ir::Node& n : g.nodes()) {
      const std::string op = ir::mase_op(g, n);
      if (op == "convtranspose3d") {
        const bool first = n3++ == 0;
        q[n.config_name] =
            weighted(s(8, 4), s(7, 6), s(12, 8), first ? std::nullopt : std::optional(s(10, 5)),
                     first ? Rounding::kFloor : Rounding::kHalfToEven);
      } else if (op == "linear") {
        q[n.config_name] = weighted(s(9, 4), s(6, 5), std::nullopt, std::nullopt, Rounding::kFloor);
      } else if (op == "relu") {
        q[n.config_name] = relu(7, 3, Rounding::kHalfAwayFromZero);
      }
    }
    ASSERT_EQ(n3, 2);
    // Float: one ConvTranspose per 3-D ConvTranspose, the source's, and the same graph back.
    const std::string plain = onnx::export_model_bytes(g, opset);
    same_convts(convts(src_bytes), convts(plain));
    full_check(plain, fmt::format("plain{}.onnx", opset));
    const ir::Graph back = onnx::import_model_bytes(plain, "convt3d.onnx");
    ASSERT_EQ(back.nodes().size(), g.nodes().size());
    for (size_t k = 0; k < g.nodes().size(); ++k) {
      EXPECT_EQ(back.nodes()[k].kind, g.nodes()[k].kind) << k;
      EXPECT_EQ(back.nodes()[k].attrs, g.nodes()[k].attrs) << k;
      EXPECT_EQ(back.nodes()[k].config_name, g.nodes()[k].config_name) << k;
    }
    expect_same_outputs(g, {}, back, {}, {runtime::Mode::kFloat}, x);
    // QONNX: the same formats on every node, bit-identical fake and int outputs.
    const std::string bytes = qonnx_model_bytes(g, q);
    same_convts(convts(src_bytes), convts(bytes));
    full_check(bytes, fmt::format("qonnx{}.onnx", opset));
    expect_same_formats_and_outputs(g, q, onnx::import_qonnx_bytes(bytes, "convt3d_qonnx"), x);
    // QDQ (8-bit formats, half to even): the two 3-D ConvTransposes, checked.
    const std::string qdq = exporter::export_qdq(g, eight_bit(q)).bytes;
    EXPECT_EQ(convts(qdq).size(), 2u);
    full_check(qdq, fmt::format("qdq{}.onnx", opset));
  }
  fs::remove_all(dir);
}

TEST(QonnxExport, OneBitSignedFormatIsRefusedNamingTheNode) {
  const ir::Graph g = onnx::import_model(source_path("models/mlp_mnist.onnx"));
  const quant::QuantAssignment q = {
      {"fc2", weighted(s(8, 4), s(1, 0), std::nullopt, std::nullopt, Rounding::kHalfToEven)}};
  try {
    qonnx_model_bytes(g, q);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bipolar"), std::string::npos) << e.what();
  }
  // Unsigned 1 bit (codes 0, 1) is a plain Quant.
  const quant::QuantAssignment ok = {{"relu1", relu(1, 0, Rounding::kHalfToEven)}};
  EXPECT_NO_THROW(qonnx_model_bytes(g, ok));
}

bool python_has_torch_and_onnx() {
  return std::system("/usr/bin/python3 -c 'import torch, onnx' >/dev/null 2>&1") == 0;
}

// The MLP and LeNet-5 on all 10,000 test images; ViT-tiny (LayerNorm and GELU decomposed below
// opset 17, MatMul of two activations) and MobileNet-S (BatchNorm, depthwise convs) on 2,000.
TEST(QonnxExport, TorchInterpreterPredictsEveryMnistImageAsFakeMode) {
  if (!python_has_torch_and_onnx()) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch and onnx (scripts/setup.sh --bench)";
  }
  const data::Dataset& ds = mnist_test();
  ASSERT_EQ(ds.size(), 10000);
  const fs::path dir = fs::temp_directory_path() / fmt::format("qsearch_qonnx_{}", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "x.f32", std::ios::binary);
    f.write(static_cast<const char*>(ds.x.raw()), static_cast<std::streamsize>(ds.x.nbytes()));
  }
  int k = 0;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.model + " " + c.name);
    const ir::Graph g = onnx::import_model(source_path("models/" + c.model));
    const fs::path model = dir / fmt::format("m{}.onnx", k), out = dir / fmt::format("y{}.f32", k);
    ++k;
    {
      std::ofstream f(model, std::ios::binary);
      f << qonnx_model_bytes(g, c.q);
    }
    const int64_t n = c.samples;
    const std::string cmd =
        fmt::format("/usr/bin/python3 '{}' '{}' --input '{}' --shape {},1,28,28 --output '{}'",
                    source_path("tools/onnx_torch_exec.py"), model.string(),
                    (dir / "x.f32").string(), n, out.string());
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::vector<float> torch_y(static_cast<size_t>(n) * 10);
    std::ifstream f(out, std::ios::binary);
    f.read(reinterpret_cast<char*>(torch_y.data()),
           static_cast<std::streamsize>(torch_y.size() * sizeof(float)));
    ASSERT_EQ(f.gcount(), static_cast<std::streamsize>(torch_y.size() * sizeof(float)));
    const auto torch_p = argmax(torch_y, 10);
    const Tensor x = ds.x.rows(0, n);
    const auto fake_p = argmax(run(g, c.q, runtime::Mode::kFake, x), 10);
    const auto int_p = argmax(run(g, c.q, runtime::Mode::kInt, x), 10);
    int64_t same_fake = 0, same_int = 0;
    for (size_t i = 0; i < torch_p.size(); ++i) {
      same_fake += torch_p[i] == fake_p[i];
      same_int += torch_p[i] == int_p[i];
    }
    EXPECT_EQ(same_fake, n) << "QONNX predictions that equal qsearch's fake mode";
    // The int engine rounds once at the end instead of in float (docs/numerics.md): it may move a
    // near tie, so it is reported and only bounded.
    std::cout << fmt::format("[ qonnx ] {} {}: QONNX = fake on {}/{}, = int on {}/{}\n", c.model,
                             c.name, same_fake, n, same_int, n);
    EXPECT_GE(same_int, n * 995 / 1000);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qsearch::exporter
