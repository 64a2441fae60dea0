// Exact integer Winograd F(2x2, 3x3) for conv2d (kernels/fixed/conv2d.h): 3x3 kernels, stride 1,
// dilation 1, one group, any padding, int8/uint8/int16 activation codes and int8/int16 weight
// codes, AVX2. Same results as the direct paths, bit for bit (ref::conv2d), with 16 instead of
// 36 multiplies per 2x2 outputs and input channel.
//
// Math (Lavin and Gray's F(2x2, 3x3), made integral). For an output tile at (2ty, 2tx) the
// 4x4 input window d (rows 2ty - pt .. +3, columns 2tx - pl .. +3, zero outside the image) and
// one 3x3 filter g give the 2x2 correlation
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A,
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// (.) the elementwise product. G has halves, so the filter transform uses 2G (entries 0, +-1, +-2):
//   U = (2G) g (2G)^T = 4 G g G^T   (integers, |U| <= 9 max|w|: a row of 2G has |entries| sum 3),
//   V = B^T d B                     (integers, |V| <= 4 max|x|: a row of B^T has two +-1),
//   M[o][pos] = sum_c U[o][c][pos] * V[c][pos]   (16 independent GEMMs over the channels),
//   A^T M A = 4 * S                 (S: the direct conv's exact sum over c, u, v of X * W),
// so S = (A^T M A) / 4 exactly (an exact multiple of 4, because the real identity holds and U
// is 4 times the real transform). S then goes through the direct path's epilogue (the left
// shift, the bias, requantize / accumulator / float, ReLU, clamp), so the outputs are equal.
//
// Exactness conditions (checked once at pack time; otherwise conv2d() takes the direct path):
//   - every U fits int16: checked on the actual weights (always true for int8 codes:
//     9 * 128 = 1152; int16 codes need |w| small enough);
//   - every V fits int16: 4 * max|x| <= 32767 from the activation format (int8 and uint8 codes
//     always; int16 codes up to 13 bits signed or 12 bits unsigned);
//   - 4 * |S| fits int32: 4 * max|x| * max_o sum_{c,u,v} |W[o, c, u, v]| <= 2^31 - 1 (the same
//     worst case as accumulator_bound(), without the bias and shift, which the epilogue adds in
//     int64 when the caller's AccType asks). The GEMMs sum U * V with vpmaddwd in int32 lanes
//     modulo 2^32 and the output transform adds and subtracts modulo 2^32 too: all ring
//     operations, so the result is 4S modulo 2^32, which is 4S itself when |4S| < 2^31; M may
//     wrap on the way without harm. Then S = (4S) >> 2, exactly.
// Also required: groups = 1, no fused pool, AVX2, and (Conv2dWeights::winograd = kAuto) at least
// 32 input channels and a cost estimate (multiplies with the 16-lane padding of both paths, for
// the call's batch) that favours Winograd: a tiny map (the 2x2 .. 5x5 outputs of a CNN at 32x32)
// takes Winograd only from the batch at which its tiles fill the panels (WinogradFilters::
// min_batch, e.g. 9 for a 2x2 map), and keeps the direct path below it and at 1x1.
//
// Layout and loop (winograd.cc): the tiles of the whole batch in row-major order (tile t of
// image i is i * tiles + t) in panels of 16 lanes (small maps of several images share a panel).
// Per work item (a range of panels, and of output-channel blocks when there are fewer panels than
// threads; a few work items come in a multiple of the threads, so that each thread runs as many)
// the input is transformed once into V2[pos][c / 2][lane] int32 channel pairs (two int16 V, channel
// 2c' low; on maps at most 6 outputs wide each tile's 4x4 window is gathered, 16 tiles across
// images per step, else padded rows are split by column parity and a tile row transformed 16 tiles
// per step); then per position, per block of at most 6 output channels (their U rows stay in L1)
// and per panel (the position's V2 stays in L2) detail::conv_pairs_s32_avx2 (the pixel-major kernel
// of conv2d, vpmaddwd on channel pairs) writes M[o][pos][lane] against the packed U2[pos][o][C
// rounded up to even] int16, so U is read once per work item; then per panel and channel block the
// output transform and Epilogue::run_t32 on runs of consecutive pixels. Work items whose V2 is at
// most 640 KB (the narrow layers: ResNet-18's 64- and 128-channel convs at 224) go block by block
// instead: per block of output channels every position's M, then its stores, so that M holds one
// block (L1/L2) rather than every channel (1.2 MB at layer2, written to and read back from L3); V2
// stays in L2 across the blocks. Where the packing's Isa is AVX-512BW or VNNI
// (WinogradFilters::isa, i.e. the CPU has it and $QSEARCH_ISA / ScopedMaxIsa allow it), the
// Winograd-domain GEMM runs in 512-bit registers instead (winograd.cc wino_gemm_*: 6 output
// channels x 32 lanes per call, vpdpwssd or vpmaddwd + vpaddd, the same sums modulo 2^32; each 16
// channel pairs it prefetches the next block's U rows), and F(4x4)'s input rows are split by column
// phase with masked loads and vpermt2w (split_phases_avx512).
//
// F(4x4, 3x3) (WinogradFilters::tile = 4; docs/numerics.md "Exact integer Winograd F(4x4, 3x3)"):
// 36 multiplies per 4x4 outputs. V = B^T d B of the 6x6 window (|V| <= 100 max|x|),
// U' = G' g G'^T with G' = diag(4, 6, 6, 24, 24, 1) G integral (|U'| <= 49 max|w|), M' as above
// over 36 positions, and with Â = A^T diag(6, 4, 4, 1, 1, 24) integral, Â M' Â^T = 576 S. Modulo
// 2^32 throughout; times 9^-1 modulo 2^32 gives 64 S, which is exact when |S| <= 2^25 - 1, and
// S = (64 S) >> 6. Conditions (pack time, else F(2x2)): 100 max|x| <= 32767, max|x| * max_o
// sum |W[o]| <= 2^25 - 1, every U' fits int16; the tile rule (f4_pays in winograd.cc). Lanes
// run over 16 consecutive tiles of the batch; the windows are copied from phase-split rows
// (Wino4Job::transform_all).
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"
#include "kernels/fixed/conv2d.h"

namespace qsearch::kernels::fixed {

// The transformed filters of a conv that takes the Winograd path (PackedConv2d::winograd()).
struct WinogradFilters {
  int tile = 2;                 // m of F(m x m, 3x3): 2 or 4
  int64_t min_batch = 1;        // smaller batches take the direct path (kAuto's cost estimate)
  int64_t channels_padded = 0;  // C rounded up to even (the pad channel's U is 0)
  Isa isa = Isa::kAvx2;         // the packed GEMM's level: >= kAvx512Bw takes the 512-bit GEMM
  // int16 [P * P][OC][channels_padded], P = tile + 2: U at pos = P * i + j (F(4x4): U').
  Tensor u;
};

// The filters when every exactness condition above holds for this conv at pack time (and, for
// w.winograd = kAuto, the cost estimate favours Winograd), else null. `group` is the conv's packed
// GEMM (groups = 1).
std::shared_ptr<const WinogradFilters> pack_winograd(const Conv2dGeometry& g,
                                                     const Conv2dWeights& w,
                                                     const PackedWeights& group);

// conv2d() by Winograd when w.winograd() is set, there is no fused pool and batch >= its
// min_batch; returns false (and does nothing) otherwise. Same contract as conv2d().
bool winograd_conv2d(const void* x, int64_t batch, const PackedConv2d& w, const GemmParams& p,
                     void* y, ConvPool pool);

}  // namespace qsearch::kernels::fixed
