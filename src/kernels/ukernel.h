// Internal: the GEMM microkernels behind gemm.h and conv.h (not for use outside kernels/).
//
// A microkernel computes one MR x NR tile of C from packed panels:
//   acc[i][j] = (accumulate ? C[i][j] : 0) + sum_{k < kc} a[k * MR + i] * b[k * NR + j]
// with one FMA per (i, j, k) in ascending k, then, when `ep` is non-null (last k-block):
//   v = fma(acc, alpha, bias) + residual[i][j]   (bias per row ep->bias[i] or column ep->bias[j])
//   C[i][j] = min(max(v, lo), hi)     (NaN propagates)
// (with residual_after_clamp the residual is added after the clamp instead)
// and stores only rows i < mr and columns j < nr (edge tiles); rows >= mr of `a` must be
// readable (packed panels are zero-padded) and columns >= nr of `b` too.
//
// The packed form reads B row k at b + k * NR (aligned panels); the indirect form reads it at
// b + b_offsets[k] (unaligned, anywhere): the direct convolution points it straight into a
// zero-padded copy of the input image, so that no im2col panel is built.
#pragma once

#include <cstdint>

#include "kernels/gemm.h"

namespace qsearch::kernels::detail {

struct TileEpilogue {
  float alpha;
  const float* bias;  // already offset to the tile's first row / column; nullptr = none
  bool bias_per_row;
  const float* residual;  // tile's first element; nullptr = none
  int64_t residual_stride;
  bool residual_after_clamp;
  float lo, hi;
};

using UKernel = void (*)(int64_t kc, const float* a, const float* b, const int64_t* b_offsets,
                         float* c, int64_t ldc, int mr, int nr, bool accumulate,
                         const TileEpilogue* ep);

struct UKernelInfo {
  int mr, nr;
  UKernel fn;           // packed B (b_offsets unused)
  UKernel fn_indirect;  // B row k at b + b_offsets[k]
};

const UKernelInfo& ukernel_avx2();
const UKernelInfo& ukernel_avx512();
const UKernelInfo& ukernel_for(Isa isa);

// Block sizes of the GEMM driver (measured on bench/float_gemm_bench.cc at the MLP's shapes):
// K in blocks of kKc (so that the MLP's K = 784 is one block and C is never reloaded), rows of
// A in blocks of kMcTiles microkernel tiles (packed on the stack: kMcTiles * MR * kKc floats).
// The convolution's packed-panel path packs kColKc taps at a time (kColKc * NR floats).
inline constexpr int64_t kKc = 1024;
// gemm_f32_packed with at most kFewRows rows splits only the columns between the threads and
// walks K in blocks of kFewRowsKc, each work item packing all rows of a block (gemm.cc, "Few
// rows").
inline constexpr int64_t kFewRows = 64;
inline constexpr int64_t kFewRowsKc = 256;
inline constexpr int64_t kMcTiles = 2;
inline constexpr int64_t kColKc = 256;

}  // namespace qsearch::kernels::detail
