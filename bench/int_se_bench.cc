// bench-deps: kernels_fixed quant core
//
// EfficientNet-B0's squeeze-excitation convs in the int plan (kernels/fixed/conv2d.cc): 1x1
// convs on a 1x1 map, fc1 (E -> S, the fused SiLU and the next conv's quantizer:
// GemmParams::post_silu + post_quantize to s8.4) and fc2 (S -> E, float out), int8 s8.4
// activations, int8 s8.6 weights, s16.8 bias, at batch 64 (BATCH). Prints the median ms per call
// over ROUNDS (after a warm-up) and the process CPU time per call.
//
//   build/bin/int_se_bench [ROUNDS=9] [THREADS=1] [BATCH=64]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "int_bench_util.h"
#include "kernels/fixed/conv2d.h"

namespace qf = qsearch::kernels::fixed;
using qsearch::Rng;

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 64;
  qsearch::set_num_threads(threads);
  // (expanded channels E, squeezed S) of EfficientNet-B0's blocks.
  const int64_t se[][2] = {{32, 8}, {96, 4}, {144, 6}, {240, 10}, {480, 20}, {672, 28}, {1152, 48}};
  Rng rng(1);
  std::printf("| conv | batch | ms | CPU ms |\n|---|---:|---:|---:|\n");
  double total = 0;
  for (const auto& es : se) {
    for (int fc = 1; fc <= 2; ++fc) {
      const int64_t k = fc == 1 ? es[0] : es[1], n = fc == 1 ? es[1] : es[0];
      qf::Conv2dGeometry g;
      g.in_channels = k;
      g.in_h = g.in_w = 1;
      g.out_channels = n;
      g.kernel_h = g.kernel_w = 1;
      const qsearch::bench::RandomConv c = qsearch::bench::random_conv(g, batch, rng);
      // fc1: its SiLU and fc2's quantizer fused (EfficientNet has no BatchNorm there: the affine
      // is the identity, `one` and `zero`); fc2: float out, nothing fused.
      std::vector<float> one(static_cast<size_t>(n), 1.0f), zero(static_cast<size_t>(n), 0.0f);
      qf::GemmParams p = qsearch::bench::conv_params(c, false);
      p.post_scale = p.post_shift = nullptr;
      if (fc == 1) {
        p.post_scale = one.data();
        p.post_shift = zero.data();
        p.post_silu = true;
        p.post_quantize = true;
        p.post_format = {8, 4, true};
      }
      const qsearch::bench::Timing tm = qsearch::bench::time_conv(c, p, rounds, 0).t;
      std::printf("| fc%d %lld -> %lld | %lld | %.4f | %.4f |\n", fc, static_cast<long long>(k),
                  static_cast<long long>(n), static_cast<long long>(batch), tm.ms, tm.cpu_ms);
      total += tm.ms;
    }
  }
  std::printf("total ms: %.3f\n", total);
  return 0;
}
