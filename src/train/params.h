// Which constants of a graph training updates.
//
// A constant float input is a trainable parameter when it is the weight or bias of a Gemm, Conv
// or a MatMul's constant right operand, the scale or bias of a BatchNormalization, or a constant
// operand of an Add (a bias written as a separate node). BatchNormalization's running mean and
// variance (inputs 3, 4) are state that training mode updates but no optimizer touches. Every
// other constant (e.g. Reshape shapes, a Mul's constant) stays frozen.
#pragma once

#include <cstddef>
#include <vector>

#include "ir/graph.h"

namespace qsearch::train {

bool is_trainable_input(const ir::Graph& graph, const ir::Node& node, size_t input_index);

// Trainable parameter values, each once, in order of first use by the graph's nodes.
std::vector<ir::ValueId> trainable_values(const ir::Graph& graph);

// (running_mean, running_var) value ids of every BatchNormalization node, in graph order.
std::vector<ir::ValueId> batchnorm_state_values(const ir::Graph& graph);

}  // namespace qsearch::train
