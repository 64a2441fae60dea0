// Fast GRU and LSTM (kernels/rnn_params.h for the math and layouts; oracle: kernels/ref/rnn.h).
//
// Per direction: the input projection of every time step at once, X [T*B, I] * W^T + biases, on
// the packed GEMM (gemm.h), then per time step the recurrent projection h [B, H] * R^T on the
// packed GEMM and the gate arithmetic in float32. The weights are packed once, at plan time:
//
//   kernels::RnnWeights pw = kernels::pack_rnn(p, w, r, bias);   // plan time
//   kernels::rnn_f32_packed(p, pw, {.x = x, .y = y}, scratch);    // per batch
//
// The biases fold into the GEMM epilogues: Wb + Rb into the input projection for every gate
// except GRU's candidate, whose Rb stays in the recurrent projection (linear_before_reset = 1:
// r * (h R_h^T + Rb_h)). Results differ from the reference by float32 rounding (sums in another
// order, float gates); tests/kernels/rnn_test.cc bounds the difference.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/rnn_params.h"

namespace qsearch::kernels {

struct RnnWeights {
  std::vector<PackedB> w, r;         // per direction: W^T [I, G*H], R^T [H, G*H]
  std::vector<Tensor> xbias, hbias;  // per direction [G*H] (hbias empty when all zero)
};

// bias may be null (zeros).
RnnWeights pack_rnn(const RnnParams& p, const float* w, const float* r, const float* bias);

// t.w / t.r / t.bias are ignored (the packed weights are used). scratch: p.scratch_floats().
void rnn_f32_packed(const RnnParams& p, const RnnWeights& pw, const RnnTensors& t, float* scratch);

}  // namespace qsearch::kernels
