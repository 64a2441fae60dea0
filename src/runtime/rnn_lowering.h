// Internal: GRU / LSTM steps (ir::RnnAttrs) for every mode. They run in float32 on
// kernels/rnn.h (fast) or kernels/ref/rnn.h (use_reference_kernels).
//   kFloat, and kFake / kInt when the node is not quantized: the float op on the float inputs.
//   quantized (MASE-style key "gru" / "lstm", NodeQuant::Kind::kRnn): X at data_in (kFake: a
//   fake-quantize step; kInt: the integer codes dequantized exactly), W and R at weight and the
//   biases at bias (kFake: fake_quantized_graph; kInt: `quant` here, once at plan time), then the
//   same float recurrence: the states, gates and accumulation stay float32 in both modes.
#pragma once

#include "ir/graph.h"
#include "runtime/lowering.h"
#include "runtime/node_quant.h"

namespace qsearch::runtime {

// Adds the step of a kGru / kLstm node. `nq` (kInt only): fake-quantize W, R and B with its
// formats at plan time; null reads the graph's constants as they are.
void lower_rnn(PlanBuilder& b, const ir::Node& n, const NodeQuant* nq);

}  // namespace qsearch::runtime
