// Float lowering of EfficientNet's conv + BatchNorm + SiLU (Sigmoid and Mul of the same value):
// fused into the conv's store (kernels::Epilogue::silu) with the bits of the separate steps, and
// left alone where the pattern does not hold exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/vec_math.h"
#include "runtime/plan.h"
#include "runtime/runtime_test_util.h"

namespace qsearch::runtime {
namespace {

using testing::expect_close;
using testing::GraphMaker;
using testing::max_abs;
using testing::random_tensor;
using testing::run_graph;

struct SiluCase {
  int64_t c, h, m, k, stride, group;
  bool relu = false;  // a Relu between BN and the SiLU (fused before it)
};

// y = BN(Conv(x)) (then Relu); the tail (`tail`) is built on y by the caller.
ir::ValueId conv_bn(GraphMaker& m, const SiluCase& k, uint64_t seed) {
  ir::ValueId w = m.constant({k.m, k.c / k.group, k.k, k.k}, seed, -0.5f, 0.5f);
  ir::ValueId b = m.constant({k.m}, seed + 1);
  ir::ValueId y = m.op(ir::OpKind::kConv, {m.input(), w, b},
                       ir::ConvAttrs{.kernel = {k.k, k.k},
                                     .strides = {k.stride, k.stride},
                                     .pads = {k.k / 2, k.k / 2, k.k / 2, k.k / 2},
                                     .group = k.group});
  y = m.op(ir::OpKind::kBatchNorm,
           {y, m.constant({k.m}, seed + 2, 0.5f, 1.5f), m.constant({k.m}, seed + 3),
            m.constant({k.m}, seed + 4), m.constant({k.m}, seed + 5, 0.5f, 2.0f)},
           ir::BatchNormAttrs{});
  return k.relu ? m.op(ir::OpKind::kRelu, {y}) : y;
}

TEST(ConvSilu, FusedStoreHasTheBitsOfSigmoidThenMul) {
  // Pointwise (expand / project), depthwise 3x3 and 5x5 with stride 1 and 2 (EfficientNet's),
  // a dense 3x3 (direct path, or Winograd at 32 channels) and a strided stem.
  const SiluCase cases[] = {{8, 12, 24, 1, 1, 1},  {24, 12, 24, 3, 1, 24},  {24, 13, 24, 5, 2, 24},
                            {16, 9, 16, 3, 2, 16}, {6, 10, 11, 3, 1, 1},    {32, 12, 32, 3, 1, 1},
                            {3, 17, 8, 3, 2, 1},   {5, 8, 7, 3, 1, 1, true}};
  const int saved = num_threads();
  for (const SiluCase& k : cases) {
    for (bool mul_y_first : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << k.c << "x" << k.h << "x" << k.h << " -> " << k.m << " k" << k.k << " s"
                   << k.stride << " g" << k.group << (mul_y_first ? " Mul(y, s)" : " Mul(s, y)"));
      GraphMaker m({kDynamic, k.c, k.h, k.h});
      const ir::ValueId y = conv_bn(m, k, 10);
      const ir::ValueId s = m.op(ir::OpKind::kSigmoid, {y});
      ir::Graph g =
          m.finish(m.op(ir::OpKind::kMul, mul_y_first ? std::vector{y, s} : std::vector{s, y}));
      // The same conv + BN without the tail: its fast output, then vmath's sigmoid and a Mul.
      GraphMaker m2({kDynamic, k.c, k.h, k.h});
      ir::Graph g2 = m2.finish(conv_bn(m2, k, 10));
      auto plan = make_plan(g, {.max_batch = 5});
      ASSERT_EQ(plan->steps().size(), 1u) << plan->to_string();
      EXPECT_NE(plan->to_string().find("+silu]"), std::string::npos) << plan->to_string();
      for (int threads = 1; threads <= 3; ++threads) {
        set_num_threads(threads);
        const Tensor x = random_tensor({5, k.c, k.h, k.h}, 20 + threads, -2.0f, 2.0f);
        Executor ex(plan);
        const Tensor got = ex.run(x).clone();
        Tensor want = run_graph(g2, x, false, 5);
        std::vector<float> sig(want.numel());
        kernels::vmath::map_f32(kernels::vmath::Fn::kSigmoid, want.data<float>(), sig.data(),
                                want.numel());
        for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] *= sig[i];
        ASSERT_EQ(got.shape(), want.shape());
        EXPECT_EQ(std::memcmp(got.data<float>(), want.data<float>(), got.numel() * sizeof(float)),
                  0)
            << threads << " threads";
        const Tensor ref = run_graph(g, x, true, 5);
        expect_close(got, ref, 1e-5 * (1.0 + max_abs(ref)), 0, "vs reference kernels");
      }
    }
  }
  set_num_threads(saved);
}

TEST(ConvSilu, NotFusedUnlessExactlySigmoidTimesTheSameValue) {
  const SiluCase k{4, 6, 5, 3, 1, 1};
  const Tensor x = random_tensor({3, 4, 6, 6}, 3, -2.0f, 2.0f);
  auto check = [&](ir::Graph g, const char* what) {
    SCOPED_TRACE(what);
    auto plan = make_plan(g, {.max_batch = 3});
    EXPECT_EQ(plan->to_string().find("silu"), std::string::npos) << plan->to_string();
    const Tensor ref = run_graph(g, x, true, 3);
    expect_close(run_graph(g, x, false, 3), ref, 1e-5 * (1.0 + max_abs(ref)), 0, what);
  };
  {  // y is read a third time
    GraphMaker m({kDynamic, 4, 6, 6});
    const ir::ValueId y = conv_bn(m, k, 1);
    const ir::ValueId t = m.op(ir::OpKind::kMul, {y, m.op(ir::OpKind::kSigmoid, {y})});
    check(m.finish(m.op(ir::OpKind::kAdd, {t, y})), "y also added");
  }
  {  // the sigmoid is read twice
    GraphMaker m({kDynamic, 4, 6, 6});
    const ir::ValueId y = conv_bn(m, k, 1);
    const ir::ValueId s = m.op(ir::OpKind::kSigmoid, {y});
    check(m.finish(m.op(ir::OpKind::kAdd, {m.op(ir::OpKind::kMul, {y, s}), s})), "s read twice");
  }
  {  // Mul of y by the sigmoid of another value, and the sigmoid of y times that value
    GraphMaker m({kDynamic, 4, 6, 6});
    const ir::ValueId y = conv_bn(m, k, 1);
    const ir::ValueId z = conv_bn(m, k, 2);
    const ir::ValueId a = m.op(ir::OpKind::kMul, {y, m.op(ir::OpKind::kSigmoid, {z})});
    const ir::ValueId b = m.op(ir::OpKind::kMul, {m.op(ir::OpKind::kSigmoid, {y}), z});
    check(m.finish(m.op(ir::OpKind::kAdd, {a, b})), "crossed");
  }
}

}  // namespace
}  // namespace qsearch::runtime
