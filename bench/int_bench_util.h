// The harness the integer kernel benches share (int_direct_bench, int_winograd_bench,
// int_depthwise_bench): random codes, process CPU time, medians, one timed call of a kernel, and
// a random conv layer timed and checked against the exact reference.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/fixed/conv2d.h"
#include "kernels/fixed/ref/conv2d_ref.h"
#include "quant/quantize.h"

namespace qsearch::bench {

// n codes uniform in [lo, hi], stored as dtype t.
inline Tensor codes(DType t, int64_t n, int64_t lo, int64_t hi, Rng& rng) {
  Tensor out({n}, t);
  for (int64_t i = 0; i < n; ++i) {
    quant::store_code(out.raw(), t, i, lo + static_cast<int64_t>(rng.uniform_int(hi - lo + 1)));
  }
  return out;
}

// The process CPU time in ms (all threads).
inline double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Wall and process CPU ms per call of f(), over reps calls.
struct Timing {
  double ms = 0, cpu_ms = 0;
};
template <class F>
Timing time_calls(int reps, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_ms();
  for (int k = 0; k < reps; ++k) f();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return Timing{ms / reps, (cpu_ms() - c0) / reps};
}

// One warm-up call of f(), then `rounds` timed calls: the median wall and CPU ms per call.
template <class F>
Timing median_timing(int rounds, F&& f) {
  f();
  std::vector<double> t, c;
  for (int r = 0; r < rounds; ++r) {
    const Timing tm = time_calls(1, f);
    t.push_back(tm.ms);
    c.push_back(tm.cpu_ms);
  }
  return Timing{median(t), median(c)};
}

// A conv layer of random codes as the int lowering packs it: int8 s8.4 inputs of `batch` images,
// int8 s8.6 weights, s16.8 bias, and a per-channel BatchNorm scale / shift for the fused float
// store (GemmParams::post_scale / post_shift).
struct RandomConv {
  kernels::fixed::Conv2dGeometry g;
  int64_t batch = 0;
  Tensor x, w, b;
  std::vector<float> scale, shift;
  kernels::fixed::Conv2dWeights cw;
  kernels::fixed::PackedConv2d packed;
};
inline RandomConv random_conv(const kernels::fixed::Conv2dGeometry& g, int64_t batch, Rng& rng) {
  RandomConv c;
  c.g = g;
  c.batch = batch;
  const int64_t oc = g.out_channels;
  c.x = codes(DType::kInt8, batch * g.in_channels * g.in_h * g.in_w, -128, 127, rng);
  c.w = codes(DType::kInt8, oc * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w, -128, 127,
              rng);
  c.b = codes(DType::kInt32, oc, -32768, 32767, rng);
  c.scale.resize(static_cast<size_t>(oc));
  c.shift.resize(static_cast<size_t>(oc));
  for (int64_t o = 0; o < oc; ++o) {
    c.scale[static_cast<size_t>(o)] = 0.001f * static_cast<float>(1 + o % 7);
    c.shift[static_cast<size_t>(o)] = 0.25f * static_cast<float>(o % 5) - 0.5f;
  }
  c.cw.w = c.w.raw();
  c.cw.w_format = {8, 6, true};
  c.cw.bias = c.b.raw();
  c.cw.bias_format = {16, 8, true};
  c.cw.a_format = {8, 4, true};
  c.cw.bit_pack = true;  // as the int lowering packs
  c.cw.winograd_batch = batch;
  c.packed = kernels::fixed::pack_conv2d(g, c.cw);
  return c;
}

// GemmParams for c's accumulator: a float store of the BatchNorm (post_scale / post_shift; the
// caller adds the activation and quantizer), or, requantize, the plain store of s8.4 codes.
inline kernels::fixed::GemmParams conv_params(const RandomConv& c, bool requantize) {
  kernels::fixed::GemmParams p;
  p.acc = kernels::fixed::accumulator_bound(c.packed).acc();
  if (requantize) {
    p.output = kernels::fixed::GemmOutput::kRequantize;
    p.out_format = {8, 4, true};
  } else {
    p.output = kernels::fixed::GemmOutput::kFloat;
    p.post_scale = c.scale.data();
    p.post_shift = c.shift.data();
  }
  return p;
}

// Median ms per conv2d call of c with p over `rounds` (after a warm-up), and whether its first
// `check` images equal the exact reference conv (kernels/fixed/ref), which has no fused affine or
// quantizer: checked only for a requantizing p (else true).
struct ConvTiming {
  Timing t;
  bool same = true;
};
inline ConvTiming time_conv(const RandomConv& c, const kernels::fixed::GemmParams& p, int rounds,
                            int64_t check) {
  namespace qf = kernels::fixed;
  const int64_t per_image = c.g.out_channels * c.g.out_h() * c.g.out_w();
  Tensor y({c.batch * per_image}, qf::gemm_output_dtype(p));
  ConvTiming r;
  r.t = median_timing(rounds, [&] { qf::conv2d(c.x.raw(), c.batch, c.packed, p, y.raw()); });
  if (p.output == qf::GemmOutput::kRequantize) {
    Tensor ref({check * per_image}, qf::gemm_output_dtype(p));
    qf::ref::conv2d(c.x.raw(), check, c.g, c.cw, p, ref.raw());
    r.same = std::memcmp(y.raw(), ref.raw(), ref.nbytes()) == 0;
  }
  return r;
}

}  // namespace qsearch::bench
