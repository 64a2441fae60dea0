// Fast float GEMM with pre-packed weights: cache-blocked, AVX2+FMA or AVX-512 microkernels,
// multi-threaded with parallel_for, and a fused epilogue (scale, bias, residual, clamp).
//
//   // PyTorch Linear / ONNX Gemm(transB=1): y[M, N] = relu(x[M, K] * w[N, K]^T + bias[N])
//   PackedB pw = pack_b(w, /*k=*/K, /*n=*/N, /*trans=*/true);      // once, at plan time
//   Epilogue ep{.bias = bias, .clamp_min = 0.0f};
//   gemm_f32_packed(M, x, /*lda=*/K, pw, y, /*ldy=*/N, ep);          // per batch
//
// Math (index notation, k summed in ascending order, one FMA rounding per step):
//   acc[m, n] = sum_k A[m, k] * B[k, n]
//   Y[m, n]   = min(max(fma(alpha, acc[m, n], bias[n]) + R[m, n], clamp_min), clamp_max)
//               (or min(max(fma(...), clamp_min), clamp_max) + R[m, n] with residual_after_clamp)
// Each output element is computed by exactly one microkernel call chain with that fixed order,
// so results do not depend on the thread count or on how the work is split (see
// docs/numerics.md "Float kernels" for the error bound against kernels/ref/gemm.h).
//
// ISA: kernels are chosen per packed operand: pack_*(..., isa) records the tile geometry of
// `isa`; best_isa() is the widest the CPU supports (AVX-512F via __builtin_cpu_supports,
// otherwise the AVX2+FMA baseline of the build). Tests pass Isa::kAvx2 to force the narrower
// path. Ownership: a PackedB owns its data (a Tensor) and is immutable after packing; share it
// across threads freely.
#pragma once

#include <cstdint>
#include <limits>

#include "core/tensor.h"

namespace qsearch::kernels {

enum class Isa : uint8_t { kAvx2, kAvx512 };

// Widest ISA this CPU runs (checked once).
Isa best_isa();
// True when the CPU can run kernels of `isa`.
bool isa_supported(Isa isa);
// "avx2" / "avx512".
const char* isa_name(Isa isa);

// Microkernel tile: MR rows x NR columns of the output per call.
struct TileShape {
  int mr;
  int nr;
};
TileShape tile_shape(Isa isa);

// What happens to each accumulated value before it is stored. `bias` is indexed by output
// column in gemm_f32_packed and by output channel in conv2d_f32_packed; `residual` has the
// output's layout (row stride `residual_stride` in gemm; the output's NCHW layout in conv).
// NaN propagates through the clamp (like PyTorch's relu / clamp).
struct Epilogue {
  float alpha = 1.0f;
  const float* bias = nullptr;
  const float* residual = nullptr;
  int64_t residual_stride = 0;
  // false: clamp(fma + R) (Add then Relu); true: clamp(fma) + R (Relu then Add, e.g. a
  // residual block ending in relu(bn(conv(x))) + x).
  bool residual_after_clamp = false;
  float clamp_min = -std::numeric_limits<float>::infinity();
  float clamp_max = std::numeric_limits<float>::infinity();
  // conv2d_f32_packed only (gemm_f32_packed does not read it): y = v * sigmoid(v) of the value v
  // above, with sigmoid as vmath's (the same bits as a separate Sigmoid and Mul).
  bool silu = false;
};

// B [K, N] split into ceil(N / NR) panels of NR columns, each stored k-major ([K][NR]) and
// zero-padded to NR columns.
struct PackedB {
  Isa isa = Isa::kAvx2;
  int nr = 0;
  int64_t k = 0, n = 0;
  Tensor data;  // float32 [panels * K * NR]
  const float* panel(int64_t j) const { return data.data<float>() + j * k * nr; }
};

// Packs B = b ([K, N] row-major), or b^T when trans (b stored [N, K], PyTorch's Linear weight).
PackedB pack_b(const float* b, int64_t k, int64_t n, bool trans, Isa isa = best_isa());

// pack_b(w, k, n, trans, isa) without a second buffer: w (float32 [K, N], or [N, K] when trans;
// contiguous, 32-byte aligned, N a multiple of tile_shape(isa).nr) is rewritten into the panel
// layout in place and becomes out's data. For a caller that owns w and will not read it again
// (`qsearch eval` packing an 80 MB linear while the graph still holds it: one copy at the peak
// instead of two). Returns false, w untouched, when the conditions do not hold.
bool pack_b_in_place(Tensor& w, int64_t k, int64_t n, bool trans, Isa isa, PackedB* out);

// Y[M, N] (row stride ldy) = epilogue(A[M, K] (row stride lda) * B). Parallel over row and
// column blocks; nested inside a parallel_for it runs inline. Y must overlap neither A nor the
// residual.
void gemm_f32_packed(int64_t m, const float* a, int64_t lda, const PackedB& b, float* y,
                     int64_t ldy, const Epilogue& epilogue);

}  // namespace qsearch::kernels
