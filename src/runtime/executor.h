// Executor: runs a Plan on batches. Owns the activation buffers, so give each thread its own
// (several executors may share one Plan).
//
//   runtime::Executor ex(plan);
//   for (int64_t b = 0; b < n; b += 256) {
//     const Tensor& logits = ex.run(images.rows(b, std::min(n, b + 256)));
//     ...                                   // logits valid until the next run()
//   }
//
// run() does no heap allocation and takes no lock of its own: buffers, pointers and the output
// views for every batch size 1..max_batch are made by the constructor. Kernels parallelise
// with qsearch::parallel_for; called from inside a parallel_for chunk (e.g. the evaluator runs
// one batch per worker) they run inline, otherwise they hand chunks to the core thread pool.
// When the plan is row-independent, run() walks the batch in slices of Plan::micro_batch()
// samples so that activations stay in cache: always when the kernels run inline (one thread, or
// inside a chunk); with threaded kernels only when a slice is long enough for every thread
// (slice_for), else the batch runs whole (fewer, larger parallel steps). Results are
// bit-identical for any thread count and any slicing.
//
// Profiling: with the environment variable QSEARCH_PROFILE set (to anything but "0"), each
// executor times every step of every run() with a steady clock and, when it is destroyed, prints
// to stderr a table of the steps by total time (step, node, kernel line of Plan::to_string(),
// milliseconds, share, calls). Nothing is timed or allocated per run when it is unset. With
// QSEARCH_PROFILE=cpu the calling thread's CPU time is counted instead of the wall clock (on a
// loaded machine the wall clock also counts the waits for a core; work handed to pool threads
// is not counted, so use it with --threads 1).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "runtime/plan.h"

namespace qsearch::runtime {

class Executor {
 public:
  explicit Executor(std::shared_ptr<const Plan> plan);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  Executor(Executor&&) = default;
  Executor& operator=(Executor&&) = default;

  // input: [B, ...] of the plan's input dtype (Plan::input_dtype(): float32, or int64 / int32
  // token ids) and shape, 1 <= B <= max_batch (checked with QSEARCH_CHECK: a caller bug, not bad
  // data), for a plan of one graph input. Returns the graph's first output for this batch ([B,
  // classes] for a classifier), a view valid until the next run(). Never throws.
  const Tensor& run(const Tensor& input);
  // The same for any number of graph inputs: inputs[i] feeds Plan::input_slot(i) (its dtype and
  // shape), every one with the same batch B.
  const Tensor& run(std::span<const Tensor> inputs);

  // Every graph output of the last run() (same validity).
  const Tensor& output(size_t i) const { return *last_outputs_[i]; }
  size_t num_outputs() const { return last_outputs_.size(); }

  const Plan& plan() const { return *plan_; }

  // The samples per slice run() uses for a batch of `batch` on the calling thread (batch when
  // it runs whole): Plan::micro_batch(), unless the kernels are threaded (num_threads() > 1,
  // outside a parallel region) and a slice has fewer than 2^28 multiply-accumulates per thread.
  int64_t slice_for(int64_t batch) const;

 private:
  std::shared_ptr<const Plan> plan_;
  std::vector<Tensor> buffers_;
  std::vector<void*> ptrs_;          // per slot
  std::vector<SlotId> input_slots_;  // slots aliasing a caller's input (Slot::input says which)
  // Slots advanced by `sample_bytes` per sample from slice to slice: the inputs' and the
  // outputs' (their base pointers; the inputs' are set per run).
  struct Sliced {
    SlotId slot;
    char* base;
    int64_t sample_bytes;
  };
  std::vector<Sliced> sliced_;
  // output_views_[o][b - 1]: output o as a tensor of batch b (outputs are always kBuffer
  // slots: make_plan copies an output that would alias the input or a constant).
  std::vector<std::vector<Tensor>> output_views_;
  std::vector<const Tensor*> last_outputs_;
  // QSEARCH_PROFILE: nanoseconds and calls per step (empty when profiling is off).
  std::vector<int64_t> step_ns_, step_calls_;
  bool profile_cpu_ = false;  // QSEARCH_PROFILE=cpu: the thread's CPU time, not the wall clock

  void run_steps(const RunContext& ctx);
};

}  // namespace qsearch::runtime
