#include "runtime/schedule.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/plan.h"

namespace qsearch::runtime {

namespace {

// The share of the last-level cache a run may count on: half of the 32 MB L3 of the EPYC servers
// we measure on (the rest is the other processes'). A batch's activations beyond
// kSharedCacheBytes / threads per concurrent batch go to memory, and each worker holds its own.
constexpr int64_t kSharedCacheBytes = int64_t{16} << 20;
// Multiply-accumulates per thread and batch below which a kernel's parallel_for (a few
// microseconds per step) is not worth it: 4M MACs are ~0.1 ms of float GEMM on one core.
constexpr int64_t kMinThreadedMacs = int64_t{4} << 20;

}  // namespace

const char* schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kBatchParallel:
      return "batch-parallel";
    case ScheduleKind::kThreadedKernels:
      return "threaded-kernels";
    case ScheduleKind::kBoth:
      return "both";
  }
  return "?";
}

ScheduleInputs schedule_inputs(const Plan& plan, int64_t batch, int64_t num_batches, int threads) {
  return {.weight_bytes = plan.parameter_bytes(),
          .macs_per_sample = plan.macs_per_sample(),
          .activation_bytes_per_sample = plan.activation_bytes_per_sample(),
          .batch = batch,
          .num_batches = num_batches,
          .threads = threads};
}

Schedule make_schedule(ScheduleKind kind, int64_t num_batches, int threads) {
  const int64_t t = std::max(1, threads);
  switch (kind) {
    case ScheduleKind::kBatchParallel:
      return {kind, num_batches};
    case ScheduleKind::kThreadedKernels:
      return {kind, 0};
    case ScheduleKind::kBoth: {
      const int64_t rounds = num_batches / t * t;
      if (rounds == num_batches) return {ScheduleKind::kBatchParallel, num_batches};
      if (rounds == 0) return {ScheduleKind::kThreadedKernels, 0};
      return {kind, rounds};
    }
  }
  return {ScheduleKind::kBatchParallel, num_batches};
}

Schedule choose_schedule(const ScheduleInputs& in) {
  const int64_t t = std::max(1, in.threads);
  if (t == 1 || in.num_batches <= 1) {
    // One thread: everything inline either way. One batch: its kernels get every thread.
    return make_schedule(t == 1 ? ScheduleKind::kBatchParallel : ScheduleKind::kThreadedKernels,
                         in.num_batches, static_cast<int>(t));
  }
  // Only a batch's activations count: the weights are shared by every Executor of a plan, and
  // with micro-batches that never re-stream them per few samples (plan.h) batch-parallel ran the
  // 784-4096-4096-10 MLP (80 MB of weights) as fast as threaded kernels or faster (BENCHMARKS.md
  // "Issue 14"); activations are per Executor, so threaded kernels hold one batch of them.
  const int64_t per_thread_cache = kSharedCacheBytes / t;
  const bool large = in.activation_bytes_per_sample * in.batch > per_thread_cache;
  const bool worth_threading = in.macs_per_sample * in.batch >= kMinThreadedMacs * t;
  if (!worth_threading) return make_schedule(ScheduleKind::kBatchParallel, in.num_batches, 1);
  if (large) return make_schedule(ScheduleKind::kThreadedKernels, in.num_batches, 1);
  return make_schedule(ScheduleKind::kBoth, in.num_batches, static_cast<int>(t));
}

std::string to_string(const ScheduleInputs& in, const Schedule& s) {
  return fmt::format(
      "{} ({} of {} batches batch-parallel; weights {} bytes, {} MACs and {} activation bytes "
      "per sample, batch {}, {} threads)",
      schedule_name(s.kind), s.parallel_batches, in.num_batches, in.weight_bytes,
      in.macs_per_sample, in.activation_bytes_per_sample, in.batch, in.threads);
}

}  // namespace qsearch::runtime
