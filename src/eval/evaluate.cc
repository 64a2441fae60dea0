#include "eval/evaluate.h"

#include <algorithm>
#include <cfloat>
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

ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 int64_t num_classes, const std::string& dataset) {
  const std::vector<ir::ValueId>& outs = graph.outputs();
  if (outs.empty()) fail("the model has no outputs");
  std::string names;
  for (ir::ValueId v : outs) names += (names.empty() ? "'" : ", '") + graph.value(v).name + "'";
  ModelOutput m;
  if (!name.empty()) {
    const auto it = std::find_if(outs.begin(), outs.end(),
                                 [&](ir::ValueId v) { return graph.value(v).name == name; });
    if (it == outs.end())
      fail("--output '{}' is no output of the model; its outputs: {}", name, names);
    m.index = static_cast<size_t>(it - outs.begin());
  }
  const ir::ValueId v = outs[m.index];
  m.name = graph.value(v).name;
  if (outs.size() > 1 && name.empty()) {
    m.note = fmt::format(
        "the model has {} outputs ({}); scoring the first, '{}' (choose another with "
        "--output NAME)",
        outs.size(), names, m.name);
  }
  const Shape s = graph.infer_shapes(1)[v];
  const int64_t per_sample = shape_numel(s);
  if (per_sample != num_classes) {
    fail(
        "model output '{}' has {} values per sample (shape {} at batch 1) but data set '{}' has {} "
        "classes: the model must give one score per class{}",
        m.name, per_sample, shape_str(s), dataset, num_classes,
        outs.size() > 1 ? fmt::format(" (outputs: {}; choose with --output NAME)", names) : "");
  }
  const ir::NodeId p = graph.value(v).producer;
  if (p >= 0) {
    const ir::Node& n = graph.nodes()[p];
    if (n.kind == ir::OpKind::kSoftmax || n.kind == ir::OpKind::kLogSoftmax) {
      const int64_t axis = std::get<ir::AxisAttrs>(n.attrs).axis;
      const int64_t rank = static_cast<int64_t>(s.size());
      // Over the class scores: the last axis, or an earlier one when every later dim is 1.
      bool over_classes = true;
      for (int64_t d = (axis < 0 ? axis + rank : axis) + 1; d < rank; ++d) {
        over_classes = over_classes && s[d] == 1;
      }
      if (over_classes) {
        const bool log = n.kind == ir::OpKind::kLogSoftmax;
        m.kind = log ? OutputKind::kLogProbabilities : OutputKind::kProbabilities;
        const std::string note =
            log ? "the model ends in LogSoftmax: the loss is the negative log-likelihood of its "
                  "log-probabilities, -logp[label] (no second softmax over them)"
                : "the model ends in Softmax: the loss is the negative log-likelihood of its "
                  "probabilities, -log p[label] (not cross-entropy of them taken as logits)";
        m.note = m.note.empty() ? note : m.note + "; " + note;
      }
    }
  }
  return m;
}

void set_output(EvalOptions& options, const ModelOutput& output) {
  options.output_index = output.index;
  options.output_kind = output.kind;
}

void evaluate_rows(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                   const EvalOptions& options, int64_t end, SampleOutcomes* outcomes) {
  if (options.batch_size < 1) fail("batch size must be >= 1, got {}", options.batch_size);
  const int64_t first = static_cast<int64_t>(outcomes->size());
  const int64_t n = std::min(end, data.size());
  if (n <= first) return;
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

  std::vector<double>& sample_loss = outcomes->loss;
  std::vector<int32_t>& predicted = outcomes->predicted;
  sample_loss.resize(n);
  predicted.resize(n);
  const int64_t* labels = data.y.data<int64_t>();
  ExecutorPool executors(plan);
  std::mutex error_mutex;
  std::string error;

  const int64_t num_batches = (n - first + batch - 1) / batch;
  parallel_for(0, num_batches, 1, [&](int64_t b0, int64_t b1) {
    auto exec = executors.acquire();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = first + b * batch, end = std::min(n, begin + batch);
      Shape in_shape = want;
      in_shape[0] = end - begin;
      const Tensor input = data.x.rows(begin, end).reshaped(in_shape);
      exec->run(input);
      if (options.output_index >= exec->num_outputs()) {
        std::lock_guard<std::mutex> lock(error_mutex);
        error = fmt::format("output index {} is beyond the model's {} outputs",
                            options.output_index, exec->num_outputs());
        break;
      }
      const Tensor& logits = exec->output(options.output_index);
      const int64_t classes = logits.numel() / (end - begin);
      if (classes != data.num_classes) {
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
        const double score = row[labels[i]];
        switch (options.output_kind) {
          case OutputKind::kLogits: {
            double sum = 0;
            for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c]) - mx);
            sample_loss[i] = std::log(sum) + mx - score;
            break;
          }
          case OutputKind::kProbabilities:
            sample_loss[i] = -std::log(std::max(score, static_cast<double>(FLT_MIN)));
            break;
          case OutputKind::kLogProbabilities:
            sample_loss[i] = -score;
            break;
        }
        predicted[i] = arg;
      }
    }
    executors.release(std::move(exec));
  });
  if (!error.empty()) {
    sample_loss.resize(first);
    predicted.resize(first);
    throw Error(error);
  }
}

EvalResult summarize(const SampleOutcomes& outcomes, const data::Dataset& data) {
  const int64_t n = static_cast<int64_t>(outcomes.size());
  if (n == 0) fail("data set '{}' has no samples to evaluate", data.name);
  const int64_t* labels = data.y.data<int64_t>();
  EvalResult r;
  r.samples = n;
  double loss = 0;
  int64_t correct = 0;
  std::vector<int64_t> tp(data.num_classes, 0), fn(data.num_classes, 0), fp(data.num_classes, 0);
  for (int64_t i = 0; i < n; ++i) {
    loss += outcomes.loss[i];
    const int64_t y = labels[i];
    const int32_t p = outcomes.predicted[i];
    if (p == y) {
      ++correct;
      ++tp[y];
    } else {
      ++fn[y];
      if (p < data.num_classes) ++fp[p];
    }
  }
  r.loss = loss / n;
  r.accuracy = static_cast<double>(correct) / n;
  double sq = 0;  // second pass: the deviations from the mean, not the cancelling E[x^2] - E[x]^2
  for (int64_t i = 0; i < n; ++i) sq += (outcomes.loss[i] - r.loss) * (outcomes.loss[i] - r.loss);
  r.loss_se = n > 1 ? std::sqrt(sq / (n - 1) / n) : 0.0;
  r.accuracy_se = std::sqrt(r.accuracy * (1 - r.accuracy) / n);
  double recall_sum = 0, recall_var = 0;
  int counted = 0;
  for (int c = 0; c < data.num_classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++counted;
    const int64_t nc = tp[c] + fn[c];
    if (nc > 0) {
      const double rc = static_cast<double>(tp[c]) / nc;
      recall_sum += rc;
      recall_var += rc * (1 - rc) / nc;
    }
  }
  r.macro_accuracy = counted ? recall_sum / counted : 0;
  r.macro_accuracy_se = counted ? std::sqrt(recall_var) / counted : 0;
  return r;
}

EvalResult evaluate(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                    const EvalOptions& options) {
  if (options.batch_size < 1) fail("batch size must be >= 1, got {}", options.batch_size);
  const int64_t n = (options.num_samples < 0 || options.num_samples > data.size())
                        ? data.size()
                        : options.num_samples;
  if (n == 0) fail("data set '{}' has no samples to evaluate", data.name);
  Stopwatch watch;
  SampleOutcomes outcomes;
  evaluate_rows(plan, data, options, n, &outcomes);
  const double seconds = watch.seconds();
  EvalResult r = summarize(outcomes, data);
  r.seconds = seconds;
  return r;
}

}  // namespace qsearch::eval
