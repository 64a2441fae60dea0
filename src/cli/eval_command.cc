// qsearch eval --model M.onnx --dataset mnist [--split test] [--num-samples N]
//              [--batch-size B] [--quant CONFIG.toml] [--mode float|fake|int] [--output NAME]
//              [--fold-bn[=false]] [--schedule auto|batch-parallel|threaded-kernels|both]
//              [--conv-algorithm auto|direct|winograd] [--json]
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <malloc.h>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/quant_args.h"
#include "config/checks.h"
#include "core/error.h"
#include "core/tensor_cache.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "runtime/plan.h"
#include "runtime/schedule.h"

namespace qsearch::cli {

namespace {

struct EvalArgs {
  std::string model;
  std::string dataset = "mnist";
  std::string split = "test";
  std::string label_column;
  std::vector<std::string> feature_columns;
  std::optional<int64_t> num_samples;  // unset: the whole split
  int64_t batch_size = 256;
  std::string quant;   // CONFIG.toml with [passes.quantize]
  std::string mode;    // "" = int with --quant, float without
  std::string output;  // graph output scored ("" = the first)
  std::string schedule = "auto";
  std::string conv_algorithm = "auto";  // float mode's 3x3 convs (runtime::ConvAlgorithm)
  std::optional<bool> fold_bn;  // --fold-bn[=false] / --no-fold-bn (else the --quant config's)
  bool json = false;
};

std::optional<runtime::ScheduleKind> parse_schedule(const std::string& s) {
  for (auto k : {runtime::ScheduleKind::kBatchParallel, runtime::ScheduleKind::kThreadedKernels,
                 runtime::ScheduleKind::kBoth}) {
    if (s == runtime::schedule_name(k)) return k;
  }
  if (s != "auto") {
    fail("--schedule '{}': use auto, batch-parallel, threaded-kernels or both", s);
  }
  return std::nullopt;
}

int run_eval(const GlobalOptions& global, const EvalArgs& a) {
  if (a.num_samples) config::check_at_least("--num-samples", *a.num_samples, 1);
  config::check_at_least("--batch-size", a.batch_size, 1);
  const runtime::ConvAlgorithm conv_algorithm =
      runtime::parse_conv_algorithm(a.conv_algorithm, "--conv-algorithm");
  const bool fold_bn = a.fold_bn.value_or(!a.quant.empty() && config_folds_batch_norm(a.quant));
  // A model with a symbolic sequence length is imported once the data set gives its size.
  ModelForData loader(a.model, fold_bn);
  data::DataOptions dopts{.data_dir = global.data_dir,
                          .label_column = a.label_column,
                          .feature_columns = a.feature_columns,
                          .input_names = loader.input_names(),
                          .max_samples = a.num_samples.value_or(0)};
  std::optional<data::Dataset> first_ds;
  if (loader.needs_data()) {
    first_ds = data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
  }
  onnx::QonnxModel model = loader.take(first_ds ? &*first_ds : nullptr);
  ir::Graph graph = std::move(model.graph);
  // A QONNX model's own Quant formats apply unless --quant gives others (docs/onnx.md).
  const bool own = a.quant.empty() && !model.formats.empty();
  runtime::PlanOptions popts;
  popts.mode = parse_mode(a.mode.empty() ? (a.quant.empty() && !own ? "float" : "int") : a.mode);
  popts.conv_algorithm = conv_algorithm;
  if (conv_algorithm != runtime::ConvAlgorithm::kAuto && popts.mode != runtime::Mode::kFloat) {
    std::cerr << "qsearch: note: --conv-algorithm applies to --mode float only; "
              << runtime::mode_name(popts.mode) << " runs the direct convolution\n";
  }
  if (!a.quant.empty()) {
    popts.quant = load_quantize_pass(a.quant, graph);
  } else if (own) {
    popts.quant = model.formats;
  } else if (popts.mode != runtime::Mode::kFloat) {
    fail("--mode {} needs --quant CONFIG.toml (the formats to quantize with)", a.mode);
  }
  data::Dataset ds = first_ds ? std::move(*first_ds)
                              : data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
  const eval::ModelOutput out = eval::resolve_model_output(graph, a.output, ds);
  if (!out.note.empty()) std::cerr << "qsearch: note: " << out.note << "\n";
  // Exactly the first N samples (the last batch partial); a batch larger than that is clamped.
  const int64_t n = std::min(a.num_samples.value_or(ds.size()), ds.size());
  popts.max_batch = std::max<int64_t>(1, std::min(a.batch_size, n));
  // The plan holds what it runs (packed weights): the graph's float32 copy is not needed for
  // the evaluation, so the plan consumes it (large weights packed in place or dropped once
  // packed, the rest freed after planning: the wide MLP's 80 MB are not held twice).
  auto plan = runtime::make_plan(std::move(graph), popts);
  // Its buffers would stay in the tensor block cache, resident, for tensors of their sizes,
  // which the evaluation does not allocate.
  release_cached_tensor_blocks();
#ifdef __GLIBC__
  malloc_trim(0);  // the CLI keeps freed blocks (app.cc): return the graph's pages once
#endif
  eval::EvalOptions eopts{.num_samples = n, .batch_size = popts.max_batch};
  eval::set_output(eopts, out);
  eopts.schedule = parse_schedule(a.schedule);
  eval::EvalResult r = eval::evaluate(plan, ds, eopts);
  const int64_t batches = (n + eopts.batch_size - 1) / eopts.batch_size;
  const runtime::ScheduleInputs sin =
      runtime::schedule_inputs(*plan, eopts.batch_size, batches, num_threads());
  const runtime::ScheduleKind schedule =
      eopts.schedule ? *eopts.schedule : runtime::choose_schedule(sin).kind;
  if (a.json) {
    // A regression data set has no accuracies: its JSON has mse instead (never NaN).
    nlohmann::json j = {{"loss", r.loss}, {"loss_se", r.loss_se}};
    if (r.regression) {
      j["mse"] = r.mse;
      j["mse_se"] = r.mse_se;
    } else {
      j["accuracy"] = r.accuracy;
      j["macro_accuracy"] = r.macro_accuracy;
      j["top5_accuracy"] = r.top5_accuracy;
      j["accuracy_se"] = r.accuracy_se;
      j["macro_accuracy_se"] = r.macro_accuracy_se;
      j["top5_accuracy_se"] = r.top5_accuracy_se;
    }
    j["samples"] = r.samples;
    j["samples_per_s"] = r.samples_per_s();
    j["mode"] = runtime::mode_name(popts.mode);
    j["schedule"] = runtime::schedule_name(schedule);
    j["parameter_bytes"] = plan->parameter_bytes();
    j["activation_bytes_per_batch"] = sin.activation_bytes_per_sample * eopts.batch_size;
    j["micro_batch"] = sin.micro_batch;  // samples an Executor runs at once (0: whole batches)
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format("model           {}\n", a.model)
              << fmt::format("dataset         {} ({} split, {} samples)\n", ds.name, a.split,
                             r.samples)
              << fmt::format("mode            {}{}\n", runtime::mode_name(popts.mode),
                             !a.quant.empty() ? fmt::format(" ({})", a.quant)
                             : own && popts.mode != runtime::Mode::kFloat
                                 ? " (the model's QONNX formats)"
                                 : "")
              << fmt::format("loss            {:.6f} +- {:.6f}{}\n", r.loss, r.loss_se,
                             r.regression ? "   (mean squared error)" : "");
    if (r.regression) {
      std::cout << fmt::format("mse             {:.6f} +- {:.6f}\n", r.mse, r.mse_se);
    } else {
      std::cout << fmt::format("accuracy        {:.6f} +- {:.6f}\n", r.accuracy, r.accuracy_se)
                << fmt::format("top5_accuracy   {:.6f} +- {:.6f}\n", r.top5_accuracy,
                               r.top5_accuracy_se)
                << fmt::format("macro_accuracy  {:.6f} +- {:.6f}\n", r.macro_accuracy,
                               r.macro_accuracy_se);
    }
    std::cout << fmt::format("samples         {}\n", r.samples)
              << fmt::format("samples/s       {:.0f}\n", r.samples_per_s())
              << fmt::format("schedule        {} (batch {}, {} threads)\n",
                             runtime::schedule_name(schedule), eopts.batch_size, num_threads());
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Loss and accuracy of an ONNX model on a data set");
  cmd->add_option("--model", args->model, "ONNX model file")->required();
  cmd->add_option("--dataset", args->dataset,
                  "mnist | fashion-mnist | jsc | csv:PATH | npz:PATH[?x=A&y=B] | npy:X.npy,Y.npy "
                  "(default: mnist)");
  cmd->add_option("--split", args->split, "train | val | test (default: test)");
  cmd->add_option("--label-column", args->label_column, "Label column of a csv:PATH data set");
  cmd->add_option("--feature-columns", args->feature_columns,
                  "Feature columns of a csv:PATH data set, in the model's input order: A,B,C "
                  "(default: every column but the label)")
      ->delimiter(',');
  cmd->add_option_function<int64_t>(
      "--num-samples", [args](int64_t n) { args->num_samples = n; },
      "Evaluate the first N samples of the split (default: all)");
  cmd->add_option("--batch-size", args->batch_size,
                  "Batch size (default: 256; at most the samples evaluated)");
  cmd->add_option("--quant", args->quant,
                  "TOML config whose [passes.quantize] gives the formats (MASE's schema)");
  cmd->add_option("--mode", args->mode,
                  "float | fake (MASE's fake quantization) | int (bit-accurate integers); "
                  "default: int with --quant or a QONNX model's own formats, else float");
  cmd->add_option("--output", args->output,
                  "Graph output holding the class scores (default: the first)");
  add_fold_bn_flag(
      cmd, [args](bool v) { args->fold_bn = v; }, "the --quant config's fold_batch_norm says");
  cmd->add_option("--schedule", args->schedule,
                  "auto (chosen from the model's sizes) | batch-parallel | threaded-kernels | "
                  "both: how batches use the threads (the results are the same; default: auto)");
  cmd->add_option("--conv-algorithm", args->conv_algorithm,
                  "auto | direct | winograd: --mode float's kernel for stride-1 3x3 convs, chosen "
                  "once per conv for --batch-size (default: auto, Winograd where faster)");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback(
      [&global, &run, args] { run = [&global, args] { return run_eval(global, *args); }; });
}

}  // namespace qsearch::cli
