// qsearch inspect --model M.onnx [--json]: one line per node with its config name (the key a
// TOML config uses), MASE op type, ONNX op, shapes, parameters and multiply-accumulates.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "ir/graph.h"
#include "onnx/import.h"

namespace qsearch::cli {

namespace {

struct InspectArgs {
  std::string model;
  std::vector<std::string> input_dims;  // NAME=SIZE
  bool json = false;
};

std::string first_input_shape(const ir::Graph& g, const ir::Node& n) {
  for (ir::ValueId v : n.inputs) {
    if (v >= 0 && !g.value(v).is_constant()) return shape_str(g.value(v).shape);
  }
  return "-";
}

int run_inspect(const InspectArgs& a) {
  // Sizes of the model's symbolic input dims (a sequence length), which other commands take from
  // their data set.
  onnx::ImportOptions options;
  for (const std::string& d : a.input_dims) {
    const size_t eq = d.find('=');
    int64_t size = 0;
    const char* end = d.data() + d.size();
    if (eq == std::string::npos || eq == 0 ||
        std::from_chars(d.data() + eq + 1, end, size).ptr != end || size < 1) {
      fail("--input-dim '{}': expected NAME=SIZE with SIZE >= 1, e.g. --input-dim seq=128", d);
    }
    options.dims[d.substr(0, eq)] = size;
  }
  ir::Graph g = onnx::import_model(a.model, options);
  int64_t total_params = 0, total_macs = 0;
  nlohmann::json nodes = nlohmann::json::array();
  std::string table = fmt::format("{:<24} {:<20} {:<20} {:<18} {:<18} {:>10} {:>12}\n", "name",
                                  "mase_op", "onnx_op", "input", "output", "params", "MACs/sample");
  for (const ir::Node& n : g.nodes()) {
    int64_t params = ir::param_count(g, n);
    int64_t macs = ir::macs_per_sample(g, n);
    total_params += params;
    total_macs += macs;
    std::string in = first_input_shape(g, n);
    std::string out = shape_str(g.value(n.outputs[0]).shape);
    table += fmt::format("{:<24} {:<20} {:<20} {:<18} {:<18} {:>10} {:>12}\n", n.config_name,
                         ir::mase_op(g, n), ir::op_name(n.kind), in, out, params, macs);
    nodes.push_back({{"name", n.config_name},
                     {"onnx_name", n.name},
                     {"mase_op", ir::mase_op(g, n)},
                     {"onnx_op", std::string(ir::op_name(n.kind))},
                     {"input_shape", in},
                     {"output_shape", out},
                     {"params", params},
                     {"macs_per_sample", macs}});
  }
  if (a.json) {
    nlohmann::json j = {{"model", a.model},
                        {"nodes", nodes},
                        {"params", total_params},
                        {"macs_per_sample", total_macs}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::string inputs, outputs;
  for (ir::ValueId v : g.inputs()) inputs += shape_str(g.value(v).shape);
  for (ir::ValueId v : g.outputs()) outputs += shape_str(g.value(v).shape);
  std::cout << fmt::format("model {}: {} nodes, input {} -> output {}\n\n", a.model,
                           g.nodes().size(), inputs, outputs)
            << table
            << fmt::format("{:<24} {:<20} {:<20} {:<18} {:<18} {:>10} {:>12}\n", "total", "", "",
                           "", "", total_params, total_macs);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, const GlobalOptions&, Runner& run) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "List a model's nodes: config names, op types, shapes, parameters, MACs");
  cmd->add_option("--model", args->model, "ONNX model file")->required();
  cmd->add_option("--input-dim", args->input_dims,
                  "NAME=SIZE: the size of the model's symbolic input dim NAME (a dynamic "
                  "sequence axis; other commands take it from their data set); repeatable");
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback([&run, args] { run = [args] { return run_inspect(*args); }; });
}

}  // namespace qsearch::cli
