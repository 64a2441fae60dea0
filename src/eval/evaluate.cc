#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/stopwatch.h"
#include "core/thread_pool.h"

namespace qsearch::eval {

namespace {

// Executors are per thread and expensive to build (buffers): keep a small free list.
class ExecutorPool {
 public:
  explicit ExecutorPool(std::shared_ptr<const runtime::Plan> plan) : plan_(std::move(plan)) {}
  std::unique_ptr<runtime::Executor> acquire() {
    std::lock_guard<std::mutex> lock(m_);
    if (free_.empty()) return std::make_unique<runtime::Executor>(plan_);
    auto e = std::move(free_.back());
    free_.pop_back();
    return e;
  }
  void release(std::unique_ptr<runtime::Executor> e) {
    std::lock_guard<std::mutex> lock(m_);
    free_.push_back(std::move(e));
  }

 private:
  std::shared_ptr<const runtime::Plan> plan_;
  std::mutex m_;
  std::vector<std::unique_ptr<runtime::Executor>> free_;
};

}  // namespace

EvalResult evaluate(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                    const EvalOptions& options) {
  if (options.batch_size < 1) fail("batch size must be >= 1, got {}", options.batch_size);
  const int64_t n = (options.num_samples < 0 || options.num_samples > data.size())
                        ? data.size()
                        : options.num_samples;
  if (n == 0) fail("data set '{}' has no samples to evaluate", data.name);
  const int64_t batch = std::min(options.batch_size, plan->max_batch());

  // The model's input may be [?, 784] while the data set holds [N, 1, 28, 28]: samples are fed
  // by rows, so only the per-sample element counts must agree.
  Shape want = plan->input_shape();
  int64_t per_sample_model = 1;
  for (size_t d = 1; d < want.size(); ++d) per_sample_model *= want[d];
  const int64_t per_sample_data = data.size() ? data.x.numel() / data.size() : 0;
  if (per_sample_model != per_sample_data) {
    fail("model input {} does not fit data set '{}' samples {} ({} vs {} values per sample)",
         shape_str(want), data.name, shape_str(data.x.shape()), per_sample_model, per_sample_data);
  }

  std::vector<double> sample_loss(n);
  std::vector<int32_t> predicted(n);
  const int64_t* labels = data.y.data<int64_t>();
  ExecutorPool executors(plan);
  std::mutex error_mutex;
  std::string error;

  Stopwatch watch;
  const int64_t num_batches = (n + batch - 1) / batch;
  parallel_for(0, num_batches, 1, [&](int64_t b0, int64_t b1) {
    auto exec = executors.acquire();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * batch, end = std::min(n, begin + batch);
      Shape in_shape = want;
      in_shape[0] = end - begin;
      const Tensor input = data.x.rows(begin, end).reshaped(in_shape);
      const Tensor& logits = exec->run(input);
      const int64_t classes = logits.numel() / (end - begin);
      if (classes < data.num_classes) {
        std::lock_guard<std::mutex> lock(error_mutex);
        error = fmt::format("model has {} outputs per sample but data set '{}' has {} classes",
                            classes, data.name, data.num_classes);
        break;
      }
      const float* z = logits.data<float>();
      for (int64_t i = begin; i < end; ++i) {
        const float* row = z + (i - begin) * classes;
        int32_t arg = 0;
        double mx = row[0];
        for (int64_t c = 1; c < classes; ++c) {
          if (row[c] > mx) {
            mx = row[c];
            arg = static_cast<int32_t>(c);
          }
        }
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c]) - mx);
        sample_loss[i] = std::log(sum) + mx - row[labels[i]];
        predicted[i] = arg;
      }
    }
    executors.release(std::move(exec));
  });
  if (!error.empty()) throw Error(error);

  EvalResult r;
  r.seconds = watch.seconds();
  r.samples = n;
  double loss = 0;
  int64_t correct = 0;
  std::vector<int64_t> tp(data.num_classes, 0), fn(data.num_classes, 0), fp(data.num_classes, 0);
  for (int64_t i = 0; i < n; ++i) {
    loss += sample_loss[i];
    const int64_t y = labels[i];
    if (predicted[i] == y) {
      ++correct;
      ++tp[y];
    } else {
      ++fn[y];
      if (predicted[i] < data.num_classes) ++fp[predicted[i]];
    }
  }
  r.loss = loss / n;
  r.accuracy = static_cast<double>(correct) / n;
  double recall_sum = 0;
  int counted = 0;
  for (int c = 0; c < data.num_classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++counted;
    if (tp[c] + fn[c] > 0) recall_sum += static_cast<double>(tp[c]) / (tp[c] + fn[c]);
  }
  r.macro_accuracy = counted ? recall_sum / counted : 0;
  return r;
}

}  // namespace qsearch::eval
