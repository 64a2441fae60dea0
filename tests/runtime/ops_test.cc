// One hand-built graph per op: the fast plan against the reference plan (bounds of
// docs/numerics.md "Float kernels"), and the reference plan against direct reference-kernel
// calls with independently written params (so that a wrong attribute mapping in a step fails).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <vector>

#include "kernels/ref/conv.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/gemm.h"
#include "kernels/ref/layout.h"
#include "kernels/ref/pool.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"

namespace qsearch::runtime {
namespace {

using ir::OpKind;
using testing::expect_close;
using testing::GraphMaker;
using testing::random_tensor;
using testing::run_graph;
using testing::same_bits;

// The graph with |constants| and |alpha|, |beta|: its reference output on |x| is
// sum_k |a_k b_k| (+ |bias|) per output, the magnitude of the dot-product bound.
ir::Graph abs_graph(const ir::Graph& g) {
  ir::Graph a = g.clone();
  for (size_t v = 0; v < a.values().size(); ++v) {
    auto& val = a.value(static_cast<ir::ValueId>(v));
    if (val.is_constant()) {
      for (float& x : val.data.span<float>()) x = std::fabs(x);
    }
  }
  for (auto& n : a.nodes()) {
    if (auto* at = std::get_if<ir::GemmAttrs>(&n.attrs)) {
      at->alpha = std::fabs(at->alpha);
      at->beta = std::fabs(at->beta);
    }
  }
  return a;
}

Tensor abs_tensor(const Tensor& t) {
  Tensor a = t.clone();
  for (float& x : a.span<float>()) x = std::fabs(x);
  return a;
}

// Fast vs reference plan for a dot-product op with `taps` products per output, at several
// batch sizes. Returns the reference output of the largest batch.
Tensor check_dot_op(const ir::Graph& g, const Shape& sample, int64_t taps, uint64_t seed) {
  Tensor last;
  for (int64_t batch : {1, 3, 16}) {
    Shape s = sample;
    s.insert(s.begin(), batch);
    Tensor x = random_tensor(s, seed + batch);
    Tensor fast = run_graph(g, x, false), ref = run_graph(g, x, true);
    Tensor mag = run_graph(abs_graph(g), abs_tensor(x), true);
    EXPECT_EQ(fast.shape(), ref.shape());
    if (fast.shape() != ref.shape()) return ref;
    int failures = 0;
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const double want = ref.data<float>()[i], got = fast.data<float>()[i];
      const double bound = (taps + 4) * FLT_EPSILON * mag.data<float>()[i] * (1 + 1e-6) +
                           FLT_EPSILON * std::fabs(want);
      if (!(std::fabs(got - want) <= bound) && ++failures <= 5) {
        ADD_FAILURE() << "batch " << batch << " element " << i << ": fast " << got << ", ref "
                      << want << " +- " << bound;
      }
    }
    EXPECT_EQ(failures, 0);
    last = ref;
  }
  return last;
}

// Fast and reference plans agree bit for bit (exact ops), at several batch sizes.
void check_exact_op(const ir::Graph& g, const Shape& sample, uint64_t seed) {
  for (int64_t batch : {1, 2, 16}) {
    Shape s = sample;
    s.insert(s.begin(), batch);
    Tensor x = random_tensor(s, seed + batch);
    Tensor fast = run_graph(g, x, false), ref = run_graph(g, x, true);
    EXPECT_TRUE(same_bits(fast, ref)) << "batch " << batch;
  }
}

TEST(Ops, GemmLinear) {
  GraphMaker m({kDynamic, 37});
  ir::ValueId w = m.constant({19, 37}, 1), c = m.constant({19}, 2);
  ir::Graph g = m.finish(m.op(OpKind::kGemm, {m.input(), w, c}, ir::GemmAttrs{.trans_b = true}));
  Tensor ref = check_dot_op(g, {37}, 37, 10);
  // Reference plan == the reference kernel called directly.
  Tensor x = random_tensor({16, 37}, 10 + 16);
  std::vector<float> want(16 * 19);
  kernels::ref::gemm_f32({.m = 16, .n = 19, .k = 37, .trans_b = true, .c_stride_n = 1},
                         x.data<float>(), g.value(w).data.data<float>(),
                         g.value(c).data.data<float>(), want.data());
  EXPECT_TRUE(same_bits(ref, Tensor::from<float>({16, 19}, want)));
}

TEST(Ops, GemmAlphaBetaAndBiasShapes) {
  for (Shape cs : {Shape{}, Shape{1}, Shape{1, 11}, Shape{11}}) {
    GraphMaker m({kDynamic, 8});
    ir::ValueId w = m.constant({8, 11}, 3), c = m.constant(cs, 4);
    ir::Graph g = m.finish(
        m.op(OpKind::kGemm, {m.input(), w, c}, ir::GemmAttrs{.alpha = 0.5f, .beta = -2.0f}));
    check_dot_op(g, {8}, 8, 20);
  }
}

TEST(Ops, GemmReferencePaths) {
  // trans_a (here of a transposed activation) runs on the reference kernel.
  GraphMaker m({kDynamic, 6});
  ir::ValueId w = m.constant({6, 4}, 5), c = m.constant({4}, 6);
  ir::ValueId t = m.op(OpKind::kTranspose, {m.input()}, ir::TransposeAttrs{{1, 0}});  // [6, B]
  ir::ValueId y = m.op(OpKind::kGemm, {t, w, c}, ir::GemmAttrs{.trans_a = true});     // [B, 4]
  ir::Graph g = m.finish(y);
  Tensor x = random_tensor({4, 6}, 7);
  Tensor got = run_graph(g, x, false);
  std::vector<float> want(16);
  kernels::ref::gemm_f32({.m = 4, .n = 4, .k = 6, .c_stride_m = 0, .c_stride_n = 1},
                         x.data<float>(), g.value(w).data.data<float>(),
                         g.value(c).data.data<float>(), want.data());
  EXPECT_TRUE(same_bits(got, Tensor::from<float>({4, 4}, want)));
  auto plan = make_plan(g, {.max_batch = 8});
  EXPECT_NE(plan->to_string().find("gemm_f32 ref"), std::string::npos) << plan->to_string();
}

TEST(Ops, MatMulByConstantAndBatched) {
  {  // [B, 5, 9] x const [9, 7]: the packed path over B * 5 rows.
    GraphMaker m({kDynamic, 5, 9});
    ir::Graph g = m.finish(m.op(OpKind::kMatMul, {m.input(), m.constant({9, 7}, 8)}));
    check_dot_op(g, {5, 9}, 9, 30);
  }
  {  // [B, 2, 3, 4] x [B, 2, 4, 3] (transposed copy of the input): activation x activation.
    GraphMaker m({kDynamic, 2, 3, 4});
    ir::ValueId t = m.op(OpKind::kTranspose, {m.input()}, ir::TransposeAttrs{{0, 1, 3, 2}});
    ir::Graph g = m.finish(m.op(OpKind::kMatMul, {m.input(), t}));
    Tensor x = random_tensor({2, 2, 3, 4}, 9);
    // The reference plan rounds the exact sum once; the fast plan (kernels/matmul.h) is within
    // the GEMM bound (K + 4) * FLT_EPSILON * sum |a_k b_k|.
    Tensor ref = run_graph(g, x, true), got = run_graph(g, x, false);
    ASSERT_EQ(got.shape(), (Shape{2, 2, 3, 3}));
    for (int64_t b = 0; b < 4; ++b) {  // each [3,4] matrix times its own transpose
      const float* a = x.data<float>() + b * 12;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) {
          double s = 0, mag = 0;
          for (int k = 0; k < 4; ++k) {
            s += static_cast<double>(a[i * 4 + k]) * a[j * 4 + k];
            mag += std::fabs(static_cast<double>(a[i * 4 + k]) * a[j * 4 + k]);
          }
          EXPECT_EQ(ref.data<float>()[b * 9 + i * 3 + j], static_cast<float>(s));
          EXPECT_NEAR(got.data<float>()[b * 9 + i * 3 + j], s, 8 * FLT_EPSILON * mag);
        }
      }
    }
  }
  {  // [B, 4] x [4] (1-D right operand) -> [B]
    GraphMaker m({kDynamic, 4});
    ir::Graph g = m.finish(m.op(OpKind::kMatMul, {m.input(), m.constant({4}, 11)}));
    Tensor x = random_tensor({3, 4}, 12);
    Tensor got = run_graph(g, x, false), ref = run_graph(g, x, true);
    ASSERT_EQ(got.shape(), (Shape{3}));
    const float* w = g.value(g.nodes()[0].inputs[1]).data.data<float>();
    for (int i = 0; i < 3; ++i) {
      double s = 0, mag = 0;
      for (int k = 0; k < 4; ++k) {
        s += static_cast<double>(x.data<float>()[i * 4 + k]) * w[k];
        mag += std::fabs(static_cast<double>(x.data<float>()[i * 4 + k]) * w[k]);
      }
      EXPECT_EQ(ref.data<float>()[i], static_cast<float>(s));
      EXPECT_NEAR(got.data<float>()[i], s, 8 * FLT_EPSILON * mag);
    }
  }
}

TEST(Ops, ConvVariants) {
  struct C {
    int64_t c, h, w, m, kh, kw, s, d, g;
    std::array<int64_t, 4> pads;
    bool bias;
  };
  const C cases[] = {
      {1, 28, 28, 16, 3, 3, 1, 1, 1, {1, 1, 1, 1}, true},
      {4, 9, 7, 6, 3, 2, 2, 1, 2, {0, 1, 2, 0}, false},
      {6, 8, 8, 6, 3, 3, 1, 2, 6, {2, 2, 2, 2}, true},
      {3, 5, 5, 5, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true},
  };
  uint64_t seed = 40;
  for (const C& c : cases) {
    GraphMaker m({kDynamic, c.c, c.h, c.w});
    ir::ConvAttrs at{.kernel = {c.kh, c.kw},
                     .strides = {c.s, c.s},
                     .dilations = {c.d, c.d},
                     .pads = c.pads,
                     .group = c.g};
    std::vector<ir::ValueId> ins = {m.input(), m.constant({c.m, c.c / c.g, c.kh, c.kw}, seed++)};
    if (c.bias) ins.push_back(m.constant({c.m}, seed++));
    ir::Graph g = m.finish(m.op(OpKind::kConv, ins, at));
    Tensor ref = check_dot_op(g, {c.c, c.h, c.w}, c.c / c.g * c.kh * c.kw, seed++);
    // Direct kernel call with the params written out by hand.
    const ir::Value& out = g.value(g.outputs()[0]);
    kernels::Conv2dParams p{.batch = 16,
                            .in_channels = c.c,
                            .in_h = c.h,
                            .in_w = c.w,
                            .out_channels = c.m,
                            .out_h = out.shape[2],
                            .out_w = out.shape[3],
                            .kernel_h = c.kh,
                            .kernel_w = c.kw,
                            .stride_h = c.s,
                            .stride_w = c.s,
                            .dilation_h = c.d,
                            .dilation_w = c.d,
                            .pad_top = c.pads[0],
                            .pad_left = c.pads[1],
                            .groups = c.g};
    Tensor x = random_tensor({16, c.c, c.h, c.w}, seed - 1 + 16);
    Tensor want(ref.shape(), DType::kFloat32);
    kernels::ref::conv2d_f32(p, x.data<float>(), g.value(ins[1]).data.data<float>(),
                             c.bias ? g.value(ins[2]).data.data<float>() : nullptr,
                             want.data<float>());
    EXPECT_TRUE(same_bits(ref, want));
  }
}

TEST(Ops, BatchNorm) {
  for (Shape sample : {Shape{5, 3, 4}, Shape{7}}) {
    const int64_t c = sample[0];
    GraphMaker m([&] {
      Shape s = sample;
      s.insert(s.begin(), kDynamic);
      return s;
    }());
    ir::ValueId scale = m.constant({c}, 1), bias = m.constant({c}, 2), mean = m.constant({c}, 3),
                var = m.constant({c}, 4, 0.1f, 2.0f);
    ir::Graph g = m.finish(m.op(OpKind::kBatchNorm, {m.input(), scale, bias, mean, var},
                                ir::BatchNormAttrs{.epsilon = 1e-3f}));
    Shape s = sample;
    s.insert(s.begin(), 6);
    Tensor x = random_tensor(s, 5);
    Tensor fast = run_graph(g, x, false), ref = run_graph(g, x, true);
    Tensor want(ref.shape(), DType::kFloat32);
    const int64_t spatial = x.numel() / (6 * c);
    kernels::ref::batch_norm_f32({.batch = 6, .channels = c, .spatial = spatial, .epsilon = 1e-3f},
                                 x.data<float>(), g.value(scale).data.data<float>(),
                                 g.value(bias).data.data<float>(), g.value(mean).data.data<float>(),
                                 g.value(var).data.data<float>(), want.data<float>());
    EXPECT_TRUE(same_bits(ref, want));
    for (int64_t i = 0; i < x.numel(); ++i) {  // 2 eps (|x * a| + |shift|) + eps |y|
      const int64_t ch = (i / spatial) % c;
      const double a = g.value(scale).data.data<float>()[ch] /
                       std::sqrt(static_cast<double>(g.value(var).data.data<float>()[ch]) + 1e-3f);
      const double shift =
          g.value(bias).data.data<float>()[ch] - g.value(mean).data.data<float>()[ch] * a;
      const double bound =
          2 * FLT_EPSILON * (std::fabs(x.data<float>()[i] * a) + std::fabs(shift)) +
          FLT_EPSILON * std::fabs(ref.data<float>()[i]);
      EXPECT_LE(std::fabs(fast.data<float>()[i] - ref.data<float>()[i]), bound) << i;
    }
  }
}

TEST(Ops, MaxPoolExact) {
  const ir::PoolAttrs cases[] = {
      {.kernel = {2, 2}, .strides = {2, 2}},
      {.kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil_mode = true},
      {.kernel = {2, 3}, .strides = {1, 2}, .dilations = {2, 1}, .pads = {0, 1, 1, 0}},
  };
  for (const auto& at : cases) {
    GraphMaker m({kDynamic, 3, 9, 11});
    ir::Graph g = m.finish(m.op(OpKind::kMaxPool, {m.input()}, at));
    check_exact_op(g, {3, 9, 11}, 50);
    // Direct call.
    const ir::Value& out = g.value(g.outputs()[0]);
    Tensor x = random_tensor({2, 3, 9, 11}, 52);
    Tensor want({2, 3, out.shape[2], out.shape[3]}, DType::kFloat32);
    kernels::ref::max_pool2d_f32({.batch = 2,
                                  .channels = 3,
                                  .in_h = 9,
                                  .in_w = 11,
                                  .out_h = out.shape[2],
                                  .out_w = out.shape[3],
                                  .kernel_h = at.kernel[0],
                                  .kernel_w = at.kernel[1],
                                  .stride_h = at.strides[0],
                                  .stride_w = at.strides[1],
                                  .dilation_h = at.dilations[0],
                                  .dilation_w = at.dilations[1],
                                  .pad_top = at.pads[0],
                                  .pad_left = at.pads[1],
                                  .pad_bottom = at.pads[2],
                                  .pad_right = at.pads[3]},
                                 x.data<float>(), want.data<float>());
    EXPECT_TRUE(same_bits(run_graph(g, x, true), want));
  }
}

TEST(Ops, AveragePool) {
  for (bool include_pad : {false, true}) {
    ir::PoolAttrs at{.kernel = {3, 3},
                     .strides = {2, 2},
                     .pads = {1, 1, 1, 1},
                     .ceil_mode = true,
                     .count_include_pad = include_pad};
    GraphMaker m({kDynamic, 2, 8, 7});
    ir::Graph g = m.finish(m.op(OpKind::kAveragePool, {m.input()}, at));
    // taps = 9: (taps + 1) eps * mean|x| is inside the dot bound with the abs-graph magnitude.
    check_dot_op(g, {2, 8, 7}, 9, 60);
  }
}

TEST(Ops, GlobalAveragePoolFlattenReshapeIdentityDropout) {
  GraphMaker m({kDynamic, 4, 3, 5});
  ir::ValueId p = m.op(OpKind::kGlobalAveragePool, {m.input()});              // [B,4,1,1]
  ir::ValueId f = m.op(OpKind::kFlatten, {p}, ir::AxisAttrs{1});              // [B,4]
  ir::ValueId i = m.op(OpKind::kIdentity, {f});                               // [B,4]
  ir::ValueId d = m.op(OpKind::kDropout, {i}, ir::DropoutAttrs{}, 2);         // mask unused
  ir::ValueId r = m.op(OpKind::kReshape, {d}, ir::ReshapeAttrs{{0, 2, -1}});  // [B,2,2]
  ir::Graph g = m.finish(r);
  Tensor x = random_tensor({3, 4, 3, 5}, 70);
  Tensor got = run_graph(g, x, false);
  ASSERT_EQ(got.shape(), (Shape{3, 2, 2}));
  std::vector<float> want(12);
  kernels::ref::global_avg_pool_f32(12, 15, x.data<float>(), want.data());
  EXPECT_TRUE(same_bits(got, Tensor::from<float>({3, 2, 2}, want)));
  // Views cost nothing: one step (the pool).
  EXPECT_EQ(make_plan(g, {.max_batch = 4})->steps().size(), 1u);
}

TEST(Ops, ElementwiseBinaryBroadcast) {
  struct B {
    OpKind op;
    Shape other;  // constant operand shape, broadcast against [B, 3, 4, 5]
    bool other_first;
  };
  const B cases[] = {{OpKind::kAdd, {3, 1, 1}, false},
                     {OpKind::kSub, {5}, true},
                     {OpKind::kMul, {}, false},
                     {OpKind::kDiv, {1, 4, 1}, false},
                     {OpKind::kAdd, {1, 3, 4, 5}, true}};
  for (const B& c : cases) {
    GraphMaker m({kDynamic, 3, 4, 5});
    ir::ValueId k = m.constant(c.other, 80, 0.5f, 2.0f);
    ir::Graph g =
        m.finish(m.op(c.op, c.other_first ? std::vector{k, m.input()} : std::vector{m.input(), k}));
    check_exact_op(g, {3, 4, 5}, 81);
  }
  {  // activation op activation: x * relu(x)
    GraphMaker m({kDynamic, 7});
    ir::ValueId r = m.op(OpKind::kRelu, {m.input()});
    ir::Graph g = m.finish(m.op(OpKind::kMul, {m.input(), r}));
    Tensor x = random_tensor({5, 7}, 82);
    Tensor got = run_graph(g, x, false);
    for (int64_t i = 0; i < 35; ++i) {
      const float v = x.data<float>()[i];
      EXPECT_EQ(got.data<float>()[i], v * (v > 0 ? v : 0.0f));
    }
  }
}

TEST(Ops, Activations) {
  const std::pair<OpKind, ir::Attrs> exact[] = {
      {OpKind::kRelu, ir::NoAttrs{}},
      {OpKind::kLeakyRelu, ir::LeakyReluAttrs{0.2f}},
      {OpKind::kClip, ir::ClipAttrs{-0.25f, 0.5f}},
  };
  for (const auto& [op, at] : exact) {
    GraphMaker m({kDynamic, 33});
    ir::Graph g = m.finish(m.op(op, {m.input()}, at));
    check_exact_op(g, {33}, 90);
  }
  for (OpKind op : {OpKind::kSigmoid, OpKind::kTanh}) {
    GraphMaker m({kDynamic, 301});
    ir::Graph g = m.finish(m.op(op, {m.input()}));
    Tensor x = random_tensor({4, 301}, 91, -12.0f, 12.0f);
    expect_close(run_graph(g, x, false), run_graph(g, x, true), 0, 8 * FLT_EPSILON,
                 std::string(ir::op_name(op)));
  }
}

// Issue 8 item 6: a LogSoftmax node runs the log-softmax kernel along its axis (negative axes
// too), in both kernel modes, and agrees with log(softmax) where that is finite.
TEST(Ops, LogSoftmaxAlongEachAxis) {
  for (int64_t axis : {1, 2, -1, -2}) {
    SCOPED_TRACE(axis);
    GraphMaker m({kDynamic, 3, 4});
    ir::ValueId s = m.op(OpKind::kLogSoftmax, {m.input()}, ir::AxisAttrs{axis});
    ir::Graph g = m.finish(s);
    Tensor x = random_tensor({2, 3, 4}, 102, -6.0f, 6.0f);
    const int64_t ax = axis < 0 ? axis + 3 : axis;
    const kernels::SoftmaxParams p{
        .outer = ax == 1 ? 2 : 6, .axis = ax == 1 ? 3 : 4, .inner = ax == 1 ? 4 : 1};
    std::vector<float> want(24), probs(24);
    kernels::ref::log_softmax_f32(p, x.data<float>(), want.data());
    kernels::ref::softmax_f32(p, x.data<float>(), probs.data());
    for (bool reference : {false, true}) {
      const Tensor y = run_graph(g, x, reference);
      EXPECT_TRUE(same_bits(y, Tensor::from<float>({2, 3, 4}, want)));
      for (int64_t i = 0; i < 24; ++i) {
        EXPECT_NEAR(y.data<float>()[i], std::log(probs[i]), 1e-5) << i;
      }
    }
  }
}

TEST(Ops, SoftmaxTransposeConcat) {
  {
    GraphMaker m({kDynamic, 3, 4});
    ir::ValueId s = m.op(OpKind::kSoftmax, {m.input()}, ir::AxisAttrs{1});  // over the 3
    ir::Graph g = m.finish(s);
    Tensor x = random_tensor({2, 3, 4}, 100);
    std::vector<float> want(24);
    kernels::ref::softmax_f32({.outer = 2, .axis = 3, .inner = 4}, x.data<float>(), want.data());
    EXPECT_TRUE(same_bits(run_graph(g, x, true), Tensor::from<float>({2, 3, 4}, want)));
    // The fast kernel (kernels/norm.h): within (n + 8) * FLT_EPSILON relative, n = 3.
    const Tensor fast = run_graph(g, x, false);
    for (int64_t i = 0; i < 24; ++i) {
      EXPECT_NEAR(fast.data<float>()[i], want[i], 11 * FLT_EPSILON * want[i]) << i;
    }
  }
  {
    GraphMaker m({kDynamic, 3, 4});
    ir::ValueId t = m.op(OpKind::kTranspose, {m.input()}, ir::TransposeAttrs{{2, 0, 1}});
    ir::Graph g = m.finish(t);
    Tensor x = random_tensor({2, 3, 4}, 101);
    std::vector<float> want(24);
    kernels::ref::transpose_f32({.rank = 3, .in_shape = {2, 3, 4}, .perm = {2, 0, 1}},
                                x.data<float>(), want.data());
    EXPECT_TRUE(same_bits(run_graph(g, x, false), Tensor::from<float>({4, 2, 3}, want)));
  }
  {
    GraphMaker m({kDynamic, 2, 3});
    ir::ValueId r = m.op(OpKind::kRelu, {m.input()});
    ir::ValueId c1 = m.op(OpKind::kConcat, {m.input(), r}, ir::AxisAttrs{1});  // [B, 4, 3]
    ir::Graph g = m.finish(m.op(OpKind::kConcat, {c1, m.input()}, ir::AxisAttrs{-2}));
    Tensor x = random_tensor({3, 2, 3}, 103);
    Tensor got = run_graph(g, x, false);
    ASSERT_EQ(got.shape(), (Shape{3, 6, 3}));
    Tensor rx = x.clone();
    for (float& v : rx.span<float>()) v = v > 0 ? v : 0.0f;
    const float* in[] = {x.data<float>(), rx.data<float>(), x.data<float>()};
    int64_t inner[] = {6, 6, 6};
    std::vector<float> want(54);
    kernels::ref::concat_f32(3, in, inner, 3, want.data());
    EXPECT_TRUE(same_bits(got, Tensor::from<float>({3, 6, 3}, want)));
  }
}

}  // namespace
}  // namespace qsearch::runtime
