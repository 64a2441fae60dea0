// bench-deps: kernels core
//
// Float convolution layers of the issue-14 CNNs (torchvision ResNet-18 and MobileNetV2 at 3x32x32
// and 3x224x224), one layer at a time on kernels::conv2d_f32_packed: time per call, GFLOP/s
// (2 flops per multiply-accumulate of the dense convolution) and the share of the model's conv
// time. Where a conv runs inside `qsearch eval` (batch-parallel, kernels inline) is what
// `--threads 1` shows; `--threads 2` runs the kernel's own parallel_for.
//
//   build/bin/float_conv_bench [--model resnet18|mobilenet_v2|all] [--size 32|224|all]
//       [--batch 64] [--threads 1] [--reps 5]
//       [--algos auto,image,blocked,direct,depthwise,winograd,engine]
//
// Prints one line per layer: per algorithm (kernels::ConvAlgo, or "winograd":
// kernels::conv2d_winograd_f32 where it applies, else the auto conv; "engine": what the float
// engine runs, Winograd where kernels::winograd_preferred says so, else the auto conv; the calls
// of the algorithms are interleaved) the median of `reps` timed calls after a warm-up, in ms and
// GFLOP/s, and a total.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/stopwatch.h"
#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/winograd.h"

namespace k = qsearch::kernels;

namespace {

struct Layer {
  const char* name;
  int64_t c, h, m, kernel, stride, groups;  // square input h x h, pad = kernel / 2
};

int64_t out_size(int64_t h, int64_t kernel, int64_t stride) {
  return (h + 2 * (kernel / 2) - kernel) / stride + 1;
}

// torchvision resnet18: stem 7x7/2 + maxpool 3x3/2, then 4 stages of 2 BasicBlocks.
std::vector<Layer> resnet18(int64_t size) {
  std::vector<Layer> l;
  l.push_back({"conv1 7x7/2", 3, size, 64, 7, 2, 1});
  int64_t h = out_size(out_size(size, 7, 2), 3, 2);
  int64_t c = 64;
  const int64_t widths[4] = {64, 128, 256, 512};
  const char* names[4] = {"layer1", "layer2", "layer3", "layer4"};
  for (int s = 0; s < 4; ++s) {
    const int64_t m = widths[s], stride = s == 0 ? 1 : 2;
    const int64_t ho = out_size(h, 3, stride);
    l.push_back({names[s], c, h, m, 3, stride, 1});  // first conv of the stage
    if (stride != 1 || c != m) l.push_back({names[s], c, h, m, 1, stride, 1});  // downsample
    for (int r = 0; r < 3; ++r) l.push_back({names[s], m, ho, m, 3, 1, 1});
    h = ho;
    c = m;
  }
  return l;
}

// torchvision mobilenet_v2: stem 3x3/2 to 32, inverted residuals (t, c, n, s), 1x1 to 1280.
std::vector<Layer> mobilenet_v2(int64_t size) {
  std::vector<Layer> l;
  l.push_back({"stem 3x3/2", 3, size, 32, 3, 2, 1});
  int64_t h = out_size(size, 3, 2), c = 32;
  const int64_t cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  for (const auto& b : cfg) {
    for (int64_t r = 0; r < b[2]; ++r) {
      const int64_t stride = r == 0 ? b[3] : 1, hidden = c * b[0];
      if (b[0] != 1) l.push_back({"expand 1x1", c, h, hidden, 1, 1, 1});
      l.push_back({"depthwise 3x3", hidden, h, hidden, 3, stride, hidden});
      h = out_size(h, 3, stride);
      l.push_back({"project 1x1", hidden, h, b[1], 1, 1, 1});
      c = b[1];
    }
  }
  l.push_back({"head 1x1", c, h, 1280, 1, 1, 1});
  return l;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Not a ConvAlgo: the Winograd kernel (kernels/winograd.h).
constexpr auto kWinograd = static_cast<k::ConvAlgo>(255);
constexpr auto kEngine = static_cast<k::ConvAlgo>(254);

const char* arg(int argc, char** argv, const char* flag, const char* def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0) return argv[i + 1];
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model = arg(argc, argv, "--model", "all");
  const std::string size = arg(argc, argv, "--size", "all");
  const int64_t batch = std::atoll(arg(argc, argv, "--batch", "64"));
  const int threads = std::atoi(arg(argc, argv, "--threads", "1"));
  const int reps = std::max(1, std::atoi(arg(argc, argv, "--reps", "5")));
  std::vector<std::pair<std::string, k::ConvAlgo>> algos;
  {
    const std::string list = std::string(arg(argc, argv, "--algos", "auto")) + ",";
    for (size_t b = 0, e; (e = list.find(',', b)) != std::string::npos; b = e + 1) {
      const std::string a = list.substr(b, e - b);
      if (a == "auto") algos.emplace_back(a, k::ConvAlgo::kAuto);
      if (a == "direct") algos.emplace_back(a, k::ConvAlgo::kDirect);
      if (a == "image") algos.emplace_back(a, k::ConvAlgo::kImagePanels);
      if (a == "blocked") algos.emplace_back(a, k::ConvAlgo::kBatchBlocked);
      if (a == "depthwise") algos.emplace_back(a, k::ConvAlgo::kDepthwise);
      if (a == "winograd") algos.emplace_back(a, kWinograd);
      if (a == "engine") algos.emplace_back(a, kEngine);
    }
  }
  qsearch::set_num_threads(threads);
  // One thread: the calling thread's CPU time (the machine is shared; time spent descheduled
  // is not the kernel's); more threads: wall time.
  const bool cpu = threads == 1;
  qsearch::Rng rng(1);
  for (const char* mname : {"resnet18", "mobilenet_v2"}) {
    if (model != "all" && model != mname) continue;
    for (int64_t sz : {32, 224}) {
      if (size != "all" && std::atoll(size.c_str()) != sz) continue;
      const auto layers = std::string(mname) == "resnet18" ? resnet18(sz) : mobilenet_v2(sz);
      std::printf("# %s %lldx%lld batch %lld threads %d isa %s\n", mname,
                  static_cast<long long>(sz), static_cast<long long>(sz),
                  static_cast<long long>(batch), threads, k::isa_name(k::best_isa()));
      std::vector<double> total(algos.size(), 0.0);
      double total_flops = 0;
      for (const Layer& L : layers) {
        k::Conv2dParams p;
        p.batch = batch;
        p.in_channels = L.c;
        p.in_h = p.in_w = L.h;
        p.out_channels = L.m;
        p.out_h = p.out_w = out_size(L.h, L.kernel, L.stride);
        p.kernel_h = p.kernel_w = L.kernel;
        p.stride_h = p.stride_w = L.stride;
        p.pad_top = p.pad_left = L.kernel / 2;
        p.groups = L.groups;
        const int64_t cg = L.c / L.groups;
        std::vector<float> x(batch * L.c * L.h * L.h), w(L.m * cg * L.kernel * L.kernel), bias(L.m),
            y(batch * L.m * p.out_h * p.out_w);
        for (float& v : x) v = static_cast<float>(rng.normal());
        for (float& v : w) v = static_cast<float>(rng.normal() * 0.1);
        for (float& v : bias) v = static_cast<float>(rng.normal());
        const k::PackedConvWeights pw =
            k::pack_conv_weights(w.data(), L.m, cg, L.kernel, L.kernel, L.groups);
        const bool wino = k::winograd_applies(p);
        k::Epilogue ep;
        ep.bias = bias.data();
        ep.clamp_min = 0.0f;
        std::vector<std::vector<double>> t(algos.size());
        for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
          for (size_t a = 0; a < algos.size(); ++a) {
            const double t0 = cpu ? thread_cpu_seconds() : 0.0;
            qsearch::Stopwatch sw;
            const bool use_wino = (algos[a].second == kWinograd && wino) ||
                                  (algos[a].second == kEngine && k::winograd_preferred(p));
            if (use_wino) {
              k::conv2d_winograd_f32(p, x.data(), pw, y.data(), ep);
            } else {
              k::conv2d_f32_packed(p, x.data(), pw, y.data(), ep,
                                   algos[a].second == kWinograd || algos[a].second == kEngine
                                       ? k::ConvAlgo::kAuto
                                       : algos[a].second);
            }
            if (r >= 0) t[a].push_back(cpu ? thread_cpu_seconds() - t0 : sw.seconds());
          }
        }
        const double flops =
            2.0 * batch * L.m * p.out_h * p.out_w * static_cast<double>(cg * L.kernel * L.kernel);
        total_flops += flops;
        std::printf("%-14s C %4lld H %3lld -> M %4lld k%lld s%lld g%-4lld", L.name,
                    static_cast<long long>(L.c), static_cast<long long>(L.h),
                    static_cast<long long>(L.m), static_cast<long long>(L.kernel),
                    static_cast<long long>(L.stride), static_cast<long long>(L.groups));
        for (size_t a = 0; a < algos.size(); ++a) {
          std::sort(t[a].begin(), t[a].end());
          const double sec = t[a][t[a].size() / 2];
          total[a] += sec;
          std::printf("  %s %8.3f ms %6.2f GF/s", algos[a].first.c_str(), sec * 1e3,
                      flops / sec * 1e-9);
        }
        std::printf("\n");
      }
      std::printf("total");
      for (size_t a = 0; a < algos.size(); ++a) {
        std::printf("  %s %.3f ms (%.1f samples/s, %.2f GFLOP/s)", algos[a].first.c_str(),
                    total[a] * 1e3, batch / total[a], total_flops / total[a] * 1e-9);
      }
      std::printf("\n\n");
    }
  }
  return 0;
}
