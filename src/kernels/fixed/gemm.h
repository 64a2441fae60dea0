// Integer GEMM on fixed-point codes with pre-packed weights (the `int` execution mode).
//
// Math (docs/numerics.md "Integer GEMM"). A holds activation codes (binary point fa), B weight
// codes (fb), bias codes (fc). Products are exact integers at binary point fa + fb; the
// accumulator's binary point is
//     F = max(fa + fb, fc)                  (acc_frac())
// so that the bias aligns exactly (a left shift) whichever of the two is finer:
//     acc[m, n] = (sum_k A[m, k] * B[k, n]) * 2^(F - fa - fb) + bias[n] * 2^(F - fc)
// and the value is acc * 2^-F exactly. The kernel then writes one of
//     kAccumulator:  acc itself (int32 or int64, the caller's AccType),
//     kRequantize:   requantize(acc, F, out_format, rounding) (quant/fixed_point.h): a rounding
//                    shift and a clamp, in the codes' storage dtype (and max(., 0) with relu),
//     kFloat:        acc * 2^-F rounded once to float32.
// Every fast path equals kernels/fixed/ref/gemm_ref.h exactly (tolerance 0).
//
// Accumulator width. accumulator_bound() gives the exact worst case
//     max_n ( 2^(F-fa-fb) * max|A| * sum_k |B[k,n]| + |bias[n] * 2^(F-fc)| )
// from the packed weights and the activation format, and whether int32 holds it, int64 is
// needed, or even int64 overflows (the plan refuses that trial). Running with a narrower AccType
// than the bound allows is a contract violation (QSEARCH_DCHECK), never a silent wrap.
//
// Lifetime: pack once per trial (pack_weights copies what it needs; the spec's buffers may be freed
// after), then call gemm() for any number of batches. gemm() never allocates after the first call
// on a thread with the same or smaller K (it keeps a per-thread scratch) and never throws. Copies
// of a PackedWeights share the packed buffer. gemm() is multi-threaded with qsearch::parallel_for
// and may be called concurrently from several threads.
//
//   GemmWeights spec;                       // Linear: weight [N, K] int8 codes at s8.6
//   spec.b = w.data(); spec.b_dtype = DType::kInt8; spec.k = 784; spec.n = 256;
//   spec.stride_k = 1; spec.stride_n = 784; spec.b_format = {8, 6, true};
//   spec.bias = b.data(); spec.bias_dtype = DType::kInt8; spec.bias_format = {8, 4, true};
//   spec.a_format = {8, 4, true}; spec.a_dtype = DType::kInt8;
//   PackedWeights pw = pack_weights(spec);                    // F = max(4 + 6, 4) = 10
//   AccumulatorBound bound = accumulator_bound(pw);           // bound.need == kInt32 here
//   GemmParams p{.acc = AccType::kInt32, .output = GemmOutput::kRequantize,
//                .out_format = {8, 4, false}, .rounding = Rounding::kHalfToEven};
//   gemm(x_codes, batch, /*lda=*/784, pw, p, y_codes);       // y: uint8 [batch, 256]
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/fixed/isa.h"
#include "quant/fixed_point.h"

namespace qsearch::kernels::fixed {

using quant::FixedFormat;
using quant::Rounding;

enum class AccType : uint8_t { kInt32, kInt64 };

// Where the accumulator's worst case lands.
enum class AccNeed : uint8_t { kInt32, kInt64, kOverflowsInt64 };

struct AccumulatorBound {
  double max_abs = 0;  // the exact bound, rounded up to a double (for messages)
  AccNeed need = AccNeed::kInt32;
  // The narrowest AccType that is safe; only meaningful when need != kOverflowsInt64.
  AccType acc() const { return need == AccNeed::kInt32 ? AccType::kInt32 : AccType::kInt64; }
};

// What pack_weights reads. Nothing is retained.
struct GemmWeights {
  const void* b = nullptr;       // weight codes; element (k, n) at b[k * stride_k + n * stride_n]
  DType b_dtype = DType::kInt8;  // int8 | int16 | int32
  int64_t k = 0, n = 0;
  int64_t stride_k = 0, stride_n = 0;  // [K, N] row-major: (n, 1); Linear's [N, K]: (1, K)
  FixedFormat b_format;                // every code must lie in its range
  const void* bias = nullptr;          // optional, [n] codes
  DType bias_dtype = DType::kInt32;    // any integer dtype
  FixedFormat bias_format;
  FixedFormat a_format;          // the activation codes gemm() will multiply
  DType a_dtype = DType::kInt8;  // int8 | uint8 | int16 | int32, holding a_format
  // Store the panels bit-packed at b_format.width bits per code (kernels/fixed/bitpack.h) when
  // that is narrower than the panel element (int8, int16 or int32); gemm() then unpacks one panel
  // at a time into a per-thread buffer. Same results, smaller weights, a little unpacking work.
  bool bit_pack = false;
};

// The packed weights of one GEMM. Read-only after pack_weights(); cheap to copy (shared buffer).
class PackedWeights {
 public:
  PackedWeights() = default;

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  DType a_dtype() const { return a_dtype_; }
  DType b_dtype() const { return b_dtype_; }
  const FixedFormat& a_format() const { return a_format_; }
  int b_frac() const { return b_frac_; }
  bool has_bias() const { return has_bias_; }
  // F: the accumulator's binary point, max(fa + fb, fc).
  int acc_frac() const { return acc_frac_; }
  // F - fa - fb: the left shift applied to sum_k A*B before the bias is added.
  int acc_shift() const { return acc_shift_; }
  Isa isa() const { return isa_; }
  // Bytes of the packed weight panels as stored (including padding to the tile; bit-packed
  // when code_bits() > 0).
  size_t packed_bytes() const { return panels_.nbytes() + released_bytes_; }
  // Bits per stored weight code when the panels are bit-packed, else 0 (element layout).
  int code_bits() const { return code_bits_; }
  // The element dtype of an (unpacked) panel: int8 | int16 | int32.
  DType panel_dtype() const { return panel_dtype_; }
  // Bytes of one panel in the element layout.
  size_t panel_bytes() const { return static_cast<size_t>(kp_) * 16 * dtype_size(panel_dtype_); }

  // ---- internal to the kernels (read by gemm.cc) ----
  enum class Layout : uint8_t { kPairs, kQuads, kWide32 };
  Layout layout() const { return layout_; }
  int64_t k_padded() const { return kp_; }
  int64_t num_panels() const { return panels_n_; }
  const Tensor& panels() const { return panels_; }
  // Frees the panels (empty afterwards) of a conv whose every run takes a path that does not read
  // them (pack_conv2d: Winograd at every batch, no pool); packed_bytes() still counts them. No
  // gemm() may run on these weights afterwards.
  void release_panels() {
    released_bytes_ += panels_.nbytes();
    panels_ = Tensor();
  }
  const std::vector<int64_t>& bias_aligned() const { return bias_aligned_; }
  const std::vector<int64_t>& correction() const { return correction_; }
  const std::vector<uint64_t>& abs_col_sum() const { return abs_col_sum_; }
  const std::vector<uint64_t>& bias_abs() const { return bias_abs_; }
  int bias_shift() const { return bias_shift_; }

 private:
  friend PackedWeights pack_weights(const GemmWeights& spec, Isa isa);
  int64_t k_ = 0, n_ = 0, kp_ = 0, panels_n_ = 0;
  size_t released_bytes_ = 0;  // release_panels()
  DType a_dtype_ = DType::kInt8, b_dtype_ = DType::kInt8;
  FixedFormat a_format_;
  int b_frac_ = 0, acc_frac_ = 0, acc_shift_ = 0;
  bool has_bias_ = false;
  Isa isa_ = Isa::kScalar;
  Layout layout_ = Layout::kPairs;
  int code_bits_ = 0;
  DType panel_dtype_ = DType::kInt8;
  Tensor panels_;  // B in the tile layout of `layout_`, zero padded (bit-packed: uint8 stream)
  std::vector<int64_t> bias_aligned_;  // [n]: bias[n] * 2^(F - fc)
  std::vector<int64_t> correction_;    // [n]: subtracted from the raw sum (VNNI's +128 trick)
  std::vector<uint64_t> abs_col_sum_;  // [n]: sum_k |B[k, n]|
  std::vector<uint64_t> bias_abs_;     // [n]: |bias[n]| (unshifted, for the bound)
  int bias_shift_ = 0;                 // F - fc
};

// Validates the spec (Error naming the field: dtypes, formats, codes outside their format) and
// packs B for `isa` (at most max_isa()'s level is used; pass a lower one to force a path).
PackedWeights pack_weights(const GemmWeights& spec, Isa isa = max_isa());

// The exact worst case of |acc| over every n and every A whose codes lie in w.a_format().
AccumulatorBound accumulator_bound(const PackedWeights& w);

enum class GemmOutput : uint8_t { kAccumulator, kRequantize, kFloat };

struct GemmParams {
  AccType acc = AccType::kInt32;  // from accumulator_bound(); int32 is faster
  GemmOutput output = GemmOutput::kAccumulator;
  FixedFormat out_format;                     // kRequantize: output codes' format
  Rounding rounding = Rounding::kHalfToEven;  // kRequantize
  // kRequantize: a ReLU fused into the store, max(requantize(acc), 0). Exact: the clamp's lower
  // bound becomes max(lo, 0) (relu(clamp(v, lo, hi)) == clamp(v, max(lo, 0), hi)).
  bool relu = false;
  // kRequantize: the codes clamped further to [clamp_lo, clamp_hi] (codes of out_format,
  // clamp_lo <= clamp_hi): an unquantized Clip fused into the store, clip(q(v), q(lo), q(hi)) =
  // q(clip(v, lo, hi)) exactly because q is non-decreasing (the int lowering passes the codes of
  // the Clip's bounds). The defaults clamp nothing.
  int64_t clamp_lo = INT64_MIN, clamp_hi = INT64_MAX;
  // Output strides in elements: C[m, n] at c[m * ldc_m + n * ldc_n]; ldc_m = 0 means n().
  int64_t ldc_m = 0, ldc_n = 1;
  // kFloat: a float channel affine and clamp after the store (a float BatchNorm and Relu / Clip
  // fused by the int lowering), when post_scale is set: with v the stored float above,
  //   u = fma(v, post_scale[n], post_shift[n]);  u = u < post_lo ? post_lo : u;
  //   C = u > post_hi ? post_hi : u
  // the same float operations as the separate steps (channel_affine_f32, unary_f32's Relu / Clip;
  // the defaults clamp nothing). conv2d: n is the output channel; the arrays have out_channels.
  const float* post_scale = nullptr;
  const float* post_shift = nullptr;
  float post_lo = -std::numeric_limits<float>::infinity();
  float post_hi = std::numeric_limits<float>::infinity();
  // kFloat with post_scale: then a SiLU of the clamped value, C = u * sigmoid(u) with
  // kernels/vec_math.h's sigmoid (an unquantized Sigmoid and Mul of the BatchNorm's output fused
  // by the int lowering, EfficientNet's conv + BN + SiLU): the same bits as the separate Sigmoid
  // step (vmath::map_f32) and the float Mul.
  bool post_silu = false;
  // kFloat: the store writes, instead of each float value C above (after the affine and clamp,
  // if any), its codes quant::quantize(C, post_format, post_rounding) as
  // storage_dtype(post_format): the next node's input quantizer fused into the store (the int
  // lowering uses it when every reader of C wants those codes), bit for bit the float store
  // followed by quant::quantize.
  bool post_quantize = false;
  FixedFormat post_format;
  Rounding post_rounding = Rounding::kHalfToEven;
};

// The element type gemm() writes for `p`: int32/int64 (kAccumulator), storage_dtype(out_format)
// (kRequantize) or float32 (kFloat; storage_dtype(post_format) with post_quantize).
DType gemm_output_dtype(const GemmParams& p);

// C = A * B (+ bias) as described above. `a`: m rows of w.a_dtype() codes, row stride lda >= k.
// `c`: gemm_output_dtype(p) elements. Preconditions (DCHECKed): A's codes lie in w.a_format(),
// p.acc is at least accumulator_bound(w).acc(), p.out_format is valid.
void gemm(const void* a, int64_t m, int64_t lda, const PackedWeights& w, const GemmParams& p,
          void* c);

namespace detail {
// gemm() whose A rows are made on demand instead of read from memory (conv2d's im2col): for each
// block of rows it calls fill(ctx, row0, rows, rows_padded, w, dst), which must write rows
// [row0, row0 + rows) of A into dst exactly as gemm() would have prepared them from memory (the
// layout of w.layout(): kPairs int16 codes, kQuads uint8 codes ^ 0x80 for int8 activations, else
// the codes, kWide32 int32 codes; each row w.k_padded() elements, zero past k; rows past `rows`
// up to rows_padded all zero). Same results, same threading, as gemm().
using FillRows = void (*)(const void* ctx, int64_t row0, int64_t rows, int64_t rows_padded,
                          const PackedWeights& w, void* dst);
void gemm_rows(FillRows fill, const void* ctx, int64_t m, const PackedWeights& w,
               const GemmParams& p, void* c);
}  // namespace detail

}  // namespace qsearch::kernels::fixed
