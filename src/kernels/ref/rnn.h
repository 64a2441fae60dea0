// Reference (oracle) GRU and LSTM (kernels/rnn_params.h): every gate pre-activation is a sum in
// double (input projection, recurrent projection, then the biases, in index order), the gate
// arithmetic in double, and each new hidden / cell state rounded to float32 once per step (the
// state the next step reads). The fast twin is kernels/rnn.h.
//
//   kernels::RnnParams p{.lstm = false, .seq = 28, .batch = 4, .input = 28, .hidden = 32};
//   std::vector<float> scratch(p.scratch_floats());
//   kernels::ref::rnn_f32(p, {.x = x, .w = w, .r = r, .bias = b, .y_h = h}, scratch.data());
#pragma once

#include "kernels/rnn_params.h"

namespace qsearch::kernels::ref {

// Outputs must not alias inputs; scratch holds p.scratch_floats() floats.
void rnn_f32(const RnnParams& p, const RnnTensors& t, float* scratch);

}  // namespace qsearch::kernels::ref
