#include "eval/evaluate.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <map>
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

// count_classes false: only choose the output (regression checks its size itself).
ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 int64_t num_classes, const std::string& dataset,
                                 bool count_classes);

}  // namespace

ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 int64_t num_classes, const std::string& dataset) {
  return resolve_model_output(graph, name, num_classes, dataset, true);
}

namespace {
ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 int64_t num_classes, const std::string& dataset,
                                 bool count_classes) {
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
  if (!count_classes) return m;
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
}  // namespace

void set_output(EvalOptions& options, const ModelOutput& output) {
  options.output_index = output.index;
  options.output_kind = output.kind;
}

namespace {

bool is_integer(DType t) { return t != DType::kFloat32 && t != DType::kFloat64; }

Shape sample_shape(const Tensor& t) { return Shape(t.shape().begin() + 1, t.shape().end()); }

}  // namespace

std::vector<std::string> data_input_names(const ir::Graph& graph) {
  std::vector<std::string> names;
  if (graph.inputs().size() < 2) return names;
  for (ir::ValueId v : graph.inputs()) names.push_back(graph.value(v).name);
  return names;
}

namespace {

// Several graph inputs: every one has its own array of exactly its per-sample shape.
void check_model_inputs(const ir::Graph& graph, const data::Dataset& data) {
  const std::vector<std::string> names = data_input_names(graph);
  const std::string from = data.source.empty() ? "" : " (from " + data.source + ")";
  if (data.input_names != names) {
    std::string want, have;
    for (const auto& n : names) want += (want.empty() ? "" : ", ") + n;
    for (const auto& n : data.input_names) have += (have.empty() ? "" : ", ") + n;
    fail(
        "the model has {} inputs ({}) but data set '{}' feeds {}{}; fix: give an npz: data set "
        "with one array per model input, named after it",
        names.size(), want, data.name, have.empty() ? "one unnamed input" : have, from);
  }
  const std::vector<Tensor> xs = data.inputs();
  for (size_t i = 0; i < names.size(); ++i) {
    const ir::Value& in = graph.value(graph.inputs()[i]);
    const Tensor& x = xs[i];
    const Shape want(in.shape.begin() + 1, in.shape.end());
    const Shape sample = x.rank() >= 1 ? sample_shape(x) : Shape{};
    if (x.rank() < 1 || sample != want) {
      fail(
          "model input '{}' {} takes samples of shape {}, but data set '{}' array '{}' has "
          "samples of shape {} ({} {}){}; fix: save the array as [N{}]",
          in.name, shape_str(in.shape), shape_str(want), data.name, in.name, shape_str(sample),
          dtype_name(x.dtype()), shape_str(x.shape()), from, [&] {
            std::string d;
            for (int64_t v : want) d += fmt::format(", {}", v);
            return d;
          }());
    }
    if (is_integer(in.dtype) != is_integer(x.dtype())) {
      fail(
          "model input '{}' {} takes {}, but data set '{}' array '{}' {} holds {}{}; fix: save "
          "it as {} (a.astype(np.{}))",
          in.name, shape_str(in.shape), dtype_name(in.dtype), data.name, in.name,
          shape_str(x.shape()), dtype_name(x.dtype()), from, dtype_name(in.dtype),
          is_integer(in.dtype) ? (in.dtype == DType::kInt32 ? "int32" : "int64") : "float32");
    }
  }
}

}  // namespace

ir::DimBinding bind_input_dims(const std::vector<ir::InputDecl>& inputs,
                               const data::Dataset& data) {
  ir::DimBinding dims;
  if (!ir::any_symbolic_dims(inputs)) return dims;
  const std::vector<Tensor> xs = data.inputs();
  const std::string from = data.source.empty() ? "" : " (from " + data.source + ")";
  // Where each name got its size: the input, its declaration and its array's shape.
  struct Source {
    std::string input, decl;
    Shape array;
  };
  std::map<std::string, Source> where;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ir::InputDecl& in = inputs[k];
    if (!in.has_symbolic_dims()) continue;
    if (k >= xs.size()) {
      fail(
          "model input '{}' {} has a symbolic size that qsearch takes from the data, but data "
          "set '{}' feeds {} array(s){}; fix: give an npz: data set with one array per model "
          "input, named after it",
          in.name, in.str(), data.name, xs.size(), from);
    }
    const Tensor& x = xs[k];
    const std::string array = data.input_names.empty() ? "x" : data.input_names[k];
    if (x.rank() != static_cast<int64_t>(in.dims.size())) {
      fail(
          "model input '{}' {} has symbolic dims that qsearch takes from the data, but data set "
          "'{}' array '{}' has shape {} (rank {}, the input's is {}){}; fix: save the array as "
          "{} with the sizes of your data",
          in.name, in.str(), data.name, array, shape_str(x.shape()), x.rank(), in.dims.size(), from,
          in.str());
    }
    for (size_t d = 1; d < in.dims.size(); ++d) {
      if (in.dims[d] != kDynamic || in.dim_names[d].empty()) continue;
      const std::string& name = in.dim_names[d];
      const int64_t size = x.dim(static_cast<int64_t>(d));
      auto [it, fresh] = dims.emplace(name, size);
      if (fresh) {
        where[name] = {in.name, in.str(), x.shape()};
      } else if (it->second != size) {
        const Source& first = where[name];
        fail(
            "data set '{}' gives the model's symbolic dim '{}' two sizes: model input '{}' {} "
            "gets {} = {} from array '{}' {}, but input '{}' {} got {} = {} from {}{}; fix: "
            "give every input the same '{}' (pad the arrays to one length)",
            data.name, name, in.name, in.str(), name, size, array, shape_str(x.shape()),
            first.input, first.decl, name, it->second, shape_str(first.array), from, name);
      }
    }
  }
  return dims;
}

void check_model_input(const ir::Graph& graph, const data::Dataset& data) {
  if (graph.inputs().size() > 1 || !data.input_names.empty()) {
    check_model_inputs(graph, data);
    return;
  }
  if (graph.inputs().empty() || data.x.empty() || data.x.rank() < 1) return;
  const ir::Value& in = graph.value(graph.inputs()[0]);
  int64_t per_sample = 1;
  for (size_t d = 1; d < in.shape.size(); ++d) per_sample *= in.shape[d];
  const Shape sample = sample_shape(data.x);
  const int64_t data_per_sample = shape_numel(sample);
  const std::string from = data.source.empty() ? "" : ", from " + data.source;
  if (per_sample >= 0 && per_sample != data_per_sample) {
    fail(
        "model input '{}' {} takes {} values per sample, but data set '{}' has samples of shape "
        "{} ({} values{}); fix: give data whose samples fit the model (for csv: the feature "
        "columns it was trained with, for npz: the right arrays or shape)",
        in.name, shape_str(in.shape), per_sample, data.name, shape_str(sample), data_per_sample,
        from);
  }
  if (is_integer(in.dtype) && !is_integer(data.x.dtype())) {
    fail(
        "model input '{}' {} takes {} (e.g. token ids), but data set '{}' holds {} samples{}; fix: "
        "save the inputs as integers (np.save(path, x.astype(np.int64)))",
        in.name, shape_str(in.shape), dtype_name(in.dtype), data.name, dtype_name(data.x.dtype()),
        from);
  }
}

ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 const data::Dataset& data) {
  check_model_input(graph, data);
  if (!data.regression) return resolve_model_output(graph, name, data.num_classes, data.name);
  // Regression: the chosen output must hold one value per target value.
  ModelOutput m = resolve_model_output(graph, name, -1, data.name, /*count_classes=*/false);
  const Shape s = graph.infer_shapes(1)[graph.outputs()[m.index]];
  const Shape target = sample_shape(data.y);
  if (shape_numel(s) != shape_numel(target)) {
    fail(
        "model output '{}' has {} values per sample (shape {} at batch 1) but data set '{}' has "
        "regression targets of shape {} per sample (from {}): the model must give one value per "
        "target value",
        m.name, shape_numel(s), shape_str(s), data.name, shape_str(target), data.source);
  }
  m.kind = OutputKind::kLogits;  // not read: the loss is the squared error of the raw outputs
  return m;
}

void evaluate_rows(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                   const EvalOptions& options, int64_t end, SampleOutcomes* outcomes) {
  if (options.batch_size < 1) fail("batch size must be >= 1, got {}", options.batch_size);
  const int64_t first = static_cast<int64_t>(outcomes->size());
  const int64_t n = std::min(end, data.size());
  if (n <= first) return;
  const int64_t batch = std::min(options.batch_size, plan->max_batch());

  // The model's input may be [?, 784] while the data set holds [N, 1, 28, 28]: samples are fed
  // by rows, so only the per-sample element counts must agree. A model with several inputs
  // takes one data array per input (Dataset::inputs(), in the model's order).
  const std::vector<Tensor> xs = data.inputs();
  if (xs.size() != plan->num_inputs()) {
    fail("the model has {} inputs but data set '{}' feeds {}", plan->num_inputs(), data.name,
         xs.size());
  }
  for (size_t k = 0; k < xs.size(); ++k) {
    const Shape& want = plan->input_shape(k);
    int64_t per_sample_model = 1;
    for (size_t d = 1; d < want.size(); ++d) per_sample_model *= want[d];
    const int64_t per_sample_data = data.size() && xs[k].rank() >= 1 && xs[k].dim(0) == data.size()
                                        ? xs[k].numel() / data.size()
                                        : -1;
    if (per_sample_model != per_sample_data) {
      fail("model input '{}' {} does not fit data set '{}' samples {} ({} vs {} values per sample)",
           plan->input_name(k), shape_str(want), data.name, shape_str(xs[k].shape()),
           per_sample_model, per_sample_data);
    }
  }

  std::vector<double>& sample_loss = outcomes->loss;
  std::vector<int32_t>& predicted = outcomes->predicted;
  std::vector<uint8_t>& in_top5 = outcomes->in_top5;
  sample_loss.resize(n);
  predicted.resize(n);
  in_top5.resize(n);
  const bool regression = data.regression;
  const int64_t* labels = regression ? nullptr : data.y.data<int64_t>();
  const float* targets = regression ? data.y.data<float>() : nullptr;
  const int64_t per_target = regression ? data.y.numel() / std::max<int64_t>(1, data.size()) : 0;
  ExecutorPool executors(plan);
  std::mutex error_mutex;
  std::string error;

  const int64_t num_batches = (n - first + batch - 1) / batch;
  const int threads = num_threads();
  const runtime::Schedule schedule =
      options.schedule
          ? runtime::make_schedule(*options.schedule, num_batches, threads)
          : runtime::choose_schedule(runtime::schedule_inputs(*plan, batch, num_batches, threads));
  auto run_batches = [&](runtime::Executor* exec, int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = first + b * batch, end = std::min(n, begin + batch);
      std::vector<Tensor> inputs;
      inputs.reserve(xs.size());
      for (size_t k = 0; k < xs.size(); ++k) {
        Shape in_shape = plan->input_shape(k);
        in_shape[0] = end - begin;
        Tensor input = xs[k].rows(begin, end).reshaped(in_shape);
        // Integer inputs the model takes as integers pass unchanged; others become its dtype.
        if (input.dtype() != plan->input_dtype(k)) input = input.to(plan->input_dtype(k));
        inputs.push_back(std::move(input));
      }
      exec->run(inputs);
      if (options.output_index >= exec->num_outputs()) {
        std::lock_guard<std::mutex> lock(error_mutex);
        error = fmt::format("output index {} is beyond the model's {} outputs",
                            options.output_index, exec->num_outputs());
        break;
      }
      const Tensor& logits = exec->output(options.output_index);
      const int64_t classes = logits.numel() / (end - begin);
      if (regression ? classes != per_target : classes != data.num_classes) {
        std::lock_guard<std::mutex> lock(error_mutex);
        error = regression ? fmt::format(
                                 "model has {} outputs per sample but data set '{}' has {} "
                                 "target values per sample",
                                 classes, data.name, per_target)
                           : fmt::format(
                                 "model has {} outputs per sample but data set '{}' has {} classes",
                                 classes, data.name, data.num_classes);
        break;
      }
      const float* z = logits.data<float>();
      for (int64_t i = begin; i < end; ++i) {
        const float* row = z + (i - begin) * classes;
        if (regression) {
          const float* t = targets + i * per_target;
          double sq = 0;
          for (int64_t c = 0; c < classes; ++c) {
            const double d = static_cast<double>(row[c]) - t[c];
            sq += d * d;
          }
          sample_loss[i] = classes > 0 ? sq / static_cast<double>(classes) : 0.0;
          predicted[i] = 0;
          in_top5[i] = 0;
          continue;
        }
        int32_t arg = 0;
        double mx = row[0];
        for (int64_t c = 1; c < classes; ++c) {
          if (row[c] > mx) {
            mx = row[c];
            arg = static_cast<int32_t>(c);
          }
        }
        const int64_t y = labels[i];
        const double score = row[y];
        // The label's rank: classes scoring higher, and equal ones of lower index (as argmax).
        int64_t rank = 0;
        for (int64_t c = 0; c < classes && rank < 5; ++c) {
          rank += row[c] > score || (row[c] == score && c < y);
        }
        in_top5[i] = rank < 5;
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
  };
  // Batch-parallel: one batch per worker, the kernels inline (inside a parallel_for chunk).
  parallel_for(0, schedule.parallel_batches, 1, [&](int64_t b0, int64_t b1) {
    auto exec = executors.acquire();
    run_batches(exec.get(), b0, b1);
    executors.release(std::move(exec));
  });
  // Threaded kernels: the remaining batches one after another, each kernel over the pool.
  if (schedule.parallel_batches < num_batches && error.empty()) {
    auto exec = executors.acquire();
    run_batches(exec.get(), schedule.parallel_batches, num_batches);
    executors.release(std::move(exec));
  }
  if (!error.empty()) {
    sample_loss.resize(first);
    predicted.resize(first);
    in_top5.resize(first);
    throw Error(error);
  }
}

EvalResult summarize(const SampleOutcomes& outcomes, const data::Dataset& data) {
  const int64_t n = static_cast<int64_t>(outcomes.size());
  if (n == 0) fail("data set '{}' has no samples to evaluate", data.name);
  EvalResult r;
  r.samples = n;
  if (data.regression) {
    double loss = 0;
    for (int64_t i = 0; i < n; ++i) loss += outcomes.loss[i];
    r.regression = true;
    r.loss = r.mse = loss / n;
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) sq += (outcomes.loss[i] - r.loss) * (outcomes.loss[i] - r.loss);
    r.loss_se = r.mse_se = n > 1 ? std::sqrt(sq / (n - 1) / n) : 0.0;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.accuracy = r.macro_accuracy = r.top5_accuracy = nan;
    r.accuracy_se = r.macro_accuracy_se = r.top5_accuracy_se = nan;
    return r;
  }
  const int64_t* labels = data.y.data<int64_t>();
  double loss = 0;
  int64_t correct = 0, top5 = 0;
  std::vector<int64_t> tp(data.num_classes, 0), fn(data.num_classes, 0), fp(data.num_classes, 0);
  for (int64_t i = 0; i < n; ++i) {
    loss += outcomes.loss[i];
    top5 += outcomes.in_top5[i];
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
  r.top5_accuracy = static_cast<double>(top5) / n;
  r.top5_accuracy_se = std::sqrt(r.top5_accuracy * (1 - r.top5_accuracy) / n);
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
