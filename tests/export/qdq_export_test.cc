// The qdq export (export/qdq_export.h, onnx/export_qdq.h): its QuantizeLinear / DequantizeLinear
// pairs compute qsearch's fake mode. ONNX Runtime is not installable here, so this test executes
// the exported model with a minimal evaluator of the ops these graphs hold, written from the ONNX
// operator spec (QuantizeLinear: saturate(round_half_even(x / scale) + zero_point);
// DequantizeLinear: (q - zero_point) * scale), not from qsearch's quantizer. Checked: the structure
// (a pair in front of every quantized input, scale 2^-frac, zero point 0 of the right storage
// type, the opset), every quantized constant equal to quant::fake_quantize bit for bit, and the
// predictions of the shipped MNIST MLP on all 10000 test images equal to fake mode's.
#include <onnx/onnx_pb.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "data/dataset.h"
#include "export/qdq_export.h"
#include "onnx/import.h"
#include "quant/quantize.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"
#include "support/source_dir.h"

namespace qsearch::exporter {
namespace {

using quant::FixedFormat;
using quant::NodeQuantConfig;
using quant::Rounding;
namespace pb = ::onnx;

std::string source_path(const std::string& rel) {
  return std::string(QSEARCH_SOURCE_DIR) + "/" + rel;
}

NodeQuantConfig weighted(FixedFormat in, FixedFormat w, std::optional<FixedFormat> b,
                         std::optional<FixedFormat> out = std::nullopt,
                         Rounding r = Rounding::kHalfToEven) {
  return {.quantized = true, .data_in = in, .weight = w, .bias = b, .data_out = out, .rounding = r};
}
NodeQuantConfig relu(int w, int f) {
  return {.quantized = true, .data_in = FixedFormat{w, f, false}};
}
FixedFormat s(int w, int f) { return {w, f, true}; }

// ---- a minimal evaluator of the exported ops, from the ONNX spec ----

struct Val {
  std::vector<int64_t> shape;
  std::vector<double> v;
  int32_t qtype = 0;  // QuantizeLinear's output type (0: a float tensor)
};

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// The range of a storage type (data types 21/22: uint4/int4 of ONNX 1.16+).
std::pair<double, double> type_range(int32_t t) {
  switch (t) {
    case 22:
      return {-8, 7};
    case 21:
      return {0, 15};
    case pb::TensorProto::INT8:
      return {-128, 127};
    case pb::TensorProto::UINT8:
      return {0, 255};
    case pb::TensorProto::INT16:
      return {-32768, 32767};
    case pb::TensorProto::UINT16:
      return {0, 65535};
    case pb::TensorProto::INT32:
      return {-2147483648.0, 2147483647.0};
  }
  ADD_FAILURE() << "unexpected storage type " << t;
  return {0, 0};
}

Val tensor_val(const pb::TensorProto& t) {
  Val r;
  for (int64_t d : t.dims()) r.shape.push_back(d);
  const int64_t n = numel(r.shape);
  const std::string& raw = t.raw_data();
  r.v.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (t.data_type()) {
      case pb::TensorProto::FLOAT: {
        float f;
        std::memcpy(&f, raw.data() + 4 * i, 4);
        r.v[i] = f;
        break;
      }
      case pb::TensorProto::INT32: {
        int32_t c;
        std::memcpy(&c, raw.data() + 4 * i, 4);
        r.v[i] = c;
        break;
      }
      case pb::TensorProto::INT16:
      case pb::TensorProto::UINT16: {
        uint16_t c;
        std::memcpy(&c, raw.data() + 2 * i, 2);
        r.v[i] = t.data_type() == pb::TensorProto::INT16 ? static_cast<int16_t>(c) : c;
        break;
      }
      case pb::TensorProto::INT8:
        r.v[i] = static_cast<int8_t>(raw[i]);
        break;
      case pb::TensorProto::UINT8:
        r.v[i] = static_cast<uint8_t>(raw[i]);
        break;
      case 21:
      case 22: {  // two 4-bit values per byte, the first in the low nibble
        const int nib = (static_cast<uint8_t>(raw[i / 2]) >> (4 * (i % 2))) & 15;
        r.v[i] = t.data_type() == 22 && nib >= 8 ? nib - 16 : nib;
        break;
      }
      case pb::TensorProto::INT64: {
        int64_t c;
        std::memcpy(&c, raw.data() + 8 * i, 8);
        r.v[i] = static_cast<double>(c);
        break;
      }
      default:
        ADD_FAILURE() << "unexpected initializer type " << t.data_type() << " of " << t.name();
    }
  }
  if (t.data_type() != pb::TensorProto::FLOAT) r.qtype = t.data_type();
  return r;
}

int64_t int_attr(const pb::NodeProto& n, const std::string& name, int64_t dflt) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  return dflt;
}
float float_attr(const pb::NodeProto& n, const std::string& name, float dflt) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.f();
  }
  return dflt;
}

// Runs the model on x [N, ...]; returns its (only) output.
Val run_onnx(const pb::ModelProto& m, const Tensor& x) {
  std::map<std::string, Val> env;
  for (const auto& t : m.graph().initializer()) env[t.name()] = tensor_val(t);
  Val in;
  for (int64_t d : x.shape()) in.shape.push_back(d);
  in.v.assign(x.data<float>(), x.data<float>() + x.numel());
  env[m.graph().input(0).name()] = in;
  for (const pb::NodeProto& n : m.graph().node()) {
    auto arg = [&](int i) -> const Val& {
      auto it = env.find(n.input(i));
      if (it == env.end()) throw std::runtime_error("undefined input " + n.input(i));
      return it->second;
    };
    Val out;
    const std::string& op = n.op_type();
    if (op == "QuantizeLinear" || op == "DequantizeLinear") {
      const Val& a = arg(0);
      const float scale = static_cast<float>(arg(1).v.at(0));
      const Val& zp = arg(2);
      EXPECT_EQ(arg(1).v.size(), 1u) << "per-tensor scale";
      out.shape = a.shape;
      out.v.resize(a.v.size());
      const auto [lo, hi] = type_range(zp.qtype);
      for (size_t i = 0; i < a.v.size(); ++i) {
        if (op == "QuantizeLinear") {
          // saturate(round(x / y_scale) + y_zero_point), rounding half to even.
          const float q = static_cast<float>(a.v[i]) / scale;
          out.v[i] = std::clamp(std::nearbyint(double{q}) + zp.v[0], lo, hi);
        } else {
          out.v[i] = static_cast<float>(static_cast<float>(a.v[i] - zp.v[0]) * scale);
        }
      }
      out.qtype = op == "QuantizeLinear" ? zp.qtype : 0;
    } else if (op == "Flatten") {
      const Val& a = arg(0);
      const int64_t axis = int_attr(n, "axis", 1);
      int64_t rows = 1;
      for (int64_t d = 0; d < axis; ++d) rows *= a.shape[d];
      out = a;
      out.shape = {rows, numel(a.shape) / rows};
    } else if (op == "Relu") {
      out = arg(0);
      for (double& v : out.v) v = std::max(v, 0.0);
    } else if (op == "Gemm" || op == "MatMul") {
      const Val &a = arg(0), &b = arg(1);
      const bool ta = int_attr(n, "transA", 0), tb = int_attr(n, "transB", 0);
      const double alpha = float_attr(n, "alpha", 1), beta = float_attr(n, "beta", 1);
      EXPECT_EQ(a.shape.size(), 2u);
      const int64_t M = ta ? a.shape[1] : a.shape[0], K = ta ? a.shape[0] : a.shape[1];
      const int64_t N = tb ? b.shape[0] : b.shape[1];
      out.shape = {M, N};
      out.v.assign(static_cast<size_t>(M * N), 0.0);
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) {
            acc += a.v[ta ? k * M + i : i * K + k] * b.v[tb ? j * K + k : k * N + j];
          }
          double y = alpha * acc;
          if (op == "Gemm" && n.input_size() > 2 && !n.input(2).empty()) {
            const Val& c = arg(2);
            y += beta * c.v[c.v.size() == static_cast<size_t>(N) ? j : i * N + j];
          }
          out.v[i * N + j] = static_cast<float>(y);
        }
      }
    } else {
      throw std::runtime_error("the test evaluator has no op " + op);
    }
    env[n.output(0)] = std::move(out);
  }
  return env.at(m.graph().output(0).name());
}

std::vector<float> run_fake(const ir::Graph& g, const quant::QuantAssignment& q, const Tensor& x) {
  const int64_t batch = std::min<int64_t>(x.dim(0), 1000);
  auto plan = runtime::make_plan(g, {.mode = runtime::Mode::kFake, .max_batch = batch, .quant = q});
  runtime::Executor ex(plan);
  std::vector<float> y;
  for (int64_t b = 0; b < x.dim(0); b += batch) {
    const Tensor out = ex.run(x.rows(b, std::min(x.dim(0), b + batch)));
    y.insert(y.end(), out.data<float>(), out.data<float>() + out.numel());
  }
  return y;
}

pb::ModelProto parse(const std::string& bytes) {
  pb::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

const data::Dataset& mnist_test() {
  static const data::Dataset d = data::load_dataset("mnist", data::Split::kTest, {});
  return d;
}

const ir::Graph& mlp() {
  static const ir::Graph g = onnx::import_model(source_path("models/mlp_mnist.onnx"));
  return g;
}

// The formats of the two MNIST configs below.
const quant::QuantAssignment kInt8 = {{"fc1", weighted(s(8, 4), s(8, 6), s(8, 6))},
                                      {"relu1", relu(8, 4)},
                                      {"fc2", weighted(s(8, 4), s(8, 7), s(8, 5))},
                                      {"relu2", relu(8, 3)},
                                      {"fc3", weighted(s(8, 3), s(8, 6), s(8, 6))}};
const quant::QuantAssignment kMixed = {{"fc1", weighted(s(8, 4), s(4, 3), s(16, 8))},
                                       {"relu1", relu(4, 2)},
                                       {"fc2", weighted(s(16, 10), s(8, 7), s(32, 16), s(8, 3))},
                                       {"fc3", weighted(s(4, 1), s(16, 12), s(8, 4))}};

TEST(QdqExport, ShippedMlpPredictionsEqualFakeModeOnEveryMnistTestImage) {
  const data::Dataset& ds = mnist_test();
  ASSERT_EQ(ds.size(), 10000);
  for (const auto& [name, q, opset] : {std::tuple{"int8 everywhere", kInt8, 13},
                                       std::tuple{"int4/int16/int32 mixed", kMixed, 21}}) {
    SCOPED_TRACE(name);
    const onnx::QdqModel qm = export_qdq(mlp(), q);
    EXPECT_EQ(qm.opset, opset);
    const pb::ModelProto m = parse(qm.bytes);
    EXPECT_EQ(m.opset_import(0).version(), opset);
    const std::vector<float> want = run_fake(mlp(), q, ds.x);
    int64_t differ = 0;
    double max_err = 0;
    for (int64_t b = 0; b < ds.size(); b += 2000) {
      const Val got = run_onnx(m, ds.x.rows(b, b + 2000));
      ASSERT_EQ(got.shape, (std::vector<int64_t>{2000, 10}));
      for (int64_t i = 0; i < 2000; ++i) {
        const float* w = want.data() + (b + i) * 10;
        const double* g = got.v.data() + i * 10;
        differ += std::max_element(w, w + 10) - w != std::max_element(g, g + 10) - g;
        for (int c = 0; c < 10; ++c) max_err = std::max(max_err, std::abs(g[c] - w[c]));
      }
    }
    EXPECT_EQ(differ, 0) << "predictions that differ from fake mode";
    EXPECT_LT(max_err, 1e-4) << "largest logit difference from fake mode";
  }
}

// Every quantized constant: DequantizeLinear(QuantizeLinear(W)) by the spec equals
// quant::fake_quantize(W) bit for bit, and every pair has scale 2^-frac and a zero point 0 of
// the format's storage type.
TEST(QdqExport, QuantizedConstantsEqualFakeQuantizedOnesAndPairsAreWellFormed) {
  const pb::ModelProto m = parse(export_qdq(mlp(), kMixed).bytes);
  std::map<std::string, Val> init;
  for (const auto& t : m.graph().initializer()) init[t.name()] = tensor_val(t);
  std::map<std::string, const pb::NodeProto*> producer;
  for (const auto& n : m.graph().node()) producer[n.output(0)] = &n;
  // Expected storage type of each quantized Gemm input.
  const std::map<std::string, std::vector<int32_t>> want_types = {
      {"fc1", {pb::TensorProto::INT8, 22, pb::TensorProto::INT16}},
      {"fc2", {pb::TensorProto::INT16, pb::TensorProto::INT8, pb::TensorProto::INT32}},
      {"fc3", {22, pb::TensorProto::INT16, pb::TensorProto::INT8}}};
  int gemms = 0, constants = 0;
  for (const auto& n : m.graph().node()) {
    if (n.op_type() != "Gemm") continue;
    ++gemms;
    const std::string layer = n.name().substr(1, 3);  // "/fc1/Gemm"
    const NodeQuantConfig& c = kMixed.at(layer);
    const std::optional<FixedFormat> fmts[] = {c.data_in, c.weight, c.bias};
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE(layer + " input " + std::to_string(i));
      const pb::NodeProto* dq = producer.at(n.input(i));
      ASSERT_EQ(dq->op_type(), "DequantizeLinear");
      EXPECT_EQ(init.at(dq->input(1)).v.at(0), std::ldexp(1.0, -fmts[i]->frac));
      EXPECT_EQ(init.at(dq->input(2)).v.at(0), 0.0);
      EXPECT_EQ(init.at(dq->input(2)).qtype, want_types.at(layer)[i]);
      if (i == 0) {
        EXPECT_EQ(producer.at(dq->input(0))->op_type(), "QuantizeLinear");
        continue;
      }
      // The constant through its Q/DQ (or, at 32 bits, its int32 codes) equals fake_quantize.
      const ir::Node& node =
          *std::find_if(mlp().nodes().begin(), mlp().nodes().end(),
                        [&](const ir::Node& x) { return x.config_name == layer; });
      const Tensor& w = mlp().value(node.inputs[i]).data;
      const Tensor fake = quant::fake_quantize(w, *fmts[i], Rounding::kHalfToEven);
      pb::ModelProto sub;
      *sub.mutable_graph() = m.graph();
      sub.mutable_graph()->clear_node();
      const pb::NodeProto* q = producer.count(dq->input(0)) ? producer.at(dq->input(0)) : nullptr;
      if (q) *sub.mutable_graph()->add_node() = *q;
      *sub.mutable_graph()->add_node() = *dq;
      sub.mutable_graph()->mutable_output(0)->set_name(dq->output(0));
      const Val got = run_onnx(sub, Tensor::from<float>({1}, {0.0f}));
      ASSERT_EQ(got.v.size(), static_cast<size_t>(fake.numel()));
      for (int64_t k = 0; k < fake.numel(); ++k) {
        ASSERT_EQ(static_cast<float>(got.v[k]), fake.data<float>()[k]) << "element " << k;
      }
      EXPECT_EQ(q == nullptr, fmts[i]->width == 32);
      ++constants;
    }
  }
  EXPECT_EQ(gemms, 3);
  EXPECT_EQ(constants, 6);
}

TEST(QdqExport, AnOnlyEightBitModelIsOpset13AndUnsignedReluInputsAreUint8) {
  const pb::ModelProto m = parse(export_qdq(mlp(), kInt8).bytes);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  EXPECT_EQ(m.ir_version(), 7);
  int uint8_zero = 0, pairs = 0;
  for (const auto& t : m.graph().initializer())
    uint8_zero += t.data_type() == pb::TensorProto::UINT8;
  for (const auto& n : m.graph().node()) pairs += n.op_type() == "QuantizeLinear";
  EXPECT_EQ(uint8_zero, 1);
  EXPECT_EQ(pairs, 3 * 3 + 2);  // 3 Gemms x (input, weight, bias) + 2 relu inputs
}

TEST(QdqExport, WidthsQdqCannotStoreAndOtherRoundingsAreErrorsNamingTheLayer) {
  auto expect_error = [&](const quant::QuantAssignment& q, const std::vector<std::string>& parts) {
    try {
      export_qdq(mlp(), q);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      for (const auto& p : parts)
        EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  expect_error({{"fc2", weighted(s(8, 4), s(6, 5), s(8, 6))}},
               {"'fc2'", "weight", "s6", "storage type", "--format qonnx"});
  expect_error({{"relu1", relu(12, 4)}}, {"'relu1'", "data_in", "u12"});
  expect_error({{"fc1", weighted(s(32, 4), s(8, 5), s(8, 6))}}, {"'fc1'", "data_in", "int32"});
  expect_error({{"fc3", weighted(s(8, 4), s(8, 5), s(8, 6), std::nullopt, Rounding::kFloor)}},
               {"'fc3'", "floor", "half to even"});
}

}  // namespace
}  // namespace qsearch::exporter
