#include "runtime/schedule.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/plan.h"

namespace qsearch::runtime {

namespace {

// Activations the batch-parallel workers may hold together. Each worker's Executor holds the
// activations of the samples it runs at once (its micro-batch, or its whole batch); one
// Executor with threaded kernels holds one batch's, or one micro-batch's. Batch-parallel was
// 1.3x faster than threaded kernels for MobileNetV2 at 224x224 in int (8-sample micro-batches,
// 45 MB for two workers) and for MobileNetV2's and EfficientNet-B0's float runs at 224x224
// batch 1 and 32x32 batch 64 (19-24 MB), and within 5 % where the workers would hold 78-87 MB
// (EfficientNet-B0 and ResNet-18 at 224x224 in int; BENCHMARKS.md "Session 13"). The bound is on
// memory: ResNet-18 at 224x224 holds 5.4 MB a sample, and a search of 64 samples in batches of 32
// on workers holding whole batches peaked at 673 MB.
constexpr int64_t kWorkerActivationBytes = int64_t{64} << 20;
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
          .micro_batch = plan.micro_batch(),
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
  // Only activations count: the weights are shared by every Executor of a plan, and with
  // micro-batches that never re-stream them per few samples (plan.h) batch-parallel ran the
  // 784-4096-4096-10 MLP (80 MB of weights) as fast as threaded kernels or faster (BENCHMARKS.md
  // "Issue 14"). A worker's Executor touches only the rows of the samples it runs at once.
  const int64_t at_once = in.micro_batch > 0 ? std::min(in.batch, in.micro_batch) : in.batch;
  const int64_t workers = t * at_once * in.activation_bytes_per_sample;
  const bool worth_threading = in.macs_per_sample * in.batch >= kMinThreadedMacs * t;
  if (!worth_threading) return make_schedule(ScheduleKind::kBatchParallel, in.num_batches, 1);
  if (workers > kWorkerActivationBytes) {
    return make_schedule(ScheduleKind::kThreadedKernels, in.num_batches, 1);
  }
  return make_schedule(ScheduleKind::kBoth, in.num_batches, static_cast<int>(t));
}

std::string to_string(const ScheduleInputs& in, const Schedule& s) {
  return fmt::format(
      "{} ({} of {} batches batch-parallel; weights {} bytes, {} MACs and {} activation bytes "
      "per sample, batch {}, micro-batch {}, {} threads)",
      schedule_name(s.kind), s.parallel_batches, in.num_batches, in.weight_bytes,
      in.macs_per_sample, in.activation_bytes_per_sample, in.batch, in.micro_batch, in.threads);
}

}  // namespace qsearch::runtime
