#include "kernels/ref/elementwise.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qsearch::kernels::ref {

namespace {
float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
    case BinaryOp::kPow:
      return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b)));
  }
  return 0.0f;
}
}  // namespace

void binary_f32(const BinaryParams& p, const float* a, const float* b, float* y) {
  int64_t total = 1;
  for (int d = 0; d < p.rank; ++d) total *= p.shape[d];
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rem = flat, ai = 0, bi = 0;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t idx = rem % p.shape[d];
      rem /= p.shape[d];
      ai += idx * p.a_stride[d];
      bi += idx * p.b_stride[d];
    }
    y[flat] = apply(p.op, a[ai], b[bi]);
  }
}

void unary_f32(const UnaryParams& p, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float r = v;
    switch (p.op) {
      case UnaryOp::kRelu:
        r = std::isnan(v) ? v : (v > 0.0f ? v : 0.0f);
        break;
      case UnaryOp::kLeakyRelu:
        r = v < 0.0f ? p.alpha * v : v;
        break;
      case UnaryOp::kClip:
        r = std::isnan(v) ? v : std::min(std::max(v, p.min), p.max);
        break;
      case UnaryOp::kSigmoid:
        r = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v))));
        break;
      case UnaryOp::kTanh:
        r = static_cast<float>(std::tanh(static_cast<double>(v)));
        break;
      case UnaryOp::kCopy:
        break;
      case UnaryOp::kErf:
        r = static_cast<float>(std::erf(static_cast<double>(v)));
        break;
      case UnaryOp::kSqrt:
        r = std::sqrt(v);  // correctly rounded in float, as in double then rounded
        break;
      case UnaryOp::kExp:
        r = static_cast<float>(std::exp(static_cast<double>(v)));
        break;
      case UnaryOp::kNeg:
        r = -v;
        break;
      case UnaryOp::kGelu: {
        const double d = v;
        r = static_cast<float>(0.5 * d * (1.0 + std::erf(d / std::sqrt(2.0))));
        break;
      }
      case UnaryOp::kGeluTanh: {
        const double d = v, c = std::sqrt(2.0 / 3.14159265358979323846);
        r = static_cast<float>(0.5 * d * (1.0 + std::tanh(c * (d + 0.044715 * d * d * d))));
        break;
      }
    }
    y[i] = r;
  }
}

namespace {
// Softmax (log = false) or LogSoftmax (log = true) along the axis, stably: x - max, the sum of
// exponentials in double; LogSoftmax is x - max - log(sum), never log(softmax).
void softmax_along_axis(const SoftmaxParams& p, const float* x, float* y, bool log) {
  for (int64_t o = 0; o < p.outer; ++o) {
    for (int64_t in = 0; in < p.inner; ++in) {
      const float* xs = x + o * p.axis * p.inner + in;
      float* ys = y + o * p.axis * p.inner + in;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t a = 0; a < p.axis; ++a) mx = std::max(mx, xs[a * p.inner]);
      double sum = 0.0;
      for (int64_t a = 0; a < p.axis; ++a) {
        sum += std::exp(static_cast<double>(xs[a * p.inner]) - mx);
      }
      const double shift = static_cast<double>(mx) + std::log(sum);
      for (int64_t a = 0; a < p.axis; ++a) {
        const double v = static_cast<double>(xs[a * p.inner]);
        ys[a * p.inner] = static_cast<float>(log ? v - shift : std::exp(v - mx) / sum);
      }
    }
  }
}
}  // namespace

void softmax_f32(const SoftmaxParams& p, const float* x, float* y) {
  softmax_along_axis(p, x, y, false);
}

void log_softmax_f32(const SoftmaxParams& p, const float* x, float* y) {
  softmax_along_axis(p, x, y, true);
}

}  // namespace qsearch::kernels::ref
