// qsearch quantize --model M.onnx --config CFG.toml [--dataset D [--split S] [--num-samples N]]
//                  [--mode int|fake|float] [--batch-size B] [--latency-batch L] [--repeats R]
//                  [--conv-algorithm auto|direct|winograd]
//                  [--compare-to 32] [--fpga-device D] [--fpga-clock-mhz F]
//                  [--fpga-reuse-factor R] [--fpga-accum-width W] [--fold-bn[=false]] [--json]
//
// One quantization configuration ([passes.quantize] of CFG.toml, MASE's schema) applied to a
// model: a per-layer table (formats, parameters, bytes as the int engine stores them, MACs,
// BitOPs) and the hardware metrics of eval/hardware_metrics.h (MASE's average_bitwidth and
// memory_density, model size, op counts, the int engine's measured latency), plus loss and
// accuracy on a data set when one is given, and the FPGA cost model's estimate per layer and in
// total (eval/fpga_cost.h: what hls4ml io_parallel would synthesize; docs/hardware.md).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "cli/quant_args.h"
#include "config/checks.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/fpga_cost.h"
#include "eval/hardware_metrics.h"
#include "eval/objective.h"
#include "runtime/plan.h"

namespace qsearch::cli {

namespace {

struct QuantizeArgs {
  std::string model;
  std::string config;
  std::string dataset;  // empty: no software metrics
  std::string split = "test";
  std::string label_column;
  std::vector<std::string> feature_columns;
  std::optional<int64_t> num_samples;  // unset: the whole split
  std::string mode = "int";
  std::string conv_algorithm = "auto";  // --mode float's 3x3 convs (runtime::ConvAlgorithm)
  int64_t batch_size = 256;
  int64_t latency_batch = 1;
  int repeats = 20;
  double compare_to = 32;
  std::string output;  // graph output scored ("" = the first)
  eval::FpgaOptions fpga;
  std::optional<bool> fold_bn;  // --fold-bn[=false] / --no-fold-bn (else the config's key)
  bool json = false;
};

std::string fmt_of(const std::optional<quant::FixedFormat>& f) {
  return f ? quant::format_name(*f) : "-";
}

// Seeded uniform [0, 1) samples of the model's input shapes, for latency without a data set
// (token ids for an int64 / int32 input: all 0, an id every embedding table has), one tensor per
// graph input.
std::vector<Tensor> synthetic_inputs(const runtime::Plan& plan, int64_t batch) {
  std::vector<Tensor> xs;
  Rng rng(1);
  for (size_t k = 0; k < plan.num_inputs(); ++k) {
    Shape s = plan.input_shape(k);
    s[0] = batch;
    Tensor x(s, plan.input_dtype(k));
    if (x.dtype() == DType::kFloat32) {
      for (float& v : x.span<float>()) v = static_cast<float>(rng.uniform(0.0, 1.0));
    }
    xs.push_back(std::move(x));
  }
  return xs;
}

int run_quantize(const GlobalOptions& global, const QuantizeArgs& a) {
  if (a.num_samples) config::check_at_least("--num-samples", *a.num_samples, 1);
  config::check_at_least("--batch-size", a.batch_size, 1);
  config::check_at_least("--latency-batch", a.latency_batch, 1);
  config::check_at_least("--repeats", a.repeats, 1);
  config::check_positive("--compare-to", a.compare_to);
  config::check_positive("--fpga-clock-mhz", a.fpga.clock_mhz);
  config::check_at_least("--fpga-reuse-factor", a.fpga.reuse_factor, 1);
  config::check_at_least("--fpga-accum-width", a.fpga.accum_width, 0, 64);
  try {
    eval::fpga_device(a.fpga.device);
  } catch (const Error& e) {
    fail("--fpga-device: {}", e.what());
  }
  const runtime::ConvAlgorithm conv_algorithm =
      runtime::parse_conv_algorithm(a.conv_algorithm, "--conv-algorithm");
  // A model with a symbolic sequence length is imported once the data set gives its size.
  ModelForData loader(a.model,
                      a.fold_bn.value_or(!a.config.empty() && config_folds_batch_norm(a.config)));
  data::DataOptions dopts{.data_dir = global.data_dir,
                          .label_column = a.label_column,
                          .feature_columns = a.feature_columns,
                          .input_names = loader.input_names()};
  std::optional<data::Dataset> ds;
  if (loader.needs_data() && !a.dataset.empty()) {
    ds = data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
  }
  onnx::QonnxModel model = loader.take(ds ? &*ds : nullptr);
  const ir::Graph graph = std::move(model.graph);
  // Without --config, a QONNX model's own Quant formats (docs/onnx.md "QONNX models").
  if (a.config.empty() && model.formats.empty()) {
    fail("--config is required: {} has no QONNX Quant nodes to take the formats from", a.model);
  }
  const quant::QuantAssignment q =
      a.config.empty() ? model.formats : load_quantize_pass(a.config, graph);
  const std::string config_label = a.config.empty() ? "(the model's QONNX formats)" : a.config;
  const runtime::Mode mode = parse_mode(a.mode);

  int64_t samples = 0;  // evaluated: exactly --num-samples (at most the split)
  int64_t batch = 1;    // evaluation batch, at most the samples evaluated
  if (!a.dataset.empty()) {
    if (!ds) ds = data::load_dataset(a.dataset, data::parse_split(a.split), dopts);
    samples = std::min(a.num_samples.value_or(ds->size()), ds->size());
    batch = std::max<int64_t>(1, std::min(a.batch_size, samples));
  }

  // The int plan gives the stored bytes and the latency; the data set, if any, is evaluated in
  // --mode (int by default: the same plan).
  const int64_t max_batch = std::max(batch, a.latency_batch);
  auto int_plan =
      runtime::make_plan(graph, {.mode = runtime::Mode::kInt, .max_batch = max_batch, .quant = q});
  const eval::BitwidthMetrics bw = eval::average_bitwidth(graph, q, a.compare_to);
  const auto per_node = eval::op_counts_by_node(graph, q);
  const eval::OpCounts totals = eval::op_counts(graph, q);
  const int64_t float_bytes = runtime::make_plan(graph, {.max_batch = 1})->parameter_bytes();
  // What a deployment stores (each parameter at its width) vs what the int engine holds.
  const auto size_per_node = eval::model_size_bytes_by_node(graph, q);
  const int64_t model_bytes = eval::model_size_bytes(graph, q);

  std::optional<eval::EvalResult> r;
  if (ds) {
    auto plan = mode == runtime::Mode::kInt
                    ? int_plan
                    : runtime::make_plan(graph, {.mode = mode,
                                                 .max_batch = max_batch,
                                                 .conv_algorithm = conv_algorithm,
                                                 .quant = q});
    const eval::ModelOutput out = eval::resolve_model_output(graph, a.output, *ds);
    if (!out.note.empty()) std::cerr << "qsearch: note: " << out.note << "\n";
    eval::EvalOptions eopts{.num_samples = samples, .batch_size = batch};
    eval::set_output(eopts, out);
    r = eval::evaluate(plan, *ds, eopts);
  }
  const std::vector<Tensor> latency_input = ds && ds->size() >= a.latency_batch
                                                ? ds->inputs()
                                                : synthetic_inputs(*int_plan, a.latency_batch);
  const double latency = eval::measure_latency_ms(
      int_plan, latency_input, {.batch_size = a.latency_batch, .repeats = a.repeats});

  const eval::FpgaCost fpga = eval::estimate_fpga_cost(graph, q, a.fpga);
  const nlohmann::ordered_json fpga_json = eval::fpga_cost_json(fpga, a.fpga);

  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  const auto& bytes = int_plan->node_parameter_bytes();
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const ir::Node& n = graph.nodes()[i];
    const auto it = q.find(n.config_name);
    const quant::NodeQuantConfig* c =
        it != q.end() && it->second.quantized && !it->second.bypass ? &it->second : nullptr;
    const auto b = bytes.find(n.config_name);
    layers.push_back({{"name", n.config_name},
                      {"op", ir::mase_op(graph, n)},
                      {"data_in", c ? fmt_of(c->data_in) : "-"},
                      {"weight", c ? fmt_of(c->weight) : "-"},
                      {"bias", c ? fmt_of(c->bias) : "-"},
                      {"data_out", c ? fmt_of(c->data_out) : "-"},
                      {"params", ir::param_count(graph, n)},
                      {"bytes", size_per_node[i].second},
                      {"packed_bytes", b == bytes.end() ? 0 : b->second},
                      {"macs", per_node[i].second.macs},
                      {"bitops", per_node[i].second.bitops}});
  }
  nlohmann::ordered_json metrics = {{"average_bitwidth", bw.average_bitwidth},
                                    {"memory_density", bw.memory_density},
                                    {"model_size_bytes", model_bytes},
                                    {"engine_parameter_bytes", int_plan->parameter_bytes()},
                                    {"float32_size_bytes", float_bytes},
                                    {"macs", totals.macs},
                                    {"bitops", totals.bitops},
                                    {"activation_bits", totals.activation_bits},
                                    {"latency_ms", latency}};
  metrics.update(eval::fpga_metrics(fpga));
  const nlohmann::ordered_json latency_setup = {{"engine", "int"},
                                                {"batch_size", a.latency_batch},
                                                {"repeats", a.repeats},
                                                {"threads", num_threads()},
                                                {"per", "sample, median"}};

  if (a.json) {
    nlohmann::ordered_json j = {{"model", a.model},         {"config", config_label},
                                {"layers", layers},         {"hardware_metrics", metrics},
                                {"latency", latency_setup}, {"fpga", fpga_json}};
    if (r) {
      nlohmann::ordered_json sw = eval::software_metrics_json(*r);
      sw.erase("num_samples");
      sw["samples"] = r->samples;
      sw["mode"] = runtime::mode_name(mode);
      sw["dataset"] = ds->name;
      sw["split"] = a.split;
      j["software_metrics"] = sw;
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::string out = fmt::format("model   {}\nconfig  {}\n\n", a.model, config_label);
  const std::string row =
      "{:<16} {:<13} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>12} {:>10} {:>13}\n";
  out += fmt::format(fmt::runtime(row), "name", "op", "data_in", "weight", "bias", "data_out",
                     "params", "bytes", "packed_bytes", "MACs", "BitOPs");
  int64_t params = 0;
  for (const auto& l : layers) {
    params += l["params"].get<int64_t>();
    out += fmt::format(fmt::runtime(row), l["name"].get<std::string>(), l["op"].get<std::string>(),
                       l["data_in"].get<std::string>(), l["weight"].get<std::string>(),
                       l["bias"].get<std::string>(), l["data_out"].get<std::string>(),
                       l["params"].get<int64_t>(), l["bytes"].get<int64_t>(),
                       l["packed_bytes"].get<int64_t>(), l["macs"].get<double>(),
                       l["bitops"].get<double>());
  }
  out += fmt::format(fmt::runtime(row), "total", "", "", "", "", "", params, model_bytes,
                     int_plan->parameter_bytes(), totals.macs, totals.bitops);
  out += fmt::format(
      "\naverage_bitwidth   {:.4f}   (MASE: weights of the quantized linear/conv2d layers; also "
      "gru/lstm W, R)\n"
      "memory_density     {:.4f}   (compare_to {} / average_bitwidth)\n"
      "model_size_bytes   {}   (each parameter at its width; float32: {}, {:.2f}x smaller)\n"
      "engine_bytes       {}   (the int engine's packed panels and int64 biases in memory)\n"
      "macs               {:.0f}   per sample\n"
      "bitops             {:.0f}   per sample (MACs x weight bits x data_in bits, 32 if float)\n"
      "activation_bits    {:.0f}   per sample (inputs of quantized nodes)\n"
      "latency_ms         {:.6f}   per sample: int engine, batch {}, median of {} runs, "
      "{} thread(s)\n",
      bw.average_bitwidth, bw.memory_density, a.compare_to, model_bytes, float_bytes,
      static_cast<double>(float_bytes) / static_cast<double>(model_bytes),
      int_plan->parameter_bytes(), totals.macs, totals.bitops, totals.activation_bits, latency,
      a.latency_batch, a.repeats, num_threads());
  out += fmt::format(
      "\nFPGA estimate: hls4ml io_parallel, Latency strategy, {} @ {} MHz, ReuseFactor {}, "
      "accumulator {} (docs/hardware.md)\n",
      fpga.device, fpga.clock_mhz, a.fpga.reuse_factor,
      a.fpga.accum_width > 0 ? fmt::format("{} bits", a.fpga.accum_width) : "never overflowing");
  const std::string frow = "{:<16} {:<13} {:>7} {:>9} {:>9} {:>6} {:>6} {:>5} {:>16}\n";
  out += fmt::format(fmt::runtime(frow), "name", "op", "DSP", "LUT", "FF", "BRAM18", "cycles", "II",
                     "mults dsp/lut/0");
  for (const eval::FpgaLayerCost& L : fpga.layers) {
    out += fmt::format(fmt::runtime(frow), L.name, L.op, L.dsp, L.lut, L.ff, L.bram18,
                       L.latency_cycles, L.ii,
                       L.dsp_mults + L.lut_mults + L.free_mults > 0
                           ? fmt::format("{}/{}/{}", L.dsp_mults, L.lut_mults, L.free_mults)
                           : "-");
  }
  const eval::FpgaDevice& dev = eval::fpga_device(fpga.device);
  auto pct = [](int64_t used, int64_t have) { return 100.0 * used / std::max<int64_t>(have, 1); };
  out += fmt::format(fmt::runtime(frow), "total", "", fpga.dsp, fpga.lut, fpga.ff, fpga.bram18,
                     fpga.latency_cycles, fpga.ii, "");
  out += fmt::format(
      "fpga_latency_ns    {:.1f}   ({} cycles at {} MHz)\n"
      "fpga_utilization   DSP {:.1f}%  LUT {:.1f}%  FF {:.1f}%  BRAM18 {:.1f}% of {}\n",
      fpga.latency_ns, fpga.latency_cycles, fpga.clock_mhz, pct(fpga.dsp, dev.dsp),
      pct(fpga.lut, dev.lut), pct(fpga.ff, dev.ff), pct(fpga.bram18, dev.bram18), dev.part);
  if (r && r->regression) {
    out += fmt::format(
        "\ndataset            {} ({} split, {} samples, {} mode)\n"
        "loss               {:.6f} +- {:.6f}   (mean squared error)\n"
        "mse                {:.6f} +- {:.6f}   (+- one standard error)\n",
        ds->name, a.split, r->samples, runtime::mode_name(mode), r->loss, r->loss_se, r->mse,
        r->mse_se);
  } else if (r) {
    out += fmt::format(
        "\ndataset            {} ({} split, {} samples, {} mode)\n"
        "loss               {:.6f} +- {:.6f}\naccuracy           {:.6f} +- {:.6f}\n"
        "top5_accuracy      {:.6f} +- {:.6f}\n"
        "macro_accuracy     {:.6f} +- {:.6f}   (+- one standard error)\n",
        ds->name, a.split, r->samples, runtime::mode_name(mode), r->loss, r->loss_se, r->accuracy,
        r->accuracy_se, r->top5_accuracy, r->top5_accuracy_se, r->macro_accuracy,
        r->macro_accuracy_se);
  }
  std::cout << out;
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Apply a [passes.quantize] config: per-layer formats, model size, BitOPs, latency, accuracy");
  cmd->add_option("--model", args->model, "ONNX model file")->required();
  cmd->add_option("--config", args->config,
                  "TOML config with [passes.quantize] (MASE's schema); default for a QONNX "
                  "model: its own Quant formats");
  cmd->add_option("--dataset", args->dataset,
                  "Also evaluate loss/accuracy on: mnist | fashion-mnist | jsc | csv:PATH | "
                  "npz:PATH[?x=A&y=B] | npy:X.npy,Y.npy");
  cmd->add_option("--split", args->split, "train | val | test (default: test)");
  cmd->add_option("--label-column", args->label_column, "Label column of a csv:PATH data set");
  cmd->add_option("--feature-columns", args->feature_columns,
                  "Feature columns of a csv:PATH data set, in the model's input order: A,B,C "
                  "(default: every column but the label)")
      ->delimiter(',');
  cmd->add_option_function<int64_t>(
      "--num-samples", [args](int64_t n) { args->num_samples = n; },
      "Evaluate the first N samples of the split (default: all)");
  cmd->add_option("--mode", args->mode, "Mode of the evaluation: int (default) | fake | float");
  cmd->add_option("--conv-algorithm", args->conv_algorithm,
                  "auto | direct | winograd: --mode float's kernel for stride-1 3x3 convs "
                  "(default: auto)");
  cmd->add_option("--batch-size", args->batch_size,
                  "Evaluation batch size (default: 256; at most the samples evaluated)");
  cmd->add_option("--latency-batch", args->latency_batch,
                  "Batch size of the latency measurement (default: 1)");
  cmd->add_option("--repeats", args->repeats, "Timed runs for the latency median (default: 20)");
  cmd->add_option("--compare-to", args->compare_to,
                  "Reference width of memory_density (default: 32)");
  cmd->add_option("--output", args->output,
                  "Graph output holding the class scores, with --dataset (default: the first)");
  cmd->add_option("--fpga-device", args->fpga.device,
                  "FPGA of the cost estimate: xcu250 (default), xcu200, xcvu9p, xcvu13p, "
                  "xczu7ev, xczu9eg, xcku115");
  cmd->add_option("--fpga-clock-mhz", args->fpga.clock_mhz,
                  "Clock of the FPGA estimate in MHz (default: 200)");
  cmd->add_option("--fpga-reuse-factor", args->fpga.reuse_factor,
                  "hls4ml ReuseFactor of the FPGA estimate (default: 1)");
  cmd->add_option("--fpga-accum-width", args->fpga.accum_width,
                  "Accumulator width of the FPGA estimate (default 0: never overflowing)");
  add_fold_bn_flag(
      cmd, [args](bool v) { args->fold_bn = v; }, "the config's fold_batch_norm says");
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback(
      [&global, &run, args] { run = [&global, args] { return run_quantize(global, *args); }; });
}

}  // namespace qsearch::cli
