// Software metrics of a planned model on a data set: what `qsearch eval` prints and what every
// search trial measures (MASE's basic_evaluation runner, mase.md §5.1, reset per call).
//
//   auto plan = runtime::make_plan(graph, {.max_batch = 256});
//   EvalResult r = evaluate(plan, dataset, {.num_samples = 10000, .batch_size = 256});
//   r.loss           mean cross-entropy over the evaluated samples (natural log): of the
//                    logits, or, when the model ends in Softmax (ModelOutput), the negative
//                    log-likelihood of its probabilities, -log p[y] (p clamped below at FLT_MIN
//                    so that a zero probability costs 87.3, not infinity), or, when it ends in
//                    LogSoftmax, the negative log-likelihood of its log-probabilities, -logp[y]
//                    (no second softmax).
//   r.accuracy       top-1 accuracy (micro): correct / samples
//   r.macro_accuracy mean over classes of recall tp / (tp + fn), classes with
//                    tp + fp + fn = 0 left out (torchmetrics MulticlassAccuracy, average="macro",
//                    which MASE's runner reports as "accuracy")
//   r.top5_accuracy  share of samples whose label is among the 5 highest scores (ties go to the
//                    lower class index, as for top-1; 1 when there are at most 5 classes)
//   r.*_se           standard errors of the accuracies and the loss (the evaluated samples taken as
//   a random sample
//                    of the population): accuracy sqrt(p (1 - p) / n); loss s / sqrt(n) with s
//                    the per-sample losses' standard deviation (n - 1 in its denominator);
//                    macro_accuracy sqrt(sum_c r_c (1 - r_c) / n_c) / C over the C counted
//                    classes, n_c = tp + fn (each recall binomial over its class's samples, the
//                    class counts taken as fixed)
//
// Regression data sets (Dataset::regression: float targets [N, ...], npz:/npy: files): the model's
// output must hold as many values per sample as a target; each sample's loss is the mean of its
// squared errors, r.loss = r.mse = their mean (torch.nn.functional.mse_loss, reduction "mean", as
// every sample has as many values), r.loss_se = r.mse_se as for the loss, and the accuracies are
// NaN (not reported: `qsearch eval` prints no accuracy lines, trials' software_metrics have no
// accuracy keys).
//
// The model's input: a sample of the data set must hold as many values as the graph input's
// per-sample shape (check_model_input); a batch whose dtype differs from the input's is converted
// to it (uint8 pixels -> float32 values as they are, int32 ids -> int64), an integer input is
// passed through unchanged.
//
// evaluate_rows + summarize split evaluate in two, for racing (eval/objective.h): rows [0, k)
// first, the rest only if wanted; the outcomes of [0, n) summarized equal evaluate's bit for bit
// when k is a multiple of the batch size (same batches, same per-sample values, same sum order).
//
// Evaluates the first `num_samples` rows of the data set in order (no shuffling), in batches of
// `batch_size`, scheduled by runtime::choose_schedule (runtime/schedule.h): batches concurrently
// on the thread pool with one Executor per worker, one batch at a time with the kernels
// parallel (large activations), or both. The result does not depend on the thread count or the
// schedule: per-sample losses are summed in sample order.
// Ties in the arg-max go to the lowest class index (torch.argmax).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "ir/input_decl.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/schedule.h"

namespace qsearch::eval {

// What the model's scores are: the loss must know, since cross-entropy of probabilities taken as
// logits is not the model's loss (MASE applies cross_entropy whatever the model ends in).
enum class OutputKind { kLogits, kProbabilities, kLogProbabilities };

struct EvalOptions {
  int64_t num_samples = -1;  // < 0 or > size: the whole split
  int64_t batch_size = 256;
  size_t output_index = 0;  // which graph output holds the scores (ModelOutput::index)
  OutputKind output_kind = OutputKind::kLogits;
  // How batches are spread over the threads; unset: runtime::choose_schedule from the plan's
  // sizes. The results are the same bits under every schedule (tests and benchmarks force one).
  std::optional<runtime::ScheduleKind> schedule;
};

// The graph output a classifier's evaluation reads, and what it holds.
struct ModelOutput {
  size_t index = 0;
  std::string name;
  OutputKind kind = OutputKind::kLogits;
  // A line for the user when the choice is not obvious ("the model ends in Softmax: ...",
  // "the model has 2 outputs (a, b): using 'a' ..."); empty otherwise.
  std::string note;
};

// Chooses the output: the one named `name`, or the first when `name` is empty. Its kind is
// kProbabilities when it is produced by a Softmax over its class scores (the last axis, or one
// followed only by 1-dims), kLogProbabilities when by a LogSoftmax over them. Throws Error, before
// anything runs, when `name` is no graph output (listing them) or when the output does not hold
// exactly `num_classes` values per sample (naming both counts and `dataset`), so that a search
// refuses the model before its first trial.
ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 int64_t num_classes, const std::string& dataset);
// The same for a loaded data set, checked before anything runs: check_model_input, then for a
// classification data set the output above; for a regression one the output must hold as many
// values per sample as a target (naming both shapes and the file).
ModelOutput resolve_model_output(const ir::Graph& graph, const std::string& name,
                                 const data::Dataset& data);
// Throws Error, naming the graph input's shape and dtype, the data set's per-sample shape and
// dtype and its file(s), when a sample does not hold as many values as the input takes per
// sample, or when the input takes integers (token ids) and the data holds floats.
// A model with several graph inputs (a BERT's input_ids, attention_mask, token_type_ids): each
// must have its array (Dataset::input_names, in the model's order), of exactly the input's
// per-sample shape, integer data for an integer input; the error names the input, both shapes,
// the dtypes and the file.
void check_model_input(const ir::Graph& graph, const data::Dataset& data);
// The sizes of the model's symbolic input dims other than the batch (a Hugging Face export's
// 'seq'), read from the data set before the model is imported (onnx::ImportOptions::dims): dim d
// of input k is dim d of its array (data.inputs()[k], one per input in the model's order; a
// one-input model's x). `inputs` are the file's declarations (onnx::read_graph_inputs). Throws
// Error when a data array's rank differs from its input's, or when two inputs (or two dims) with
// one name get different sizes, naming the input, the dim name, both shapes and the file. Empty
// when no input has such dims.
ir::DimBinding bind_input_dims(const std::vector<ir::InputDecl>& inputs, const data::Dataset& data);
// The names DataOptions::input_names takes for `graph`: its graph inputs' when it has several,
// else none (a one-input model reads x, whatever its input's name).
std::vector<std::string> data_input_names(const ir::Graph& graph);
// ModelOutput -> the EvalOptions fields.
void set_output(EvalOptions& options, const ModelOutput& output);

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  double macro_accuracy = 0;
  double top5_accuracy = 0;
  double loss_se = 0, accuracy_se = 0, macro_accuracy_se = 0;  // standard errors (above)
  double top5_accuracy_se = 0;
  bool regression = false;  // then loss = mse, and the accuracies are NaN
  double mse = 0, mse_se = 0;
  int64_t samples = 0;
  double seconds = 0;
  double samples_per_s() const { return seconds > 0 ? samples / seconds : 0; }
};

// Throws Error when the model's output does not fit the data set (not one score per class) or
// the input shape differs from the data set's samples.
EvalResult evaluate(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                    const EvalOptions& options);

// What each evaluated sample gave, in sample order: rows [0, loss.size()) of the data set.
struct SampleOutcomes {
  std::vector<double> loss;        // regression: the mean squared error of the sample
  std::vector<int32_t> predicted;  // regression: 0
  std::vector<uint8_t> in_top5;    // 1 when the label is among the 5 highest scores
  size_t size() const { return loss.size(); }
};
// Evaluates rows [outcomes->size(), end) (end at most the data set's size) in batches of
// options.batch_size counted from that first row, and appends their outcomes. Throws as
// evaluate does. options.num_samples is ignored.
void evaluate_rows(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                   const EvalOptions& options, int64_t end, SampleOutcomes* outcomes);
// The metrics of rows [0, outcomes.size()) (seconds = 0). Throws when there are none.
EvalResult summarize(const SampleOutcomes& outcomes, const data::Dataset& data);

}  // namespace qsearch::eval
