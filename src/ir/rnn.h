// GRU / LSTM in the IR (RnnAttrs in ops.h): shape contract, verification and op counts.
#pragma once

#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace qsearch::ir {

// Gates per direction: 3 for GRU (z, r, h), 4 for LSTM (i, o, f, c).
inline int64_t rnn_gates(OpKind kind) { return kind == OpKind::kGru ? 3 : 4; }

// Output shape of a kGru / kLstm node (ONNX layout 0): Y [T, D, B, H] for output 0, else
// [D, B, H]. Checks X [T, B, I], W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] and the initial
// states [D, B, H]; throws Error naming the node.
Shape rnn_output_shape(const Node& n, const std::vector<const Shape*>& inputs);

// Multiply-accumulates of one sample: T * D * G*H * (I + H) (input and recurrent projections
// at every time step; the gate arithmetic is not counted, as for linear layers). 0 for the second
// node computing another output of the same ONNX node (counted once).
int64_t rnn_macs_per_sample(const Graph& g, const Node& n);

}  // namespace qsearch::ir
