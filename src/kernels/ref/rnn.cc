#include "kernels/ref/rnn.h"

#include <algorithm>
#include <cmath>

namespace qsearch::kernels::ref {

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; ++k) s += static_cast<double>(a[k]) * static_cast<double>(b[k]);
  return s;
}

}  // namespace

void rnn_f32(const RnnParams& p, const RnnTensors& t, float* scratch) {
  const int64_t T = p.seq, B = p.batch, I = p.input, H = p.hidden, G = p.gates();
  float* h = scratch;     // [B, H]
  float* c = h + B * H;   // [B, H]
  float* hn = c + B * H;  // [H]: the new state of one batch row
  float* cn = hn + H;     // [H]
  for (int d = 0; d < p.directions; ++d) {
    const bool backwards = d == 1 || p.reverse;
    const float* w = t.w + d * G * H * I;
    const float* r = t.r + d * G * H * H;
    const float* wb = t.bias ? t.bias + d * 2 * G * H : nullptr;
    const float* rb = wb ? wb + G * H : nullptr;
    for (int64_t k = 0; k < B * H; ++k) {
      h[k] = t.h0 ? t.h0[d * B * H + k] : 0.0f;
      c[k] = t.c0 ? t.c0[d * B * H + k] : 0.0f;
    }
    for (int64_t step = 0; step < T; ++step) {
      const int64_t tt = backwards ? T - 1 - step : step;
      for (int64_t b = 0; b < B; ++b) {
        const float* x = t.x + (tt * B + b) * I;
        const float* hp = h + b * H;
        // Pre-activation of gate row j: x . W[j] (+ h . R[j] unless `split`) + Wb[j] + Rb[j].
        auto xw = [&](int64_t j) { return dot(x, w + j * I, I) + (wb ? wb[j] : 0.0); };
        auto hr = [&](int64_t j) { return dot(hp, r + j * H, H) + (rb ? rb[j] : 0.0); };
        for (int64_t j = 0; j < H; ++j) {
          if (!p.lstm) {
            const double z = sigmoid(xw(j) + hr(j));
            const double rr = sigmoid(xw(H + j) + hr(H + j));
            const double cand = std::tanh(xw(2 * H + j) + rr * hr(2 * H + j));
            hn[j] = static_cast<float>((1.0 - z) * cand + z * hp[j]);
          } else {
            const double i = sigmoid(xw(j) + hr(j));
            const double o = sigmoid(xw(H + j) + hr(H + j));
            const double f = sigmoid(xw(2 * H + j) + hr(2 * H + j));
            const double cand = std::tanh(xw(3 * H + j) + hr(3 * H + j));
            const double cell = f * c[b * H + j] + i * cand;
            cn[j] = static_cast<float>(cell);
            hn[j] = static_cast<float>(o * std::tanh(static_cast<double>(cn[j])));
          }
        }
        std::copy(hn, hn + H, h + b * H);
        if (p.lstm) std::copy(cn, cn + H, c + b * H);
        if (t.y) std::copy(hn, hn + H, t.y + ((tt * p.directions + d) * B + b) * H);
      }
    }
    if (t.y_h) std::copy(h, h + B * H, t.y_h + d * B * H);
    if (t.y_c) std::copy(c, c + B * H, t.y_c + d * B * H);
  }
}

}  // namespace qsearch::kernels::ref
