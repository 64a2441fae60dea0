// Issue 11, sequence models: int64 / int32 graph inputs (token ids), Gather of an embedding table
// by them, and the attention-mask ops on activations (Equal, Not, And, Cast, Where, Expand) as
// torch.onnx.export writes them, through import, make_plan and Executor::run in all three modes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;
using testing::set_int;
using testing::set_ints;

constexpr int64_t kVocab = 7, kSeq = 5, kDim = 3;

float table_at(int64_t id, int64_t k) { return 0.25f * static_cast<float>(id) - 0.5f * k; }

// ids [batch, 5] (int64 or int32) -> emb = table[ids] [batch, 5, 3];
// pad = (ids == 0) [batch, 5, 1] (Unsqueeze);
// keep = Expand(Cast(Not(pad), float), Shape(emb));
// y = Where(pad, -100, emb) + keep, then MatMul by w [3, 2] ("/fc/MatMul", a linear).
std::string embedding_model(int32_t id_type) {
  ModelBuilder b(13, {-1, kSeq}, "ids");
  b.model().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      id_type);
  std::vector<float> table;
  for (int64_t i = 0; i < kVocab; ++i) {
    for (int64_t k = 0; k < kDim; ++k) table.push_back(table_at(i, k));
  }
  b.init("emb.weight", {kVocab, kDim}, table);
  b.init("w", {kDim, 2}, std::vector<float>{0.5f, -0.25f, 1.0f, 0.75f, -1.5f, 0.125f});
  b.init("minus100", {}, std::vector<float>{-100.0f});
  auto* zero = b.model().mutable_graph()->add_initializer();
  zero->set_name("pad_id");
  zero->set_data_type(id_type);
  if (id_type == ::onnx::TensorProto::INT64) {
    zero->add_int64_data(0);
  } else {
    zero->add_int32_data(0);
  }
  b.node("Gather", {"emb.weight", "ids"}, {"emb"}, "/emb/Gather");
  b.node("Equal", {"ids", "pad_id"}, {"pad2"}, "/Equal");
  b.constant("ax", {1}, {2});
  b.node("Unsqueeze", {"pad2", "ax"}, {"pad"}, "/Unsqueeze");
  b.node("Not", {"pad"}, {"keep_b"}, "/Not");
  auto& cast = b.node("Cast", {"keep_b"}, {"keep1"}, "/Cast");
  set_int(cast, "to", ::onnx::TensorProto::FLOAT);
  b.node("Shape", {"emb"}, {"emb_shape"}, "/Shape");
  b.node("Expand", {"keep1", "emb_shape"}, {"keep"}, "/Expand");
  b.node("Where", {"pad", "minus100", "emb"}, {"filled"}, "/Where");
  b.node("Add", {"filled", "keep"}, {"h"}, "/Add");
  b.node("MatMul", {"h", "w"}, {"y"}, "/fc/MatMul");
  b.output("y", 3);
  return b.bytes();
}

// The model's output computed directly (h as float32 sums, the MatMul in double).
std::vector<float> expected(const std::vector<int64_t>& ids, const float* w, bool quantized) {
  auto q84 = [&](float v) {  // s8.4, round half to even
    return quantized ? std::clamp(std::nearbyint(v * 16.0f), -128.0f, 127.0f) / 16.0f : v;
  };
  std::vector<float> y;
  for (size_t t = 0; t < ids.size(); ++t) {
    float h[kDim];
    for (int64_t k = 0; k < kDim; ++k) {
      h[k] = ids[t] == 0 ? -100.0f : table_at(ids[t], k) + 1.0f;
    }
    for (int64_t j = 0; j < 2; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < kDim; ++k) acc += double{q84(h[k])} * q84(w[k * 2 + j]);
      y.push_back(static_cast<float>(acc));
    }
  }
  return y;
}

template <typename T>
Tensor ids_tensor(const std::vector<int64_t>& ids) {
  std::vector<T> v(ids.begin(), ids.end());
  return Tensor::from<T>({static_cast<int64_t>(ids.size()) / kSeq, kSeq}, v);
}

TEST(ImportSeq, TokenIdsGatherEmbeddingsAndMasksInAllModes) {
  const std::vector<int64_t> ids = {3, 1, 0, 6, 0,  // sample 0 (two pads)
                                    0, 0, 0, 0, 0,  // all pad
                                    5, 4, 3, 2, 1};
  const float w[] = {0.5f, -0.25f, 1.0f, 0.75f, -1.5f, 0.125f};
  for (int32_t id_type : {::onnx::TensorProto::INT64, ::onnx::TensorProto::INT32}) {
    const ir::Graph g = import_model_bytes(embedding_model(id_type), "emb.onnx");
    const DType dt = id_type == ::onnx::TensorProto::INT64 ? DType::kInt64 : DType::kInt32;
    EXPECT_EQ(g.value(g.inputs()[0]).dtype, dt);
    const ir::Node* fc = g.find_node("/fc/MatMul");
    ASSERT_NE(fc, nullptr);
    EXPECT_EQ(ir::mase_op(g, *fc), "linear");
    const ir::Node* gather = g.find_node("/emb/Gather");
    ASSERT_NE(gather, nullptr);
    EXPECT_EQ(ir::mase_op(g, *gather), "embedding");
    quant::NodeQuantConfig s8{.quantized = true,
                              .data_in = quant::FixedFormat{8, 4, true},
                              .weight = quant::FixedFormat{8, 4, true}};
    for (runtime::Mode mode : {runtime::Mode::kFloat, runtime::Mode::kFake, runtime::Mode::kInt}) {
      for (bool reference : {false, true}) {
        runtime::PlanOptions o{.mode = mode, .max_batch = 8, .use_reference_kernels = reference};
        if (mode != runtime::Mode::kFloat) o.quant = {{fc->config_name, s8}};
        const auto plan = runtime::make_plan(g, o);
        EXPECT_EQ(plan->input_dtype(), dt);
        runtime::Executor ex(plan);
        const Tensor x = dt == DType::kInt64 ? ids_tensor<int64_t>(ids) : ids_tensor<int32_t>(ids);
        const Tensor& y = ex.run(x);
        ASSERT_EQ(y.shape(), (Shape{3, kSeq, 2}));
        const std::vector<float> want = expected(ids, w, mode != runtime::Mode::kFloat);
        for (int64_t i = 0; i < y.numel(); ++i) {
          EXPECT_NEAR(y.data<float>()[i], want[i], 1e-4 * std::max(1.0f, std::fabs(want[i])))
              << runtime::mode_name(mode) << " ref=" << reference << " i=" << i;
        }
        // One sample at a time gives the same rows (the plan stays row-independent).
        const Tensor& y1 = ex.run(x.rows(2, 3));
        for (int64_t i = 0; i < y1.numel(); ++i) {
          EXPECT_NEAR(y1.data<float>()[i], want[2 * kSeq * 2 + i],
                      1e-4 * std::max(1.0f, std::fabs(want[2 * kSeq * 2 + i])));
        }
      }
    }
  }
}

// MASE leaves nn.Embedding alone: `embedding` is no quantizable op type, so naming the lookup
// in an assignment is refused in both quantized modes, naming the op type.
TEST(ImportSeq, EmbeddingsAreNotQuantizable) {
  const ir::Graph g = import_model_bytes(embedding_model(::onnx::TensorProto::INT64), "emb.onnx");
  const ir::Node* gather = g.find_node("/emb/Gather");
  ASSERT_NE(gather, nullptr);
  quant::NodeQuantConfig s8{.quantized = true, .data_in = quant::FixedFormat{8, 4, true}};
  for (runtime::Mode mode : {runtime::Mode::kFake, runtime::Mode::kInt}) {
    try {
      runtime::make_plan(g, {.mode = mode, .quant = {{gather->config_name, s8}}});
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot quantize op type 'embedding'"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ImportSeq, AnIdOutsideTheTableGivesNanRowsNotAnOutOfBoundsRead) {
  const ir::Graph g = import_model_bytes(embedding_model(::onnx::TensorProto::INT64), "emb.onnx");
  for (bool reference : {false, true}) {
    auto plan = runtime::make_plan(g, {.max_batch = 2, .use_reference_kernels = reference});
    runtime::Executor ex(plan);
    const Tensor& y = ex.run(ids_tensor<int64_t>({1, 2, kVocab, -1, -kVocab - 1}));
    for (int64_t t = 0; t < kSeq; ++t) {
      const bool bad = t == 2 || t == 4;  // -1 is the last row, as ONNX's negative indices
      for (int64_t j = 0; j < 2; ++j) {
        EXPECT_EQ(std::isnan(y.data<float>()[t * 2 + j]), bad) << t << " " << reference;
      }
    }
  }
}

TEST(ImportSeq, IntegerIdsIntoAFloatOpAreRefusedNamingTheFix) {
  ModelBuilder b(13, {-1, 4}, "ids");
  b.model().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      ::onnx::TensorProto::INT64);
  b.init("w", {4, 2}, std::vector<float>(8, 1.0f));
  b.node("MatMul", {"ids", "w"}, {"y"}, "/fc/MatMul");
  b.output("y");
  try {
    import_model_bytes(b.bytes(), "ids.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("node '/fc/MatMul' (MatMul): input 0 is int64; MatMul needs float32"),
              std::string::npos)
        << m;
  }
}

// Where / Equal / Not / And with broadcasting as masked_fill exports write them: a [1, 1, 1, S]
// bool mask And-ed with (scores != 0) over [batch, H, S, S] scores, Where filling -1e9.
TEST(ImportSeq, MaskedFillOfAttentionScores) {
  constexpr int64_t kHeads = 2, kS = 3;
  ModelBuilder c(17, {-1, kHeads, kS, kS});
  c.init("zero", {}, std::vector<float>{0.0f});
  c.init("neg", {}, std::vector<float>{-1e9f});
  auto* keep = c.model().mutable_graph()->add_initializer();
  keep->set_name("keep");
  keep->set_data_type(::onnx::TensorProto::BOOL);
  for (int64_t d : {int64_t{1}, int64_t{1}, int64_t{1}, kS}) keep->add_dims(d);
  for (int v : {1, 1, 0}) keep->add_int32_data(v);
  c.node("Equal", {"x", "zero"}, {"is0"}, "/Equal");
  c.node("Not", {"is0"}, {"nz"}, "/Not");
  c.node("And", {"nz", "keep"}, {"use"}, "/And");
  c.node("Where", {"use", "x", "neg"}, {"y"}, "/Where");
  c.output("y", 4);
  const ir::Graph g = import_model_bytes(c.bytes(), "m.onnx");
  Tensor x({2, kHeads, kS, kS}, DType::kFloat32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 5) - 1.0f;
  for (bool reference : {false, true}) {
    auto plan = runtime::make_plan(g, {.max_batch = 2, .use_reference_kernels = reference});
    runtime::Executor ex(plan);
    const Tensor& y = ex.run(x);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x.data<float>()[i];
      const bool use = v != 0.0f && i % kS != 2;
      EXPECT_EQ(y.data<float>()[i], use ? v : -1e9f) << i;
    }
  }
}

// torch.where(mask, torch.zeros_like(x), x) and x + zeros_like(x): torch writes the zeros as
// ConstantOfShape(Shape(x)), a batch-dependent fill. Where the other operands already broadcast
// to exactly that shape, the zeros are the scalar 0; zeros of another shape (which would
// broadcast the result bigger) stay refused with the message naming the ConstantOfShape.
TEST(ImportSeq, ZerosLikeAnOperandIsTheScalarZero) {
  auto model = [](bool other_shape) {
    ModelBuilder c(13, {-1, 3, 4});
    c.init("half", {}, std::vector<float>{0.5f});
    c.node("Shape", {"x"}, {"s"}, "/Shape");
    if (other_shape) {  // [N, 3, 4, 1]: zeros of rank 4
      c.constant("one", {1}, {1});
      auto& cat = c.node("Concat", {"s", "one"}, {"s4"}, "/Concat");
      set_int(cat, "axis", 0);
    }
    c.node("ConstantOfShape", {other_shape ? "s4" : "s"}, {"z"}, "/ConstantOfShape");
    c.node("Equal", {"x", "half"}, {"m"}, "/Equal");
    c.node("Where", {"m", "z", "x"}, {"w"}, "/Where");
    c.node("Add", {"w", "z"}, {"y"}, "/Add");
    c.output("y", 3);
    return c;
  };
  ModelBuilder bad_shape = model(true);
  try {
    import_model_bytes(bad_shape.bytes(), "m.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("made by ConstantOfShape '/ConstantOfShape'"),
              std::string::npos)
        << e.what();
  }
  ModelBuilder c = model(false);
  const ir::Graph g = import_model_bytes(c.bytes(), "m.onnx");
  Tensor x({3, 3, 4}, DType::kFloat32);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i % 4) * 0.5f;
  for (bool reference : {false, true}) {
    auto plan = runtime::make_plan(g, {.max_batch = 3, .use_reference_kernels = reference});
    runtime::Executor ex(plan);
    const Tensor& y = ex.run(x);
    ASSERT_EQ(y.shape(), x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x.data<float>()[i];
      EXPECT_EQ(y.data<float>()[i], v == 0.5f ? 0.0f : v) << i;
    }
  }
}

// Gather / Slice along the batch dim with negative indices, as ONNX defines them: the last
// sample (x[-1], Gather) and x[-1:] (Slice) are resolved for each run's batch; the plan is then
// not row-independent (no micro-batches), so slicing never splits the batch.
TEST(ImportSeq, GatherAndSliceAlongTheBatchResolvePerRun) {
  ModelBuilder c(13, {-1, 3});
  c.constant("last", {}, {-1});
  c.node("Gather", {"x", "last"}, {"xl"}, "/Gather");  // [3]
  c.constant("st", {1}, {-1});
  c.constant("en", {1}, {std::numeric_limits<int64_t>::max()});
  c.constant("ax", {1}, {0});
  c.node("Slice", {"x", "st", "en", "ax"}, {"tail"}, "/Slice");  // [1, 3]
  c.node("Add", {"x", "xl"}, {"a"}, "/Add");
  c.node("Add", {"a", "tail"}, {"y"}, "/Add_1");
  c.output("y");
  const ir::Graph g = import_model_bytes(c.bytes(), "batch.onnx");
  for (bool reference : {false, true}) {
    auto plan = runtime::make_plan(g, {.max_batch = 5, .use_reference_kernels = reference});
    EXPECT_EQ(plan->micro_batch(), 0);
    runtime::Executor ex(plan);
    for (int64_t batch : {1, 3, 5}) {
      Tensor x({batch, 3}, DType::kFloat32);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i * i % 7);
      const Tensor& y = ex.run(x);
      for (int64_t r = 0; r < batch; ++r) {
        for (int64_t k = 0; k < 3; ++k) {
          EXPECT_EQ(y.data<float>()[r * 3 + k],
                    x.data<float>()[r * 3 + k] + 2 * x.data<float>()[(batch - 1) * 3 + k])
              << batch << " " << r << " " << k;
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
