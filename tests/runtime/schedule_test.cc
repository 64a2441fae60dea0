// The evaluation's schedule (runtime/schedule.h): chosen from the plan's sizes, and the wide
// MLP's plan runs whole batches instead of streaming its weights per micro-batch.
#include <gtest/gtest.h>

#include <cstring>

#include "core/thread_pool.h"
#include "runtime/executor.h"
#include "runtime/plan.h"
#include "runtime/schedule.h"
#include "runtime/test_models.h"

namespace qsearch::runtime {
namespace {

// Sizes of the shipped MNIST MLP (784-256-128-10) and of the 784-4096-4096-10 MLP of issue 14.
ScheduleInputs small_mlp(int64_t batch, int64_t num_batches, int threads) {
  return {.weight_bytes = 935'000,
          .macs_per_sample = 234'000,
          .activation_bytes_per_sample = 4'700,
          .batch = batch,
          .num_batches = num_batches,
          .threads = threads};
}
ScheduleInputs wide_mlp(int64_t batch, int64_t num_batches, int threads) {
  return {.weight_bytes = 80'000'000,
          .macs_per_sample = 20'000'000,
          .activation_bytes_per_sample = 36'000,
          .batch = batch,
          .num_batches = num_batches,
          .threads = threads};
}

TEST(Schedule, OneThreadRunsEverythingInline) {
  for (const ScheduleInputs& in : {small_mlp(256, 40, 1), wide_mlp(64, 32, 1)}) {
    const Schedule s = choose_schedule(in);
    EXPECT_EQ(s.kind, ScheduleKind::kBatchParallel);
    EXPECT_EQ(s.parallel_batches, in.num_batches);
  }
}

TEST(Schedule, OneBatchGetsEveryThreadThroughItsKernels) {
  for (const ScheduleInputs& in : {small_mlp(256, 1, 2), wide_mlp(16, 1, 4)}) {
    const Schedule s = choose_schedule(in);
    EXPECT_EQ(s.kind, ScheduleKind::kThreadedKernels);
    EXPECT_EQ(s.parallel_batches, 0);
  }
}

TEST(Schedule, SmallModelsRunBatchParallelAndTheTailThreaded) {
  Schedule s = choose_schedule(small_mlp(256, 40, 2));
  EXPECT_EQ(s.kind, ScheduleKind::kBatchParallel);
  EXPECT_EQ(s.parallel_batches, 40);
  // 3 batches on 2 threads: one round batch-parallel, the third batch with threaded kernels.
  s = choose_schedule(small_mlp(256, 3, 2));
  EXPECT_EQ(s.kind, ScheduleKind::kBoth);
  EXPECT_EQ(s.parallel_batches, 2);
  s = choose_schedule(small_mlp(256, 41, 4));
  EXPECT_EQ(s.kind, ScheduleKind::kBoth);
  EXPECT_EQ(s.parallel_batches, 40);
  // Fewer batches than threads: every batch with threaded kernels.
  s = choose_schedule(small_mlp(256, 3, 4));
  EXPECT_EQ(s.kind, ScheduleKind::kThreadedKernels);
  EXPECT_EQ(s.parallel_batches, 0);
}

TEST(Schedule, TinyBatchesNeverThreadTheirKernels) {
  // 16 samples of the small MLP are ~4M MACs: a parallel step would be mostly synchronisation.
  const Schedule s = choose_schedule(small_mlp(16, 3, 2));
  EXPECT_EQ(s.kind, ScheduleKind::kBatchParallel);
  EXPECT_EQ(s.parallel_batches, 3);
}

TEST(Schedule, ActivationsWorkersCannotHoldThreadTheKernelsLargeWeightsDoNot) {
  // The wide MLP's 80 MB of weights are shared by the workers' Executors: batch-parallel (and
  // threaded kernels for an incomplete last round).
  for (int64_t batch : {1, 16, 64}) {
    Schedule s = choose_schedule(wide_mlp(batch, 8, 2));
    EXPECT_EQ(s.kind, ScheduleKind::kBatchParallel) << batch;
    EXPECT_EQ(s.parallel_batches, 8);
    s = choose_schedule(wide_mlp(batch, 9, 2));
    EXPECT_EQ(s.kind, ScheduleKind::kBoth) << batch;
    EXPECT_EQ(s.parallel_batches, 8);
  }
  // 256 of its samples hold 9.2 MB of activations: two workers' batches, 18 MB, are within
  // kWorkerActivationBytes (interleaved runs of both schedules at 256 rows were within the noise).
  EXPECT_EQ(choose_schedule(wide_mlp(256, 8, 2)).kind, ScheduleKind::kBatchParallel);
  // A CNN at 224x224 (~10 MB of activations per sample) and at 32x32 (~50x less of each): the
  // workers' activations are threads x bytes per sample x the samples an Executor runs at once
  // (its micro-batch, 0: the whole batch), against kWorkerActivationBytes (64 MB).
  struct Case {
    int64_t batch, micro_batch;
    int threads;
    int64_t shrink;  // 1: 224x224, 50: 32x32
    ScheduleKind want;
    const char* why;
  };
  const Case cases[] = {
      {16, 0, 2, 1, ScheduleKind::kThreadedKernels, "whole batches: 320 MB"},
      {16, 8, 2, 1, ScheduleKind::kThreadedKernels, "micro-batches of 8: 160 MB"},
      {16, 3, 2, 1, ScheduleKind::kBatchParallel, "micro-batches of 3: 60 MB"},
      {16, 3, 3, 1, ScheduleKind::kThreadedKernels, "3 threads: 90 MB"},
      {1, 0, 2, 1, ScheduleKind::kBatchParallel, "batch 1: 20 MB"},
      {4, 0, 2, 1, ScheduleKind::kThreadedKernels, "batch 4: 80 MB"},
      {16, 0, 2, 50, ScheduleKind::kBatchParallel, "32x32: 6.4 MB"},
  };
  for (const Case& c : cases) {
    const ScheduleInputs cnn{.weight_bytes = 200'000,
                             .macs_per_sample = 500'000'000 / c.shrink,
                             .activation_bytes_per_sample = 10'000'000 / c.shrink,
                             .micro_batch = c.micro_batch,
                             .batch = c.batch,
                             .num_batches = 64 / c.batch,
                             .threads = c.threads};
    EXPECT_EQ(choose_schedule(cnn).kind, c.want) << c.why;
  }
}

TEST(Schedule, ForcedSchedules) {
  EXPECT_EQ(make_schedule(ScheduleKind::kBatchParallel, 5, 2).parallel_batches, 5);
  EXPECT_EQ(make_schedule(ScheduleKind::kThreadedKernels, 5, 2).parallel_batches, 0);
  const Schedule both = make_schedule(ScheduleKind::kBoth, 5, 2);
  EXPECT_EQ(both.kind, ScheduleKind::kBoth);
  EXPECT_EQ(both.parallel_batches, 4);
  EXPECT_EQ(make_schedule(ScheduleKind::kBoth, 4, 2).kind, ScheduleKind::kBatchParallel);
  EXPECT_EQ(make_schedule(ScheduleKind::kBoth, 1, 2).kind, ScheduleKind::kThreadedKernels);
}

// The plan's own sizes give the choices above, and the wide MLP's micro-batch is the whole batch
// (before: 7 samples, so that each worker streamed its 80 MB of weights every 7 samples).
TEST(Schedule, PlansReportTheirSizes) {
  const auto small = make_plan(testing::make_mlp({784, 256, 128, 10}), {.max_batch = 256});
  EXPECT_EQ(small->macs_per_sample(), 784 * 256 + 256 * 128 + 128 * 10);
  EXPECT_GT(small->activation_bytes_per_sample(), 784 * 4);
  EXPECT_EQ(choose_schedule(schedule_inputs(*small, 256, 40, 2)).kind,
            ScheduleKind::kBatchParallel);
  EXPECT_EQ(small->micro_batch() % 8, 0);
  EXPECT_LT(small->micro_batch(), 256);  // small weights: slices stay in cache

  const auto wide = make_plan(testing::make_mlp({784, 4096, 4096, 10}), {.max_batch = 64});
  EXPECT_EQ(wide->macs_per_sample(), 784 * 4096 + 4096 * 4096 + 4096 * 10);
  EXPECT_EQ(wide->parameter_bytes(), 4 * (784 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10));
  EXPECT_EQ(choose_schedule(schedule_inputs(*wide, 64, 8, 2)).kind, ScheduleKind::kBatchParallel);
  // At 256 rows two workers' batches (~18 MB) are within kWorkerActivationBytes.
  EXPECT_EQ(choose_schedule(schedule_inputs(*wide, 256, 8, 2)).kind, ScheduleKind::kBatchParallel);
  EXPECT_EQ(wide->micro_batch(), 64);
}

// Every schedule runs the same Executor, whose results do not depend on the thread count or on
// slicing: the wide MLP at 1, 2 and 3 threads, whole and in the slices a smaller micro-batch
// would take, gives the same bits.
TEST(Schedule, WideMlpResultsDoNotDependOnThreads) {
  const int saved = num_threads();
  const auto plan = make_plan(testing::make_mlp({784, 1024, 1024, 10}), {.max_batch = 24});
  const Tensor x = testing::random_tensor({24, 1, 28, 28}, 3, 0.0f, 1.0f);
  std::vector<float> want;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Executor ex(plan);
    for (int64_t slice : {24, 7}) {
      std::vector<float> got;
      for (int64_t b = 0; b < 24; b += slice) {
        const Tensor& y = ex.run(x.rows(b, std::min<int64_t>(24, b + slice)));
        got.insert(got.end(), y.data<float>(), y.data<float>() + y.numel());
      }
      if (want.empty()) want = got;
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
          << threads << " threads, slices of " << slice;
    }
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::runtime
