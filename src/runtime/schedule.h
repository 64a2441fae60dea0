// How an evaluation spreads a plan's batches over the thread pool (docs/architecture.md
// "Threading"): a pure function of the plan's measured sizes, so the choice is the same on every
// run and is unit-tested (tests/runtime/schedule_test.cc).
//
//   const runtime::Schedule s = runtime::choose_schedule(runtime::schedule_inputs(
//       *plan, batch, num_batches, num_threads()));
//   // batches [0, s.parallel_batches): one per pool worker, kernels inline (batch-parallel)
//   // batches [s.parallel_batches, num_batches): one after another, each kernel parallel
//
// Batch-parallel suits most models: each worker owns an Executor, the kernels run inline (no
// synchronisation per step) and walk the batch in micro-batches (never so small that wide
// layers re-stream their weights every few samples, plan.h), so a worker holds one slice of
// activations, not its whole batch. Threaded kernels are for activations the workers together
// should not hold (a fixed allowance: one Executor with threaded kernels holds one batch or
// micro-batch of them). Both: whole rounds of `threads` batches run batch-parallel and the last,
// incomplete round runs with threaded kernels, so that no worker idles at the end (e.g. 3
// batches on 2 threads).
//
// Results never depend on the schedule: an Executor's outputs are the same bits whatever the
// thread count and slicing (executor.h), and evaluate() sums per-sample values in sample order.
#pragma once

#include <cstdint>
#include <string>

namespace qsearch::runtime {

class Plan;

enum class ScheduleKind { kBatchParallel, kThreadedKernels, kBoth };

const char* schedule_name(ScheduleKind kind);

// What the choice reads.
struct ScheduleInputs {
  int64_t weight_bytes = 0;                 // Plan::parameter_bytes()
  int64_t macs_per_sample = 0;              // Plan::macs_per_sample()
  int64_t activation_bytes_per_sample = 0;  // Plan::activation_bytes_per_sample()
  int64_t micro_batch = 0;                  // Plan::micro_batch() (0: whole batches)
  int64_t batch = 1;                        // samples per batch
  int64_t num_batches = 1;
  int threads = 1;  // num_threads()
};

ScheduleInputs schedule_inputs(const Plan& plan, int64_t batch, int64_t num_batches, int threads);

struct Schedule {
  ScheduleKind kind = ScheduleKind::kBatchParallel;
  // The first parallel_batches batches run batch-parallel; the rest with threaded kernels.
  int64_t parallel_batches = 0;
};

// The rule (constants in schedule.cc):
// - one thread, or one batch: kBatchParallel / kThreadedKernels trivially (the kernels run
//   inline with one thread; a single batch gets every thread through its kernels);
// - threaded kernels when the batch-parallel workers together would hold more than
//   kWorkerActivationBytes of activations (threads x activation bytes per sample x the samples
//   a worker's Executor runs at once: its micro-batch, or its whole batch) and a batch has at
//   least kMinThreadedMacs * threads multiply-accumulates, so that a parallel step is long next
//   to its synchronisation (the weights do not count: every Executor of a plan shares them);
// - otherwise batch-parallel for the whole rounds of `threads` batches, and threaded kernels
//   for the remaining batches (kBoth when there are both, kThreadedKernels when there are fewer
//   batches than threads).
Schedule choose_schedule(const ScheduleInputs& in);

// Schedule of `kind` for num_batches batches on `threads` threads (tests and benchmarks force
// one).
Schedule make_schedule(ScheduleKind kind, int64_t num_batches, int threads);

std::string to_string(const ScheduleInputs& in, const Schedule& s);

}  // namespace qsearch::runtime
