// bench-deps: eval onnx data
// Time to evaluate one quantized configuration of the MNIST MLP on the 10k test split (issue 4):
// the C++ side of bench/run_quant_eval.sh (PyTorch's side is bench/torch_fakequant_eval.py).
//
//   build/bin/quant_eval_bench --model models/mlp_mnist.onnx --threads 1 --batch 256
//       --reps 7 --data-in 8.4 --weight 8.6 --bias 16.8
//   build/bin/quant_eval_bench --model models/lenet5_mnist.onnx --ops linear,conv2d --table 0
//
// The configuration quantizes every node whose MASE op is in --ops (default: linear) with the
// given formats (width.frac; --data-out adds an output format) and leaves the rest (ReLUs, pools,
// batch norms) unquantized, like configs/mnist_mlp.toml's trials. One JSON line per mode (float,
// fake, int): the per-trial cost of `reps` trials after one untimed warm-up trial, each trial =
// make_plan (quantize and pack the weights) + eval::evaluate over the 10000 test images (batches
// spread over the pool, one executor per worker: what a search trial runs), split into plan_ms
// and eval_ms, plus the accuracy.
//
// Then the lab report's table made real: for uniform (width, frac) formats of data_in, weight
// and bias, one JSON line each with the int plan's parameter bytes (bit-packed), its latency
// (ms per sample: batch 1 and batch `batch`, medians of eval::measure_latency_ms) and the
// accuracy.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/hardware_metrics.h"
#include "kernels/fixed/isa.h"
#include "onnx/import.h"
#include "runtime/plan.h"

namespace {

using namespace qsearch;

struct Args {
  std::string model = "models/mlp_mnist.onnx";
  int threads = 1;
  int64_t batch = 256;
  int reps = 7;
  quant::FixedFormat data_in{8, 4, true}, weight{8, 6, true}, bias{16, 8, true};
  std::optional<quant::FixedFormat> data_out;
  std::vector<std::string> ops = {"linear"};  // MASE ops to quantize
  std::vector<std::pair<int, int>> widths = {{16, 8}, {8, 4}, {4, 2}, {2, 1}};
  bool table = true;
  std::vector<std::string> modes = {"float", "fake", "int"};  // which modes to time
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(
      stderr,
      "quant_eval_bench: %s\nusage: quant_eval_bench [--model M.onnx] [--threads N] "
      "[--batch B] [--reps R] [--modes float,fake,int] [--ops linear,conv2d] [--data-in W.F] "
      "[--weight W.F] [--bias W.F] [--data-out W.F] [--table 0|1]\n",
      msg.c_str());
  std::exit(2);
}

quant::FixedFormat parse_format(const std::string& s) {
  const auto dot = s.find('.');
  if (dot == std::string::npos) usage("formats are WIDTH.FRAC, e.g. 8.4");
  return {std::atoi(s.substr(0, dot).c_str()), std::atoi(s.substr(dot + 1).c_str()), true};
}

std::vector<std::string> split(const std::string& v) {  // comma-separated
  std::vector<std::string> out;
  for (size_t b = 0, e; b <= v.size(); b = e + 1) {
    e = std::min(v.find(',', b), v.size());
    out.push_back(v.substr(b, e - b));
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage("missing value after " + k);
    const std::string v = argv[++i];
    if (k == "--model") {
      a.model = v;
    } else if (k == "--threads") {
      a.threads = std::atoi(v.c_str());
    } else if (k == "--batch") {
      a.batch = std::atoll(v.c_str());
    } else if (k == "--modes") {
      a.modes = split(v);
    } else if (k == "--ops") {
      a.ops = split(v);
    } else if (k == "--data-out") {
      a.data_out = parse_format(v);
    } else if (k == "--reps") {
      a.reps = std::atoi(v.c_str());
    } else if (k == "--data-in") {
      a.data_in = parse_format(v);
    } else if (k == "--weight") {
      a.weight = parse_format(v);
    } else if (k == "--bias") {
      a.bias = parse_format(v);
    } else if (k == "--table") {
      a.table = v != "0";
    } else {
      usage("unknown option " + k);
    }
  }
  return a;
}

quant::QuantAssignment layers(const ir::Graph& g, const std::vector<std::string>& ops,
                              const quant::FixedFormat& data_in, const quant::FixedFormat& weight,
                              const quant::FixedFormat& bias,
                              const std::optional<quant::FixedFormat>& data_out = std::nullopt) {
  quant::QuantAssignment q;
  for (const ir::Node& n : g.nodes()) {
    if (std::find(ops.begin(), ops.end(), ir::mase_op(g, n)) == ops.end()) continue;
    q[n.config_name] = {.quantized = true,
                        .data_in = data_in,
                        .weight = weight,
                        .bias = bias,
                        .data_out = data_out};
  }
  return q;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string list(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += fmt::format("{}{:.4f}", s.empty() ? "" : ",", x);
  return "[" + s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  const ir::Graph g = onnx::import_model(a.model);
  const data::Dataset test = data::load_dataset("mnist", data::Split::kTest, {});
  const quant::QuantAssignment q = layers(g, a.ops, a.data_in, a.weight, a.bias, a.data_out);
  std::string ops;
  for (const auto& o : a.ops) ops += (ops.empty() ? "" : ",") + o;
  const std::string formats = fmt::format(
      "data_in {}, weight {}, bias {}{} on {}", quant::format_name(a.data_in),
      quant::format_name(a.weight), quant::format_name(a.bias),
      a.data_out ? ", data_out " + quant::format_name(*a.data_out) : std::string(), ops);

  for (runtime::Mode mode : {runtime::Mode::kFloat, runtime::Mode::kFake, runtime::Mode::kInt}) {
    if (std::find(a.modes.begin(), a.modes.end(), runtime::mode_name(mode)) == a.modes.end()) {
      continue;
    }
    std::vector<double> plan_ms, eval_ms, trial_ms;
    double accuracy = 0;
    for (int r = 0; r <= a.reps; ++r) {  // r == 0: warm-up
      Stopwatch trial;
      auto plan = runtime::make_plan(g, {.mode = mode, .max_batch = a.batch, .quant = q});
      const double p = trial.seconds();
      const eval::EvalResult e = eval::evaluate(plan, test, {.batch_size = a.batch});
      const double t = trial.seconds();
      accuracy = e.accuracy;
      if (r == 0) continue;
      plan_ms.push_back(p * 1e3);
      eval_ms.push_back((t - p) * 1e3);
      trial_ms.push_back(t * 1e3);
    }
    std::printf(
        "%s\n",
        fmt::format(R"({{"engine": "qsearch", "mode": "{}", "threads": {}, "batch": {}, )"
                    R"("samples": {}, "formats": "{}", "isa": "{}", "trial_ms": {}, )"
                    R"("plan_ms": {}, "eval_ms": {}, "trial_ms_median": {:.4f}, )"
                    R"("plan_ms_median": {:.4f}, "accuracy": {}}})",
                    runtime::mode_name(mode), a.threads, a.batch, test.size(), formats,
                    kernels::fixed::isa_name(kernels::fixed::max_isa()), list(trial_ms),
                    list(plan_ms), list(eval_ms), median(trial_ms), median(plan_ms), accuracy)
            .c_str());
    std::fflush(stdout);
  }

  if (!a.table) return 0;
  const int64_t float_bytes = runtime::make_plan(g, {.max_batch = 1})->parameter_bytes();
  for (const auto& [w, f] : a.widths) {
    const quant::FixedFormat fmt_wf{w, f, true};
    const quant::QuantAssignment u = layers(g, a.ops, fmt_wf, fmt_wf, fmt_wf);
    auto plan =
        runtime::make_plan(g, {.mode = runtime::Mode::kInt, .max_batch = a.batch, .quant = u});
    const double b1 = eval::measure_latency_ms(plan, test.x, {.batch_size = 1, .repeats = 200});
    const double bb =
        eval::measure_latency_ms(plan, test.x, {.batch_size = a.batch, .repeats = 30});
    const eval::EvalResult e = eval::evaluate(plan, test, {.batch_size = a.batch});
    std::printf(
        "%s\n",
        fmt::format(R"({{"engine": "qsearch", "table": "width", "threads": {}, "width": {}, )"
                    R"("frac": {}, "model_size_bytes": {}, "float32_bytes": {}, )"
                    R"("average_bitwidth": {}, "latency_ms_batch1": {:.6f}, )"
                    R"("latency_ms_per_sample_batch{}": {:.6f}, "accuracy": {}}})",
                    a.threads, w, f, plan->parameter_bytes(), float_bytes,
                    eval::average_bitwidth(g, u, 32).average_bitwidth, b1, a.batch, bb, e.accuracy)
            .c_str());
    std::fflush(stdout);
  }
  return 0;
}
