// make_plan: validation errors, fusion, buffer planning, and what an Executor guarantees
// (thread-count independence, batch independence, concurrent executors over one plan).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <cfloat>
#include <cstdlib>

#include <thread>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"
#include "runtime/test_models.h"

namespace qsearch::runtime {
namespace {

using ir::OpKind;
using testing::expect_close;
using testing::GraphMaker;
using testing::make_mlp;
using testing::make_residual_cnn;
using testing::max_abs;
using testing::random_tensor;
using testing::run_graph;
using testing::same_bits;

// make_plan(g) must throw an Error whose message contains every one of `parts`.
void expect_plan_error(const ir::Graph& g, const std::vector<std::string>& parts,
                       PlanOptions options = {}) {
  try {
    make_plan(g, options);
    ADD_FAILURE() << "no error; expected one mentioning '" << parts[0] << "'";
  } catch (const Error& e) {
    for (const auto& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << e.what() << "' does not mention '" << p << "'";
    }
  }
}

TEST(PlanErrors, GraphInputs) {
  {
    ir::Graph g;
    ir::ValueId a = g.add_input("a", {kDynamic, 3}), b = g.add_input("b", {kDynamic, 3});
    ir::ValueId y = g.add_value("y");
    g.add_node({OpKind::kAdd, "sum", {a, b}, {y}, ir::NoAttrs{}, ""});
    g.mark_output(y);
    g.finalize();
    // Several inputs (a BERT's input_ids and attention_mask) plan and run, each fed by its own
    // tensor: a + b, not a + a.
    const auto plan = make_plan(g, {.max_batch = 4});
    ASSERT_EQ(plan->num_inputs(), 2u);
    EXPECT_EQ(plan->input_name(0), "a");
    EXPECT_EQ(plan->input_name(1), "b");
    Executor ex(plan);
    const std::vector<Tensor> in = {Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6}),
                                    Tensor::from<float>({2, 3}, {10, 20, 30, 40, 50, 60})};
    const Tensor& out = ex.run(in);
    ASSERT_EQ(out.shape(), (Shape{2, 3}));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(out.data<float>()[i], 11.0f * (i + 1));
  }
  {
    // Every input is checked as the one was: a second input without the dynamic batch.
    ir::Graph g;
    ir::ValueId a = g.add_input("a", {kDynamic, 3});
    g.add_input("b", {4, 3});
    ir::ValueId y = g.add_value("y");
    g.add_node({OpKind::kRelu, "r", {a}, {y}, ir::NoAttrs{}, ""});
    g.mark_output(y);
    g.finalize();
    expect_plan_error(g, {"'b'", "[4, 3]", "dynamic batch"});
  }
  {
    GraphMaker m({4, 3});  // fixed batch
    expect_plan_error(m.finish(m.op(OpKind::kRelu, {m.input()})),
                      {"'x'", "[4, 3]", "dynamic batch"});
  }
  {
    // An int64 input (token ids) is accepted, but not into an op that computes in float32:
    // finalize() refuses it naming the node, the input and the dtypes.
    ir::Graph g;
    ir::ValueId x = g.add_input("ids", {kDynamic, 3}, DType::kInt64);
    ir::ValueId y = g.add_value("y");
    g.add_node({OpKind::kRelu, "r", {x}, {y}, ir::NoAttrs{}, ""});
    g.mark_output(y);
    try {
      g.finalize();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      for (const char* part : {"node 'r' (Relu)", "'ids' int64", "needs float32"}) {
        EXPECT_NE(m.find(part), std::string::npos) << m;
      }
    }
  }
  {
    // A double input is refused by make_plan.
    ir::Graph g;
    ir::ValueId x = g.add_input("x", {kDynamic, 3}, DType::kFloat64);
    ir::ValueId y = g.add_value("y");
    g.add_node({OpKind::kIdentity, "i", {x}, {y}, ir::NoAttrs{}, ""});
    g.mark_output(y);
    g.finalize();
    expect_plan_error(g, {"'x'", "float64", "int64 (token ids)"});
  }
}

TEST(PlanErrors, ModeBatchRankAndNodes) {
  GraphMaker m({kDynamic, 3});
  ir::Graph g = m.finish(m.op(OpKind::kRelu, {m.input()}));
  // The quantized modes check the assignment against the graph (tests/runtime/quant_*_test.cc
  // cover the rest).
  quant::NodeQuantConfig relu8{.quantized = true, .data_in = quant::FixedFormat{8, 4, false}};
  for (Mode mode : {Mode::kInt, Mode::kFake}) {
    expect_plan_error(g, {"'rleu'", "no node", "did you mean 'relu'"},
                      {.mode = mode, .quant = {{"rleu", relu8}}});
  }
  expect_plan_error(g, {"max_batch"}, {.max_batch = 0});
  {
    GraphMaker r({kDynamic, 2});
    ir::ValueId y = r.op(OpKind::kReshape, {r.input()},
                         ir::ReshapeAttrs{{0, 1, 1, 1, 1, 1, 1, 1, 2}});  // rank 9
    expect_plan_error(r.finish(y), {"rank 9", "at most 8"});
  }
  {
    GraphMaker p({kDynamic, 1, 4, 4});
    ir::ValueId y = p.op(OpKind::kMaxPool, {p.input()},
                         ir::PoolAttrs{.kernel = {2, 2}, .strides = {2, 2}, .pads = {2, 0, 0, 0}});
    ir::Graph pg = p.finish(y);
    expect_plan_error(pg, {pg.nodes()[0].name, "MaxPool", "only padding"});
  }
  {
    GraphMaker d({kDynamic, 3});
    ir::ValueId y = d.op(OpKind::kDropout, {d.input()}, ir::DropoutAttrs{}, 2);
    ir::Graph dg = d.graph().clone();
    dg.mark_output(y);
    dg.mark_output(y + 1);  // the mask
    dg.finalize();
    expect_plan_error(dg, {"Dropout", "mask"});
  }
  {
    ir::Graph cg;
    ir::ValueId x = cg.add_input("x", {kDynamic, 2});
    ir::ValueId k = cg.add_constant("k", Tensor::from<int64_t>({2}, {1, 2}));
    ir::ValueId y = cg.add_value("y");
    cg.add_node({OpKind::kAdd, "/block/Add", {x, k}, {y}, ir::NoAttrs{}, ""});
    cg.mark_output(y);
    // Integer data into an op that computes in float32: finalize() (ir::infer_node_dtype)
    // refuses it naming the node, the value and its dtype.
    try {
      cg.finalize();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string m = e.what();
      for (const char* part : {"/block/Add", "'k' int64", "needs float32"}) {
        EXPECT_NE(m.find(part), std::string::npos) << m;
      }
    }
  }
}

TEST(Plan, NeverMutatesTheGraphAndOutlivesIt) {
  Tensor x = random_tensor({3, 1, 28, 28}, 1, 0.0f, 1.0f);
  std::shared_ptr<const Plan> plan;
  Tensor want;
  {
    ir::Graph g = make_residual_cnn();
    ir::Graph before = g.clone();
    plan = make_plan(g, {.max_batch = 8});
    for (size_t v = 0; v < g.values().size(); ++v) {
      if (g.values()[v].is_constant()) {
        EXPECT_TRUE(same_bits(g.values()[v].data, before.values()[v].data)) << v;
      }
    }
    EXPECT_EQ(ir::to_string(g), ir::to_string(before));
    want = run_graph(g, x, false, 8);
    for (auto& v : g.nodes()) (void)v;
    // Training would update constants in place: the plan holds its own copies.
    for (size_t v = 0; v < g.values().size(); ++v) {
      auto& val = g.value(static_cast<ir::ValueId>(v));
      if (val.is_constant()) val.data.span<float>()[0] += 1.0f;
    }
  }
  Executor ex(plan);
  EXPECT_TRUE(same_bits(ex.run(x), want));
}

// QSEARCH_PROFILE: the executor times every step and prints one row per step, by total time,
// with its node and calls, when it is destroyed; results are the same bits; unset, it prints
// nothing.
TEST(Executor, ProfilePrintsEveryStepWithItsCalls) {
  const ir::Graph g = make_residual_cnn();
  const auto plan = make_plan(g, {.max_batch = 4});
  const Tensor x = random_tensor({3, 1, 28, 28}, 2, 0.0f, 1.0f);
  Tensor want;
  ::testing::internal::CaptureStderr();
  {
    Executor ex(plan);
    want = ex.run(x).clone();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::setenv("QSEARCH_PROFILE", "1", 1);
  ::testing::internal::CaptureStderr();
  {
    Executor ex(plan);
    for (int r = 0; r < 3; ++r) EXPECT_TRUE(same_bits(ex.run(x), want));
  }
  ::unsetenv("QSEARCH_PROFILE");
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find(fmt::format("QSEARCH_PROFILE: {} steps", plan->steps().size())),
            std::string::npos)
      << out;
  for (const auto& step : plan->steps()) {
    EXPECT_NE(out.find(fmt::format("      3  {}: {}", step->node, step->describe())),
              std::string::npos)
        << step->node << "\n"
        << out;
  }
}

TEST(Plan, ParameterBytes) {
  auto plan = make_plan(make_mlp({784, 256, 128, 10}), {.max_batch = 4});
  EXPECT_EQ(plan->parameter_bytes(), 4 * (784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10));
  // A constant read by two nodes counts once.
  GraphMaker m({kDynamic, 3});
  ir::ValueId k = m.constant({3}, 1);
  ir::ValueId a = m.op(OpKind::kAdd, {m.input(), k});
  ir::Graph g = m.finish(m.op(OpKind::kMul, {a, k}));
  EXPECT_EQ(make_plan(g, {.max_batch = 2})->parameter_bytes(), 12);
}

TEST(Plan, FusesConvBatchNormAddRelu) {
  ir::Graph g = make_residual_cnn();
  auto plan = make_plan(g, {.max_batch = 16});
  const std::string s = plan->to_string();
  // conv+bn+relu, maxpool, conv+bn+relu, conv+bn+add+relu, maxpool, gemm
  ASSERT_EQ(plan->steps().size(), 6u) << s;
  EXPECT_NE(s.find("[+batchnorm +relu]"), std::string::npos) << s;
  EXPECT_NE(s.find("[+batchnorm +add +relu]"), std::string::npos) << s;
  Tensor x = random_tensor({16, 1, 28, 28}, 2, 0.0f, 1.0f);
  Tensor fast = run_graph(g, x, false), ref = run_graph(g, x, true);
  // End to end (several layers, BN folded) the per-kernel bounds compound; this is a
  // regression check at 1e-5 of the logits' scale.
  expect_close(fast, ref, 1e-5 * (1.0 + max_abs(ref)), 0, "cnn");
}

TEST(Plan, FusesMatMulBiasAddAndClip) {
  GraphMaker m({kDynamic, 12});
  ir::ValueId h = m.op(OpKind::kMatMul, {m.input(), m.constant({12, 9}, 1)});
  h = m.op(OpKind::kAdd, {m.constant({9}, 2), h});
  h = m.op(OpKind::kClip, {h}, ir::ClipAttrs{-0.1f, 0.3f});
  ir::Graph g = m.finish(h);
  auto plan = make_plan(g, {.max_batch = 8});
  ASSERT_EQ(plan->steps().size(), 1u) << plan->to_string();
  EXPECT_NE(plan->to_string().find("[+bias +clip]"), std::string::npos) << plan->to_string();
  Tensor x = random_tensor({8, 12}, 3);
  expect_close(run_graph(g, x, false, 8), run_graph(g, x, true, 8), 1e-6, 0, "matmul+bias+clip");
}

TEST(Plan, DoesNotFuseValuesReadTwiceOrComputedLater) {
  // y = conv(x) is read by the relu and by the add: nothing may be fused into the conv step
  // past the conv itself; the add's other operand (relu(y)) is computed after the conv.
  GraphMaker m({kDynamic, 2, 5, 5});
  ir::ValueId y = m.op(OpKind::kConv, {m.input(), m.constant({2, 2, 1, 1}, 1)},
                       ir::ConvAttrs{.kernel = {1, 1}});
  ir::ValueId r = m.op(OpKind::kRelu, {y});
  ir::Graph g = m.finish(m.op(OpKind::kAdd, {y, r}));
  auto plan = make_plan(g, {.max_batch = 4});
  EXPECT_EQ(plan->steps().size(), 3u) << plan->to_string();
  Tensor x = random_tensor({4, 2, 5, 5}, 4);
  expect_close(run_graph(g, x, false, 4), run_graph(g, x, true, 4), 1e-6, 0, "no fusion");
}

TEST(Plan, ReusesDeadBuffersWithoutCorruption) {
  // a = relu(x); b = sigmoid(a); c = tanh(b); d = c + a; e = d * x: `a` and `x` are read after
  // other values were computed, so their storage must survive while dead values' is reused.
  GraphMaker m({kDynamic, 64});
  ir::ValueId a = m.op(OpKind::kRelu, {m.input()});
  ir::ValueId b = m.op(OpKind::kSigmoid, {a});
  ir::ValueId c = m.op(OpKind::kTanh, {b});
  ir::ValueId d = m.op(OpKind::kAdd, {c, a});
  ir::ValueId e = m.op(OpKind::kMul, {d, m.input()});
  ir::ValueId f = m.op(OpKind::kSub, {e, d});
  ir::Graph g = m.finish(f);
  auto plan = make_plan(g, {.max_batch = 8, .use_reference_kernels = true});
  EXPECT_LT(plan->buffer_bytes().size(), plan->steps().size()) << plan->to_string();
  Tensor x = random_tensor({8, 64}, 5, -3.0f, 3.0f);
  Executor ex(plan);
  const Tensor& got = ex.run(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float xv = x.data<float>()[i];
    const float av = xv > 0 ? xv : 0.0f;
    const float bv = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(av))));
    const float cv = static_cast<float>(std::tanh(static_cast<double>(bv)));
    const float dv = cv + av;
    const volatile float ev = dv * xv;  // volatile: no contraction of e - d into an FMA
    EXPECT_EQ(got.data<float>()[i], ev - dv) << i;
  }
  // The residual CNN: its skip value (x1) is read after two convs. Three buffers for the
  // intermediates and one of its own for the output (filled slice by slice).
  ir::Graph cnn = make_residual_cnn();
  auto cplan = make_plan(cnn, {.max_batch = 4});
  EXPECT_LE(cplan->buffer_bytes().size(), 4u) << cplan->to_string();
}

TEST(Executor, IdenticalForOneAndTwoThreads) {
  const int saved = num_threads();
  for (const ir::Graph& g : {make_mlp({784, 256, 128, 10}), make_residual_cnn()}) {
    Tensor x = random_tensor({37, 1, 28, 28}, 6, 0.0f, 1.0f);
    auto plan = make_plan(g, {.max_batch = 64});
    Executor ex(plan);
    set_num_threads(1);
    Tensor one = ex.run(x).clone();
    set_num_threads(2);
    Tensor two = ex.run(x).clone();
    EXPECT_TRUE(same_bits(one, two));
  }
  set_num_threads(saved);
}

TEST(Executor, SampleResultsDoNotDependOnTheBatch) {
  for (const ir::Graph& g : {make_mlp({784, 256, 128, 10}), make_residual_cnn()}) {
    auto plan = make_plan(g, {.max_batch = 32});
    Executor ex(plan);
    Tensor x = random_tensor({29, 1, 28, 28}, 7, 0.0f, 1.0f);
    Tensor all = ex.run(x).clone();
    for (int64_t i : {0, 5, 28}) {
      Tensor one = ex.run(x.rows(i, i + 1)).clone();
      EXPECT_TRUE(same_bits(one, all.rows(i, i + 1).clone())) << "row " << i;
    }
  }
}

TEST(Executor, SlicedRunEqualsWholeRun) {
  // One thread: run() walks the batch in micro-batches; two threads: these small models' slices
  // are too short for threaded kernels, so the batch runs whole.
  const int saved = num_threads();
  for (const ir::Graph& g : {make_mlp({784, 256, 128, 10}), make_residual_cnn()}) {
    auto plan = make_plan(g, {.max_batch = 128});
    ASSERT_GT(plan->micro_batch(), 0);
    ASSERT_LT(plan->micro_batch(), 125);
    Executor ex(plan);
    Tensor x = random_tensor({125, 1, 28, 28}, 9, 0.0f, 1.0f);
    set_num_threads(1);
    Tensor sliced = ex.run(x).clone();
    set_num_threads(2);
    EXPECT_EQ(ex.slice_for(125), 125);
    Tensor whole = ex.run(x).clone();
    EXPECT_TRUE(same_bits(sliced, whole));
  }
  set_num_threads(saved);
}

// With threaded kernels a batch is sliced too when each slice is long enough for the threads
// (Executor::slice_for): a 3x3 conv of 512 -> 128 channels on 4x4 maps (2.4 MB of weights, so
// slices of several dozen samples, each 9.4M multiply-accumulates). Two threads in slices, one
// thread in slices and single samples (whole batches of one): the same bits.
TEST(Executor, ThreadedSlicesEqualSingleSamples) {
  GraphMaker m({kDynamic, 512, 4, 4});
  const float r = 1.0f / std::sqrt(512.0f * 9);
  ir::ValueId w = m.constant({128, 512, 3, 3}, 21, -r, r);
  ir::ValueId b = m.constant({128}, 22, -r, r);
  ir::ValueId y =
      m.op(OpKind::kConv, {m.input(), w, b}, ir::ConvAttrs{.kernel = {3, 3}, .pads = {1, 1, 1, 1}});
  const ir::Graph g = m.finish(m.op(OpKind::kRelu, {y}));
  constexpr int64_t kBatch = 150;
  auto plan = make_plan(g, {.max_batch = kBatch});
  Executor ex(plan);
  const Tensor x = random_tensor({kBatch, 512, 4, 4}, 23);
  const int saved = num_threads();
  set_num_threads(2);
  const int64_t slice = ex.slice_for(kBatch);
  EXPECT_GT(slice, 1);
  EXPECT_LT(slice, kBatch) << "two threads should run this batch in slices";
  EXPECT_EQ(kBatch % slice == 0, false) << "want a ragged last slice";
  const Tensor threaded = ex.run(x).clone();
  set_num_threads(1);
  EXPECT_EQ(ex.slice_for(kBatch), slice);
  EXPECT_TRUE(same_bits(ex.run(x).clone(), threaded));
  for (int64_t i : {int64_t{0}, slice - 1, slice, kBatch - 1}) {
    EXPECT_TRUE(same_bits(ex.run(x.rows(i, i + 1)).clone(), threaded.rows(i, i + 1).clone()))
        << "row " << i;
  }
  set_num_threads(saved);
}

TEST(Plan, GraphsMixingSamplesRunWhole) {
  GraphMaker m({kDynamic, 6});
  ir::ValueId r = m.op(OpKind::kRelu, {m.input()});
  ir::Graph g = m.finish(m.op(OpKind::kSoftmax, {r}, ir::AxisAttrs{0}));  // across the batch
  auto plan = make_plan(g, {.max_batch = 4096});
  EXPECT_EQ(plan->micro_batch(), 0);
  Tensor x = random_tensor({3000, 6}, 10);
  const int saved = num_threads();
  set_num_threads(1);
  // Sliced into micro-batches, each slice would be normalised on its own: values off by far more
  // than the fast softmax's rounding ((n + 8) * FLT_EPSILON relative, n = 3000).
  const Tensor fast = run_graph(g, x, false, 4096), ref = run_graph(g, x, true, 4096);
  for (int64_t i = 0; i < fast.numel(); ++i) {
    EXPECT_NEAR(fast.data<float>()[i], ref.data<float>()[i],
                3008 * FLT_EPSILON * ref.data<float>()[i]);
  }
  set_num_threads(saved);
  GraphMaker c({kDynamic, 6});
  ir::Graph cg = c.finish(c.op(OpKind::kConcat, {c.input(), c.input()}, ir::AxisAttrs{0}));
  EXPECT_EQ(make_plan(cg, {.max_batch = 4096})->micro_batch(), 0);
}

TEST(Executor, ConcurrentExecutorsShareOnePlan) {
  ir::Graph g = make_residual_cnn();
  auto plan = make_plan(g, {.max_batch = 16});
  constexpr int kThreads = 4;
  std::vector<Tensor> inputs, want(kThreads), got(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    inputs.push_back(random_tensor({16, 1, 28, 28}, 100 + t, 0.0f, 1.0f));
    Executor ex(plan);
    want[t] = ex.run(inputs[t]).clone();
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Executor ex(plan);
      for (int rep = 0; rep < 3; ++rep) got[t] = ex.run(inputs[t]).clone();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(same_bits(got[t], want[t])) << t;
}

TEST(Executor, OutputViewsAndCopies) {
  // An output that is a view of the input is copied into an executor buffer.
  GraphMaker m({kDynamic, 2, 3});
  ir::Graph g = m.finish(m.op(OpKind::kFlatten, {m.input()}, ir::AxisAttrs{1}));
  auto plan = make_plan(g, {.max_batch = 4});
  ASSERT_EQ(plan->steps().size(), 1u);
  Executor ex(plan);
  Tensor x = random_tensor({3, 2, 3}, 8);
  const Tensor& y = ex.run(x);
  EXPECT_EQ(y.shape(), (Shape{3, 6}));
  EXPECT_NE(y.raw(), x.raw());
  EXPECT_TRUE(same_bits(y, x.reshaped({3, 6})));
}

}  // namespace
}  // namespace qsearch::runtime
