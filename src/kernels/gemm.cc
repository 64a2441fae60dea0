#include "kernels/gemm.h"

#include <algorithm>
#include <cstdint>
#include <vector>

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

bool pack_b_in_place(Tensor& w, int64_t k, int64_t n, bool trans, Isa isa, PackedB* out) {
  const auto& u = detail::ukernel_for(isa);
  if (w.empty() || w.dtype() != DType::kFloat32 || w.numel() != k * n || k <= 0 || n <= 0 ||
      n % u.nr != 0 || reinterpret_cast<uintptr_t>(w.raw()) % 32 != 0) {
    return false;
  }
  float* d = w.data<float>();
  const int64_t nr = u.nr, panels = n / nr;
  if (trans) {
    // [N, K]: panel j occupies exactly the bytes of its NR source rows; transpose them through a
    // copy of those rows.
    std::vector<float> rows(static_cast<size_t>(nr * k));
    for (int64_t j = 0; j < panels; ++j) {
      float* panel = d + j * k * nr;
      std::copy(panel, panel + nr * k, rows.begin());
      for (int64_t c = 0; c < nr; ++c) {
        const float* src = rows.data() + c * k;
        for (int64_t kk = 0; kk < k; ++kk) panel[kk * nr + c] = src[kk];
      }
    }
  } else {
    // [K, N] as a K x panels matrix of NR-float blocks; the packed form is its transpose
    // (block (kk, j) moves from kk * panels + j to j * K + kk): follow each permutation cycle
    // once, carrying one block.
    const int64_t blocks = k * panels;
    std::vector<bool> done(static_cast<size_t>(blocks), false);
    std::vector<float> carry(static_cast<size_t>(nr)), next(static_cast<size_t>(nr));
    for (int64_t start = 0; start < blocks; ++start) {
      if (done[start]) continue;
      std::copy(d + start * nr, d + (start + 1) * nr, carry.begin());
      int64_t pos = start;
      do {
        const int64_t dest = (pos % panels) * k + pos / panels;
        std::copy(d + dest * nr, d + (dest + 1) * nr, next.begin());
        std::copy(carry.begin(), carry.end(), d + dest * nr);
        carry.swap(next);
        done[dest] = true;
        pos = dest;
      } while (pos != start);
    }
  }
  out->isa = isa;
  out->nr = u.nr;
  out->k = k;
  out->n = n;
  out->data = w.reshaped({n * k});
  return true;
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

namespace {

// Few rows (a linear layer at batch 1-64, detail::kFewRows): the threads split only the
// columns, in a few large items, and each item walks K in blocks of kSmallKc, packing that block
// of all the rows of A into a stack buffer and running every row tile over each of its column
// panels, so that each weight panel is read from memory once per call and reused from L1 by all
// the tiles (the row-blocked path below re-reads the whole of B once per block of kMcTiles tiles,
// and packs its rows of A once per column block). Same arithmetic per output element as that
// path: one FMA chain in ascending k with exact float stores and reloads between k-blocks, the
// epilogue at the last one. No allocation: the buffer is on the stack.
constexpr int64_t kSmallKc = detail::kFewRowsKc;  // a 16-column panel's block is 16 KB: in L1
constexpr int64_t kSmallABuf = (detail::kFewRows + kMaxMr) * kSmallKc;  // floats
static_assert(kMaxMr * detail::kKc <= kSmallABuf, "one tile's K block fits the buffer");

struct SmallJob {
  const detail::UKernelInfo* u;
  int64_t m, k, n, lda, ldy, tiles, kc_max, k_blocks, panels, panels_per_item;
  const float* a;
  const PackedB* b;
  float* y;
  const Epilogue* ep;

  void run(int64_t item0, int64_t item1) const {
    alignas(64) float abuf[kSmallABuf];
    const int mr_full = u->mr;
    for (int64_t item = item0; item < item1; ++item) {
      const int64_t p0 = item * panels_per_item;
      const int64_t p1 = std::min(panels, p0 + panels_per_item);
      for (int64_t kb = 0; kb < k_blocks; ++kb) {
        const int64_t k0 = kb * kc_max;
        const int64_t kc = std::min(kc_max, k - k0);
        const bool last = kb + 1 == k_blocks;
        pack_a_block(a, lda, m, k0, kc, mr_full, abuf);
        for (int64_t j = p0; j < p1; ++j) {
          const int64_t col0 = j * u->nr;
          const int nr = static_cast<int>(std::min<int64_t>(u->nr, n - col0));
          const float* bpanel = b->panel(j) + k0 * u->nr;
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t row0 = t * mr_full;
            const int mr = static_cast<int>(std::min<int64_t>(mr_full, m - row0));
            detail::TileEpilogue tep;
            if (last) {
              tep.alpha = ep->alpha;
              tep.bias = ep->bias != nullptr ? ep->bias + col0 : nullptr;
              tep.bias_per_row = false;
              tep.residual = ep->residual != nullptr
                                 ? ep->residual + row0 * ep->residual_stride + col0
                                 : nullptr;
              tep.residual_stride = ep->residual_stride;
              tep.residual_after_clamp = ep->residual_after_clamp;
              tep.lo = ep->clamp_min;
              tep.hi = ep->clamp_max;
            }
            u->fn(kc, abuf + t * kc * mr_full, bpanel, nullptr, y + row0 * ldy + col0, ldy, mr, nr,
                  kb > 0, last ? &tep : nullptr);
          }
        }
      }
    }
  }
};

void gemm_small_m(const detail::UKernelInfo& u, int64_t m, const float* a, int64_t lda,
                  const PackedB& b, float* y, int64_t ldy, const Epilogue& ep) {
  SmallJob job;
  job.u = &u;
  job.m = m;
  job.k = b.k;
  job.n = b.n;
  job.lda = lda;
  job.ldy = ldy;
  job.tiles = (m + u.mr - 1) / u.mr;
  // One row tile reuses nothing from L1: longer contiguous runs of each panel (kKc) stream
  // better (batch 1 is bound by reading the weights).
  job.kc_max = job.tiles == 1 ? detail::kKc : kSmallKc;
  job.k_blocks = (b.k + job.kc_max - 1) / job.kc_max;
  job.panels = (b.n + u.nr - 1) / u.nr;
  // About 2 items per thread (each packs A once more), at least 4 panels each.
  job.panels_per_item = std::max<int64_t>(
      4, (job.panels + 2 * num_threads() - 1) / (2 * static_cast<int64_t>(num_threads())));
  job.a = a;
  job.b = &b;
  job.y = y;
  job.ep = &ep;
  const SmallJob* shared = &job;
  const int64_t items = (job.panels + job.panels_per_item - 1) / job.panels_per_item;
  parallel_for(0, items, 1, [shared](int64_t i0, int64_t i1) { shared->run(i0, i1); });
}

}  // namespace

void gemm_f32_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* y,
                     int64_t ldy, const Epilogue& ep) {
  const auto& u = detail::ukernel_for(b.isa);
  QSEARCH_DCHECK(u.nr == b.nr && u.mr <= kMaxMr);
  const int64_t k = b.k, n = b.n;
  if (m <= 0 || n <= 0) return;
  if (m <= detail::kFewRows && k > 0) {
    return gemm_small_m(u, m, a, lda, b, y, ldy, ep);
  }
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
