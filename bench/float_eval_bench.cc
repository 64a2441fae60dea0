// bench-deps: runtime onnx data
// Float eval throughput of qsearch's executor on the MNIST test split (issue 2): the C++ side
// of bench/run_float_eval.sh (PyTorch's side is bench/torch_float_eval.py).
//
//   build/bin/float_eval_bench --model mlp=BUILD/bench_models/mlp.onnx
//       --model cnn=BUILD/bench_models/cnn.onnx --threads 2 --batch 256 --reps 5
//
// For each model: import, make_plan (max_batch = batch), then `reps` timed passes over the
// 10000 test images (after one untimed warm-up pass) in two ways, each printed as one JSON line
// with the samples/s of every pass and the top-1 accuracy:
//   "batch-parallel": batches spread over the thread pool, one Executor per worker, the
//                     kernels inline (how `qsearch eval` and search trials run);
//   "intra-op":       one Executor, batches in order, each kernel parallel over the pool
//                     (how PyTorch eager runs).
// Timed: run() and the arg-max over the logits. Not timed: data loading, import, planning,
// executor construction.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "data/dataset.h"
#include "kernels/gemm.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace {

using qsearch::Tensor;
using qsearch::runtime::Executor;
using qsearch::runtime::Plan;

struct Args {
  std::vector<std::pair<std::string, std::string>> models;  // name, path
  int threads = 1;
  int64_t batch = 256;
  int reps = 5;
  std::string data_dir;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "float_eval_bench: %s\nusage: float_eval_bench --model NAME=PATH.onnx [...] "
               "[--threads N] [--batch B] [--reps R] [--data-dir DIR]\n",
               msg);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + k).c_str());
    const std::string v = argv[++i];
    if (k == "--model") {
      const auto eq = v.find('=');
      if (eq == std::string::npos) usage("--model takes NAME=PATH");
      a.models.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (k == "--threads") {
      a.threads = std::atoi(v.c_str());
    } else if (k == "--batch") {
      a.batch = std::atoll(v.c_str());
    } else if (k == "--reps") {
      a.reps = std::atoi(v.c_str());
    } else if (k == "--data-dir") {
      a.data_dir = v;
    } else {
      usage(("unknown option " + k).c_str());
    }
  }
  if (a.models.empty()) usage("no --model given");
  if (a.threads < 1 || a.batch < 1 || a.reps < 1) usage("threads, batch and reps must be >= 1");
  return a;
}

// Top-1 predictions of one batch's logits checked against the labels: correct count.
int64_t count_correct(const Tensor& logits, const int64_t* labels) {
  const int64_t rows = logits.dim(0), classes = logits.numel() / rows;
  const float* z = logits.data<float>();
  int64_t correct = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = z + i * classes;
    const int64_t arg = std::max_element(r, r + classes) - r;  // first maximum, like argmax
    correct += arg == labels[i];
  }
  return correct;
}

// One pass over the data set; returns the number of correct predictions.
int64_t pass_intra_op(Executor& ex, const qsearch::data::Dataset& d, int64_t batch) {
  int64_t correct = 0;
  const int64_t* labels = d.y.data<int64_t>();
  for (int64_t b = 0; b < d.size(); b += batch) {
    const int64_t e = std::min(d.size(), b + batch);
    correct += count_correct(ex.run(d.x.rows(b, e)), labels + b);
  }
  return correct;
}

class ExecutorPool {
 public:
  ExecutorPool(const std::shared_ptr<const Plan>& plan, int n) {
    for (int i = 0; i < n; ++i) free_.push_back(std::make_unique<Executor>(plan));
  }
  std::unique_ptr<Executor> acquire() {
    std::lock_guard<std::mutex> lock(m_);
    auto e = std::move(free_.back());
    free_.pop_back();
    return e;
  }
  void release(std::unique_ptr<Executor> e) {
    std::lock_guard<std::mutex> lock(m_);
    free_.push_back(std::move(e));
  }

 private:
  std::mutex m_;
  std::vector<std::unique_ptr<Executor>> free_;
};

int64_t pass_batch_parallel(ExecutorPool& pool, const qsearch::data::Dataset& d, int64_t batch) {
  const int64_t batches = (d.size() + batch - 1) / batch;
  std::vector<int64_t> correct(batches, 0);
  qsearch::parallel_for(0, batches, 1, [&](int64_t b0, int64_t b1) {
    auto ex = pool.acquire();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * batch, end = std::min(d.size(), begin + batch);
      correct[b] = count_correct(ex->run(d.x.rows(begin, end)), d.y.data<int64_t>() + begin);
    }
    pool.release(std::move(ex));
  });
  int64_t total = 0;
  for (int64_t c : correct) total += c;
  return total;
}

template <typename Pass>
void measure(const char* mode, const std::string& model, const Args& a,
             const qsearch::data::Dataset& d, double plan_seconds, Pass pass) {
  int64_t correct = pass();  // warm-up: page-in buffers, spin up the pool
  std::vector<double> rates;
  for (int r = 0; r < a.reps; ++r) {
    qsearch::Stopwatch sw;
    correct = pass();
    rates.push_back(static_cast<double>(d.size()) / sw.seconds());
  }
  std::string list;
  for (double v : rates) list += fmt::format("{}{:.1f}", list.empty() ? "" : ", ", v);
  std::printf(
      "{\"engine\": \"qsearch\", \"mode\": \"%s\", \"model\": \"%s\", \"threads\": %d, "
      "\"batch\": %ld, \"samples\": %ld, \"samples_per_s\": [%s], \"accuracy\": %.4f, "
      "\"isa\": \"%s\", \"plan_seconds\": %.4f}\n",
      mode, model.c_str(), a.threads, static_cast<long>(a.batch), static_cast<long>(d.size()),
      list.c_str(), static_cast<double>(correct) / d.size(),
      qsearch::kernels::isa_name(qsearch::kernels::best_isa()), plan_seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    qsearch::set_num_threads(a.threads);
    const auto d =
        qsearch::data::load_dataset("mnist", qsearch::data::Split::kTest, {.data_dir = a.data_dir});
    for (const auto& [name, path] : a.models) {
      const qsearch::ir::Graph g = qsearch::onnx::import_model(path);
      qsearch::Stopwatch sw;
      const auto plan = qsearch::runtime::make_plan(g, {.max_batch = a.batch});
      const double plan_seconds = sw.seconds();
      {
        ExecutorPool pool(plan, 4 * a.threads);  // at most one per parallel_for chunk
        measure("batch-parallel", name, a, d, plan_seconds,
                [&] { return pass_batch_parallel(pool, d, a.batch); });
      }
      Executor ex(plan);
      measure("intra-op", name, a, d, plan_seconds, [&] { return pass_intra_op(ex, d, a.batch); });
    }
  } catch (const qsearch::Error& e) {
    std::fprintf(stderr, "float_eval_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
