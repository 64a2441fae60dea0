// Per-node quantization configuration: MASE's "integer" / "fixed" config of one node, as plain
// structs (no TOML, no ir). The TOML reader (cli) turns a `[passes.quantize.<key>.config]` table
// into a MaseQuantConfig and calls make_node_quant_config(), adding file/line context to any
// Error it throws.
//
// Which entries an op reads is MASE's MASE_OP_TO_ENTRIES (reference mase.md §3.4), kept here as
// data: required_fields(op) / optional_fields(op). As in MASE, keys that are valid for some op
// but not for this one are ignored (a default config with weight_* also applies to relu), while a
// key no op knows (a typo) is an error that suggests the nearest valid key.
//
//   MaseQuantConfig c{.name = "integer",
//                     .entries = {{"data_in_width", 8}, {"data_in_frac_width", 4},
//                                 {"weight_width", 4}, {"weight_frac_width", std::nullopt}}};
//   NodeQuantConfig q = make_node_quant_config("linear", c);
//   // q.quantized, q.data_in == s8.4, q.weight == s4.2 ("NA" frac = width / 2), no bias format
//
// Semantics MASE gives each op (mase.md §6.2) that are encoded here: relu's data_in is unsigned
// (ReLUInteger quantizes with is_signed=False); every other format is signed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/fixed_point.h"

namespace qsearch::quant {

struct NodeQuantConfig {   // MASE "integer"/"fixed" config of one node
  bool quantized = false;  // name = "integer"|"fixed"; "NA"/absent = false
  bool bypass = false;     // MASE's `bypass = true`: formats parsed, node runs unquantized
  std::optional<FixedFormat> data_in, weight, bias, data_out;
  Rounding rounding = Rounding::kHalfToEven;
  // hls4ml's ReuseFactor a search chose for this layer ([search.strategy.hw_runner.fpga]
  // reuse_factor = [..]); 0: the one of the fpga options / --reuse-factor. Not a format: only the
  // FPGA cost model and the hls4ml export read it.
  int reuse_factor = 0;

  bool operator==(const NodeQuantConfig&) const = default;
};

// One key of a MASE config table. value == nullopt means the string "NA".
struct MaseEntry {
  std::string key;
  std::optional<int64_t> value;
};

// A MASE node config as read from TOML, before validation.
struct MaseQuantConfig {
  std::string name;                // "integer" | "fixed" | "NA" | "" (absent)
  bool bypass = false;             // MASE's optional `bypass`
  std::vector<MaseEntry> entries;  // every other key: data_in_width = 8, weight_frac_width = "NA"
};

// Validates and converts. Throws qsearch::Error naming the key and the fix when: mase_op is not
// quantizable; name is another arithmetic; a key is unknown to every op (with the nearest valid
// key as a suggestion); a required *_width is missing or "NA"; a width is outside 1..32 or a frac
// outside -62..62; a key is given twice. A missing or "NA" *_frac_width resolves to width / 2.
// Optional groups (bias, data_out, ...) are taken when the op allows them and their width is given.
NodeQuantConfig make_node_quant_config(std::string_view mase_op, const MaseQuantConfig& config);

// MASE's QUANTIZEABLE_OP: add, bmm, conv1d, conv2d, matmul, mul, linear, relu, sub, batch_norm2d,
// layer_norm, group_norm, instance_norm2d, rms_norm, selu, tanh, gelu, softsign, softplus; and
// qsearch's gru, lstm, softmax (not MASE's: opt-in keys, never matched by `default`;
// docs/numerics.md).
const std::vector<std::string_view>& quantizable_ops();
bool is_quantizable_op(std::string_view mase_op);

// MASE_OP_TO_ENTRIES for the integer arithmetic, expanded to config keys, e.g. for "linear":
//   required: data_in_width data_in_frac_width weight_width weight_frac_width
//   optional: bias_width bias_frac_width data_out_width data_out_frac_width bypass
//             additional_layers
// (the `name` entry every op requires is not listed). Throws Error for a non-quantizable op.
std::vector<std::string_view> required_fields(std::string_view mase_op);
std::vector<std::string_view> optional_fields(std::string_view mase_op);

// Every key some op accepts (plus "name"): the vocabulary for typo suggestions.
const std::vector<std::string_view>& known_fields();
// The known key nearest to `key` by edit distance ("" if none is close).
std::string_view nearest_field(std::string_view key);
// Why a key MASE knows is refused, for keys of MASE's configs that qsearch does not implement
// (MASE's `floor` rounding switch, keys of its other arithmetics such as
// `weight_exponent_width`); "" for any other key.
std::string mase_field_hint(std::string_view key);

}  // namespace qsearch::quant
