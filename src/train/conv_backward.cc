// conv2d_backward (declared in train/grad_kernels.h).
//
// dW: per chunk of images (a chunk size fixed by the shape, so the summation order never
// depends on the thread count), one GEMM dY_g [mg, pixels] x col^T with the im2col matrix packed
// straight from the images (train/packing.h); chunk results are summed in chunk order.
// dX: for stride 1 the adjoint is itself a convolution -- of dY, padded by dilation*(k-1) - pad,
// with the weights flipped in space and transposed in (in, out) -- so the fast implicit-GEMM
// kernel (kernels/conv.h) computes it with no column buffer (a pointwise conv's is the tile of
// pointwise.cc); other strides go through W_g^T dY_g and col2im.
// Convolutions with one input channel per group and at most 4 output channels per group
// (depthwise) skip the GEMMs, whose inner dimension would be a handful of taps: dW and dX come
// from the grid kernels of depthwise.cc.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "train/grad_kernels.h"
#include "train/packing.h"

namespace qsearch::train {

namespace {
constexpr int64_t kChunkPixels = 4096;

// Per-thread scratch reused across calls (no allocation once warmed up).
struct ConvScratch {
  kernels::PackedB cols, dyp;
  std::vector<float> dyg, dcol;
};
ConvScratch& scratch() {
  thread_local ConvScratch s;
  return s;
}

// dX of a stride-1 convolution as the convolution of dY with the flipped, transposed weights.
// Returns false when the padding does not allow it (pad > dilation * (k - 1)).
bool input_grad_by_conv(const kernels::Conv2dParams& p, const float* w, const float* dy,
                        float* dx) {
  if (p.stride_h != 1 || p.stride_w != 1) return false;
  const int64_t pt = p.dilation_h * (p.kernel_h - 1) - p.pad_top;
  const int64_t pl = p.dilation_w * (p.kernel_w - 1) - p.pad_left;
  if (pt < 0 || pl < 0) return false;
  const int64_t g = p.groups, mg = p.out_channels / g, cg = p.in_channels / g;
  const int64_t kk = p.kernel_h * p.kernel_w;
  // w_t[g*cg + c][m][kh-1-i][kw-1-j] = W[g*mg + m][c][i][j]
  std::vector<float> wt(p.out_channels * cg * kk);
  for (int64_t gi = 0; gi < g; ++gi) {
    for (int64_t m = 0; m < mg; ++m) {
      for (int64_t c = 0; c < cg; ++c) {
        const float* src = w + ((gi * mg + m) * cg + c) * kk;
        float* dst = wt.data() + ((gi * cg + c) * mg + m) * kk;
        for (int64_t t = 0; t < kk; ++t) dst[kk - 1 - t] = src[t];
      }
    }
  }
  const kernels::PackedConvWeights packed =
      kernels::pack_conv_weights(wt.data(), p.in_channels, mg, p.kernel_h, p.kernel_w, g);
  kernels::Conv2dParams q;
  q.batch = p.batch;
  q.in_channels = p.out_channels;
  q.in_h = p.out_h;
  q.in_w = p.out_w;
  q.out_channels = p.in_channels;
  q.out_h = p.in_h;
  q.out_w = p.in_w;
  q.kernel_h = p.kernel_h;
  q.kernel_w = p.kernel_w;
  q.dilation_h = p.dilation_h;
  q.dilation_w = p.dilation_w;
  q.pad_top = pt;
  q.pad_left = pl;
  q.groups = g;
  kernels::conv2d_f32_packed(q, dy, packed, dx, {});
  return true;
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

  // One input channel per group and few output channels (depthwise): the GEMMs would be one row
  // by a handful of taps. Many output channels (a patch embedding) keep the GEMMs.
  const bool one_channel = cg == 1 && mg <= 4;
  const bool pointwise = dx != nullptr && pointwise_conv_applies(p);
  const bool dx_by_conv =
      dx != nullptr && !one_channel && !pointwise && input_grad_by_conv(p, w, dy, dx);
  const bool dx_by_col2im = dx != nullptr && !dx_by_conv && !one_channel && !pointwise;
  std::vector<float> wt;  // W_g^T [kg, mg] per group, for dcol = W_g^T dY_g
  if (dx_by_col2im) {
    std::fill(dx, dx + p.batch * p.in_channels * in_hw, 0.0f);
    wt.resize(groups * kg * mg);
    for (int64_t g = 0; g < groups; ++g) {
      transpose(w + g * mg * kg, mg, kg, wt.data() + g * kg * mg);
    }
  }
  std::vector<float> partial(chunks * p.out_channels * kg);

  auto dw_chunks = [&](int64_t c0, int64_t c1) {
    ConvScratch& s = scratch();
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t n0 = c * chunk, nn = std::min(chunk, p.batch - n0);
      const int64_t cols = nn * pixels;
      s.dyg.resize(mg * cols);
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i = 0; i < nn; ++i) {
          for (int64_t m = 0; m < mg; ++m) {
            std::memcpy(s.dyg.data() + m * cols + i * pixels,
                        dy + ((n0 + i) * p.out_channels + g * mg + m) * pixels,
                        pixels * sizeof(float));
          }
        }
        // dW_g (this chunk) [mg, kg] = dY_g [mg, cols] * col^T.
        pack_conv_columns(pg, x + (n0 * p.in_channels + g * cg) * in_hw, p.in_channels * in_hw, nn,
                          s.cols);
        kernels::gemm_f32_packed(mg, s.dyg.data(), cols, s.cols,
                                 partial.data() + (c * p.out_channels + g * mg) * kg, kg, {});
        if (!dx_by_col2im) continue;
        // dcol [kg, cols] = W_g^T [kg, mg] * dY_g [mg, cols], scattered back per image.
        s.dcol.resize(kg * cols);
        pack_b_into(s.dyg.data(), mg, cols, /*trans=*/false, s.dyp);
        kernels::gemm_f32_packed(kg, wt.data() + g * kg * mg, mg, s.dyp, s.dcol.data(), cols, {});
        for (int64_t i = 0; i < nn; ++i) {
          col2im_add(pg, s.dcol.data() + i * pixels, cols,
                     dx + ((n0 + i) * p.in_channels + g * cg) * in_hw);
        }
      }
    }
  };
  // dX (depthwise, pointwise) and dW in one parallel region: one fork-join per layer.
  if (one_channel) {
    // (A 1x1 conv of one input channel is both: its dX is the pointwise kernel's.)
    one_channel_conv_backward(p, x, w, dy, pointwise ? nullptr : dx, chunk, chunks, partial.data());
    if (pointwise) pointwise_conv_input_grad(p, w, dy, dx);
  } else {
    const ItemLoop dw_loop{chunks, 1, dw_chunks};
    if (pointwise) {
      pointwise_conv_input_grad(p, w, dy, dx, &dw_loop);
    } else {
      parallel_loops({dw_loop});
    }
  }

  const int64_t wsize = p.out_channels * kg;
  auto reduce = [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial[c * wsize + j];
      dw[j] = static_cast<float>(acc);
    }
  };
  // A few microseconds of adds (mobilenet-s: at most 4096 weights x 13 chunks) are cheaper than
  // a fork-join.
  if (wsize * chunks <= (1 << 16)) {
    reduce(0, wsize);
  } else {
    parallel_for(0, wsize, 1024, reduce);
  }
  if (db != nullptr) {
    parallel_for(0, p.out_channels, 1, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        // Per image: 8 float lanes (vectorisable, fixed order), then summed in double.
        double acc = 0;
        for (int64_t n = 0; n < p.batch; ++n) {
          const float* g = dy + (n * p.out_channels + o) * pixels;
          float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t q = 0;
          for (; q + 8 <= pixels; q += 8) {
            for (int l = 0; l < 8; ++l) lane[l] += g[q + l];
          }
          double image = 0;
          for (int l = 0; l < 8; ++l) image += lane[l];
          for (; q < pixels; ++q) image += g[q];
          acc += image;
        }
        db[o] = static_cast<float>(acc);
      }
    });
  }
}

}  // namespace qsearch::train
