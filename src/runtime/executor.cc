#include "runtime/executor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include <time.h>

#include <fmt/format.h>

#include "core/check.h"
#include "core/tensor_storage.h"
#include "core/thread_pool.h"

namespace qsearch::runtime {

namespace {

// Multiply-accumulates per thread below which a micro-batch is not run with threaded kernels
// (Executor::slice_for): a few ms of one core's GEMM, long next to the fork-joins of a plan's
// steps.
constexpr int64_t kMinThreadedSliceMacs = int64_t{1} << 28;

}  // namespace

Executor::Executor(std::shared_ptr<const Plan> plan) : plan_(std::move(plan)) {
  QSEARCH_CHECK(plan_ != nullptr);
  const Plan& p = *plan_;
  // Untyped storage (integer slots of the int mode share the pool), allocated as float32
  // rounded up because the output tensors are float32 views of their buffers. All buffers are
  // views of one block, each at a tensor alignment boundary, the block in whole huge pages
  // (core/tensor_storage.h: mapped zero-filled, a page fault per 2 MiB). Separate buffers under
  // 2 MiB were zeroed by memset, a fault per 4 KiB, which costs about 12 us on a paravirtualised
  // VM: EfficientNet-B0's 4.3 MB of buffers at batch 1 took 12 ms per executor, two or three of
  // its samples.
  std::vector<size_t> offsets;
  size_t total = 0;
  for (size_t bytes : p.buffer_bytes()) {
    offsets.push_back(total);
    total += (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  }
  const Tensor block(Shape{static_cast<int64_t>(whole_huge_pages(total) / 4)}, DType::kFloat32);
  for (size_t b = 0; b < offsets.size(); ++b) {
    const auto first = static_cast<int64_t>(offsets[b] / 4);
    buffers_.push_back(
        block.rows(first, first + static_cast<int64_t>((p.buffer_bytes()[b] + 3) / 4)));
  }
  const auto& slots = p.slots();
  ptrs_.assign(slots.size(), nullptr);
  for (size_t s = 0; s < slots.size(); ++s) {
    switch (slots[s].kind) {
      case SlotKind::kBuffer:
        if (slots[s].buffer >= 0) ptrs_[s] = buffers_[slots[s].buffer].raw();
        break;
      case SlotKind::kConstant:
        // Steps never write constants; the pointer table is untyped.
        ptrs_[s] = const_cast<void*>(p.constants()[slots[s].constant].raw());
        break;
      case SlotKind::kInput:
        input_slots_.push_back(static_cast<SlotId>(s));
        break;
    }
  }
  for (SlotId o : p.output_slots()) {
    const Slot& sl = slots[o];
    QSEARCH_CHECK(sl.kind == SlotKind::kBuffer && sl.buffer >= 0 && sl.dtype == DType::kFloat32);
    std::vector<Tensor> views;
    views.reserve(p.max_batch());
    for (int64_t b = 1; b <= p.max_batch(); ++b) {
      views.push_back(buffers_[sl.buffer].rows(0, sl.shape.numel(b)).reshaped(sl.shape.shape(b)));
    }
    output_views_.push_back(std::move(views));
  }
  last_outputs_.assign(output_views_.size(), nullptr);
  if (const char* env = std::getenv("QSEARCH_PROFILE"); env && *env && std::strcmp(env, "0")) {
    step_ns_.assign(p.steps().size(), 0);
    step_calls_.assign(p.steps().size(), 0);
    profile_cpu_ = std::strcmp(env, "cpu") == 0;
  }
  if (p.micro_batch() > 0) {
    std::vector<bool> output_buffer(buffers_.size(), false);
    for (SlotId o : p.output_slots()) output_buffer[slots[o].buffer] = true;
    for (size_t s = 0; s < slots.size(); ++s) {
      const Slot& sl = slots[s];
      const bool in = sl.kind == SlotKind::kInput;
      if (in || (sl.kind == SlotKind::kBuffer && sl.buffer >= 0 && output_buffer[sl.buffer])) {
        sliced_.push_back({static_cast<SlotId>(s), static_cast<char*>(ptrs_[s]),
                           p.sample_bytes(static_cast<SlotId>(s))});
      }
    }
  }
}

int64_t Executor::slice_for(int64_t batch) const {
  // Micro-batches inline (one thread, or a batch-parallel worker); with threaded kernels too
  // when a slice still gives every thread a long step: EfficientNet-B0 and MobileNetV2 at
  // 224x224, batch 64, float ran 1.3-1.4x faster in slices of 8 (their activations stay in the
  // last-level cache from step to step), while slices of a few samples of a small model would
  // be mostly fork-joins.
  const int64_t slice = plan_->micro_batch();
  if (slice <= 0 || slice >= batch) return batch;
  const int threads = in_parallel_region() ? 1 : num_threads();
  if (threads > 1 && slice * plan_->macs_per_sample() < kMinThreadedSliceMacs * threads) {
    return batch;
  }
  return slice;
}

Executor::~Executor() {
  if (!plan_ || step_ns_.empty()) return;
  const int64_t total = std::accumulate(step_ns_.begin(), step_ns_.end(), int64_t{0});
  if (total == 0) return;
  std::vector<size_t> order(step_ns_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return step_ns_[a] > step_ns_[b]; });
  std::string out = fmt::format("QSEARCH_PROFILE: {} steps, {:.3f} ms in steps\n", step_ns_.size(),
                                static_cast<double>(total) * 1e-6);
  out += fmt::format("{:>5} {:>10} {:>6} {:>6}  {}\n", "step", "ms", "%", "calls", "node: kernel");
  for (size_t i : order) {
    if (step_calls_[i] == 0) continue;
    const Step& st = *plan_->steps()[i];
    out += fmt::format("{:>5} {:>10.3f} {:>6.2f} {:>6}  {}: {}\n", i,
                       static_cast<double>(step_ns_[i]) * 1e-6,
                       100.0 * static_cast<double>(step_ns_[i]) / static_cast<double>(total),
                       step_calls_[i], st.node, st.describe());
  }
  std::fputs(out.c_str(), stderr);
}

void Executor::run_steps(const RunContext& ctx) {
  const auto& steps = plan_->steps();
  if (step_ns_.empty()) {
    for (const auto& step : steps) step->run(ctx);
    return;
  }
  // The calling thread's CPU time for QSEARCH_PROFILE=cpu: on a loaded machine the wall clock
  // counts the time the thread waited for a core (kernels that run inline, e.g. --threads 1,
  // are all counted); else the wall clock.
  const clockid_t clock = profile_cpu_ ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
  auto now = [clock] {
    timespec ts;
    clock_gettime(clock, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const int64_t t0 = now();
    steps[i]->run(ctx);
    step_ns_[i] += now() - t0;
    ++step_calls_[i];
  }
}

const Tensor& Executor::run(const Tensor& input) {
  QSEARCH_CHECK(plan_->num_inputs() == 1);
  return run(std::span<const Tensor>(&input, 1));
}

const Tensor& Executor::run(std::span<const Tensor> inputs) {
  const Plan& p = *plan_;
  QSEARCH_CHECK(inputs.size() == p.num_inputs());
  const int64_t batch = inputs[0].rank() > 0 ? inputs[0].dim(0) : 0;
  QSEARCH_CHECK(batch >= 1 && batch <= p.max_batch());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    const Shape& want = p.input_shape(i);
    QSEARCH_CHECK(input.dtype() == p.input_dtype(i) &&
                  input.rank() == static_cast<int>(want.size()) && input.dim(0) == batch);
    for (size_t d = 1; d < want.size(); ++d) QSEARCH_CHECK(input.shape()[d] == want[d]);
  }
  // Input slots are only read.
  auto in = [&](SlotId s) { return const_cast<void*>(inputs[p.slots()[s].input].raw()); };
  for (SlotId s : input_slots_) ptrs_[s] = in(s);
  const int64_t slice = slice_for(batch);
  if (slice >= batch) {
    run_steps(RunContext(p.slots(), ptrs_.data(), batch));
  } else {
    for (Sliced& s : sliced_) {
      if (p.slots()[s.slot].kind == SlotKind::kInput) s.base = static_cast<char*>(in(s.slot));
    }
    for (int64_t r0 = 0; r0 < batch; r0 += slice) {
      for (const Sliced& s : sliced_) ptrs_[s.slot] = s.base + r0 * s.sample_bytes;
      run_steps(RunContext(p.slots(), ptrs_.data(), std::min(slice, batch - r0)));
    }
    for (const Sliced& s : sliced_) ptrs_[s.slot] = s.base;
  }
  for (size_t o = 0; o < output_views_.size(); ++o) {
    last_outputs_[o] = &output_views_[o][batch - 1];
  }
  return *last_outputs_[0];
}

}  // namespace qsearch::runtime
