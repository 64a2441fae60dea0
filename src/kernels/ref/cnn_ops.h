// Reference (oracle) kernels of the modern-CNN operators (issue 11): HardSigmoid / HardSwish,
// GlobalMaxPool, general Pad and Resize (nearest, bilinear). The obvious loops, one element at a
// time; the fast twins in kernels/cnn_ops.h are bit-identical to them (each op rounds at most once
// per element).
//
//   kernels::PadParams p;  // rank 2, [2, 3] -> [2, 5] with one column each side, edge mode
//   p.rank = 2; p.in_shape = {2, 3}; p.begin = {0, 1}; p.end = {0, 1};
//   p.mode = kernels::PadKind::kEdge;
//   kernels::ref::pad_f32(p, x, y);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/params.h"

namespace qsearch::kernels {

enum class PadKind : uint8_t { kConstant, kReflect, kEdge };

// ONNX Pad (non-negative pads): out dim d = in[d] + begin[d] + end[d]. An output index i along d
// reads input index i - begin[d] when inside; outside, constant mode writes `value`, reflect
// mirrors about the edge element (-1 -> 1), edge repeats the edge element.
struct PadParams {
  int rank = 0;
  Dims in_shape{};
  Dims begin{};
  Dims end{};
  PadKind mode = PadKind::kConstant;
  float value = 0.0f;
};

// The input index read along one dim for output index i (-1: outside, constant mode).
inline int64_t pad_source(int64_t i, int64_t n, int64_t begin, PadKind mode) {
  int64_t s = i - begin;
  if (s >= 0 && s < n) return s;
  if (mode == PadKind::kConstant) return -1;
  if (mode == PadKind::kEdge) return s < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);  // reflect: ... 2 1 0 1 2 ... n-2 n-1 n-2 ...
  s %= period;
  if (s < 0) s += period;
  return s < n ? s : period - s;
}

// Resize of H and W of [planes, in_h, in_w] to [planes, out_h, out_w] (ONNX Resize; see
// ir::ResizeAttrs for the coordinate transforms). `scale_*` is the ONNX scale (out / in when the
// sizes were given).
enum class ResizeCoordKind : uint8_t { kAsymmetric, kHalfPixel, kPytorchHalfPixel, kAlignCorners };
enum class ResizeNearestKind : uint8_t { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
struct ResizeParams {
  int64_t planes = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  double scale_h = 1, scale_w = 1;
  bool linear = false;
  ResizeCoordKind coord = ResizeCoordKind::kHalfPixel;
  ResizeNearestKind nearest = ResizeNearestKind::kRoundPreferFloor;
};

// The input taps of output index o along one dim: nearest reads i0 (w1 = 0); linear reads
// (1 - w1) * x[i0] + w1 * x[i1]. Both kernels use this, in double.
struct ResizeTap {
  int64_t i0 = 0, i1 = 0;
  double w1 = 0;
};
inline ResizeTap resize_tap(int64_t o, int64_t in, int64_t out, double scale, bool linear,
                            ResizeCoordKind coord, ResizeNearestKind nearest) {
  double x = 0;
  switch (coord) {
    case ResizeCoordKind::kAsymmetric:
      x = static_cast<double>(o) / scale;
      break;
    case ResizeCoordKind::kHalfPixel:
      x = (static_cast<double>(o) + 0.5) / scale - 0.5;
      break;
    case ResizeCoordKind::kPytorchHalfPixel:
      x = out > 1 ? (static_cast<double>(o) + 0.5) / scale - 0.5 : 0.0;
      break;
    case ResizeCoordKind::kAlignCorners:
      x = out > 1
              ? static_cast<double>(o) * static_cast<double>(in - 1) / static_cast<double>(out - 1)
              : 0.0;
      break;
  }
  ResizeTap t;
  if (!linear) {
    double r = 0;
    switch (nearest) {
      case ResizeNearestKind::kFloor:
        r = std::floor(x);
        break;
      case ResizeNearestKind::kCeil:
        r = std::ceil(x);
        break;
      case ResizeNearestKind::kRoundPreferFloor:
        r = x - std::floor(x) == 0.5 ? std::floor(x) : std::round(x);
        break;
      case ResizeNearestKind::kRoundPreferCeil:
        r = x - std::floor(x) == 0.5 ? std::ceil(x) : std::round(x);
        break;
    }
    const int64_t i =
        r < 0 ? 0 : (r > static_cast<double>(in - 1) ? in - 1 : static_cast<int64_t>(r));
    t.i0 = t.i1 = i;
    return t;
  }
  if (x < 0) x = 0;
  if (x > static_cast<double>(in - 1)) x = static_cast<double>(in - 1);
  t.i0 = static_cast<int64_t>(std::floor(x));
  t.i1 = std::min(t.i0 + 1, in - 1);
  t.w1 = x - static_cast<double>(t.i0);
  return t;
}

// One output element from its four taps, in double, rounded once to float.
inline float resize_value(const float* plane, int64_t in_w, const ResizeTap& ty,
                          const ResizeTap& tx) {
  const double a = plane[ty.i0 * in_w + tx.i0], b = plane[ty.i0 * in_w + tx.i1],
               c = plane[ty.i1 * in_w + tx.i0], d = plane[ty.i1 * in_w + tx.i1];
  if (ty.w1 == 0 && tx.w1 == 0) return static_cast<float>(a);  // nearest, or on a sample
  const double top = (1 - tx.w1) * a + tx.w1 * b, bottom = (1 - tx.w1) * c + tx.w1 * d;
  return static_cast<float>((1 - ty.w1) * top + ty.w1 * bottom);
}

}  // namespace qsearch::kernels

namespace qsearch::kernels::ref {

// ONNX Resize (see ResizeParams): the taps of every output element computed where it is
// needed. y must not alias x.
void resize_f32(const ResizeParams& p, const float* x, float* y);

// y = clamp(fma(alpha, x, beta), 0, 1) (one rounding: ONNX HardSigmoid); with swish,
// y = x * that (ONNX HardSwish: alpha 1/6, beta 1/2; a second rounding). NaN stays NaN.
// y may equal x.
void hard_sigmoid_f32(float alpha, float beta, bool swish, const float* x, float* y, int64_t n);

// ONNX GlobalMaxPool: y[r] = max over s of x[r, s] (r < rows = batch * channels); NaN wins.
void global_max_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y);

// ONNX Pad (see PadParams); y must not alias x.
void pad_f32(const PadParams& p, const float* x, float* y);

}  // namespace qsearch::kernels::ref
