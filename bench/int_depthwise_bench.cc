// bench-deps: kernels_fixed quant core
//
// The depthwise int conv path of kernels/fixed/conv2d.cc per layer: the depthwise convs of
// EfficientNet-B0 and MobileNetV2 at 224 (channel multiplier 1), int8 s8.4 activations, int8
// s8.6 weights, s16.8 bias, at batch 16 (BATCH), with the store the int lowering gives them
// (EfficientNet: a float BatchNorm + SiLU, float out for the SE block; MobileNetV2: BatchNorm +
// ReLU6 then the next node's input quantizer, post_quantize to s8.4) and the plain requantizing
// store. Prints the median ms per call over ROUNDS (after a warm-up) and the process CPU time
// per call, and checks the requantizing store's output against the exact reference
// (kernels/fixed/ref) on CHECK images.
//
// For an A/B, build this file against both trees and run the two binaries alternately.
//
//   build/bin/int_depthwise_bench [ROUNDS=7] [THREADS=2] [LAYER-NAME-SUBSTRING] [BATCH=16]
//   [CHECK=2]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/rng.h"
#include "core/thread_pool.h"
#include "int_bench_util.h"
#include "kernels/fixed/conv2d.h"

namespace qf = qsearch::kernels::fixed;
using qsearch::Rng;

namespace {

struct Layer {
  const char* name;
  int64_t c, hw, k, stride;
  bool silu;  // EfficientNet's store (BN + SiLU, float out), else MobileNetV2's (BN + ReLU6 + q)
};

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const char* only = argc > 3 ? argv[3] : "";
  const int64_t batch = argc > 4 ? std::atoll(argv[4]) : 16;
  const int64_t check = std::min<int64_t>(batch, argc > 5 ? std::atoll(argv[5]) : 2);
  qsearch::set_num_threads(threads);
  const Layer layers[] = {{"effnet f1.0 3x3/1 32 112", 32, 112, 3, 1, true},
                          {"effnet f2.0 3x3/2 96 112", 96, 112, 3, 2, true},
                          {"effnet f2.1 3x3/1 144 56", 144, 56, 3, 1, true},
                          {"effnet f3.0 5x5/2 144 56", 144, 56, 5, 2, true},
                          {"effnet f3.1 5x5/1 240 28", 240, 28, 5, 1, true},
                          {"effnet f4.0 3x3/2 240 28", 240, 28, 3, 2, true},
                          {"effnet f4.1 3x3/1 480 14", 480, 14, 3, 1, true},
                          {"effnet f5.0 5x5/1 480 14", 480, 14, 5, 1, true},
                          {"effnet f5.1 5x5/1 672 14", 672, 14, 5, 1, true},
                          {"effnet f6.0 5x5/2 672 14", 672, 14, 5, 2, true},
                          {"effnet f6.1 5x5/1 1152 7", 1152, 7, 5, 1, true},
                          {"effnet f7.0 3x3/1 1152 7", 1152, 7, 3, 1, true},
                          {"mnv2 f1 3x3/1 32 112", 32, 112, 3, 1, false},
                          {"mnv2 f2 3x3/2 96 112", 96, 112, 3, 2, false},
                          {"mnv2 f3 3x3/1 144 56", 144, 56, 3, 1, false},
                          {"mnv2 f4 3x3/2 144 56", 144, 56, 3, 2, false},
                          {"mnv2 f5 3x3/1 192 28", 192, 28, 3, 1, false},
                          {"mnv2 f7 3x3/2 192 28", 192, 28, 3, 2, false},
                          {"mnv2 f8 3x3/1 384 14", 384, 14, 3, 1, false},
                          {"mnv2 f12 3x3/1 576 14", 576, 14, 3, 1, false},
                          {"mnv2 f14 3x3/2 576 14", 576, 14, 3, 2, false},
                          {"mnv2 f15 3x3/1 960 7", 960, 7, 3, 1, false}};
  Rng rng(1);
  std::printf("| layer | batch | store | ms | CPU ms | exact |\n|---|---:|---|---:|---:|---|\n");
  double total = 0, total_cpu = 0;
  for (const Layer& l : layers) {
    if (std::strstr(l.name, only) == nullptr) continue;
    qf::Conv2dGeometry g;
    g.in_channels = l.c;
    g.in_h = g.in_w = l.hw;
    g.out_channels = l.c;
    g.groups = l.c;
    g.kernel_h = g.kernel_w = l.k;
    g.stride_h = g.stride_w = l.stride;
    g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = l.k / 2;
    const qsearch::bench::RandomConv c = qsearch::bench::random_conv(g, batch, rng);
    for (int kind = 0; kind < 2; ++kind) {
      qf::GemmParams p = qsearch::bench::conv_params(c, kind == 1);
      if (kind == 0) {
        if (l.silu) {
          p.post_silu = true;
        } else {
          p.post_lo = 0;
          p.post_hi = 6;
          p.post_quantize = true;
          p.post_format = {8, 4, true};
        }
      }
      const qsearch::bench::ConvTiming r = qsearch::bench::time_conv(c, p, rounds, check);
      const qsearch::bench::Timing tm = r.t;
      const bool same = r.same;
      std::printf("| %s | %lld | %s | %.3f | %.3f | %s |\n", l.name, static_cast<long long>(batch),
                  kind == 0 ? (l.silu ? "bn+silu" : "bn+relu6+q") : "requant", tm.ms, tm.cpu_ms,
                  kind == 0 ? "-"
                  : same    ? "yes"
                            : "NO");
      if (kind == 0) {
        total += tm.ms;
        total_cpu += tm.cpu_ms;
      }
      if (!same) {
        std::printf("MISMATCH against the reference\n");
        return 1;
      }
    }
  }
  std::printf("total (lowering's store) ms: %.3f  CPU ms: %.3f\n", total, total_cpu);
  return 0;
}
