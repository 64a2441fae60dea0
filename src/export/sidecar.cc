#include "export/sidecar.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "data/sha256.h"
#include "eval/evaluate.h"
#include "runtime/plan.h"

namespace qsearch::exporter {

Measurement measure_int(const ir::Graph& graph, const quant::QuantAssignment& q,
                        const data::Dataset& ds, const std::string& split, int64_t num_samples,
                        const std::string& output, runtime::Mode mode) {
  const int64_t n = num_samples < 0 ? ds.size() : std::min(num_samples, ds.size());
  if (n < 1) fail("data set {} ({} split) has no samples to measure the export on", ds.name, split);
  const eval::ModelOutput out = eval::resolve_model_output(graph, output, ds.num_classes, ds.name);
  runtime::PlanOptions popts{.mode = mode, .max_batch = std::min<int64_t>(256, n), .quant = q};
  auto plan = runtime::make_plan(graph, popts);
  eval::EvalOptions eopts{.num_samples = n, .batch_size = popts.max_batch};
  eval::set_output(eopts, out);
  const eval::EvalResult r = eval::evaluate(plan, ds, eopts);
  Measurement m{.engine = mode == runtime::Mode::kFake ? "fake" : "int",
                .dataset = ds.name,
                .split = split,
                .samples = r.samples,
                .accuracy = r.accuracy,
                .data_source = ds.source};
  data::Sha256 h;
  for (const Tensor& input : ds.inputs()) {  // every model input's array, in the model's order
    const Tensor x = input.rows(0, n);
    h.update(x.raw(), x.nbytes());
  }
  const Tensor y = ds.y.rows(0, n);
  h.update(y.raw(), y.nbytes());
  m.data_sha256 = h.hex_digest();
  return m;
}

namespace {

void put(nlohmann::ordered_json& c, const char* group, const std::optional<quant::FixedFormat>& f,
         nlohmann::ordered_json& unsigned_groups) {
  if (!f) return;
  c[std::string(group) + "_width"] = f->width;
  c[std::string(group) + "_frac_width"] = f->frac;
  if (!f->is_signed) unsigned_groups.push_back(group);
}

}  // namespace

nlohmann::ordered_json layer_formats(const ir::Graph& graph, const quant::QuantAssignment& q) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const ir::Node& n : graph.nodes()) {
    auto it = q.find(n.config_name);
    if (it == q.end() || !it->second.quantized || it->second.bypass) continue;
    const quant::NodeQuantConfig& c = it->second;
    nlohmann::ordered_json cfg = {{"name", "integer"}};
    nlohmann::ordered_json uns = nlohmann::ordered_json::array();
    put(cfg, "data_in", c.data_in, uns);
    put(cfg, "weight", c.weight, uns);
    put(cfg, "bias", c.bias, uns);
    put(cfg, "data_out", c.data_out, uns);
    if (c.reuse_factor > 0) cfg["reuse_factor"] = c.reuse_factor;  // searched (hw_runner.fpga)
    layers.push_back({{"name", n.config_name},
                      {"mase_op", ir::mase_op(graph, n)},
                      {"onnx_op", ir::op_name(n.kind)},
                      {"config", cfg},
                      {"rounding", quant::rounding_name(c.rounding)},
                      {"unsigned", uns}});
  }
  return layers;
}

std::string file_sha256(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot read the file to checksum it", path);
  data::Sha256 h;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) h.update(buf, static_cast<size_t>(f.gcount()));
  return h.hex_digest();
}

nlohmann::ordered_json sidecar_json(const ir::Graph& graph, const quant::QuantAssignment& q,
                                    const Measurement& m, const SidecarInfo& info) {
  return {{"format", info.format},
          {"files", info.files},
          {"model", info.model_path},
          {"model_sha256", file_sha256(info.model_path)},
          {"quantization_from", info.source},
          {"layers", layer_formats(graph, q)},
          {"measured",
           {{"engine", m.engine},
            {"dataset", m.dataset},
            {"split", m.split},
            {"samples", m.samples},
            {"accuracy", m.accuracy},
            {"data_sha256", m.data_sha256},
            {"data_sha256_of", "x as float32 then y as int64, little-endian, the samples measured"},
            {"data_source", m.data_source}}},
          {"qsearch_version", QSEARCH_VERSION},
          {"command", info.command}};
}

}  // namespace qsearch::exporter
