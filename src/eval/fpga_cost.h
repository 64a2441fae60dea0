// FPGA cost model: an analytic estimate of what hls4ml's io_parallel / Latency strategy would
// synthesize (Vivado HLS 2019.2 csynth estimates) for a quantized graph, per layer and in total:
// DSP, LUT, FF, BRAM18, latency in clock cycles and initiation interval. No synthesis is run;
// the equations and their calibration against published csynth reports are in docs/hardware.md.
//
//   FpgaOptions o{.device = "xcu250", .clock_mhz = 200, .reuse_factor = 1};
//   FpgaCost c = estimate_fpga_cost(graph, assignment, o);
//   c.dsp, c.lut, c.ff, c.bram18, c.latency_cycles, c.latency_ns, c.layers[i].dsp ...
//
// The model in short (constants in FpgaCalibration):
// - Dense (Gemm/MatMul with a constant weight) and Conv read their weights from the graph and
//   quantize them with the node's weight format, so zero and pruned weights cost nothing. Each
//   weight is a constant multiplier (hls4ml unrolls the product with the weights as constants):
//   its significant width e = bits of |code| without trailing zeros, plus the sign. A power of
//   two (e = 2) is a shift: free. A product with e >= dsp_min_weight_bits and an input width
//   a >= dsp_min_input_bits takes ceil(max/27) * ceil(min/18) DSP48E2s; any other is a LUT
//   multiplier of lut_per_mult_bit * e * a LUTs.
// - Each output sums its nonzero products and its bias in an adder tree of width acc (the
//   accumulator: options.accum_width, or wide enough never to overflow):
//   lut_per_add_bit * acc LUTs per addition; lut_per_output_bit * out LUTs per output neuron.
// - ReuseFactor R (per layer: the assignment's NodeQuantConfig::reuse_factor, else the
//   options'): multipliers and adders shared R ways (divided by R), II = R, latency + R - 1.
// - Latency: ceil((t_mult + depth * t_add(acc)) / (period * (1 - uncertainty))) cycles, depth =
//   ceil(log2(most terms of an output)); activations one cycle, softmax three.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config_value.h"
#include "ir/graph.h"
#include "quant/assignment.h"

namespace qsearch::eval {

struct FpgaDevice {
  std::string name;    // "xcu250"
  std::string part;    // "xcu250-figd2104-2L-e"
  std::string family;  // "UltraScale+"
  int64_t dsp = 0, lut = 0, ff = 0, bram18 = 0;
};
// The device table (docs/hardware.md).
const std::vector<FpgaDevice>& fpga_devices();
// By name or part (case-insensitive); throws Error listing the known devices.
const FpgaDevice& fpga_device(const std::string& name);

// The model's constants (docs/hardware.md "Calibration"), fitted once to the hls4ml tutorial's
// Vivado HLS 2019.2 reports of the JSC MLP.
struct FpgaCalibration {
  int dsp_min_weight_bits = 7;           // significant bits of the constant, sign included
  int dsp_min_input_bits = 10;           // input operand width
  int dsp_a_bits = 27, dsp_b_bits = 18;  // DSP48E2 multiplier
  double lut_per_mult_bit = 0.28;        // LUTs per e * a of a LUT constant multiplier
  double lut_per_add_bit = 0.23;         // LUTs per accumulator bit per addition
  double lut_per_output_bit = 10.5;      // LUTs per output neuron bit (bias, cast, control)
  double ff_per_dsp_bit = 0.135;         // FFs per (e + a) of a DSP product
  double ff_per_lut_mult_bit = 0.048;    // FFs per (e + a) of a LUT product
  double ff_per_stage_bit = 0.29;        // FFs per accumulator bit per output per pipeline cycle
  double t_mult_dsp_ns = 1.0;  // DSP multiplier (combinational part scheduled with the tree)
  double t_mult_lut_ns = 0.5, t_mult_lut_ns_per_bit = 0.01;  // LUT multiplier: + per e * a
  double t_add_ns = 0.3, t_add_ns_per_bit = 0.02;            // one adder level
  double clock_uncertainty = 0.125;  // Vivado HLS default: 12.5 % of the period
  int activation_cycles = 1, softmax_cycles = 3;
};

struct FpgaOptions {
  std::string device = "xcu250";
  double clock_mhz = 200;
  int reuse_factor = 1;  // every layer's, unless the assignment gives a layer its own
  // `reuse_factor = [1, 2, 4]` in the config: a search dimension per dense / conv key (each
  // value as written, for file:line messages); QuantSearchSpace::build validates them.
  std::vector<ConfigValue> reuse_factor_choices;
  int accum_width = 0;  // 0: wide enough never to overflow (product width + log2 terms)
  FpgaCalibration calibration = {};
};

struct FpgaLayerCost {
  std::string name;  // node config name
  std::string op;    // mase op ("linear", "conv2d", "relu", "softmax", ...)
  int64_t dsp = 0, lut = 0, ff = 0, bram18 = 0;
  int latency_cycles = 0;
  int ii = 1;
  // Constant multiplications by kind (dense/conv): into DSPs, into LUTs, free (zero or a power
  // of two), and the accumulator width used.
  int64_t dsp_mults = 0, lut_mults = 0, free_mults = 0;
  int accum_width = 0;
  int reuse_factor = 1;  // the layer's ReuseFactor (dense / conv)
};

struct FpgaCost {
  std::vector<FpgaLayerCost> layers;  // graph order, nodes that cost something or take time
  int64_t dsp = 0, lut = 0, ff = 0, bram18 = 0;
  int latency_cycles = 0;
  int ii = 1;  // the largest layer II (io_parallel: layers are not overlapped beyond it)
  double latency_ns = 0;
  std::string device;
  double clock_mhz = 0;
};

// hls4ml's rule (FPGABackend._validate_reuse_factor) for a dense layer of n_in inputs and n_out
// outputs (a conv: n_in = channels per group x kernel size, n_out = filters): R divides
// n_in * n_out, R < n_in or R is a multiple of n_in, and R >= n_in or
// ceil(n_in * n_out / min(n_in, R)) is a multiple of n_out.
bool valid_reuse_factor(int64_t n_in, int64_t n_out, int64_t reuse_factor);

// The (n_in, n_out) of the dense / conv kernel of node n (its constant weight), or nullopt for a
// node without one (the FPGA model costs no multiplications for it).
std::optional<std::pair<int64_t, int64_t>> dense_dims(const ir::Graph& graph, const ir::Node& n);

// Throws Error when the device is unknown, clock_mhz <= 0, reuse_factor < 1 or accum_width is
// outside 0..64.
FpgaCost estimate_fpga_cost(const ir::Graph& graph, const quant::QuantAssignment& q,
                            const FpgaOptions& options);

// The hardware metrics a search and `qsearch quantize` report: fpga_dsp, fpga_lut, fpga_ff,
// fpga_bram (BRAM18), fpga_latency_cycles, fpga_latency_ns, fpga_ii, in that order.
nlohmann::ordered_json fpga_metrics(const FpgaCost& cost);

// {"device", "clock_mhz", "reuse_factor", totals..., "layers": [{name, op, dsp, ...}]}.
nlohmann::ordered_json fpga_cost_json(const FpgaCost& cost, const FpgaOptions& options);

}  // namespace qsearch::eval
