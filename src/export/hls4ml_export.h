// `qsearch export --format hls4ml`: the hls4ml configuration (what
// hls4ml.utils.config_from_onnx_model(model, granularity='name') returns, as YAML) for a
// quantization, written next to a copy of the ONNX model it applies to (docs/export.md).
//
// Mapping of MASE's (width w, frac f): signed -> ap_fixed<w, w - f, Q, AP_SAT>, unsigned (a relu's
// input) -> ap_ufixed<w, w - f, Q, AP_SAT>, where Q is the node's rounding: half to even
// AP_RND_CONV, half away from zero AP_RND_INF, floor AP_TRN; MASE saturates, hence AP_SAT.
// Accumulators: the exact accumulator of the int engine (frac F = max(fa + fb, fc)) with enough
// integer bits for the worst case over the actual weights, so they cannot overflow.
#pragma once

#include <string>

#include "ir/graph.h"
#include "quant/assignment.h"
#include "quant/fixed_point.h"

namespace qsearch::exporter {

struct Hls4mlOptions {
  int reuse_factor = 1;
  std::string strategy = "Latency";
  std::string comment;  // put as a YAML comment at the top (e.g. the command)
};

// "ap_fixed<8,4,AP_RND_CONV,AP_SAT>" (I = w - f may be negative or exceed w, as ap_fixed allows).
std::string ap_fixed_type(const quant::FixedFormat& f, quant::Rounding r);

// Bits (sign included) of a signed integer holding every value of magnitude <= bound.
int signed_bits_for(long double bound);

std::string hls4ml_config_yaml(const ir::Graph& graph, const quant::QuantAssignment& q,
                               const Hls4mlOptions& options = {});

}  // namespace qsearch::exporter
