#include "kernels/fixed/conv2d.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/fixed/scratch.h"

namespace qsearch::kernels::fixed {

namespace {

// cols[p, (c * KH + u) * KW + v] = x[c, y*sh - pt + u*dh, x*sw - pl + v*dw] (0 outside), with
// pixel p = y * OW + x: the rows are output pixels, matching the [OC, C/G, KH, KW] weights.
template <typename T>
void im2col(const T* x, const Conv2dGeometry& g, int64_t channels, T* cols) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t k = channels * g.kernel_h * g.kernel_w;
  for (int64_t py = 0; py < oh; ++py) {
    for (int64_t px = 0; px < ow; ++px) {
      T* row = cols + (py * ow + px) * k;
      for (int64_t c = 0; c < channels; ++c) {
        const T* plane = x + c * g.in_h * g.in_w;
        for (int64_t u = 0; u < g.kernel_h; ++u) {
          const int64_t iy = py * g.stride_h - g.pad_top + u * g.dilation_h;
          T* out = row + (c * g.kernel_h + u) * g.kernel_w;
          if (iy < 0 || iy >= g.in_h) {
            std::fill(out, out + g.kernel_w, T{0});
            continue;
          }
          for (int64_t v = 0; v < g.kernel_w; ++v) {
            const int64_t ix = px * g.stride_w - g.pad_left + v * g.dilation_w;
            out[v] = (ix < 0 || ix >= g.in_w) ? T{0} : plane[iy * g.in_w + ix];
          }
        }
      }
    }
  }
}

void im2col_any(const void* x, DType t, const Conv2dGeometry& g, int64_t channels, void* cols) {
  switch (t) {
    case DType::kInt8:
      im2col(static_cast<const int8_t*>(x), g, channels, static_cast<int8_t*>(cols));
      break;
    case DType::kUInt8:
      im2col(static_cast<const uint8_t*>(x), g, channels, static_cast<uint8_t*>(cols));
      break;
    case DType::kInt16:
      im2col(static_cast<const int16_t*>(x), g, channels, static_cast<int16_t*>(cols));
      break;
    default:
      im2col(static_cast<const int32_t*>(x), g, channels, static_cast<int32_t*>(cols));
      break;
  }
}

}  // namespace

size_t PackedConv2d::packed_bytes() const {
  size_t total = 0;
  for (const auto& p : groups_) total += p.packed_bytes();
  return total;
}

PackedConv2d pack_conv2d(const Conv2dGeometry& g, const Conv2dWeights& w, Isa isa) {
  if (g.in_channels < 1 || g.in_h < 1 || g.in_w < 1 || g.out_channels < 1 || g.kernel_h < 1 ||
      g.kernel_w < 1 || g.groups < 1 || g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 ||
      g.dilation_w < 1 || g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0) {
    fail(
        "integer Conv2d: invalid geometry (channels {}->{}, input {}x{}, kernel {}x{}, groups {}, "
        "strides {}x{}, dilations {}x{}, pads {},{},{},{})",
        g.in_channels, g.out_channels, g.in_h, g.in_w, g.kernel_h, g.kernel_w, g.groups, g.stride_h,
        g.stride_w, g.dilation_h, g.dilation_w, g.pad_top, g.pad_left, g.pad_bottom, g.pad_right);
  }
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    fail("integer Conv2d: {} input and {} output channels are not divisible by group = {}",
         g.in_channels, g.out_channels, g.groups);
  }
  if (g.out_h() < 1 || g.out_w() < 1) {
    fail("integer Conv2d: the {}x{} kernel (dilations {}x{}) does not fit the padded {}x{} input",
         g.kernel_h, g.kernel_w, g.dilation_h, g.dilation_w, g.in_h + g.pad_top + g.pad_bottom,
         g.in_w + g.pad_left + g.pad_right);
  }
  PackedConv2d out;
  out.geometry_ = g;
  const int64_t cg = g.in_channels / g.groups, ocg = g.out_channels / g.groups;
  const int64_t k = cg * g.kernel_h * g.kernel_w;
  const size_t w_es = dtype_size(w.w_dtype), b_es = dtype_size(w.bias_dtype);
  for (int64_t gi = 0; gi < g.groups; ++gi) {
    GemmWeights s;
    s.b = static_cast<const std::byte*>(w.w) + gi * ocg * k * w_es;
    s.b_dtype = w.w_dtype;
    s.k = k;
    s.n = ocg;
    s.stride_k = 1;
    s.stride_n = k;
    s.b_format = w.w_format;
    if (w.bias != nullptr) {
      s.bias = static_cast<const std::byte*>(w.bias) + gi * ocg * b_es;
      s.bias_dtype = w.bias_dtype;
      s.bias_format = w.bias_format;
    }
    s.a_format = w.a_format;
    s.a_dtype = w.a_dtype;
    s.bit_pack = w.bit_pack;
    out.groups_.push_back(pack_weights(s, isa));
  }
  return out;
}

AccumulatorBound accumulator_bound(const PackedConv2d& w) {
  AccumulatorBound worst;
  for (const auto& p : w.groups()) {
    const AccumulatorBound b = accumulator_bound(p);
    if (b.max_abs > worst.max_abs) worst.max_abs = b.max_abs;
    worst.need = std::max(worst.need, b.need);
  }
  return worst;
}

namespace {

// State shared by the work items of one conv2d() call (captured by pointer: no allocation).
struct ConvJob {
  const std::byte* x;
  std::byte* y;
  const PackedConv2d* w;
  GemmParams q;
  int64_t cg, ocg, pixels, k;
  size_t a_es, y_es;

  void run(int64_t item) const {
    const Conv2dGeometry& g = w->geometry();
    const int64_t img = item / g.groups, gi = item % g.groups;
    void* cols = scratch(ScratchSlot::kConvColumns, static_cast<size_t>(pixels * k) * a_es);
    im2col_any(x + (img * g.in_channels + gi * cg) * g.in_h * g.in_w * a_es, w->a_dtype(), g, cg,
               cols);
    gemm(cols, pixels, k, w->groups()[gi], q,
         y + (img * g.out_channels + gi * ocg) * pixels * y_es);
  }
};

}  // namespace

void conv2d(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p, void* y) {
  const Conv2dGeometry& g = w.geometry();
  ConvJob job;
  job.x = static_cast<const std::byte*>(x);
  job.y = static_cast<std::byte*>(y);
  job.w = &w;
  job.cg = g.in_channels / g.groups;
  job.ocg = g.out_channels / g.groups;
  job.pixels = g.out_h() * g.out_w();
  job.k = job.cg * g.kernel_h * g.kernel_w;
  job.a_es = dtype_size(w.a_dtype());
  job.y_es = dtype_size(gemm_output_dtype(p));
  job.q = p;
  job.q.ldc_m = 1;  // C[pixel, oc] lands at y[oc * pixels + pixel]: NCHW
  job.q.ldc_n = job.pixels;
  const int64_t items = batch * g.groups;
  if (items >= num_threads()) {
    const ConvJob* shared = &job;
    parallel_for(0, items, 1, [shared](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) shared->run(i);  // the inner gemm runs inline here
    });
  } else {
    for (int64_t i = 0; i < items; ++i) job.run(i);  // the gemm parallelises instead
  }
}

}  // namespace qsearch::kernels::fixed
