// Internal to kernels/fixed: the register-tile micro-kernels behind gemm() and how one is chosen.
//
// A tile is kMr rows x kNr = 16 columns of raw sums S[r, j] = sum_k A'[r, k] * B'[k, j] over a
// range of k-groups, where A' is the prepared activation block and B' one packed panel:
//   kPairs:  A' int16 [rows][kp], B' int8|int16 [kp/2][16][2]  (vpmaddwd: 2 products per lane)
//   kQuads:  A' uint8 [rows][kp], B' int8 [kp/4][16][4]        (vpdpbusd: 4 products per lane;
//            signed A is stored as A + 128, corrected by PackedWeights::correction())
//   kWide32: A' int32 [rows][k],  B' int32 [k][16]              (64-bit products)
// Prepared A blocks always have a multiple of kMr rows (zero rows at the end), so kernels never
// branch on the row count.
//
// Tile32 kernels sum in int32 lanes modulo 2^32: exact whenever the true sum fits int32 (the
// wrap-around of vpmaddwd's (-32768)^2 * 2 and of the +128 trick cancels modulo 2^32). Tile64
// kernels sum in int64. For an int64 accumulator a Tile32 kernel may also be run over blocks of
// `block` groups small enough that no block can leave int32, widening after each block.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/fixed/gemm.h"

namespace qsearch::kernels::fixed {
class Epilogue;
class ChannelLanes;
enum class QuantizeStore : uint8_t;
}  // namespace qsearch::kernels::fixed

namespace qsearch::kernels::fixed::detail {

inline constexpr int kNr = 16;

// out[r * 16 + j], r < kMr of the kernel. `a` points at the first row's first group, `a_stride`
// is the prepared row stride in elements; `b` at the panel's first group.
using Tile32 = void (*)(const void* a, int64_t a_stride, const void* b, int64_t groups,
                        int32_t* out);
using Tile64 = void (*)(const void* a, int64_t a_stride, const void* b, int64_t groups,
                        int64_t* out);

// A register-blocked int32 tile over `np` <= TileKernel::np panels at once (`b_stride` bytes
// apart) and the first `rows` <= kMr rows: out[(p * kMr + r) * 16 + j] for panel p < np, r < rows
// (rows past `rows` are not written), the raw sums modulo 2^32 as Tile32's.
using TileRows = void (*)(const void* a, int64_t a_stride, const void* b, int64_t b_stride,
                          int64_t groups, int np, int rows, int32_t* out);

struct TileKernel {
  int mr = 0;
  Tile32 t32 = nullptr;  // set: run this (for int64, in blocks of `block` groups)
  Tile64 t64 = nullptr;  // set instead of t32: sums in int64 directly
  int64_t block = 0;     // groups per int32 block when an int64 sum is built from t32
  // Set (an int32 accumulator, block == 0): gemm() runs `rows_fn` over `np` panels at once
  // instead of t32 (which may then be null, or set for the VNNI sparse-row check), skipping the
  // zero rows of a block's last tile.
  TileRows rows_fn = nullptr;
  int np = 1;
};

// k-values per group of the layout: 2, 4 or 1.
int group_size(PackedWeights::Layout layout);

TileKernel select_tile_kernel(const PackedWeights& w, AccType acc);

// Scalar kernels (any CPU).
template <typename BT>
void pairs_s64_scalar(const void* a, int64_t as, const void* b, int64_t groups, int64_t* out);
void wide_s64_scalar(const void* a, int64_t as, const void* b, int64_t groups, int64_t* out);
inline constexpr int kMrScalar = 4;

// AVX2.
template <typename BT>
void pairs_s32_avx2(const void* a, int64_t as, const void* b, int64_t groups, int32_t* out);
// 6 rows x 16 columns (12 accumulators), TileRows with np = 1.
template <typename BT>
void pairs_rows_avx2(const void* a, int64_t as, const void* b, int64_t bs, int64_t groups, int np,
                     int rows, int32_t* out);
inline constexpr int kMrPairsRowsAvx2 = 6;
void pairs16_s64_avx2(const void* a, int64_t as, const void* b, int64_t groups, int64_t* out);
void wide_s64_avx2(const void* a, int64_t as, const void* b, int64_t groups, int64_t* out);
inline constexpr int kMrPairsAvx2 = 4;
inline constexpr int kMrPairs16S64Avx2 = 2;
inline constexpr int kMrWideAvx2 = 2;

// AVX-512BW and AVX-512 VNNI.
template <typename BT>
void pairs_s32_avx512(const void* a, int64_t as, const void* b, int64_t groups, int32_t* out);
void pairs16_s64_avx512(const void* a, int64_t as, const void* b, int64_t groups, int64_t* out);
void quads_s32_vnni(const void* a, int64_t as, const void* b, int64_t groups, int32_t* out);
// 8 rows x 3 panels (24 accumulators), TileRows with np = kNpAvx512.
template <typename BT>
void pairs_rows_avx512(const void* a, int64_t as, const void* b, int64_t bs, int64_t groups, int np,
                       int rows, int32_t* out);
void quads_rows_vnni(const void* a, int64_t as, const void* b, int64_t bs, int64_t groups, int np,
                     int rows, int32_t* out);
inline constexpr int kNpAvx512 = 3;
inline constexpr int kMrPairsAvx512 = 8;
inline constexpr int kMrPairs16S64Avx512 = 4;
inline constexpr int kMrQuadsVnni = 8;

// conv2d's pixel-major tile (conv2d.cc, PixelJob): `rows` <= 6 rows (output channels) x 16
// lanes (output positions) of raw int32 sums, modulo 2^32,
//   out[r * out_stride + j] = sum_g sum_h w[r * w_stride + 2g + h] * pair_h(x2[goff[g] + j])
// where x2 holds int16 pairs as int32 (low half h = 0) and w int16 rows of 2 * groups codes.
void conv_pairs_s32_avx2(const int16_t* w, int64_t w_stride, const int32_t* x2, const int64_t* goff,
                         int64_t groups, int rows, int32_t* out, int64_t out_stride = 16);
inline constexpr int kMrConvPairsAvx2 = 6;

// conv2d's pixel-major tile for int8 weights and 8-bit codes on AVX-512 VNNI (conv2d.cc,
// PixelJob::run_quads; conv_tiles_vnni.cc): `rows` <= 12 rows (output channels) x 16 * `halves`
// lanes (output positions, halves 1 or 2) of raw int32 sums, modulo 2^32,
//   out[(h * 12 + r) * 16 + j] = sum_g sum_i w[r * w_stride + 4g + i] * byte_i(x4[goff[g] + 16h +
//   j])
//                                - corr[r]
// where x4 holds 4 codes per uint32 as unsigned bytes (byte i = bits 8i..8i+7) and w int8 rows
// of 4 * groups codes (vpdpbusd: 4 products per int32 lane).
void conv_quads_s32_vnni(const int8_t* w, int64_t w_stride, const uint32_t* x4, const int64_t* goff,
                         int64_t groups, int rows, int halves, const int32_t* corr, int32_t* out);
inline constexpr int kMrConvQuadsVnni = 12;

// conv2d's depthwise tile (conv2d.cc, DepthwiseJob): the raw int32 sums, modulo 2^32, of one
// output channel at `blocks` blocks of 16 consecutive positions p = 16 * b + j,
//   out[p] = sum_q lo(wpairs[q]) * xp[p + off[2q]] + hi(wpairs[q]) * xp[p + off[2q + 1]]
// where lo / hi are the int16 halves of the pair (low half first) and xp holds int16 codes
// (every xp[p + off[k]], p < 16 * blocks, readable).
void depthwise_s32_avx2(const int16_t* xp, const int32_t* wpairs, const int64_t* off, int64_t pairs,
                        int64_t blocks, int32_t* out);
// The same sums 64 positions at a time on 512-bit vectors (depthwise_avx512.cc; AVX-512BW).
void depthwise_s32_avx512(const int16_t* xp, const int32_t* wpairs, const int64_t* off,
                          int64_t pairs, int64_t blocks, int32_t* out);
// The same sums from 8-bit codes in tap quads on AVX-512 VNNI (conv_tiles_vnni.cc), at `passes`
// passes of 64 consecutive positions p = 64 * b + j,
//   out[p] = init + sum_q sum_i byte_i(wquads[q]) * xp[p + off[4q + i]]   (modulo 2^32)
// where xp holds unsigned bytes, the weights are signed (byte i of the int32, vpdpbusd: 4
// products per int32 lane; per 128-bit lane 4 positions x 4 taps from byte and word unpacks of
// the 4 taps' rows, the sums transposed back to position order at the end), and every
// xp[p + off[k]], p < 64 * passes, is readable.
void depthwise_u8_vnni(const uint8_t* xp, const int32_t* wquads, const int64_t* off, int64_t quads,
                       int64_t passes, int32_t init, int32_t* out);

// conv2d's fused 2x2 pool with the output channels as lanes (conv2d.cc, PixelJob::
// run_pooled_lanes): the max over the 4 output positions of one pool window, whose windows start
// at x2 offsets xoff[0..3], of the raw int32 sums of 16 output channels, modulo 2^32,
//   out[j] = max_r sum_g sum_h wc[(g * 16 + j) * 2 + h] * pair_h(x2[xoff[r] + goff[g]]),  j < 16
// where wc holds the weights of 16 channels as int16 pairs per k-pair g (zero for missing ones).
void conv_pool_lanes_s32_avx2(const int16_t* wc, const int32_t* x2, const int64_t* xoff,
                              const int64_t* goff, int64_t groups, int32_t* out);

// conv2d's fused 2x2 stride-2 max pool on int32 sums (conv2d.cc, PixelJob::run_pooled):
//   out[i] = max(s[2i], s[2i + 1], s[ld + 2i], s[ld + 2i + 1]),  i < 16
// reading s[0, 32) and s[ld, ld + 32) (any values past what the caller keeps).
void max_pool2x2_s32_avx2(const int32_t* s, int64_t ld, int32_t* out);

// AVX-512BW version of the requantizing epilogue's common case (epilogue.cc, run_requantize32:
// int32 accumulator, rounding shift 1..30, row-major output) for int8, uint8 and int16 codes;
// same values, 16 columns per instruction. Null for other output dtypes.
using EpilogueFn = void (*)(const Epilogue&, const int64_t*, int, int, int64_t, int64_t, void*);
EpilogueFn requantize32_avx512(DType out, quant::Rounding rounding);

// AVX2 versions of Epilogue::run_t32's common cases on conv2d's pixel-major tiles (in
// epilogue_avx2.cc; the portable loops are epilogue.cc's run_requantize32_t32 and run_exact_t32:
// int32 sums stored column by column, 16 lanes read per column, contiguous NCHW outputs): the
// requantizing store for int8, uint8, int16 and int32 codes (rounding shift 1..30, acc_shift <=
// 31), and the float / int32 accumulator stores. Same values, 8 int32 lanes per instruction. Null
// for other output dtypes.
using EpilogueFn32 = void (*)(const Epilogue&, const int32_t*, int, int, int64_t, int64_t, void*);
EpilogueFn32 requantize32_t32_avx2(DType out, quant::Rounding rounding);
// post: the float store with the fused channel affine and clamp (Epilogue::post; needs FMA).
EpilogueFn32 exact_t32_avx2(DType out, bool post = false);
// Epilogue::run_t32_runs for the requantizing store above: each column requantized once, then
// stored run by run.
using EpilogueFnRuns = void (*)(const Epilogue&, const int32_t*, const int64_t (*)[3], int, int,
                                int64_t, void*);
EpilogueFnRuns requantize32_runs_avx2(DType out, quant::Rounding rounding);
// The same for the float / int32 accumulator stores (exact_t32_avx2).
EpilogueFnRuns exact_runs_avx2(DType out, bool post = false);
// The float store with GemmParams::post_quantize (after the fused affine, clamp and SiLU that
// `m` names, epilogue.h; the affine needs FMA): each float value quantized to `f`'s codes with
// `r` (quant/quantize_avx2.h), bit for bit quant::quantize. Null when f.width > 24 (the float
// clamp is not the integer one there). In epilogue_avx2.cc, as the stores above.
EpilogueFn32 quantize_t32_avx2(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m);
EpilogueFnRuns quantize_runs_avx2(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m);
// The AVX-512 twins of the five stores above (epilogue_avx512.cc; AVX-512F/BW/VL): one 512-bit
// vector per column, masked stores for partial columns and runs, every value bit for bit the
// AVX2 store's. silu: the float store's fused SiLU (Epilogue::silu_), a template parameter here.
// Null where the AVX2 one is null (and for the SiLU forms in a build without AVX2).
EpilogueFn32 requantize32_t32_avx512(DType out, quant::Rounding rounding);
EpilogueFnRuns requantize32_runs_avx512(DType out, quant::Rounding rounding);
// fast (with silu): the float clamp is [-inf, inf] and the accumulator's scale folds into the
// affine's (epilogue.cc scale_folds): both left out, the same values.
EpilogueFn32 exact_t32_avx512(DType out, bool post, bool silu, bool fast);
EpilogueFnRuns exact_runs_avx512(DType out, bool post, bool silu, bool fast);
EpilogueFn32 quantize_t32_avx512(const quant::FixedFormat& f, quant::Rounding r, QuantizeStore m);
EpilogueFnRuns quantize_runs_avx512(const quant::FixedFormat& f, quant::Rounding r,
                                    QuantizeStore m);
// ChannelLanes::run on one 512-bit vector (epilogue_avx512.cc): out kFloat32 (the float store)
// or the code dtype (int8 / uint8 / int16 / int32) with rounding r; post / silu as the fused
// affine and SiLU. Bit for bit epilogue.cc's AVX2 lanes_store. Null for 64-bit codes (and the
// SiLU forms in a build without AVX2).
using LanesFn = void (*)(const ChannelLanes&, const int32_t*, void*, int64_t);
LanesFn lanes_store_avx512(DType out, quant::Rounding r, bool post, bool silu);

// One sparse row (VNNI, int8 activations x int8 weights in the kQuads layout):
//   out[p * 16 + j] = sum over the listed quads g of sum_i (B[p][g][j][i] + 128) * A[4g + i]
// for the np <= kSparsePanels panels at `panel_stride` bytes from `panels`, modulo 2^32. `a` is
// the prepared row (codes + 128, as the dense kernels read it). With the weights as vpdpbusd's
// unsigned operand a zero activation quad adds nothing to the sum or to its correction
// (128 * sum_k A[k], which the caller subtracts), so only the nonzero quads are listed.
inline constexpr int kSparsePanels = 16;
// Lists in `list` the quads g < groups of a prepared row (codes + 128) that are not four zero
// codes and returns {their count, 128 * sum of their codes modulo 2^32}: the sparse row's input.
struct SparseRow {
  int32_t count;
  uint32_t correction;
};
SparseRow list_nonzero_quads_avx512(const uint8_t* a, int64_t groups, int32_t* list);
void quads_sparse_row_vnni(const uint8_t* a, const int32_t* quads, int64_t n_quads,
                           const void* panels, int64_t panel_stride, int np, int32_t* out);

}  // namespace qsearch::kernels::fixed::detail
