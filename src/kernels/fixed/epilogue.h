// Internal to kernels/fixed: the output stage of gemm()/conv2d(). From the exact int64 sums
// S = sum_k A*B of a tile it forms acc = S * 2^acc_shift + bias_aligned[n] and writes it as
// raw accumulator, requantized codes, float32 or the codes of that float32 (see gemm.h for the
// math).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/fixed/gemm.h"

namespace qsearch::kernels::fixed {

// The form of the AVX2 quantizing store (GemmParams::post_quantize; epilogue_avx2.cc): what the
// layer's parameters let it leave out, chosen once per Epilogue. Every form stores the same codes.
enum class QuantizeStore : uint8_t {
  kPlain,          // no fused affine: the value is finite, no NaN test
  kPost,           // the affine, the float clamp, the code clamp and NaN -> 0, one after the other
  kMerged,         // the float clamp and the code clamp as one clamp of the rounded value
  kMergedFinite,   // kMerged where no NaN can arise (every channel's scale and shift finite) and
                   // every scale * 2^-F is exact (the accumulator's scale folds into it)
  kSilu,           // the affine, the float clamp and the SiLU, then as kPost
  kSiluUnclamped,  // kSilu where the float clamp is [-inf, inf] (it changes no value: left out)
                   // and the scale folds as in kMergedFinite (the AVX-512 store folds it)
};

class Epilogue {
 public:
  // channel0: the output channel of w's column 0 (a conv group's first channel), which indexes
  // p.post_scale / p.post_shift. columns: the post_scale / post_shift entries from channel0 on
  // that the quantizing store's form is chosen over (default w.n(); all of a depthwise conv's
  // channels for channel_tile below).
  Epilogue(const PackedWeights& w, const GemmParams& p, int64_t channel0 = 0, int64_t columns = -1);

  // tile[r * 16 + j] holds S for row row0 + r and column col0 + j (r < rows, j < cols).
  void run(const int64_t* tile, int rows, int cols, int64_t row0, int64_t col0, void* c) const {
    fn_(*this, tile, rows, cols, row0, col0, c);
  }
  // The same with the tile stored column by column: tile[j * 16 + r] holds S for row row0 + r
  // and column col0 + j (r < rows <= 16, j < cols <= 16). conv2d's pixel-major tiles (a column is
  // an output channel) are stored so.
  void run_t(const int64_t* tile, int rows, int cols, int64_t row0, int64_t col0, void* c) const {
    fn_t_(*this, tile, rows, cols, row0, col0, c);
  }
  // run_t on raw int32 sums (the true sums fit int32: AccType::kInt32), tile[j * 16 + r]; the
  // 16 entries tile[j * 16 + r], r < 16, of every column must be readable (any values past rows).
  void run_t32(const int32_t* tile, int rows, int cols, int64_t row0, int64_t col0, void* c) const {
    fn_t32_(*this, tile, rows, cols, row0, col0, c);
  }
  // run_t32 for several runs of one 16-lane tile: run r covers lanes [runs[r][0], runs[r][0] +
  // runs[r][1]) at rows runs[r][2]... (conv2d's stride-1 panels, which span output rows).
  void run_t32_runs(const int32_t* tile, const int64_t (*runs)[3], int nruns, int cols,
                    int64_t col0, void* c) const {
    if (fn_runs_ != nullptr) return fn_runs_(*this, tile, runs, nruns, cols, col0, c);
    for (int r = 0; r < nruns; ++r) {
      fn_t32_(*this, tile + runs[r][0], static_cast<int>(runs[r][1]), cols, runs[r][2], col0, c);
    }
  }

  // Column col's parameters on 16 columns (column_tile's storage; it must outlive the copy).
  struct ColumnLanes {
    int64_t bias[16];
    float post_scale[16], post_shift[16];
  };
  // The stores of column col alone as a 16 x 16 tile: a copy of this Epilogue whose columns
  // 0..15 all carry column col's parameters (copied into *lanes) and lie 16 elements apart, so
  // run_t32(t, 16, cols, 0, 0, c) stores t[0 .. 16 * cols) as column col's values at c[0 ..
  // 16 * cols): up to 256 consecutive outputs of one channel per call, each the value this
  // Epilogue stores for column col. Needs a pixel-major layout (ldc_m_ == 1). conv2d's depthwise
  // path stores a channel's whole plane so, where each 16-lane block of it was one call.
  Epilogue column_tile(int64_t col, ColumnLanes* lanes) const;
  // column_tile of a depthwise conv's channel (channel multiplier 1) without constructing that
  // channel's Epilogue: this Epilogue is made from group 0's packing with channel0 = 0 and
  // columns = every channel; bias is the channel's one-column packing's bias_aligned()[0]
  // (PackedConv2d::channel_biases, which exist only where every group's acc_shift and acc_frac
  // are group 0's), and channel indexes post_scale / post_shift. The same stores as
  // Epilogue(group, p, channel).column_tile(0, lanes) (its quantizing store's form may be a more
  // general one, which stores the same codes). The depthwise path made an Epilogue per channel and
  // image (1 thread, batch 1, MobileNetV2 224's int steps: 181 -> 162 ms without that, then 142 ->
  // 133 ms with the biases in one array).
  Epilogue channel_tile(int64_t bias, int64_t channel, ColumnLanes* lanes) const;

  // Parameters read by the typed implementations in epilogue.cc.
  const int64_t* bias_ = nullptr;  // bias_aligned, [n]
  int shift_ = 0;                  // acc_shift (capped at 63; S is 0 whenever it matters)
  int64_t ldc_m_ = 0, ldc_n_ = 1;
  int rshift_ = 0;           // acc_frac - out_format.frac (kRequantize)
  bool fast_shift_ = false;  // 1 <= rshift_ <= 62: inline int64 rounding
  int64_t lo_ = 0, hi_ = 0;  // out_format code range
  quant::Rounding rounding_ = quant::Rounding::kHalfToEven;
  float scale_ = 1.0f;  // 2^-acc_frac (kFloat)
  // kFloat with GemmParams::post_scale: the fused channel affine and clamp of column 0 onwards.
  const float* post_scale_ = nullptr;
  const float* post_shift_ = nullptr;
  float post_lo_ = 0.0f, post_hi_ = 0.0f;
  bool silu_ = false;  // GemmParams::post_silu, applied by post()
  // kFloat with GemmParams::post_quantize: the codes of each float value are stored.
  quant::FixedFormat q_format_;
  quant::Rounding q_rounding_ = quant::Rounding::kHalfToEven;
  float q_scale_ = 1.0f, q_lo_ = 0.0f, q_hi_ = 0.0f;  // 2^frac and the code bounds (AVX2 store)
  // QuantizeStore::kMerged(Finite): [max(round(post_lo * 2^frac), q_lo_), min(round(post_hi *
  // 2^frac), q_hi_)], the one clamp of the rounded values.
  float q_clamp_lo_ = 0.0f, q_clamp_hi_ = 0.0f;
  QuantizeStore q_store_ = QuantizeStore::kPlain;
  // The instruction set of the run_t32 / run_t32_runs store chosen: kScalar (the portable loops),
  // kAvx2 (epilogue_avx2.cc) or kAvx512Bw (epilogue_avx512.cc: weights packed for AVX-512BW or
  // better, on a CPU with AVX-512VL). Tests check that the path they mean to test is taken.
  Isa store_isa_ = Isa::kScalar;

  // The fused affine and clamp of one float value v of column col (GemmParams::post_scale), and
  // the fused SiLU (GemmParams::post_silu).
  float post(float v, int64_t col) const {
    const float u = std::fma(v, post_scale_[col], post_shift_[col]);
    const float w = u < post_lo_ ? post_lo_ : u;
    const float c = w > post_hi_ ? post_hi_ : w;
    return silu_ ? silu(c) : c;
  }
  // v * sigmoid(v) with the float Sigmoid step's sigmoid (kernels/vec_math.h), rounded as its Mul.
  static float silu(float v);

 private:
  using Fn = void (*)(const Epilogue&, const int64_t*, int, int, int64_t, int64_t, void*);
  Fn fn_ = nullptr, fn_t_ = nullptr;
  using Fn32 = void (*)(const Epilogue&, const int32_t*, int, int, int64_t, int64_t, void*);
  Fn32 fn_t32_ = nullptr;
  using FnRuns = void (*)(const Epilogue&, const int32_t*, const int64_t (*)[3], int, int, int64_t,
                          void*);
  FnRuns fn_runs_ = nullptr;
};

// The float store (GemmParams::kFloat, with or without the fused post_* affine / SiLU / codes)
// of up to 16 channels of one output pixel, the channels as the lanes: conv2d's depthwise path
// on small maps, whose sums come 16 channels at a time (per-channel Epilogue::run_t32 calls
// there used one of 16 lanes on a 1x1 map). Channel c0 + c is column 0 of groups[c]; each value
// is the one its channel's Epilogue stores (the same operations in the same order: int32 shift
// and bias, one rounding to float, the exact scale, fma and clamp, SiLU, quantize).
class ChannelLanes {
 public:
  // Whether it applies: kFloat, an int32 accumulator, AVX2 + FMA, codes of at most 24 bits, and
  // the groups' accumulator shifts and fractions equal; else ok() is false (use the Epilogue).
  ChannelLanes(const PackedWeights* groups, int nc, const GemmParams& p, int64_t c0);
  bool ok() const { return fn_ != nullptr; }
  // acc[c], c < 16: the int32 sum of channel c0 + c (lanes past nc are read, not stored). Writes
  // channel c's value at element c * stride of `out` (gemm_output_dtype(p) elements).
  void run(const int32_t* acc, void* out, int64_t stride) const { fn_(*this, acc, out, stride); }

  alignas(32) int32_t bias_[16] = {};
  alignas(32) float post_scale_[16] = {}, post_shift_[16] = {};
  int nc_ = 0, shift_ = 0;
  float scale_ = 1.0f, post_lo_ = 0.0f, post_hi_ = 0.0f;
  float q_scale_ = 1.0f, q_lo_ = 0.0f, q_hi_ = 0.0f;
  // The store's instruction set: kAvx2 (epilogue.cc) or kAvx512Bw (epilogue_avx512.cc: groups
  // packed for AVX-512BW or better, a CPU with AVX-512VL); tests check the path taken.
  Isa store_isa_ = Isa::kAvx2;

 private:
  using Fn = void (*)(const ChannelLanes&, const int32_t*, void*, int64_t);
  Fn fn_ = nullptr;
};

}  // namespace qsearch::kernels::fixed
