#include "export/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "eval/quant_config.h"
#include "export/c_export.h"
#include "export/hls4ml_export.h"
#include "export/qonnx_export.h"
#include "export/sidecar.h"

namespace qsearch::exporter {

namespace fs = std::filesystem;

void check_format(const std::string& format, const std::string& flag) {
  if (format == "c" || format == "hls4ml" || format == "qonnx") return;
  fail("{} {}: expected c, hls4ml or qonnx (qdq is not implemented yet)", flag, format);
}

namespace {

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  if (!f) fail("{}: cannot write the file (check the --out directory)", p.string());
}

}  // namespace

std::vector<std::string> run_export(const ir::Graph& graph, const quant::QuantAssignment& q,
                                    const ExportJob& job) {
  check_format(job.format);
  if (job.out.empty()) fail("--out is empty: give the directory to write the export to");
  if (!job.dataset) fail("internal: no data set to measure the export on");
  fs::path dir(job.out);
  std::string name = job.name;
  if (job.format == "qonnx" && dir.extension() == ".onnx") {  // --out M.onnx: M.onnx, M.json
    name = dir.stem().string();
    dir = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("--out {}: cannot create the directory: {}", job.out, ec.message());
  std::vector<std::string> files;
  if (job.format == "c") {
    const CExport c = export_c(graph, q, {.name = job.name, .comment = job.command});
    const fs::path h = dir / c.header_name, src = dir / c.source_name;
    write_file(h, c.header);
    write_file(src, c.source);
    files = {h.string(), src.string()};
  } else if (job.format == "qonnx") {
    const fs::path m = dir / (name + ".onnx");
    write_file(m, qonnx_model_bytes(graph, q));
    files = {m.string()};
  } else {
    check_c_name(job.name, "--name");
    const std::string yaml = hls4ml_config_yaml(
        graph, q,
        {.reuse_factor = job.reuse_factor, .strategy = job.strategy, .comment = job.command});
    const fs::path y = dir / (job.name + ".yml"), m = dir / (job.name + ".onnx");
    write_file(y, yaml);
    fs::copy_file(job.model_path, m, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("{}: cannot copy the model to {}: {}", job.model_path, m.string(), ec.message());
    files = {y.string(), m.string()};
  }
  const Measurement m = measure_int(graph, q, *job.dataset, job.split, job.num_samples, job.output);
  SidecarInfo info{.format = job.format,
                   .files = files,
                   .model_path = job.model_path,
                   .command = job.command,
                   .source = job.source};
  const fs::path side = dir / (name + ".json");
  write_file(side, sidecar_json(graph, q, m, info).dump(2) + "\n");
  files.push_back(side.string());
  return files;
}

quant::QuantAssignment assignment_from_sampled_config(const ir::Graph& graph,
                                                      const nlohmann::json& sampled) {
  if (!sampled.is_object()) fail("the trial's sampled_config is not a JSON object");
  std::vector<eval::QuantEntry> entries;
  bool all_names = true;
  for (const auto& [key, entry] : sampled.items()) {
    if (!entry.is_object() || !entry.contains("config") || !entry["config"].is_object()) {
      fail("sampled_config entry '{}' has no \"config\" object", key);
    }
    eval::QuantEntry e{.key = key, .loc = SourceLoc{.file = "sampled_config"}};
    for (const auto& [field, v] : entry["config"].items()) {
      ConfigValue cv;
      if (v.is_boolean()) {
        cv.kind = ConfigValue::Kind::kBool;
        cv.b = v.get<bool>();
      } else if (v.is_number_integer()) {
        cv.kind = ConfigValue::Kind::kInt;
        cv.i = v.get<int64_t>();
      } else if (v.is_number()) {
        cv.kind = ConfigValue::Kind::kFloat;
        cv.f = v.get<double>();
      } else if (v.is_string() && v.get<std::string>() != "NA") {
        cv.kind = ConfigValue::Kind::kString;
        cv.s = v.get<std::string>();
      }
      e.fields.emplace_back(field, cv);
    }
    const bool is_node = std::any_of(graph.nodes().begin(), graph.nodes().end(),
                                     [&](const ir::Node& n) { return n.config_name == key; });
    if (key != "default" && !is_node) all_names = false;
    entries.push_back(std::move(e));
  }
  return eval::resolve_quantize_pass(graph, all_names ? eval::MatchBy::kName : eval::MatchBy::kType,
                                     entries);
}

}  // namespace qsearch::exporter
