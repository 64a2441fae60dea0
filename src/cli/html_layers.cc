#include "cli/html_layers.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/sha256.h"
#include "eval/hardware_metrics.h"
#include "ir/fold_batch_norm.h"
#include "ir/graph.h"
#include "onnx/import.h"
#include "quant/fixed_point.h"
#include "quant/node_config.h"
#include "report/search_report.h"
#include "report/study_settings.h"

namespace qsearch::cli {

namespace {

using Json = nlohmann::json;

std::string attr_string(const search::StudyInfo& info, const char* key) {
  auto it = info.user_attrs.find(key);
  if (it == info.user_attrs.end()) return "";
  Json j = Json::parse(it->second, nullptr, false);
  return j.is_string() ? j.get<std::string>() : "";
}

// MASE's config object of one sampled_config entry -> the transform pass's input.
quant::MaseQuantConfig mase_config(const Json& cfg) {
  quant::MaseQuantConfig m;
  for (const auto& [k, v] : cfg.items()) {
    if (k == "name") {
      m.name = v.is_string() ? v.get<std::string>() : "NA";
    } else if (k == "bypass") {
      m.bypass = v.is_boolean() && v.get<bool>();
    } else {
      m.entries.push_back(
          {k, v.is_number_integer() ? std::optional<int64_t>(v.get<int64_t>()) : std::nullopt});
    }
  }
  return m;
}

std::string fmt_of(const std::optional<quant::FixedFormat>& f) {
  return f ? quant::format_name(*f) : "-";
}

}  // namespace

std::string this_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  size_t start = 0;
  bool first = true;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    std::string arg = all.substr(start, end - start);
    if (first) arg = std::filesystem::path(arg).filename().string();
    if (arg.empty() || arg.find_first_of(" \t'\"$\\") != std::string::npos) {
      std::string q = "'";
      for (char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      arg = q + "'";
    }
    out += (first ? "" : " ") + arg;
    first = false;
    start = end + 1;
  }
  return out;
}

void attach_layer_numbers(const search::StudyInfo& info, const std::string& model_override,
                          report::HtmlOptions* options) {
  const std::string recorded = attr_string(info, report::setting::kModel);
  const std::string path = model_override.empty() ? recorded : model_override;
  if (path.empty()) {
    options->layer_numbers_note =
        "Per-layer numbers need the model: the study records none, pass --model.";
    return;
  }
  if (!std::filesystem::exists(path)) {
    options->layer_numbers_note = fmt::format(
        "Per-layer numbers need the model '{}', not found from here: pass --model.", path);
    return;
  }
  const std::string want = attr_string(info, report::setting::kModelSha256);
  if (!want.empty() && data::sha256_file(path) != want) {
    options->layer_numbers_note = fmt::format(
        "'{}' is not the model the study searched (SHA-256 differs): no per-layer numbers; pass "
        "--model with the searched file.",
        path);
    return;
  }
  // A model with symbolic input dims ran at the sizes its data set gave, which the study records
  // (setting::kInputDims); a study made before they were recorded has none.
  onnx::ImportOptions import_options;
  std::string at_sizes;
  if (auto inputs = onnx::read_graph_inputs(path); inputs && ir::any_symbolic_dims(*inputs)) {
    auto dims = info.user_attrs.find(report::setting::kInputDims);
    const Json bound =
        dims == info.user_attrs.end() ? Json() : Json::parse(dims->second, nullptr, false);
    if (!bound.is_object() || bound.empty()) {
      options->layer_numbers_note = fmt::format(
          "'{}' has symbolic input dims (a sequence length) that the search took from its data "
          "set, and this study (made by an older qsearch) does not record their sizes: no "
          "per-layer numbers here (qsearch quantize --dataset gives them).",
          path);
      return;
    }
    for (auto it = bound.begin(); it != bound.end(); ++it) {
      if (!it.value().is_number_integer()) continue;
      import_options.dims[it.key()] = it.value().get<int64_t>();
      at_sizes += fmt::format("{}{} = {}", at_sizes.empty() ? " at " : ", ", it.key(),
                              import_options.dims[it.key()]);
    }
  }
  // The graph the study searched: BatchNorm folded when the study was made with fold_batch_norm.
  auto fold = info.user_attrs.find(report::setting::kFoldBatchNorm);
  const bool folded = fold != info.user_attrs.end() && fold->second == "true";
  ir::Graph imported = onnx::import_model(path, import_options);
  auto graph = std::make_shared<const ir::Graph>(
      folded ? ir::fold_batch_norm(std::move(imported)).graph : std::move(imported));
  options->layer_numbers_note = fmt::format(
      "Per-layer numbers counted on {}{} (params, packed bytes = ceil(elements x width / 8) per "
      "tensor, MACs, BitOPs as eval/hardware_metrics.h defines them).",
      path, at_sizes);
  options->layer_numbers = [graph](const search::FrozenTrial& t) {
    std::vector<report::LayerNumbers> out;
    auto it = t.user_attrs.find(report::kSampledConfig);
    if (it == t.user_attrs.end()) return out;
    const Json sampled = Json::parse(it->second, nullptr, false);
    if (!sampled.is_object()) return out;
    quant::QuantAssignment q;
    try {
      for (const ir::Node& n : graph->nodes()) {
        const std::string op = ir::mase_op(*graph, n);
        if (!quant::is_quantizable_op(op)) continue;
        const Json* e = nullptr;
        for (const std::string& k : {n.config_name, op, std::string("default")}) {
          if (!e && sampled.contains(k)) e = &sampled.at(k);
        }
        if (e == nullptr) continue;
        const Json cfg = e->is_object() && e->contains("config") ? e->at("config") : *e;
        if (!cfg.is_object()) continue;
        const quant::MaseQuantConfig m = mase_config(cfg);
        if (m.name.empty() || m.name == "NA") continue;
        q[n.config_name] = quant::make_node_quant_config(op, m);
      }
    } catch (const Error&) {
      return out;
    }
    const auto sizes = eval::model_size_bytes_by_node(*graph, q);
    const auto ops = eval::op_counts_by_node(*graph, q);
    int64_t total = 0;
    double bitops = 0;
    for (size_t i = 0; i < graph->nodes().size(); ++i) {
      const ir::Node& n = graph->nodes()[i];
      total += sizes[i].second;
      bitops += ops[i].second.bitops;
      const int64_t params = ir::param_count(*graph, n);
      if (params == 0 && ops[i].second.macs == 0) continue;
      auto c = q.find(n.config_name);
      std::string formats = "float32";
      if (c != q.end() && c->second.quantized) {
        formats =
            fmt::format("in {} w {} b {}{}", fmt_of(c->second.data_in), fmt_of(c->second.weight),
                        fmt_of(c->second.bias), c->second.bypass ? " (bypass)" : "");
      }
      out.push_back({n.config_name, formats, params, sizes[i].second, ops[i].second.macs,
                     ops[i].second.bitops});
    }
    // Only numbers that reproduce what the search recorded.
    auto hw = t.user_attrs.find(report::kHardwareMetrics);
    if (hw != t.user_attrs.end()) {
      const Json h = Json::parse(hw->second, nullptr, false);
      auto differs = [&](const char* metric, double counted) {
        return h.is_object() && h.contains(metric) && h[metric].is_number() &&
               h[metric].get<double>() != counted;
      };
      if (differs("model_size_bytes", static_cast<double>(total)) || differs("bitops", bitops)) {
        out.clear();
      }
    }
    return out;
  };
}

}  // namespace qsearch::cli
