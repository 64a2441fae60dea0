// bench-deps: kernels_fixed quant core
//
// Integer GEMM throughput (GMAC/s) at the MNIST MLP's shapes, each ISA path this CPU has, against
// the ref/ twin measured in the same run. The float fast GEMM (kernels/gemm.h) is another
// engineer's and can be compared here later; the ref float loop would not be a fair baseline.
//
//   build-quant/bin/int_gemm_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true          (one command line)
//
// Names: IntGemm/<A>x<B>/<isa>/requant/threads:<t>/M/K/N. Every case requantizes to the
// activation format of the next layer (what the `int` engine runs). GMAC/s is per CPU second for
// one thread and per wall-clock second for two.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/fixed/gemm.h"
#include "kernels/fixed/ref/gemm_ref.h"
#include "quant/quantize.h"

namespace qf = qsearch::kernels::fixed;
using qsearch::DType;
using qsearch::Rng;
using qsearch::Tensor;
using qsearch::quant::FixedFormat;

namespace {

struct Shape {
  int64_t m, k, n;
};

struct Operands {
  Tensor a, b, bias;
  qf::GemmWeights spec;
};

Tensor random_codes(DType t, int64_t n, const FixedFormat& f, Rng& rng) {
  Tensor out({n}, t);
  const uint64_t span = static_cast<uint64_t>(f.max_code() - f.min_code()) + 1;
  for (int64_t i = 0; i < n; ++i) {
    qsearch::quant::store_code(out.raw(), t, i,
                               f.min_code() + static_cast<int64_t>(rng.uniform_int(span)));
  }
  return out;
}

// Weights either uniform over the whole code range (the worst case: 16-bit codes then need an int64
// accumulator) or like a trained layer's, N(0, 0.05) in value (int32 suffices).
Operands make(const Shape& s, DType at, DType bt, int width, bool trained_like) {
  Rng rng(7);
  Operands o;
  const FixedFormat af{width, width / 2, true}, bf{width, width / 2, true};
  o.a = random_codes(at, s.m * s.k, af, rng);
  o.b = random_codes(bt, s.k * s.n, bf, rng);  // Linear layout [N, K]
  if (trained_like) {
    const double sigma = 0.05 * std::ldexp(1.0, bf.frac);
    for (int64_t i = 0; i < s.k * s.n; ++i) {
      const double v = std::nearbyint(sigma * rng.normal());
      qsearch::quant::store_code(
          o.b.raw(), bt, i,
          static_cast<int64_t>(std::clamp<double>(v, static_cast<double>(bf.min_code()),
                                                  static_cast<double>(bf.max_code()))));
    }
  }
  o.bias = random_codes(DType::kInt32, s.n, {width, width / 2, true}, rng);
  o.spec.b = o.b.raw();
  o.spec.b_dtype = bt;
  o.spec.k = s.k;
  o.spec.n = s.n;
  o.spec.stride_k = 1;
  o.spec.stride_n = s.k;
  o.spec.b_format = bf;
  o.spec.bias = o.bias.raw();
  o.spec.bias_dtype = DType::kInt32;
  o.spec.bias_format = {width, width / 2, true};
  o.spec.a_format = af;
  o.spec.a_dtype = at;
  return o;
}

qf::GemmParams params(const qf::PackedWeights& pw, bool requantize, int width) {
  qf::GemmParams p;
  const qf::AccumulatorBound bound = qf::accumulator_bound(pw);
  p.acc = bound.acc();
  if (requantize) {
    p.output = qf::GemmOutput::kRequantize;
    p.out_format = {width, width / 2, false};  // the next ReLU's unsigned input
  }
  return p;
}

void set_rate(benchmark::State& state, const Shape& s) {
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(s.m * s.k * s.n) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

void bench_fast(benchmark::State& state, Shape s, DType at, DType bt, int width, bool trained_like,
                qf::Isa isa, bool requantize, int threads) {
  qsearch::set_num_threads(threads);
  const Operands o = make(s, at, bt, width, trained_like);
  const qf::PackedWeights pw = qf::pack_weights(o.spec, isa);
  const qf::GemmParams p = params(pw, requantize, width);
  Tensor c({s.m * s.n}, qf::gemm_output_dtype(p));
  for (auto _ : state) {
    qf::gemm(o.a.raw(), s.m, s.k, pw, p, c.raw());
    benchmark::DoNotOptimize(c.raw());
  }
  state.counters["acc_bits"] = p.acc == qf::AccType::kInt32 ? 32 : 64;
  state.counters["packed_KiB"] = static_cast<double>(pw.packed_bytes()) / 1024.0;
  set_rate(state, s);
}

void bench_ref(benchmark::State& state, Shape s, DType at, DType bt, int width, bool trained_like) {
  const Operands o = make(s, at, bt, width, trained_like);
  const qf::PackedWeights pw = qf::pack_weights(o.spec);
  const qf::GemmParams p = params(pw, true, width);
  Tensor c({s.m * s.n}, qf::gemm_output_dtype(p));
  for (auto _ : state) {
    qf::ref::gemm(o.a.raw(), s.m, s.k, o.spec, p, c.raw());
    benchmark::DoNotOptimize(c.raw());
  }
  set_rate(state, s);
}

std::string dname(DType t) { return std::string(qsearch::dtype_name(t)); }

}  // namespace

int main(int argc, char** argv) {
  // MNIST MLP 784-256-128-10 at batch 256 and the 10k test split.
  const std::vector<Shape> shapes = {{256, 784, 256},   {10000, 784, 256}, {256, 256, 128},
                                     {10000, 256, 128}, {256, 128, 10},    {10000, 128, 10}};
  struct Types {
    DType a, b;
    int width;
    bool trained_like;
  };
  const Types types[] = {{DType::kInt8, DType::kInt8, 8, false},
                         {DType::kInt16, DType::kInt16, 16, false},
                         {DType::kInt16, DType::kInt16, 16, true}};
  for (const Types& t : types) {
    const std::string tn = dname(t.a) + "x" + dname(t.b) + (t.trained_like ? "_trained" : "");
    for (const Shape& s : shapes) {
      const std::string sn =
          std::to_string(s.m) + "/" + std::to_string(s.k) + "/" + std::to_string(s.n);
      for (qf::Isa isa : qf::supported_isas()) {
        for (int threads : {1, 2}) {
          auto* b = benchmark::RegisterBenchmark(
              ("IntGemm/" + tn + "/" + std::string(qf::isa_name(isa)) +
               "/requant/threads:" + std::to_string(threads) + "/" + sn)
                  .c_str(),
              bench_fast, s, t.a, t.b, t.width, t.trained_like, isa, true, threads);
          b->Unit(benchmark::kMicrosecond);
          // One thread: the rate is per CPU second of that thread, which stays honest on a shared
          // machine. Two threads: per wall-clock second.
          if (threads > 1) b->UseRealTime()->MeasureProcessCPUTime();
        }
      }
      // The reference at batch 256 only (its rate does not depend on M).
      if (s.m == 256) {
        benchmark::RegisterBenchmark(("IntGemmRef/" + tn + "/requant/" + sn).c_str(), bench_ref, s,
                                     t.a, t.b, t.width, t.trained_like)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
