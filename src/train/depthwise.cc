// Convolutions with one input channel per group (depthwise, channel multipliers, a first conv on
// a one-channel image): forward, input gradient and weight gradient on output grids (declared in
// train/grad_kernels.h).
//
// A plane of x is copied once, zero-padded and split into stride_h * stride_w phases, each a
// plane of width gw = out_w + (kernel_w - 1) * dilation_w / stride_w (the grid width):
// phase (a, b)[r][q] = x[r * stride_h + a - pad_top][q * stride_w + b - pad_left] (0 outside).
// Output pixel (oh, ow) is grid position oh * gw + ow, and tap (i, j) of every grid position is
// one contiguous run of one phase, at offset ((i * dilation_h) / stride_h) * gw +
// (j * dilation_w) / stride_w of phase ((i * dilation_h) % stride_h, (j * dilation_w) %
// stride_w). The forward is then a sum over taps of scaled runs (8 lanes at a time), the weight
// gradient a dot product of each run with dY laid on the grid (0 in the columns ow >= out_w),
// and the input gradient the stride-1 convolution of dY, spread by the stride and padded,
// with the flipped taps. Every result element is summed in a fixed order inside one item
// (an image and a group), so the bits never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "train/grad_kernels.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace qsearch::train {

namespace {

constexpr int64_t kLanes = 8;

int64_t round8(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

// dst[0, n) = src[0, n) (+ b), for the short rows of small maps (a memcpy call per row of 7
// floats costs more than the row): 8 lanes at a time, the tail one by one (a masked store is
// microcoded and slow on AMD cores).
inline void copy_row(float* dst, const float* src, int64_t n, float b = 0.0f) {
  int64_t q = 0;
#ifdef __AVX2__
  const __m256 vb = _mm256_set1_ps(b);
  for (; q + 8 <= n; q += 8) _mm256_storeu_ps(dst + q, _mm256_add_ps(_mm256_loadu_ps(src + q), vb));
#endif
  for (; q < n; ++q) dst[q] = src[q] + b;
}

// The phase-split padded copy of one plane and the run offset of every tap.
struct Grid {
  int64_t gw = 0, gh = 0;    // grid (phase plane) width and rows
  int64_t len = 0;           // out_h * gw: grid positions of the output
  int64_t plane = 0;         // floats per phase plane (with the zeroed slack the runs read past)
  std::vector<int64_t> off;  // per tap (i, j), row-major: start of its run in the phase buffer

  explicit Grid(const kernels::Conv2dParams& p) {
    gw = p.out_w + (p.kernel_w - 1) * p.dilation_w / p.stride_w;
    gh = p.out_h + (p.kernel_h - 1) * p.dilation_h / p.stride_h;
    len = p.out_h * gw;
    // Runs end at most gw past gh * gw; the vector loops round len up to 8.
    plane = gh * gw + gw + kLanes;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      for (int64_t j = 0; j < p.kernel_w; ++j) {
        const int64_t di = i * p.dilation_h, dj = j * p.dilation_w;
        const int64_t phase = (di % p.stride_h) * p.stride_w + dj % p.stride_w;
        off.push_back(phase * plane + (di / p.stride_h) * gw + dj / p.stride_w);
      }
    }
  }
  int64_t floats(const kernels::Conv2dParams& p) const { return p.stride_h * p.stride_w * plane; }
};

// Fills the phases of plane x ([in_h, in_w]) into buf (Grid::floats, zeroed by the caller).
// Only the positions inside x are written: they are the same for every plane of a shape, so a
// buffer zeroed once (per parallel chunk) keeps its zero border and slack from plane to plane.
void fill_phases(const kernels::Conv2dParams& p, const Grid& g, const float* x, float* buf) {
  for (int64_t a = 0; a < p.stride_h; ++a) {
    for (int64_t b = 0; b < p.stride_w; ++b) {
      float* ph = buf + (a * p.stride_w + b) * g.plane;
      // Columns q with 0 <= q * stride_w + b - pad_left < in_w.
      const int64_t c0 = b - p.pad_left;
      const int64_t q_lo = std::clamp<int64_t>((-c0 + p.stride_w - 1) / p.stride_w, 0, g.gw);
      const int64_t q_hi =
          std::clamp<int64_t>((p.in_w - c0 + p.stride_w - 1) / p.stride_w, q_lo, g.gw);
      for (int64_t r = 0; r < g.gh; ++r) {
        const int64_t h = r * p.stride_h + a - p.pad_top;
        if (h < 0 || h >= p.in_h || q_lo >= q_hi) continue;
        const float* src = x + h * p.in_w;
        float* dst = ph + r * g.gw;
        if (p.stride_w == 1) {
          copy_row(dst + q_lo, src + q_lo + c0, q_hi - q_lo);
        } else {
          for (int64_t q = q_lo; q < q_hi; ++q) dst[q] = src[q * p.stride_w + c0];
        }
      }
    }
  }
}

// out[q] (+)= sum over taps t in order of w[t] * src[off[t] + q], q < len rounded up to 8
// (src readable that far). accumulate: out's values are the first addend.
void grid_conv(const float* src, const int64_t* off, const float* w, int64_t taps, int64_t len,
               bool accumulate, float* out) {
#ifdef __AVX2__
  int64_t q = 0;
  for (; q + 2 * kLanes <= len; q += 2 * kLanes) {  // two independent FMA chains
    __m256 a0 = accumulate ? _mm256_loadu_ps(out + q) : _mm256_setzero_ps();
    __m256 a1 = accumulate ? _mm256_loadu_ps(out + q + kLanes) : _mm256_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      const __m256 wt = _mm256_set1_ps(w[t]);
      a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(src + off[t] + q), a0);
      a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(src + off[t] + q + kLanes), a1);
    }
    _mm256_storeu_ps(out + q, a0);
    _mm256_storeu_ps(out + q + kLanes, a1);
  }
  for (; q < len; q += kLanes) {
    __m256 acc = accumulate ? _mm256_loadu_ps(out + q) : _mm256_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(src + off[t] + q), acc);
    }
    _mm256_storeu_ps(out + q, acc);
  }
#else
  for (int64_t q = 0; q < len; q += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      float acc = accumulate ? out[q + l] : 0.0f;
      for (int64_t t = 0; t < taps; ++t) acc = std::fma(w[t], src[off[t] + q + l], acc);
      out[q + l] = acc;
    }
  }
#endif
}

// a[l] += x[q + l] * g[q + l] over the run in blocks of 8, the tail into lanes 0, 1, ...
inline void lane_dot(float* a, const float* x, const float* g, int64_t n) {
  int64_t q = 0;
#ifdef __AVX2__
  __m256 acc = _mm256_loadu_ps(a);
  for (; q + 8 <= n; q += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + q), _mm256_loadu_ps(g + q), acc);
  }
  _mm256_storeu_ps(a, acc);
#else
  for (; q + 8 <= n; q += 8) {
    for (int l = 0; l < 8; ++l) a[l] = std::fma(x[q + l], g[q + l], a[l]);
  }
#endif
  for (int l = 0; q < n; ++q, ++l) a[l] = std::fma(x[q], g[q], a[l]);
}

// lane_dot for the 9 taps of a 3x3 kernel at once: a[t * 8 + l] += x[off[t] + q + l] * g[q + l]
// over blocks of 8 (n a multiple of 8), dY loaded once per block for all taps. The same lanes,
// the same order per lane, as nine lane_dot calls.
inline void lane_dots9(float* a, const float* x, const int64_t* off, const float* g, int64_t n) {
#ifdef __AVX2__
  const float *x0 = x + off[0], *x1 = x + off[1], *x2 = x + off[2], *x3 = x + off[3];
  const float *x4 = x + off[4], *x5 = x + off[5], *x6 = x + off[6], *x7 = x + off[7];
  const float* x8 = x + off[8];
  __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8), a2 = _mm256_loadu_ps(a + 16);
  __m256 a3 = _mm256_loadu_ps(a + 24), a4 = _mm256_loadu_ps(a + 32), a5 = _mm256_loadu_ps(a + 40);
  __m256 a6 = _mm256_loadu_ps(a + 48), a7 = _mm256_loadu_ps(a + 56), a8 = _mm256_loadu_ps(a + 64);
  for (int64_t q = 0; q < n; q += 8) {
    const __m256 d = _mm256_loadu_ps(g + q);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + q), d, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + q), d, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + q), d, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + q), d, a3);
    a4 = _mm256_fmadd_ps(_mm256_loadu_ps(x4 + q), d, a4);
    a5 = _mm256_fmadd_ps(_mm256_loadu_ps(x5 + q), d, a5);
    a6 = _mm256_fmadd_ps(_mm256_loadu_ps(x6 + q), d, a6);
    a7 = _mm256_fmadd_ps(_mm256_loadu_ps(x7 + q), d, a7);
    a8 = _mm256_fmadd_ps(_mm256_loadu_ps(x8 + q), d, a8);
  }
  _mm256_storeu_ps(a, a0);
  _mm256_storeu_ps(a + 8, a1);
  _mm256_storeu_ps(a + 16, a2);
  _mm256_storeu_ps(a + 24, a3);
  _mm256_storeu_ps(a + 32, a4);
  _mm256_storeu_ps(a + 40, a5);
  _mm256_storeu_ps(a + 48, a6);
  _mm256_storeu_ps(a + 56, a7);
  _mm256_storeu_ps(a + 64, a8);
#else
  for (int t = 0; t < 9; ++t) lane_dot(a + t * 8, x + off[t], g, n);
#endif
}

// Items of a parallel_for over (image, group): small planes get several per chunk.
int64_t item_grain(const kernels::Conv2dParams& p) {
  return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.in_h * p.in_w));
}

}  // namespace

bool one_channel_conv_applies(const kernels::Conv2dParams& p) {
  return p.groups >= 1 && p.in_channels == p.groups && p.out_channels % p.groups == 0 &&
         p.stride_h >= 1 && p.stride_w >= 1 && p.out_h >= 1 && p.out_w >= 1;
}

void one_channel_conv_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                              const float* bias, float* y) {
  const Grid g(p);
  const int64_t groups = p.groups, mg = p.out_channels / groups;
  const int64_t kk = p.kernel_h * p.kernel_w, pixels = p.out_h * p.out_w;
  const int64_t in_hw = p.in_h * p.in_w;
  parallel_for(0, p.batch * groups, item_grain(p), [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> phases, out;
    phases.assign(g.floats(p), 0.0f);  // zero border, see fill_phases
    out.resize(round8(g.len));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t n = item / groups, gi = item % groups;
      fill_phases(p, g, x + (n * p.in_channels + gi) * in_hw, phases.data());
      for (int64_t m = 0; m < mg; ++m) {
        const int64_t o = gi * mg + m;
        grid_conv(phases.data(), g.off.data(), w + o * kk, kk, g.len, false, out.data());
        float* yo = y + (n * p.out_channels + o) * pixels;
        const float b = bias != nullptr ? bias[o] : 0.0f;
        for (int64_t oh = 0; oh < p.out_h; ++oh) {
          copy_row(yo + oh * p.out_w, out.data() + oh * g.gw, p.out_w, b);
        }
      }
    }
  });
}

namespace {

// The input gradient's loop over items (image, group): calls then(loop) while its setup lives.
template <class Then>
void input_grad_loop(const kernels::Conv2dParams& p, const float* w, const float* dy, float* dx,
                     Then&& then) {
  // dX[h][w] = sum over taps (i, j) of W[i][j] * B[h + (kh-1-i) dh][w + (kw-1-j) dw], B = dY
  // spread by the stride (zeros between) and shifted by P = (k-1) d - pad: a stride-1
  // convolution on a grid of width gb = in_w + (kw-1) dw.
  const int64_t groups = p.groups, mg = p.out_channels / groups;
  const int64_t kk = p.kernel_h * p.kernel_w, pixels = p.out_h * p.out_w;
  const int64_t in_hw = p.in_h * p.in_w;
  const int64_t gb = p.in_w + (p.kernel_w - 1) * p.dilation_w;
  const int64_t hb = p.in_h + (p.kernel_h - 1) * p.dilation_h;
  const int64_t ph = (p.kernel_h - 1) * p.dilation_h - p.pad_top;
  const int64_t pw = (p.kernel_w - 1) * p.dilation_w - p.pad_left;
  const int64_t len = p.in_h * gb, bsize = hb * gb + gb + kLanes;
  std::vector<int64_t> off(kk);
  for (int64_t i = 0; i < p.kernel_h; ++i) {
    for (int64_t j = 0; j < p.kernel_w; ++j) {
      off[i * p.kernel_w + j] =
          (p.kernel_h - 1 - i) * p.dilation_h * gb + (p.kernel_w - 1 - j) * p.dilation_w;
    }
  }
  // Output rows / columns of dY that land inside B: 0 <= o * stride + P < hb (gb).
  auto range = [](int64_t pad, int64_t stride, int64_t limit, int64_t count, int64_t* lo,
                  int64_t* hi) {
    *lo = std::clamp<int64_t>((-pad + stride - 1) / stride, 0, count);
    *hi = std::clamp<int64_t>((limit - pad + stride - 1) / stride, *lo, count);
  };
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;
  range(ph, p.stride_h, hb, p.out_h, &oh_lo, &oh_hi);
  range(pw, p.stride_w, gb, p.out_w, &ow_lo, &ow_hi);
  auto body = [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> spread, out;
    spread.assign(bsize, 0.0f);
    out.resize(round8(len));
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t n = item / groups, gi = item % groups;
      for (int64_t m = 0; m < mg; ++m) {
        const int64_t o = gi * mg + m;
        const float* dyo = dy + (n * p.out_channels + o) * pixels;
        // Only the spread positions change from plane to plane; the zeros stay.
        for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
          float* row = spread.data() + (oh * p.stride_h + ph) * gb + pw;
          const float* src = dyo + oh * p.out_w;
          if (p.stride_w == 1) {
            copy_row(row + ow_lo, src + ow_lo, ow_hi - ow_lo);
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ++ow) row[ow * p.stride_w] = src[ow];
          }
        }
        grid_conv(spread.data(), off.data(), w + o * kk, kk, len, m > 0, out.data());
      }
      float* dxp = dx + (n * p.in_channels + gi) * in_hw;
      for (int64_t h = 0; h < p.in_h; ++h) {
        copy_row(dxp + h * p.in_w, out.data() + h * gb, p.in_w);
      }
    }
  };
  then(ItemLoop{p.batch * groups, item_grain(p), body});
}

// The weight gradient's loop over items (chunk of images, group), as input_grad_loop.
template <class Then>
void weight_grad_loop(const kernels::Conv2dParams& p, const float* x, const float* dy,
                      int64_t chunk, int64_t chunks, float* partial, Then&& then) {
  const Grid g(p);
  const int64_t groups = p.groups, mg = p.out_channels / groups;
  const int64_t kk = p.kernel_h * p.kernel_w, pixels = p.out_h * p.out_w;
  const int64_t in_hw = p.in_h * p.in_w, wsize = p.out_channels * kk;
  auto body = [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> phases, dyg, lanes;
    phases.assign(g.floats(p), 0.0f);  // zero border, see fill_phases
    // Columns ow >= out_w and the positions up to len8 stay 0 (the runs are read that far).
    const int64_t len8 = round8(g.len);
    dyg.assign(mg * len8, 0.0f);
    lanes.resize(mg * kk * kLanes);
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t c = item / groups, gi = item % groups;
      const int64_t n0 = c * chunk, nn = std::min(chunk, p.batch - n0);
      std::fill(lanes.begin(), lanes.end(), 0.0f);
      for (int64_t i = 0; i < nn; ++i) {
        fill_phases(p, g, x + ((n0 + i) * p.in_channels + gi) * in_hw, phases.data());
        const float* dyp = dy + ((n0 + i) * p.out_channels + gi * mg) * pixels;
        for (int64_t m = 0; m < mg; ++m) {
          for (int64_t oh = 0; oh < p.out_h; ++oh) {
            copy_row(dyg.data() + m * len8 + oh * g.gw, dyp + m * pixels + oh * p.out_w, p.out_w);
          }
          if (kk == 9) {
            lane_dots9(lanes.data() + m * kk * kLanes, phases.data(), g.off.data(),
                       dyg.data() + m * len8, len8);
            continue;
          }
          for (int64_t t = 0; t < kk; ++t) {
            lane_dot(lanes.data() + (m * kk + t) * kLanes, phases.data() + g.off[t],
                     dyg.data() + m * len8, len8);
          }
        }
      }
      float* res = partial + c * wsize + gi * mg * kk;
      for (int64_t mt = 0; mt < mg * kk; ++mt) {
        const float* l = lanes.data() + mt * kLanes;
        res[mt] = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
      }
    }
  };
  then(ItemLoop{chunks * groups, 1, body});
}

}  // namespace

void one_channel_conv_input_grad(const kernels::Conv2dParams& p, const float* w, const float* dy,
                                 float* dx) {
  input_grad_loop(p, w, dy, dx, [](const ItemLoop& l) { parallel_loops({l}); });
}

void one_channel_conv_weight_grad(const kernels::Conv2dParams& p, const float* x, const float* dy,
                                  int64_t chunk, int64_t chunks, float* partial) {
  weight_grad_loop(p, x, dy, chunk, chunks, partial,
                   [](const ItemLoop& l) { parallel_loops({l}); });
}

void one_channel_conv_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                               const float* dy, float* dx, int64_t chunk, int64_t chunks,
                               float* partial) {
  if (dx == nullptr) {
    one_channel_conv_weight_grad(p, x, dy, chunk, chunks, partial);
    return;
  }
  input_grad_loop(p, w, dy, dx, [&](const ItemLoop& a) {
    weight_grad_loop(p, x, dy, chunk, chunks, partial, [&](const ItemLoop& b) {
      parallel_loops({a, b});
    });
  });
}

}  // namespace qsearch::train
