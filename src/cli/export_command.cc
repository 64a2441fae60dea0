// qsearch export --model M.onnx (--config CFG.toml | --study DIR --trial N) --format c --out DIR
//                [--name NAME] [--dataset mnist] [--split test] [--num-samples N] [--output NAME]
// The quantized model as dependency-free C99 that equals the int engine bit for bit, plus a
// sidecar JSON (per-layer formats, the int engine's accuracy and the data's checksum);
// docs/export.md.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/quant_args.h"
#include "config/checks.h"
#include "core/error.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "export/c_export.h"
#include "export/export.h"
#include "report/study_settings.h"
#include "storage/storage_url.h"

namespace qsearch::cli {

namespace {

namespace fs = std::filesystem;

struct ExportArgs {
  std::string model;
  std::string config;
  std::string study;
  std::optional<int64_t> trial;
  std::string format = "c";
  std::string out;
  std::string name = "model";
  std::string dataset = "mnist";
  std::string split = "test";
  std::optional<int64_t> num_samples;
  std::string output;
  int reuse_factor = 1;
  std::string strategy = "Latency";
  std::optional<bool> fold_bn;  // --fold-bn[=false] / --no-fold-bn
};

struct TrialConfig {
  std::string model;     // the study's model path ("" when not recorded)
  bool fold_bn = false;  // the study was searched with fold_batch_norm
  nlohmann::json sampled;
};

// The sampled configuration of trial `number` of the (only) study in DIR/study.db.
TrialConfig read_trial(const std::string& dir, int64_t number) {
  const fs::path db = fs::path(dir) / "study.db";
  if (!fs::exists(db)) {
    fail("--study {}: no study.db there; pass the --out directory of a search", dir);
  }
  auto storage = storage::open_storage("sqlite:///" + db.string(), storage::Access::kExisting);
  const auto names = storage->study_names();
  if (names.size() != 1)
    fail("--study {}: study.db holds {} studies, expected 1", dir, names.size());
  const search::StudyInfo info = storage->get_study(*storage->find_study(names[0]));
  TrialConfig t;
  if (auto it = info.user_attrs.find(report::setting::kModel); it != info.user_attrs.end()) {
    t.model = nlohmann::json::parse(it->second).get<std::string>();
  }
  if (auto it = info.user_attrs.find(report::setting::kFoldBatchNorm);
      it != info.user_attrs.end()) {
    t.fold_bn = it->second == "true";
  }
  for (const search::FrozenTrial& tr : storage->get_trials(info.id)) {
    if (tr.number != number) continue;
    auto it = tr.user_attrs.find("sampled_config");
    if (it == tr.user_attrs.end()) {
      fail("--trial {}: the trial has no sampled_config (state {}); pick a finished trial", number,
           search::to_string(tr.state));
    }
    // Stored as a JSON text (a string holding JSON).
    nlohmann::json v = nlohmann::json::parse(it->second);
    t.sampled = v.is_string() ? nlohmann::json::parse(v.get<std::string>()) : v;
    return t;
  }
  fail("--trial {}: {} has no trial numbered {}", number, db.string(), number);
}

std::string command_line(const ExportArgs& a) {
  std::string c = "qsearch export --model " + a.model;
  if (!a.config.empty()) c += " --config " + a.config;
  if (!a.study.empty()) c += fmt::format(" --study {} --trial {}", a.study, *a.trial);
  c += fmt::format(" --format {} --out {}", a.format, a.out);
  if (a.name != "model") c += " --name " + a.name;
  if (a.format == "hls4ml")
    c += fmt::format(" --reuse-factor {} --strategy {}", a.reuse_factor, a.strategy);
  c += fmt::format(" --dataset {} --split {}", a.dataset, a.split);
  if (a.num_samples) c += fmt::format(" --num-samples {}", *a.num_samples);
  if (!a.output.empty()) c += " --output " + a.output;
  if (a.fold_bn) c += *a.fold_bn ? " --fold-bn" : " --no-fold-bn";
  return c;
}

int run_export(const GlobalOptions& global, ExportArgs a) {
  exporter::check_format(a.format);
  exporter::check_c_name(a.name, "--name");
  if (a.num_samples) config::check_at_least("--num-samples", *a.num_samples, 1);
  config::check_at_least("--reuse-factor", a.reuse_factor, 1);
  if (a.strategy != "Latency" && a.strategy != "Resource") {
    fail("--strategy {}: expected Latency or Resource (hls4ml's)", a.strategy);
  }
  if (a.config.empty() == a.study.empty()) {
    fail(
        "give the formats with either --config CFG.toml ([passes.quantize]) or --study DIR "
        "--trial N (a search's trial)");
  }
  if (!a.study.empty() && !a.trial)
    fail("--study {} needs --trial N (the trial's number)", a.study);
  if (a.trial && a.study.empty()) fail("--trial needs --study DIR (the search's --out directory)");
  std::optional<TrialConfig> trial;
  if (!a.study.empty()) {
    trial = read_trial(a.study, *a.trial);
    if (a.model.empty()) a.model = trial->model;
    if (a.model.empty()) fail("--study {}: the study records no model; pass --model", a.study);
  }
  if (a.model.empty()) fail("--model is required with --config");
  // The graph the formats were chosen for: BatchNorm folded when the study was searched so, or
  // the config asks for it (fold_batch_norm), or --fold-bn.
  // A study's formats are for the graph it searched: a flag saying otherwise is refused.
  if (trial && a.fold_bn && *a.fold_bn != trial->fold_bn) {
    fail(
        "--{}fold-bn: the study in --study {} was searched with fold_batch_norm = {}, and its "
        "formats are for that graph; drop the flag",
        *a.fold_bn ? "" : "no-", a.study, trial->fold_bn);
  }
  // A model with a symbolic sequence length is imported once the data set gives its size.
  ModelForData loader(
      a.model, a.fold_bn.value_or(trial ? trial->fold_bn : config_folds_batch_norm(a.config)));
  data::DataOptions dopts{.data_dir = global.data_dir, .input_names = loader.input_names()};
  std::optional<data::Dataset> first_ds;
  if (loader.needs_data()) {
    first_ds = data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
  }
  const ir::Graph graph = loader.take(first_ds ? &*first_ds : nullptr).graph;
  quant::QuantAssignment q;
  std::string source;
  if (trial) {
    try {
      q = exporter::assignment_from_sampled_config(graph, trial->sampled);
    } catch (Error& e) {
      e.add_context(fmt::format("reading trial {} of --study {}", *a.trial, a.study));
      throw;
    }
    source = fmt::format("study {}, trial {}", a.study, *a.trial);
  } else {
    q = load_quantize_pass(a.config, graph);
    source = "--config " + a.config;
  }
  const data::Dataset ds = first_ds
                               ? std::move(*first_ds)
                               : data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
  exporter::ExportJob job{.format = a.format,
                          .out = a.out,
                          .name = a.name,
                          .model_path = a.model,
                          .command = command_line(a),
                          .source = source,
                          .dataset = &ds,
                          .split = a.split,
                          .num_samples = a.num_samples.value_or(-1),
                          .output = a.output,
                          .reuse_factor = a.reuse_factor,
                          .strategy = a.strategy};
  for (const std::string& p : exporter::run_export(graph, q, job)) std::cout << p << "\n";
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write a quantized model as C99 (bit-equal to the int engine), an hls4ml config or QONNX");
  cmd->add_option("--model", args->model, "ONNX model file (default with --study: the study's)");
  cmd->add_option("--config", args->config,
                  "TOML config whose [passes.quantize] gives the formats (as eval --quant)");
  cmd->add_option("--study", args->study, "A search's --out directory (its study.db)");
  cmd->add_option_function<int64_t>(
      "--trial", [args](int64_t n) { args->trial = n; }, "Trial number in --study");
  cmd->add_option("--format", args->format,
                  "c (C99 source, default) | hls4ml (hls4ml config YAML + the ONNX model) | qdq "
                  "(ONNX QuantizeLinear/DequantizeLinear) | qonnx (the model with QONNX Quant "
                  "nodes); qdq and qonnx: --out M.onnx or a directory");
  cmd->add_option("--reuse-factor", args->reuse_factor, "hls4ml: ReuseFactor (default 1)");
  cmd->add_option("--strategy", args->strategy, "hls4ml: Latency (default) | Resource");
  cmd->add_option("--out", args->out, "Output directory (qdq, qonnx: or a file M.onnx)")
      ->required();
  cmd->add_option("--name", args->name,
                  "File names NAME.h/NAME.c/NAME.json and symbol prefix (default: model)");
  cmd->add_option("--dataset", args->dataset,
                  "Data set the sidecar's accuracy is measured on (default: mnist)");
  cmd->add_option("--split", args->split, "train | val | test (default: test)");
  cmd->add_option_function<int64_t>(
      "--num-samples", [args](int64_t n) { args->num_samples = n; },
      "Measure on the first N samples (default: all)");
  cmd->add_option("--output", args->output,
                  "Graph output holding the class scores (default: the first)");
  add_fold_bn_flag(
      cmd, [args](bool v) { args->fold_bn = v; },
      "the config's fold_batch_norm says (with --study: the study's, which the flag must match)");
  cmd->callback(
      [&global, &run, args] { run = [&global, args] { return run_export(global, *args); }; });
}

}  // namespace qsearch::cli
