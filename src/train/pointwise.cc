// Pointwise (1x1, stride 1, unpadded, one group) convolutions: forward and input gradient as
// per-image products of a small weight matrix with the [channels, pixels] plane stack, read and
// written in place (declared in train/grad_kernels.h).
//
// Y[n] = W X[n] and dX[n] = W^T dY[n] are GEMMs whose left operand (the weights, at most a few
// hundred rows by a few hundred columns) is tiny and whose right operand is an image already in
// row-major [K, pixels] order. The tile below keeps 6 rows x 16 pixels of the result in 12
// registers and reads the image's rows straight from X (no packing, no column buffer, no
// scatter); the last < 16 pixels of a row go through a zero-padded copy. Every result element
// is one chain of FMAs in k order inside one image's item, so the bits do not depend on the
// thread count.
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

constexpr int kRows = 6;   // result rows per tile
constexpr int kCols = 16;  // result pixels per tile (two 8-lane vectors)

// c[r * ldc + j] = bias[r] + sum over k in order of a[r * k + kk] * b[kk * ldb + j], r < 6,
// j < 16 (b readable for 16 columns, a for 6 rows). Twelve named accumulators: an array of them
// is kept on the stack by the compiler.
void tile(const float* a, int64_t k, const float* b, int64_t ldb, const float* bias, float* c,
          int64_t ldc) {
#ifdef __AVX2__
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b + kk * ldb);
    const __m256 b1 = _mm256_loadu_ps(b + kk * ldb + 8);
    __m256 av = _mm256_broadcast_ss(a + kk);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + k + kk);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2 * k + kk);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3 * k + kk);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4 * k + kk);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5 * k + kk);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  const __m256 acc[kRows][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < kRows; ++r) {
    const __m256 vb = _mm256_set1_ps(bias[r]);
    _mm256_storeu_ps(c + r * ldc, _mm256_add_ps(acc[r][0], vb));
    _mm256_storeu_ps(c + r * ldc + 8, _mm256_add_ps(acc[r][1], vb));
  }
#else
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < kCols; ++j) {
      float acc = 0.0f;
      for (int64_t kk = 0; kk < k; ++kk) acc = std::fma(a[r * k + kk], b[kk * ldb + j], acc);
      c[r * ldc + j] = acc + bias[r];
    }
  }
#endif
}

// C[n] [rows, pixels] = A [rows, k] B[n] [k, pixels] (+ bias per row) for every image n; B[n]
// and C[n] are b_stride and c_stride floats apart. A and the bias are padded with zero rows to
// whole tiles; a partial tile (the last < 6 rows, the last < 16 pixels) goes through a
// zero-padded copy of its columns and a temporary result.
void small_a_gemm(const float* a, int64_t rows, int64_t k, const float* b, int64_t b_stride,
                  int64_t images, int64_t pixels, const float* bias, float* c, int64_t c_stride,
                  const ItemLoop* with = nullptr) {
  const int64_t full = pixels / kCols * kCols, tail = pixels - full;
  const int64_t tiles = (rows + kRows - 1) / kRows;
  std::vector<float> ap(tiles * kRows * k, 0.0f), bp(tiles * kRows, 0.0f);
  std::copy(a, a + rows * k, ap.begin());
  if (bias != nullptr) std::copy(bias, bias + rows, bp.begin());
  auto body = [&](int64_t n0, int64_t n1) {
    thread_local std::vector<float> bt, ct;  // the tail columns, zero-padded to 16
    bt.resize(k * kCols);
    ct.resize(kRows * kCols);
    for (int64_t n = n0; n < n1; ++n) {
      const float* bn = b + n * b_stride;
      float* cn = c + n * c_stride;
      if (tail > 0) {
        for (int64_t kk = 0; kk < k; ++kk) {
          float* dst = bt.data() + kk * kCols;
          std::copy(bn + kk * pixels + full, bn + kk * pixels + pixels, dst);
          std::fill(dst + tail, dst + kCols, 0.0f);
        }
      }
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t r0 = t * kRows, r = std::min<int64_t>(kRows, rows - r0);
        const float* at = ap.data() + r0 * k;
        const float* bias_t = bp.data() + r0;
        for (int64_t j = 0; j < full; j += kCols) {
          if (r == kRows) {
            tile(at, k, bn + j, pixels, bias_t, cn + r0 * pixels + j, pixels);
            continue;
          }
          tile(at, k, bn + j, pixels, bias_t, ct.data(), kCols);
          for (int64_t i = 0; i < r; ++i) {
            std::copy(ct.data() + i * kCols, ct.data() + (i + 1) * kCols,
                      cn + (r0 + i) * pixels + j);
          }
        }
        if (tail > 0) {
          tile(at, k, bt.data(), kCols, bias_t, ct.data(), kCols);
          for (int64_t i = 0; i < r; ++i) {
            std::copy(ct.data() + i * kCols, ct.data() + i * kCols + tail,
                      cn + (r0 + i) * pixels + full);
          }
        }
      }
    }
  };
  const ItemLoop loop{images, 1, body};
  if (with == nullptr) {
    parallel_loops({loop});
  } else {
    parallel_loops({loop, *with});
  }
}

}  // namespace

bool pointwise_conv_applies(const kernels::Conv2dParams& p) {
  return p.groups == 1 && p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 &&
         p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 && p.out_h == p.in_h &&
         p.out_w == p.in_w;
}

void pointwise_conv_forward(const kernels::Conv2dParams& p, const float* x, const float* w,
                            const float* bias, float* y) {
  const int64_t pixels = p.in_h * p.in_w;
  small_a_gemm(w, p.out_channels, p.in_channels, x, p.in_channels * pixels, p.batch, pixels, bias,
               y, p.out_channels * pixels);
}

void pointwise_conv_input_grad(const kernels::Conv2dParams& p, const float* w, const float* dy,
                               float* dx, const ItemLoop* with) {
  const int64_t pixels = p.in_h * p.in_w;
  std::vector<float> wt(p.in_channels * p.out_channels);  // W^T [in, out]
  transpose(w, p.out_channels, p.in_channels, wt.data());
  small_a_gemm(wt.data(), p.in_channels, p.out_channels, dy, p.out_channels * pixels, p.batch,
               pixels, nullptr, dx, p.in_channels * pixels, with);
}

}  // namespace qsearch::train
