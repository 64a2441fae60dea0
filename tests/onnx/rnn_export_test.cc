// GRU / LSTM export (src/onnx/export.cc, src/onnx/export_qonnx.cc) on the PyTorch fixtures of
// tests/fixtures/rnn (forward, reverse-free bidirectional, stacked layers, computed initial states,
// every output read):
//   - the float export at opsets 11, 13, 17 passes the ONNX checker and imports to the same graph
//     (ops, names, attributes, constants bit for bit) with bit-identical float outputs;
//   - the QONNX export with the recurrent layers quantized (Quant nodes on X, W, R and B, the
//     engine's data_in / weight / bias) imports to the same formats and bit-identical fake and int
//     outputs.
// Before, both exports refused GRU / LSTM.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/qonnx.h"
#include "runtime/executor.h"
#include "runtime/node_quant.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

const char* const kModels[] = {"gru_classifier", "lstm_bi2", "gru_op",
                               "gru_op_h0",      "lstm_op",  "lstm_op_h0"};

ir::Graph fixture(const std::string& model) {
  return import_model(std::string(QSEARCH_SOURCE_DIR) + "/tests/fixtures/rnn/" + model +
                      "_opset17.onnx");
}

Tensor random_input(const ir::Graph& g, int64_t batch) {
  Shape s = g.value(g.inputs()[0]).shape;
  s[0] = batch;
  Tensor x(s, DType::kFloat32);
  Rng rng(7);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = rng.uniform(-1.0, 1.0);
  return x;
}

// Every output of `g` on x, concatenated.
std::vector<float> outputs(const ir::Graph& g, const runtime::PlanOptions& o, const Tensor& x) {
  runtime::Executor ex(runtime::make_plan(g, o));
  ex.run(x);
  std::vector<float> all;
  for (size_t k = 0; k < g.outputs().size(); ++k) {
    const Tensor& y = ex.output(k);
    all.insert(all.end(), y.data<float>(), y.data<float>() + y.numel());
  }
  return all;
}

void expect_same_graph(const ir::Graph& a, const ir::Graph& b) {
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    const ir::Node &na = a.nodes()[i], &nb = b.nodes()[i];
    SCOPED_TRACE(na.name);
    EXPECT_EQ(na.kind, nb.kind);
    EXPECT_EQ(na.name, nb.name);
    EXPECT_EQ(na.config_name, nb.config_name);
    if (na.kind == ir::OpKind::kReshape) {
      // A Squeeze's view keeps allowzero only from opset 14 (ONNX has no allowzero before).
      EXPECT_EQ(std::get<ir::ReshapeAttrs>(na.attrs).shape,
                std::get<ir::ReshapeAttrs>(nb.attrs).shape);
    } else {
      EXPECT_TRUE(na.attrs == nb.attrs);
    }
    ASSERT_EQ(na.inputs.size(), nb.inputs.size());
    for (size_t k = 0; k < na.inputs.size(); ++k) {
      ASSERT_EQ(na.inputs[k] == ir::kNoValue, nb.inputs[k] == ir::kNoValue) << "input " << k;
      if (na.inputs[k] == ir::kNoValue) continue;
      const ir::Value &va = a.value(na.inputs[k]), &vb = b.value(nb.inputs[k]);
      EXPECT_EQ(va.shape, vb.shape);
      ASSERT_EQ(va.is_constant(), vb.is_constant());
      if (va.is_constant()) {
        ASSERT_EQ(va.data.nbytes(), vb.data.nbytes());
        EXPECT_EQ(std::memcmp(va.data.raw(), vb.data.raw(), va.data.nbytes()), 0);
      }
    }
  }
}

bool is_rnn(const ir::Node& n) { return n.kind == ir::OpKind::kGru || n.kind == ir::OpKind::kLstm; }

TEST(RnnExport, FloatExportPassesTheCheckerAndRoundTripsBitIdentically) {
  for (const char* model : kModels) {
    SCOPED_TRACE(model);
    const ir::Graph g = fixture(model);
    int rnns = 0;
    for (const ir::Node& n : g.nodes()) rnns += is_rnn(n);
    ASSERT_GT(rnns, 0);
    const Tensor x = random_input(g, 5);
    const std::vector<float> want = outputs(g, {.max_batch = 5}, x);
    for (int opset : {11, 13, 17}) {
      SCOPED_TRACE(opset);
      const std::string bytes = export_model_bytes(g, opset);
      ::onnx::ModelProto m;
      ASSERT_TRUE(m.ParseFromString(bytes));
      EXPECT_NO_THROW(::onnx::checker::check_model(m));
      int written = 0;
      for (const auto& n : m.graph().node()) {
        if (n.op_type() != "GRU" && n.op_type() != "LSTM") continue;
        ++written;
        bool hidden = false, before_reset = false;
        for (const auto& a : n.attribute()) {
          hidden = hidden || (a.name() == "hidden_size" && a.i() > 0);
          before_reset = before_reset || (a.name() == "linear_before_reset" && a.i() == 1);
        }
        EXPECT_TRUE(hidden);
        EXPECT_EQ(before_reset, n.op_type() == "GRU");
      }
      EXPECT_EQ(written, rnns);
      const ir::Graph back = import_model_bytes(bytes, "exported.onnx");
      expect_same_graph(g, back);
      const std::vector<float> got = outputs(back, {.max_batch = 5}, x);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
    }
  }
}

TEST(RnnExport, QonnxExportRoundTripsFormatsAndFakeAndIntOutputs) {
  using quant::FixedFormat;
  for (const char* model : kModels) {
    SCOPED_TRACE(model);
    const ir::Graph g = fixture(model);
    // The recurrent layers at 8 bits (as rnn_e2e_test's config), the classifiers' heads too.
    quant::QuantAssignment q;
    for (const ir::Node& n : g.nodes()) {
      quant::NodeQuantConfig c{.quantized = true, .data_in = FixedFormat{8, 5, true}};
      if (is_rnn(n)) {
        c.weight = FixedFormat{8, 6, true};
        c.bias = FixedFormat{8, 5, true};
      } else if (ir::mase_op(g, n) == "linear") {
        c.weight = FixedFormat{6, 4, true};
        c.rounding = quant::Rounding::kHalfToEven;
      } else {
        continue;
      }
      q[n.config_name] = c;
    }
    const auto nq = runtime::resolve_node_quant(g, q);
    std::vector<QonnxNodeFormats> formats(nq.size());
    for (size_t k = 0; k < nq.size(); ++k) {
      if (nq[k].quantized()) formats[k] = {nq[k].inputs, nq[k].data_out, nq[k].rounding};
    }
    const std::string bytes = export_qonnx_bytes(g, formats, 13);
    ::onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromString(bytes));
    EXPECT_NO_THROW(::onnx::checker::check_model(m));
    const QonnxModel back = import_qonnx_bytes(bytes, "exported_qonnx.onnx");
    EXPECT_GE(back.quant_nodes, 4);  // X, W, R, B of a recurrent layer at least
    const auto got = runtime::resolve_node_quant(back.graph, back.formats);
    ASSERT_EQ(got.size(), nq.size());
    for (size_t k = 0; k < nq.size(); ++k) {
      SCOPED_TRACE(g.nodes()[k].name);
      EXPECT_EQ(got[k].kind, nq[k].kind);
      EXPECT_EQ(got[k].inputs, nq[k].inputs);
      EXPECT_EQ(got[k].data_out, nq[k].data_out);
    }
    const Tensor x = random_input(g, 5);
    for (runtime::Mode mode : {runtime::Mode::kFake, runtime::Mode::kInt}) {
      const std::vector<float> a = outputs(g, {.mode = mode, .max_batch = 5, .quant = q}, x);
      const std::vector<float> b =
          outputs(back.graph, {.mode = mode, .max_batch = 5, .quant = back.formats}, x);
      ASSERT_EQ(a.size(), b.size());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
          << runtime::mode_name(mode);
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
