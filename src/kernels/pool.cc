#include "kernels/pool.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/thread_pool.h"
#include "kernels/ref/pool.h"
#include "kernels/simd_util.h"

namespace qsearch::kernels {

namespace {

// Row buffers live on the stack; wider images use the reference kernel.
constexpr int64_t kMaxRow = 4096;

// The valid taps [i0, i1) of a window starting at `start` with `k` taps `d` apart in [0, n).
inline void tap_range(int64_t start, int64_t k, int64_t d, int64_t n, int64_t& i0, int64_t& i1) {
  i0 = start >= 0 ? 0 : (-start + d - 1) / d;
  i1 = start >= n ? 0 : std::min<int64_t>(k, (n - start + d - 1) / d);
  if (i1 < i0) i1 = i0;
}

inline float nan_max(float m, float v) { return (v > m || v != v) ? v : m; }

// nan_max of 8 lanes, lane by lane the same result (and bits: +-0, which NaN) as the scalar.
inline __m256 nan_max_lanes(__m256 m, __m256 v) {
  const __m256 take =
      _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_blendv_ps(m, v, take);
}

// Max pooling's pass 2 in vectors (stride_w <= kMaxPhases): the row, -inf outside the image, is
// split into stride_w column phases (phase q, column c: padded column c * stride_w + q), so that
// tap j of 8 consecutive outputs is one contiguous load; taps fold in ascending j from -inf,
// as the scalar pass (a -inf tap leaves the running max, NaN included, unchanged).
constexpr int64_t kMaxPhases = 4;
constexpr int64_t kPhaseSlack = 16;

bool max_phases_fit(const Pool2dParams& p) {
  return p.stride_w <= kMaxPhases &&
         p.out_w + (p.kernel_w - 1) * p.dilation_w / p.stride_w + kPhaseSlack <= kMaxRow;
}

// The pass-1 row buffer: kRowPad floats before the row (the stride-2 split reads the left
// padding there) and room after it for the split's reach (max_split2_fits).
constexpr int64_t kRowPad = 16;
constexpr int64_t kRowBuf = kRowPad + 2 * kMaxRow + 32;

// The columns of max_row_phases' phases, and that count rounded up to whole vectors.
int64_t phase_cols(const Pool2dParams& p) {
  return p.out_w + (p.kernel_w - 1) * p.dilation_w / p.stride_w + kPhaseSlack;
}
int64_t phase_cols8(const Pool2dParams& p) { return (phase_cols(p) + 7) / 8 * 8; }

// Whether max_row_phases splits stride 2 with vector shuffles: the padded row p[c] = row[c -
// pad_left] for c < 2 * phase_cols8 lies in the row buffer (its -inf before and after the row
// stand for the padding), and the phases' vectors in theirs.
bool max_split2_fits(const Pool2dParams& p) {
  return p.stride_w == 2 && p.pad_left <= kRowPad && phase_cols8(p) <= kMaxRow &&
         2 * phase_cols8(p) - p.pad_left + kRowPad <= kRowBuf;
}

// `row` is W wide; with split2 (max_split2_fits) it sits in a row buffer holding -inf in the
// kRowPad floats before it and from column W to the split's reach.
void max_row_phases(const Pool2dParams& p, const float* row, bool split2, float* phases,
                    float* yr) {
  const int64_t s = p.stride_w;
  const int64_t cols = phase_cols(p);
  const float ninf = -std::numeric_limits<float>::infinity();
  if (split2) {
    // Phase q holds the padded row's columns 2c + q: even and odd lanes of 16 consecutive
    // floats (shuffle_ps takes them per 128-bit half; the permute puts the halves in order).
    const float* pr = row - p.pad_left;
    for (int64_t c = 0; c < cols; c += 8) {
      const __m256 a = _mm256_loadu_ps(pr + 2 * c), b = _mm256_loadu_ps(pr + 2 * c + 8);
      const __m256 even = _mm256_shuffle_ps(a, b, 0x88), odd = _mm256_shuffle_ps(a, b, 0xDD);
      _mm256_store_ps(phases + c,
                      _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8)));
      _mm256_store_ps(phases + kMaxRow + c,
                      _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(odd), 0xD8)));
    }
  } else {
    for (int64_t q = 0; q < s; ++q) {
      float* ph = phases + q * kMaxRow;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t w = c * s + q - p.pad_left;
        ph[c] = w >= 0 && w < p.in_w ? row[w] : ninf;
      }
    }
  }
  for (int64_t ow = 0; ow < p.out_w; ow += 8) {
    __m256 m = _mm256_set1_ps(ninf);
    for (int64_t j = 0; j < p.kernel_w; ++j) {
      const int64_t t = j * p.dilation_w;
      m = nan_max_lanes(m, _mm256_loadu_ps(phases + (t % s) * kMaxRow + ow + t / s));
    }
    detail::store_first8(yr + ow, m, p.out_w - ow);
  }
}

// Window taps that fall inside the image, per output row and column (computed once per call:
// the divisions stay out of the inner loops).
struct TapRanges {
  int32_t i0[kMaxRow], i1[kMaxRow], j0[kMaxRow], j1[kMaxRow];
  int32_t rows_padded[kMaxRow], cols_padded[kMaxRow];  // taps inside the padded image
};

void tap_ranges(const Pool2dParams& p, TapRanges& t) {
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    int64_t a, b;
    const int64_t h0 = oh * p.stride_h - p.pad_top;
    tap_range(h0, p.kernel_h, p.dilation_h, p.in_h, a, b);
    t.i0[oh] = static_cast<int32_t>(a);
    t.i1[oh] = static_cast<int32_t>(b);
    int32_t padded = 0;
    for (int64_t i = 0; i < p.kernel_h; ++i) {
      const int64_t h = h0 + i * p.dilation_h;
      padded += h >= -p.pad_top && h < p.in_h + p.pad_bottom;
    }
    t.rows_padded[oh] = padded;
  }
  for (int64_t ow = 0; ow < p.out_w; ++ow) {
    int64_t a, b;
    const int64_t w0 = ow * p.stride_w - p.pad_left;
    tap_range(w0, p.kernel_w, p.dilation_w, p.in_w, a, b);
    t.j0[ow] = static_cast<int32_t>(a);
    t.j1[ow] = static_cast<int32_t>(b);
    int32_t padded = 0;
    for (int64_t j = 0; j < p.kernel_w; ++j) {
      const int64_t w = w0 + j * p.dilation_w;
      padded += w >= -p.pad_left && w < p.in_w + p.pad_right;
    }
    t.cols_padded[ow] = padded;
  }
}

struct PoolCtx {
  const Pool2dParams* p;
  const TapRanges* t;
  const float* x;
  float* y;
};

template <bool kMax>
void pool_planes(const PoolCtx& ctx, int64_t begin, int64_t end) {
  const Pool2dParams& p = *ctx.p;
  const TapRanges& t = *ctx.t;
  alignas(64) float rowbuf[kRowBuf];
  float* const row = rowbuf + kRowPad;  // 64-byte aligned: pass 1 stores aligned vectors
  // 2x2 windows with stride 2 and no dilation (the usual max pool): pass 2 reads pairs.
  const bool pairs = p.kernel_w == 2 && p.stride_w == 2 && p.dilation_w == 1;
  alignas(64) float phases[kMax ? kMaxPhases * kMaxRow : 1];
  const bool vector_max = kMax && max_phases_fit(p);
  const bool split2 = vector_max && max_split2_fits(p);
  if (split2) {  // the padding around the row, which pass 1 never writes
    std::fill(rowbuf, row, -std::numeric_limits<float>::infinity());
    float* const reach = row - p.pad_left + 2 * phase_cols8(p);
    std::fill(row + p.in_w, std::max(row + p.in_w, reach), -std::numeric_limits<float>::infinity());
  }
  for (int64_t plane = begin; plane < end; ++plane) {
    const float* xp = ctx.x + plane * p.in_h * p.in_w;
    float* yp = ctx.y + plane * p.out_h * p.out_w;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_top;
      const int64_t i0 = t.i0[oh], i1 = t.i1[oh];
      float* yr = yp + oh * p.out_w;
      if (i1 <= i0) {  // no row of the window is inside the image
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          yr[ow] = kMax ? -std::numeric_limits<float>::infinity()
                        : (p.count_include_pad ? 0.0f : std::numeric_limits<float>::quiet_NaN());
        }
        continue;
      }
      // Pass 1: reduce the window's rows into `row` (W wide).
      const float* r0 = xp + (h0 + i0 * p.dilation_h) * p.in_w;
      detail::copy_floats(row, r0, p.in_w);
      for (int64_t i = i0 + 1; i < i1; ++i) {
        const float* r = xp + (h0 + i * p.dilation_h) * p.in_w;
        if constexpr (kMax) {
          int64_t w = 0;
          for (; w + 8 <= p.in_w; w += 8) {
            _mm256_store_ps(row + w,
                            nan_max_lanes(_mm256_load_ps(row + w), _mm256_loadu_ps(r + w)));
          }
          for (; w < p.in_w; ++w) row[w] = nan_max(row[w], r[w]);
        } else {
          for (int64_t w = 0; w < p.in_w; ++w) row[w] += r[w];
        }
      }
      // Pass 2: reduce across the window's columns.
      if constexpr (kMax) {
        if (vector_max) {
          max_row_phases(p, row, split2, phases, yr);
          continue;
        }
      }
      const int64_t rows_inside = i1 - i0;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_left;
        const int64_t j0 = t.j0[ow], j1 = t.j1[ow];
        if constexpr (kMax) {
          float m = -std::numeric_limits<float>::infinity();
          if (pairs && j1 - j0 == 2) {
            m = nan_max(nan_max(m, row[w0]), row[w0 + 1]);
          } else {
            for (int64_t j = j0; j < j1; ++j) m = nan_max(m, row[w0 + j * p.dilation_w]);
          }
          yr[ow] = m;
        } else {
          float s = 0.0f;
          for (int64_t j = j0; j < j1; ++j) s += row[w0 + j * p.dilation_w];
          const int64_t count =
              p.count_include_pad ? t.rows_padded[oh] * t.cols_padded[ow] : rows_inside * (j1 - j0);
          yr[ow] = s / static_cast<float>(count);
        }
      }
    }
  }
}

// 2x2 windows, stride 2, no dilation, no padding (the usual max pool): both rows and column
// pairs reduced with vector max, 8 outputs per step.
bool is_max_2x2_s2(const Pool2dParams& p) {
  return p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 && p.stride_w == 2 &&
         p.dilation_h == 1 && p.dilation_w == 1 && p.pad_top == 0 && p.pad_left == 0;
}

void max_2x2_s2_planes(const Pool2dParams& p, const float* x, float* y, int64_t begin,
                       int64_t end) {
  const int64_t full = std::min(p.out_w, p.in_w / 2);  // outputs with both columns inside
  for (int64_t plane = begin; plane < end; ++plane) {
    const float* xp = x + plane * p.in_h * p.in_w;
    float* yp = y + plane * p.out_h * p.out_w;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const float* r0 = xp + 2 * oh * p.in_w;
      const float* r1 = 2 * oh + 1 < p.in_h ? r0 + p.in_w : r0;  // ceil_mode: last row alone
      float* yr = yp + oh * p.out_w;
      for (int64_t ow = 0; ow < full; ow += 8) {
        // Up to 8 outputs from 16 columns of both rows; a partial block uses masked moves
        // (masked-off lanes read as 0 and are not stored).
        const int64_t n = std::min<int64_t>(8, full - ow);
        const __m256i lo = detail::first_lanes8(2 * n), hi = detail::first_lanes8(2 * n - 8);
        const __m256 a = detail::nan_max8(_mm256_maskload_ps(r0 + 2 * ow, lo),
                                          _mm256_maskload_ps(r1 + 2 * ow, lo));
        const __m256 b = detail::nan_max8(_mm256_maskload_ps(r0 + 2 * ow + 8, hi),
                                          _mm256_maskload_ps(r1 + 2 * ow + 8, hi));
        // Even and odd columns of the 16, pairwise max, then undo the in-lane interleave.
        const __m256 even = _mm256_shuffle_ps(a, b, 0x88), odd = _mm256_shuffle_ps(a, b, 0xDD);
        const __m256 m = detail::nan_max8(even, odd);
        _mm256_maskstore_ps(yr + ow, detail::first_lanes8(n),
                            _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8)));
      }
      for (int64_t ow = full; ow < p.out_w; ++ow) {  // ceil_mode: a last single column
        float m = nan_max(-std::numeric_limits<float>::infinity(), r0[2 * ow]);
        m = nan_max(m, r1[2 * ow]);
        if (2 * ow + 1 < p.in_w) m = nan_max(nan_max(m, r0[2 * ow + 1]), r1[2 * ow + 1]);
        yr[ow] = m;
      }
    }
  }
}

template <bool kMax>
void pool(const Pool2dParams& p, const float* x, float* y) {
  if (kMax && is_max_2x2_s2(p)) {
    struct Ctx {
      const Pool2dParams* p;
      const float* x;
      float* y;
    } ctx{&p, x, y};
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.in_h * p.in_w));
    parallel_for(0, p.batch * p.channels, grain, [&ctx](int64_t begin, int64_t end) {
      max_2x2_s2_planes(*ctx.p, ctx.x, ctx.y, begin, end);
    });
    return;
  }
  if (p.in_w > kMaxRow || p.out_w > kMaxRow || p.out_h > kMaxRow) {
    return kMax ? ref::max_pool2d_f32(p, x, y) : ref::avg_pool2d_f32(p, x, y);
  }
  TapRanges t;
  tap_ranges(p, t);
  PoolCtx ctx{&p, &t, x, y};
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.in_h * p.in_w));
  parallel_for(0, p.batch * p.channels, grain,
               [&ctx](int64_t begin, int64_t end) { pool_planes<kMax>(ctx, begin, end); });
}

}  // namespace

void max_pool2d_f32(const Pool2dParams& p, const float* x, float* y) { pool<true>(p, x, y); }

namespace {

#ifdef __AVX2__
// gap_rows on 16 rows at once, sums[16] (double): each row's sum in index order as the scalar
// loop's (x[s] widened to double, added one by one), the 16 rows' chains as four 4-lane vectors,
// the rows' values brought into lanes by 8x8 transposes of 8 columns at a time. Returns the
// columns done (a multiple of 8); the caller adds the rest in order.
int64_t gap_16_rows(const float* xr, int64_t spatial, double sums[16]) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
  int64_t s = 0;
  for (; s + 8 <= spatial; s += 8) {
    __m256 a[8], b[8];
    for (int i = 0; i < 8; ++i) {
      a[i] = _mm256_loadu_ps(xr + i * spatial + s);
      b[i] = _mm256_loadu_ps(xr + (i + 8) * spatial + s);
    }
    detail::transpose8x8(a);
    detail::transpose8x8(b);
    for (int j = 0; j < 8; ++j) {  // column s + j, in order
      acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a[j])));
      acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(a[j], 1)));
      acc[2] = _mm256_add_pd(acc[2], _mm256_cvtps_pd(_mm256_castps256_ps128(b[j])));
      acc[3] = _mm256_add_pd(acc[3], _mm256_cvtps_pd(_mm256_extractf128_ps(b[j], 1)));
    }
  }
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(sums + 4 * k, acc[k]);
  return s;
}
#endif

void gap_rows(int64_t r0, int64_t r1, int64_t spatial, const float* x, float* y) {
  constexpr int kRows = 8;
  const double n = static_cast<double>(spatial);
  int64_t r = r0;
#ifdef __AVX2__
  if (spatial >= 8) {
    for (; r + 16 <= r1; r += 16) {
      double sum[16];
      const float* xr = x + r * spatial;
      const int64_t done = gap_16_rows(xr, spatial, sum);
      for (int64_t s = done; s < spatial; ++s) {
        for (int l = 0; l < 16; ++l) sum[l] += xr[l * spatial + s];
      }
      for (int l = 0; l < 16; ++l) y[r + l] = static_cast<float>(sum[l] / n);
    }
  }
#endif
  for (; r + kRows <= r1; r += kRows) {
    double sum[kRows] = {};
    const float* xr = x + r * spatial;
    for (int64_t s = 0; s < spatial; ++s) {
      for (int l = 0; l < kRows; ++l) sum[l] += xr[l * spatial + s];
    }
    for (int l = 0; l < kRows; ++l) y[r + l] = static_cast<float>(sum[l] / n);
  }
  for (; r < r1; ++r) {
    double sum = 0.0;
    for (int64_t s = 0; s < spatial; ++s) sum += x[r * spatial + s];
    y[r] = static_cast<float>(sum / n);
  }
}

}  // namespace

void global_avg_pool_f32(int64_t rows, int64_t spatial, const float* x, float* y) {
  const int64_t grain = std::max<int64_t>(8, 65536 / std::max<int64_t>(1, spatial));
  parallel_for(0, rows, grain,
               [=](int64_t begin, int64_t end) { gap_rows(begin, end, spatial, x, y); });
}
void avg_pool2d_f32(const Pool2dParams& p, const float* x, float* y) { pool<false>(p, x, y); }

}  // namespace qsearch::kernels
