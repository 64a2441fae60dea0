// Sizes and tensors of one GRU / LSTM evaluation (ONNX semantics, layout 0), shared by the
// reference kernels (kernels/ref/rnn.h) and the fast ones (kernels/rnn.h).
//
// Tensors (row-major): X [T, B, I], W [D, G*H, I], R [D, G*H, H], bias [D, 2*G*H] (Wb then Rb),
// initial states [D, B, H]; outputs Y [T, D, B, H], Y_h and Y_c [D, B, H]. G = 3 for GRU (gate
// rows z, r, h; linear_before_reset = 1), 4 for LSTM (i, o, f, c). Direction 0 runs forwards
// (backwards when `reverse`), direction 1 of a bidirectional layer backwards. Activations are the
// ONNX defaults: sigmoid for z, r, i, o, f, tanh for the candidate and the LSTM output.
#pragma once

#include <cstdint>

namespace qsearch::kernels {

struct RnnParams {
  bool lstm = false;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  int directions = 1;
  bool reverse = false;

  int64_t gates() const { return lstm ? 4 : 3; }
  // Floats of scratch memory the kernels need (both the reference and the fast one).
  int64_t scratch_floats() const {
    const int64_t gh = gates() * hidden;
    return seq * batch * gh + batch * gh + 2 * batch * hidden + 2 * hidden;
  }
};

// Inputs may be null where optional (bias, h0, c0: zeros); outputs may be null when not wanted.
struct RnnTensors {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* r = nullptr;
  const float* bias = nullptr;
  const float* h0 = nullptr;
  const float* c0 = nullptr;
  float* y = nullptr;
  float* y_h = nullptr;
  float* y_c = nullptr;
};

}  // namespace qsearch::kernels
