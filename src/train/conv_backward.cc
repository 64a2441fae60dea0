// conv2d_backward (declared in train/grad_kernels.h): im2col + the fast GEMM, chunked over
// images with a chunk size fixed by the shape so that the weight gradient's summation order
// never depends on the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/gemm.h"
#include "train/grad_kernels.h"

namespace qsearch::train {

namespace {
constexpr int64_t kChunkPixels = 4096;

// Per-thread scratch reused across calls (no allocation once warmed up).
struct ConvScratch {
  std::vector<float> col, dyg, dcol;
};
ConvScratch& scratch() {
  thread_local ConvScratch s;
  return s;
}
}  // namespace

void conv2d_backward(const kernels::Conv2dParams& p, const float* x, const float* w,
                     const float* dy, float* dx, float* dw, float* db) {
  const int64_t pixels = p.out_h * p.out_w;
  const int64_t groups = p.groups;
  const int64_t mg = p.out_channels / groups, cg = p.in_channels / groups;
  const int64_t kg = cg * p.kernel_h * p.kernel_w;
  const int64_t in_hw = p.in_h * p.in_w;
  const int64_t chunk = std::max<int64_t>(1, kChunkPixels / std::max<int64_t>(pixels, 1));
  const int64_t chunks = (p.batch + chunk - 1) / chunk;

  kernels::Conv2dParams pg = p;  // one group, one image
  pg.batch = 1;
  pg.in_channels = cg;
  pg.out_channels = mg;
  pg.groups = 1;

  // W_g^T [kg, mg] per group, the A operand of dcol = W_g^T dY_g.
  std::vector<float> wt;
  if (dx != nullptr) {
    wt.resize(groups * kg * mg);
    for (int64_t g = 0; g < groups; ++g)
      transpose(w + g * mg * kg, mg, kg, wt.data() + g * kg * mg);
  }
  std::vector<float> partial(chunks * p.out_channels * kg);

  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    ConvScratch& s = scratch();
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t n0 = c * chunk, nn = std::min(chunk, p.batch - n0);
      const int64_t cols = nn * pixels;
      s.col.resize(kg * cols);
      s.dyg.resize(mg * cols);
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i = 0; i < nn; ++i) {
          const float* xi = x + ((n0 + i) * p.in_channels + g * cg) * in_hw;
          im2col(pg, xi, s.col.data() + i * pixels, cols);
          for (int64_t m = 0; m < mg; ++m) {
            std::memcpy(s.dyg.data() + m * cols + i * pixels,
                        dy + ((n0 + i) * p.out_channels + g * mg + m) * pixels,
                        pixels * sizeof(float));
          }
        }
        // dW_g (this chunk) [mg, kg] = dY_g [mg, cols] * col^T (col is [kg, cols] = B^T).
        const kernels::PackedB colt = kernels::pack_b(s.col.data(), cols, kg, /*trans=*/true);
        kernels::gemm_f32_packed(mg, s.dyg.data(), cols, colt,
                                 partial.data() + (c * p.out_channels + g * mg) * kg, kg, {});
        if (dx == nullptr) continue;
        // dcol [kg, cols] = W_g^T [kg, mg] * dY_g [mg, cols], then scattered back per image.
        s.dcol.resize(kg * cols);
        const kernels::PackedB dyp = kernels::pack_b(s.dyg.data(), mg, cols, /*trans=*/false);
        kernels::gemm_f32_packed(kg, wt.data() + g * kg * mg, mg, dyp, s.dcol.data(), cols, {});
        for (int64_t i = 0; i < nn; ++i) {
          col2im_add(pg, s.dcol.data() + i * pixels, cols,
                     dx + ((n0 + i) * p.in_channels + g * cg) * in_hw);
        }
      }
    }
  });

  const int64_t wsize = p.out_channels * kg;
  parallel_for(0, wsize, 1024, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial[c * wsize + j];
      dw[j] = static_cast<float>(acc);
    }
  });
  if (db != nullptr) {
    parallel_for(0, p.out_channels, 1, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double acc = 0;
        for (int64_t n = 0; n < p.batch; ++n) {
          const float* g = dy + (n * p.out_channels + o) * pixels;
          for (int64_t q = 0; q < pixels; ++q) acc += g[q];
        }
        db[o] = static_cast<float>(acc);
      }
    });
  }
}

}  // namespace qsearch::train
