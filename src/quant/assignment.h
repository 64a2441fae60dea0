// QuantAssignment: the number formats of one trial, per node.
//
// Keys are node config names (ir::Node::config_name, what `qsearch inspect` lists); a node
// absent from the map, or present with quantized == false, runs unquantized. Built from a
// config's [passes.quantize] or from a search trial's parameters (eval/quant_config.h), consumed
// by runtime::make_plan. A trial never mutates the graph: it is only this map.
#pragma once

#include <map>
#include <string>

#include "quant/node_config.h"

namespace qsearch::quant {

using QuantAssignment = std::map<std::string, NodeQuantConfig>;

}  // namespace qsearch::quant
