// Optimizers and the cosine schedule against hand-computed updates and against torch.optim.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace qsearch::train {
namespace {

const std::vector<float> kP0 = {0.5f, -1.0f, 2.0f, 0.0f};
const std::vector<float> kG = {0.1f, -0.2f, 0.3f, 1.0f};

// Runs `steps` updates with gradients kG * t (t = 1, 2, ...) at a constant lr.
std::vector<float> run(const OptimizerOptions& o, double lr, int steps) {
  std::vector<float> p = kP0, g(4);
  Optimizer opt(o, {4});
  for (int t = 1; t <= steps; ++t) {
    for (int i = 0; i < 4; ++i) g[i] = kG[i] * static_cast<float>(t);
    opt.step(lr, {{p.data(), g.data()}});
  }
  EXPECT_EQ(opt.steps(), steps);
  return p;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // A few float roundings apart at most (PyTorch's vectorised kernels fuse some of them).
    EXPECT_NEAR(got[i], want[i], 4e-7 * std::max(1.0f, std::abs(want[i]))) << i;
  }
}

TEST(Optimizer, AdamFirstStepByHand) {
  // m1 = (1 - b1) g, v1 = (1 - b2) g^2; bias-corrected m^ = g, v^ = g^2, so the first step is
  // lr * g / (|g| + eps): lr * sign(g) up to eps.
  const std::vector<float> p = run({.kind = OptimizerKind::kAdam}, 0.01, 1);
  for (int i = 0; i < 4; ++i) {
    const double g = kG[i];
    EXPECT_NEAR(p[i], kP0[i] - 0.01 * g / (std::abs(g) + 1e-8), 1e-7) << i;
  }
}

TEST(Optimizer, AdamWDecaysBeforeTheAdamStep) {
  // p1 = p0 (1 - lr wd) - lr g / (|g| + eps).
  const std::vector<float> p = run({.kind = OptimizerKind::kAdamW, .weight_decay = 0.1}, 0.01, 1);
  for (int i = 0; i < 4; ++i) {
    const double g = kG[i];
    EXPECT_NEAR(p[i], kP0[i] * (1 - 0.01 * 0.1) - 0.01 * g / (std::abs(g) + 1e-8), 1e-7) << i;
  }
}

TEST(Optimizer, SgdMomentumAndNesterovByHand) {
  // Step 1: buf = g1 + wd p0; plain momentum moves by lr buf, Nesterov by lr (d + m buf).
  // Step 2: buf2 = m buf1 + d2 with d2 = g2 + wd p1.
  const double lr = 0.1, m = 0.9, wd = 5e-4;
  for (bool nesterov : {false, true}) {
    const std::vector<float> p =
        run({.kind = OptimizerKind::kSgd, .weight_decay = wd, .momentum = m, .nesterov = nesterov},
            lr, 2);
    for (int i = 0; i < 4; ++i) {
      const double d1 = kG[i] + wd * kP0[i];
      const double buf1 = d1;
      const double p1 = kP0[i] - lr * (nesterov ? d1 + m * buf1 : buf1);
      const double d2 = 2 * kG[i] + wd * p1;
      const double buf2 = m * buf1 + d2;
      const double p2 = p1 - lr * (nesterov ? d2 + m * buf2 : buf2);
      EXPECT_NEAR(p[i], p2, 1e-6) << i << (nesterov ? " nesterov" : " momentum");
    }
  }
}

// Values printed by bench/torch_train_optimizer_ref.py (torch 1.13.1, Debian python3-torch):
// three steps with gradients kG * t.
TEST(Optimizer, MatchesTorchOptimOverThreeSteps) {
  expect_close(run({.kind = OptimizerKind::kAdam}, 0.01, 3),
               {0.470768183f, -0.970768154f, 1.97076821f, -0.0292318314f});
  expect_close(run({.kind = OptimizerKind::kAdam, .weight_decay = 0.1}, 0.01, 3),
               {0.470394582f, -0.970398247f, 1.97032559f, -0.0292328745f});
  expect_close(run({.kind = OptimizerKind::kAdamW, .weight_decay = 0.1}, 0.01, 3),
               {0.469299346f, -0.967800856f, 1.96480393f, -0.0292021912f});
  expect_close(run({.kind = OptimizerKind::kSgd, .momentum = 0}, 0.1, 3),
               {0.439999998f, -0.879999995f, 1.81999993f, -0.600000024f});
  expect_close(run({.kind = OptimizerKind::kSgd, .weight_decay = 5e-4, .momentum = 0.9}, 0.1, 3),
               {0.404762655f, -0.809525311f, 1.71414781f, -0.950971067f});
  expect_close(
      run({.kind = OptimizerKind::kSgd, .weight_decay = 5e-4, .momentum = 0.9, .nesterov = true},
          0.1, 3),
      {0.354217559f, -0.708435118f, 1.56245148f, -1.45581245f});
  expect_close(run({.kind = OptimizerKind::kSgd, .momentum = 0.5, .dampening = 0.3}, 0.1, 3),
               {0.440500021f, -0.881000042f, 1.82149994f, -0.594999969f});
}

TEST(Optimizer, StateRoundTripsThroughSaveAndLoad) {
  const OptimizerOptions o{.kind = OptimizerKind::kAdam, .weight_decay = 0.01};
  std::vector<float> a = kP0, b = kP0, g = kG;
  Optimizer x(o, {4});
  x.step(0.01, {{a.data(), g.data()}});
  std::stringstream buf;
  x.save(buf);
  Optimizer y(o, {4});
  y.load(buf);
  EXPECT_EQ(y.steps(), 1);
  b = a;
  x.step(0.01, {{a.data(), g.data()}});
  y.step(0.01, {{b.data(), g.data()}});
  EXPECT_EQ(a, b);
  std::stringstream wrong;
  x.save(wrong);
  Optimizer z({.kind = OptimizerKind::kSgd}, {4});
  EXPECT_THROW(z.load(wrong), Error);
  std::stringstream truncated(buf.str().substr(0, 20));
  EXPECT_THROW(Optimizer(o, {4}).load(truncated), Error);
}

TEST(Optimizer, ParsesNamesAndRejectsBadOptions) {
  EXPECT_EQ(parse_optimizer("adamw"), OptimizerKind::kAdamW);
  EXPECT_THROW(parse_optimizer("rmsprop"), Error);
  EXPECT_THROW(Optimizer({.kind = OptimizerKind::kSgd, .momentum = 0, .nesterov = true}, {1}),
               Error);
}

TEST(CosineAnnealingLR, IsPyTorchsRecursionBitForBit) {
  // bench/torch_train_optimizer_ref.py: CosineAnnealingLR(T_max=4, eta_min=1e-6), lr 0.1, over
  // 6 epochs (past T_max it rises again, as PyTorch's does).
  const std::vector<double> torch = {0.1,   0.08535548550593679, 0.0500005, 0.01464551449406322,
                                     1e-06, 0.014645514494063214};
  CosineAnnealingLR s(0.1, 4, 1e-6);
  for (size_t e = 0; e < torch.size(); ++e) {
    EXPECT_EQ(s.lr(), torch[e]) << "epoch " << e;
    s.step();
  }
  // And it is the closed form up to rounding.
  CosineAnnealingLR c(1e-3, 5, 1e-6);
  for (int e = 0; e <= 5; ++e) {
    EXPECT_NEAR(c.lr(), 1e-6 + (1e-3 - 1e-6) * (1 + std::cos(M_PI * e / 5)) / 2, 1e-15);
    c.step();
  }
}

}  // namespace
}  // namespace qsearch::train
