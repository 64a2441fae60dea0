// bench-deps: kernels kernels_fixed quant core
//
// The wide MLP's linear layers (784-4096-4096-10) as bare GEMMs: float (kernels/gemm.h) and int
// (kernels/fixed/gemm.h, 8-bit codes as configs/mnist_mlp_int8.toml), at batch M rows, 1 and 2
// threads, median of REPS timed calls of the three layers after a warm-up; prints GFLOP/s and
// the weight bandwidth (bytes of packed weights streamed per second), and the process CPU time
// per call (rows per CPU-second: the work's cost on a loaded machine).
//
//   build/bin/mlp_gemm_bench [M...]        # default: 1 16 64; env REPS (20), THREADS ("1 2")
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "kernels/fixed/gemm.h"
#include "kernels/gemm.h"

namespace k = qsearch::kernels;
namespace kf = qsearch::kernels::fixed;

namespace {

struct Layer {
  int64_t k, n;
};
constexpr Layer kLayers[] = {{784, 4096}, {4096, 4096}, {4096, 10}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Median wall seconds per call; *cpu gets the median process CPU seconds per call (all threads:
// on a loaded machine the work's cost, where wall time mostly measures the other processes).
template <class F>
double time_s(int reps, F&& f, double* cpu) {
  f();
  std::vector<double> t, c;
  for (int r = 0; r < reps; ++r) {
    const double c0 = cpu_now();
    const auto s = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
    c.push_back(cpu_now() - c0);
  }
  *cpu = median(c);
  return median(t);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> ms;
  for (int i = 1; i < argc; ++i) ms.push_back(std::atoll(argv[i]));
  if (ms.empty()) ms = {1, 16, 64};
  const int reps = std::getenv("REPS") ? std::atoi(std::getenv("REPS")) : 20;
  std::vector<int> threads = {1, 2};
  if (const char* t = std::getenv("THREADS")) threads = {std::atoi(t)};
  qsearch::Rng rng(1);
  std::vector<k::PackedB> fw;
  std::vector<kf::PackedWeights> iw;
  std::vector<std::vector<float>> bias;
  double flops_per_row = 0, fbytes = 0, ibytes = 0;
  for (const Layer& l : kLayers) {
    std::vector<float> w(l.k * l.n);
    std::vector<int8_t> wc(l.k * l.n);
    for (auto& x : w) x = static_cast<float>(rng.uniform(-0.05, 0.05));
    for (auto& x : wc) x = static_cast<int8_t>(rng.uniform(-60, 60));
    bias.emplace_back(l.n, 0.01f);
    fw.push_back(k::pack_b(w.data(), l.k, l.n, /*trans=*/true));
    kf::GemmWeights s;
    s.b = wc.data();
    s.b_dtype = qsearch::DType::kInt8;
    s.k = l.k;
    s.n = l.n;
    s.stride_k = 1;
    s.stride_n = l.k;
    s.b_format = {8, 7, true};
    s.a_format = {8, 4, true};
    s.a_dtype = qsearch::DType::kInt8;
    iw.push_back(kf::pack_weights(s));
    flops_per_row += 2.0 * l.k * l.n;
    fbytes += static_cast<double>(fw.back().data.nbytes());
    ibytes += static_cast<double>(iw.back().packed_bytes());
  }
  for (int64_t m : ms) {
    std::vector<float> x(m * 4096), h1(m * 4096), h2(m * 4096), out(m * 16);
    std::vector<int8_t> xc(m * 4096), c1(m * 4096), c2(m * 4096);
    for (auto& v : x) v = static_cast<float>(rng.uniform(0, 1));
    for (auto& v : xc) v = static_cast<int8_t>(rng.uniform(0, 100));
    for (int t : threads) {
      qsearch::set_num_threads(t);
      double cf = 0, ci = 0;
      const double tf = time_s(
          reps,
          [&] {
            k::Epilogue relu{.bias = bias[0].data(), .clamp_min = 0.0f};
            k::gemm_f32_packed(m, x.data(), 784, fw[0], h1.data(), 4096, relu);
            relu.bias = bias[1].data();
            k::gemm_f32_packed(m, h1.data(), 4096, fw[1], h2.data(), 4096, relu);
            k::gemm_f32_packed(m, h2.data(), 4096, fw[2], out.data(), 10, {.bias = bias[2].data()});
          },
          &cf);
      kf::GemmParams p{.acc = kf::AccType::kInt32,
                       .output = kf::GemmOutput::kRequantize,
                       .out_format = {8, 4, true},
                       .relu = true};
      const double ti = time_s(
          reps,
          [&] {
            kf::gemm(xc.data(), m, 784, iw[0], p, c1.data());
            kf::gemm(c1.data(), m, 4096, iw[1], p, c2.data());
            kf::GemmParams pf{.acc = kf::AccType::kInt32, .output = kf::GemmOutput::kFloat};
            kf::gemm(c2.data(), m, 4096, iw[2], pf, out.data());
          },
          &ci);
      // Batch-parallel, as evaluate() runs small models: each thread its own M rows through
      // the three layers with the kernels inline (t times the rows per call).
      std::vector<std::vector<float>> bx(t, x), bh1(t, h1), bh2(t, h2), bout(t, out);
      double cb = 0;
      const double tb = time_s(
          reps,
          [&] {
            qsearch::parallel_for(0, t, 1, [&](int64_t i0, int64_t i1) {
              for (int64_t i = i0; i < i1; ++i) {
                k::Epilogue relu{.bias = bias[0].data(), .clamp_min = 0.0f};
                k::gemm_f32_packed(m, bx[i].data(), 784, fw[0], bh1[i].data(), 4096, relu);
                relu.bias = bias[1].data();
                k::gemm_f32_packed(m, bh1[i].data(), 4096, fw[1], bh2[i].data(), 4096, relu);
                k::gemm_f32_packed(m, bh2[i].data(), 4096, fw[2], bout[i].data(), 10,
                                   {.bias = bias[2].data()});
              }
            });
          },
          &cb);
      std::printf("M %3lld threads %d: float batch-parallel rows/s %6.0f, per cpu-s %6.0f\n",
                  static_cast<long long>(m), t, t * m / tb, t * m / cb);
      std::printf(
          "M %3lld threads %d: float %7.3f ms (cpu %7.3f) %6.1f GFLOP/s %5.1f GB/s | int %7.3f ms "
          "(cpu %7.3f) %6.1f GOP/s | rows/s %6.0f / %6.0f, per cpu-s %6.0f / %6.0f\n",
          static_cast<long long>(m), t, tf * 1e3, cf * 1e3, flops_per_row * m / tf / 1e9,
          fbytes / tf / 1e9, ti * 1e3, ci * 1e3, flops_per_row * m / ti / 1e9, m / tf, m / ti,
          m / cf, m / ci);
    }
  }
  return 0;
}
