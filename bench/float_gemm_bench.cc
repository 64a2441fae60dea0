// bench-deps: kernels core
//
// Float GEMM and convolution throughput at the benchmark models' shapes, single-threaded: the
// reference kernels (the oracles, double accumulation), the packed fast kernels on each ISA this
// CPU has, and Eigen's GEMM (kernels/eigen_gemm.h) as the "library instead of a hand kernel"
// alternative.
//
//   build/bin/float_gemm_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true          (one command line)
//
// Names: FloatGemm/<impl>/M/K/N (Y[M, N] = A[M, K] W[N, K]^T + bias, relu fused where the
// impl allows) and FloatConv/<impl>/batch/C/HW/M (3x3, pad 1, stride 1). GFLOP/s counts
// 2 flops per multiply-accumulate, per CPU second.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/eigen_gemm.h"
#include "kernels/gemm.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/gemm.h"

namespace k = qsearch::kernels;

namespace {

std::vector<float> random(int64_t n, uint64_t seed) {
  qsearch::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
  return v;
}

enum Impl { kRef, kAvx2, kAvx512, kEigen };

void BM_Gemm(benchmark::State& state, Impl impl) {
  qsearch::set_num_threads(1);
  const int64_t m = state.range(0), kk = state.range(1), n = state.range(2);
  if (impl == kAvx512 && !k::isa_supported(k::Isa::kAvx512)) {
    state.SkipWithError("no AVX-512 on this CPU");
    return;
  }
  auto a = random(m * kk, 1), w = random(n * kk, 2), bias = random(n, 3);
  std::vector<float> y(m * n);
  const k::PackedB packed =
      k::pack_b(w.data(), kk, n, true, impl == kAvx512 ? k::Isa::kAvx512 : k::Isa::kAvx2);
  const k::Epilogue ep{.bias = bias.data(), .clamp_min = 0.0f};
  for (auto _ : state) {
    switch (impl) {
      case kRef:
        k::ref::gemm_f32({.m = m, .n = n, .k = kk, .trans_b = true, .c_stride_n = 1}, a.data(),
                         w.data(), bias.data(), y.data());
        break;
      case kAvx2:
      case kAvx512:
        k::gemm_f32_packed(m, a.data(), kk, packed, y.data(), n, ep);
        break;
      case kEigen:
        k::gemm_f32_eigen(m, n, kk, a.data(), w.data(), y.data());
        break;
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * kk, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Conv(benchmark::State& state, Impl impl) {
  qsearch::set_num_threads(1);
  const int64_t batch = state.range(0), c = state.range(1), hw = state.range(2), m = state.range(3);
  if (impl == kAvx512 && !k::isa_supported(k::Isa::kAvx512)) {
    state.SkipWithError("no AVX-512 on this CPU");
    return;
  }
  const k::Conv2dParams p{.batch = batch,
                          .in_channels = c,
                          .in_h = hw,
                          .in_w = hw,
                          .out_channels = m,
                          .out_h = hw,
                          .out_w = hw,
                          .kernel_h = 3,
                          .kernel_w = 3,
                          .pad_top = 1,
                          .pad_left = 1};
  auto x = random(batch * c * hw * hw, 1), w = random(m * c * 9, 2), bias = random(m, 3);
  std::vector<float> y(batch * m * hw * hw);
  const k::PackedConvWeights packed = k::pack_conv_weights(
      w.data(), m, c, 3, 3, 1, impl == kAvx512 ? k::Isa::kAvx512 : k::Isa::kAvx2);
  const k::Epilogue ep{.bias = bias.data(), .clamp_min = 0.0f};
  for (auto _ : state) {
    if (impl == kRef) {
      k::ref::conv2d_f32(p, x.data(), w.data(), bias.data(), y.data());
    } else {
      k::conv2d_f32_packed(p, x.data(), packed, y.data(), ep);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * batch * m * hw * hw * c * 9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  b->Args({256, 784, 256})->Args({256, 256, 128})->Args({256, 128, 10})->Args({10000, 784, 256});
  b->Unit(benchmark::kMicrosecond);
}

void conv_shapes(benchmark::internal::Benchmark* b) {
  b->Args({64, 1, 28, 8})->Args({64, 8, 14, 8})->Args({64, 16, 14, 16});
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK_CAPTURE(BM_Gemm, ref, kRef)->Args({256, 784, 256})->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Gemm, eigen, kEigen)->Apply(gemm_shapes);
BENCHMARK_CAPTURE(BM_Gemm, avx2, kAvx2)->Apply(gemm_shapes);
BENCHMARK_CAPTURE(BM_Gemm, avx512, kAvx512)->Apply(gemm_shapes);
BENCHMARK_CAPTURE(BM_Conv, ref, kRef)->Args({64, 8, 14, 8})->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Conv, avx2, kAvx2)->Apply(conv_shapes);
BENCHMARK_CAPTURE(BM_Conv, avx512, kAvx512)->Apply(conv_shapes);

BENCHMARK_MAIN();
