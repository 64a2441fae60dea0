// The fast GRU / LSTM (kernels/rnn.h: packed GEMM input projection for all steps, recurrence per
// step) against the reference twin (kernels/ref/rnn.h: sums and gates in double): equal within
// float32 rounding for every direction, with and without biases and initial states, for batch
// sizes that do and do not fill the GEMM's row tiles; and the reference itself against a
// hand-computed step.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/float_test_util.h"
#include "kernels/ref/rnn.h"
#include "kernels/rnn.h"

namespace qsearch::kernels {
namespace {

using testing::random_floats;

struct Case {
  bool lstm;
  int directions;
  bool reverse;
  bool bias, h0, c0;
  int64_t seq, batch, input, hidden;
};

TEST(RnnKernels, FastMatchesTheReference) {
  const std::vector<Case> cases = {
      {false, 1, false, true, false, false, 5, 3, 4, 6},
      {false, 2, false, true, true, false, 7, 9, 5, 8},
      {false, 1, true, false, true, false, 4, 1, 3, 17},
      {true, 1, false, true, false, false, 6, 4, 7, 5},
      {true, 2, false, true, true, true, 5, 10, 6, 16},
      {true, 1, true, false, false, true, 3, 2, 2, 3},
      {false, 1, false, true, false, false, 28, 16, 28, 32},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << (c.lstm ? "lstm" : "gru") << " D=" << c.directions << " rev=" << c.reverse
                 << " T=" << c.seq << " B=" << c.batch << " H=" << c.hidden);
    RnnParams p{.lstm = c.lstm,
                .seq = c.seq,
                .batch = c.batch,
                .input = c.input,
                .hidden = c.hidden,
                .directions = c.directions,
                .reverse = c.reverse};
    const int64_t D = c.directions, GH = p.gates() * c.hidden;
    const auto x = random_floats(c.seq * c.batch * c.input, seed++, -2.0f, 2.0f);
    const auto w = random_floats(D * GH * c.input, seed++, -0.7f, 0.7f);
    const auto r = random_floats(D * GH * c.hidden, seed++, -0.7f, 0.7f);
    const auto b = random_floats(D * 2 * GH, seed++, -0.5f, 0.5f);
    const auto h0 = random_floats(D * c.batch * c.hidden, seed++);
    const auto c0 = random_floats(D * c.batch * c.hidden, seed++);
    RnnTensors t{.x = x.data(), .w = w.data(), .r = r.data()};
    if (c.bias) t.bias = b.data();
    if (c.h0) t.h0 = h0.data();
    if (c.c0) t.c0 = c0.data();
    const int64_t state = D * c.batch * c.hidden;
    std::vector<float> y_ref(c.seq * state), h_ref(state), c_ref(state);
    std::vector<float> y(c.seq * state), h(state), cc(state);
    std::vector<float> scratch(p.scratch_floats());
    RnnTensors tr = t;
    tr.y = y_ref.data();
    tr.y_h = h_ref.data();
    if (c.lstm) tr.y_c = c_ref.data();
    ref::rnn_f32(p, tr, scratch.data());
    const RnnWeights pw = pack_rnn(p, w.data(), r.data(), c.bias ? b.data() : nullptr);
    RnnTensors tf = t;
    tf.y = y.data();
    tf.y_h = h.data();
    if (c.lstm) tf.y_c = cc.data();
    rnn_f32_packed(p, pw, tf, scratch.data());
    // States are bounded by 1 (h) or by T (c); rounding differences stay near float epsilon
    // times the steps, damped by the gates.
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_ref[i], 2e-5) << "Y " << i;
    for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(h[i], h_ref[i], 2e-5) << "Y_h " << i;
    if (c.lstm) {
      for (size_t i = 0; i < cc.size(); ++i) ASSERT_NEAR(cc[i], c_ref[i], 2e-5 * c.seq) << i;
    }
    // Y_h is Y at the last step each direction ran.
    for (int64_t d = 0; d < D; ++d) {
      const int64_t last = (d == 1 || c.reverse) ? 0 : c.seq - 1;
      for (int64_t k = 0; k < c.batch * c.hidden; ++k) {
        EXPECT_EQ(h[d * c.batch * c.hidden + k], y[((last * D + d) * c.batch) * c.hidden + k]);
      }
    }
  }
}

TEST(RnnKernels, ReferenceGruStepByHand) {
  // One step, batch 1, I = H = 1: z = s(wz x + rz h + b), r = s(...), n = tanh(wn x + bn_w +
  // r (rn h + bn_r)), h' = (1 - z) n + z h.
  const float x = 0.5f, h = -0.25f;
  const std::vector<float> w = {0.3f, -0.2f, 0.9f}, r = {0.1f, 0.4f, -0.6f};
  const std::vector<float> b = {0.05f, -0.1f, 0.2f, 0.01f, 0.02f, -0.3f};
  auto s = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  const double z = s(0.3 * 0.5 + 0.1 * -0.25 + 0.05 + 0.01);
  const double rr = s(-0.2 * 0.5 + 0.4 * -0.25 - 0.1 + 0.02);
  const double n = std::tanh(0.9 * 0.5 + 0.2 + rr * (-0.6 * -0.25 - 0.3));
  const double want = (1 - z) * n + z * -0.25;
  RnnParams p{.lstm = false, .seq = 1, .batch = 1, .input = 1, .hidden = 1};
  float out = 0;
  std::vector<float> scratch(p.scratch_floats());
  ref::rnn_f32(p, {.x = &x, .w = w.data(), .r = r.data(), .bias = b.data(), .h0 = &h, .y_h = &out},
               scratch.data());
  EXPECT_NEAR(out, want, 1e-7);
}

}  // namespace
}  // namespace qsearch::kernels
