#include "eval/quant_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "eval/fpga_cost.h"
#include "quant/node_config.h"

namespace qsearch::eval {

namespace {

struct QNode {
  std::string name;  // config name
  std::string op;    // MASE op type
  // gru / lstm / softmax: quantized only when a key names them (by name, type or regex), never
  // by `default`: MASE quantizes no RNN and no softmax, so a MASE config leaves them in float.
  bool opt_in = false;
};

std::vector<QNode> quantizable_nodes(const ir::Graph& g) {
  std::vector<QNode> out;
  for (const ir::Node& n : g.nodes()) {
    std::string op = ir::mase_op(g, n);
    if (quant::is_quantizable_op(op)) {
      out.push_back({n.config_name, op, op == "gru" || op == "lstm" || op == "softmax"});
    }
  }
  return out;
}

// Closest of `names` to `key` by edit distance ("" when none is close).
std::string closest(const std::string& key, const std::vector<std::string>& names) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      }
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t bd = std::numeric_limits<size_t>::max();
  for (const auto& n : names) {
    size_t d = dist(key, n);
    if (d < bd) {
      bd = d;
      best = n;
    }
  }
  return bd <= std::max<size_t>(2, key.size() / 3) ? best : "";
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool is_op_type(const std::string& key) {
  return quant::is_quantizable_op(key) || key == "batch_norm1d" || key == "max_pool2d" ||
         key == "flatten" || key == "softmax";
}

// Rejects a config key that names nothing in the graph (or names an unquantizable node).
void check_key(const ir::Graph& g, const std::vector<QNode>& nodes, MatchBy by,
               const std::string& key, const SourceLoc& loc, const std::string& table) {
  if (key == "default") return;
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  bool is_node =
      std::any_of(nodes.begin(), nodes.end(), [&](const QNode& n) { return n.name == key; });
  if (is_node) return;
  if (const ir::Node* n = g.find_node(key)) {
    if (const ir::NodeId owner = ir::bias_add_owner(g, *n); owner >= 0) {
      const std::string& lin = g.node(owner).config_name;
      fail(
          "{}: [{}] names '{}', the bias Add of linear '{}' (torch exports a Linear on 3-D input "
          "as MatMul + Add; MASE's linear owns the bias): configure '{}' instead, whose bias_* "
          "keys quantize this bias",
          loc.str(), table, key, lin, lin);
    }
    fail("{}: [{}] names node '{}' whose op type '{}' cannot be quantized; quantizable nodes: {}",
         loc.str(), table, key, ir::mase_op(g, *n), join(names));
  }
  if (is_op_type(key)) return;  // an op type: used by "type", tolerated by "name" (MASE's examples)
  std::vector<std::string> valid = names;
  if (by == MatchBy::kType) {
    valid.clear();
    for (auto op : quant::quantizable_ops()) valid.emplace_back(op);
  }
  valid.push_back("default");
  std::string hint = closest(key, valid);
  fail("{}: [{}] key '{}' matches no {} of the model{}; valid keys: {}", loc.str(), table, key,
       by == MatchBy::kType ? "op type" : "node",
       hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint), join(valid));
}

// qsearch's data_out on layer_norm / gelu / softmax (quant/node_config.cc) comes only from a key
// naming the node (its name, its op type or a regex), never from `default`: MASE's entries for
// them have no data_out, so a MASE `default` whose data_out_* keys are meant for its linears
// leaves their outputs float, as MASE does (and a search space gets no parameter for it).
bool default_data_out_ignored(const std::string& key, const std::string& op) {
  return key == "default" && (op == "layer_norm" || op == "gelu" || op == "softmax");
}

// Builds MASE's config of one node from field values and validates it for the op.
quant::NodeQuantConfig make_config(const std::string& op,
                                   const std::vector<const std::string*>& keys,
                                   const std::vector<const ConfigValue*>& values) {
  quant::MaseQuantConfig c;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& k = *keys[i];
    const ConfigValue& v = *values[i];
    if (k == "name") {
      if (v.is_na()) {
        c.name = "NA";
      } else if (v.kind == ConfigValue::Kind::kString) {
        c.name = v.s;
      } else {
        fail("{}name must be a string such as \"integer\" or \"NA\", got {}", v.where(), v.str());
      }
    } else if (k == "bypass") {
      if (v.kind != ConfigValue::Kind::kBool) fail("{}bypass must be true or false", v.where());
      c.bypass = v.b;
    } else if (v.is_na()) {
      c.entries.push_back({k, std::nullopt});
    } else if (v.kind == ConfigValue::Kind::kInt) {
      c.entries.push_back({k, v.i});
    } else {
      fail("{}{} must be an integer or \"NA\", got {}", v.where(), k, v.str());
    }
  }
  try {
    return quant::make_node_quant_config(op, c);
  } catch (const Error& e) {
    // Point at the offending key's own line when the message names one that was given.
    for (size_t i = 0; i < keys.size(); ++i) {
      if (e.message().find("'" + *keys[i] + "'") == std::string::npos) continue;
      Error located(values[i]->where() + e.message());
      for (const auto& context : e.context()) located.add_context(context);
      throw located;
    }
    throw;
  }
}

}  // namespace

MatchBy parse_match_by(const std::string& by) {
  if (by == "name") return MatchBy::kName;
  if (by == "type") return MatchBy::kType;
  if (by == "regex_name") return MatchBy::kRegexName;
  fail("by = \"{}\": expected \"name\", \"type\" or \"regex_name\"", by);
}

quant::QuantAssignment resolve_quantize_pass(const ir::Graph& graph, MatchBy by,
                                             const std::vector<QuantEntry>& entries) {
  const std::vector<QNode> nodes = quantizable_nodes(graph);
  std::vector<std::regex> regexes;
  for (const QuantEntry& e : entries) {
    if (by == MatchBy::kRegexName) {
      if (e.key == "default") {
        regexes.emplace_back();
        continue;
      }
      try {
        regexes.emplace_back(e.key, std::regex::ECMAScript);
      } catch (const std::regex_error& err) {
        fail("{}: [passes.quantize.{}] is not a valid regular expression: {}", e.loc.str(), e.key,
             err.what());
      }
    } else {
      check_key(graph, nodes, by, e.key, e.loc, "passes.quantize." + e.key);
    }
  }
  auto find = [&](const std::string& key) -> const QuantEntry* {
    for (const auto& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  };
  quant::QuantAssignment out;
  for (const QNode& n : nodes) {
    const QuantEntry* entry = nullptr;
    if (by == MatchBy::kName) {
      entry = find(n.name);
    } else if (by == MatchBy::kType) {
      entry = find(n.op);
    } else {
      for (size_t i = 0; i < entries.size() && !entry; ++i) {
        if (entries[i].key != "default" && std::regex_match(n.name, regexes[i]))
          entry = &entries[i];
      }
    }
    if (!entry && !n.opt_in) entry = find("default");
    if (!entry) continue;
    std::vector<const std::string*> keys;
    std::vector<const ConfigValue*> values;
    for (const auto& [k, v] : entry->fields) {
      keys.push_back(&k);
      values.push_back(&v);
    }
    try {
      quant::NodeQuantConfig q = make_config(n.op, keys, values);
      if (default_data_out_ignored(entry->key, n.op)) q.data_out.reset();
      if (q.quantized) out[n.name] = q;
    } catch (Error& e) {
      e.add_context(fmt::format("in [passes.quantize.{}.config] ({}) applied to node '{}' ({})",
                                entry->key, entry->loc.str(), n.name, n.op));
      throw;
    }
  }
  return out;
}

void QuantSearchSpace::add_reuse_factors(const ir::Graph& graph, QuantSearchSpace& q,
                                         const std::vector<ConfigValue>& choices) {
  std::vector<std::string> keys;  // keys with a dense / conv node, in space order
  for (size_t i = 0; i < q.nodes_.size(); ++i) {
    const auto& [name, key] = q.nodes_[i];
    const ir::Node* node = nullptr;
    for (const ir::Node& n : graph.nodes()) {
      if (n.config_name == name) node = &n;
    }
    const auto dims = node ? dense_dims(graph, *node) : std::nullopt;
    if (!dims) continue;
    for (const ConfigValue& c : choices) {
      if (!valid_reuse_factor(dims->first, dims->second, c.i)) {
        std::string valid;
        for (int64_t r = 1, shown = 0; r <= dims->first * dims->second && shown < 12; ++r) {
          if (valid_reuse_factor(dims->first, dims->second, r)) {
            valid += (shown++ ? ", " : "") + std::to_string(r);
          }
        }
        fail(
            "{}reuse_factor {} is not a valid hls4ml ReuseFactor for layer '{}' ({} inputs x {} "
            "outputs: it must divide {} and suit n_in, as hls4ml's io_parallel requires); valid: "
            "{}, ...",
            c.where(), c.i, name, dims->first, dims->second, dims->first * dims->second, valid);
      }
    }
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  if (keys.empty()) {
    fail("{}reuse_factor is searched, but the space has no dense / conv layer to apply it to",
         choices.front().where());
  }
  for (const std::string& key : keys) {
    q.params_.push_back({key, "reuse_factor", choices});
    q.space_.push_back(
        {key + "/config/reuse_factor",
         search::Distribution::int_range(0, static_cast<int64_t>(choices.size()) - 1)});
  }
}

QuantSearchSpace QuantSearchSpace::build(const ir::Graph& graph, MatchBy by,
                                         const std::vector<SeedEntry>& seeds,
                                         const std::vector<ConfigValue>& reuse_factors) {
  if (by == MatchBy::kRegexName) {
    fail("search spaces take by = \"name\" or \"type\" (regex_name is for [passes.quantize])");
  }
  const std::vector<QNode> nodes = quantizable_nodes(graph);
  if (nodes.empty()) fail("the model has no quantizable node (linear, conv2d, relu, add, ...)");
  std::map<std::string, const SeedEntry*> by_key;
  for (const SeedEntry& s : seeds) {
    if (by_key.count(s.key)) {
      fail("{}: seed '{}' is given twice", s.loc.str(), s.key);
    }
    check_key(graph, nodes, by, s.key, s.loc, "search.search_space.seed." + s.key);
    by_key[s.key] = &s;
  }

  QuantSearchSpace q;
  q.by_ = by;
  std::set<std::string> keys_done;
  for (const QNode& n : nodes) {
    std::string key = by == MatchBy::kName ? n.name : n.op;
    auto it = by_key.find(key);
    if (it == by_key.end() && n.opt_in) continue;  // gru / lstm / softmax: only when named
    if (it == by_key.end()) it = by_key.find("default");
    if (it == by_key.end()) {
      fail(
          "node '{}' ({}) has no seed: add [search.search_space.seed.{}.config] or a "
          "[search.search_space.seed.default.config]",
          n.name, n.op, key);
    }
    q.nodes_.emplace_back(n.name, key);
    q.node_ops_.push_back(n.op);
    if (!keys_done.insert(key).second) continue;
    const SeedEntry& seed = *it->second;
    for (const auto& [field, choices] : seed.fields) {
      if (field != "name" && field != "bypass") {
        auto known = quant::known_fields();
        if (std::find(known.begin(), known.end(), field) == known.end()) {
          const std::string why = quant::mase_field_hint(field);
          if (!why.empty()) {
            fail("{}: unknown field '{}' in seed '{}': {}", seed.loc.str(), field, seed.key, why);
          }
          std::string_view hint = quant::nearest_field(field);
          fail("{}: unknown field '{}' in seed '{}'{}", seed.loc.str(), field, seed.key,
               hint.empty() ? std::string() : fmt::format("; did you mean '{}'?", hint));
        }
      }
      for (const ConfigValue& c : choices) {
        bool width =
            field.size() > 6 && field.ends_with("_width") && !field.ends_with("frac_width");
        if (field == "name") {
          if (!c.is_na() &&
              (c.kind != ConfigValue::Kind::kString || (c.s != "integer" && c.s != "fixed"))) {
            fail(
                "{}name choice {} is not supported: qsearch searches the \"integer\" (alias "
                "\"fixed\") arithmetic, or \"NA\" to leave a node unquantized",
                c.where(), c.str());
          }
        } else if (field == "bypass") {
          if (c.kind != ConfigValue::Kind::kBool)
            fail("{}bypass choices must be booleans", c.where());
        } else if (c.is_na()) {
          if (width) {
            fail("{}{} = NA is not a width (only *_frac_width may be NA)", c.where(), field);
          }
        } else if (c.kind != ConfigValue::Kind::kInt) {
          fail("{}{} choice {} must be an integer", c.where(), field, c.str());
        } else if (width && (c.i < quant::kMinWidth || c.i > quant::kMaxWidth)) {
          fail("{}{} choice {} is outside {}..{}", c.where(), field, c.i, quant::kMinWidth,
               quant::kMaxWidth);
        } else if (!width && (c.i < quant::kMinFrac || c.i > quant::kMaxFrac)) {
          fail("{}{} choice {} is outside {}..{}", c.where(), field, c.i, quant::kMinFrac,
               quant::kMaxFrac);
        }
      }
      if (field.starts_with("data_out_") && default_data_out_ignored(seed.key, n.op)) continue;
      q.params_.push_back({key, field, choices});
      q.space_.push_back(
          {key + "/config/" + field,
           search::Distribution::int_range(0, static_cast<int64_t>(choices.size()) - 1)});
    }
  }

  if (!reuse_factors.empty()) add_reuse_factors(graph, q, reuse_factors);

  // Every node must be configurable with its first choices (catches missing required fields),
  // and some choice must quantize something.
  bool any_quantized = false;
  std::vector<double> first(q.space_.size(), 0.0);
  for (size_t i = 0; i < q.params_.size(); ++i) {
    if (q.params_[i].field != "name") continue;
    for (size_t c = 0; c < q.params_[i].choices.size(); ++c) {
      if (!q.params_[i].choices[c].is_na()) {
        first[i] = static_cast<double>(c);
        any_quantized = true;
        break;
      }
    }
  }
  if (!any_quantized) {
    fail(
        "the search space quantizes no node: every seed has name = [\"NA\"]; give some key "
        "name = [\"integer\"]");
  }
  (void)q.decode(first);
  return q;
}

int64_t QuantSearchSpace::size() const {
  int64_t total = 1;
  for (const auto& p : params_) {
    int64_t c = static_cast<int64_t>(p.choices.size());
    if (total > std::numeric_limits<int64_t>::max() / c) return std::numeric_limits<int64_t>::max();
    total *= c;
  }
  return total;
}

quant::QuantAssignment QuantSearchSpace::decode(const std::vector<double>& params) const {
  QSEARCH_CHECK(params.size() == params_.size());
  quant::QuantAssignment out;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const auto& [name, key] = nodes_[n];
    std::vector<const std::string*> keys;
    std::vector<const ConfigValue*> values;
    int reuse_factor = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (params_[i].key != key) continue;
      if (params_[i].field == "reuse_factor") {  // not a format (add_reuse_factors)
        reuse_factor = static_cast<int>(params_[i].choices.at(static_cast<size_t>(params[i])).i);
        continue;
      }
      keys.push_back(&params_[i].field);
      values.push_back(&params_[i].choices.at(static_cast<size_t>(params[i])));
    }
    try {
      quant::NodeQuantConfig c = make_config(node_ops_[n], keys, values);
      c.reuse_factor = reuse_factor;
      if (c.quantized) out[name] = c;
    } catch (Error& e) {
      e.add_context(
          fmt::format("in the search space of node '{}' ({}), seed '{}'", name, node_ops_[n], key));
      throw;
    }
  }
  return out;
}

namespace {

nlohmann::ordered_json choice_json(const ConfigValue& v) {
  switch (v.kind) {
    case ConfigValue::Kind::kNA:
      return nullptr;
    case ConfigValue::Kind::kBool:
      return v.b;
    case ConfigValue::Kind::kInt:
      return v.i;
    case ConfigValue::Kind::kFloat:
      return v.f;
    case ConfigValue::Kind::kString:
      return v.s;
  }
  return nullptr;
}

}  // namespace

nlohmann::ordered_json QuantSearchSpace::param_choices() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t i = 0; i < params_.size(); ++i) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ConfigValue& v : params_[i].choices) list.push_back(choice_json(v));
    j[space_[i].name] = std::move(list);
  }
  return j;
}

nlohmann::ordered_json QuantSearchSpace::sampled_config(const std::vector<double>& params) const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t i = 0; i < params_.size(); ++i) {
    const nlohmann::ordered_json value =
        choice_json(params_[i].choices.at(static_cast<size_t>(params[i])));
    j[params_[i].key]["config"][params_[i].field] = value;
  }
  // MASE adds its bypass default (DEFAULT_QUANTIZATION_CONFIG) to every sampled config.
  j["default"]["config"] = {{"name", "integer"},       {"bypass", true},
                            {"bias_frac_width", 5},    {"bias_width", 8},
                            {"data_in_frac_width", 5}, {"data_in_width", 8},
                            {"weight_frac_width", 3},  {"weight_width", 8}};
  return j;
}

}  // namespace qsearch::eval
