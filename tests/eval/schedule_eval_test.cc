// evaluate() gives the same bits under every schedule (batch-parallel, threaded kernels, both)
// and thread count: the determinism rule of docs/architecture.md "Threading".
#include <gtest/gtest.h>

#include <cstring>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "eval/evaluate.h"
#include "runtime/test_models.h"

namespace qsearch::eval {
namespace {

data::Dataset random_digits(int64_t n) {
  data::Dataset d;
  d.name = "random";
  d.x = runtime::testing::random_tensor({n, 1, 28, 28}, 11, 0.0f, 1.0f);
  d.y = Tensor({n}, DType::kInt64);
  Rng rng(5);
  for (int64_t i = 0; i < n; ++i) d.y.data<int64_t>()[i] = static_cast<int64_t>(rng.uniform(0, 10));
  d.num_classes = 10;
  return d;
}

TEST(EvaluateSchedule, ResultsAreTheSameUnderEverySchedule) {
  const int saved = num_threads();
  const data::Dataset d = random_digits(75);  // 5 batches of 16, the last of 11
  const auto plan =
      runtime::make_plan(runtime::testing::make_mlp({784, 512, 256, 10}), {.max_batch = 16});
  SampleOutcomes want;
  evaluate_rows(plan, d, {.batch_size = 16}, d.size(), &want);
  ASSERT_EQ(want.size(), 75u);
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (auto kind : {runtime::ScheduleKind::kBatchParallel,
                      runtime::ScheduleKind::kThreadedKernels, runtime::ScheduleKind::kBoth}) {
      SampleOutcomes got;
      EvalOptions o{.batch_size = 16};
      o.schedule = kind;
      evaluate_rows(plan, d, o, d.size(), &got);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.loss.data(), want.loss.data(), want.size() * sizeof(double)), 0)
          << threads << " threads, " << runtime::schedule_name(kind);
      EXPECT_EQ(got.predicted, want.predicted);
      EXPECT_EQ(got.in_top5, want.in_top5);
    }
    const EvalResult a = evaluate(plan, d, {.batch_size = 16});
    const EvalResult b = summarize(want, d);
    EXPECT_EQ(a.loss, b.loss);
    EXPECT_EQ(a.accuracy, b.accuracy);
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace qsearch::eval
