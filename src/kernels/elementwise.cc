#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/thread_pool.h"
#include "kernels/vec_math.h"

namespace qsearch::kernels {

namespace {

// Elementwise work is memory-bound: split only when a chunk still streams a good amount.
constexpr int64_t kGrain = 1 << 14;

template <BinaryOp Op>
inline float apply(float a, float b) {
  if constexpr (Op == BinaryOp::kAdd) return a + b;
  if constexpr (Op == BinaryOp::kSub) return a - b;
  if constexpr (Op == BinaryOp::kMul) return a * b;
  if constexpr (Op == BinaryOp::kPow) return b == 2.0f ? a * a : std::pow(a, b);
  return a / b;
}

// apply<Op>, then with kRelu unary_f32's Relu of the result (`v < 0 ? 0 : v`, NaN kept): the
// same bits as the two kernels one after the other.
template <BinaryOp Op, bool kRelu>
inline float apply_act(float a, float b) {
  const float v = apply<Op>(a, b);
  if constexpr (kRelu) return v < 0.0f ? 0.0f : v;
  return v;
}

// One run of the innermost (coalesced) dim; the stride patterns are split out so that the
// compiler vectorises the common ones.
template <BinaryOp Op, bool kRelu>
inline void inner(const float* a, int64_t sa, const float* b, int64_t sb, float* y, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = apply_act<Op, kRelu>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = apply_act<Op, kRelu>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = apply_act<Op, kRelu>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = apply_act<Op, kRelu>(a[i * sa], b[i * sb]);
  }
}

struct Coalesced {
  int rank = 0;  // dims after merging; the last one is the inner loop
  Dims shape{}, sa{}, sb{};
};

Coalesced coalesce(const BinaryParams& p) {
  Coalesced c;
  // Walk from the innermost dim outwards, merging a dim into the previous group when both
  // operands continue contiguously (stride == inner stride * inner size, which includes the
  // all-broadcast case 0 == 0 * n). Size-1 dims vanish.
  for (int d = p.rank - 1; d >= 0; --d) {
    const int64_t n = p.shape[d];
    if (n == 1) continue;
    const int64_t a = n == 1 ? 0 : p.a_stride[d], b = n == 1 ? 0 : p.b_stride[d];
    if (c.rank > 0) {
      const int g = c.rank - 1;
      if (a == c.sa[g] * c.shape[g] && b == c.sb[g] * c.shape[g]) {
        c.shape[g] *= n;
        continue;
      }
    }
    c.shape[c.rank] = n;
    c.sa[c.rank] = a;
    c.sb[c.rank] = b;
    ++c.rank;
  }
  // Stored innermost-first above; reverse to outermost-first.
  for (int i = 0, j = c.rank - 1; i < j; ++i, --j) {
    std::swap(c.shape[i], c.shape[j]);
    std::swap(c.sa[i], c.sa[j]);
    std::swap(c.sb[i], c.sb[j]);
  }
  if (c.rank == 0) {  // a scalar
    c.rank = 1;
    c.shape[0] = 1;
  }
  return c;
}

template <BinaryOp Op, bool kRelu>
void binary_impl(const Coalesced& c, const float* a, const float* b, float* y) {
  struct Ctx {
    const Coalesced* c;
    const float *a, *b;
    float* y;
  } ctx{&c, a, b, y};
  const int last = c.rank - 1;
  if (last == 0) {
    // One run (same-shape operands, a residual Add): split it over the threads in pieces.
    parallel_for(0, c.shape[0], kGrain, [&ctx](int64_t begin, int64_t end) {
      const Coalesced& c = *ctx.c;
      inner<Op, kRelu>(ctx.a + begin * c.sa[0], c.sa[0], ctx.b + begin * c.sb[0], c.sb[0],
                       ctx.y + begin, end - begin);
    });
    return;
  }
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= c.shape[d];
  const int64_t grain = std::max<int64_t>(1, kGrain / c.shape[last]);
  // Captures one reference: std::function stores it inline (no allocation per call).
  parallel_for(0, rows, grain, [&ctx](int64_t begin, int64_t end) {
    const Coalesced& c = *ctx.c;
    const int last = c.rank - 1;
    const int64_t n = c.shape[last];
    for (int64_t r = begin; r < end; ++r) {
      int64_t rem = r, ao = 0, bo = 0;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t idx = rem % c.shape[d];
        rem /= c.shape[d];
        ao += idx * c.sa[d];
        bo += idx * c.sb[d];
      }
      inner<Op, kRelu>(ctx.a + ao, c.sa[last], ctx.b + bo, c.sb[last], ctx.y + r * n, n);
    }
  });
}

template <typename F>
void map_parallel(int64_t n, const F& f) {
  parallel_for(0, n, kGrain, [&f](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

// The vectorised transcendentals (kernels/vec_math.h) over chunks of the array.
void map_vec(vmath::Fn f, const float* x, float* y, int64_t n) {
  parallel_for(0, n, kGrain, [f, x, y](int64_t begin, int64_t end) {
    vmath::map_f32(f, x + begin, y + begin, end - begin);
  });
}

}  // namespace

namespace {
template <bool kRelu>
void binary_op(const BinaryParams& p, const float* a, const float* b, float* y) {
  const Coalesced c = coalesce(p);
  switch (p.op) {
    case BinaryOp::kAdd:
      return binary_impl<BinaryOp::kAdd, kRelu>(c, a, b, y);
    case BinaryOp::kSub:
      return binary_impl<BinaryOp::kSub, kRelu>(c, a, b, y);
    case BinaryOp::kMul:
      return binary_impl<BinaryOp::kMul, kRelu>(c, a, b, y);
    case BinaryOp::kDiv:
      return binary_impl<BinaryOp::kDiv, kRelu>(c, a, b, y);
    case BinaryOp::kPow:
      return binary_impl<BinaryOp::kPow, kRelu>(c, a, b, y);
  }
}
}  // namespace

void binary_f32(const BinaryParams& p, const float* a, const float* b, float* y) {
  binary_op<false>(p, a, b, y);
}

void binary_relu_f32(const BinaryParams& p, const float* a, const float* b, float* y) {
  binary_op<true>(p, a, b, y);
}

void unary_f32(const UnaryParams& p, const float* x, float* y, int64_t n) {
  switch (p.op) {
    case UnaryOp::kRelu:
      // `v < 0 ? 0 : v` keeps NaN (the comparison is false) and vectorises to a blend.
      return map_parallel(n, [=](int64_t i) { y[i] = x[i] < 0.0f ? 0.0f : x[i]; });
    case UnaryOp::kLeakyRelu: {
      const float alpha = p.alpha;
      return map_parallel(n, [=](int64_t i) { y[i] = x[i] < 0.0f ? alpha * x[i] : x[i]; });
    }
    case UnaryOp::kClip: {
      const float lo = p.min, hi = p.max;
      return map_parallel(n, [=](int64_t i) {
        // min then max, as ONNX and numpy: with min > max every value becomes max.
        const float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
      });
    }
    case UnaryOp::kSigmoid:
      return map_vec(vmath::Fn::kSigmoid, x, y, n);
    case UnaryOp::kTanh:
      return map_vec(vmath::Fn::kTanh, x, y, n);
    case UnaryOp::kCopy:
      return map_parallel(n, [=](int64_t i) { y[i] = x[i]; });
    case UnaryOp::kErf:
      return map_vec(vmath::Fn::kErf, x, y, n);
    case UnaryOp::kSqrt:
      return map_parallel(n, [=](int64_t i) { y[i] = std::sqrt(x[i]); });
    case UnaryOp::kExp:
      return map_vec(vmath::Fn::kExp, x, y, n);
    case UnaryOp::kNeg:
      return map_parallel(n, [=](int64_t i) { y[i] = -x[i]; });
    case UnaryOp::kGelu:
      return map_vec(vmath::Fn::kGelu, x, y, n);
    case UnaryOp::kGeluTanh:
      return map_vec(vmath::Fn::kGeluTanh, x, y, n);
  }
}

void channel_affine_f32(int64_t batch, int64_t channels, int64_t spatial, const float* x,
                        const float* scale, const float* shift, float* y) {
  struct Ctx {
    int64_t channels, spatial;
    const float *x, *scale, *shift;
    float* y;
  } ctx{channels, spatial, x, scale, shift, y};
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, spatial));
  parallel_for(0, batch * channels, grain, [&ctx](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float s = ctx.scale[r % ctx.channels], t = ctx.shift[r % ctx.channels];
      const float* xr = ctx.x + r * ctx.spatial;
      float* yr = ctx.y + r * ctx.spatial;
      for (int64_t i = 0; i < ctx.spatial; ++i) yr[i] = std::fma(xr[i], s, t);
    }
  });
}

void transpose_f32(const TransposeParams& p, const float* x, float* y) {
  // Input strides, then the output dims as (size, input stride) with size-1 dims dropped and an
  // output dim merged into the previous one when it continues it in the input
  // (stride[prev] == stride[d] * size[d]).
  Dims in_stride{};
  int64_t total = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    in_stride[d] = total;
    total *= p.in_shape[d];
  }
  if (total == 0) return;
  struct Ctx {
    int rank = 0;
    Dims size{}, stride{};
    const float* x;
    float* y;
  } c{0, {}, {}, x, y};
  for (int d = 0; d < p.rank; ++d) {
    const int64_t n = p.in_shape[p.perm[d]], s = in_stride[p.perm[d]];
    if (n == 1) continue;
    if (c.rank > 0 && c.stride[c.rank - 1] == s * n) {
      c.size[c.rank - 1] *= n;
      c.stride[c.rank - 1] = s;
      continue;
    }
    c.size[c.rank] = n;
    c.stride[c.rank] = s;
    ++c.rank;
  }
  if (c.rank == 0) {
    c.rank = 1;
    c.size[0] = 1;
    c.stride[0] = 1;
  }
  const int last = c.rank - 1;
  const int64_t row = c.size[last], rows = total / row;
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / row), [&c](int64_t begin, int64_t end) {
    const int last = c.rank - 1;
    const int64_t row = c.size[last], step = c.stride[last];
    // Odometer over the outer output dims, started at row `begin`.
    Dims idx{};
    int64_t src = 0, rem = begin;
    for (int d = last - 1; d >= 0; --d) {
      idx[d] = rem % c.size[d];
      rem /= c.size[d];
      src += idx[d] * c.stride[d];
    }
    for (int64_t r = begin; r < end; ++r) {
      const float* xs = c.x + src;
      float* yr = c.y + r * row;
      if (step == 1) {
        std::copy(xs, xs + row, yr);
      } else {
        for (int64_t j = 0; j < row; ++j) yr[j] = xs[j * step];
      }
      for (int d = last - 1; d >= 0; --d) {
        src += c.stride[d];
        if (++idx[d] < c.size[d]) break;
        src -= c.stride[d] * c.size[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace qsearch::kernels
