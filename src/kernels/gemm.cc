#include "kernels/gemm.h"

#include <algorithm>

#include "core/check.h"
#include "core/thread_pool.h"
#include "kernels/ukernel.h"

namespace qsearch::kernels {

namespace detail {
const UKernelInfo& ukernel_for(Isa isa) {
  QSEARCH_CHECK(isa_supported(isa));
  return isa == Isa::kAvx512 ? ukernel_avx512() : ukernel_avx2();
}
}  // namespace detail

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return true;  // the build's baseline (-march=x86-64-v3)
    case Isa::kAvx512: {
      static const bool has = __builtin_cpu_supports("avx512f");
      return has;
    }
  }
  return false;
}

Isa best_isa() { return isa_supported(Isa::kAvx512) ? Isa::kAvx512 : Isa::kAvx2; }

const char* isa_name(Isa isa) { return isa == Isa::kAvx512 ? "avx512" : "avx2"; }

TileShape tile_shape(Isa isa) {
  const auto& u = detail::ukernel_for(isa);
  return {u.mr, u.nr};
}

PackedB pack_b(const float* b, int64_t k, int64_t n, bool trans, Isa isa) {
  const auto& u = detail::ukernel_for(isa);
  PackedB p;
  p.isa = isa;
  p.nr = u.nr;
  p.k = k;
  p.n = n;
  const int64_t panels = (n + u.nr - 1) / u.nr;
  p.data = Tensor({std::max<int64_t>(1, panels * k * u.nr)}, DType::kFloat32);  // zeroed
  float* dst = p.data.data<float>();
  for (int64_t j = 0; j < panels; ++j) {
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t c = 0; c < u.nr; ++c) {
        const int64_t col = j * u.nr + c;
        if (col < n) dst[(j * k + kk) * u.nr + c] = trans ? b[col * k + kk] : b[kk * n + col];
      }
    }
  }
  return p;
}

namespace {

// Copies rows [0, rows) and columns [k0, k0 + kc) of A (row stride lda) into MR-row panels
// [tile][kc][MR], zero-filling rows past `rows` of the last tile.
template <int MR>
void pack_a_tiles(const float* a, int64_t lda, int64_t rows, int64_t k0, int64_t kc, float* dst) {
  // A zero row for the rows past `rows` of the last tile (kc <= kKc).
  alignas(64) static const float zeros[detail::kKc] = {};
  const int64_t tiles = (rows + MR - 1) / MR;
  for (int64_t t = 0; t < tiles; ++t) {
    float* panel = dst + t * kc * MR;
    const float* src[MR];
    for (int i = 0; i < MR; ++i) {
      const int64_t row = t * MR + i;
      src[i] = row < rows ? a + row * lda + k0 : zeros;
    }
    // k outer, the tile's rows inner: the panel is written in order (the rows are MR streams).
    for (int64_t kk = 0; kk < kc; ++kk) {
      for (int i = 0; i < MR; ++i) panel[kk * MR + i] = src[i][kk];
    }
  }
}

void pack_a_block(const float* a, int64_t lda, int64_t rows, int64_t k0, int64_t kc, int mr,
                  float* dst) {
  switch (mr) {
    case 6:
      return pack_a_tiles<6>(a, lda, rows, k0, kc, dst);
    case 8:
      return pack_a_tiles<8>(a, lda, rows, k0, kc, dst);
    default:
      break;
  }
  const int64_t tiles = (rows + mr - 1) / mr;
  for (int64_t t = 0; t < tiles; ++t) {
    float* panel = dst + t * kc * mr;
    for (int i = 0; i < mr; ++i) {
      const int64_t row = t * mr + i;
      if (row < rows) {
        const float* src = a + row * lda + k0;
        for (int64_t kk = 0; kk < kc; ++kk) panel[kk * mr + i] = src[kk];
      } else {
        for (int64_t kk = 0; kk < kc; ++kk) panel[kk * mr + i] = 0.0f;
      }
    }
  }
}

// Upper bounds of the tile geometry over all ISAs, for stack buffers.
constexpr int kMaxMr = 8;
constexpr int64_t kPanelsPerBlock = 16;  // column panels per work item (measured)

}  // namespace

void gemm_f32_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* y,
                     int64_t ldy, const Epilogue& ep) {
  const auto& u = detail::ukernel_for(b.isa);
  QSEARCH_DCHECK(u.nr == b.nr && u.mr <= kMaxMr);
  const int64_t k = b.k, n = b.n;
  if (m <= 0 || n <= 0) return;
  const int64_t mc = detail::kMcTiles * u.mr;
  const int64_t m_blocks = (m + mc - 1) / mc;
  const int64_t panels = (n + u.nr - 1) / u.nr;
  const int64_t n_blocks = (panels + kPanelsPerBlock - 1) / kPanelsPerBlock;

  struct Ctx {
    const detail::UKernelInfo* u;
    int64_t m, k, n, lda, ldy, mc, panels, n_blocks;
    const float* a;
    const PackedB* b;
    float* y;
    const Epilogue* ep;
  } ctx{&u, m, k, n, lda, ldy, mc, panels, n_blocks, a, &b, y, &ep};

  // Items walk row blocks fastest so that consecutive items of one chunk reuse column panels.
  parallel_for(0, m_blocks * n_blocks, 1, [&ctx](int64_t begin, int64_t end) {
    const detail::UKernelInfo& u = *ctx.u;
    alignas(64) float abuf[detail::kMcTiles * kMaxMr * detail::kKc];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t mb = item % ((ctx.m + ctx.mc - 1) / ctx.mc);
      const int64_t nb = item / ((ctx.m + ctx.mc - 1) / ctx.mc);
      const int64_t m0 = mb * ctx.mc;
      const int64_t rows = std::min(ctx.mc, ctx.m - m0);
      const int64_t tiles = (rows + u.mr - 1) / u.mr;
      const int64_t p0 = nb * kPanelsPerBlock;
      const int64_t p1 = std::min(ctx.panels, p0 + kPanelsPerBlock);
      for (int64_t k0 = 0; k0 < ctx.k || k0 == 0; k0 += detail::kKc) {
        const int64_t kc = std::min(detail::kKc, ctx.k - k0);
        const bool last = k0 + kc >= ctx.k;
        pack_a_block(ctx.a + m0 * ctx.lda, ctx.lda, rows, k0, kc, u.mr, abuf);
        for (int64_t j = p0; j < p1; ++j) {
          const int64_t col0 = j * u.nr;
          const int nr = static_cast<int>(std::min<int64_t>(u.nr, ctx.n - col0));
          const float* bpanel = ctx.b->panel(j) + k0 * u.nr;
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t row0 = m0 + t * u.mr;
            const int mr = static_cast<int>(std::min<int64_t>(u.mr, ctx.m - row0));
            detail::TileEpilogue tep;
            if (last) {
              tep.alpha = ctx.ep->alpha;
              tep.bias = ctx.ep->bias != nullptr ? ctx.ep->bias + col0 : nullptr;
              tep.bias_per_row = false;
              tep.residual = ctx.ep->residual != nullptr
                                 ? ctx.ep->residual + row0 * ctx.ep->residual_stride + col0
                                 : nullptr;
              tep.residual_stride = ctx.ep->residual_stride;
              tep.residual_after_clamp = ctx.ep->residual_after_clamp;
              tep.lo = ctx.ep->clamp_min;
              tep.hi = ctx.ep->clamp_max;
            }
            u.fn(kc, abuf + t * kc * u.mr, bpanel, nullptr, ctx.y + row0 * ctx.ldy + col0, ctx.ldy,
                 mr, nr, k0 > 0, last ? &tep : nullptr);
          }
        }
        if (ctx.k == 0) break;
      }
    }
  });
}

}  // namespace qsearch::kernels
