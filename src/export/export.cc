#include "export/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "eval/quant_config.h"
#include "export/c_export.h"
#include "export/hls4ml_export.h"
#include "export/qdq_export.h"
#include "export/qonnx_export.h"
#include "export/sidecar.h"

namespace qsearch::exporter {

namespace fs = std::filesystem;

void check_format(const std::string& format, const std::string& flag) {
  if (format == "c" || format == "hls4ml" || format == "qdq" || format == "qonnx") return;
  fail("{} {}: expected c, hls4ml, qdq or qonnx", flag, format);
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
  // qdq, qonnx: --out M.onnx writes M.onnx and M.json; any other --out is a directory.
  const bool onnx_file =
      (job.format == "qdq" || job.format == "qonnx") && fs::path(job.out).extension() == ".onnx";
  const fs::path dir = onnx_file ? fs::path(job.out).parent_path() : fs::path(job.out);
  const std::string stem = onnx_file ? fs::path(job.out).stem().string() : job.name;
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) fail("--out {}: cannot create the directory: {}", job.out, ec.message());
  std::vector<std::string> files;
  if (job.format == "c") {
    const CExport c = export_c(graph, q, {.name = job.name, .comment = job.command});
    const fs::path h = dir / c.header_name, src = dir / c.source_name;
    write_file(h, c.header);
    write_file(src, c.source);
    files = {h.string(), src.string()};
  } else if (job.format == "qdq") {
    const onnx::QdqModel m = exporter::export_qdq(graph, q);
    const fs::path p = dir / (stem + ".onnx");
    write_file(p, m.bytes);
    files = {p.string()};
  } else if (job.format == "qonnx") {
    const fs::path m = dir / (stem + ".onnx");
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
  // The qdq model computes fake mode (QuantizeLinear / DequantizeLinear on floats).
  const Measurement m =
      measure_int(graph, q, *job.dataset, job.split, job.num_samples, job.output,
                  job.format == "qdq" ? runtime::Mode::kFake : runtime::Mode::kInt);
  SidecarInfo info{.format = job.format,
                   .files = files,
                   .model_path = job.model_path,
                   .command = job.command,
                   .source = job.source};
  const fs::path side = dir / (stem + ".json");
  write_file(side, sidecar_json(graph, q, m, info).dump(2) + "\n");
  files.push_back(side.string());
  return files;
}

quant::QuantAssignment assignment_from_sampled_config(const ir::Graph& graph,
                                                      const nlohmann::json& sampled) {
  if (!sampled.is_object()) fail("the trial's sampled_config is not a JSON object");
  std::vector<eval::QuantEntry> entries;
  std::map<std::string, int> reuse;  // key -> a searched ReuseFactor (not a format field)
  bool all_names = true;
  for (const auto& [key, entry] : sampled.items()) {
    if (!entry.is_object() || !entry.contains("config") || !entry["config"].is_object()) {
      fail("sampled_config entry '{}' has no \"config\" object", key);
    }
    eval::QuantEntry e{.key = key, .loc = SourceLoc{.file = "sampled_config"}};
    for (const auto& [field, v] : entry["config"].items()) {
      if (field == "reuse_factor" && v.is_number_integer()) {
        reuse[key] = v.get<int>();
        continue;
      }
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
  quant::QuantAssignment q = eval::resolve_quantize_pass(
      graph, all_names ? eval::MatchBy::kName : eval::MatchBy::kType, entries);
  for (const ir::Node& n : graph.nodes()) {
    auto it = q.find(n.config_name);
    if (it == q.end()) continue;
    auto r = reuse.find(all_names ? n.config_name : ir::mase_op(graph, n));
    if (r != reuse.end()) it->second.reuse_factor = r->second;
  }
  return q;
}

}  // namespace qsearch::exporter
