#include "kernels/rnn.h"

#include <algorithm>
#include <cmath>

namespace qsearch::kernels {

namespace {
inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }
}  // namespace

RnnWeights pack_rnn(const RnnParams& p, const float* w, const float* r, const float* bias) {
  const int64_t I = p.input, H = p.hidden, G = p.gates(), GH = G * H;
  RnnWeights out;
  for (int d = 0; d < p.directions; ++d) {
    out.w.push_back(pack_b(w + d * GH * I, I, GH, /*trans=*/true));
    out.r.push_back(pack_b(r + d * GH * H, H, GH, /*trans=*/true));
    Tensor xb({GH}, DType::kFloat32), hb;
    float* xbp = xb.data<float>();
    std::fill(xbp, xbp + GH, 0.0f);
    if (bias != nullptr) {
      const float* wb = bias + d * 2 * GH;
      const float* rb = wb + GH;
      for (int64_t j = 0; j < GH; ++j) xbp[j] = wb[j] + rb[j];
      if (!p.lstm) {
        // GRU candidate: Rb_h is applied inside r * (h R_h^T + Rb_h).
        hb = Tensor({GH}, DType::kFloat32);
        float* hbp = hb.data<float>();
        std::fill(hbp, hbp + GH, 0.0f);
        for (int64_t j = 2 * H; j < GH; ++j) {
          xbp[j] = wb[j];
          hbp[j] = rb[j];
        }
      }
    }
    out.xbias.push_back(std::move(xb));
    out.hbias.push_back(std::move(hb));
  }
  return out;
}

void rnn_f32_packed(const RnnParams& p, const RnnWeights& pw, const RnnTensors& t, float* scratch) {
  const int64_t T = p.seq, B = p.batch, H = p.hidden, GH = p.gates() * H;
  float* xp = scratch;          // [T*B, G*H]
  float* hp = xp + T * B * GH;  // [B, G*H]
  float* h = hp + B * GH;       // [B, H]
  float* c = h + B * H;         // [B, H]
  for (int d = 0; d < p.directions; ++d) {
    const bool backwards = d == 1 || p.reverse;
    Epilogue xe;
    xe.bias = pw.xbias[d].data<float>();
    gemm_f32_packed(T * B, t.x, p.input, pw.w[d], xp, GH, xe);
    Epilogue he;
    if (!pw.hbias[d].empty()) he.bias = pw.hbias[d].data<float>();
    for (int64_t k = 0; k < B * H; ++k) {
      h[k] = t.h0 ? t.h0[d * B * H + k] : 0.0f;
      c[k] = t.c0 ? t.c0[d * B * H + k] : 0.0f;
    }
    for (int64_t step = 0; step < T; ++step) {
      const int64_t tt = backwards ? T - 1 - step : step;
      gemm_f32_packed(B, h, H, pw.r[d], hp, GH, he);
      for (int64_t b = 0; b < B; ++b) {
        const float* gx = xp + (tt * B + b) * GH;
        const float* gh = hp + b * GH;
        float* hb = h + b * H;
        if (!p.lstm) {
          for (int64_t j = 0; j < H; ++j) {
            const float z = sigmoid(gx[j] + gh[j]);
            const float r = sigmoid(gx[H + j] + gh[H + j]);
            const float cand = std::tanh(gx[2 * H + j] + r * gh[2 * H + j]);
            hb[j] = (1.0f - z) * cand + z * hb[j];
          }
        } else {
          float* cb = c + b * H;
          for (int64_t j = 0; j < H; ++j) {
            const float i = sigmoid(gx[j] + gh[j]);
            const float o = sigmoid(gx[H + j] + gh[H + j]);
            const float f = sigmoid(gx[2 * H + j] + gh[2 * H + j]);
            const float cand = std::tanh(gx[3 * H + j] + gh[3 * H + j]);
            cb[j] = f * cb[j] + i * cand;
            hb[j] = o * std::tanh(cb[j]);
          }
        }
        if (t.y) std::copy(hb, hb + H, t.y + ((tt * p.directions + d) * B + b) * H);
      }
    }
    if (t.y_h) std::copy(h, h + B * H, t.y_h + d * B * H);
    if (t.y_c) std::copy(c, c + B * H, t.y_c + d * B * H);
  }
}

}  // namespace qsearch::kernels
