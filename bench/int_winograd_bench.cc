// bench-deps: kernels_fixed quant core
//
// The exact integer Winograd F(2x2, 3x3) (kernels/fixed/winograd.h) against the direct
// pixel-major int conv, per layer: ResNet-18's stride-1 3x3 convs at 3x224x224 and 3x32x32
// inputs (int8 s8.4 activations, int8 s8.6 weights, s16.8 bias, float output as before a
// BatchNorm, and int8 requantized output), at batches 1 and 16 (and 32, 64 on maps of 8x8 or less),
// in the same process, interleaved A/B per round so that the machine's load hits both alike.
// Prints, per layer and batch, the median ms per call of each path (Winograd forced where exact)
// and direct / winograd (> 1: Winograd is faster), and checks that both give the same bits. Also
// the ratio of process CPU time (less sensitive to other processes taking the cores, as long as the
// thread pool does not spin), the path kAuto takes at that batch and Winograd's median CPU ms per
// call (an A/B of two builds on a loaded machine: with THREADS=1 the least noisy figure). THREADS=1
// runs the kernels inline, as a batch-parallel evaluation runs each batch.
//
// TILES=1: Winograd F(2x2) (the "direct" columns) against F(4x4) (the "winograd" columns)
// instead, with weights in [-32, 31] (full-range int8 weights leave F(4x4)'s |S| <= 2^25 - 1
// on the wide layers; torchvision's ResNet-18 at s8.6 has |codes| mostly below 8).
//
//   [TILES=1] build/bin/int_winograd_bench [ROUNDS=7] [THREADS=2] [LAYER-NAME-SUBSTRING]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "int_bench_util.h"
#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/winograd.h"

namespace qf = qsearch::kernels::fixed;
using qsearch::DType;
using qsearch::Rng;
using qsearch::Tensor;
using qsearch::bench::codes;
using qsearch::bench::median;

namespace {

struct Layer {
  const char* name;
  int64_t c, hw, oc;
};

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  qsearch::set_num_threads(threads);
  const Layer layers[] = {{"224 layer1 56x56x64", 64, 56, 64},
                          {"224 layer2 28x28x128", 128, 28, 128},
                          {"224 layer3 14x14x256", 256, 14, 256},
                          {"224 layer4 7x7x512", 512, 7, 512},
                          {"32 layer1 8x8x64", 64, 8, 64},
                          {"32 layer2 4x4x128", 128, 4, 128},
                          {"32 layer3 2x2x256", 256, 2, 256},
                          // SqueezeNet 1.1's expand 3x3 convs at 224 (few input channels).
                          {"squeezenet fire2 55x55 16->64", 16, 55, 64},
                          {"squeezenet fire4 27x27 32->128", 32, 27, 128},
                          {"squeezenet fire6 13x13 48->192", 48, 13, 192},
                          {"squeezenet fire8 13x13 64->256", 64, 13, 256}};
  const char* only = argc > 3 ? argv[3] : "";
  const bool tiles = std::getenv("TILES") != nullptr && std::atoi(std::getenv("TILES")) == 1;
  Rng rng(1);
  std::printf(
      "| layer | batch | output | direct ms | winograd ms | direct / winograd | same, CPU time "
      "| auto | winograd CPU ms |\n");
  std::printf("|---|---:|---|---:|---:|---:|---:|---|---:|\n");
  for (const Layer& l : layers) {
    if (std::strstr(l.name, only) == nullptr) continue;
    for (int64_t batch : {1, 16, 32, 64}) {
      if (batch > 16 && l.hw > 8) continue;  // batches 32 and 64 on maps of 8x8 or less
      qf::Conv2dGeometry g;
      g.in_channels = l.c;
      g.in_h = g.in_w = l.hw;
      g.out_channels = l.oc;
      g.kernel_h = g.kernel_w = 3;
      g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = 1;
      const Tensor x = codes(DType::kInt8, batch * l.c * l.hw * l.hw, -128, 127, rng);
      const Tensor w =
          codes(DType::kInt8, l.oc * l.c * 9, tiles ? -32 : -128, tiles ? 31 : 127, rng);
      const Tensor b = codes(DType::kInt32, l.oc, -32768, 32767, rng);
      qf::Conv2dWeights cw;
      cw.w = w.raw();
      cw.w_format = {8, 6, true};
      cw.bias = b.raw();
      cw.bias_format = {16, 8, true};
      cw.a_format = {8, 4, true};
      cw.bit_pack = true;  // as the int lowering packs
      // kAuto's choice at this batch (the "auto" column), and Winograd forced wherever exact.
      const qf::PackedConv2d autop = qf::pack_conv2d(g, cw);
      const bool auto_wino = autop.winograd() && batch >= autop.winograd()->min_batch;
      cw.winograd = qf::Conv2dWeights::Winograd::kAlways;
      cw.winograd_tile = tiles ? 4 : 0;
      const qf::PackedConv2d wino = qf::pack_conv2d(g, cw);
      cw.winograd =
          tiles ? qf::Conv2dWeights::Winograd::kAlways : qf::Conv2dWeights::Winograd::kOff;
      cw.winograd_tile = 2;
      const qf::PackedConv2d direct = qf::pack_conv2d(g, cw);
      for (int kind = 0; kind < 2; ++kind) {
        qf::GemmParams p;
        p.acc = qf::accumulator_bound(direct).acc();
        p.output = kind == 0 ? qf::GemmOutput::kFloat : qf::GemmOutput::kRequantize;
        p.out_format = {8, 4, true};
        const int64_t n = batch * l.oc * l.hw * l.hw;
        Tensor y0({n}, qf::gemm_output_dtype(p)), y1({n}, qf::gemm_output_dtype(p));
        std::vector<double> td, tw, cd, cw2;
        const int reps = static_cast<int>(std::max<int64_t>(1, 64 / batch / (l.hw >= 28 ? 4 : 1)));
        for (int r = 0; r < rounds + 1; ++r) {
          for (int which = 0; which < 2; ++which) {
            const qf::PackedConv2d& pc = which == 0 ? direct : wino;
            void* y = which == 0 ? y0.raw() : y1.raw();
            const qsearch::bench::Timing tm =
                qsearch::bench::time_calls(reps, [&] { qf::conv2d(x.raw(), batch, pc, p, y); });
            if (r > 0) {  // round 0 warms up
              (which == 0 ? td : tw).push_back(tm.ms);
              (which == 0 ? cd : cw2).push_back(tm.cpu_ms);
            }
          }
        }
        const bool same = std::memcmp(y0.raw(), y1.raw(), y0.nbytes()) == 0;
        std::printf("| %s | %lld | %s | %.3f | %.3f | %.2f | %.2f%s | %s | %.3f |\n", l.name,
                    static_cast<long long>(batch), kind == 0 ? "float" : "s8.4", median(td),
                    median(tw), median(td) / median(tw), median(cd) / median(cw2),
                    wino.winograd() ? "" : " (direct both)", auto_wino ? "winograd" : "direct",
                    median(cw2));
        if (!same) {
          std::printf("MISMATCH: Winograd and direct outputs differ\n");
          return 1;
        }
      }
    }
  }
  return 0;
}
