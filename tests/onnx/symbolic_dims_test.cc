// Symbolic input dims besides the batch (issue 11: a model exported with dynamic_axes
// {0: 'batch', 1: 'seq'}): read_graph_inputs names them without importing; import binds them to
// ImportOptions::dims before folding, so that the shape computations built on them (a position
// table sliced to `seq`, a Reshape target from Shape -> Gather -> Concat) fold at that size; an
// unbound one is a one-line error naming the input, the dim and the fix. Before, any symbolic dim
// but the batch was refused.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/import.h"
#include "onnx/model_builder.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "support/source_dir.h"

namespace qsearch::onnx {
namespace {

using testing::ModelBuilder;

constexpr int64_t kPositions = 8, kWidth = 4;

float table_at(int64_t t, int64_t k) { return 0.5f * static_cast<float>(t) - 0.25f * k; }

// x [batch, seq, 4] -> x + table[position_ids[:seq]] -> Reshape to Concat(N, seq, 2, 2) (both from
// Shape(x))
// -> Flatten -> y [batch, seq * 4].
ModelBuilder seq_model() {
  ModelBuilder b(13, {-1, 1, kWidth});
  auto* dim = b.model()
                  .mutable_graph()
                  ->mutable_input(0)
                  ->mutable_type()
                  ->mutable_tensor_type()
                  ->mutable_shape()
                  ->mutable_dim(1);
  dim->set_dim_param("seq");
  std::vector<float> table;
  for (int64_t t = 0; t < kPositions; ++t) {
    for (int64_t k = 0; k < kWidth; ++k) table.push_back(table_at(t, k));
  }
  b.init<float>("table", {kPositions, kWidth}, table);
  b.node("Shape", {"x"}, {"s"}, "/Shape");
  b.constant("i0", {}, {0});
  b.constant("i1", {}, {1});
  b.constant("zero", {1}, {0});
  b.constant("axis0", {1}, {0});
  b.constant("two", {1}, {2});
  b.node("Gather", {"s", "i0"}, {"n"}, "/Gather");
  b.node("Gather", {"s", "i1"}, {"t"}, "/Gather_1");
  b.constant("unsq", {1}, {0});
  b.node("Unsqueeze", {"n", "unsq"}, {"n1"}, "/Unsqueeze");
  b.node("Unsqueeze", {"t", "unsq"}, {"t1"}, "/Unsqueeze_1");
  // transformers' position_ids[:, :seq] -> embedding table rows.
  b.constant("position_ids", {kPositions}, {0, 1, 2, 3, 4, 5, 6, 7});
  b.node("Slice", {"position_ids", "zero", "t1", "axis0"}, {"ids"}, "/Slice");
  b.node("Gather", {"table", "ids"}, {"pos"}, "/Gather_2");
  b.node("Add", {"x", "pos"}, {"a"}, "/Add");
  auto& cat = b.node("Concat", {"n1", "t1", "two", "two"}, {"target"}, "/Concat");
  testing::set_int(cat, "axis", 0);
  b.node("Reshape", {"a", "target"}, {"r"}, "/Reshape");
  auto& f = b.node("Flatten", {"r"}, {"y"}, "/Flatten");
  testing::set_int(f, "axis", 1);
  b.output("y", 2);
  return b;
}

TEST(SymbolicDims, ReadGraphInputsNamesThemWithoutImporting) {
  const auto in = read_graph_inputs(std::string(QSEARCH_SOURCE_DIR) +
                                    "/tests/fixtures/seqlen/bert_seq_opset17.onnx");
  ASSERT_TRUE(in.has_value());
  ASSERT_EQ(in->size(), 3u);
  const char* names[] = {"input_ids", "attention_mask", "token_type_ids"};
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ((*in)[k].name, names[k]);
    EXPECT_EQ((*in)[k].dims, (std::vector<int64_t>{kDynamic, kDynamic}));
    EXPECT_EQ((*in)[k].dim_names, (std::vector<std::string>{"batch", "seq"}));
    EXPECT_TRUE((*in)[k].has_symbolic_dims());
    EXPECT_EQ((*in)[k].str(), "[batch, seq]");
  }
  // A fixed-size model: no dims to bind; initializers listed as inputs are left out.
  ModelBuilder b(13, {-1, 3});
  b.init<float>("w", {3, 2}, std::vector<float>(6, 0.5f));
  b.model().mutable_graph()->add_input()->set_name("w");
  b.node("MatMul", {"x", "w"}, {"y"}, "/MatMul");
  b.output("y");
  const std::string path =
      (std::filesystem::temp_directory_path() / fmt::format("qsearch_symdims_{}.onnx", getpid()))
          .string();
  std::ofstream(path, std::ios::binary) << b.bytes();
  const auto fixed = read_graph_inputs(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(fixed.has_value());
  ASSERT_EQ(fixed->size(), 1u);
  EXPECT_EQ((*fixed)[0].dims, (std::vector<int64_t>{kDynamic, 3}));
  EXPECT_FALSE(ir::any_symbolic_dims(*fixed));
  EXPECT_FALSE(read_graph_inputs("/nonexistent/m.onnx").has_value());
}

TEST(SymbolicDims, UnboundDimIsAnErrorNamingInputDimAndFix) {
  try {
    import_model_bytes(seq_model().bytes(), "seq.onnx");
    ADD_FAILURE() << "imported";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("graph input 'x': dimension 1 is symbolic ('seq')"), std::string::npos) << m;
    EXPECT_NE(m.find("--input-dim seq=SIZE"), std::string::npos) << m;
    EXPECT_NE(m.find("seq.onnx"), std::string::npos) << m;
  }
  try {
    import_model_bytes(seq_model().bytes(), "seq.onnx", {.dims = {{"seq", 9}}});
    ADD_FAILURE() << "imported past the table's 8 rows";
  } catch (const Error&) {
  }
}

TEST(SymbolicDims, ShapeComputationsFoldAtTheBoundSize) {
  for (int64_t seq : {1, 3, 8}) {
    SCOPED_TRACE(seq);
    const ir::Graph g =
        import_model_bytes(seq_model().bytes(), "seq.onnx", {.dims = {{"seq", seq}}});
    EXPECT_EQ(g.value(g.inputs()[0]).shape, (Shape{kDynamic, seq, kWidth}));
    EXPECT_EQ(g.value(g.outputs()[0]).shape, (Shape{kDynamic, seq * kWidth}));
    const int64_t batch = 2;
    Tensor x({batch, seq, kWidth}, DType::kFloat32);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 0.125f * static_cast<float>(i);
    runtime::Executor ex(runtime::make_plan(g, {.max_batch = batch}));
    const Tensor& y = ex.run(x);
    ASSERT_EQ(y.shape(), (Shape{batch, seq * kWidth}));
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = 0; t < seq; ++t) {
        for (int64_t k = 0; k < kWidth; ++k) {
          const int64_t i = (b * seq + t) * kWidth + k;
          EXPECT_EQ(y.data<float>()[i], x.data<float>()[i] + table_at(t, k));
        }
      }
    }
  }
}

}  // namespace
}  // namespace qsearch::onnx
