// bench-deps: kernels_fixed quant core
//
// The int conv's quantizing store alone (Epilogue::run_t32_runs on one 16-lane tile of kMr = 6
// output channels, as the pixel-major conv calls it): int32 sums -> bias -> float -> the fused
// BatchNorm affine -> ReLU6 / ReLU / SiLU -> int8 codes of the next layer, NCHW (each channel's
// 16 codes contiguous, the channels a plane apart). Also the raw int32 / float stores. Prints the
// median ns per channel column of ROUNDS rounds for each store variant; the runs are one full
// 16-lane run (a 1x1 conv's panel), or the runs of a 3x3 conv's extended panel on a 14-wide map.
//
//   build/bin/int_store_bench [ROUNDS=9] [NAME-SUBSTRING]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/fixed/epilogue.h"
#include "kernels/fixed/gemm.h"

namespace qf = qsearch::kernels::fixed;
using qsearch::DType;

namespace {

struct Variant {
  const char* name;
  qf::GemmOutput output;
  bool post, relu6, silu, quantize;
};

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
  const std::string only = argc > 2 ? argv[2] : "";  // run only the stores whose name has this
  constexpr int kCols = 6, kChannels = 96;
  qsearch::Rng rng(7);
  std::vector<int8_t> wcodes(static_cast<size_t>(32 * kChannels));
  for (auto& v : wcodes) v = static_cast<int8_t>(static_cast<int>(rng.uniform_int(31)) - 15);
  std::vector<int16_t> bias(kChannels);
  for (auto& v : bias) v = static_cast<int16_t>(static_cast<int>(rng.uniform_int(2001)) - 1000);
  qf::GemmWeights spec;
  spec.b = wcodes.data();
  spec.b_dtype = DType::kInt8;
  spec.k = 32;
  spec.n = kChannels;
  spec.stride_k = kChannels;
  spec.stride_n = 1;
  spec.b_format = {8, 6, true};
  spec.bias = bias.data();
  spec.bias_dtype = DType::kInt16;
  spec.bias_format = {16, 8, true};
  spec.a_format = {8, 4, true};
  const qf::PackedWeights w = qf::pack_weights(spec);
  std::vector<float> scale(kChannels), shift(kChannels);
  for (int c = 0; c < kChannels; ++c) {
    scale[static_cast<size_t>(c)] = 0.5f + static_cast<float>(rng.uniform_int(100)) / 64.0f;
    shift[static_cast<size_t>(c)] = static_cast<float>(rng.uniform_int(64)) / 16.0f - 2.0f;
  }
  alignas(64) int32_t tile[kCols * 16 + 16];
  for (auto& v : tile) v = static_cast<int32_t>(rng.uniform_int(1 << 14)) - (1 << 13);
  const int64_t plane = 56 * 56;
  std::vector<int8_t> out(static_cast<size_t>(plane * kChannels * 4));
  const int64_t full[1][3] = {{0, 16, 0}};
  // A 3x3 stride-1 conv on a 14-wide map: extended rows of 16 positions, 14 kept then 2 dropped.
  const int64_t split[2][3] = {{0, 14, 0}, {16 - 2, 2, 14}};
  const Variant variants[] = {
      {"float", qf::GemmOutput::kFloat, false, false, false, false},
      {"bn+relu6 float", qf::GemmOutput::kFloat, true, true, false, false},
      {"bn+relu6 int8", qf::GemmOutput::kFloat, true, true, false, true},
      {"bn+relu int8", qf::GemmOutput::kFloat, true, false, false, true},
      {"bn int8", qf::GemmOutput::kFloat, true, false, false, false},
      {"bn+silu int8", qf::GemmOutput::kFloat, true, false, true, true},
      {"requantize int8", qf::GemmOutput::kRequantize, false, true, false, false},
  };
  std::printf("| store | runs | ns per column |\n|---|---|---|\n");
  for (const Variant& v : variants) {
    if (std::string(v.name).find(only) == std::string::npos) continue;
    qf::GemmParams p;
    p.acc = qf::AccType::kInt32;
    p.output = v.output;
    p.ldc_m = 1;
    p.ldc_n = plane;
    if (v.output == qf::GemmOutput::kRequantize) {
      p.out_format = {8, 4, true};
      p.relu = true;
    }
    if (v.post) {
      p.post_scale = scale.data();
      p.post_shift = shift.data();
      if (v.relu6 || v.silu) p.post_lo = 0.0f;
      if (v.relu6) p.post_hi = 6.0f;
      if (v.silu) p.post_lo = -std::numeric_limits<float>::infinity();
      p.post_silu = v.silu;
    }
    if (v.quantize) {
      p.post_quantize = true;
      p.post_format = {8, 4, true};
    }
    if (v.name == std::string("bn int8")) p.post_quantize = true, p.post_format = {8, 4, true};
    for (int nr : {1, 2}) {
      const int64_t(*runs)[3] = nr == 1 ? full : split;
      std::vector<double> ns;
      const qf::Epilogue e(w, p, 0);
      for (int r = 0; r < rounds; ++r) {
        constexpr int kIters = 20000;
        const auto t0 = std::chrono::steady_clock::now();
        for (int it = 0; it < kIters; ++it) {
          const int64_t b = it % (kChannels / kCols) * kCols;
          // Walk the pixels so that the stores move along the planes as a conv's do.
          e.run_t32_runs(tile, runs, nr, kCols, b, out.data() + (it / 16 % 128) * 16);
        }
        const auto t1 = std::chrono::steady_clock::now();
        ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kIters / kCols);
      }
      std::sort(ns.begin(), ns.end());
      std::printf("| %s | %d | %.2f |\n", v.name, nr, ns[ns.size() / 2]);
    }
  }
  return 0;
}
