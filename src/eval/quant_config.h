// From MASE-style quantization configs to per-node number formats.
//
// Two inputs, both MASE's schema (mase.md §2, §3.3-3.4):
// - a transform pass `[passes.quantize]`: `by` + one config per key -> one QuantAssignment;
// - a search space `[search.search_space]`: `setup.by` + per key a list of choices per field ->
//   a search::SearchSpace of index parameters (MASE's flattened `key/config/field` names, one
//   integer parameter in [0, len-1] per field, graph order then TOML field order) and the
//   decoding of a trial's parameters into a QuantAssignment.
//
// Keys (by = "name"): node config names (see `qsearch inspect`), else "default". Keys
// (by = "type"): MASE op types ("linear", "conv2d", "relu", ...), else "default". Keys
// (by = "regex_name", transform pass only): ECMAScript regexes matched against whole config
// names, first match in file order wins, else "default". Only nodes whose MASE op type is
// quantizable (quant::quantizable_ops) are configured.
//
// Where qsearch deliberately differs from MASE: with by = "type" a search ties ONE choice per op
// type and field across all nodes of that type (parameters "linear/config/weight_width"); MASE
// gives every node its own parameters and then silently falls back to a bypass config (mase.md
// §3.3). The transform pass by "type" really applies the type's config to every node of it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config_value.h"
#include "ir/graph.h"
#include "quant/assignment.h"
#include "search/distribution.h"

namespace qsearch::eval {

using Fields = std::vector<std::pair<std::string, ConfigValue>>;

// [passes.quantize.<key>.config]: field = value
struct QuantEntry {
  std::string key;
  SourceLoc loc;
  Fields fields;
};

// [search.search_space.seed.<key>.config]: field = [choices]
struct SeedEntry {
  std::string key;
  SourceLoc loc;
  std::vector<std::pair<std::string, std::vector<ConfigValue>>> fields;
};

enum class MatchBy { kName, kType, kRegexName };
// "name" | "type" | "regex_name"; throws Error otherwise.
MatchBy parse_match_by(const std::string& by);

// Resolves a [passes.quantize] table for `graph`. Throws Error (with file:line) for keys that
// match no node / op type (suggesting the nearest), bad fields or widths, invalid regexes.
quant::QuantAssignment resolve_quantize_pass(const ir::Graph& graph, MatchBy by,
                                             const std::vector<QuantEntry>& entries);

// The search space of a graph and its decoding.
class QuantSearchSpace {
 public:
  // Throws Error before any trial runs for: a seed key that matches nothing, an unknown field,
  // a choice that can never be valid (width outside 1..32, a non-integer width, an unknown
  // arithmetic name), a node whose seed lacks a required field, or a space that quantizes no
  // node at all.
  //
  // `reuse_factors` (the fpga hw_runner's `reuse_factor = [..]`): one more parameter per key
  // that configures a dense / conv node, "<key>/config/reuse_factor", decoded into
  // NodeQuantConfig::reuse_factor; a choice that is not a valid hls4ml ReuseFactor for a node of
  // the key (eval::valid_reuse_factor) is an Error at the choice's file:line.
  static QuantSearchSpace build(const ir::Graph& graph, MatchBy by,
                                const std::vector<SeedEntry>& seeds,
                                const std::vector<ConfigValue>& reuse_factors = {});

  const search::SearchSpace& space() const { return space_; }
  // Number of distinct configurations (product of choice counts; saturates at INT64_MAX).
  int64_t size() const;
  // The formats of a trial (params = one index per space entry).
  quant::QuantAssignment decode(const std::vector<double>& params) const;
  // MASE's sampled_config for a trial: {"<key>": {"config": {"name": ..., field: value, ...}},
  // ..., "default": MASE's default bypass config}, NA as null (mase.md §3.3).
  nlohmann::ordered_json sampled_config(const std::vector<double>& params) const;
  // {"<parameter name>": [the value each index stands for, ...], ...} in space order (the
  // study records it; trials.csv decodes parameters with it).
  nlohmann::ordered_json param_choices() const;
  // Quantizable nodes and the key whose parameters configure each (node name or op type).
  const std::vector<std::pair<std::string, std::string>>& node_keys() const { return nodes_; }

 private:
  static void add_reuse_factors(const ir::Graph& graph, QuantSearchSpace& q,
                                const std::vector<ConfigValue>& choices);
  struct Param {
    std::string key;    // node config name (by name) or op type (by type)
    std::string field;  // "data_in_width", "name", ...
    std::vector<ConfigValue> choices;
  };
  MatchBy by_ = MatchBy::kName;
  search::SearchSpace space_;
  std::vector<Param> params_;
  std::vector<std::pair<std::string, std::string>> nodes_;  // (config name, key)
  std::vector<std::string> node_ops_;                       // mase_op per nodes_ entry
};

}  // namespace qsearch::eval
