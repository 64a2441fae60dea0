#include "quant/node_config.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "core/error.h"

namespace qsearch::quant {

namespace {

// Entry groups of MASE_OP_TO_ENTRIES for the integer arithmetic.
enum Group : unsigned {
  kDataIn = 1u << 0,
  kWeight = 1u << 1,
  kBias = 1u << 2,
  kDataOut = 1u << 3,
  kBypass = 1u << 4,
  kAdditionalLayers = 1u << 5,
};

struct OpEntries {
  std::string_view op;
  unsigned required;
  unsigned optional;
};

constexpr std::array<OpEntries, 25> kOpTable = {{
    {"add", kDataIn, kBypass},
    {"bmm", kDataIn | kWeight, 0},
    {"conv1d", kDataIn | kWeight, kBias | kBypass},
    {"conv2d", kDataIn | kWeight, kBias | kBypass | kDataOut},
    {"conv3d", kDataIn | kWeight, kBias | kBypass | kDataOut},  // qsearch's: conv2d's entries
    {"matmul", kDataIn | kWeight, 0},
    {"mul", kDataIn, kBypass},
    {"linear", kDataIn | kWeight, kBias | kBypass | kDataOut | kAdditionalLayers},
    {"relu", kDataIn, kBypass},
    {"sub", kDataIn, kBypass},
    {"batch_norm2d", kDataIn, kWeight | kBias | kBypass},
    // data_out on layer_norm / gelu / softmax is qsearch's (MASE's entries have data_in only):
    // issue 11's option to quantize their outputs too; off unless data_out_width is given.
    {"layer_norm", kDataIn, kBypass | kDataOut},
    {"group_norm", kDataIn, kBypass},
    {"instance_norm2d", kDataIn, kBypass},
    {"rms_norm", kDataIn, kBypass},
    {"selu", kDataIn, kBypass},
    {"tanh", kDataIn, kBypass},
    {"gelu", kDataIn, kBypass | kDataOut},
    {"softsign", kDataIn, kBypass},
    {"softplus", kDataIn, kBypass},
    {"convtranspose2d", kDataIn | kWeight, kBias | kBypass | kDataOut},
    {"convtranspose3d", kDataIn | kWeight, kBias | kBypass | kDataOut},  // qsearch's, as conv3d
    // Not MASE's: qsearch's opt-in keys for ONNX GRU / LSTM (docs/numerics.md "Recurrent").
    {"gru", kDataIn | kWeight, kBias | kBypass},
    {"lstm", kDataIn | kWeight, kBias | kBypass},
    // Not MASE's either (its QUANTIZEABLE_OP has no softmax): qsearch's opt-in key for a
    // Softmax's input (and output, with data_out), issue 11's "option to quantize softmax",
    // computed like MASE's gelu.
    {"softmax", kDataIn, kBypass | kDataOut},
}};

struct FormatGroup {
  Group group;
  std::string_view prefix;  // "data_in" -> data_in_width, data_in_frac_width
  std::string_view width_key;
  std::string_view frac_key;
};

constexpr std::array<FormatGroup, 4> kFormatGroups = {{
    {kDataIn, "data_in", "data_in_width", "data_in_frac_width"},
    {kWeight, "weight", "weight_width", "weight_frac_width"},
    {kBias, "bias", "bias_width", "bias_frac_width"},
    {kDataOut, "data_out", "data_out_width", "data_out_frac_width"},
}};

// Other arithmetics MASE knows (mase.md §6.3): named in the error instead of "unknown".
constexpr std::array<std::string_view, 12> kOtherArithmetics = {
    "minifloat_denorm", "minifloat_ieee", "log",    "block_fp",
    "block_minifloat",  "block_log",      "binary", "binary_residual",
    "ternary",          "mxint_hardware", "lutnet", "logicnets"};

const OpEntries* find_op(std::string_view op) {
  for (const auto& e : kOpTable) {
    if (e.op == op) return &e;
  }
  return nullptr;
}

const OpEntries& op_or_fail(std::string_view op) {
  const OpEntries* e = find_op(op);
  if (e == nullptr) {
    std::string ops;
    for (std::string_view o : quantizable_ops()) ops += (ops.empty() ? "" : ", ") + std::string(o);
    fail("op '{}' is not quantizable; quantizable MASE ops are: {}", op, ops);
  }
  return *e;
}

std::vector<std::string_view> expand(unsigned groups) {
  std::vector<std::string_view> keys;
  for (const auto& g : kFormatGroups) {
    if (groups & g.group) {
      keys.push_back(g.width_key);
      keys.push_back(g.frac_key);
    }
  }
  if (groups & kBypass) keys.push_back("bypass");
  if (groups & kAdditionalLayers) keys.push_back("additional_layers");
  return keys;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

const MaseEntry* find_entry(const MaseQuantConfig& c, std::string_view key) {
  for (const auto& e : c.entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

// Returns the format of group g, or nullopt when the group is optional and absent.
std::optional<FixedFormat> read_format(std::string_view op, const MaseQuantConfig& c,
                                       const FormatGroup& g, bool required, bool is_signed) {
  const MaseEntry* width = find_entry(c, g.width_key);
  const MaseEntry* frac = find_entry(c, g.frac_key);
  if (!required && width == nullptr && frac == nullptr) return std::nullopt;
  if (width == nullptr) {
    fail("missing key '{}': a quantized {} needs {} (an integer 1..{})", g.width_key, op,
         g.width_key, kMaxWidth);
  }
  if (!width->value.has_value()) {
    fail("key '{}' is \"NA\" but a quantized {} needs a width (an integer 1..{})", g.width_key, op,
         kMaxWidth);
  }
  const int64_t w = *width->value;
  if (w < kMinWidth || w > kMaxWidth) {
    fail("key '{}' = {} is out of range: widths must be {}..{}", g.width_key, w, kMinWidth,
         kMaxWidth);
  }
  FixedFormat f{static_cast<int>(w), resolve_frac_width(static_cast<int>(w)), is_signed};
  if (frac != nullptr && frac->value.has_value()) {
    const int64_t fr = *frac->value;
    if (fr < kMinFrac || fr > kMaxFrac) {
      fail("key '{}' = {} is out of range: frac widths must be {}..{} (or \"NA\" for {} / 2)",
           g.frac_key, fr, kMinFrac, kMaxFrac, g.width_key);
    }
    f.frac = static_cast<int>(fr);
  }
  return f;
}

}  // namespace

const std::vector<std::string_view>& quantizable_ops() {
  static const std::vector<std::string_view> ops = [] {
    std::vector<std::string_view> v;
    for (const auto& e : kOpTable) v.push_back(e.op);
    return v;
  }();
  return ops;
}

bool is_quantizable_op(std::string_view mase_op) { return find_op(mase_op) != nullptr; }

std::vector<std::string_view> required_fields(std::string_view mase_op) {
  return expand(op_or_fail(mase_op).required);
}

std::vector<std::string_view> optional_fields(std::string_view mase_op) {
  return expand(op_or_fail(mase_op).optional);
}

const std::vector<std::string_view>& known_fields() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> v = expand(~0u);
    v.insert(v.begin(), "name");
    return v;
  }();
  return keys;
}

std::string mase_field_hint(std::string_view key) {
  if (key == "floor") {
    return "'floor' is MASE's floor-rounding switch (read by its functional linear only); "
           "qsearch's integer quantizer always rounds half to even, as MASE's integer quantizer "
           "does by default: remove the key";
  }
  // Key suffixes of MASE's other arithmetics (mase.md §6.3) -> those arithmetics.
  struct Suffix {
    std::string_view suffix, arithmetics;
  };
  static constexpr std::array<Suffix, 13> kSuffixes = {{
      {"_exponent_bias_width", "block_minifloat, block_log"},
      {"_exponent_width", "minifloat_denorm, minifloat_ieee, block_fp, block_minifloat, mxint"},
      {"_exponent_bias", "minifloat_denorm, minifloat_ieee, log, block_fp"},
      {"_block_size", "block_fp, block_minifloat, block_log"},
      {"_stochastic", "binary"},
      {"_bipolar", "binary"},
      {"_residual_sign", "binary_residual"},
      {"_levels", "binary_residual"},
      {"_scaling_factor", "ternary"},
      {"_mean", "ternary"},
      {"_median", "ternary"},
      {"_max", "ternary"},
      {"_parallelism", "mxint_hardware"},
  }};
  for (const Suffix& s : kSuffixes) {
    if (key.size() > s.suffix.size() && key.ends_with(s.suffix)) {
      return fmt::format(
          "'{}' is a key of MASE's {} arithmetic, which qsearch does not implement: qsearch "
          "quantizes to fixed point (name = \"integer\", keys *_width and *_frac_width)",
          key, s.arithmetics);
    }
  }
  return "";
}

std::string_view nearest_field(std::string_view key) {
  std::string_view best;
  size_t best_d = std::max<size_t>(2, key.size() / 3) + 1;
  for (std::string_view k : known_fields()) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

NodeQuantConfig make_node_quant_config(std::string_view mase_op, const MaseQuantConfig& config) {
  const OpEntries& op = op_or_fail(mase_op);
  const auto& known = known_fields();
  for (size_t i = 0; i < config.entries.size(); ++i) {
    const std::string& key = config.entries[i].key;
    if (key == "name" || key == "bypass") {
      fail("key '{}' must be given as MaseQuantConfig::{}, not as an entry", key, key);
    }
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      const std::string hint = mase_field_hint(key);
      if (!hint.empty())
        fail("unknown key '{}' in the {} quantization config: {}", key, mase_op, hint);
      const std::string_view near = nearest_field(key);
      if (near.empty()) fail("unknown key '{}' in the {} quantization config", key, mase_op);
      fail("unknown key '{}' in the {} quantization config; did you mean '{}'?", key, mase_op,
           near);
    }
    for (size_t j = 0; j < i; ++j) {
      if (config.entries[j].key == key) fail("key '{}' is given twice", key);
    }
  }

  NodeQuantConfig out;
  if (config.name.empty() || config.name == "NA") return out;
  if (config.name != "integer" && config.name != "fixed") {
    if (std::find(kOtherArithmetics.begin(), kOtherArithmetics.end(), config.name) !=
        kOtherArithmetics.end()) {
      fail(
          "arithmetic '{}' is not supported yet: qsearch supports name = \"integer\" (alias "
          "\"fixed\") or \"NA\"",
          config.name);
    }
    fail("unknown arithmetic name '{}': use \"integer\" (alias \"fixed\") or \"NA\"", config.name);
  }
  out.quantized = true;
  const unsigned allowed = op.required | op.optional;
  for (const auto& g : kFormatGroups) {
    if (!(allowed & g.group)) continue;  // MASE drops entries this op does not read
    const bool required = (op.required & g.group) != 0;
    const bool is_signed = !(g.group == kDataIn && mase_op == "relu");
    std::optional<FixedFormat> f = read_format(mase_op, config, g, required, is_signed);
    switch (g.group) {
      case kDataIn:
        out.data_in = f;
        break;
      case kWeight:
        out.weight = f;
        break;
      case kBias:
        out.bias = f;
        break;
      case kDataOut:
        out.data_out = f;
        break;
      default:
        break;
    }
  }
  if (config.bypass && (allowed & kBypass)) {
    out.bypass = true;
    out.quantized = false;
  }
  return out;
}

}  // namespace qsearch::quant
