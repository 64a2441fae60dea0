// bench-deps: kernels_fixed quant core
//
// The gathered direct (pixel-major) int conv path of kernels/fixed/conv2d.cc per layer: the convs
// of ResNet-18 and MobileNetV2 at 224 that neither Winograd nor the depthwise path takes (the
// 7x7 stride-2 stem, the stride-2 3x3 convs, the stride-2 1x1 downsamples, MobileNetV2's 3x3
// stride-2 stem), int8 s8.4 activations, int8 s8.6 weights, s16.8 bias, at batch 16 (BATCH), with
// the store the int lowering gives them (a float BatchNorm + ReLU fused, then the next node's
// input quantizer: GemmParams::post_quantize to s8.4) and the plain requantizing store. Prints the
// median ms per call over ROUNDS (after a warm-up) and the process CPU time per call, and checks
// the requantizing store's output against the exact reference (kernels/fixed/ref) on CHECK
// images.
//
// For an A/B, build this file against both trees and run the two binaries alternately.
//
//   build/bin/int_direct_bench [ROUNDS=7] [THREADS=2] [LAYER-NAME-SUBSTRING] [BATCH=16]
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
  int64_t c, hw, oc, k, stride, pad;
};

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const char* only = argc > 3 ? argv[3] : "";
  const int64_t batch = argc > 4 ? std::atoll(argv[4]) : 16;
  const int64_t check = std::min<int64_t>(batch, argc > 5 ? std::atoll(argv[5]) : 2);
  qsearch::set_num_threads(threads);
  const Layer layers[] = {{"resnet18 stem 7x7/2 3->64 224", 3, 224, 64, 7, 2, 3},
                          {"resnet18 layer2 3x3/2 64->128 56", 64, 56, 128, 3, 2, 1},
                          {"resnet18 layer2 ds 1x1/2 64->128 56", 64, 56, 128, 1, 2, 0},
                          {"resnet18 layer3 3x3/2 128->256 28", 128, 28, 256, 3, 2, 1},
                          {"resnet18 layer3 ds 1x1/2 128->256 28", 128, 28, 256, 1, 2, 0},
                          {"resnet18 layer4 3x3/2 256->512 14", 256, 14, 512, 3, 2, 1},
                          {"resnet18 layer4 ds 1x1/2 256->512 14", 256, 14, 512, 1, 2, 0},
                          {"mobilenet_v2 stem 3x3/2 3->32 224", 3, 224, 32, 3, 2, 1}};
  Rng rng(1);
  std::printf("| layer | batch | store | ms | CPU ms | exact |\n|---|---:|---|---:|---:|---|\n");
  double total = 0;
  for (const Layer& l : layers) {
    if (std::strstr(l.name, only) == nullptr) continue;
    qf::Conv2dGeometry g;
    g.in_channels = l.c;
    g.in_h = g.in_w = l.hw;
    g.out_channels = l.oc;
    g.kernel_h = g.kernel_w = l.k;
    g.stride_h = g.stride_w = l.stride;
    g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = l.pad;
    const qsearch::bench::RandomConv c = qsearch::bench::random_conv(g, batch, rng);
    for (int kind = 0; kind < 2; ++kind) {
      qf::GemmParams p = qsearch::bench::conv_params(c, kind == 1);
      if (kind == 0) {
        p.post_lo = 0;
        p.post_quantize = true;
        p.post_format = {8, 4, true};
      }
      const qsearch::bench::ConvTiming r = qsearch::bench::time_conv(c, p, rounds, check);
      const qsearch::bench::Timing tm = r.t;
      const bool same = r.same;
      std::printf("| %s | %lld | %s | %.3f | %.3f | %s |\n", l.name, static_cast<long long>(batch),
                  kind == 0 ? "bn+relu+q" : "requant", tm.ms, tm.cpu_ms,
                  kind == 0 ? "-"
                  : same    ? "yes"
                            : "NO");
      if (kind == 0) total += tm.ms;
      if (!same) {
        std::printf("MISMATCH against the reference\n");
        return 1;
      }
    }
  }
  std::printf("total (bn+relu+q) ms: %.3f\n", total);
  return 0;
}
