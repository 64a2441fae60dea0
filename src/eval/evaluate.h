// Software metrics of a planned model on a data set: what `qsearch eval` prints and what every
// search trial measures (MASE's basic_evaluation runner, mase.md §5.1, reset per call).
//
//   auto plan = runtime::make_plan(graph, {.max_batch = 256});
//   EvalResult r = evaluate(plan, dataset, {.num_samples = 10000, .batch_size = 256});
//   r.loss           mean cross-entropy over the evaluated samples (natural log)
//   r.accuracy       top-1 accuracy (micro): correct / samples
//   r.macro_accuracy mean over classes of recall tp / (tp + fn), classes with
//                    tp + fp + fn = 0 left out (torchmetrics MulticlassAccuracy, average="macro",
//                    which MASE's runner reports as "accuracy")
//
// Evaluates the first `num_samples` rows of the data set in order (no shuffling), in batches of
// `batch_size`; batches run concurrently on the thread pool, one Executor per worker. The
// result does not depend on the thread count: per-sample losses are summed in sample order.
// Ties in the arg-max go to the lowest class index (torch.argmax).
#pragma once

#include <cstdint>
#include <memory>

#include "data/dataset.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace qsearch::eval {

struct EvalOptions {
  int64_t num_samples = -1;  // < 0 or > size: the whole split
  int64_t batch_size = 256;
};

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  double macro_accuracy = 0;
  int64_t samples = 0;
  double seconds = 0;
  double samples_per_s() const { return seconds > 0 ? samples / seconds : 0; }
};

// Throws Error when the model's output does not fit the data set (e.g. fewer logits than
// classes) or the input shape differs from the data set's samples.
EvalResult evaluate(const std::shared_ptr<const runtime::Plan>& plan, const data::Dataset& data,
                    const EvalOptions& options);

}  // namespace qsearch::eval
